//! What counts as a correct answer to a text challenge: case and spaces do
//! not matter, and a few typos may be forgiven (an edit distance).

/// The edit distance forgiven by default: one typo in answers of six or
/// more characters, none in shorter ones (where one typo is a large share
/// of the answer, and of the guessing space).
pub fn default_tolerance(answer_len: usize) -> u8 {
    if answer_len >= 6 {
        1
    } else {
        0
    }
}

/// Whether `given` is accepted for `answer`: compared case-insensitively,
/// ignoring whitespace, and accepted within a Levenshtein distance of
/// `tolerance`. An empty answer accepts nothing.
pub fn matches(answer: &str, given: &str, tolerance: u8) -> bool {
    let answer = normalise(answer);
    let given = normalise(given);
    if answer.is_empty() {
        return false;
    }
    let tolerance = usize::from(tolerance);
    // Lengths further apart than the tolerance can never be within it; this
    // also bounds the work spent on an over-long input.
    if given.len().abs_diff(answer.len()) > tolerance {
        return false;
    }
    edit_distance(&answer, &given) <= tolerance
}

/// Upper-cased characters without whitespace.
fn normalise(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// Levenshtein distance (insertions, deletions and substitutions), with one
/// row of the table kept at a time.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_spaces_do_not_matter() {
        assert!(matches("KXR7", "kxr7", 0));
        assert!(matches("KXR7", " K x R 7 ", 0));
        assert!(matches("KXR7", "k\tx\nr7", 0));
        assert!(!matches("KXR7", "KXR9", 0));
    }

    #[test]
    fn the_tolerance_is_an_edit_distance() {
        // One substitution, deletion, insertion each.
        assert!(matches("ABCDEF", "ABCXEF", 1));
        assert!(matches("ABCDEF", "ABCEF", 1));
        assert!(matches("ABCDEF", "ABCDDEF", 1));
        // Two edits are too many for 1, enough for 2.
        assert!(!matches("ABCDEF", "AXCDEY", 1));
        assert!(matches("ABCDEF", "AXCDEY", 2));
        // A transposition is two edits in Levenshtein's distance.
        assert!(!matches("ABCDEF", "BACDEF", 1));
        assert_eq!(
            edit_distance(&normalise("kitten"), &normalise("sitting")),
            3
        );
    }

    #[test]
    fn empty_and_over_long_inputs_fail() {
        assert!(!matches("ABCD", "", 0));
        assert!(!matches("ABCD", "   ", 3));
        assert!(!matches("", "", 0));
        assert!(!matches("ABCDEF", "ABCDEFGH", 1));
        assert!(!matches("ABCDEF", &"A".repeat(100_000), 1));
        assert!(!matches("ABCD", "ÄBCD", 0));
    }

    #[test]
    fn the_default_tolerance_starts_at_six_characters() {
        assert_eq!(default_tolerance(4), 0);
        assert_eq!(default_tolerance(5), 0);
        assert_eq!(default_tolerance(6), 1);
        assert_eq!(default_tolerance(8), 1);
    }
}
