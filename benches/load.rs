//! Load benchmark: starts the release server on SQLite in a temporary directory, registers an
//! agent, and drives the token endpoint at 1, 16 and 64 connections, reporting tokens/s, p50,
//! p99 and the server's peak memory. Scenarios: client credentials with a secret (one agent,
//! and `many_agents`: 200 agents taking turns), with private_key_jwt, and token exchange (a
//! user token from a trusted issuer → delegated token).
//!
//!     cargo bench --bench load                 # all scenarios, 5 s per step
//!     LOAD_SECONDS=10 LOAD_SCENARIOS=secret cargo bench --bench load
//!
//! The load comes from `wrk` (Debian's package: `apt-get install wrk`) when it is installed — it
//! costs the shared CPU least — else from a built-in reqwest client. The load generator shares
//! the machine with the server: quote figures from one run, side by side.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use base64::Engine;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONNECTIONS: [usize; 3] = [1, 16, 64];

struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18999)
}

async fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_agentauth"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Server {
        child,
        base,
        _dir: dir,
    }
}

struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    async fn new(server: &Server) -> Self {
        let creds: Value = serde_json::from_str(
            &std::fs::read_to_string(server._dir.path().join("admin-credentials.json"))
                .expect("credentials"),
        )
        .expect("json");
        let http = reqwest::Client::new();
        let res: Value = http
            .post(format!("{}/oauth2/token", server.base))
            .basic_auth(
                creds["client_id"].as_str().unwrap_or_default(),
                creds["client_secret"].as_str(),
            )
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", creds["scope"].as_str().unwrap_or_default()),
            ])
            .send()
            .await
            .expect("admin token")
            .json()
            .await
            .expect("json");
        Self {
            http,
            base: server.base.clone(),
            token: res["access_token"].as_str().unwrap_or_default().to_owned(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.http
            .request(method, format!("{}/admin/v1{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("admin call")
            .json()
            .await
            .unwrap_or(Value::Null)
    }
}

/// A P-256 key: PKCS#8 for signing, JWK for registering.
fn p256_key() -> (jsonwebtoken::EncodingKey, Value) {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).expect("key");
    let public = pair.public_key().as_ref().to_vec();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&public[1..33]), "y": b64(&public[33..65]), "kid": "bench", "alg": "ES256", "use": "sig"});
    (jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Agents in the `many_agents` scenario.
const MANY_AGENTS: usize = 200;

/// Registers an agent with a secret and the role `read` on `api://bench`: its id and secret.
async fn register_agent(admin: &Admin, name: &str) -> (String, String) {
    let agent = admin
        .call(
            reqwest::Method::POST,
            "/agents",
            json!({"name": name, "sponsors": ["bench"]}),
        )
        .await;
    let id = agent["id"].as_str().unwrap_or_default().to_owned();
    let secret = admin
        .call(
            reqwest::Method::POST,
            &format!("/agents/{id}/credentials"),
            json!({"type": "client_secret"}),
        )
        .await["secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    admin
        .call(
            reqwest::Method::PUT,
            &format!("/agents/{id}/roles"),
            json!({"resource": "api://bench", "roles": ["read"]}),
        )
        .await;
    (id, secret)
}

/// Registers `n` agents, each with a secret it has used once (so that no step pays for a
/// first argon2 check): their ids and secrets.
async fn register_agents(admin: &Admin, token_endpoint: &str, n: usize) -> Vec<(String, String)> {
    let mut agents = Vec::with_capacity(n);
    for i in 0..n {
        let (id, secret) = register_agent(admin, &format!("bench-agent-{i}")).await;
        let first = admin
            .http
            .post(token_endpoint)
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "api://bench/.default"),
            ])
            .send()
            .await
            .expect("first token");
        assert!(first.status().is_success(), "agent {i} gets no token");
        agents.push((id, secret));
    }
    agents
}

/// Makes one request form for a scenario (fresh assertions need fresh jtis).
type FormMaker = Arc<dyn Fn() -> (Vec<(String, String)>, Option<(String, String)>) + Send + Sync>;

