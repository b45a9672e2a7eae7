//! Spawns the real server on port 0 with a fresh store (a temporary SQLite file, or a fresh
//! PostgreSQL database when `AGENTAUTH_TEST_POSTGRES_URL` is set) and talks HTTP to it.

use agentauth::app::{RunningServer, start};
use agentauth::clock::{SharedClock, SystemClock};
use agentauth::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_url() -> Option<String> {
    std::env::var("AGENTAUTH_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A fresh, empty PostgreSQL database; `None` (with a printed notice) when PostgreSQL is not
/// configured for tests.
pub async fn fresh_postgres_database() -> Option<String> {
    let Some(url) = postgres_url() else {
        eprintln!("notice: AGENTAUTH_TEST_POSTGRES_URL is unset; skipping the PostgreSQL run");
        return None;
    };
    use sqlx::Connection;
    // Databases are named after the test process, so a later run can drop what earlier runs
    // left behind (a test cannot drop its own database: the server still holds connections).
    let run = std::process::id();
    let name = format!("agentauth_t_{run}_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .expect("connect to the test PostgreSQL");
    drop_earlier_runs(&mut conn, run).await;
    sqlx::Executor::execute(
        &mut conn,
        sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
    )
    .await
    .expect("create a test database");
    let base = match url.rfind('/') {
        Some(i) if url[..i].contains("://") && url[..i].matches('/').count() >= 2 => &url[..i],
        _ => url.as_str(),
    };
    let query = url.find('?').map(|q| &url[q..]).unwrap_or("");
    Some(format!("{base}/{name}{query}"))
}

/// Drops the test databases of earlier test processes, once per process. Best effort: a
/// database still in use by a running process stays.
async fn drop_earlier_runs(conn: &mut sqlx::PgConnection, run: u32) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let mine = format!("agentauth_t_{run}_");
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT datname FROM pg_database WHERE datname LIKE 'agentauth\\_t\\_%'",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default();
        for (name,) in names.into_iter().filter(|(n,)| !n.starts_with(&mine)) {
            let _ = sqlx::Executor::execute(
                &mut *conn,
                sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")),
            )
            .await;
        }
    })
    .await;
}

/// A database URL for `backend` inside `dir`, or `None` when that backend is unavailable.
pub async fn fresh_database_url(backend: Backend, dir: &std::path::Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite:{}", dir.join("agentauth.db").display())),
        Backend::Postgres => fresh_postgres_database().await,
    }
}

