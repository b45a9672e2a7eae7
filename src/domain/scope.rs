//! Scope strings (RFC 6749 §3.3): space-delimited, order-free sets.

use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// Parses a space-delimited scope string. RFC 6749 §3.3 allows %x21 / %x23-5B / %x5D-7E.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for token in text.split(' ').filter(|t| !t.is_empty()) {
            if !token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return Err(format!(
                    "scope {token:?} has characters RFC 6749 §3.3 forbids"
                ));
            }
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }

    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }

    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn difference(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }

    /// The RFC 6749 space-delimited form.
    pub fn joined(&self) -> String {
        self.0.iter().cloned().collect::<Vec<_>>().join(" ")
    }
}

impl<S: Into<String>> FromIterator<S> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = S>>(items: I) -> Self {
        Self(items.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("a b  c", 3)]
    #[case("", 0)]
    #[case("api://x/.default", 1)]
    fn parses(#[case] text: &str, #[case] n: usize) {
        assert_eq!(ScopeSet::parse(text).unwrap().iter().count(), n);
    }

    #[rstest]
    #[case("a\"b")]
    #[case("a\\b")]
    #[case("caf\u{e9}")]
    fn refuses_forbidden_characters(#[case] text: &str) {
        assert!(ScopeSet::parse(text).is_err());
    }
}