struct Outcome {
    ok: u64,
    failed: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

async fn drive(base: &str, connections: usize, seconds: u64, make: FormMaker) -> Outcome {
    let url = format!("{base}/oauth2/token");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let url = url.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let (mut ok, mut failed, mut lat) = (0u64, 0u64, Vec::with_capacity(100_000));
            while Instant::now() < deadline {
                let (form, basic) = make();
                let mut req = http.post(&url).form(&form);
                if let Some((id, secret)) = basic {
                    req = req.basic_auth(id, Some(secret));
                }
                let t = Instant::now();
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        ok += 1;
                        lat.push(t.elapsed().as_micros() as u32);
                    }
                    Ok(r) => {
                        let _ = r.bytes().await;
                        failed += 1;
                    }
                    Err(_) => failed += 1,
                }
            }
            (ok, failed, lat)
        }));
    }
    let mut out = Outcome {
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        if let Ok((ok, failed, lat)) = t.await {
            out.ok += ok;
            out.failed += failed;
            out.latencies_us.extend(lat);
        }
    }
    out.elapsed = start.elapsed();
    out.latencies_us.sort_unstable();
    out
}

/// One step measured by wrk: tokens/s, p50 and p99 in ms, non-2xx answers.
struct WrkStep {
    rate: f64,
    p50: f64,
    p99: f64,
    errors: u64,
}

