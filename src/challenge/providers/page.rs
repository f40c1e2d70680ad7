//! The widget part of a provider kind's challenge page: the provider's
//! script and element inside the page's answer form, which the widget
//! fills with its response field before the form is posted.

use super::Providers;
use crate::challenge::context::Context;
use crate::config::ChallengeKind;
use crate::policy::escape_html;

/// The ALTCHA widget, vendored (`datasets/altcha/`), served under the
/// challenge prefix.
pub const ALTCHA_SCRIPT: &str = "altcha.js";

/// reCAPTCHA v3's action when `action` is unset.
pub const DEFAULT_V3_ACTION: &str = "palisade";

/// The HTML that goes inside the form for `context`'s kind; `None` for
/// Palisade's own kinds and unconfigured providers.
pub fn widget_html(providers: &Providers, context: &Context, prefix: &str) -> Option<String> {
    let kind = context.passed.kind;
    if kind == ChallengeKind::Altcha {
        providers.altcha()?;
        // `auto="onload"` starts the proof of work at once; the page's
        // button posts the form once the widget has put its payload in
        // the `altcha` field. `hidelogo`: the widget's logo is a link
        // hidden from screen readers but still focusable (axe-core's
        // aria-hidden-focus); its footer still credits ALTCHA.
        return Some(format!(
            "<script type=\"module\" src=\"{}\"></script>\n\
             <altcha-widget name=\"{}\" auto=\"onload\" hidelogo challengejson=\"{}\"></altcha-widget>\n",
            escape_html(&format!("{prefix}{ALTCHA_SCRIPT}")),
            super::altcha::FIELD,
            escape_html(&context.layout),
        ));
    }
    let provider = providers.siteverify(kind)?;
    let widget = super::widget(kind)?;
    let script = escape_html(&provider.script_url());
    let site_key = escape_html(&provider.config.site_key);
    if kind == ChallengeKind::RecaptchaV3 {
        // No widget: a score for the submit, fetched just before it.
        let action = provider
            .config
            .action
            .as_deref()
            .unwrap_or(DEFAULT_V3_ACTION);
        let key = serde_json::to_string(&provider.config.site_key).unwrap_or_default();
        let action = serde_json::to_string(action).unwrap_or_default();
        return Some(format!(
            "<script src=\"{script}\" async defer></script>\n\
             <input type=\"hidden\" name=\"{field}\" id=\"provider-response\">\n\
             <script>\n(function(){{var f=document.currentScript.closest('form');\
             f.addEventListener('submit',function(e){{if(f.dataset.ready)return;e.preventDefault();\
             grecaptcha.ready(function(){{grecaptcha.execute({key},{{action:{action}}}).then(function(t){{\
             document.getElementById('provider-response').value=t;f.dataset.ready='1';f.submit();}});}});}});}})();\n</script>\n",
            field = widget.field,
            key = key.replace("</", "<\\/"),
            action = action.replace("</", "<\\/"),
        ));
    }
    let module = if kind == ChallengeKind::FriendlyCaptcha {
        " type=\"module\""
    } else {
        ""
    };
    Some(format!(
        "<script{module} src=\"{script}\" async defer></script>\n\
         <div class=\"{}\" data-sitekey=\"{site_key}\"></div>\n",
        widget.class
    ))
}
