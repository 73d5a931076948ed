//! A name the manager has no circuit for, and the name that was likely meant.

use std::error::Error;
use std::fmt;

use crate::name::shown_name;

/// A name no circuit has, with the nearest name that one has, if any is
/// near: a misspelled name at a call site is refused with a suggestion
/// instead of quietly becoming a new circuit with the default config.
///
/// ```
/// use vibezen_recovery::manager::UnknownCircuit;
///
/// let unknown = UnknownCircuit::among("serch", ["cache", "search"]);
/// assert_eq!(unknown.nearest(), Some("search"));
/// assert_eq!(
///     unknown.to_string(),
///     "no circuit named \"serch\" (did you mean \"search\"?): \
///      set it up first (a circuits file, presets or GetBreaker), or check the spelling"
/// );
/// assert_eq!(UnknownCircuit::among("billing", ["cache", "search"]).nearest(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCircuit {
    name: String,
    nearest: Option<String>,
}

impl UnknownCircuit {
    /// `name`, unknown among the `known` names; the nearest of them is the
    /// one with the fewest single-character edits from `name`, if that is
    /// at most a third of `name`'s length, rounded up. Ties go to the first
    /// in `known`.
    pub fn among<'a>(name: impl Into<String>, known: impl IntoIterator<Item = &'a str>) -> Self {
        let name = name.into();
        let allowed = name.chars().count().div_ceil(3).max(1);
        let mut nearest: Option<(usize, &str)> = None;
        for candidate in known {
            let limit = nearest.map_or(allowed, |(best, _)| best - 1);
            if let Some(edits) = edits_within(&name, candidate, limit) {
                nearest = Some((edits, candidate));
                if edits == 0 {
                    break;
                }
            }
        }
        UnknownCircuit {
            nearest: nearest.map(|(_, candidate)| candidate.to_owned()),
            name,
        }
    }

    /// The name that was asked for.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The known name nearest to it, if one is near.
    pub fn nearest(&self) -> Option<&str> {
        self.nearest.as_deref()
    }
}

impl fmt::Display for UnknownCircuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no circuit named \"{}\"", shown_name(&self.name))?;
        if let Some(nearest) = &self.nearest {
            write!(f, " (did you mean \"{}\"?)", shown_name(nearest))?;
        }
        f.write_str(
            ": set it up first (a circuits file, presets or GetBreaker), or check the spelling",
        )
    }
}

impl Error for UnknownCircuit {}

/// The Levenshtein distance between `a` and `b` if it is at most `limit`.
/// Strings whose lengths alone differ by more are skipped without work, so
/// that a long name against many circuits stays cheap.
fn edits_within(a: &str, b: &str, limit: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    // One row of the edit table at a time: `row[j]` is the distance between
    // the prefix of `a` read so far and the first `j` characters of `b`.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &from) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &to) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(from != to);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
        if row.iter().min().is_some_and(|&least| least > limit) {
            return None;
        }
    }
    Some(row[b.len()]).filter(|&edits| edits <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_are_counted_one_character_at_a_time() {
        assert_eq!(edits_within("search", "search", 3), Some(0));
        assert_eq!(edits_within("serch", "search", 3), Some(1));
        assert_eq!(edits_within("kitten", "sitting", 3), Some(3));
        assert_eq!(edits_within("kitten", "sitting", 2), None);
        assert_eq!(edits_within("", "abc", 3), Some(3));
        assert_eq!(edits_within("検索", "検査", 1), Some(1));
        assert_eq!(
            edits_within("a", "abcdef", 2),
            None,
            "lengths too far apart"
        );
    }

    #[test]
    fn the_nearest_name_wins_and_far_names_are_not_suggested() {
        let known = ["ai_provider_google", "ai_provider_openai", "cache"];
        let unknown = UnknownCircuit::among("ai_provider_opnai", known);
        assert_eq!(unknown.nearest(), Some("ai_provider_openai"));
        assert_eq!(
            UnknownCircuit::among("cash", known).nearest(),
            Some("cache")
        );
        assert_eq!(UnknownCircuit::among("db", known).nearest(), None);
        assert_eq!(
            UnknownCircuit::among("x", std::iter::empty()).nearest(),
            None
        );
    }
}
