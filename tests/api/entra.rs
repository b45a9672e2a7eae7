//! Entra Agent ID compatibility (SPEC §1 blueprint, §2 Entra routes, §3 blueprint leg, §4
//! `entra` profile): the tenant routes and their error shape, the Entra v2.0 token claims, and
//! blueprints — inherited grants, T1 for one of its own agents only, cascading delete.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the report

use crate::fake_idp::ASSERTION_TYPE;
use crate::support::{Backend, TestServer, claims_of, header_of, keys_of, sorted};
use agentauth::clock::{FixedClock, SharedClock};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use std::sync::Arc;

/// POST to the tenant's Entra token route: status and body.
async fn entra_token(
    s: &TestServer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    s.post_form(
        &format!("/{}/oauth2/v2.0/token", s.tenant_id()),
        form,
        basic,
    )
    .await
}

async fn get(s: &TestServer, path: &str) -> (StatusCode, Value) {
    let res = s.http.get(s.url(path)).send().await.expect("GET");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Entra's error members beside RFC 6749 §5.2's.
fn assert_entra_error(body: &Value, error: &str, aadsts: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([aadsts]), "{body}");
    for member in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[member].is_string(), "{member} in {body}");
    }
    let description = body["error_description"]
        .as_str()
        .expect("error_description");
    assert!(
        description.starts_with(&format!("AADSTS{aadsts}:")),
        "{body}"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_tenant_routes_answer_as_entra_does(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let tenant = s.tenant_id();
    let base = s.base.clone();

    let (st, meta) = get(
        &s,
        &format!("/{tenant}/v2.0/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(meta["issuer"], format!("{base}/{tenant}/v2.0"));
    assert_eq!(
        meta["token_endpoint"],
        format!("{base}/{tenant}/oauth2/v2.0/token")
    );
    assert_eq!(
        meta["jwks_uri"],
        format!("{base}/{tenant}/discovery/v2.0/keys")
    );
    assert_eq!(
        meta["authorization_endpoint"],
        format!("{base}/{tenant}/oauth2/v2.0/authorize")
    );
    let (st, keys) = get(&s, &format!("/{tenant}/discovery/v2.0/keys")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(keys, get(&s, "/oauth2/jwks").await.1);

    // MSAL asks about its authority without the port; the answer names this server.
    let (st, instance) = get(
        &s,
        &format!(
            "/common/discovery/instance?api-version=1.1&authorization_endpoint=https://127.0.0.1/{tenant}/oauth2/v2.0/authorize"
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        instance["tenant_discovery_endpoint"],
        format!("{base}/{tenant}/v2.0/.well-known/openid-configuration")
    );

    let (st, body) = get(&s, "/not-this-tenant/v2.0/.well-known/openid-configuration").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_request", 90002);
    // A tenant id is matched without regard to case, as Entra does.
    let (st, body) = get(
        &s,
        &format!(
            "/{}/v2.0/.well-known/openid-configuration",
            tenant.to_uppercase()
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");

    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("entra-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "api://hotel/.default"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
        ("client_info", "1"),
    ];
    let (st, answer) = entra_token(&s, &form, None).await;
    assert_eq!(st, StatusCode::OK, "{answer}");
    assert_eq!(
        keys_of(&answer),
        sorted(&["access_token", "expires_in", "ext_expires_in", "token_type"]),
        "no scope in Entra's client-credentials answer: {answer}"
    );
    assert_eq!(answer["ext_expires_in"], answer["expires_in"]);

    let wrong = [
        ("grant_type", "client_credentials"),
        ("scope", "api://hotel/.default"),
        ("client_id", id.as_str()),
        ("client_secret", "not-the-secret"),
    ];
    let (st, body) = entra_token(&s, &wrong, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_entra_error(&body, "invalid_client", 7000215);
    let (st, body) = entra_token(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "api://hotel/nope"),
        ],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_scope", 70011);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_resource_with_the_entra_profile_gets_entra_v2_tokens(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let tenant = s.tenant_id();
    s.admin(
        Method::POST,
        "/resources",
        Some(json!({"identifier": "api://entra-hotel", "name": "hotel", "roles": ["read"], "token_profile": "entra"})),
    )
    .await;
    let (id, secret) = s.agent("entra-profile-agent").await;
    s.grant_roles(&id, "api://entra-hotel", &["read"]).await;
    let token = s.token(&id, &secret, "api://entra-hotel/.default").await;
    assert_eq!(header_of(&token)["typ"], "JWT");
    let c = claims_of(&token);
    assert_eq!(c["iss"], format!("{}/{tenant}/v2.0", s.base));
    assert_eq!(c["ver"], "2.0");
    assert_eq!(c["tid"], tenant.as_str());
    assert_eq!(c["aud"], "api://entra-hotel");
    for member in ["sub", "oid", "azp"] {
        assert_eq!(c[member], id.as_str(), "{member}");
    }
    assert_eq!(c["azpacr"], "1", "a secret");
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["roles"], json!(["read"]));
    assert_eq!(c["xms_act_fct"], "3 9 11");
    assert_eq!(c["xms_sub_fct"], "3 9 11");
    assert!(c["uti"].is_string());
    assert_eq!(c.get("jti"), None, "Entra tokens carry uti, not jti");
    assert_eq!(c.get("scp"), None, "an app token has no delegated scopes");
    // Introspection reads Entra tokens too.
    let i = s.introspect(&token).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["client_id"], id.as_str());
}

/// A blueprint with a secret and default grants on `api://hotel`: (id, secret).
async fn blueprint(s: &TestServer, name: &str) -> (String, String) {
    let (st, bp) = s
        .admin(
            Method::POST,
            "/blueprints",
            Some(json!({
                "name": name, "sponsors": ["travel-team@example.com"],
                "default_roles": [{"resource": "api://hotel", "roles": ["read"]}],
                "default_delegations": [{"resource": "api://hotel", "scopes": ["bookings.read"]}],
            })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{bp}");
    let id = bp["id"].as_str().expect("id").to_owned();
    let (st, c) = s
        .admin(
            Method::POST,
            &format!("/blueprints/{id}/credentials"),
            Some(json!({"type": "client_secret"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    (id, c["secret"].as_str().expect("secret").to_owned())
}

async fn agent_of(s: &TestServer, name: &str, blueprint: &str) -> String {
    let (st, a) = s
        .admin(
            Method::POST,
            "/agents",
            Some(json!({"name": name, "sponsors": ["travel-team@example.com"], "blueprint_id": blueprint, "inherit_defaults": true})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    a["id"].as_str().expect("id").to_owned()
}

async fn t1(s: &TestServer, blueprint: (&str, &str), agent: &str) -> (StatusCode, Value) {
    entra_token(
        s,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "api://AzureADTokenExchange/.default"),
            ("fmi_path", agent),
        ],
        Some(blueprint),
    )
    .await
}

/// The agent's client credentials with T1 as its assertion.
async fn with_t1(s: &TestServer, agent: &str, t1: &str) -> (StatusCode, Value) {
    entra_token(
        s,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "api://hotel/.default"),
            ("client_id", agent),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", t1),
        ],
        None,
    )
    .await
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_blueprint_obtains_t1_for_its_own_agents_only(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &["bookings.read"])
        .await;
    let (bp, bp_secret) = blueprint(&s, "travel-agents").await;
    let (other_bp, other_secret) = blueprint(&s, "other-agents").await;
    let agent = agent_of(&s, "trip-planner", &bp).await;
    let sibling = agent_of(&s, "trip-checker", &bp).await;
    let stranger = agent_of(&s, "stranger", &other_bp).await;

    // Inherited at creation: the blueprint's default roles and delegations.
    let (_, roles) = s
        .admin(Method::GET, &format!("/agents/{agent}/roles"), None)
        .await;
    assert_eq!(
        roles["items"],
        json!([{"resource": "api://hotel", "roles": ["read"]}])
    );
    let (_, delegations) = s
        .admin(Method::GET, &format!("/agents/{agent}/delegations"), None)
        .await;
    assert_eq!(
        delegations["items"],
        json!([{"resource": "api://hotel", "scopes": ["bookings.read"]}])
    );

    let (st, answer) = t1(&s, (&bp, &bp_secret), &agent).await;
    assert_eq!(st, StatusCode::OK, "{answer}");
    let token = answer["access_token"].as_str().expect("T1").to_owned();
    let c = claims_of(&token);
    assert_eq!(c["aud"], "api://AzureADTokenExchange");
    assert_eq!(c["sub"], agent.as_str());
    assert_eq!(c["azp"], bp.as_str());

    let (st, answer) = with_t1(&s, &agent, &token).await;
    assert_eq!(st, StatusCode::OK, "{answer}");
    let agent_token = claims_of(answer["access_token"].as_str().expect("access_token"));
    assert_eq!(agent_token["sub"], agent.as_str());
    assert_eq!(agent_token["roles"], json!(["read"]));

    // T1 is addressed to the exchange, not to the agent: no user's token to act for, and the
    // refusal says so.
    let (st, body) = entra_token(
        &s,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("requested_token_use", "on_behalf_of"),
            ("assertion", &token),
            ("scope", "api://hotel/.default"),
            ("client_id", &agent),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &token),
        ],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("aud is api://AzureADTokenExchange, not this agent"),
        "{body}"
    );

    // T1 names one agent: its sibling cannot use it.
    let (st, body) = with_t1(&s, &sibling, &token).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    // A blueprint gets no T1 for another blueprint's agent, nor with another scope.
    let (st, body) = t1(&s, (&bp, &bp_secret), &stranger).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "unauthorized_client");
    let (st, body) = t1(&s, (&other_bp, &other_secret), &agent).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    let (st, body) = entra_token(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "api://hotel/.default"),
            ("fmi_path", agent.as_str()),
        ],
        Some((&bp, &bp_secret)),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_scope");
    // Right credentials for the wrong request are not a failed login (RFC 6749 §5.2): a
    // blueprint without fmi_path, an agent with one.
    let (st, body) = s
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api://hotel/.default"),
            ],
            Some((&bp, &bp_secret)),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "unauthorized_client");
    let (loner, loner_secret) = s.agent("loner").await;
    let (st, body) = t1(&s, (&loner, &loner_secret), &agent).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "unauthorized_client");
    // A wrong secret stays a failed login.
    let (st, body) = t1(&s, (&loner, "not-the-secret"), &agent).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    // A blueprint's secret is no permission to introspect (SPEC §6: 401 or 403).
    let (st, body) = s
        .post_form(
            "/oauth2/introspect",
            &[("token", "x")],
            Some((&bp, &bp_secret)),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");

    // A disabled blueprint's T1 no longer authenticates its agent, and it gets no new one.
    let (st, _) = s
        .admin(
            Method::PATCH,
            &format!("/blueprints/{bp}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, body) = with_t1(&s, &agent, &token).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    let (st, body) = t1(&s, (&bp, &bp_secret), &agent).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    s.admin(
        Method::PATCH,
        &format!("/blueprints/{bp}"),
        Some(json!({"disabled": false})),
    )
    .await;

    // Deleting the blueprint soft-deletes its agents; restoring it restores those, and not
    // one deleted on its own just before (within the same second).
    let (st, _) = s
        .admin(Method::DELETE, &format!("/agents/{sibling}"), None)
        .await;
    assert!(st.is_success(), "{st}");
    let (st, _) = s
        .admin(Method::DELETE, &format!("/blueprints/{bp}"), None)
        .await;
    assert!(st.is_success(), "{st}");
    for a in [&agent, &sibling] {
        assert_eq!(s.get_agent(a).await["status"], "deleted");
    }
    assert_eq!(s.get_agent(&stranger).await["status"], "active");
    // Listed as agents are: hidden by default, shown with status=deleted.
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, live) = s.admin(Method::GET, "/blueprints", None).await;
    assert!(!ids(&live).contains(&bp), "{live}");
    assert!(ids(&live).contains(&other_bp), "{live}");
    let (_, deleted) = s
        .admin(Method::GET, "/blueprints?status=deleted", None)
        .await;
    assert_eq!(ids(&deleted), vec![bp.clone()], "{deleted}");
    let (st, body) = s
        .admin(Method::POST, &format!("/blueprints/{bp}/restore"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(s.get_agent(&agent).await["status"], "active");
    assert_eq!(s.get_agent(&sibling).await["status"], "deleted");
}

#[tokio::test]
async fn an_expired_t1_is_refused() {
    let clock = FixedClock::at(time::OffsetDateTime::now_utc());
    let shared: SharedClock = Arc::new(clock.clone());
    let Some(s) = TestServer::start_with_clock(Backend::Sqlite, shared).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &["bookings.read"])
        .await;
    let (bp, bp_secret) = blueprint(&s, "travel-agents").await;
    let agent = agent_of(&s, "trip-planner", &bp).await;
    let (st, answer) = t1(&s, (&bp, &bp_secret), &agent).await;
    assert_eq!(st, StatusCode::OK, "{answer}");
    let token = answer["access_token"].as_str().expect("T1").to_owned();
    let lifetime = answer["expires_in"].as_i64().expect("expires_in");
    clock.advance(time::Duration::seconds(lifetime + 1));
    let (st, body) = with_t1(&s, &agent, &token).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    // Entra's timestamp comes from the server's clock, like every other instant.
    let now = agentauth::clock::Clock::now(&clock);
    let expected = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    assert_eq!(body["timestamp"], expected.as_str(), "{body}");
}

/// Whether an agent named `name` exists.
async fn agent_named(s: &TestServer, name: &str) -> bool {
    s.all_pages("/agents")
        .await
        .iter()
        .any(|a| a["name"] == name)
}

/// Inheriting is refused, changing nothing, without a blueprint (400) or when the blueprint's
/// defaults name a role, scope or resource that is gone (409).
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn inheriting_what_cannot_be_inherited_is_refused(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (st, body) = s
        .admin(
            Method::POST,
            "/agents",
            Some(
                json!({"name": "orphan", "sponsors": ["x@example.com"], "inherit_defaults": true}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        !agent_named(&s, "orphan").await,
        "a refused request changes nothing"
    );

    let hotel = s
        .resource_view("api://hotel", &["read"], &["bookings.read"])
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (bp, _) = blueprint(&s, "travel-agents").await;
    // A role or scope taken off the resource leaves the blueprint's defaults too, so a PATCH
    // leaves nothing stale to inherit.
    for (patch, member) in [
        (json!({"scopes": []}), "default_delegations"),
        (json!({"roles": []}), "default_roles"),
    ] {
        let (st, body) = s
            .admin(Method::PATCH, &format!("/resources/{hotel}"), Some(patch))
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let (_, blueprint) = s
            .admin(Method::GET, &format!("/blueprints/{bp}"), None)
            .await;
        assert_eq!(blueprint[member], json!([]), "{blueprint}");
    }
    // A deleted resource is still named by the defaults: inheriting it is refused.
    s.resource("api://spa", &["massage"], &[]).await;
    let (st, spa_bp) = s
        .admin(
            Method::POST,
            "/blueprints",
            Some(json!({
                "name": "spa-agents", "sponsors": ["x@example.com"],
                "default_roles": [{"resource": "api://spa", "roles": ["massage"]}],
            })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{spa_bp}");
    let spa_bp = spa_bp["id"].as_str().expect("id").to_owned();
    let spa = s.admin(Method::GET, "/resources?limit=500", None).await.1["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["identifier"] == "api://spa")
        .expect("api://spa")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (st, body) = s
        .admin(Method::DELETE, &format!("/resources/{spa}"), None)
        .await;
    assert!(st.is_success(), "{st} {body}");
    let (st, body) = s
        .admin(
            Method::POST,
            "/agents",
            Some(json!({"name": "late-planner", "sponsors": ["x@example.com"], "blueprint_id": spa_bp, "inherit_defaults": true})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("api://spa is no longer registered"),
        "{body}"
    );
    assert!(!agent_named(&s, "late-planner").await);
}

/// Entra correlates a request by the caller's `client-request-id` (MSAL sends one): an error's
/// `correlation_id` is that id, and `return-client-request-id: true` has it echoed back.
#[tokio::test]
async fn an_error_carries_the_callers_client_request_id() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (agent, _) = s.agent("correlated").await;
    let id = "11111111-2222-3333-4444-555555555555";
    let res = s
        .http
        .post(s.url(&format!("/{}/oauth2/v2.0/token", s.tenant_id())))
        .header("client-request-id", id)
        .header("return-client-request-id", "true")
        .basic_auth(&agent, Some("wrong-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "api://x/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["client-request-id"], id);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["correlation_id"], id, "{body}");
    assert!(
        body["error_description"].as_str().unwrap().contains(id),
        "{body}"
    );
    // Without one, each error gets its own.
    let (_, body) = entra_token(
        &s,
        &[("grant_type", "client_credentials")],
        Some((&agent, "wrong-secret")),
    )
    .await;
    assert!(uuid::Uuid::parse_str(body["correlation_id"].as_str().unwrap()).is_ok());
    assert_ne!(body["correlation_id"], id);
}
