//! Tokens checked by implementations other than the server's: the `p256` crate verifies the
//! ES256 signature against the published JWK, and the Rust `oauth2` crate obtains a token.

use crate::support::{Backend, TestServer, b64url_decode, claims_of, header_of};
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use rstest::rstest;
use serde_json::Value;

/// The P-256 key the JWKS publishes under `kid`.
async fn verifying_key(s: &TestServer, kid: &str) -> VerifyingKey {
    let jwks: Value = s
        .http
        .get(s.url("/oauth2/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the token's kid is published");
    let x = b64url_decode(jwk["x"].as_str().unwrap());
    let y = b64url_decode(jwk["y"].as_str().unwrap());
    assert_eq!((x.len(), y.len()), (32, 32));
    let mut sec1 = vec![0x04];
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    VerifyingKey::from_sec1_bytes(&sec1).expect("a P-256 point")
}

/// Verifies a compact JWS with ES256: the fixed-size r||s signature over `header.payload`.
async fn verify_es256(s: &TestServer, token: &str) -> bool {
    let header = header_of(token);
    assert_eq!(header["alg"], "ES256");
    let key = verifying_key(s, header["kid"].as_str().unwrap()).await;
    let (signing_input, sig) = token.rsplit_once('.').unwrap();
    let sig = b64url_decode(sig);
    assert_eq!(
        sig.len(),
        64,
        "JWS ES256 signatures are r||s, 64 bytes (RFC 7518 §3.4)"
    );
    let sig = Signature::from_slice(&sig).expect("signature");
    key.verify(signing_input.as_bytes(), &sig).is_ok()
}

async fn hotel_agent(s: &TestServer) -> (String, String) {
    s.resource("api://hotel", &["read", "write"], &[]).await;
    let (id, secret) = s.agent("signed-agent").await;
    s.grant_roles(&id, "api://hotel", &["read", "write"]).await;
    (id, secret)
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_signature_verifies_with_the_p256_crate(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (id, secret) = hotel_agent(&s).await;
    let token = s.token(&id, &secret, "api://hotel/.default").await;
    assert!(verify_es256(&s, &token).await);

    // The same signature over a changed payload does not verify.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = claims_of(&token);
    claims["roles"] = serde_json::json!(["read", "write", "admin"]);
    let forged_payload = crate::support::b64url(claims.to_string().as_bytes());
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert!(!verify_es256(&s, &forged).await);
    // Nor does a changed header.
    let mut header = header_of(&token);
    header["typ"] = "JWT".into();
    let forged = format!(
        "{}.{}.{}",
        crate::support::b64url(header.to_string().as_bytes()),
        parts[1],
        parts[2]
    );
    assert!(!verify_es256(&s, &forged).await);
}

fn oauth2_http_client() -> oauth2::reqwest::Client {
    oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[rstest]
#[case::sqlite(Backend::Sqlite, AuthType::BasicAuth)]
#[case::sqlite_post(Backend::Sqlite, AuthType::RequestBody)]
#[case::postgres(Backend::Postgres, AuthType::BasicAuth)]
#[case::postgres_post(Backend::Postgres, AuthType::RequestBody)]
#[tokio::test]
async fn the_oauth2_crate_gets_a_client_credentials_token(
    #[case] backend: Backend,
    #[case] auth: AuthType,
) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (id, secret) = hotel_agent(&s).await;
    let client = BasicClient::new(ClientId::new(id.clone()))
        .set_client_secret(ClientSecret::new(secret.clone()))
        .set_auth_type(auth.clone())
        .set_token_uri(TokenUrl::new(s.url("/oauth2/token")).unwrap());
    let http = oauth2_http_client();
    let answer = client
        .exchange_client_credentials()
        .add_scope(Scope::new("api://hotel/read".into()))
        .request_async(&http)
        .await
        .expect("a token");
    assert_eq!(answer.token_type(), &oauth2::basic::BasicTokenType::Bearer);
    assert_eq!(
        answer.expires_in(),
        Some(std::time::Duration::from_secs(3600))
    );
    assert!(answer.refresh_token().is_none());
    assert_eq!(
        answer.scopes(),
        Some(&vec![Scope::new("api://hotel/read".into())])
    );
    let token = answer.access_token().secret().clone();
    assert!(verify_es256(&s, &token).await);
    let claims = claims_of(&token);
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["roles"], serde_json::json!(["read"]));
    // The token works at the server's own introspection.
    assert_eq!(s.introspect(&token).await["active"], true);

    // A wrong secret surfaces as the RFC error the crate understands.
    let wrong = BasicClient::new(ClientId::new(id))
        .set_client_secret(ClientSecret::new("wrong-secret".into()))
        .set_auth_type(auth)
        .set_token_uri(TokenUrl::new(s.url("/oauth2/token")).unwrap());
    let err = wrong
        .exchange_client_credentials()
        .add_scope(Scope::new("api://hotel/read".into()))
        .request_async(&http)
        .await
        .expect_err("refused");
    match err {
        oauth2::RequestTokenError::ServerResponse(r) => {
            assert_eq!(
                r.error(),
                &oauth2::basic::BasicErrorResponseType::InvalidClient
            );
        }
        other => panic!("expected an RFC 6749 error response, got {other:?}"),
    }
}
