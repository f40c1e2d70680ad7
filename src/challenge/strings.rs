//! What the challenge pages say, in every [`Lang`].
//!
//! One struct per language rather than a message catalogue: the set is
//! small, a missing string is a compile error, and translators see every
//! string of a language in one place.

use super::Lang;

/// The strings of one language. `{}` marks where a value goes.
pub struct Strings {
    pub title: &'static str,
    pub intro: &'static str,
    pub text_label: &'static str,
    pub text_hint: &'static str,
    pub audio_label: &'static str,
    pub audio_hint: &'static str,
    /// `{}`: the thing to find.
    pub one_click_legend: &'static str,
    /// `{}`: the thing to find.
    pub grid_legend: &'static str,
    /// `{}` and `{}`: the picture's number and how many there are.
    pub picture: &'static str,
    pub image_alt: &'static str,
    pub verify: &'static str,
    pub new_challenge: &'static str,
    pub audio_instead: &'static str,
    pub download_audio: &'static str,
    /// `{}`: minutes.
    pub expires: &'static str,
    pub wrong_answer: &'static str,
    pub expired: &'static str,
    pub used: &'static str,
    pub unknown: &'static str,
    pub ask_again: &'static str,
    pub locked: &'static str,
    pub unavailable: &'static str,
}

impl Strings {
    pub fn of(lang: Lang) -> &'static Strings {
        match lang {
            Lang::En => &EN,
            Lang::De => &DE,
            Lang::Fr => &FR,
            Lang::Es => &ES,
        }
    }
}

