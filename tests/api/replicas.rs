//! Two processes of the real binary over one PostgreSQL database, signing keys in the database
//! sealed under one key-encryption key (SPEC §6, §7, §10): a token issued by one introspects
//! on the other; a revocation or a disable on one shows on the other at once; an assertion
//! replayed against the other is refused; a key rotated on one is published and used by both;
//! the audit hash chain stays valid with both writing.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure is the report

use crate::fake_idp::{ASSERTION_TYPE, TestKey, assertion_claims};
use crate::server_process::{ServerProcess, free_port, spawn};
use crate::support::{fresh_postgres_database, header_of, new_kek, poll};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// Seconds a rotated key waits, published, before it signs (short, for the test).
const PREPUBLISH: &str = "2";

/// Starts two replicas on `database_url` with the database key store; both know the issuer as
/// the first one's address.
async fn two_replicas(
    database_url: &str,
    dirs: &(tempfile::TempDir, tempfile::TempDir),
) -> (ServerProcess, ServerProcess, String) {
    let (p1, p2) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{p1}");
    let kek = new_kek();
    let args = ["--database-url", database_url, "--base-url", &base];
    let env = [
        ("AGENTAUTH_KEYS__STORE", "database"),
        ("AGENTAUTH_KEK", kek.as_str()),
        ("AGENTAUTH_KEYS__PREPUBLISH_SECONDS", PREPUBLISH),
        ("AGENTAUTH_KEYS__CHECK_INTERVAL_SECONDS", "1"),
    ];
    let one = spawn(dirs.0.path(), p1, &args, &env).await;
    let two = spawn(dirs.1.path(), p2, &args, &env).await;
    (one, two, base)
}

/// A new agent with a client secret: (id, secret).
async fn agent(node: &ServerProcess, admin: &str, name: &str) -> (String, String) {
    let a = node
        .admin_ok(
            admin,
            Method::POST,
            "/agents",
            Some(json!({"name": name, "sponsors": ["alice@example.com"]})),
        )
        .await;
    let id = a["id"].as_str().expect("id").to_owned();
    let c = node
        .admin_ok(
            admin,
            Method::POST,
            &format!("/agents/{id}/credentials"),
            Some(json!({"type": "client_secret"})),
        )
        .await;
    (id, c["secret"].as_str().expect("secret").to_owned())
}

async fn introspect(node: &ServerProcess, who: (&str, &str), token: &str) -> Value {
    let (st, b) = node
        .form("/oauth2/introspect", &[("token", token)], Some(who))
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    b
}

fn kid_of(token: &str) -> String {
    header_of(token)["kid"].as_str().expect("kid").to_owned()
}

