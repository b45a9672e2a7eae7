//! This server's signing keys: generated or read from PKCS#8 PEM, they sign JWTs and publish
//! their public JWK, but never hand out the private key (Debug prints `<hidden>`).

use super::CryptoError;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use jsonwebtoken::jwk::{
    AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse, RSAKeyParameters, RSAKeyType,
    ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The algorithms this server signs with (SPEC §4: ES256 default, EdDSA and RS256 selectable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    ES256,
    EdDSA,
    RS256,
}

impl SigningAlgorithm {
    pub fn jwt_algorithm(self) -> Algorithm {
        match self {
            Self::ES256 => Algorithm::ES256,
            Self::EdDSA => Algorithm::EdDSA,
            Self::RS256 => Algorithm::RS256,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
        }
    }
}

impl std::str::FromStr for SigningAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ES256" => Ok(Self::ES256),
            "EdDSA" => Ok(Self::EdDSA),
            "RS256" => Ok(Self::RS256),
            other => Err(format!(
                "unsupported signing algorithm {other:?} (ES256, EdDSA, RS256)"
            )),
        }
    }
}

/// A private signing key with its RFC 7638 thumbprint as `kid`.
pub struct SigningKey {
    kid: String,
    alg: SigningAlgorithm,
    signer: Signer,
    pkcs8_der: Vec<u8>,
    public_jwk: Jwk,
    /// The encoded JOSE header prefix for each `typ`, made once.
    headers: std::sync::Mutex<Vec<(String, String)>>,
}

/// The parsed private key, kept so that signing does not re-parse PKCS#8 every time (which
/// costs as much as the signature itself).
enum Signer {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private", &"<hidden>")
            .finish()
    }
}

impl SigningKey {
    /// A fresh key for `alg`.
    pub fn generate(alg: SigningAlgorithm) -> Result<Self, CryptoError> {
        let rng = SystemRandom::new();
        let der = match alg {
            SigningAlgorithm::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| CryptoError::KeyGeneration)?
                    .as_ref()
                    .to_vec()
            }
            SigningAlgorithm::EdDSA => {
                let pair = Ed25519KeyPair::generate().map_err(|_| CryptoError::KeyGeneration)?;
                let der: Pkcs8V1Der<'static> =
                    pair.as_der().map_err(|_| CryptoError::KeyGeneration)?;
                der.as_ref().to_vec()
            }
            SigningAlgorithm::RS256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| CryptoError::KeyGeneration)?;
                let der: Pkcs8V1Der<'static> =
                    pair.as_der().map_err(|_| CryptoError::KeyGeneration)?;
                der.as_ref().to_vec()
            }
        };
        Self::from_pkcs8_der(alg, der)
    }

    /// Reads a PKCS#8 DER private key for `alg`.
    pub fn from_pkcs8_der(alg: SigningAlgorithm, der: Vec<u8>) -> Result<Self, CryptoError> {
        let invalid = |e: &dyn std::fmt::Display| CryptoError::InvalidKey(e.to_string());
        let (signer, mut public_jwk) = match alg {
            SigningAlgorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .map_err(|e| invalid(&e))?;
                let jwk =
                    Jwk::from_encoding_key(&EncodingKey::from_ec_der(&der), alg.jwt_algorithm())
                        .map_err(|e| invalid(&e))?;
                (Signer::Ecdsa(pair), jwk)
            }
            SigningAlgorithm::EdDSA => {
                let pair =
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| invalid(&e))?;
                let jwk =
                    Jwk::from_encoding_key(&EncodingKey::from_ed_der(&der), alg.jwt_algorithm())
                        .map_err(|e| invalid(&e))?;
                (Signer::Ed25519(pair), jwk)
            }
            SigningAlgorithm::RS256 => {
                // jsonwebtoken reads RSA keys as PKCS#1, so the public JWK is made from the
                // parsed key's modulus and exponent.
                use aws_lc_rs::signature::KeyPair;
                let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).map_err(|e| invalid(&e))?;
                let public = pair.public_key();
                let jwk = Jwk {
                    common: Default::default(),
                    algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
                        key_type: RSAKeyType::RSA,
                        n: super::digest::b64url(
                            public.modulus().big_endian_without_leading_zero(),
                        ),
                        e: super::digest::b64url(
                            public.exponent().big_endian_without_leading_zero(),
                        ),
                    }),
                };
                (Signer::Rsa(pair), jwk)
            }
        };
        let kid = public_jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| CryptoError::InvalidKey(e.to_string()))?;
        public_jwk.common.key_id = Some(kid.clone());
        public_jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        public_jwk.common.key_algorithm = Some(key_algorithm(alg));
        Ok(Self {
            kid,
            alg,
            signer,
            pkcs8_der: der,
            public_jwk,
            headers: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Reads a PKCS#8 PEM private key, detecting its algorithm.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, CryptoError> {
        let der = pem_body(pem, "PRIVATE KEY")
            .ok_or_else(|| CryptoError::InvalidKey("not a PKCS#8 PEM private key".into()))?;
        for alg in [
            SigningAlgorithm::ES256,
            SigningAlgorithm::EdDSA,
            SigningAlgorithm::RS256,
        ] {
            if let Ok(key) = Self::from_pkcs8_der(alg, der.clone()) {
                return Ok(key);
            }
        }
        Err(CryptoError::InvalidKey(
            "the key is neither P-256, Ed25519 nor RSA".into(),
        ))
    }

    /// The private key as PKCS#8 PEM, for the key store only.
    pub fn to_pkcs8_pem(&self) -> String {
        to_pem("PRIVATE KEY", &self.pkcs8_der)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        self.alg
    }

    /// The public JWK (`kid`, `use`, `alg`, and the public members only).
    pub fn public_jwk(&self) -> &Jwk {
        &self.public_jwk
    }

    /// Signs `claims` as a compact JWS (RFC 7515 §7.1) with header `typ`, `alg`, `kid`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, CryptoError> {
        let payload =
            serde_json::to_vec(claims).map_err(|e| CryptoError::Signing(e.to_string()))?;
        let mut jws = self.encoded_header(typ)?;
        jws.push('.');
        jws.push_str(&super::digest::b64url(&payload));
        let signature = self.sign_bytes(jws.as_bytes())?;
        jws.push('.');
        jws.push_str(&super::digest::b64url(&signature));
        Ok(jws)
    }

    fn encoded_header(&self, typ: &str) -> Result<String, CryptoError> {
        let mut cache = self
            .headers
            .lock()
            .map_err(|_| CryptoError::Signing("header cache poisoned".into()))?;
        if let Some((_, h)) = cache.iter().find(|(t, _)| t == typ) {
            return Ok(h.clone());
        }
        let mut header = Header::new(self.alg.jwt_algorithm());
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        let json = serde_json::to_vec(&header).map_err(|e| CryptoError::Signing(e.to_string()))?;
        let encoded = super::digest::b64url(&json);
        cache.push((typ.to_owned(), encoded.clone()));
        Ok(encoded)
    }

    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let failed = |_| CryptoError::Signing("the signature could not be made".into());
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Ecdsa(k) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(failed),
            Signer::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            Signer::Rsa(k) => {
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &rng,
                    message,
                    &mut out,
                )
                .map_err(failed)?;
                Ok(out)
            }
        }
    }
}

