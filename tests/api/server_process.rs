//! The real `agentauth serve` binary as a child process (for its logs, and for replicas that
//! share one database), killed on drop — also when an assertion fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the report

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// One running `agentauth serve`.
pub struct ServerProcess {
    child: Child,
    /// Where this process listens (not necessarily the issuer: see `--base-url`).
    pub url: String,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `agentauth serve --data-dir DIR --bind 127.0.0.1:PORT ARGS…` with `ENV` (and no other
/// `AGENTAUTH_*` variable from the test's environment, nor `RUST_LOG`); stdout and stderr go
/// to `DIR/server.log`. Returns once `/readyz` answers 200.
pub async fn spawn(
    data_dir: &Path,
    port: u16,
    args: &[&str],
    env: &[(&str, &str)],
) -> ServerProcess {
    let log = std::fs::File::create(data_dir.join("server.log")).expect("log file");
    let log2 = log.try_clone().expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentauth"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(args)
        .current_dir(data_dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    for (k, _) in std::env::vars() {
        if k.starts_with("AGENTAUTH_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn agentauth serve");
    let tls = args.contains(&"--tls-self-signed");
    let scheme = if tls { "https" } else { "http" };
    let mut p = ServerProcess {
        child,
        url: format!("{scheme}://127.0.0.1:{port}"),
        data_dir: data_dir.to_owned(),
        http: reqwest::Client::new(),
    };
    p.wait_ready(tls).await;
    p
}

/// A client that trusts the CA a `--tls-self-signed` server wrote to `<data dir>/tls/ca.pem`.
pub fn client_trusting(ca_pem: &[u8]) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem).expect("a PEM certificate");
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("an HTTPS client")
}

impl ServerProcess {
    /// Polls `/readyz` until it answers 200 (gives up after a minute, showing the log). With
    /// `tls`, the client trusts the server's CA once it is written.
    async fn wait_ready(&mut self, tls: bool) {
        let started = Instant::now();
        let mut trusting = !tls;
        loop {
            // The CA may be half-written when first seen: try again until it parses.
            if !trusting
                && let Ok(pem) = std::fs::read(self.data_dir.join("tls/ca.pem"))
                && reqwest::Certificate::from_pem(&pem).is_ok()
            {
                self.http = client_trusting(&pem);
                trusting = true;
            }
            if let Ok(r) = self.http.get(format!("{}/readyz", self.url)).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            let exited = self.child.try_wait().expect("child status");
            if exited.is_some() || started.elapsed() > Duration::from_secs(60) {
                panic!(
                    "the server at {} is not ready ({exited:?}):\n{}",
                    self.url,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
    }

    /// The bootstrap admin's (client_id, client_secret) from this process's data dir.
    pub fn admin_credentials(&self) -> (String, String) {
        let creds: Value = serde_json::from_str(
            &std::fs::read_to_string(self.data_dir.join("admin-credentials.json"))
                .expect("admin credentials"),
        )
        .expect("admin credentials JSON");
        (
            creds["client_id"].as_str().expect("client_id").to_owned(),
            creds["client_secret"]
                .as_str()
                .expect("client_secret")
                .to_owned(),
        )
    }

    pub async fn form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}{path}", self.url)).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A client-credentials token, asserting success.
    pub async fn token(&self, id: &str, secret: &str, scope: &str) -> String {
        let (st, b) = self
            .form(
                "/oauth2/token",
                &[("grant_type", "client_credentials"), ("scope", scope)],
                Some((id, secret)),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "token from {}: {b}", self.url);
        b["access_token"].as_str().expect("access_token").to_owned()
    }

    /// An admin API call: status and JSON body.
    pub async fn admin(
        &self,
        bearer: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/admin/v1{path}", self.url))
            .bearer_auth(bearer);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("admin request");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// An admin API call that must succeed; its JSON body.
    pub async fn admin_ok(
        &self,
        bearer: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (st, b) = self.admin(bearer, method, path, body).await;
        assert!(st.is_success(), "{path} on {}: {st} {b}", self.url);
        b
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET");
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.expect("JSON")
    }
}
