//! Human challenges: what is asked, what counts as an answer, and what a
//! pass token records about it.
//!
//! One module per kind. [`pow`] needs no state and no assets, so the filter
//! serves it too; the others are rendered by the companion service
//! (`palisade serve`) from the datasets, with their context kept in a
//! [`store`] under an unguessable id ([`context`]).
//!
//! Difficulty runs from 1 (easiest) to 5 for every kind; each kind's module
//! documents what a level means for it (`docs/challenges.md` has the table).

pub mod pow;
pub mod urls;

// The companion's kinds, their state and their pages: native only.
#[cfg(not(target_arch = "wasm32"))]
pub mod audio;
#[cfg(not(target_arch = "wasm32"))]
pub mod chart;
#[cfg(not(target_arch = "wasm32"))]
pub mod context;
#[cfg(not(target_arch = "wasm32"))]
pub mod hints;
#[cfg(not(target_arch = "wasm32"))]
mod language;
#[cfg(not(target_arch = "wasm32"))]
pub mod pages;
#[cfg(not(target_arch = "wasm32"))]
pub mod pictures;
#[cfg(not(target_arch = "wasm32"))]
pub mod providers;
#[cfg(not(target_arch = "wasm32"))]
pub mod second_look;
#[cfg(not(target_arch = "wasm32"))]
pub mod service;
#[cfg(not(target_arch = "wasm32"))]
pub mod store;
#[cfg(not(target_arch = "wasm32"))]
pub mod strings;
#[cfg(not(target_arch = "wasm32"))]
pub mod text;

#[cfg(not(target_arch = "wasm32"))]
pub use language::Lang;

pub use pow::{
    difficulty_bits, issue_ticket, leading_zero_bits, page, safe_return_path, solve,
    verify_solution, ChallengeError, Ticket,
};

use crate::config::ChallengeKind;

/// What a client passed: recorded in its pass token, so a route asking for
/// difficulty 4 does not accept a difficulty-2 pass. Any kind satisfies any
/// other of at least its difficulty: audio is the accessible alternative to
/// every visual kind, so it must count for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Passed {
    pub kind: ChallengeKind,
    /// 1 to 5.
    pub difficulty: u8,
}

impl Passed {
    pub fn new(kind: ChallengeKind, difficulty: u8) -> Passed {
        Passed { kind, difficulty }
    }

    /// A proof of work passed at `difficulty`.
    pub fn pow(difficulty: u8) -> Passed {
        Passed::new(ChallengeKind::Pow, difficulty)
    }

    /// The token's level byte: the difficulty in the low nibble, the kind's
    /// code in the high one (`pow` is 0, so tokens from before kinds existed
    /// read as proof of work).
    pub fn level_byte(self) -> u8 {
        (kind_code(self.kind) << 4) | (self.difficulty & 0x0f)
    }

    /// Reads a level byte; `None` for a kind code no version issues.
    pub fn from_level_byte(level: u8) -> Option<Passed> {
        let kind = ChallengeKind::ALL
            .into_iter()
            .find(|&k| kind_code(k) == level >> 4)?;
        Some(Passed::new(kind, level & 0x0f))
    }

    /// Whether this pass is enough for a challenge at `difficulty`.
    pub fn satisfies(self, difficulty: u8) -> bool {
        self.difficulty >= difficulty
    }
}

/// A dataset file or directory that cannot be used: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct DatasetError {
    pub path: String,
    pub reason: String,
}

impl DatasetError {
    pub fn new(path: impl std::fmt::Display, reason: impl Into<String>) -> DatasetError {
        DatasetError {
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}

fn kind_code(kind: ChallengeKind) -> u8 {
    match kind {
        ChallengeKind::Pow => 0,
        ChallengeKind::Text => 1,
        ChallengeKind::OneClick => 2,
        ChallengeKind::Grid => 3,
        ChallengeKind::Audio => 4,
        ChallengeKind::Chart => 5,
        ChallengeKind::Turnstile => 6,
        ChallengeKind::Hcaptcha => 7,
        ChallengeKind::RecaptchaV2 => 8,
        ChallengeKind::RecaptchaV3 => 9,
        ChallengeKind::FriendlyCaptcha => 10,
        ChallengeKind::Altcha => 11,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_bytes_round_trip_and_old_tokens_read_as_pow() {
        for kind in ChallengeKind::ALL {
            for d in 1..=5 {
                let p = Passed::new(kind, d);
                assert_eq!(Passed::from_level_byte(p.level_byte()), Some(p));
            }
        }
        assert_eq!(Passed::from_level_byte(3), Some(Passed::pow(3)));
        assert_eq!(Passed::from_level_byte(0xf3), None);
    }
}