fn key_algorithm(alg: SigningAlgorithm) -> KeyAlgorithm {
    match alg {
        SigningAlgorithm::ES256 => KeyAlgorithm::ES256,
        SigningAlgorithm::EdDSA => KeyAlgorithm::EdDSA,
        SigningAlgorithm::RS256 => KeyAlgorithm::RS256,
    }
}

/// The DER bytes of the first PEM block labelled `label`.
pub fn pem_body(pem: &str, label: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

pub fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(SigningAlgorithm::ES256, "EC")]
    #[case(SigningAlgorithm::EdDSA, "OKP")]
    #[case(SigningAlgorithm::RS256, "RSA")]
    fn generated_keys_round_trip_through_pem(#[case] alg: SigningAlgorithm, #[case] kty: &str) {
        let key = SigningKey::generate(alg).unwrap();
        let again = SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem()).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.algorithm(), alg);
        let jwk = serde_json::to_value(key.public_jwk()).unwrap();
        assert_eq!(jwk["kty"], kty);
        assert_eq!(jwk["kid"], key.kid());
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(jwk.get(private).is_none(), "{private} leaked");
        }
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = SigningKey::generate(SigningAlgorithm::ES256).unwrap();
        let text = format!("{key:?}");
        assert!(text.contains("<hidden>"));
        assert!(!text.contains(&key.to_pkcs8_pem()));
    }

    #[rstest]
    #[case(SigningAlgorithm::ES256)]
    #[case(SigningAlgorithm::EdDSA)]
    #[case(SigningAlgorithm::RS256)]
    fn signed_tokens_verify_with_the_public_jwk(#[case] alg: SigningAlgorithm) {
        let key = SigningKey::generate(alg).unwrap();
        let token = key
            .sign("at+jwt", &serde_json::json!({"sub": "x"}))
            .unwrap();
        let dk = jsonwebtoken::DecodingKey::from_jwk(key.public_jwk()).unwrap();
        let mut v = jsonwebtoken::Validation::new(alg.jwt_algorithm());
        v.required_spec_claims.clear();
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &dk, &v).unwrap();
        assert_eq!(data.claims["sub"], "x");
        assert_eq!(data.header.kid.as_deref(), Some(key.kid()));
        assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
    }
}
