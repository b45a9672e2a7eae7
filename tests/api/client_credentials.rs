//! Client credentials end to end (SPEC §3): scope forms, refusals, token lifetime, client
//! authentication methods, caching headers and `last_active_at`.

use crate::support::{Backend, TestServer, claims_of, header_of, keys_of, rfc3339_in, sorted};
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::json;

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_agent_gets_a_token_for_its_roles(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let api = s
        .resource("api://hotel", &["bookings.read", "bookings.write"], &[])
        .await;
    let (id, secret) = s.agent("booking-agent").await;
    s.grant_roles(&id, &api, &["bookings.read"]).await;
    let token = s.token(&id, &secret, "api://hotel/.default").await;
    let claims = claims_of(&token);
    assert_eq!(claims["aud"], "api://hotel");
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["roles"], json!(["bookings.read"]));
    assert_eq!(claims["iss"], s.base.as_str());
    assert_eq!(header_of(&token)["typ"], "at+jwt");
    let (status, body) = s
        .token_form(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api://hotel/bookings.write"),
            ],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");
}

/// Every way of naming the resource and its roles (SPEC §3), with the `scope` answered and the
/// `roles` claim granted.
#[rstest]
#[case::default_scope(&[("scope", "api://hotel/.default")], "api://hotel/read api://hotel/write", &["read", "write"])]
#[case::qualified_role(&[("scope", "api://hotel/read")], "api://hotel/read", &["read"])]
#[case::two_qualified_roles(&[("scope", "api://hotel/write api://hotel/read")], "api://hotel/read api://hotel/write", &["read", "write"])]
#[case::bare_role_with_resource(&[("scope", "read"), ("resource", "api://hotel")], "read", &["read"])]
#[case::bare_role_with_audience(&[("scope", "write"), ("audience", "api://hotel")], "write", &["write"])]
#[case::resource_alone(&[("resource", "api://hotel")], "read write", &["read", "write"])]
#[tokio::test]
async fn each_scope_form_grants_the_roles_held(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] extra: &[(&str, &str)],
    #[case] answered_scope: &str,
    #[case] roles: &[&str],
) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read", "write", "admin"], &[])
        .await;
    let (id, secret) = s.agent("booking-agent").await;
    s.grant_roles(&id, "api://hotel", &["read", "write"]).await;
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let (status, body) = s.token_form(&form, Some((&id, &secret))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // RFC 6749 §4.4.3: no refresh token.
    assert_eq!(
        keys_of(&body),
        sorted(&["access_token", "expires_in", "scope", "token_type"])
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], answered_scope);
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "api://hotel");
    assert_eq!(claims["roles"], json!(roles));
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(
        keys_of(&claims),
        sorted(&[
            "aud",
            "client_id",
            "exp",
            "iat",
            "iss",
            "jti",
            "nbf",
            "roles",
            "sub"
        ])
    );
}

