//! The server over time: restarts keep everything, many requests at once, declarative setup
//! applied idempotently (SPEC §9), health and readiness.

use crate::support::{Backend, TestServer, claims_of};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use std::collections::HashSet;

async fn jwks_kids(s: &TestServer) -> Vec<String> {
    let jwks: Value = s
        .http
        .get(s.url("/oauth2/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_restart_keeps_agents_keys_tokens_and_revocations(#[case] backend: Backend) {
    let Some(mut s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("durable-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let kept = s.token(&id, &secret, "api://hotel/.default").await;
    let revoked = s.token(&id, &secret, "api://hotel/.default").await;
    let (status, _) = s
        .post_form(
            "/oauth2/revoke",
            &[("token", &revoked)],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (blocked, blocked_secret) = s.agent("blocked-agent").await;
    s.grant_roles(&blocked, "api://hotel", &["read"]).await;
    let blocked_token = s
        .token(&blocked, &blocked_secret, "api://hotel/.default")
        .await;
    s.agent_action(&blocked, "revoke-tokens", StatusCode::NO_CONTENT)
        .await;
    let agent_before = s.get_agent(&id).await;
    let kids_before = jwks_kids(&s).await;
    let admin_before = s.admin_client_id.clone();
    let base_before = s.base.clone();

    s.restart().await;

    assert_eq!(s.base, base_before);
    assert_eq!(
        s.admin_client_id, admin_before,
        "the bootstrap admin is reused"
    );
    assert_eq!(jwks_kids(&s).await, kids_before, "the signing key survives");
    let mut agent_after = s.get_agent(&id).await;
    // Activity may have been flushed at shutdown.
    agent_after["last_active_at"] = agent_before["last_active_at"].clone();
    assert_eq!(agent_after, agent_before);
    assert_eq!(s.introspect(&kept).await["active"], true);
    assert_eq!(s.introspect(&revoked).await, json!({"active": false}));
    assert_eq!(s.introspect(&blocked_token).await, json!({"active": false}));
    let fresh = s.token(&id, &secret, "api://hotel/.default").await;
    assert_eq!(
        crate::support::header_of(&fresh)["kid"],
        crate::support::header_of(&kept)["kid"]
    );
    assert_eq!(s.introspect(&fresh).await["active"], true);
    // The audit chain carries on across the restart.
    let records: Vec<_> = s
        .all_pages("/audit")
        .await
        .iter()
        .map(crate::support::audit_record)
        .collect();
    agentauth::audit::verify_chain(&records).expect("one intact chain");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn two_hundred_concurrent_requests_all_get_distinct_tokens(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("busy-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (http, url, id, secret) = (
            s.http.clone(),
            s.url("/oauth2/token"),
            id.clone(),
            secret.clone(),
        );
        tasks.spawn(async move {
            let res = http
                .post(url)
                .basic_auth(&id, Some(&secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "api://hotel/.default"),
                ])
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{body}");
            body["access_token"].as_str().unwrap().to_owned()
        });
    }
    let tokens: Vec<String> = tasks.join_all().await;
    assert_eq!(tokens.len(), 200);
    let jtis: HashSet<String> = tokens
        .iter()
        .map(|t| claims_of(t)["jti"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(jtis.len(), 200);
    let issued = s
        .all_pages(&format!(
            "/audit?agent_id={id}&action=token.issue&outcome=success"
        ))
        .await;
    assert_eq!(issued.len(), 200, "every token has its audit event");
}

const FIXED_ID: &str = "0190b2a4-1111-7000-8000-000000000001";
const FIXED_SECRET: &str = "fixed-secret-for-reproducible-tests-0123456789abcdef";

fn apply_file() -> String {
    format!(
        r#"
[[resources]]
identifier = "api://hotel"
name = "Hotel API"
roles = ["bookings.read", "bookings.write"]
scopes = ["bookings.manage"]

[[resources]]
identifier = "https://mail.example"
roles = ["send"]
token_profile = "entra"

[[agents]]
id = "{FIXED_ID}"
name = "fixed-agent"
description = "made by apply"
owners = ["team-travel"]
sponsors = ["alice@example.com"]
token_ttl_seconds = 600
client_secret = "{FIXED_SECRET}"
tags = {{ env = "ci" }}
roles = [{{ resource = "api://hotel", roles = ["bookings.read"] }}]
delegations = [{{ resource = "api://hotel", scopes = ["bookings.manage"] }}]

[[agents]]
name = "named-agent"
sponsors = ["bob@example.com"]
# Empty lists: nothing held, which applying again must not count as a change.
roles = [{{ resource = "https://mail.example", roles = [] }}]
delegations = [{{ resource = "api://hotel", scopes = [] }}]

[[user_assignments]]
principal = "user-1"
resource = "api://hotel"
scopes = ["bookings.manage"]

[[user_assignments]]
principal = "user-2"
resource = "api://hotel"
scopes = []

[[trusted_issuers]]
issuer = "https://idp.example.com"
jwks_uri = "https://idp.example.com/keys"
audiences = ["api://agentauth"]
use = ["subject_tokens"]
"#
    )
}

/// The example file the README and `deploy/` show applies, and applies again as a no-op.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_example_file_applies_twice(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/agentauth.example.toml");
    let admin = s.offline_admin().await;
    let first = agentauth::apply::apply_file(&admin, &file)
        .await
        .expect("applies");
    assert!(first.created >= 6, "{first:?}");
    let second = agentauth::apply::apply_file(&admin, &file)
        .await
        .expect("applies again");
    assert_eq!((second.created, second.updated), (0, 0), "{second:?}");
    let planner = s
        .all_pages("/agents")
        .await
        .into_iter()
        .find(|a| a["name"] == "trip-planner")
        .expect("trip-planner");
    let id = planner["id"].as_str().unwrap();
    let (_, roles) = s
        .admin(Method::GET, &format!("/agents/{id}/roles"), None)
        .await;
    assert_eq!(
        roles["items"],
        json!([{"resource": "api://hotel", "roles": ["bookings.read"]}]),
        "inherited from the blueprint"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn applying_a_file_twice_changes_nothing_the_second_time(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let file = s.data_dir.join("setup.toml");
    std::fs::write(&file, apply_file()).unwrap();
    let admin = s.offline_admin().await;
    let first = agentauth::apply::apply_file(&admin, &file)
        .await
        .expect("applies");
    assert!(first.created >= 5, "{first:?}");
    let second = agentauth::apply::apply_file(&admin, &file)
        .await
        .expect("applies again");
    assert_eq!((second.created, second.updated), (0, 0), "{second:?}");
    assert!(second.unchanged >= first.created, "{second:?}");

    let agent = s.get_agent(FIXED_ID).await;
    assert_eq!(agent["name"], "fixed-agent");
    assert_eq!(agent["owners"], json!(["team-travel"]));
    assert_eq!(agent["tags"], json!({"env": "ci"}));
    let (_, creds) = s
        .admin(
            Method::GET,
            &format!("/agents/{FIXED_ID}/credentials"),
            None,
        )
        .await;
    assert_eq!(
        creds["items"].as_array().unwrap().len(),
        1,
        "one secret, not one per apply"
    );
    let body = s
        .token_response(FIXED_ID, FIXED_SECRET, "api://hotel/.default")
        .await;
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], FIXED_ID);
    assert_eq!(claims["roles"], json!(["bookings.read"]));
    assert_eq!(body["expires_in"], 600);
    let (_, delegations) = s
        .admin(
            Method::GET,
            &format!("/agents/{FIXED_ID}/delegations"),
            None,
        )
        .await;
    assert_eq!(
        delegations["items"],
        json!([{"resource": "api://hotel", "scopes": ["bookings.manage"]}])
    );
    let (_, ua) = s
        .admin(Method::GET, "/user-assignments?principal=user-1", None)
        .await;
    assert_eq!(
        ua["items"],
        json!([{"principal": "user-1", "resource": "api://hotel", "scopes": ["bookings.manage"]}])
    );
    let (_, issuers) = s.admin(Method::GET, "/trusted-issuers", None).await;
    assert_eq!(issuers["items"].as_array().unwrap().len(), 1);
    let (_, page) = s
        .admin(Method::GET, "/agents?sponsor=bob@example.com", None)
        .await;
    assert_eq!(page["items"][0]["name"], "named-agent");

    // A changed file updates what changed, and only that.
    std::fs::write(
        &file,
        apply_file().replace("made by apply", "changed by apply"),
    )
    .unwrap();
    let third = agentauth::apply::apply_file(&admin, &file)
        .await
        .expect("applies a change");
    assert_eq!((third.created, third.updated), (0, 1), "{third:?}");
    assert_eq!(
        s.get_agent(FIXED_ID).await["description"],
        "changed by apply"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn health_and_readiness_answer(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    for (path, expected) in [
        ("/healthz", json!({"status": "ok"})),
        (
            "/readyz",
            json!({"status": "ready", "store": true, "signing_key": true}),
        ),
    ] {
        let res = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(res.json::<Value>().await.unwrap(), expected, "{path}");
    }
}

/// Files holding secrets are their owner's only: the signing key, the admin credentials, the
/// database (secret hashes, the audit trail) with its WAL, and the audit lookups (agent ids,
/// times) with theirs.
#[cfg(unix)]
#[tokio::test]
async fn files_holding_secrets_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let mut files = vec![
        s.data_dir.join("admin-credentials.json"),
        s.data_dir.join("agentauth.db"),
        s.data_dir.join("agentauth.db-wal"),
        s.data_dir.join("agentauth.db-audit-lookups"),
        s.data_dir.join("agentauth.db-audit-lookups-wal"),
    ];
    for entry in std::fs::read_dir(s.data_dir.join("keys")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pem") {
            files.push(path);
        }
    }
    assert!(files.len() > 5, "no private key file in {files:?}");
    for file in files {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}
