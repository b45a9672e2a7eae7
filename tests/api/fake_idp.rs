//! A fake external IdP inside the tests: key pairs (P-256, RSA), a JWKS and discovery document
//! served on 127.0.0.1 with request counters, and JWTs minted per case with arbitrary header and
//! claims (`alg: none`, HMAC keyed with a public key, fractional NumericDates). Also the agent
//! side: registering keys and certificates on an agent, and minting RFC 7523 client assertions.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure is the report

use crate::support::TestServer;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Unix seconds now.
pub fn now() -> i64 {
    now_f64() as i64
}

pub fn now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

pub fn new_jti() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A compact JWS over exactly these header and claims JSON objects.
pub fn sign_jwt(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).expect("sign");
    format!("{input}.{sig}")
}

/// An unsecured JWT (`alg: none`, empty signature), built by hand.
pub fn unsigned_jwt(claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT"});
    format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// A signing key with its public JWK.
pub struct TestKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// The public key: the uncompressed point (EC) or the SPKI DER (RSA).
    public_bytes: Vec<u8>,
    public_jwk: Value,
    pkcs8: Vec<u8>,
}

impl TestKey {
    /// A P-256 key for ES256.
    pub fn ec(kid: Option<&str>) -> Self {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generate P-256");
        let pkcs8 = doc.as_ref().to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .expect("parse P-256");
        let point = pair.public_key().as_ref().to_vec();
        assert_eq!(point.len(), 65, "uncompressed P-256 point");
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "x": b64(&point[1..33]), "y": b64(&point[33..]),
        });
        Self::finish(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(&pkcs8),
            point,
            jwk,
            pkcs8,
        )
    }

    /// A 2048-bit RSA key for RS256 or PS256.
    pub fn rsa(kid: Option<&str>, alg: Algorithm) -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .expect("generate RSA");
        let pkcs8 = pair.as_der().expect("PKCS#8").as_ref().to_vec();
        let public = pair.public_key();
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": alg_name(alg),
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        });
        let spki = public.as_der().expect("SPKI").as_ref().to_vec();
        let encoding = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", &pkcs8).as_bytes())
            .expect("RSA encoding key");
        Self::finish(kid, alg, encoding, spki, jwk, pkcs8)
    }

    fn finish(
        kid: Option<&str>,
        alg: Algorithm,
        encoding: EncodingKey,
        public_bytes: Vec<u8>,
        mut public_jwk: Value,
        pkcs8: Vec<u8>,
    ) -> Self {
        if let Some(k) = kid {
            public_jwk["kid"] = json!(k);
        }
        Self {
            kid: kid.map(str::to_owned),
            alg,
            encoding,
            public_bytes,
            public_jwk,
            pkcs8,
        }
    }

    /// The public JWK (with `kid` when the key has one).
    pub fn jwk(&self) -> Value {
        self.public_jwk.clone()
    }

    /// The default header: `alg`, `typ: JWT`, and `kid` when the key has one.
    pub fn header(&self) -> Value {
        let mut h = json!({"alg": alg_name(self.alg), "typ": "JWT"});
        if let Some(k) = &self.kid {
            h["kid"] = json!(k);
        }
        h
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&self.header(), claims)
    }

    /// Signs with exactly this header (the caller picks `alg`, `kid`, `x5t`, …).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        sign_jwt(header, claims, &self.encoding, self.alg)
    }

    /// HS256 keyed with the public key's bytes: the algorithm-confusion attack.
    pub fn hs256_with_public_key(&self, claims: &Value) -> String {
        let mut header = json!({"alg": "HS256", "typ": "JWT"});
        if let Some(k) = &self.kid {
            header["kid"] = json!(k);
        }
        let key = EncodingKey::from_secret(&self.public_bytes);
        sign_jwt(&header, claims, &key, Algorithm::HS256)
    }

    /// A self-signed X.509 certificate for this key: (PEM, DER).
    pub fn certificate(&self) -> (String, Vec<u8>) {
        self.certificate_valid(None)
    }

    /// A self-signed certificate, valid within `(not_before, not_after)` when given.
    pub fn certificate_valid(
        &self,
        validity: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
    ) -> (String, Vec<u8>) {
        let pair = rcgen::KeyPair::try_from(self.pkcs8.as_slice()).expect("rcgen key pair");
        let mut params = rcgen::CertificateParams::new(vec!["agent.test".to_owned()])
            .expect("certificate params");
        if let Some((from, until)) = validity {
            params.not_before = from;
            params.not_after = until;
        }
        let cert = params.self_signed(&pair).expect("self-signed certificate");
        (cert.pem(), cert.der().to_vec())
    }
}

pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        Algorithm::PS256 => "PS256",
        Algorithm::HS256 => "HS256",
        _ => "unsupported",
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// `x5t` / `x5t#S256` of a DER certificate.
pub fn thumbprints(der: &[u8]) -> (String, String) {
    use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};
    (
        b64(digest(&SHA1_FOR_LEGACY_USE_ONLY, der).as_ref()),
        b64(digest(&SHA256, der).as_ref()),
    )
}

struct IdpState {
    issuer: String,
    keys: Mutex<Vec<Value>>,
    jwks_hits: AtomicUsize,
    discovery_hits: AtomicUsize,
}

