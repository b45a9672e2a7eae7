//! Admin API refusals (SPEC §8): RFC 9457 problems for bad input, unknown ids and conflicts,
//! and who may call it at all.

use crate::support::{Backend, TestServer, keys_of};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use std::collections::HashSet;

/// RFC 9457 problems: (method, path, body, status). `{id}` is an existing agent named
/// `taken`, `{rid}` an existing resource, `{unknown}` an id nothing has.
#[rstest]
#[case::missing_sponsors(Method::POST, "/agents", Some(json!({"name": "a"})), 400)]
#[case::empty_sponsors(Method::POST, "/agents", Some(json!({"name": "a", "sponsors": []})), 400)]
#[case::blank_sponsor(Method::POST, "/agents", Some(json!({"name": "a", "sponsors": ["  "]})), 400)]
#[case::last_sponsor_removed(Method::PATCH, "/agents/{id}", Some(json!({"sponsors": []})), 400)]
#[case::bad_expiry(Method::POST, "/agents", Some(json!({"name": "a", "sponsors": ["s"], "expires_at": "next tuesday"})), 400)]
#[case::date_without_time(Method::POST, "/agents", Some(json!({"name": "a", "sponsors": ["s"], "expires_at": "2030-01-01"})), 400)]
#[case::past_expiry(Method::POST, "/agents", Some(json!({"name": "a", "sponsors": ["s"], "expires_at": "2001-01-01T00:00:00Z"})), 400)]
#[case::bad_expiry_patch(Method::PATCH, "/agents/{id}", Some(json!({"expires_at": "soon"})), 400)]
#[case::unknown_field(Method::POST, "/agents", Some(json!({"name": "a", "sponsors": ["s"], "colour": "red"})), 400)]
#[case::unknown_field_patch(Method::PATCH, "/agents/{id}", Some(json!({"status": "active"})), 400)]
#[case::zero_ttl(Method::POST, "/agents", Some(json!({"name": "a", "sponsors": ["s"], "token_ttl_seconds": 0})), 400)]
#[case::empty_name(Method::POST, "/agents", Some(json!({"name": "", "sponsors": ["s"]})), 400)]
#[case::wrong_type(Method::POST, "/agents", Some(json!({"name": 7, "sponsors": ["s"]})), 400)]
#[case::duplicate_name(Method::POST, "/agents", Some(json!({"name": "taken", "sponsors": ["s"]})), 409)]
#[case::rename_to_taken(Method::PATCH, "/agents/{other}", Some(json!({"name": "taken"})), 409)]
#[case::unknown_agent(Method::GET, "/agents/{unknown}", None, 404)]
#[case::not_a_uuid(Method::GET, "/agents/not-a-uuid", None, 404)]
#[case::unknown_agent_patch(Method::PATCH, "/agents/{unknown}", Some(json!({"description": "x"})), 404)]
#[case::unknown_agent_disable(Method::POST, "/agents/{unknown}/disable", None, 404)]
#[case::unknown_agent_credentials(Method::GET, "/agents/{unknown}/credentials", None, 404)]
#[case::unknown_credential_type(Method::POST, "/agents/{id}/credentials", Some(json!({"type": "password"})), 400)]
#[case::duplicate_resource(Method::POST, "/resources", Some(json!({"identifier": "api://taken", "name": "x"})), 409)]
#[case::bad_identifier(Method::POST, "/resources", Some(json!({"identifier": "hotel", "name": "x"})), 400)]
#[case::unknown_resource(Method::GET, "/resources/{unknown}", None, 404)]
#[case::unknown_resource_delete(Method::DELETE, "/resources/{unknown}", None, 404)]
#[case::unknown_issuer(Method::DELETE, "/trusted-issuers/{unknown}", None, 404)]
#[case::bad_status_filter(Method::GET, "/agents?status=zombie", None, 400)]
#[case::bad_date_filter(Method::GET, "/agents?expiring_before=yesterday", None, 400)]
#[case::zero_limit(Method::GET, "/agents?limit=0", None, 400)]
#[case::huge_limit(Method::GET, "/agents?limit=100000", None, 400)]
#[case::forged_cursor(Method::GET, "/agents?cursor=%21%21%21", None, 400)]
#[case::long_description(Method::POST, "/agents", Some(json!({"name": "a", "sponsors": ["s"], "description": "x".repeat(1025)})), 400)]
#[case::long_description_patch(Method::PATCH, "/agents/{id}", Some(json!({"description": "x".repeat(1025)})), 400)]
#[case::long_sponsor(Method::POST, "/agents", Some(json!({"name": "a", "sponsors": ["s".repeat(257)]})), 400)]
#[case::control_in_owner(Method::PATCH, "/agents/{id}", Some(json!({"owners": ["a\u{7}b"]})), 400)]
#[case::too_many_sponsors(Method::PATCH, "/agents/{id}", Some(json!({"sponsors": (0..101).map(|i| format!("s{i}")).collect::<Vec<_>>()})), 400)]
#[case::too_many_tags(Method::POST, "/agents", Some(json!({"name": "a", "sponsors": ["s"], "tags": (0..51).map(|i| (format!("k{i}"), "v".to_owned())).collect::<std::collections::BTreeMap<_, _>>()})), 400)]
#[case::long_tag_value(Method::PATCH, "/agents/{id}", Some(json!({"tags": {"k": "v".repeat(257)}})), 400)]
#[case::blank_tag_key(Method::PATCH, "/agents/{id}", Some(json!({"tags": {" ": "v"}})), 400)]
#[case::long_blueprint_description(Method::POST, "/blueprints", Some(json!({"name": "b", "sponsors": ["s"], "description": "x".repeat(1025)})), 400)]
#[case::bad_outcome(Method::GET, "/audit?outcome=maybe", None, 400)]
#[case::bad_audit_since(Method::GET, "/audit?since=today", None, 400)]
#[tokio::test]
async fn bad_admin_requests_are_problems(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] method: Method,
    #[case] path: &str,
    #[case] body: Option<Value>,
    #[case] status: u16,
) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (id, _) = s.agent("taken").await;
    let (other, _) = s.agent("other").await;
    s.resource("api://taken", &["read"], &[]).await;
    let path = path
        .replace("{id}", &id)
        .replace("{other}", &other)
        .replace("{unknown}", &uuid::Uuid::new_v4().to_string());
    let token = s.admin_token().await;
    let res = s.admin_raw(Some(&token), method, &path, body).await;
    assert_problem(res, status).await;
    // Nothing changed.
    assert_eq!(
        s.get_agent(&id).await["sponsors"],
        json!(["alice@example.com"])
    );
    assert_eq!(s.get_agent(&other).await["name"], "other");
}

