//! The challenge pages: one HTML page per kind, accessible and usable
//! without JavaScript (a plain form POST), in the client's language.
//!
//! What makes them accessible: every control has a label or legend, the
//! instructions come before the controls in reading and focus order, the
//! error is announced (`role="alert"`), there is no time limit shorter than
//! the challenge's own (stated on the page), every visual kind links to an
//! audio alternative, and a "new challenge" button fetches another. Colours
//! follow `prefers-color-scheme`. Proof of work keeps its own page
//! ([`super::page`]), which needs JavaScript by nature.

use super::hints::PageHead;
use super::providers::page::widget_html;
use super::providers::Providers;
use super::service::Issued;
use super::strings::{fill, Strings};
use super::urls::Urls;
use super::Lang;
use crate::config::ChallengeKind;
use crate::policy::escape_html;

/// A message shown above a challenge: why the last answer did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    WrongAnswer,
    Expired,
    Used,
    Unknown,
    /// The answer was right, but the way it was given looked automated.
    AskAgain,
}

fn notice_text(notice: Notice, s: &Strings) -> &'static str {
    match notice {
        Notice::WrongAnswer => s.wrong_answer,
        Notice::Expired => s.expired,
        Notice::Used => s.used,
        Notice::Unknown => s.unknown,
        Notice::AskAgain => s.ask_again,
    }
}

/// The interaction recorder (`pages/interaction.js`): on challenge pages
/// only, so what it records is sent with an answer and nowhere else.
const RECORDER: &str = concat!(
    "<script>\n",
    include_str!("pages/interaction.js"),
    "</script>"
);

/// A page: its head is the page's title and `noindex`, or for a crawler
/// the `hints` of the page it stands in for.
fn document(
    lang: Lang,
    columns: usize,
    body: &str,
    script: &str,
    hints: Option<&PageHead>,
) -> String {
    let title = Strings::of(lang).title;
    let head = match hints {
        Some(hints) => hints.to_html(title),
        None => format!(
            "<meta name=\"robots\" content=\"noindex\">\n<title>{}</title>",
            escape_html(title)
        ),
    };
    // The head last: hints are the upstream's text, and must not be
    // taken for the template's own placeholders.
    include_str!("pages/challenge.html")
        .replace("{{TITLE}}", &escape_html(title))
        .replace("{{LANG}}", lang.code())
        .replace("{{COLUMNS}}", &columns.max(1).to_string())
        .replace("{{BODY}}", body)
        .replace("{{SCRIPT}}", script)
        .replace("{{HEAD}}", &head)
}

