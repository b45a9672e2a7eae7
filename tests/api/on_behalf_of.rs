//! On-behalf-of, Entra style (SPEC §3): `grant_type=jwt-bearer`, `requested_token_use=
//! on_behalf_of`, the user's token as `assertion`. The same delegation decision as token
//! exchange, with Entra's request and response shapes; MSAL's OIDC scopes are ignored.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure is the report

use crate::fake_idp::{ASSERTION_TYPE, TestKey, assertion_for, bare_agent, now, register_jwk};
use crate::support::{Backend, TestServer, claims_of};
use crate::token_exchange::{HOTEL, assert_error, delegate, scopes_of, world};
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

async fn obo(
    s: &TestServer,
    agent: &str,
    secret: &str,
    assertion: &str,
    scope: &str,
) -> (StatusCode, Value) {
    s.token_form(
        &[
            ("grant_type", GRANT),
            ("requested_token_use", "on_behalf_of"),
            ("assertion", assertion),
            ("scope", scope),
        ],
        Some((agent, secret)),
    )
    .await
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn obo_returns_a_delegated_token(#[case] backend: Backend) {
    let Some(w) = world(backend, |_| {}).await else {
        return;
    };
    let (s, agent) = (&w.s, w.agent.as_str());
    let subject_exp = now() + 600;
    let user = w.idp.token("user-1", agent, json!({"exp": subject_exp}));
    let (st, b) = obo(
        s,
        agent,
        &w.secret,
        &user,
        "api://hotel/.default openid profile offline_access",
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["token_type"], "Bearer");
    assert!(
        b["expires_in"].as_i64().is_some_and(|e| e > 0 && e <= 600),
        "{b}"
    );
    assert_eq!(
        scopes_of(&b["scope"]),
        ["api://hotel/bookings.read", "api://hotel/bookings.write"]
    );
    let c = claims_of(b["access_token"].as_str().expect("access_token"));
    assert_eq!(c["sub"], "user-1");
    assert_eq!(c["act"], json!({"sub": agent}));
    assert_eq!(c["client_id"], agent);
    assert_eq!(c["aud"], HOTEL);
    assert_eq!(scopes_of(&c["scope"]), ["bookings.read", "bookings.write"]);
    assert!(c["exp"].as_i64().expect("exp") <= subject_exp);

    // Named scopes.
    let user = w.idp.token("user-1", "api://agents", json!({}));
    let (st, b) = obo(s, agent, &w.secret, &user, "api://hotel/bookings.read").await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["scope"], "api://hotel/bookings.read");
    let c = claims_of(b["access_token"].as_str().expect("access_token"));
    assert_eq!(c["scope"], "bookings.read");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn obo_with_a_client_assertion(#[case] backend: Backend) {
    let Some(w) = world(backend, |_| {}).await else {
        return;
    };
    let s = &w.s;
    let agent = bare_agent(s, "keyed-agent").await;
    delegate(s, &agent, HOTEL, &["bookings.read"]).await;
    let key = TestKey::ec(Some("k"));
    register_jwk(s, &agent, key.jwk()).await;
    let user = w.idp.token("user-1", &agent, json!({}));
    let client_assertion = key.sign(&assertion_for(s, &agent, json!({})));
    let (st, b) = s
        .token_form(
            &[
                ("grant_type", GRANT),
                ("requested_token_use", "on_behalf_of"),
                ("assertion", &user),
                ("scope", "api://hotel/.default openid"),
                ("client_id", &agent),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &client_assertion),
            ],
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["scope"], "api://hotel/bookings.read");
    let c = claims_of(b["access_token"].as_str().expect("access_token"));
    assert_eq!(c["act"], json!({"sub": agent}));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn obo_refuses_what_token_exchange_refuses(#[case] backend: Backend) {
    let Some(w) = world(backend, |_| {}).await else {
        return;
    };
    let (s, agent, secret) = (&w.s, w.agent.as_str(), w.secret.as_str());
    let t = now();
    let scope = "api://hotel/.default openid profile offline_access";
    let untrusted = crate::fake_idp::FakeIdp::start().await;
    for (what, user) in [
        (
            "another audience",
            w.idp.token("user-1", "api://someone-else", json!({})),
        ),
        (
            "may_act excluding the agent",
            w.idp
                .token("user-1", agent, json!({"may_act": {"sub": "someone"}})),
        ),
        (
            "expired",
            w.idp
                .token("user-1", agent, json!({"iat": t - 900, "exp": t - 300})),
        ),
        (
            "untrusted issuer",
            untrusted.token("user-1", agent, json!({})),
        ),
    ] {
        assert_error(
            what,
            obo(s, agent, secret, &user, scope).await,
            "invalid_grant",
        );
    }
    let user = w.idp.token("user-1", agent, json!({}));
    assert_error(
        "scope outside the grant",
        obo(s, agent, secret, &user, "api://hotel/rooms.read openid").await,
        "invalid_scope",
    );
    assert_error(
        "only OIDC scopes",
        obo(s, agent, secret, &user, "openid profile offline_access").await,
        "invalid_scope",
    );
    assert_error(
        "unknown resource",
        obo(s, agent, secret, &user, "api://nowhere/.default").await,
        "invalid_target",
    );
    let (st, b) = s
        .token_form(
            &[
                ("grant_type", GRANT),
                ("assertion", &user),
                ("scope", scope),
            ],
            Some((agent, secret)),
        )
        .await;
    assert_error("no requested_token_use", (st, b), "invalid_request");
    let (st, b) = s
        .token_form(
            &[
                ("grant_type", GRANT),
                ("requested_token_use", "on_behalf_of"),
                ("scope", scope),
            ],
            Some((agent, secret)),
        )
        .await;
    assert_error("no assertion", (st, b), "invalid_request");
}