/// An external IdP on 127.0.0.1: `GET /jwks` and `GET /.well-known/openid-configuration`.
pub struct FakeIdp {
    pub issuer: String,
    pub key: TestKey,
    state: Arc<IdpState>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeIdp {
    /// An IdP publishing one P-256 key (kid `idp-key-1`).
    pub async fn start() -> Self {
        Self::start_with(TestKey::ec(Some("idp-key-1"))).await
    }

    pub async fn start_with(key: TestKey) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake IdP");
        let addr = listener.local_addr().expect("fake IdP address");
        let issuer = format!("http://127.0.0.1:{}", addr.port());
        let state = Arc::new(IdpState {
            issuer: issuer.clone(),
            keys: Mutex::new(vec![key.jwk()]),
            jwks_hits: AtomicUsize::new(0),
            discovery_hits: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/jwks", get(serve_jwks))
            .route("/.well-known/openid-configuration", get(serve_discovery))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            issuer,
            key,
            state,
            task,
        }
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// The key set served now.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.state.keys.lock().expect("keys").clone()})
    }

    /// Adds a key to the served set.
    pub fn publish(&self, jwk: Value) {
        self.state.keys.lock().expect("keys").push(jwk);
    }

    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn discovery_requests(&self) -> usize {
        self.state.discovery_hits.load(Ordering::SeqCst)
    }

    /// Signs `claims` as they are, with the IdP's key.
    pub fn mint(&self, claims: &Value) -> String {
        self.key.sign(claims)
    }

    /// Standard claims from this IdP: `iss`, `sub`, `aud`, `iat`, `nbf`, `exp` (+10 min), `jti`.
    pub fn claims(&self, sub: &str, aud: &str) -> Value {
        let t = now();
        json!({
            "iss": self.issuer, "sub": sub, "aud": aud,
            "iat": t, "nbf": t, "exp": t + 600, "jti": new_jti(),
        })
    }

    /// A token for `sub` addressed to `aud`, with `extra` claims merged over the standard ones.
    pub fn token(&self, sub: &str, aud: &str, extra: Value) -> String {
        let mut claims = self.claims(sub, aud);
        merge(&mut claims, extra);
        self.mint(&claims)
    }
}

impl Drop for FakeIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_jwks(State(s): State<Arc<IdpState>>) -> Json<Value> {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    Json(json!({"keys": s.keys.lock().expect("keys").clone()}))
}

async fn serve_discovery(State(s): State<Arc<IdpState>>) -> Json<Value> {
    s.discovery_hits.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "issuer": s.issuer,
        "jwks_uri": format!("{}/jwks", s.issuer),
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
    }))
}

/// Overwrites members of `base` with those of `extra` (`null` removes a member).
pub fn merge(base: &mut Value, extra: Value) {
    let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) else {
        return;
    };
    for (k, v) in e {
        if v.is_null() {
            b.remove(&k);
        } else {
            b.insert(k, v);
        }
    }
}

// ---- the agent side ----

/// An agent with no credential yet; returns its id.
pub async fn bare_agent(s: &TestServer, name: &str) -> String {
    let (st, a) = s
        .admin(
            reqwest::Method::POST,
            "/agents",
            Some(json!({"name": name, "sponsors": ["alice@example.com"]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    a["id"].as_str().expect("id").to_owned()
}

/// `POST /admin/v1/agents/{id}/credentials`; returns status and body.
pub async fn add_credential(s: &TestServer, agent: &str, body: Value) -> (StatusCode, Value) {
    s.admin(
        reqwest::Method::POST,
        &format!("/agents/{agent}/credentials"),
        Some(body),
    )
    .await
}

/// Registers `jwk` as a public-key credential, asserting 201.
pub async fn register_jwk(s: &TestServer, agent: &str, jwk: Value) -> Value {
    let (st, b) = add_credential(s, agent, json!({"type": "public_key", "jwk": jwk})).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    b
}

/// Registers a certificate (PEM) as a public-key credential, asserting 201.
pub async fn register_certificate(s: &TestServer, agent: &str, pem: &str) -> Value {
    let (st, b) = add_credential(s, agent, json!({"type": "public_key", "certificate": pem})).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    b
}

/// RFC 7523 client-assertion claims: `iss` = `sub` = the client, `aud` = the token endpoint,
/// `iat`, `exp` (+5 min), a fresh `jti`.
pub fn assertion_claims(client: &str, token_endpoint: &str) -> Value {
    let t = now();
    json!({
        "iss": client, "sub": client, "aud": token_endpoint,
        "iat": t, "exp": t + 300, "jti": new_jti(),
    })
}

/// The claims of an assertion for `s`'s token endpoint, with `extra` merged in.
pub fn assertion_for(s: &TestServer, client: &str, extra: Value) -> Value {
    let mut c = assertion_claims(client, &s.url("/oauth2/token"));
    merge(&mut c, extra);
    c
}

/// A client-credentials request authenticated by `assertion`, with or without `client_id`.
pub async fn cc_with_assertion(
    s: &TestServer,
    client_id: Option<&str>,
    assertion: &str,
    scope: &str,
) -> (StatusCode, Value) {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "client_credentials"),
        ("scope", scope),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    if let Some(id) = client_id {
        form.push(("client_id", id));
    }
    s.token_form(&form, None).await
}

/// Asserts the uniform client-authentication refusal.
pub fn assert_invalid_client(what: &str, status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    assert_eq!(body["error"], "invalid_client", "{what}: {body}");
}

/// Asserts the uniform refusal, and that the audit log recorded `reason` as the latest failed
/// client authentication of `agent` — so each case is refused for the reason it tests.
pub async fn assert_refused_for(
    s: &TestServer,
    agent: &str,
    what: &str,
    (status, body): (StatusCode, Value),
    reason: &str,
) {
    assert_invalid_client(what, status, &body);
    let (st, page) = s
        .admin(
            reqwest::Method::GET,
            &format!(
                "/audit?agent_id={agent}&action=client.authenticate&outcome=failure&limit=500"
            ),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let latest = page["items"]
        .as_array()
        .and_then(|items| items.iter().max_by_key(|e| e["seq"].as_i64()))
        .unwrap_or(&Value::Null);
    assert_eq!(latest["reason"], reason, "{what}: {latest}");
}
