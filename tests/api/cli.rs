//! The `agentauth` command line (SPEC §9) against a running server, as an operator types it:
//! it reads `admin-credentials.json`, talks to the admin API, and its JSON output feeds the
//! next command.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the report

use crate::support::{Backend, TestServer, claims_of};
use rstest::rstest;
use serde_json::Value;

/// Runs `agentauth ARGS…` as it is.
async fn run_raw(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_agentauth"))
        .args(args)
        .env_remove("AGENTAUTH_URL")
        .env_remove("AGENTAUTH_CREDENTIALS")
        .env_remove("AGENTAUTH_CA")
        .env_remove("AGENTAUTH_CLIENT_ID")
        .env_remove("AGENTAUTH_CLIENT_SECRET")
        .output()
        .await
        .expect("run agentauth")
}

/// Runs `agentauth ARGS…`; its stdout, after asserting success.
async fn run(args: &[&str]) -> String {
    let out = run_raw(args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "agentauth {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// An admin command: `agentauth ARGS… --credentials <data dir>/admin-credentials.json`.
async fn agentauth(s: &TestServer, args: &[&str]) -> String {
    let credentials = s.data_dir.join("admin-credentials.json");
    let mut all = args.to_vec();
    all.extend(["--credentials", credentials.to_str().expect("a UTF-8 path")]);
    run(&all).await
}

/// `agentauth token` for the agent's roles on api://hotel.
fn token_args<'a>(base: &'a str, id: &'a str, secret: &'a str) -> [&'a str; 9] {
    [
        "token",
        "--url",
        base,
        "--client-id",
        id,
        "--client-secret",
        secret,
        "--scope",
        "api://hotel/.default",
    ]
}

async fn agentauth_json(s: &TestServer, args: &[&str]) -> Value {
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let out = agentauth(s, &with_json).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed {out:?}: {e}"))
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_operator_registers_an_agent_gets_a_token_and_verifies_the_audit_chain(
    #[case] backend: Backend,
) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    agentauth(
        &s,
        &[
            "resources",
            "create",
            "api://hotel",
            "--role",
            "bookings.read",
        ],
    )
    .await;
    let agent = agentauth_json(
        &s,
        &[
            "agents",
            "create",
            "cli-agent",
            "--sponsor",
            "travel@example.com",
        ],
    )
    .await;
    let id = agent["id"].as_str().expect("id").to_owned();
    assert_eq!(agent["status"], "active");
    let secret = agentauth_json(&s, &["agents", "secrets", "add", &id]).await;
    let secret = secret["secret"].as_str().expect("secret").to_owned();
    agentauth(&s, &["roles", "set", &id, "api://hotel", "bookings.read"]).await;

    let listed = agentauth_json(&s, &["agents", "list"]).await;
    let names: Vec<&str> = listed
        .as_array()
        .or_else(|| listed["items"].as_array())
        .expect("a list of agents")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(names.contains(&"cli-agent"), "{listed}");

    let token = run(&token_args(&s.base, &id, &secret)).await;
    let token = token.trim();
    let claims = claims_of(token);
    assert_eq!(claims["aud"], "api://hotel");
    assert_eq!(claims["sub"], id.as_str());
    // Secrets are URL-safe base64: one may begin with `-`, and is still a value.
    let refused = run_raw(&token_args(&s.base, &id, "-not-the-secret")).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("invalid_client"), "{stderr}");
    let decoded = run(&["decode", token]).await;
    assert!(decoded.contains("at+jwt"), "{decoded}");
    assert!(decoded.contains(&id), "{decoded}");

    // Every event above, token issues with millisecond instants included, chains intact.
    let verified = agentauth(&s, &["audit", "verify"]).await;
    assert!(verified.contains("audit chain intact"), "{verified}");
    // Pages of the audit log, one after the other.
    let listed = agentauth(&s, &["audit", "list", "--limit", "1"]).await;
    let next = listed
        .lines()
        .find_map(|l| l.strip_prefix("more: --cursor "))
        .expect("a next page")
        .trim()
        .to_owned();
    let page = agentauth_json(&s, &["audit", "list", "--limit", "1", "--cursor", &next]).await;
    assert_eq!(page["items"][0]["seq"], 2, "{page}");
    // For scripts, and for keeping the head: cutting rows off the end shows only against it.
    let verified = agentauth_json(&s, &["audit", "verify"]).await;
    assert_eq!(verified["intact"], true, "{verified}");
    assert_eq!(verified["last_seq"], verified["events"], "{verified}");
    let head = s
        .all_pages("/audit")
        .await
        .into_iter()
        .find(|e| e["seq"] == verified["last_seq"])
        .expect("the head event");
    assert_eq!(verified["last_hash"], head["hash"], "{verified}");
}

/// `agentauth agents list | head -1`: the reader goes away, and the CLI ends quietly rather
/// than panicking on the closed pipe.
#[tokio::test]
async fn a_closed_output_pipe_ends_the_cli_quietly() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let credentials = s.data_dir.join("admin-credentials.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentauth"))
        .args(["agents", "list", "--credentials"])
        .arg(&credentials)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run agentauth");
    // Close the reading end before the CLI has its token and prints anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().await.expect("agentauth ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
}

#[tokio::test]
async fn an_agent_made_from_a_blueprint_inherits_its_defaults_when_asked() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    s.resource("api://hotel", &["bookings.read"], &["bookings.read"])
        .await;
    let (st, bp) = s
        .admin(
            reqwest::Method::POST,
            "/blueprints",
            Some(serde_json::json!({
                "name": "travel-agents", "sponsors": ["travel@example.com"],
                "default_roles": [{"resource": "api://hotel", "roles": ["bookings.read"]}],
            })),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::CREATED, "{bp}");
    let bp = bp["id"].as_str().expect("id");
    let from_blueprint = ["--sponsor", "travel@example.com", "--blueprint-id", bp];
    let heir = agentauth_json(
        &s,
        &[
            &["agents", "create", "heir"],
            &from_blueprint[..],
            &["--inherit-defaults"],
        ]
        .concat(),
    )
    .await;
    let plain = agentauth_json(
        &s,
        &[&["agents", "create", "plain"], &from_blueprint[..]].concat(),
    )
    .await;
    let roles = |agent: &Value| {
        let id = agent["id"].as_str().expect("id").to_owned();
        let s = &s;
        async move { agentauth_json(s, &["roles", "list", &id]).await }
    };
    // Lists print every page, as one JSON array.
    let inherited = roles(&heir).await;
    assert_eq!(
        inherited,
        serde_json::json!([{"resource": "api://hotel", "roles": ["bookings.read"]}]),
        "{inherited}"
    );
    assert_eq!(roles(&plain).await, serde_json::json!([]));
}
