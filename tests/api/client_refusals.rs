//! Clients that may no longer authenticate (SPEC §3, §5): disabled, deleted or expired agents,
//! expired or removed secrets, and too many failed attempts.

use crate::support::{Backend, TestServer, rfc3339_in};
use agentauth::clock::{Clock, FixedClock};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::json;
use std::sync::Arc;

const UNKNOWN: &str = "0190b2a4-0000-7000-8000-000000000000";

/// A server with `api://hotel` and an agent holding `read` there: (server, id, secret).
async fn hotel(backend: Backend) -> Option<(TestServer, String, String)> {
    hotel_with(backend, |_| {}).await
}

async fn hotel_with(
    backend: Backend,
    tweak: impl FnOnce(&mut agentauth::config::Config),
) -> Option<(TestServer, String, String)> {
    let s = TestServer::start_with(backend, tweak).await?;
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("booking-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    Some((s, id, secret))
}

const CC: [(&str, &str); 2] = [
    ("grant_type", "client_credentials"),
    ("scope", "api://hotel/.default"),
];

/// No token for a disabled, deleted or expired agent: the same `invalid_client` as an unknown
/// client.
#[rstest]
#[case::disabled("disabled")]
#[case::deleted("deleted")]
#[case::expired("expired")]
#[tokio::test]
async fn no_token_for_an_agent_that_is(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] state: &str,
) {
    let Some((s, id, secret)) = hotel(backend).await else {
        return;
    };
    s.token(&id, &secret, "api://hotel/.default").await;
    let (status, agent) = match state {
        "disabled" => {
            s.admin(Method::POST, &format!("/agents/{id}/disable"), None)
                .await
        }
        "deleted" => {
            s.admin(Method::DELETE, &format!("/agents/{id}"), None)
                .await
        }
        _ => {
            s.admin(
                Method::PATCH,
                &format!("/agents/{id}"),
                Some(json!({"expires_at": rfc3339_in(-60).0})),
            )
            .await
        }
    };
    assert!(status.is_success(), "{agent}");
    assert_eq!(s.get_agent(&id).await["status"], state);
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "api://hotel/.default"),
    ];
    let (status, body) = s.token_form(&form, Some((&id, &secret))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, unknown) = s.token_form(&form, Some((UNKNOWN, &secret))).await;
    assert_eq!(body, unknown);
    // client_secret_post too.
    let mut post = form.to_vec();
    post.extend([
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ]);
    let (status, body) = s.token_form(&post, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
}

/// An expired or removed secret no longer authenticates; the server's clock is moved past the
/// secret's expiry instead of waiting for it.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_expired_or_removed_secret_is_refused(#[case] backend: Backend) {
    let clock = FixedClock::at(time::OffsetDateTime::now_utc());
    let Some(s) = TestServer::start_with_clock(backend, Arc::new(clock.clone())).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, kept_secret) = s.agent("rotating-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let expires_at = clock.now().unix_timestamp() + 60;
    let (status, created) = s
        .admin(
            Method::POST,
            &format!("/agents/{id}/credentials"),
            Some(json!({"type": "client_secret", "expires_at": crate::support::rfc3339_at(expires_at)})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let short_secret = created["secret"].as_str().unwrap().to_owned();
    s.token(&id, &short_secret, "api://hotel/.default").await;

    clock.advance(time::Duration::seconds(120));
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "api://hotel/.default"),
    ];
    let (status, body) = s.token_form(&form, Some((&id, &short_secret))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    // The other secret still works (rotation with overlap).
    s.token(&id, &kept_secret, "api://hotel/.default").await;

    // Removing a credential stops it at once.
    let (_, list) = s
        .admin(Method::GET, &format!("/agents/{id}/credentials"), None)
        .await;
    let kept_cid = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["expires_at"].is_null())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = s
        .admin(
            Method::DELETE,
            &format!("/agents/{id}/credentials/{kept_cid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s.token_form(&form, Some((&id, &kept_secret))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
}

/// Failed attempts are limited per client and per address (SPEC §5): once the burst is spent,
/// even the right secret waits, and so does another client from the same address.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn repeated_failures_are_throttled(#[case] backend: Backend) {
    let Some((s, id, secret)) = hotel_with(backend, |c| {
        c.limits.auth_failure_burst = 3;
        c.limits.auth_failures_per_minute = 1;
        // Every test client is 127.0.0.1, which is exempt unless asked.
        c.limits.throttle_loopback = true;
    })
    .await
    else {
        return;
    };
    for _ in 0..3 {
        let (status, body) = s.token_form(&CC, Some((&id, "wrong-secret"))).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client"))
        );
    }
    let res = s
        .post_form_raw("/oauth2/token", &CC, Some((&id, &secret)))
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1, "{wait}");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    assert!(body.get("access_token").is_none());
    // The same address, another client: also waits.
    let (status, _) = s.token_form(&CC, Some((UNKNOWN, "x"))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}
