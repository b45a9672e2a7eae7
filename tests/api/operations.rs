//! Running it for real (SPEC §2, §11): Prometheus metrics, request ids, JSON logs that never
//! hold a secret or a token, and TLS with a self-signed CA over HTTP/1.1 and HTTP/2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the report

use crate::server_process::{client_trusting, free_port, spawn};
use crate::support::{Backend, TestServer};
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::Value;
use std::collections::BTreeMap;

/// The samples of a Prometheus text page: `name{labels}` → value.
async fn metrics(s: &TestServer) -> BTreeMap<String, f64> {
    let res = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, sample: &str) -> f64 {
    after.get(sample).copied().unwrap_or(0.0) - before.get(sample).copied().unwrap_or(0.0)
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn metrics_count_tokens_refusals_failures_and_routes(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("measured-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let before = metrics(&s).await;

    s.token(&id, &secret, "api://hotel/.default").await;
    s.token(&id, &secret, "api://hotel/.default").await;
    let (st, _) = s
        .token_form(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api://hotel/write"),
            ],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s
        .token_form(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api://hotel/.default"),
            ],
            Some((&id, "not-the-secret")),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    let after = metrics(&s).await;
    for (sample, expected) in [
        (
            r#"agentauth_tokens_issued_total{grant="client_credentials",profile="rfc9068"}"#,
            2.0,
        ),
        (
            r#"agentauth_tokens_refused_total{grant="client_credentials",reason="invalid_scope"}"#,
            1.0,
        ),
        (
            r#"agentauth_client_auth_failures_total{reason="wrong_secret"}"#,
            1.0,
        ),
        (
            r#"agentauth_http_request_duration_seconds_count{method="POST",route="/oauth2/token",status="200"}"#,
            2.0,
        ),
    ] {
        assert_eq!(
            delta(&before, &after, sample),
            expected,
            "{sample}: {after:#?}"
        );
    }
    assert!(
        after.contains_key("agentauth_audit_queue_depth"),
        "{after:#?}"
    );
    assert!(
        after
            .keys()
            .any(|k| k.starts_with("agentauth_signing_key_age_seconds{")),
        "{after:#?}"
    );
    // Route labels are templates: no agent id makes a series of its own.
    s.get_agent(&id).await;
    let page = metrics(&s).await;
    assert!(
        page.keys().all(|k| !k.contains(&id)),
        "an id in a label: {page:#?}"
    );
    assert!(
        page.keys()
            .any(|k| k.contains(r#"route="/admin/v1/agents/{id}""#)),
        "{page:#?}"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn every_response_carries_a_request_id(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let res = s.http.get(s.url("/healthz")).send().await.unwrap();
    let made = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    let res = s
        .http
        .post(s.url("/oauth2/token"))
        .header("x-request-id", "trace-me-42")
        .form(&[("grant_type", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn json_logs_tie_lines_to_requests_and_hold_no_secret_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(
        dir.path(),
        free_port(),
        &["--log-format", "json"],
        &[("RUST_LOG", "debug,sqlx=warn,hyper=info,h2=info")],
    )
    .await;
    let (admin_id, admin_secret) = server.admin_credentials();
    let token = server
        .token(
            &admin_id,
            &admin_secret,
            &format!("{}/admin/.default", server.url),
        )
        .await;
    let res = server
        .http
        .post(format!("{}/oauth2/token", server.url))
        .header("x-request-id", "wrong-secret-request")
        .basic_auth(&admin_id, Some("a-wrong-secret-that-must-not-be-logged"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (st, _) = server
        .form(
            "/oauth2/introspect",
            &[("token", &token)],
            Some((&admin_id, &admin_secret)),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // Give the subscriber a moment to write the last lines.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let log = server.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 3, "{log}");
    assert!(
        lines
            .iter()
            .any(|l| l.to_string().contains("wrong-secret-request")),
        "no log line names the request id:\n{log}"
    );
    for secret in [
        admin_secret.as_str(),
        "a-wrong-secret-that-must-not-be-logged",
        token.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "a secret or token in the log:\n{log}"
        );
    }
    // Nor the token's signature alone.
    let signature = token.rsplit('.').next().unwrap();
    assert!(!log.contains(signature));
}

#[tokio::test]
async fn tls_self_signed_serves_http1_and_http2_and_keeps_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = spawn(dir.path(), port, &["--tls-self-signed"], &[]).await;
    let ca = std::fs::read(dir.path().join("tls/ca.pem")).expect("the CA is written");
    let meta = server
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(meta["issuer"], format!("https://127.0.0.1:{port}"));

    let h2 = client_trusting(&ca);
    let res = h2
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), reqwest::Version::HTTP_2, "ALPN offers h2");
    let h1 = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let res = h1
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
    // A client that does not trust the CA is turned away by its own TLS check.
    assert!(
        reqwest::Client::new()
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .is_err()
    );

    // The next start reuses the CA (clients keep trusting it).
    drop(server);
    let again = spawn(dir.path(), port, &["--tls-self-signed"], &[]).await;
    assert_eq!(std::fs::read(dir.path().join("tls/ca.pem")).unwrap(), ca);
    let res = client_trusting(&ca)
        .get(format!("{}/readyz", again.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn oversized_headers_are_refused_on_every_endpoint(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let huge = "x".repeat(20 * 1024);
    let before = metrics(&s).await;
    let entra_token = format!("/{}/oauth2/v2.0/token", s.tenant_id());
    // (method, path, content type of the answer): RFC 9457 on the admin API, RFC 6749 JSON
    // elsewhere, with Entra's fields on the Entra routes.
    for (method, path, content_type) in [
        (reqwest::Method::POST, "/oauth2/token", "application/json"),
        (
            reqwest::Method::POST,
            entra_token.as_str(),
            "application/json",
        ),
        (
            reqwest::Method::POST,
            "/oauth2/introspect",
            "application/json",
        ),
        (
            reqwest::Method::GET,
            "/admin/v1/agents",
            "application/problem+json",
        ),
        (reqwest::Method::GET, "/oauth2/jwks", "application/json"),
    ] {
        let res = s
            .http
            .request(method, s.url(path))
            .header("x-padding", &huge)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(
            res.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "{path}"
        );
        assert_eq!(res.headers()["content-type"], content_type, "{path}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
        let body: Value = res.json().await.unwrap();
        if content_type == "application/problem+json" {
            assert_eq!(body["status"], 431, "{body}");
            assert!(body["detail"].as_str().unwrap().contains("16384"), "{body}");
        } else {
            assert_eq!(body["error"], "invalid_request", "{path}");
        }
        assert_eq!(
            body["error_codes"].is_array(),
            path == entra_token,
            "{path}: {body}"
        );
    }
    // Refusals are counted like any other answer, per route template.
    let after = metrics(&s).await;
    assert_eq!(
        delta(
            &before,
            &after,
            r#"agentauth_http_request_duration_seconds_count{method="POST",route="/oauth2/token",status="431"}"#
        ),
        1.0
    );
    // A large but reasonable header (an 8 KiB bearer token) still passes.
    let res = s
        .http
        .get(s.url("/admin/v1/agents"))
        .bearer_auth("y".repeat(8 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// Reads until the server closes the connection (`Ok(bytes)`), or gives up after `limit`.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> Result<Vec<u8>, &'static str> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Err("the connection is still open"),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_clients_are_disconnected() {
    use tokio::io::AsyncWriteExt;
    let Some(s) =
        TestServer::start_with(Backend::Sqlite, |c| c.limits.header_timeout_seconds = 1).await
    else {
        return;
    };
    // Headers trickling in, never finished.
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"POST /oauth2/token HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    // A connection that never sends a byte.
    let mut idle = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let limit = std::time::Duration::from_secs(5);
    assert!(
        read_until_closed(&mut slow, limit).await.is_ok(),
        "slow headers"
    );
    assert!(
        read_until_closed(&mut idle, limit).await.is_ok(),
        "an idle connection"
    );
    // A client that sends its request at once is served as ever.
    let res = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// A client that stops sending its body is answered 408 when the request time limit passes, in
/// the shape of the endpoint's errors (RFC 6749 §5.2 JSON with `no-store`; Entra's fields on
/// the Entra route), not with an empty body.
#[tokio::test]
async fn a_stalled_body_is_answered_in_the_endpoints_error_shape() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| {
        c.limits.request_timeout_seconds = 1;
    })
    .await
    else {
        return;
    };
    for path in [
        "/oauth2/token".to_owned(),
        format!("/{}/oauth2/v2.0/token", s.tenant_id()),
    ] {
        let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\nConnection: close\r\n\r\ngrant_type=client",
            s.addr
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_string(&mut answer),
        )
        .await
        .expect("answered before the test gives up")
        .unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("cache-control: no-store"),
            "{head}"
        );
        let body: Value = serde_json::from_str(body).expect("a JSON error body");
        assert_eq!(body["error"], "invalid_request", "{body}");
        assert_eq!(
            body["error_codes"].is_array(),
            path.contains("v2.0"),
            "{body}"
        );
    }
}