/// Fills the `{}` markers of `template` in order.
pub fn fill(template: &str, values: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut values = values.iter();
    let mut rest = template;
    while let Some(at) = rest.find("{}") {
        out.push_str(&rest[..at]);
        out.push_str(values.next().copied().unwrap_or(""));
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    out
}

static EN: Strings = Strings {
    title: "Please confirm you are a person",
    intro: "This site checks that visitors are people, not automated programs. Answer the challenge below to continue to the page you asked for.",
    text_label: "Type the characters in the picture",
    text_hint: "Letters are not case-sensitive.",
    audio_label: "Type the digits you hear",
    audio_hint: "Play the recording; it may have background noise. You can play it as often as you like.",
    one_click_legend: "Choose the picture showing: {}",
    grid_legend: "Select every picture showing: {}",
    picture: "Picture {} of {}",
    image_alt: "Distorted characters to type",
    verify: "Continue",
    new_challenge: "New challenge",
    audio_instead: "Listen to an audio challenge instead",
    download_audio: "Download the recording",
    expires: "You have {} minutes to answer.",
    wrong_answer: "That was not right. Please try this new challenge.",
    expired: "That challenge expired. Please try this new one.",
    used: "That challenge was already answered. Please try this new one.",
    unknown: "That challenge is not known. Please try this new one.",
    ask_again: "Thanks. Please solve one more challenge to continue.",
    locked: "Too many wrong answers. Please wait a few minutes and try again.",
    unavailable: "Challenges are not available right now. Please try again in a moment.",
};

static DE: Strings = Strings {
    title: "Bitte bestätigen Sie, dass Sie ein Mensch sind",
    intro: "Diese Website prüft, ob Besucher Menschen und keine automatisierten Programme sind. Lösen Sie die Aufgabe unten, um zur gewünschten Seite zu gelangen.",
    text_label: "Geben Sie die Zeichen im Bild ein",
    text_hint: "Groß- und Kleinschreibung spielt keine Rolle.",
    audio_label: "Geben Sie die Ziffern ein, die Sie hören",
    audio_hint: "Spielen Sie die Aufnahme ab; sie kann Hintergrundgeräusche enthalten. Sie können sie beliebig oft abspielen.",
    one_click_legend: "Wählen Sie das Bild mit: {}",
    grid_legend: "Wählen Sie alle Bilder mit: {}",
    picture: "Bild {} von {}",
    image_alt: "Verzerrte Zeichen zum Abtippen",
    verify: "Weiter",
    new_challenge: "Neue Aufgabe",
    audio_instead: "Stattdessen eine Audio-Aufgabe anhören",
    download_audio: "Aufnahme herunterladen",
    expires: "Sie haben {} Minuten Zeit.",
    wrong_answer: "Das war nicht richtig. Bitte versuchen Sie diese neue Aufgabe.",
    expired: "Die Aufgabe ist abgelaufen. Bitte versuchen Sie diese neue.",
    used: "Diese Aufgabe wurde bereits beantwortet. Bitte versuchen Sie diese neue.",
    unknown: "Diese Aufgabe ist unbekannt. Bitte versuchen Sie diese neue.",
    ask_again: "Danke. Bitte lösen Sie noch eine Aufgabe, um fortzufahren.",
    locked: "Zu viele falsche Antworten. Bitte warten Sie einige Minuten und versuchen Sie es erneut.",
    unavailable: "Aufgaben sind gerade nicht verfügbar. Bitte versuchen Sie es gleich noch einmal.",
};

static FR: Strings = Strings {
    title: "Veuillez confirmer que vous êtes une personne",
    intro: "Ce site vérifie que ses visiteurs sont des personnes et non des programmes automatisés. Répondez au défi ci-dessous pour accéder à la page demandée.",
    text_label: "Saisissez les caractères de l’image",
    text_hint: "Les majuscules et minuscules sont équivalentes.",
    audio_label: "Saisissez les chiffres que vous entendez",
    audio_hint: "Écoutez l’enregistrement ; il peut contenir du bruit de fond. Vous pouvez l’écouter autant de fois que vous voulez.",
    one_click_legend: "Choisissez l’image qui montre : {}",
    grid_legend: "Sélectionnez toutes les images qui montrent : {}",
    picture: "Image {} sur {}",
    image_alt: "Caractères déformés à saisir",
    verify: "Continuer",
    new_challenge: "Nouveau défi",
    audio_instead: "Écouter plutôt un défi audio",
    download_audio: "Télécharger l’enregistrement",
    expires: "Vous avez {} minutes pour répondre.",
    wrong_answer: "Ce n’était pas correct. Essayez ce nouveau défi.",
    expired: "Ce défi a expiré. Essayez ce nouveau défi.",
    used: "Ce défi a déjà reçu une réponse. Essayez ce nouveau défi.",
    unknown: "Ce défi est inconnu. Essayez ce nouveau défi.",
    ask_again: "Merci. Veuillez résoudre encore un défi pour continuer.",
    locked: "Trop de mauvaises réponses. Attendez quelques minutes puis réessayez.",
    unavailable: "Les défis ne sont pas disponibles pour le moment. Réessayez dans un instant.",
};

static ES: Strings = Strings {
    title: "Confirme que es una persona",
    intro: "Este sitio comprueba que sus visitantes son personas y no programas automáticos. Responda al desafío para continuar a la página que pidió.",
    text_label: "Escriba los caracteres de la imagen",
    text_hint: "No se distinguen mayúsculas de minúsculas.",
    audio_label: "Escriba los dígitos que oye",
    audio_hint: "Reproduzca la grabación; puede tener ruido de fondo. Puede reproducirla tantas veces como quiera.",
    one_click_legend: "Elija la imagen que muestra: {}",
    grid_legend: "Seleccione todas las imágenes que muestran: {}",
    picture: "Imagen {} de {}",
    image_alt: "Caracteres distorsionados para escribir",
    verify: "Continuar",
    new_challenge: "Nuevo desafío",
    audio_instead: "Escuchar un desafío de audio en su lugar",
    download_audio: "Descargar la grabación",
    expires: "Tiene {} minutos para responder.",
    wrong_answer: "No era correcto. Pruebe este nuevo desafío.",
    expired: "El desafío caducó. Pruebe este nuevo.",
    used: "Ese desafío ya se respondió. Pruebe este nuevo.",
    unknown: "Ese desafío no se conoce. Pruebe este nuevo.",
    ask_again: "Gracias. Resuelva un desafío más para continuar.",
    locked: "Demasiadas respuestas incorrectas. Espere unos minutos y vuelva a intentarlo.",
    unavailable: "Los desafíos no están disponibles ahora. Vuelva a intentarlo en un momento.",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_filled_in_order() {
        assert_eq!(
            fill(Strings::of(Lang::En).picture, &["2", "9"]),
            "Picture 2 of 9"
        );
        assert_eq!(fill("{} and {}", &["a"]), "a and ");
    }

    #[test]
    fn every_language_keeps_the_markers() {
        for lang in Lang::ALL {
            let s = Strings::of(lang);
            for (template, markers) in [
                (s.one_click_legend, 1),
                (s.grid_legend, 1),
                (s.picture, 2),
                (s.expires, 1),
                (s.title, 0),
            ] {
                assert_eq!(
                    template.matches("{}").count(),
                    markers,
                    "{lang:?}: {template}"
                );
            }
        }
    }
}
