//! Keys, JWS signing and verification, client secrets. Depends on nothing else in the crate.

pub mod certificate;
pub mod digest;
pub mod seal;
pub mod secret;
pub mod signing_key;

pub use signing_key::{SigningAlgorithm, SigningKey};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("key generation failed")]
    KeyGeneration,
    #[error("the key cannot be read: {0}")]
    InvalidKey(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}
