//! Small value types with a friendlier written form than serde's default.

use super::Duration;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// One pattern or a list of them: `path: /api/*` or `path: [/a/*, /b/*]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patterns(pub Vec<String>);

impl<'de> Deserialize<'de> for Patterns {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PatternsVisitor;
        impl<'de> Visitor<'de> for PatternsVisitor {
            type Value = Patterns;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Patterns, E> {
                Ok(Patterns(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Patterns, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(Patterns(items))
            }
        }
        deserializer.deserialize_any(PatternsVisitor)
    }
}

impl Duration {
    /// Parses `90`, `90s`, `15m`, `1h`, `7d`, `2w` into seconds.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a duration (examples: 90s, 15m, 1h, 7d, 2w)"))?;
        let scale = match unit.trim() {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            "w" => 604800,
            other => {
                return Err(format!(
                    "`{text}`: unknown unit `{other}` (use s, m, h, d or w)"
                ))
            }
        };
        number
            .checked_mul(scale)
            .map(Duration)
            .ok_or_else(|| format!("`{text}` is too long"))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s != 0 && s.is_multiple_of(86400) {
            write!(f, "{}d", s / 86400)
        } else if s != 0 && s.is_multiple_of(3600) {
            write!(f, "{}h", s / 3600)
        } else if s != 0 && s.is_multiple_of(60) {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("seconds, or a duration such as 30s, 15m, 1h, 7d")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(Duration)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(Duration::parse("90").unwrap(), Duration(90));
        assert_eq!(Duration::parse("15m").unwrap(), Duration(900));
        assert_eq!(Duration::parse("1h").unwrap(), Duration(3600));
        assert_eq!(Duration::parse("7d").unwrap(), Duration(604800));
        assert_eq!(Duration::parse("2w").unwrap(), Duration(1_209_600));
        assert!(Duration::parse("1y").unwrap_err().contains("unknown unit"));
        assert!(Duration::parse("h").unwrap_err().contains("not a duration"));
        assert_eq!(Duration(3600).to_string(), "1h");
        assert_eq!(Duration(61).to_string(), "61s");
    }

    #[test]
    fn patterns_accept_one_or_many() {
        let one: Patterns = serde_json::from_str("\"/a/*\"").unwrap();
        assert_eq!(one.0, vec!["/a/*"]);
        let many: Patterns = serde_json::from_str("[\"/a\", \"/b\"]").unwrap();
        assert_eq!(many.0, vec!["/a", "/b"]);
        assert!(serde_json::from_str::<Patterns>("3").is_err());
    }
}
