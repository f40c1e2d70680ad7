//! The chart kind's part of the challenge page: the picture, and the
//! question as the legend of one radio button per choice, so the question
//! and every answer are text a screen reader reads and a keyboard reaches.
//! The picture's alternative text says what it is without giving the data
//! away; people who cannot see it take the audio alternative, which every
//! visual page links to.

use super::{choices, HEIGHT, WIDTH};
use crate::challenge::Lang;
use crate::policy::escape_html;

/// The picture's alternative text.
fn image_alt(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "A chart; the question below is about it",
        Lang::De => "Ein Diagramm; die Frage darunter bezieht sich darauf",
        Lang::Fr => "Un graphique ; la question ci-dessous porte sur lui",
        Lang::Es => "Un gráfico; la pregunta de abajo trata sobre él",
    }
}

/// The picture and the choices, inside the page's answer form: each
/// choice posts `answer=<its text>`.
pub fn form_fields(layout: &str, prompt: &str, image_url: &str, lang: Lang) -> String {
    let mut html = format!(
        "<img class=\"media\" src=\"{}\" alt=\"{}\" width=\"{WIDTH}\" height=\"{HEIGHT}\">\n\
         <fieldset>\n<legend>{}</legend>\n<div class=\"row\">\n",
        escape_html(image_url),
        escape_html(image_alt(lang)),
        escape_html(prompt),
    );
    for (n, choice) in choices(layout).iter().enumerate() {
        let required = if n == 0 { " required" } else { "" };
        html.push_str(&format!(
            "<label><input type=\"radio\" name=\"answer\" value=\"{value}\"{required}> {value}</label>\n",
            value = escape_html(choice),
        ));
    }
    html.push_str("</div>\n</fieldset>\n");
    html
}
