//! The audit trail (SPEC §10): token decisions with reason codes, admin changes with before and
//! after, no secrets or whole tokens, and a hash chain that exposes edited or deleted rows.

use crate::support::{Backend, TestServer, audit_record, claims_of, rfc3339_in};
use agentauth::audit::verify_chain;
use agentauth::domain::AuditRecord;
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};

const UNKNOWN: &str = "0190b2a4-0000-7000-8000-0000000000aa";

async fn events(s: &TestServer, query: &str) -> Vec<Value> {
    s.all_pages(&format!("/audit?{query}")).await
}

/// The only event matching `query`.
async fn one_event(s: &TestServer, query: &str) -> Value {
    let found = events(s, query).await;
    assert_eq!(found.len(), 1, "{query}: {found:#?}");
    found.into_iter().next().unwrap()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn token_decisions_are_audited_with_reason_codes(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read", "write"], &[]).await;
    let (id, secret) = s.agent("audited-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let token = s.token(&id, &secret, "api://hotel/.default").await;
    let claims = claims_of(&token);

    let issued = one_event(
        &s,
        &format!("agent_id={id}&action=token.issue&outcome=success"),
    )
    .await;
    assert_eq!(issued["actor"], id.as_str());
    assert_eq!(issued["reason"], json!(null));
    let d = &issued["detail"];
    assert_eq!(d["jti"], claims["jti"]);
    assert_eq!(d["audience"], "api://hotel");
    assert_eq!(d["subject"], id.as_str());
    assert_eq!(d["grant_type"], "client_credentials");
    assert_eq!(d["client_auth"], "client_secret_basic");
    assert_eq!(d["roles"], json!(["read"]));
    assert_eq!(d["expires_at"], claims["exp"]);

    // Refusals, each with its reason code and a one-line explanation.
    let form = |scope: &'static str| [("grant_type", "client_credentials"), ("scope", scope)];
    let (status, _) = s
        .token_form(&form("api://hotel/write"), Some((&id, &secret)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s
        .token_form(&form("api://nowhere/.default"), Some((&id, &secret)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s
        .token_form(&form("api://hotel/.default"), Some((&id, "wrong-secret")))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s
        .token_form(&form("api://hotel/.default"), Some((UNKNOWN, "x")))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.agent_action(&id, "disable", StatusCode::OK).await;
    let (status, _) = s
        .token_form(&form("api://hotel/.default"), Some((&id, &secret)))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let failures = events(&s, &format!("agent_id={id}&outcome=failure")).await;
    let reasons: Vec<(&str, &str)> = failures
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("token.issue", "invalid_scope"),
            ("token.issue", "invalid_target"),
            ("client.authenticate", "wrong_secret"),
            ("client.authenticate", "agent_not_active"),
        ]
    );
    for e in &failures {
        assert_eq!(e["outcome"], "failure");
        let why = e["detail"]["explanation"].as_str().unwrap();
        assert!(!why.is_empty() && !why.contains('\n'), "{e}");
    }
    // A refused token names what was asked for and how the client authenticated.
    let d = &failures[0]["detail"];
    assert_eq!(d["requested_scope"], "api://hotel/write", "{d}");
    assert_eq!(d["client_auth"], "client_secret_basic", "{d}");
    assert!(d["credential_id"].is_string(), "{d}");
    assert_eq!(
        failures[1]["detail"]["requested_scope"],
        "api://nowhere/.default"
    );
    let unknown = one_event(&s, &format!("agent_id={UNKNOWN}")).await;
    assert_eq!(
        (unknown["action"].as_str(), unknown["reason"].as_str()),
        (Some("client.authenticate"), Some("unknown_client"))
    );
    assert_eq!(unknown["actor"], "anonymous");

    // Filters combine; since and until bound the time.
    assert_eq!(
        events(
            &s,
            &format!("agent_id={id}&action=token.issue&outcome=failure")
        )
        .await
        .len(),
        2
    );
    let future = rfc3339_in(3600).0;
    let past = rfc3339_in(-3600).0;
    assert!(
        events(&s, &format!("agent_id={id}&since={future}"))
            .await
            .is_empty()
    );
    assert!(
        events(&s, &format!("agent_id={id}&until={past}"))
            .await
            .is_empty()
    );
    assert_eq!(
        events(&s, &format!("agent_id={id}&since={past}&until={future}"))
            .await
            .len(),
        events(&s, &format!("agent_id={id}")).await.len()
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn introspection_and_revocation_are_audited(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("audited-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let token = s.token(&id, &secret, "api://hotel/.default").await;
    let jti = claims_of(&token)["jti"].clone();
    let (rs, rs_secret) = s.introspector().await;
    s.introspect_as(&rs, &rs_secret, &token).await;
    let (status, _) = s
        .post_form("/oauth2/revoke", &[("token", &token)], Some((&id, &secret)))
        .await;
    assert_eq!(status, StatusCode::OK);
    s.introspect_as(&rs, &rs_secret, &token).await;
    let (status, _) = s
        .post_form(
            "/oauth2/introspect",
            &[("token", &token)],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let introspections = events(&s, &format!("agent_id={rs}&action=token.introspect")).await;
    let active: Vec<&Value> = introspections
        .iter()
        .map(|e| &e["detail"]["active"])
        .collect();
    assert_eq!(active, vec![&json!(true), &json!(false)]);
    assert!(introspections.iter().all(|e| e["detail"]["jti"] == jti));
    let revoked = one_event(&s, &format!("agent_id={id}&action=token.revoke")).await;
    assert_eq!(revoked["detail"]["jti"], jti);
    assert_eq!(revoked["outcome"], "success");
    let refused = one_event(&s, &format!("agent_id={id}&action=token.introspect")).await;
    assert_eq!(
        (refused["outcome"].as_str(), refused["reason"].as_str()),
        (Some("failure"), Some("not_permitted"))
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn admin_changes_carry_who_before_and_after(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read", "write"], &[]).await;
    let (id, _) = s
        .agent_from(json!({"name": "changed", "description": "old", "sponsors": ["alice"]}))
        .await;
    let (status, _) = s
        .admin(
            Method::PATCH,
            &format!("/agents/{id}"),
            Some(json!({"description": "new"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    s.grant_roles(&id, "api://hotel", &["read", "write"]).await;
    s.agent_action(&id, "disable", StatusCode::OK).await;

    let created = one_event(&s, &format!("agent_id={id}&action=agent.create")).await;
    assert_eq!(created["actor"], s.admin_client_id.as_str());
    assert_eq!(created["detail"]["before"], json!(null));
    assert_eq!(created["detail"]["after"]["name"], "changed");
    assert_eq!(created["detail"]["after"]["description"], "old");

    let updated = one_event(&s, &format!("agent_id={id}&action=agent.update")).await;
    assert_eq!(updated["actor"], s.admin_client_id.as_str());
    assert_eq!(updated["outcome"], "success");
    assert_eq!(updated["detail"]["before"]["description"], "old");
    assert_eq!(updated["detail"]["after"]["description"], "new");
    assert_eq!(updated["detail"]["before"]["id"], id.as_str());

    let roles = events(&s, &format!("agent_id={id}&action=agent.roles.set")).await;
    assert_eq!(roles.len(), 2);
    assert_eq!(roles[1]["detail"]["before"]["roles"], json!(["read"]));
    assert_eq!(
        roles[1]["detail"]["after"]["roles"],
        json!(["read", "write"])
    );

    let disabled = one_event(&s, &format!("agent_id={id}&action=agent.disable")).await;
    assert_eq!(disabled["detail"]["before"]["status"], "active");
    assert_eq!(disabled["detail"]["after"]["status"], "disabled");

    let secret_event = one_event(&s, &format!("agent_id={id}&action=credential.create")).await;
    assert_eq!(secret_event["detail"]["after"]["type"], "client_secret");
    assert!(secret_event["detail"]["after"].get("secret").is_none());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn no_event_holds_a_secret_or_a_whole_token(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("careful-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let wrong = "a-wrong-secret-that-must-not-be-kept-0123456789";
    let mut tokens = vec![s.token(&id, &secret, "api://hotel/.default").await];
    let (_, body) = s
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
    tokens.push(body["access_token"].as_str().unwrap().to_owned());
    s.token_form(
        &[
            ("grant_type", "client_credentials"),
            ("scope", "api://hotel/.default"),
        ],
        Some((&id, wrong)),
    )
    .await;
    s.introspect(&tokens[0]).await;
    s.post_form(
        "/oauth2/revoke",
        &[("token", &tokens[1])],
        Some((&id, &secret)),
    )
    .await;
    tokens.push(s.admin_token().await);

    let exported = serde_json::to_string(&events(&s, "").await).unwrap();
    for (what, needle) in [
        ("agent secret", secret.as_str()),
        ("admin secret", s.admin_secret.as_str()),
        ("wrong secret", wrong),
    ] {
        assert!(!exported.contains(needle), "the audit log holds the {what}");
    }
    for t in &tokens {
        assert!(
            !exported.contains(t.as_str()),
            "the audit log holds a whole token"
        );
        let signature = t.rsplit('.').next().unwrap();
        assert!(
            !exported.contains(signature),
            "the audit log holds a token's signature"
        );
    }
    assert!(
        !exported.contains("$argon2"),
        "the audit log holds a secret hash"
    );
}

/// Every record, fetched through the admin API and rebuilt as the CLI does.
async fn chain(s: &TestServer) -> Vec<AuditRecord> {
    events(s, "").await.iter().map(audit_record).collect()
}

/// A server with some history: agents, secrets, tokens, a refusal.
async fn busy_server(backend: Backend) -> Option<TestServer> {
    let s = TestServer::start(backend).await?;
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("chained-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    s.token(&id, &secret, "api://hotel/.default").await;
    s.token_form(
        &[
            ("grant_type", "client_credentials"),
            ("scope", "api://hotel/nope"),
        ],
        Some((&id, &secret)),
    )
    .await;
    Some(s)
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_intact_chain_verifies(#[case] backend: Backend) {
    let Some(s) = busy_server(backend).await else {
        return;
    };
    let records = chain(&s).await;
    assert!(records.len() >= 10, "{}", records.len());
    let checked = verify_chain(&records).expect("the chain is intact");
    assert_eq!(checked, records.len() as i64);
    assert_eq!(records[0].prev_hash, "0".repeat(64));
}

/// Tampering behind the server's back breaks the chain where it happened: (statement,
/// the seq at which verification stops).
#[rstest]
#[case::detail_edited(
    "UPDATE audit_events SET detail = '{\"explanation\":\"nothing happened\"}' WHERE seq = 3",
    3
)]
#[case::outcome_flipped(
    "UPDATE audit_events SET outcome = 'success' WHERE outcome = 'failure'",
    0
)]
#[case::actor_changed("UPDATE audit_events SET actor = 'mallory' WHERE seq = 4", 4)]
#[case::row_deleted("DELETE FROM audit_events WHERE seq = 3", 4)]
#[case::last_row_rehashed_elsewhere("UPDATE audit_events SET prev_hash = hash WHERE seq = 5", 5)]
#[tokio::test]
async fn tampering_breaks_the_chain(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] statement: &str,
    #[case] breaks_at: i64,
) {
    let Some(s) = busy_server(backend).await else {
        return;
    };
    let before = chain(&s).await;
    verify_chain(&before).expect("intact before tampering");
    let changed = s.sql(statement).await;
    assert!(changed >= 1, "{statement}");
    let broken = verify_chain(&chain(&s).await).expect_err("tampering is detected");
    let expected = if breaks_at == 0 {
        // The first failure in the chain.
        before
            .iter()
            .find(|r| r.event.outcome == agentauth::domain::Outcome::Failure)
            .unwrap()
            .seq
    } else {
        breaks_at
    };
    assert_eq!(broken.seq, expected, "{broken}");
}

/// A request refused before any client is identified is audited too (SPEC §10: "every token
/// issued or refused", "every introspection and revocation"), once, under the client it claims.
/// `{id}` is an agent's id; `{tenant}` the tenant id.
#[rstest]
#[case::duplicate_scope(
    "/oauth2/token",
    "grant_type=client_credentials&scope=a&scope=b",
    "application/x-www-form-urlencoded",
    true,
    "token.issue",
    "invalid_request"
)]
#[case::client_id_mismatch(
    "/oauth2/token",
    "grant_type=client_credentials&scope=api%3A%2F%2Fhotel%2F.default&client_id=0190b2a4-0000-7000-8000-0000000000bb",
    "application/x-www-form-urlencoded",
    true,
    "token.issue",
    "invalid_request"
)]
#[case::unknown_grant(
    "/oauth2/token",
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Asaml2-bearer&assertion=x",
    "application/x-www-form-urlencoded",
    true,
    "token.issue",
    "unsupported_grant_type"
)]
#[case::no_grant(
    "/oauth2/token",
    "scope=api%3A%2F%2Fhotel%2F.default",
    "application/x-www-form-urlencoded",
    true,
    "token.issue",
    "invalid_request"
)]
#[case::json_body(
    "/oauth2/token",
    "{\"grant_type\": \"client_credentials\"}",
    "application/json",
    true,
    "token.issue",
    "invalid_request"
)]
#[case::entra_duplicate(
    "/{tenant}/oauth2/v2.0/token",
    "grant_type=client_credentials&scope=x&scope=x",
    "application/x-www-form-urlencoded",
    true,
    "token.issue",
    "invalid_request"
)]
#[case::introspect_duplicate(
    "/oauth2/introspect",
    "token=a&token=b",
    "application/x-www-form-urlencoded",
    true,
    "token.introspect",
    "invalid_request"
)]
#[case::revoke_without_token(
    "/oauth2/revoke",
    "token_type_hint=access_token",
    "application/x-www-form-urlencoded",
    true,
    "token.revoke",
    "invalid_request"
)]
#[case::secret_two_ways(
    "/oauth2/token",
    "grant_type=client_credentials&client_id={id}&client_secret=s",
    "application/x-www-form-urlencoded",
    true,
    "token.issue",
    "invalid_request"
)]
#[tokio::test]
async fn refusals_before_authentication_are_audited(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] path: &str,
    #[case] body: &str,
    #[case] content_type: &str,
    #[case] basic: bool,
    #[case] action: &str,
    #[case] reason: &str,
) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("claimed-agent").await;
    let query = format!("action={action}&outcome=failure");
    let before = events(&s, &query).await.len();
    let mut req = s
        .http
        .post(s.url(&path.replace("{tenant}", &s.tenant_id())))
        .header("content-type", content_type)
        .body(body.replace("{id}", &id));
    if basic {
        req = req.basic_auth(&id, Some(&secret));
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["error"], reason, "{answer}");

    let after = events(&s, &query).await;
    assert_eq!(after.len(), before + 1, "{after:#?}");
    let event = after
        .iter()
        .find(|e| e["reason"] == reason)
        .expect("the refusal's event");
    assert_eq!(event["agent_id"], id.as_str(), "{event}");
    assert_eq!(event["detail"]["client_id"], id.as_str(), "{event}");
    assert!(
        event["detail"]["explanation"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{event}"
    );
}

