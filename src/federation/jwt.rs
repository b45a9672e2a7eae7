//! Verifying JWTs signed by keys that are not ours: client assertions (RFC 7523) and subject
//! tokens. Asymmetric algorithms only (RFC 8725 §3.1): never `none`, never HMAC.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use serde_json::{Map, Value};

/// The algorithms accepted from others.
pub const ALLOWED_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];

pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::RS256 => "RS256",
        Algorithm::PS256 => "PS256",
        _ => "other",
    }
}

/// The header of a JWT, refusing algorithms outside the allow-list and any `crit` extension.
/// `alg: none` does not even parse as a header here.
pub fn checked_header(token: &str) -> Result<Header, String> {
    let unreadable = || "the JWT header is unreadable or its alg is not allowed".to_owned();
    // Decoded here rather than by jsonwebtoken, which refuses base64url padding in a segment
    // (azure-identity's async client pads).
    let part = token.split('.').next().ok_or_else(unreadable)?;
    let bytes = crate::crypto::digest::b64url_decode(part).ok_or_else(unreadable)?;
    let members: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| unreadable())?;
    // RFC 7515 §4.1.11: a JWS whose `crit` names an extension the recipient does not
    // understand is invalid, and this server understands none (`b64: false` among them).
    if members.contains_key("crit") {
        return Err("the JWT header lists crit extensions, and none is supported".to_owned());
    }
    let header: Header =
        serde_json::from_value(Value::Object(members)).map_err(|_| unreadable())?;
    if !ALLOWED_ALGORITHMS.contains(&header.alg) {
        return Err(format!(
            "alg {:?} is not allowed (ES256, ES384, EdDSA, RS256, PS256)",
            header.alg
        ));
    }
    Ok(header)
}

/// The claims, unverified: only to find out who claims to have signed.
pub fn unverified_claims(token: &str) -> Result<Map<String, Value>, String> {
    let part = token.split('.').nth(1).ok_or("not a compact JWS")?;
    let bytes =
        crate::crypto::digest::b64url_decode(part).ok_or("the JWT payload is not base64url")?;
    serde_json::from_slice(&bytes).map_err(|_| "the JWT payload is not a JSON object".to_owned())
}

/// Whether a key can verify `alg` at all.
pub fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::PS256) => true,
        _ => false,
    }
}

/// Checks the signature with `key`; returns the claims. Time claims are checked separately.
pub fn verify_signature(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
) -> Option<Map<String, Value>> {
    // The signature covers the first two segments exactly as sent; padding (which some clients
    // add) is only stripped to decode the signature and the payload.
    let (message, signature) = token.rsplit_once('.')?;
    let mut parts = message.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let valid = jsonwebtoken::crypto::verify(
        signature.trim_end_matches('='),
        message.as_bytes(),
        key,
        alg,
    )
    .ok()?;
    if !valid {
        return None;
    }
    let bytes = crate::crypto::digest::b64url_decode(payload)?;
    serde_json::from_slice(&bytes).ok()
}

/// Tries the keys of a set: the one named by `kid`, or, without a `kid`, every key that fits.
pub fn verify_with_set(token: &str, header: &Header, set: &JwkSet) -> Option<Map<String, Value>> {
    let candidates: Vec<&Jwk> = match &header.kid {
        Some(kid) => set
            .keys
            .iter()
            .filter(|k| k.common.key_id.as_deref() == Some(kid))
            .collect(),
        None => set.keys.iter().collect(),
    };
    candidates
        .into_iter()
        .filter(|k| key_fits(k, header.alg))
        .filter_map(|k| DecodingKey::from_jwk(k).ok())
        .find_map(|dk| verify_signature(token, &dk, header.alg))
}

/// A NumericDate, integer or fractional (RFC 7519 §2; azure-identity sends floats).
pub fn numeric_date(claims: &Map<String, Value>, name: &str) -> Option<f64> {
    claims.get(name).and_then(Value::as_f64)
}

/// `aud` as a list, whether a string or an array.
pub fn audiences(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Checks `exp` (required), `nbf` and `iat` against `now`, allowing `leeway` seconds of skew.
pub fn check_times(claims: &Map<String, Value>, now: i64, leeway: i64) -> Result<f64, String> {
    let exp = numeric_date(claims, "exp").ok_or("the JWT has no exp")?;
    if exp <= (now - leeway) as f64 {
        return Err("the JWT has expired".into());
    }
    if numeric_date(claims, "nbf").is_some_and(|nbf| nbf > (now + leeway) as f64) {
        return Err("the JWT is not valid yet (nbf)".into());
    }
    if numeric_date(claims, "iat").is_some_and(|iat| iat > (now + leeway) as f64) {
        return Err("the JWT was issued in the future (iat)".into());
    }
    Ok(exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crit_extensions_are_refused() {
        // {"alg":"ES256","crit":["exp"],"exp":1}: an extension this server does not understand.
        assert!(
            checked_header("eyJhbGciOiJFUzI1NiIsImNyaXQiOlsiZXhwIl0sImV4cCI6MX0.e30.c2ln").is_err()
        );
        // {"alg":"ES256"}
        assert!(checked_header("eyJhbGciOiJFUzI1NiJ9.e30.c2ln").is_ok());
    }

    #[test]
    fn none_and_hmac_are_refused() {
        // {"alg":"none"} and {"alg":"HS256"}
        assert!(checked_header("eyJhbGciOiJub25lIn0.e30.").is_err());
        assert!(checked_header("eyJhbGciOiJIUzI1NiJ9.e30.c2ln").is_err());
    }

    #[test]
    fn fractional_dates_are_read() {
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"exp": 2000000000.5, "iat": 1000.25}"#).unwrap();
        assert_eq!(
            check_times(&claims, 1_900_000_000, 0).unwrap(),
            2000000000.5
        );
    }
}
