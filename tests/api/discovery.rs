//! Authorization server metadata (RFC 8414, OIDC Discovery), the authorization endpoint that
//! refuses everything, and the JWKS (RFC 7517) with RFC 7638 thumbprints as `kid`.

use crate::support::{Backend, TestServer, b64url, header_of};
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};

async fn get_json(s: &TestServer, url: &str) -> (reqwest::header::HeaderMap, Value) {
    let res = s.http.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "GET {url}");
    let headers = res.headers().clone();
    (headers, res.json().await.unwrap())
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn both_metadata_documents_list_the_endpoints_and_capabilities(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let base = s.base.as_str();
    let (_, oauth) = get_json(&s, &s.url("/.well-known/oauth-authorization-server")).await;
    let (_, oidc) = get_json(&s, &s.url("/.well-known/openid-configuration")).await;
    for doc in [&oauth, &oidc] {
        assert_eq!(doc["issuer"], base);
        assert_eq!(doc["token_endpoint"], format!("{base}/oauth2/token"));
        assert_eq!(doc["jwks_uri"], format!("{base}/oauth2/jwks"));
        assert_eq!(
            doc["introspection_endpoint"],
            format!("{base}/oauth2/introspect")
        );
        assert_eq!(doc["revocation_endpoint"], format!("{base}/oauth2/revoke"));
        assert!(
            doc["authorization_endpoint"]
                .as_str()
                .unwrap()
                .starts_with(base)
        );
        assert_eq!(
            doc["grant_types_supported"],
            json!([
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:token-exchange",
                "urn:ietf:params:oauth:grant-type:jwt-bearer"
            ])
        );
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt"
            ])
        );
        let algs = doc["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .unwrap();
        assert!(!algs.is_empty());
        assert!(!algs.contains(&json!("none")));
        assert!(!algs.iter().any(|a| a.as_str().unwrap().starts_with("HS")));
    }
    for member in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "introspection_endpoint",
        "revocation_endpoint",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
    ] {
        assert_eq!(oauth[member], oidc[member], "{member}");
    }
    // Tokens carry this issuer.
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("meta-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let token = s.token(&id, &secret, "api://hotel/.default").await;
    assert_eq!(crate::support::claims_of(&token)["iss"], oauth["issuer"]);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_authorization_endpoint_answers_unsupported_response_type(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (_, doc) = get_json(&s, &s.url("/.well-known/openid-configuration")).await;
    let endpoint = doc["authorization_endpoint"].as_str().unwrap();
    for query in [
        "",
        "?response_type=code&client_id=x&redirect_uri=https://app.example/cb&scope=openid",
        "?response_type=token&client_id=x",
    ] {
        let res = s
            .http
            .get(format!("{endpoint}{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "unsupported_response_type", "{body}");
    }
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
fn thumbprint(jwk: &Value) -> String {
    let canonical = match jwk["kty"].as_str().unwrap() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap()
        ),
        "RSA" => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            jwk["e"].as_str().unwrap(),
            jwk["n"].as_str().unwrap()
        ),
        other => panic!("unexpected kty {other}"),
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    b64url(digest.as_ref())
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_jwks_is_public_cacheable_and_kids_are_thumbprints(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (h1, jwks) = get_json(&s, &s.url("/oauth2/jwks")).await;
    let (h2, alias) = get_json(&s, &s.url("/.well-known/jwks.json")).await;
    let (_, doc) = get_json(&s, &s.url("/.well-known/oauth-authorization-server")).await;
    let (_, advertised) = get_json(&s, doc["jwks_uri"].as_str().unwrap()).await;
    assert_eq!(jwks, alias);
    assert_eq!(jwks, advertised);
    for h in [&h1, &h2] {
        let cc = h["cache-control"].to_str().unwrap();
        let max_age: u64 = cc
            .split(',')
            .find_map(|d| d.trim().strip_prefix("max-age="))
            .expect("max-age")
            .parse()
            .unwrap();
        assert!(max_age > 0, "{cc}");
        assert!(!cc.contains("no-store"));
    }
    let keys = jwks["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(
                key.get(private).is_none(),
                "private member {private} in {key}"
            );
        }
        assert_eq!(key["kty"], "EC");
        assert_eq!(key["crv"], "P-256");
        assert_eq!(key["kid"].as_str().unwrap(), thumbprint(key));
    }
    // A token's kid names a published key.
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("jwks-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let token = s.token(&id, &secret, "api://hotel/.default").await;
    let header = header_of(&token);
    assert_eq!(header["alg"], "ES256");
    assert!(keys.iter().any(|k| k["kid"] == header["kid"]));
    // The admin API shows the same public keys and no more.
    let (status, listed) = s.admin(reqwest::Method::GET, "/keys", None).await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed["items"].as_array().unwrap();
    assert_eq!(listed.len(), keys.len());
    for k in listed {
        assert_eq!(
            crate::support::keys_of(k),
            crate::support::sorted(&[
                "activate_at",
                "alg",
                "created_at",
                "jwk",
                "kid",
                "retired_at",
                "state"
            ])
        );
        assert_eq!(k["state"], "active");
        assert_eq!(k["alg"], "ES256");
        assert!(k["jwk"].get("d").is_none());
        assert_eq!(k["kid"].as_str().unwrap(), thumbprint(&k["jwk"]));
        assert!(keys.contains(&k["jwk"]));
    }
}
