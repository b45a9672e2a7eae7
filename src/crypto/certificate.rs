//! X.509 certificates registered for private_key_jwt: their validity period and thumbprints.

use super::CryptoError;
use super::signing_key::pem_body;
use time::OffsetDateTime;

/// The size in bits of a certificate's RSA key; `None` for other keys.
pub fn rsa_key_bits(pem: &str) -> Result<Option<usize>, CryptoError> {
    let der = pem_body(pem, "CERTIFICATE")
        .ok_or_else(|| CryptoError::InvalidKey("not a PEM certificate".into()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| CryptoError::InvalidKey(format!("the certificate cannot be read: {e}")))?;
    Ok(match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => Some(rsa.key_size()),
        _ => None,
    })
}

/// A certificate's `notBefore` and `notAfter`.
pub fn validity(pem: &str) -> Result<(OffsetDateTime, OffsetDateTime), CryptoError> {
    let der = pem_body(pem, "CERTIFICATE")
        .ok_or_else(|| CryptoError::InvalidKey("not a PEM certificate".into()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| CryptoError::InvalidKey(format!("the certificate cannot be read: {e}")))?;
    let v = cert.validity();
    Ok((v.not_before.to_datetime(), v.not_after.to_datetime()))
}
