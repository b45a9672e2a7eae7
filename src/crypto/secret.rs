//! Client secrets: generation (256 bits, URL-safe), argon2id hashing and verification.

use super::CryptoError;
use super::digest::{b64url, random_bytes};
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use secrecy::{ExposeSecret, SecretString};

/// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
fn hasher() -> Result<Argon2<'static>, CryptoError> {
    let params =
        Params::new(19 * 1024, 2, 1, None).map_err(|e| CryptoError::Hashing(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A new client secret: 32 random bytes, base64url (43 characters).
pub fn generate_secret() -> SecretString {
    SecretString::from(b64url(&random_bytes::<32>()))
}

/// The first characters of a secret, shown in listings so people can tell secrets apart.
pub fn hint(secret: &str) -> String {
    secret.chars().take(3).collect()
}

/// An argon2id PHC string. CPU-heavy: call it off the async threads.
pub fn hash_secret(secret: &SecretString) -> Result<String, CryptoError> {
    let salt = random_bytes::<16>();
    let hash = hasher()?
        .hash_password_with_salt(secret.expose_secret().as_bytes(), &salt)
        .map_err(|e| CryptoError::Hashing(e.to_string()))?;
    Ok(hash.to_string())
}

/// Checks a secret against its PHC string. CPU-heavy: call it off the async threads.
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    match hasher() {
        Ok(h) => h.verify_password(secret.as_bytes(), phc).is_ok(),
        Err(_) => false,
    }
}

/// A hash of no secret, checked for unknown clients so that timing does not reveal them.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$o2Kq0s9K0mHcQ2sY0BqfRdDMkEHj9v1E3Y8QmQxk0b8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_long_and_url_safe() {
        let s = generate_secret();
        let s = s.expose_secret();
        assert_eq!(s.len(), 43);
        assert!(
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn hash_verifies_only_the_right_secret() {
        let s = generate_secret();
        let h = hash_secret(&s).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_secret(s.expose_secret(), &h));
        assert!(!verify_secret("wrong", &h));
    }

    #[test]
    fn dummy_hash_parses_and_matches_nothing() {
        assert!(!verify_secret("anything", DUMMY_HASH));
    }
}
