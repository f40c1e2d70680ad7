//! A learned score as hosts hand it to the policy engine.

use super::features::REQUEST;

/// No feature in a [`TopFeatures`] slot.
const NONE: u8 = u8::MAX;

/// A client's learned score and what drove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scored {
    /// 0 (surely human) to 100 (surely bot).
    pub points: u8,
    pub top: TopFeatures,
}

/// Up to three features of the [`REQUEST`] schema, most important first,
/// as indices: small enough to live in the filter's per-client slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopFeatures(pub [u8; 3]);

impl Default for TopFeatures {
    fn default() -> TopFeatures {
        TopFeatures([NONE; 3])
    }
}

impl TopFeatures {
    /// From feature names (unknown names are skipped).
    pub fn of<'a>(names: impl IntoIterator<Item = &'a str>) -> TopFeatures {
        let mut top = TopFeatures::default();
        let known = names
            .into_iter()
            .filter_map(|name| REQUEST.names().position(|n| n == name));
        for (slot, index) in top.0.iter_mut().zip(known) {
            *slot = index as u8;
        }
        top
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0
            .iter()
            .take_while(|&&i| i != NONE)
            .filter_map(|&i| REQUEST.names().nth(usize::from(i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_features_keep_known_names_in_order() {
        let top = TopFeatures::of(["timing_cv", "no_such_feature", "rate_short", "history"]);
        assert_eq!(
            top.names().collect::<Vec<_>>(),
            ["timing_cv", "rate_short", "history"]
        );
        assert_eq!(TopFeatures::default().names().count(), 0);
    }
}