/// Refusals of what the agent asks for: (form, status, error).
#[rstest]
#[case::role_not_held(&[("scope", "api://hotel/admin")], "invalid_scope")]
#[case::role_undefined(&[("scope", "api://hotel/nonesuch")], "invalid_scope")]
#[case::bare_role_not_held(&[("scope", "admin"), ("resource", "api://hotel")], "invalid_scope")]
#[case::bare_role_without_target(&[("scope", "read")], "invalid_scope")]
#[case::no_scope_no_target(&[], "invalid_scope")]
#[case::two_resources(&[("scope", "api://hotel/read api://other/read")], "invalid_scope")]
#[case::unknown_resource_default(&[("scope", "api://nowhere/.default")], "invalid_target")]
#[case::unknown_resource_param(&[("scope", "read"), ("resource", "api://nowhere")], "invalid_target")]
#[case::unknown_audience_param(&[("scope", "read"), ("audience", "api://nowhere")], "invalid_target")]
#[case::resource_and_audience_differ(&[("resource", "api://hotel"), ("audience", "api://other")], "invalid_target")]
#[tokio::test]
async fn what_is_not_held_or_not_known_is_refused(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] extra: &[(&str, &str)],
    #[case] error: &str,
) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read", "write", "admin"], &[])
        .await;
    s.resource("api://other", &["read"], &[]).await;
    let (id, secret) = s.agent("booking-agent").await;
    s.grant_roles(&id, "api://hotel", &["read", "write"]).await;
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let (status, body) = s.token_form(&form, Some((&id, &secret))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body.get("access_token").is_none());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn no_assignment_no_token(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("idle-agent").await;
    for form in [
        vec![
            ("grant_type", "client_credentials"),
            ("scope", "api://hotel/.default"),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("resource", "api://hotel"),
        ],
    ] {
        let (status, body) = s.token_form(&form, Some((&id, &secret))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_scope");
    }
    // An emptied assignment is no assignment.
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    s.token(&id, &secret, "api://hotel/.default").await;
    s.grant_roles(&id, "api://hotel", &[]).await;
    let (status, body) = s
        .token_form(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api://hotel/.default"),
            ],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_lifetime_is_the_agents_ttl_or_the_default_and_never_past_its_expiry(
    #[case] backend: Backend,
) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &[]).await;

    let (short, short_secret) = s
        .agent_from(json!({"name": "short-lived", "sponsors": ["alice"], "token_ttl_seconds": 120}))
        .await;
    s.grant_roles(&short, "api://hotel", &["read"]).await;
    let body = s
        .token_response(&short, &short_secret, "api://hotel/.default")
        .await;
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    assert_eq!(claims["nbf"], claims["iat"]);
    assert_eq!(body["expires_in"], 120);

    let (plain, plain_secret) = s.agent("default-ttl").await;
    s.grant_roles(&plain, "api://hotel", &["read"]).await;
    let body = s
        .token_response(&plain, &plain_secret, "api://hotel/.default")
        .await;
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(body["expires_in"], 3600);

    let (expires_at, expires_unix) = rfc3339_in(600);
    let (ending, ending_secret) = s
        .agent_from(json!({"name": "ending-soon", "sponsors": ["alice"], "expires_at": expires_at}))
        .await;
    s.grant_roles(&ending, "api://hotel", &["read"]).await;
    let body = s
        .token_response(&ending, &ending_secret, "api://hotel/.default")
        .await;
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["exp"].as_i64().unwrap(), expires_unix);
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!((1..=600).contains(&expires_in), "expires_in {expires_in}");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        expires_in
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn client_secret_post_works_like_basic(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("post-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let (status, body) = s
        .token_form(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api://hotel/.default"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], id.as_str());
    // A client_id beside Basic credentials is fine when it names the same client.
    let (status, body) = s
        .token_form(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api://hotel/.default"),
                ("client_id", &id),
            ],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A charset parameter on the media type is fine (SPEC §2).
    let res = s
        .http
        .post(s.url("/oauth2/token"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )
        .basic_auth(&id, Some(&secret))
        .body("grant_type=client_credentials&scope=api%3A%2F%2Fhotel%2F.default&client_info=1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn answers_are_never_cached(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("cache-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let ok = s
        .post_form_raw(
            "/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api://hotel/.default"),
            ],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["cache-control"], "no-store");
    assert!(
        ok.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    for (form, basic) in [
        (
            vec![
                ("grant_type", "client_credentials"),
                ("scope", "api://hotel/nonesuch"),
            ],
            Some((id.as_str(), secret.as_str())),
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("scope", "api://hotel/.default"),
            ],
            Some((id.as_str(), "wrong")),
        ),
        (vec![("grant_type", "password")], None),
    ] {
        let res = s.post_form_raw("/oauth2/token", &form, basic).await;
        assert!(res.status().is_client_error());
        assert_eq!(res.headers()["cache-control"], "no-store");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn issuing_a_token_records_last_active_at(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("busy-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    assert_eq!(s.get_agent(&id).await["last_active_at"], json!(null));
    let token = s.token(&id, &secret, "api://hotel/.default").await;
    let iat = claims_of(&token)["iat"].as_i64().unwrap();
    // The activity batch is written once a second.
    let mut seen = None;
    for _ in 0..30 {
        let agent = s.get_agent(&id).await;
        if let Some(t) = agent["last_active_at"].as_str() {
            seen = Some(t.to_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let seen = seen.expect("last_active_at is set within 3 s");
    let at =
        time::OffsetDateTime::parse(&seen, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(at.unix_timestamp(), iat);
}
