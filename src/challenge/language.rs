//! The languages challenges are offered in, chosen from `Accept-Language`.

/// A language with strings, image-category names and spoken digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    De,
    Fr,
    Es,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::En, Lang::De, Lang::Fr, Lang::Es];

    /// The BCP 47 primary tag (`en`), as pages and datasets name it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
            Lang::Es => "es",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(code))
    }

    /// The client's most preferred language we have (RFC 9110 §12.5.4:
    /// `de-CH, fr;q=0.8, *;q=0.1`), English when none is offered. Ties keep
    /// the client's order; malformed entries are skipped.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(u16, Lang)> = None;
        for entry in header.split(',').take(32) {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let primary = tag.split('-').next().unwrap_or("");
            let Some(lang) = Lang::from_code(primary) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1000), parse_qvalue);
            let Some(q) = q.filter(|&q| q > 0) else {
                continue;
            };
            if best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }
}

/// A qvalue (`0.8`, `1`, `0.125`) in thousandths; `None` if malformed.
fn parse_qvalue(text: &str) -> Option<u16> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value = format!("{frac:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preferred_offered_language_wins() {
        assert_eq!(Lang::from_accept_language(""), Lang::En);
        assert_eq!(
            Lang::from_accept_language("de-CH,de;q=0.9,en;q=0.8"),
            Lang::De
        );
        assert_eq!(
            Lang::from_accept_language("ja, fr;q=0.5, es;q=0.7"),
            Lang::Es
        );
        assert_eq!(Lang::from_accept_language("FR-ca"), Lang::Fr);
        assert_eq!(Lang::from_accept_language("es;q=0, de;q=0.1"), Lang::De);
        assert_eq!(Lang::from_accept_language("zh, *;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept_language("de;q=2, fr;q=abc, es"), Lang::Es);
        assert_eq!(Lang::from_accept_language("en;q=0.5, de;q=0.5"), Lang::En);
    }
}
