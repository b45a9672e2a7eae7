//! The form parameters of the token, introspection and revocation endpoints.

use super::error::OAuthError;
use std::collections::HashMap;

/// Form parameters, each at most once (RFC 6749 §3.2, §3.1: "Request and response parameters
/// MUST NOT be included more than once"). Empty values count as absent (§3.1).
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            if k.is_empty() {
                continue;
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k} is given more than once"
                )));
            }
        }
        Ok(Self(map))
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter {name} is required")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_parameter_is_refused() {
        let e = Params::parse(b"grant_type=a&grant_type=a").unwrap_err();
        assert_eq!(e.code, super::super::error::ErrorCode::InvalidRequest);
    }

    #[test]
    fn empty_values_are_absent_and_escapes_decode() {
        let p = Params::parse(b"scope=&client_id=a%2Bb+c").unwrap();
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("client_id"), Some("a+b c"));
    }
}
