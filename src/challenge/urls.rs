//! The companion's public URLs, all under the challenge prefix
//! (`challenge.path_prefix`, default `/.palisade/`).

use crate::config::ChallengeKind;
use crate::policy::percent_encode;

/// Builds the URLs a page or JSON answer links to.
#[derive(Debug, Clone, Copy)]
pub struct Urls<'a> {
    pub prefix: &'a str,
}

impl Urls<'_> {
    /// A new challenge of `kind` (the page, or JSON when asked).
    pub fn challenge(&self, kind: ChallengeKind, difficulty: u8, return_path: &str) -> String {
        format!(
            "{}challenge?kind={}&difficulty={}&return={}",
            self.prefix,
            kind.as_str(),
            difficulty,
            percent_encode(return_path)
        )
    }

    pub fn image(&self, id: &str) -> String {
        format!("{}challenge/{id}/image", self.prefix)
    }

    pub fn tile(&self, id: &str, n: usize) -> String {
        format!("{}challenge/{id}/tile/{n}", self.prefix)
    }

    pub fn audio(&self, id: &str) -> String {
        format!("{}challenge/{id}/audio", self.prefix)
    }

    /// Where answers to stored challenges are posted.
    pub fn verify(&self, id: &str) -> String {
        format!("{}challenge/{id}/verify", self.prefix)
    }

    /// Where proof-of-work solutions are posted (the filter's endpoint too).
    pub fn pow_verify(&self) -> String {
        format!("{}verify", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::percent_decode;

    #[test]
    fn return_paths_survive_the_round_trip() {
        for path in ["/a?b=c&d=e#f", "/ü/\"<x>", "/a%2Fb", "/ +"] {
            assert_eq!(percent_decode(&percent_encode(path)), path);
            assert!(!percent_encode(path).contains(['&', '"', '<', '#', '?']));
        }
        let urls = Urls {
            prefix: "/.palisade/",
        };
        assert_eq!(
            urls.challenge(ChallengeKind::OneClick, 3, "/x?y=1"),
            "/.palisade/challenge?kind=one_click&difficulty=3&return=/x%3Fy%3D1"
        );
    }
}
