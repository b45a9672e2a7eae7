//! Encryption at rest for private keys kept in the database: AES-256-GCM under a
//! key-encryption key (KEK), a fresh random nonce per value, and the key id as associated data
//! so a ciphertext cannot be moved to another row.

use super::CryptoError;
use super::digest::random_bytes;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The key-encryption key. `Debug` never shows it.
pub struct Kek(LessSafeKey);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<hidden>)")
    }
}

impl Kek {
    /// 32 bytes, base64 (standard alphabet), surrounding whitespace ignored.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::InvalidKey("the key-encryption key is not base64".into()))?;
        if bytes.len() != 32 {
            return Err(CryptoError::InvalidKey(format!(
                "the key-encryption key must be 32 bytes, not {}",
                bytes.len()
            )));
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| CryptoError::KeyGeneration)?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plaintext: &[u8], associated: &str) -> Result<String, CryptoError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(associated.as_bytes()),
                &mut buf,
            )
            .map_err(|_| CryptoError::Signing("sealing failed".into()))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Ok(STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str, associated: &str) -> Result<Vec<u8>, CryptoError> {
        let wrong = || {
            CryptoError::InvalidKey(
                "a stored private key cannot be decrypted with this key-encryption key".into(),
            )
        };
        let bytes = STANDARD.decode(sealed).map_err(|_| wrong())?;
        if bytes.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut buf = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(associated.as_bytes()), &mut buf)
            .map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> Kek {
        Kek::from_base64(&STANDARD.encode([7u8; 32])).unwrap()
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_label() {
        let k = kek();
        let sealed = k.seal(b"secret pem", "kid-1").unwrap();
        assert_eq!(k.open(&sealed, "kid-1").unwrap(), b"secret pem");
        assert!(k.open(&sealed, "kid-2").is_err());
        let other = Kek::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert!(other.open(&sealed, "kid-1").is_err());
        assert!(!sealed.contains("secret"));
    }

    #[test]
    fn a_short_key_is_refused() {
        assert!(Kek::from_base64(&STANDARD.encode([1u8; 16])).is_err());
        assert!(Kek::from_base64("not base64!").is_err());
    }
}