fn wrk_available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Drives `wrk` with `bodies` (cycled) and an optional Basic header; one wrk thread is enough
/// for 64 connections and leaves the second core to the server.
fn drive_wrk(
    base: &str,
    connections: usize,
    seconds: u64,
    bodies: &[String],
    basic: Option<&(String, String)>,
    dir: &std::path::Path,
) -> Option<WrkStep> {
    let bodies_path = dir.join(format!("bodies-{connections}.txt"));
    std::fs::write(&bodies_path, bodies.join("\n")).ok()?;
    let auth = basic
        .map(|(id, secret)| {
            format!(
                "headers[\"Authorization\"] = \"Basic {}\"",
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
            )
        })
        .unwrap_or_default();
    let script = format!(
        r#"local bodies = {{}}
for line in io.lines("{}") do bodies[#bodies + 1] = line end
local headers = {{}}
headers["Content-Type"] = "application/x-www-form-urlencoded"
{auth}
local i = 0
request = function()
  i = i + 1
  if i > #bodies then i = 1 end
  return wrk.format("POST", "/oauth2/token", headers, bodies[i])
end"#,
        bodies_path.display()
    );
    let script_path = dir.join("load.lua");
    std::fs::write(&script_path, script).ok()?;
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script_path)
        .arg(base)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let ms = |v: &str| -> Option<f64> {
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = num.parse().ok()?;
        Some(match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            _ => return None,
        })
    };
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_owned()))
    };
    Some(WrkStep {
        rate: field("Requests/sec:")?.parse().ok()?,
        p50: ms(&field("50%")?)?,
        p99: ms(&field("99%")?)?,
        errors: field("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    })
}

/// The bodies a scenario sends, `n` of them (assertions need fresh `jti`s).
fn bodies_of(make: &FormMaker, n: usize) -> (Vec<String>, Option<(String, String)>) {
    let mut basic = None;
    let bodies = (0..n)
        .map(|_| {
            let (form, b) = make();
            basic = b;
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish()
        })
        .collect();
    (bodies, basic)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let wanted = std::env::var("LOAD_SCENARIOS")
        .unwrap_or_else(|_| "secret,many_agents,private_key_jwt,token_exchange".into());
    let server = start_server().await;
    let admin = Admin::new(&server).await;
    admin
        .call(
            reqwest::Method::POST,
            "/resources",
            json!({"identifier": "api://bench", "roles": ["read"], "scopes": ["read"]}),
        )
        .await;
    let (id, secret) = register_agent(&admin, "bench-agent").await;
    admin
        .call(
            reqwest::Method::PUT,
            &format!("/agents/{id}/delegations"),
            json!({"resource": "api://bench", "scopes": ["read"]}),
        )
        .await;
    let (agent_key, agent_jwk) = p256_key();
    admin
        .call(
            reqwest::Method::POST,
            &format!("/agents/{id}/credentials"),
            json!({"type": "public_key", "jwk": agent_jwk}),
        )
        .await;
    // A trusted issuer with an inline JWKS stands in for the company IdP.
    let (idp_key, idp_jwk) = p256_key();
    admin
        .call(reqwest::Method::POST, "/trusted-issuers", json!({"issuer": "https://idp.bench.example", "jwks": {"keys": [idp_jwk]}, "audiences": [id.clone()], "use": ["subject_tokens"]}))
        .await;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("bench".into());
    let user_token = jsonwebtoken::encode(&header, &json!({"iss": "https://idp.bench.example", "sub": "user-1", "aud": id, "exp": now() + 3600, "iat": now()}), &idp_key).expect("user token");

    let token_endpoint = format!("{}/oauth2/token", server.base);
    let mut scenarios: Vec<(&str, FormMaker)> = Vec::new();
    let (i1, s1) = (id.clone(), secret.clone());
    scenarios.push((
        "secret",
        Arc::new(move || {
            (
                vec![
                    ("grant_type".into(), "client_credentials".into()),
                    ("scope".into(), "api://bench/.default".into()),
                ],
                Some((i1.clone(), s1.clone())),
            )
        }),
    ));
    let (i2, h2, k2, aud2) = (
        id.clone(),
        header.clone(),
        Arc::new(agent_key),
        token_endpoint.clone(),
    );
    scenarios.push(("private_key_jwt", Arc::new(move || {
        let claims = json!({"iss": i2, "sub": i2, "aud": aud2, "exp": now() + 300, "jti": uuid::Uuid::new_v4().to_string()});
        let assertion = jsonwebtoken::encode(&h2, &claims, &k2).unwrap_or_default();
        (vec![
            ("grant_type".into(), "client_credentials".into()),
            ("scope".into(), "api://bench/.default".into()),
            ("client_assertion_type".into(), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()),
            ("client_assertion".into(), assertion),
        ], None)
    })));
    let (i3, s3) = (id.clone(), secret.clone());
    scenarios.push((
        "token_exchange",
        Arc::new(move || {
            (
                vec![
                    (
                        "grant_type".into(),
                        "urn:ietf:params:oauth:grant-type:token-exchange".into(),
                    ),
                    ("subject_token".into(), user_token.clone()),
                    (
                        "subject_token_type".into(),
                        "urn:ietf:params:oauth:token-type:access_token".into(),
                    ),
                    ("resource".into(), "api://bench".into()),
                    ("scope".into(), "read".into()),
                ],
                Some((i3.clone(), s3.clone())),
            )
        }),
    ));

    // Many agents at once, as in production: each request is a different agent's (secret in
    // the body, `client_secret_post`), so the audit rows of one commit belong to many agents.
    if wanted.split(',').any(|w| w == "many_agents") {
        let agents = register_agents(&admin, &token_endpoint, MANY_AGENTS).await;
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        scenarios.push((
            "many_agents",
            Arc::new(move || {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % agents.len();
                let (id, secret) = agents[i].clone();
                (
                    vec![
                        ("grant_type".into(), "client_credentials".into()),
                        ("scope".into(), "api://bench/.default".into()),
                        ("client_id".into(), id),
                        ("client_secret".into(), secret),
                    ],
                    None,
                )
            }),
        ));
    }

    let use_wrk = wrk_available();
    println!(
        "agentauth load benchmark: SQLite, audit committed, {seconds} s per step, load from {}, server pid {}",
        if use_wrk {
            "wrk"
        } else {
            "the built-in client"
        },
        server.child.id()
    );
    println!(
        "{:<16} {:>5} {:>12} {:>9} {:>9} {:>8}",
        "scenario", "conns", "tokens/s", "p50 ms", "p99 ms", "errors"
    );
    for (name, make) in scenarios {
        if !wanted.split(',').any(|w| w == name) {
            continue;
        }
        // Warm up caches (and argon2's verified-secret cache) before measuring.
        let _ = drive(&server.base, 4, 1, make.clone()).await;
        for c in CONNECTIONS {
            if use_wrk {
                // Enough distinct bodies that single-use assertions are not replayed in a step.
                let n = match name {
                    "private_key_jwt" => 30_000 * seconds as usize,
                    "many_agents" => MANY_AGENTS,
                    _ => 1,
                };
                let (bodies, basic) = bodies_of(&make, n);
                match drive_wrk(
                    &server.base,
                    c,
                    seconds,
                    &bodies,
                    basic.as_ref(),
                    server._dir.path(),
                ) {
                    Some(w) => println!(
                        "{:<16} {:>5} {:>12.0} {:>9.2} {:>9.2} {:>8}",
                        name, c, w.rate, w.p50, w.p99, w.errors
                    ),
                    None => println!("{name:<16} {c:>5}  wrk failed"),
                }
                continue;
            }
            let o = drive(&server.base, c, seconds, make.clone()).await;
            println!(
                "{:<16} {:>5} {:>12.0} {:>9.2} {:>9.2} {:>8}",
                name,
                c,
                o.ok as f64 / o.elapsed.as_secs_f64(),
                percentile(&o.latencies_us, 0.50),
                percentile(&o.latencies_us, 0.99),
                o.failed
            );
        }
    }
    println!(
        "server peak memory (VmHWM): {:.1} MiB",
        peak_rss_mib(server.child.id())
    );
}