/// The page for a stored challenge (`Issued::Stored`), with crawler
/// `hints` for a crawler that gets them; `None` for `pow`.
pub fn challenge_page(
    issued: &Issued,
    providers: &Providers,
    urls: Urls,
    ttl_s: u64,
    notice: Option<Notice>,
    hints: Option<&PageHead>,
) -> Option<String> {
    let Issued::Stored {
        context,
        prompt,
        tiles,
    } = issued
    else {
        return None;
    };
    let s = Strings::of(context.lang);
    let kind = context.passed.kind;
    let difficulty = context.passed.difficulty;
    let id = &context.id;
    let mut body = String::with_capacity(4096);
    body.push_str(&format!("<p>{}</p>\n", escape_html(s.intro)));
    if let Some(notice) = notice {
        body.push_str(&format!(
            "<p class=\"er\" role=\"alert\">{}</p>\n",
            escape_html(notice_text(notice, s))
        ));
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\">\n",
        escape_html(&urls.verify(id))
    ));
    let columns = match kind {
        ChallengeKind::Text => {
            body.push_str(&format!(
                "<img class=\"media\" src=\"{}\" alt=\"{}\" width=\"{}\" height=\"{}\">\n\
                 <label for=\"answer\">{}</label>\n<p class=\"mu\" id=\"hint\">{}</p>\n\
                 <input type=\"text\" id=\"answer\" name=\"answer\" required autofocus autocomplete=\"off\" \
                 autocapitalize=\"characters\" spellcheck=\"false\" aria-describedby=\"hint\">\n",
                escape_html(&urls.image(id)),
                escape_html(s.image_alt),
                super::text::WIDTH,
                super::text::HEIGHT,
                escape_html(prompt),
                escape_html(s.text_hint),
            ));
            1
        }
        ChallengeKind::Audio => {
            let audio = escape_html(&urls.audio(id));
            body.push_str(&format!(
                "<p class=\"mu\" id=\"hint\">{}</p>\n<audio controls preload=\"none\" src=\"{audio}\"></audio>\n\
                 <p><a href=\"{audio}\" download>{}</a></p>\n\
                 <label for=\"answer\">{}</label>\n\
                 <input type=\"text\" id=\"answer\" name=\"answer\" required inputmode=\"numeric\" \
                 autocomplete=\"off\" spellcheck=\"false\" aria-describedby=\"hint\">\n",
                escape_html(s.audio_hint),
                escape_html(s.download_audio),
                escape_html(prompt),
            ));
            1
        }
        ChallengeKind::OneClick | ChallengeKind::Grid => {
            let grid = kind == ChallengeKind::Grid;
            let (input, columns) = if grid {
                ("checkbox", if *tiles > 9 { 4 } else { 3 })
            } else {
                ("radio", (*tiles).min(4))
            };
            body.push_str(&format!(
                "<fieldset>\n<legend>{}</legend>\n<div class=\"tiles\">\n",
                escape_html(prompt)
            ));
            let total = tiles.to_string();
            for n in 0..*tiles {
                let label = fill(s.picture, &[&(n + 1).to_string(), &total]);
                let required = if grid || n > 0 { "" } else { " required" };
                body.push_str(&format!(
                    "<label class=\"tile\"><input type=\"{input}\" name=\"tile\" value=\"{n}\" aria-label=\"{}\"{required}>\
                     <img src=\"{}\" alt=\"\" width=\"{size}\" height=\"{size}\"></label>\n",
                    escape_html(&label),
                    escape_html(&urls.tile(id, n)),
                    size = super::pictures::TILE_SIZE,
                ));
            }
            body.push_str("</div>\n</fieldset>\n");
            // CC-BY 4.0 asks for the credit where the pictures are shown.
            body.push_str(
                "<p class=\"mu\">Twemoji graphics by Twitter, Inc and other contributors, CC-BY 4.0</p>\n",
            );
            columns
        }
        ChallengeKind::Chart => {
            body.push_str(&super::chart::form_fields(
                &context.layout,
                prompt,
                &urls.image(id),
                context.lang,
            ));
            1
        }
        ChallengeKind::Pow => return None,
        // A provider's widget.
        _ => {
            body.push_str(&widget_html(providers, context, urls.prefix)?);
            1
        }
    };
    body.push_str(&format!(
        "<p class=\"mu\">{}</p>\n<div class=\"row\"><button class=\"primary\" type=\"submit\">{}</button></div>\n</form>\n",
        escape_html(&fill(s.expires, &[&ttl_s.div_ceil(60).to_string()])),
        escape_html(s.verify),
    ));
    // The secondary actions are links, so they work without JavaScript
    // and never submit the answer form.
    let again = urls.challenge(kind, difficulty, &context.return_path);
    body.push_str(&format!(
        "<div class=\"row\"><a class=\"button\" href=\"{}\">{}</a>",
        escape_html(&again),
        escape_html(s.new_challenge)
    ));
    if kind != ChallengeKind::Audio {
        let audio = urls.challenge(ChallengeKind::Audio, difficulty, &context.return_path);
        body.push_str(&format!(
            " <a href=\"{}\">{}</a>",
            escape_html(&audio),
            escape_html(s.audio_instead)
        ));
    }
    body.push_str("</div>\n");
    Some(document(context.lang, columns, &body, RECORDER, hints))
}

/// The page for a client that cannot be challenged now: locked out, or the
/// store is down.
pub fn message_page(lang: Lang, locked: bool) -> String {
    let s = Strings::of(lang);
    let text = if locked { s.locked } else { s.unavailable };
    document(
        lang,
        1,
        &format!("<p role=\"alert\">{}</p>\n", escape_html(text)),
        "",
        None,
    )
}