/// Runs one SQL statement (no binds) against a database, bypassing the server: for tests that
/// tamper with stored rows. Returns the rows affected.
pub async fn execute_sql(backend: Backend, database_url: &str, statement: &str) -> u64 {
    use sqlx::Connection;
    let statement = sqlx::AssertSqlSafe(statement.to_owned());
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(database_url)
                .await
                .expect("open the SQLite file");
            sqlx::query(statement)
                .execute(&mut c)
                .await
                .expect("statement runs")
                .rows_affected()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(database_url)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query(statement)
                .execute(&mut c)
                .await
                .expect("statement runs")
                .rows_affected()
        }
    }
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub base: String,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub admin_client_id: String,
    pub admin_secret: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server on `backend`, or `None` when that backend is not available here.
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<Self> {
        Self::start_full(backend, Arc::new(SystemClock), tweak).await
    }

    /// A server whose clock the test controls (`agentauth::clock::FixedClock`).
    pub async fn start_with_clock(backend: Backend, clock: SharedClock) -> Option<Self> {
        Self::start_full(backend, clock, |_| {}).await
    }

    pub async fn start_full(
        backend: Backend,
        clock: SharedClock,
        tweak: impl FnOnce(&mut Config),
    ) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = fresh_database_url(backend, dir.path()).await?;
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            bind: "127.0.0.1:0".into(),
            database_url: Some(database_url.clone()),
            ..Config::default()
        };
        tweak(&mut config);
        let data_dir = config.data_dir.clone();
        let server = start(config, clock, false).await.expect("server starts");
        Some(Self::around(
            server,
            backend,
            data_dir,
            database_url,
            Some(dir),
        ))
    }

    pub fn around(
        server: RunningServer,
        backend: Backend,
        data_dir: PathBuf,
        database_url: String,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        Self {
            base: server.base_url.clone(),
            addr: server.addr,
            admin_client_id: server.admin_credentials.client_id.clone(),
            admin_secret: server.admin_credentials.client_secret.clone(),
            server: Some(server),
            http: reqwest::Client::new(),
            data_dir,
            database_url,
            backend,
            _dir: dir,
        }
    }

    /// Stops the server but keeps its data dir and database, for restart tests.
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// Stops the server and starts a new one on the same address, data dir and database (the
    /// same address keeps the issuer, and so the admin resource, the same).
    pub async fn restart(&mut self) {
        self.stop().await;
        let config = Config {
            data_dir: self.data_dir.clone(),
            bind: self.addr.to_string(),
            database_url: Some(self.database_url.clone()),
            ..Config::default()
        };
        let server = start(config, Arc::new(SystemClock), false)
            .await
            .expect("server restarts");
        self.base = server.base_url.clone();
        self.addr = server.addr;
        self.admin_client_id = server.admin_credentials.client_id.clone();
        self.admin_secret = server.admin_credentials.client_secret.clone();
        self.server = Some(server);
        // Pooled connections went to the old server.
        self.http = reqwest::Client::new();
    }

    /// The tenant id, from `admin-credentials.json` (SPEC §8).
    pub fn tenant_id(&self) -> String {
        let text = std::fs::read_to_string(self.data_dir.join("admin-credentials.json"))
            .expect("admin-credentials.json");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        v["tenant_id"].as_str().expect("tenant_id").to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn admin_resource(&self) -> String {
        format!("{}/admin", self.base)
    }

    /// Runs one SQL statement against this server's database, behind its back.
    pub async fn sql(&self, statement: &str) -> u64 {
        execute_sql(self.backend, &self.database_url, statement).await
    }

    /// POSTs a form to the token endpoint; returns status and JSON body.
    pub async fn token_form(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (StatusCode, Value) {
        self.post_form("/oauth2/token", form, basic).await
    }

    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (StatusCode, Value) {
        let res = self.post_form_raw(path, form, basic).await;
        let status = res.status();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Like `post_form`, with the whole response (for headers).
    pub async fn post_form_raw(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().await.expect("request")
    }

    /// The full token response of a client-credentials request, asserting success.
    pub async fn token_response(&self, client_id: &str, secret: &str, scope: &str) -> Value {
        let (status, body) = self
            .token_form(
                &[("grant_type", "client_credentials"), ("scope", scope)],
                Some((client_id, secret)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "token request failed: {body}");
        body
    }

    /// A client-credentials token, asserting success.
    pub async fn token(&self, client_id: &str, secret: &str, scope: &str) -> String {
        let body = self.token_response(client_id, secret, scope).await;
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.token(
            &self.admin_client_id,
            &self.admin_secret,
            &format!("{}/.default", self.admin_resource()),
        )
        .await
    }

    /// Calls the admin API as the bootstrap admin.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = self.admin_token().await;
        self.admin_as(&token, method, path, body).await
    }

    pub async fn admin_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let res = self.admin_raw(Some(token), method, path, body).await;
        let status = res.status();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// An admin API call with the whole response (for headers); `token: None` sends none.
    pub async fn admin_raw(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, self.url(&format!("/admin/v1{path}")));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request")
    }

    /// Registers a resource with roles and scopes; returns its identifier.
    pub async fn resource(&self, identifier: &str, roles: &[&str], scopes: &[&str]) -> String {
        self.resource_view(identifier, roles, scopes).await;
        identifier.to_owned()
    }

    /// Registers a resource; returns the created resource object.
    pub async fn resource_view(&self, identifier: &str, roles: &[&str], scopes: &[&str]) -> Value {
        let (s, b) = self
            .admin(
                Method::POST,
                "/resources",
                Some(json!({"identifier": identifier, "name": identifier, "roles": roles, "scopes": scopes})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b
    }

    /// Registers an agent with a client secret; returns (id, secret).
    pub async fn agent(&self, name: &str) -> (String, String) {
        self.agent_from(json!({"name": name, "sponsors": ["alice@example.com"]}))
            .await
    }

    /// Registers an agent from a full `POST /agents` body, with a client secret.
    pub async fn agent_from(&self, body: Value) -> (String, String) {
        let (s, a) = self.admin(Method::POST, "/agents", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{a}");
        let id = a["id"].as_str().expect("id").to_owned();
        let secret = self.new_secret(&id).await;
        (id, secret)
    }

    /// Adds a client secret to an agent; returns the secret.
    pub async fn new_secret(&self, agent: &str) -> String {
        let (s, c) = self
            .admin(
                Method::POST,
                &format!("/agents/{agent}/credentials"),
                Some(json!({"type": "client_secret"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        c["secret"].as_str().expect("secret").to_owned()
    }

    /// `GET /admin/v1/agents/{id}`, asserting success.
    pub async fn get_agent(&self, id: &str) -> Value {
        let (s, a) = self
            .admin(Method::GET, &format!("/agents/{id}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{a}");
        a
    }

    /// POSTs an agent action (`disable`, `enable`, `restore`, `revoke-tokens`), asserting
    /// `expected`.
    pub async fn agent_action(&self, id: &str, action: &str, expected: StatusCode) -> Value {
        let (s, b) = self
            .admin(Method::POST, &format!("/agents/{id}/{action}"), None)
            .await;
        assert_eq!(s, expected, "{action}: {b}");
        b
    }

    pub async fn grant_roles(&self, agent: &str, resource: &str, roles: &[&str]) {
        let (s, b) = self
            .admin(
                Method::PUT,
                &format!("/agents/{agent}/roles"),
                Some(json!({"resource": resource, "roles": roles})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// An agent holding `roles` on the admin resource: returns (id, secret).
    pub async fn admin_agent(&self, roles: &[&str]) -> (String, String) {
        let (id, secret) = self
            .agent(&format!("ops-{}", uuid::Uuid::new_v4().simple()))
            .await;
        self.grant_roles(&id, &self.admin_resource(), roles).await;
        (id, secret)
    }

    /// An agent that may introspect: returns (id, secret).
    pub async fn introspector(&self) -> (String, String) {
        self.admin_agent(&["introspect"]).await
    }

    pub async fn introspect(&self, token: &str) -> Value {
        let (id, secret) = self.introspector().await;
        self.introspect_as(&id, &secret, token).await
    }

    pub async fn introspect_as(&self, id: &str, secret: &str, token: &str) -> Value {
        let (s, b) = self
            .post_form(
                "/oauth2/introspect",
                &[("token", token)],
                Some((id, secret)),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    /// Every item of a paged admin list, following `next_cursor` to the end.
    pub async fn all_pages(&self, path: &str) -> Vec<Value> {
        let token = self.admin_token().await;
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_path = match &cursor {
                Some(c) => format!("{path}{sep}limit=500&cursor={c}"),
                None => format!("{path}{sep}limit=500"),
            };
            let (s, page) = self.admin_as(&token, Method::GET, &page_path, None).await;
            assert_eq!(s, StatusCode::OK, "{page}");
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }

    /// The admin use-cases over this server's store, as `agentauth apply` builds them.
    pub async fn offline_admin(&self) -> agentauth::admin::AdminService {
        let store = agentauth::store::open(&self.database_url)
            .await
            .expect("open the store");
        let config = Config::default();
        let policy = agentauth::keys::KeyPolicy {
            algorithm: config.signing_algorithm().expect("algorithm"),
            prepublish: time::Duration::seconds(config.keys.prepublish_seconds),
            retire_after: time::Duration::seconds(agentauth::admin::agents::MAX_TOKEN_TTL + 60),
            rotate_every: None,
        };
        let key_store = Arc::new(agentauth::store::key_store::FileKeyStore::new(
            self.data_dir.join("keys"),
        ));
        let keys =
            agentauth::keys::KeyRing::open(key_store, policy, time::OffsetDateTime::now_utc())
                .await
                .expect("key ring");
        let metrics = Arc::new(agentauth::metrics::Metrics::new());
        let (audit, _writer) = agentauth::audit::AuditLog::start(store.clone(), metrics.clone());
        let directory = Arc::new(agentauth::cache::Directory::new(
            store.clone(),
            std::time::Duration::from_millis(0),
            metrics,
        ));
        agentauth::admin::AdminService {
            store,
            directory,
            keys: Arc::new(keys),
            audit,
            clock: Arc::new(SystemClock),
            admin_resource: self.admin_resource(),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            // Best effort: ask it to stop; the runtime ends with the test anyway.
            drop(s);
        }
    }
}

/// Decodes a JWT's claims without verifying (the tests verify separately).
pub fn claims_of(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("claims part");
    serde_json::from_slice(&b64url_decode(part)).expect("json")
}

pub fn header_of(token: &str) -> Value {
    let part = token.split('.').next().expect("header part");
    serde_json::from_slice(&b64url_decode(part)).expect("json")
}

pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

/// An RFC 3339 instant `seconds` from now, whole seconds.
pub fn rfc3339_in(seconds: i64) -> (String, i64) {
    let t = time::OffsetDateTime::now_utc().unix_timestamp() + seconds;
    (rfc3339_at(t), t)
}

pub fn rfc3339_at(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// The sorted member names of a JSON object.
pub fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

pub fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// Rebuilds an audit record from the admin API's JSON so its hash can be recomputed (as
/// `agentauth audit verify` does).
pub fn audit_record(v: &Value) -> agentauth::domain::AuditRecord {
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    agentauth::domain::AuditRecord {
        seq: v["seq"].as_i64().expect("seq"),
        event: agentauth::domain::AuditEvent {
            id: uuid::Uuid::parse_str(&s("id").expect("id")).expect("uuid"),
            at: time::OffsetDateTime::parse(
                &s("at").expect("at"),
                &time::format_description::well_known::Rfc3339,
            )
            .expect("at"),
            actor: s("actor").unwrap_or_default(),
            action: s("action").unwrap_or_default(),
            outcome: if s("outcome").as_deref() == Some("success") {
                agentauth::domain::Outcome::Success
            } else {
                agentauth::domain::Outcome::Failure
            },
            agent_id: s("agent_id"),
            reason: s("reason"),
            detail: v["detail"].clone(),
        },
        prev_hash: s("prev_hash").unwrap_or_default(),
        hash: s("hash").unwrap_or_default(),
    }
}

/// A copy of `v` whose RFC 3339 timestamps (members named `*_at`) lose their fractional
/// seconds: the store keeps whole seconds, while create and change answers show the instant
/// to the nanosecond (see `admin_api::answers_show_what_is_stored`).
pub fn whole_seconds(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v.as_str() {
                        Some(t) if k.ends_with("_at") => Value::String(drop_fraction(t)),
                        _ => whole_seconds(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(whole_seconds).collect()),
        other => other.clone(),
    }
}

fn drop_fraction(t: &str) -> String {
    match (t.find('.'), t.rfind(['Z', '+', '-'])) {
        (Some(dot), Some(zone)) if zone > dot => format!("{}{}", &t[..dot], &t[zone..]),
        _ => t.to_owned(),
    }
}

/// 32 random bytes, base64: a key-encryption key.
pub fn new_kek() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Polls `f` until it gives a value; panics after `limit`.
pub async fn poll<T>(
    what: &str,
    limit: std::time::Duration,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            started.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
