//! Trusted issuers (SPEC §1, §8) and federated credentials (SPEC §5): a workload token from an
//! external IdP, whose `iss`, `sub` and `aud` match one of the agent's federated credentials,
//! authenticates the agent — no secret stored anywhere.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure is the report

use crate::fake_idp::{
    FakeIdp, TestKey, add_credential, assert_invalid_client, assert_refused_for, bare_agent,
    cc_with_assertion, now,
};
use crate::support::{Backend, TestServer, claims_of};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};

const SCOPE: &str = "api://hotel/.default";
const WORKLOAD: &str = "system:serviceaccount:agents:booking";
const EXCHANGE_AUD: &str = "api://AzureADTokenExchange";

pub async fn trust(s: &TestServer, body: Value) -> (StatusCode, Value) {
    s.admin(Method::POST, "/trusted-issuers", Some(body)).await
}

/// Trusts `idp` through its `jwks_uri` for `uses`, asserting 201.
pub async fn trust_idp(s: &TestServer, idp: &FakeIdp, uses: &[&str], audiences: &[&str]) {
    let (st, b) = trust(
        s,
        json!({"issuer": idp.issuer, "jwks_uri": idp.jwks_uri(), "use": uses, "audiences": audiences}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
}

/// An agent holding `bookings.read` on `api://hotel`, with a federated credential for
/// (`issuer`, WORKLOAD, EXCHANGE_AUD).
async fn federated_agent(s: &TestServer, name: &str, issuer: &str) -> String {
    let id = bare_agent(s, name).await;
    s.grant_roles(&id, "api://hotel", &["bookings.read"]).await;
    let (st, b) = add_credential(
        s,
        &id,
        json!({"type": "federated", "issuer": issuer, "subject": WORKLOAD, "audience": EXCHANGE_AUD}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["type"], "federated");
    assert_eq!(b["issuer"], issuer);
    assert_eq!(b["subject"], WORKLOAD);
    assert_eq!(b["audience"], EXCHANGE_AUD);
    id
}

fn assert_authenticated(agent: &str, status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = claims_of(body["access_token"].as_str().expect("access_token"));
    assert_eq!(claims["sub"], agent);
    assert_eq!(claims["client_id"], agent);
    assert_eq!(claims["roles"], json!(["bookings.read"]));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn trusted_issuers_are_managed_through_the_admin_api(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let by_uri = FakeIdp::start().await;
    let inline = FakeIdp::start().await;
    let discovered = FakeIdp::start().await;

    let (st, b) = trust(
        &s,
        json!({"issuer": by_uri.issuer, "jwks_uri": by_uri.jwks_uri(), "use": ["subject_tokens"], "audiences": ["api://agents"]}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["issuer"], by_uri.issuer.as_str());
    assert_eq!(b["jwks_uri"], by_uri.jwks_uri().as_str());
    assert_eq!(b["subject_claim"], "sub");
    assert_eq!(b["audiences"], json!(["api://agents"]));
    assert_eq!(b["use"], json!(["subject_tokens"]));
    let id = b["id"].as_str().expect("id").to_owned();

    let (st, b) = trust(
        &s,
        json!({"issuer": inline.issuer, "jwks": inline.jwks(), "subject_claim": "oid", "use": ["federated_credentials", "subject_tokens"]}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["jwks"], inline.jwks());
    assert_eq!(b["subject_claim"], "oid");

    let (st, b) = trust(
        &s,
        json!({"issuer": discovered.issuer, "use": ["federated_credentials"]}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["jwks_uri"], Value::Null);
    assert_eq!(b["jwks"], Value::Null);

    let (st, page) = s.admin(Method::GET, "/trusted-issuers", None).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().expect("items").len(), 3, "{page}");
    let (st, one) = s
        .admin(Method::GET, &format!("/trusted-issuers/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{one}");
    assert_eq!(one["issuer"], by_uri.issuer.as_str());

    // Refusals: a duplicate, both key sources, private keys, plain http off loopback, no use.
    let (st, b) = trust(
        &s,
        json!({"issuer": by_uri.issuer, "jwks_uri": by_uri.jwks_uri(), "use": ["subject_tokens"]}),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    let other = "https://idp.example";
    for (what, body) in [
        (
            "jwks_uri and jwks",
            json!({"issuer": other, "jwks_uri": by_uri.jwks_uri(), "jwks": inline.jwks(), "use": ["subject_tokens"]}),
        ),
        (
            "a private key",
            json!({"issuer": other, "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "use": ["subject_tokens"]}),
        ),
        (
            "plain http",
            json!({"issuer": other, "jwks_uri": "http://idp.example/jwks", "use": ["subject_tokens"]}),
        ),
        ("no use", json!({"issuer": other, "use": []})),
    ] {
        let (st, b) = trust(&s, body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{what}: {b}");
    }

    let (st, _) = s
        .admin(Method::DELETE, &format!("/trusted-issuers/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s
        .admin(Method::GET, &format!("/trusted-issuers/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_federated_credential_authenticates_the_agent(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["bookings.read"], &[]).await;

    // Keys by jwks_uri.
    let idp = FakeIdp::start().await;
    trust_idp(&s, &idp, &["federated_credentials"], &[]).await;
    let id = federated_agent(&s, "fed-uri", &idp.issuer).await;
    let t = idp.token(WORKLOAD, EXCHANGE_AUD, json!({}));
    let (st, body) = cc_with_assertion(&s, Some(&id), &t, SCOPE).await;
    assert_authenticated(&id, st, &body);
    assert_eq!(idp.jwks_requests(), 1);

    // Keys inline; `aud` as an array; fractional NumericDates.
    let inline = FakeIdp::start_with(TestKey::rsa(
        Some("rsa-idp"),
        jsonwebtoken::Algorithm::RS256,
    ))
    .await;
    let (st, b) = trust(
        &s,
        json!({"issuer": inline.issuer, "jwks": inline.jwks(), "use": ["federated_credentials"]}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let id2 = federated_agent(&s, "fed-inline", &inline.issuer).await;
    let t = inline.token(
        WORKLOAD,
        EXCHANGE_AUD,
        json!({"aud": ["https://elsewhere.example", EXCHANGE_AUD], "exp": crate::fake_idp::now_f64() + 300.5}),
    );
    let (st, body) = cc_with_assertion(&s, Some(&id2), &t, SCOPE).await;
    assert_authenticated(&id2, st, &body);
    assert_eq!(inline.jwks_requests(), 0, "an inline JWKS is never fetched");

    // Keys by discovery from the issuer's metadata.
    let disc = FakeIdp::start().await;
    let (st, b) = trust(
        &s,
        json!({"issuer": disc.issuer, "use": ["federated_credentials"]}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let id3 = federated_agent(&s, "fed-discovered", &disc.issuer).await;
    for _ in 0..2 {
        let t = disc.token(WORKLOAD, EXCHANGE_AUD, json!({}));
        let (st, body) = cc_with_assertion(&s, Some(&id3), &t, SCOPE).await;
        assert_authenticated(&id3, st, &body);
    }
    assert_eq!(disc.discovery_requests(), 1);
    assert_eq!(disc.jwks_requests(), 1);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn mismatched_federated_tokens_are_refused(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["bookings.read"], &[]).await;
    let idp = FakeIdp::start().await;
    let other_idp = FakeIdp::start().await;
    let untrusted = FakeIdp::start().await;
    trust_idp(&s, &idp, &["federated_credentials"], &[]).await;
    trust_idp(&s, &other_idp, &["federated_credentials"], &[]).await;
    let id = federated_agent(&s, "fed-mismatch", &idp.issuer).await;

    // Sanity: the matching token works.
    let t = idp.token(WORKLOAD, EXCHANGE_AUD, json!({}));
    let (st, body) = cc_with_assertion(&s, Some(&id), &t, SCOPE).await;
    assert_authenticated(&id, st, &body);

    let forged = TestKey::ec(Some("idp-key-1"));
    let mut forged_claims = idp.claims(WORKLOAD, EXCHANGE_AUD);
    forged_claims["jti"] = json!("forged");
    let intruder = "system:serviceaccount:agents:intruder";
    let (t0, mismatch) = (now(), "federated_mismatch");
    let cases = [
        (
            "another subject",
            idp.token(intruder, EXCHANGE_AUD, json!({})),
            mismatch,
        ),
        (
            "another audience",
            idp.token(WORKLOAD, "api://elsewhere", json!({})),
            mismatch,
        ),
        (
            "another trusted issuer",
            other_idp.token(WORKLOAD, EXCHANGE_AUD, json!({})),
            mismatch,
        ),
        (
            "an untrusted issuer",
            untrusted.token(WORKLOAD, EXCHANGE_AUD, json!({})),
            "assertion_issuer",
        ),
        (
            "expired",
            idp.token(
                WORKLOAD,
                EXCHANGE_AUD,
                json!({"iat": t0 - 900, "exp": t0 - 300}),
            ),
            "assertion_time",
        ),
        (
            "a key the issuer does not publish",
            forged.sign(&forged_claims),
            "assertion_signature",
        ),
    ];
    for (what, t, reason) in cases {
        let r = cc_with_assertion(&s, Some(&id), &t, SCOPE).await;
        assert_refused_for(&s, &id, what, r, reason).await;
    }
    // A federated assertion needs client_id: its sub is the workload, not the agent.
    let t = idp.token(WORKLOAD, EXCHANGE_AUD, json!({}));
    let (st, body) = cc_with_assertion(&s, None, &t, SCOPE).await;
    assert_invalid_client("no client_id", st, &body);
    // Another agent cannot use this agent's federated credential.
    let bystander = bare_agent(&s, "fed-bystander").await;
    s.grant_roles(&bystander, "api://hotel", &["bookings.read"])
        .await;
    let r = cc_with_assertion(&s, Some(&bystander), &t, SCOPE).await;
    assert_refused_for(
        &s,
        &bystander,
        "an agent without the credential",
        r,
        mismatch,
    )
    .await;

    // Removing the federated credential, or distrusting the issuer, ends it.
    let second = federated_agent(&s, "fed-removed", &idp.issuer).await;
    let (_, creds) = s
        .admin(Method::GET, &format!("/agents/{second}/credentials"), None)
        .await;
    let cid = creds["items"][0]["id"].as_str().expect("credential id");
    let (st, _) = s
        .admin(
            Method::DELETE,
            &format!("/agents/{second}/credentials/{cid}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let t = idp.token(WORKLOAD, EXCHANGE_AUD, json!({}));
    let r = cc_with_assertion(&s, Some(&second), &t, SCOPE).await;
    assert_refused_for(&s, &second, "a removed federated credential", r, mismatch).await;
    let (_, issuers) = s.admin(Method::GET, "/trusted-issuers", None).await;
    let issuer_id = issuers["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["issuer"] == idp.issuer.as_str()))
        .and_then(|i| i["id"].as_str())
        .expect("the trusted issuer")
        .to_owned();
    let (st, _) = s
        .admin(
            Method::DELETE,
            &format!("/trusted-issuers/{issuer_id}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let r = cc_with_assertion(&s, Some(&id), &t, SCOPE).await;
    assert_refused_for(
        &s,
        &id,
        "an issuer no longer trusted",
        r,
        "assertion_issuer",
    )
    .await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_issuer_not_trusted_for_federated_credentials_is_refused(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["bookings.read"], &[]).await;
    let idp = FakeIdp::start().await;
    trust_idp(&s, &idp, &["subject_tokens"], &[]).await;
    let id = federated_agent(&s, "fed-wrong-use", &idp.issuer).await;
    let t = idp.token(WORKLOAD, EXCHANGE_AUD, json!({}));
    let r = cc_with_assertion(&s, Some(&id), &t, SCOPE).await;
    assert_refused_for(
        &s,
        &id,
        "issuer for subject tokens only",
        r,
        "assertion_issuer",
    )
    .await;
}