async fn assert_problem(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status);
    let media_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(media_type.as_deref(), Some("application/problem+json"));
    let problem: Value = res.json().await.unwrap();
    for member in ["type", "title", "detail"] {
        assert!(problem[member].is_string(), "{member} in {problem}");
    }
    assert_eq!(problem["status"], status, "{problem}");
    let allowed: HashSet<&str> = ["type", "title", "status", "detail", "field"].into();
    assert!(
        keys_of(&problem)
            .iter()
            .all(|k| allowed.contains(k.as_str())),
        "{problem}"
    );
    problem
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn bodies_that_are_not_json_are_problems(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let token = s.admin_token().await;
    let res = s
        .http
        .post(s.url("/admin/v1/agents"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;
    let res = s
        .http
        .post(s.url("/admin/v1/agents"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_problem(res, 415).await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn only_admin_tokens_may_change_and_readers_may_read(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let admin_scope = format!("{}/.default", s.admin_resource());
    let (reader, reader_secret) = s.admin_agent(&["reader"]).await;
    let reader_token = s.token(&reader, &reader_secret, &admin_scope).await;
    let (status, _) = s
        .admin_as(&reader_token, Method::GET, "/agents", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.admin_as(&reader_token, Method::GET, "/audit", None).await;
    assert_eq!(status, StatusCode::OK);
    let body = json!({"name": "sneaky", "sponsors": ["s"]});
    let res = s
        .admin_raw(
            Some(&reader_token),
            Method::POST,
            "/agents",
            Some(body.clone()),
        )
        .await;
    assert_problem(res, 403).await;
    let res = s
        .admin_raw(
            Some(&reader_token),
            Method::POST,
            &format!("/agents/{reader}/disable"),
            None,
        )
        .await;
    assert_problem(res, 403).await;

    // introspect alone reads nothing. A valid token without the role is challenged with
    // `insufficient_scope` (RFC 6750 §3.1).
    let (rs, rs_secret) = s.introspector().await;
    let rs_token = s.token(&rs, &rs_secret, &admin_scope).await;
    let res = s
        .admin_raw(Some(&rs_token), Method::GET, "/agents", None)
        .await;
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="agentauth-admin", error="insufficient_scope""#
    );
    assert_problem(res, 403).await;

    // No token, a foreign-audience token, garbage: 401 with a Bearer challenge.
    s.resource("api://hotel", &["read"], &[]).await;
    s.grant_roles(&reader, "api://hotel", &["read"]).await;
    let hotel_token = s
        .token(&reader, &reader_secret, "api://hotel/.default")
        .await;
    let (admin_id, admin_secret) = (s.admin_client_id.clone(), s.admin_secret.clone());
    s.grant_roles(&admin_id, "api://hotel", &["read"]).await;
    let admin_hotel_token = s
        .token(&admin_id, &admin_secret, "api://hotel/.default")
        .await;
    for token in [
        None,
        Some(hotel_token.as_str()),
        Some(admin_hotel_token.as_str()),
        Some("garbage"),
    ] {
        for method in [Method::GET, Method::POST] {
            let res = s
                .admin_raw(token, method.clone(), "/agents", Some(body.clone()))
                .await;
            // RFC 6750 §3.1: no error code when no token came, `invalid_token` for a bad one.
            let challenge = res.headers()["www-authenticate"].to_str().unwrap();
            assert!(challenge.starts_with("Bearer"), "{challenge}");
            assert_eq!(
                challenge.contains(r#"error="invalid_token""#),
                token.is_some(),
                "{challenge}"
            );
            assert_problem(res, 401).await;
        }
    }
    let (_, page) = s.admin(Method::GET, "/agents?limit=500", None).await;
    assert!(!page.to_string().contains("sneaky"));
}

/// Unknown paths and methods under `/admin/v1` are admin API errors too, so they are problems.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn unknown_routes_and_methods_are_problems(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let token = s.admin_token().await;
    let (id, _) = s.agent("routed").await;
    for (method, path, status) in [
        (Method::GET, "/nonexistent".to_owned(), 404),
        (Method::GET, format!("/agents/{id}/disable"), 405),
        (Method::PUT, "/agents".to_owned(), 405),
    ] {
        let res = s.admin_raw(Some(&token), method, &path, None).await;
        assert_problem(res, status).await;
    }
}