async fn published_kids(node: &ServerProcess) -> BTreeSet<String> {
    node.get_json("/oauth2/jwks").await["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

#[tokio::test]
async fn two_replicas_over_one_postgresql_share_everything() {
    let Some(database_url) = fresh_postgres_database().await else {
        eprintln!(
            "notice: the replica test needs PostgreSQL (AGENTAUTH_TEST_POSTGRES_URL); skipped"
        );
        return;
    };
    let dirs = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    let (one, two, base) = two_replicas(&database_url, &dirs).await;

    // Both replicas publish, and sign with, the one key in the database.
    let first_keys = published_kids(&one).await;
    assert_eq!(first_keys.len(), 1, "{first_keys:?}");
    assert_eq!(published_kids(&two).await, first_keys);

    let (admin_id, admin_secret) = one.admin_credentials();
    let admin = one
        .token(&admin_id, &admin_secret, &format!("{base}/admin/.default"))
        .await;
    one.admin_ok(
        &admin,
        Method::POST,
        "/resources",
        Some(json!({"identifier": "api://hotel", "name": "hotel", "roles": ["bookings.read"]})),
    )
    .await;
    let (id, secret) = agent(&one, &admin, "replicated-agent").await;
    let (rs, rs_secret) = agent(&one, &admin, "resource-server").await;
    one.admin_ok(
        &admin,
        Method::PUT,
        &format!("/agents/{id}/roles"),
        Some(json!({"resource": "api://hotel", "roles": ["bookings.read"]})),
    )
    .await;
    one.admin_ok(
        &admin,
        Method::PUT,
        &format!("/agents/{rs}/roles"),
        Some(json!({"resource": format!("{base}/admin"), "roles": ["introspect"]})),
    )
    .await;
    let key = TestKey::ec(Some("replica-key"));
    one.admin_ok(
        &admin,
        Method::POST,
        &format!("/agents/{id}/credentials"),
        Some(json!({"type": "public_key", "jwk": key.jwk()})),
    )
    .await;
    let scope = "api://hotel/.default";

    // An assertion accepted by one replica is a replay on the other, both ways round.
    for (first, second) in [(&one, &two), (&two, &one)] {
        let a = key.sign(&assertion_claims(&id, &format!("{base}/oauth2/token")));
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("client_id", id.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", a.as_str()),
        ];
        let (st, b) = first.form("/oauth2/token", &form, None).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        let (st, b) = second.form("/oauth2/token", &form, None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{b}");
        assert_eq!(b["error"], "invalid_client");
    }

    // A token issued by one introspects active on the other, signed by the same key.
    let rs_auth = (rs.as_str(), rs_secret.as_str());
    let t1 = one.token(&id, &secret, scope).await;
    let t2 = two.token(&id, &secret, scope).await;
    assert_eq!(kid_of(&t1), kid_of(&t2));
    for (node, token) in [(&two, &t1), (&one, &t2)] {
        let i = introspect(node, rs_auth, token).await;
        assert_eq!(i["active"], true, "{i}");
        assert_eq!(i["client_id"], id.as_str());
    }

    // RFC 7009 revocation on the second replica shows on the first at once…
    let (st, b) = two
        .form(
            "/oauth2/revoke",
            &[("token", t2.as_str())],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        introspect(&one, rs_auth, &t2).await,
        json!({"active": false})
    );
    assert_eq!(introspect(&one, rs_auth, &t1).await["active"], true);
    // …and revoke-tokens on the first shows on the second.
    let (st, _) = one
        .admin(
            &admin,
            Method::POST,
            &format!("/agents/{id}/revoke-tokens"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        introspect(&two, rs_auth, &t1).await,
        json!({"active": false})
    );

    // Disabling the agent on one: its fresh token from the other turns inactive there at once,
    // and the other stops issuing within its cache lifetime.
    let t3 = two.token(&id, &secret, scope).await;
    assert_eq!(introspect(&two, rs_auth, &t3).await["active"], true);
    one.admin_ok(&admin, Method::POST, &format!("/agents/{id}/disable"), None)
        .await;
    assert_eq!(
        introspect(&two, rs_auth, &t3).await,
        json!({"active": false})
    );
    poll(
        "the other replica to refuse the disabled agent",
        Duration::from_secs(5),
        async || {
            let (st, b) = two
                .form(
                    "/oauth2/token",
                    &[("grant_type", "client_credentials"), ("scope", scope)],
                    Some((&id, &secret)),
                )
                .await;
            (st != StatusCode::OK).then_some(b)
        },
    )
    .await;
    one.admin_ok(&admin, Method::POST, &format!("/agents/{id}/enable"), None)
        .await;

    // A key rotated on one is published by both, and after the pre-publication window both
    // sign with it.
    let old = kid_of(&one.token(&id, &secret, scope).await);
    let (st, view) = one.admin(&admin, Method::POST, "/keys/rotate", None).await;
    assert_eq!(st, StatusCode::CREATED, "{view}");
    let new = view["kid"].as_str().expect("kid").to_owned();
    let both: BTreeSet<String> = [old.clone(), new.clone()].into();
    assert_eq!(published_kids(&one).await, both);
    poll(
        "the rotated key in the other replica's JWKS",
        Duration::from_secs(10),
        async || (published_kids(&two).await == both).then_some(()),
    )
    .await;
    for node in [&one, &two] {
        poll(
            "tokens signed by the rotated key",
            Duration::from_secs(15),
            async || (kid_of(&node.token(&id, &secret, scope).await) == new).then_some(()),
        )
        .await;
    }

    // Both replicas write audit events at once; the hash chain stays one valid chain.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let node = if i % 2 == 0 {
            one.url.clone()
        } else {
            two.url.clone()
        };
        let (id, secret) = (id.clone(), secret.clone());
        tasks.spawn(async move {
            reqwest::Client::new()
                .post(format!("{node}/oauth2/token"))
                .basic_auth(&id, Some(&secret))
                .form(&[("grant_type", "client_credentials"), ("scope", scope)])
                .send()
                .await
                .expect("token request")
                .status()
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.expect("task"), StatusCode::OK);
    }
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentauth"))
        .args(["audit", "verify", "--url", &two.url, "--credentials"])
        .arg(dirs.0.path().join("admin-credentials.json"))
        .env_remove("AGENTAUTH_URL")
        .env_remove("AGENTAUTH_CREDENTIALS")
        .output()
        .await
        .expect("agentauth audit verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("audit chain intact"), "{stdout}");
}