/// A client that puts a token in the wrong parameter does not get it into the audit log or
/// the error: what a refusal echoes is cut to a short prefix.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_token_in_the_wrong_parameter_is_not_echoed(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &["bookings.read"])
        .await;
    let (id, secret) = s.agent("swapping-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let token = s.token(&id, &secret, "api://hotel/.default").await;
    let exchange = "urn:ietf:params:oauth:grant-type:token-exchange";
    let access_token = "urn:ietf:params:oauth:token-type:access_token";
    for form in [
        vec![
            ("grant_type", exchange),
            ("subject_token", access_token),
            ("subject_token_type", token.as_str()),
            ("resource", "api://hotel"),
        ],
        vec![
            ("grant_type", exchange),
            ("subject_token", token.as_str()),
            ("subject_token_type", access_token),
            ("requested_token_type", token.as_str()),
            ("resource", "api://hotel"),
        ],
        vec![
            ("grant_type", token.as_str()),
            ("scope", "api://hotel/.default"),
        ],
    ] {
        let (status, body) = s.token_form(&form, Some((&id, &secret))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains('…'), "{description}");
        let signature = token.rsplit('.').next().unwrap();
        assert!(!description.contains(signature), "{description}");
    }
    let exported = serde_json::to_string(&events(&s, "outcome=failure").await).unwrap();
    assert!(exported.contains("eyJ"), "the refusals are audited");
    for part in token.split('.') {
        assert!(
            !exported.contains(part),
            "the audit log holds part of a token"
        );
    }
}
