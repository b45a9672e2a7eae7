//! Signing-key rotation (SPEC §7), on the file key store and on the database key store (private
//! keys sealed under a key-encryption key): a rotated key is published before it signs, signs
//! after the pre-publication window, and the old key stays published (and its tokens valid)
//! until its last token has expired, then leaves the JWKS. A resource server that caches the
//! JWKS as advertised never meets an unknown kid. `agentauth keys import` adds a `next` key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the report

use crate::support::{
    Backend, TestServer, b64url, b64url_decode, header_of, keys_of, new_kek, poll, sorted,
};
use agentauth::clock::{Clock, FixedClock, SharedClock};
use agentauth::config::Config;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Where the server under test keeps its signing keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStoreKind {
    File,
    Database,
}

/// Seconds a new key is published before it signs (short, for the test).
const PREPUBLISH: i64 = 3;
/// Seconds a retired key stays published; also the token lifetime (it may not be longer).
const RETIRE_AFTER: i64 = 8;

/// Short key timings, and the key store of `kind`. The key-encryption key lives in
/// `<data dir>/kek.b64`, made once, so a restart with the same data dir opens the same keys.
fn configure(c: &mut Config, kind: KeyStoreKind) {
    c.keys.prepublish_seconds = PREPUBLISH;
    c.keys.check_interval_seconds = 1;
    c.keys.retire_after_seconds = RETIRE_AFTER;
    c.default_token_ttl_seconds = RETIRE_AFTER;
    if kind == KeyStoreKind::Database {
        let path = c.data_dir.join("kek.b64");
        if !path.exists() {
            std::fs::write(&path, new_kek()).expect("write the key-encryption key");
        }
        c.keys.store = "database".into();
        c.keys.kek_file = Some(path);
    }
}

async fn start(backend: Backend, kind: KeyStoreKind) -> Option<TestServer> {
    TestServer::start_with(backend, |c| configure(c, kind)).await
}

/// The published JWKS: kid → JWK.
async fn jwks(s: &TestServer) -> BTreeMap<String, Value> {
    let res = s
        .http
        .get(s.url("/oauth2/jwks"))
        .send()
        .await
        .expect("jwks");
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("JSON");
    body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| (k["kid"].as_str().expect("kid").to_owned(), k.clone()))
        .collect()
}

fn kids(set: &BTreeMap<String, Value>) -> BTreeSet<String> {
    set.keys().cloned().collect()
}

fn set(kids: &[&str]) -> BTreeSet<String> {
    kids.iter().map(|k| (*k).to_owned()).collect()
}

/// `GET /admin/v1/keys`: kid → key view.
async fn key_views(s: &TestServer, admin: &str) -> BTreeMap<String, Value> {
    let (st, page) = s.admin_as(admin, Method::GET, "/keys", None).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert_eq!(page["next_cursor"], Value::Null);
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|k| (k["kid"].as_str().expect("kid").to_owned(), k.clone()))
        .collect()
}

fn states(views: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    views
        .iter()
        .map(|(k, v)| (k.clone(), v["state"].as_str().expect("state").to_owned()))
        .collect()
}

fn state_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, s)| ((*k).to_owned(), (*s).to_owned()))
        .collect()
}

fn unix(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
        .unix_timestamp()
}

fn kid_of(token: &str) -> String {
    header_of(token)["kid"].as_str().expect("kid").to_owned()
}

/// Checks an ES256 compact JWS against a published P-256 JWK.
fn verifies_with(token: &str, jwk: &Value) -> bool {
    let mut point = vec![0x04];
    point.extend(b64url_decode(jwk["x"].as_str().expect("x")));
    point.extend(b64url_decode(jwk["y"].as_str().expect("y")));
    let (input, sig) = token.rsplit_once('.').expect("JWS");
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .verify(input.as_bytes(), &b64url_decode(sig))
        .is_ok()
}

/// The signing keys as stored in the database: (kid, private_key column).
pub async fn key_rows(backend: Backend, database_url: &str) -> Vec<(String, String)> {
    use sqlx::Connection;
    const Q: &str = "SELECT kid, private_key FROM signing_keys ORDER BY kid";
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(database_url)
                .await
                .expect("open SQLite");
            sqlx::query_as(Q)
                .fetch_all(&mut c)
                .await
                .expect("signing_keys")
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(database_url)
                .await
                .expect("connect");
            sqlx::query_as(Q)
                .fetch_all(&mut c)
                .await
                .expect("signing_keys")
        }
    }
}

/// The `.pem` files in `<data dir>/keys/`, by kid.
fn key_files(data_dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(data_dir.join("keys")) {
        Ok(entries) => entries
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("pem"))
            .map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Where the private keys are: files for the file store, sealed rows for the database store —
/// never both, and never a plaintext PEM in the database.
async fn assert_stored_keys(s: &TestServer, kind: KeyStoreKind, expected: &BTreeSet<String>) {
    let rows = key_rows(s.backend, &s.database_url).await;
    match kind {
        KeyStoreKind::File => {
            assert_eq!(&key_files(&s.data_dir), expected);
            assert_eq!(rows, vec![], "the file store writes no key to the database");
        }
        KeyStoreKind::Database => {
            assert_eq!(
                key_files(&s.data_dir),
                BTreeSet::new(),
                "the database store writes no key file"
            );
            let stored: BTreeSet<String> = rows.iter().map(|(k, _)| k.clone()).collect();
            assert_eq!(&stored, expected);
            for (kid, sealed) in &rows {
                assert!(
                    !sealed.contains("BEGIN"),
                    "key {kid} is stored as plaintext PEM"
                );
                assert!(
                    !sealed.contains("PRIVATE KEY"),
                    "key {kid} is stored as plaintext PEM"
                );
            }
        }
    }
}

#[rstest]
#[case::sqlite_file(Backend::Sqlite, KeyStoreKind::File)]
#[case::sqlite_database(Backend::Sqlite, KeyStoreKind::Database)]
#[case::postgres_file(Backend::Postgres, KeyStoreKind::File)]
#[case::postgres_database(Backend::Postgres, KeyStoreKind::Database)]
#[tokio::test]
async fn a_rotated_key_is_published_first_signs_later_and_outlives_its_tokens(
    #[case] backend: Backend,
    #[case] kind: KeyStoreKind,
) {
    let Some(s) = start(backend, kind).await else {
        return;
    };
    let api = s.resource("api://rotation", &["read"], &[]).await;
    let (agent, secret) = s.agent("rotating-agent").await;
    s.grant_roles(&agent, &api, &["read"]).await;
    let (rs, rs_secret) = s.introspector().await;
    let scope = "api://rotation/.default";

    let before = jwks(&s).await;
    assert_eq!(before.len(), 1, "first start makes one key: {before:?}");
    let old = before.keys().next().unwrap().clone();
    assert_stored_keys(&s, kind, &set(&[&old])).await;
    let old_token = s.token(&agent, &secret, scope).await;
    assert_eq!(kid_of(&old_token), old);
    let admin = s.admin_token().await;

    // Rotate: the new key is published at once, as `next`, and does not sign yet.
    let (st, view) = s.admin_as(&admin, Method::POST, "/keys/rotate", None).await;
    assert_eq!(st, StatusCode::CREATED, "{view}");
    assert_eq!(
        keys_of(&view),
        sorted(&[
            "activate_at",
            "alg",
            "created_at",
            "jwk",
            "kid",
            "retired_at",
            "state"
        ])
    );
    let new = view["kid"].as_str().expect("kid").to_owned();
    assert_ne!(new, old);
    assert_eq!(view["state"], "next");
    assert_eq!(view["alg"], "ES256");
    assert_eq!(view["retired_at"], Value::Null);
    assert_eq!(view["jwk"]["kid"], new.as_str());
    assert_eq!(view["jwk"].get("d"), None, "no private member: {view}");
    assert_eq!(
        unix(view["activate_at"].as_str().unwrap()) - unix(view["created_at"].as_str().unwrap()),
        PREPUBLISH
    );
    assert_eq!(kids(&jwks(&s).await), set(&[&old, &new]));
    assert_eq!(
        states(&key_views(&s, &admin).await),
        state_map(&[(&old, "active"), (&new, "next")])
    );
    assert_eq!(
        kid_of(&s.token(&agent, &secret, scope).await),
        old,
        "a next key does not sign"
    );
    assert_stored_keys(&s, kind, &set(&[&old, &new])).await;

    // After the window the new key signs; the old one is retired but still published, and its
    // tokens still check out.
    let new_token = poll(
        "tokens signed by the new key",
        Duration::from_secs(15),
        async || {
            let t = s.token(&agent, &secret, scope).await;
            (kid_of(&t) == new).then_some(t)
        },
    )
    .await;
    let admin = s.admin_token().await;
    let views = key_views(&s, &admin).await;
    assert_eq!(
        states(&views),
        state_map(&[(&old, "retired"), (&new, "active")])
    );
    assert!(views[&old]["retired_at"].is_string(), "{views:?}");
    assert_eq!(views[&new]["retired_at"], Value::Null);
    let published = jwks(&s).await;
    assert_eq!(kids(&published), set(&[&old, &new]));
    assert!(verifies_with(&old_token, &published[&old]));
    assert!(verifies_with(&new_token, &published[&new]));
    let i = s.introspect_as(&rs, &rs_secret, &old_token).await;
    assert_eq!(i["active"], true, "a token of the retired key: {i}");
    assert_eq!(
        s.introspect_as(&rs, &rs_secret, &new_token).await["active"],
        true
    );

    // Once every token it signed has expired, the old key leaves the JWKS and the store.
    poll(
        "the retired key to leave the JWKS",
        Duration::from_secs(25),
        async || (kids(&jwks(&s).await) == set(&[&new])).then_some(()),
    )
    .await;
    let admin = s.admin_token().await;
    assert_eq!(
        states(&key_views(&s, &admin).await),
        state_map(&[(&new, "active")])
    );
    assert_stored_keys(&s, kind, &set(&[&new])).await;
    assert_eq!(
        s.introspect_as(&rs, &rs_secret, &old_token).await,
        json!({"active": false})
    );
    assert_eq!(kid_of(&s.token(&agent, &secret, scope).await), new);
}

/// `public, max-age=N` → N.
fn max_age(res: &reqwest::Response) -> i64 {
    let cc = res
        .headers()
        .get("cache-control")
        .expect("the JWKS is cacheable")
        .to_str()
        .expect("ASCII");
    cc.split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .unwrap_or_else(|| panic!("no max-age in {cc:?}"))
        .parse()
        .expect("max-age seconds")
}

#[tokio::test]
async fn the_jwks_cache_lifetime_is_shorter_than_the_default_prepublication() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let tenant = s.server.as_ref().unwrap().tenant_id.clone();
    let default_prepublish = Config::default().keys.prepublish_seconds;
    for path in [
        "/oauth2/jwks",
        "/.well-known/jwks.json",
        &format!("/{tenant}/discovery/v2.0/keys"),
    ] {
        let res = s.http.get(s.url(path)).send().await.expect("jwks");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let age = max_age(&res);
        assert!(age > 0, "{path}: max-age={age}");
        assert!(
            age < default_prepublish,
            "{path}: a cache may keep the JWKS {age} s, but a new key signs {default_prepublish} s after it is published"
        );
    }
}

/// A resource server's JWKS cache that honours `Cache-Control: max-age`, on the simulated clock.
struct CachingResourceServer {
    fetched_at: i64,
    max_age: i64,
    kids: BTreeSet<String>,
    fetches: usize,
}

impl CachingResourceServer {
    async fn fetch(s: &TestServer, now: i64) -> Self {
        let res = s
            .http
            .get(s.url("/oauth2/jwks"))
            .send()
            .await
            .expect("jwks");
        let max_age = max_age(&res);
        let body: Value = res.json().await.expect("JSON");
        let kids = body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        Self {
            fetched_at: now,
            max_age,
            kids,
            fetches: 1,
        }
    }

    /// Whether `kid` is known at `now`, refetching only when the cached copy has gone stale.
    async fn knows(&mut self, s: &TestServer, kid: &str, now: i64) -> bool {
        if now >= self.fetched_at + self.max_age {
            let fetches = self.fetches + 1;
            *self = Self::fetch(s, now).await;
            self.fetches = fetches;
        }
        self.kids.contains(kid)
    }
}

/// Runs a rotation on a simulated clock with `prepublish` seconds of pre-publication, a
/// resource server having cached the JWKS just before it; returns the kids it did not know when
/// a token signed with them reached it, checked every `step` seconds until the new key signs and
/// a little after.
async fn unknown_kids_met_by_a_caching_resource_server(
    s: &TestServer,
    clock: &FixedClock,
    prepublish: i64,
    step: i64,
) -> Vec<(i64, String)> {
    let api = s.resource("api://cached", &["read"], &[]).await;
    let (agent, secret) = s.agent("cached-agent").await;
    s.grant_roles(&agent, &api, &["read"]).await;
    let scope = "api://cached/.default";
    let start = clock.now().unix_timestamp();
    let mut rs = CachingResourceServer::fetch(s, start).await;
    let old_token = s.token(&agent, &secret, scope).await;
    let (st, view) = s.admin(Method::POST, "/keys/rotate", None).await;
    assert_eq!(st, StatusCode::CREATED, "{view}");
    let new = view["kid"].as_str().unwrap().to_owned();
    let activate_at = unix(view["activate_at"].as_str().unwrap());
    let mut unknown = Vec::new();
    let mut elapsed = 0;
    while elapsed <= prepublish + 2 * step {
        let now = clock.now().unix_timestamp();
        let token = if now >= activate_at {
            // The lifecycle is applied in the background: wait for it to promote the new key.
            poll("the new key to sign", Duration::from_secs(10), async || {
                let t = s.token(&agent, &secret, scope).await;
                (kid_of(&t) == new).then_some(t)
            })
            .await
        } else {
            s.token(&agent, &secret, scope).await
        };
        for t in [&token, &old_token] {
            let kid = kid_of(t);
            if !rs.knows(s, &kid, now).await {
                unknown.push((now - start, kid));
            }
        }
        clock.advance(time::Duration::seconds(step));
        elapsed += step;
    }
    assert!(
        rs.fetches > 1 || rs.max_age > prepublish + 2 * step,
        "the cache was refreshed"
    );
    assert_eq!(kid_of(&s.token(&agent, &secret, scope).await), new);
    unknown
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_resource_server_caching_the_jwks_as_advertised_never_meets_an_unknown_kid(
    #[case] backend: Backend,
) {
    let clock = FixedClock::at(time::OffsetDateTime::now_utc());
    let shared: SharedClock = Arc::new(clock.clone());
    // The default timings, with the lifecycle checked every second of real time.
    let Some(s) =
        TestServer::start_full(backend, shared, |c| c.keys.check_interval_seconds = 1).await
    else {
        return;
    };
    let prepublish = Config::default().keys.prepublish_seconds;
    let unknown = unknown_kids_met_by_a_caching_resource_server(&s, &clock, prepublish, 30).await;
    assert_eq!(
        unknown,
        vec![],
        "(seconds after the rotation, kid) a cache did not know"
    );
}

#[tokio::test]
async fn a_prepublication_shorter_than_the_jwks_max_age_is_refused_or_shortens_the_max_age() {
    let clock = FixedClock::at(time::OffsetDateTime::now_utc());
    let shared: SharedClock = Arc::new(clock.clone());
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        bind: "127.0.0.1:0".into(),
        database_url: Some(format!(
            "sqlite:{}",
            dir.path().join("agentauth.db").display()
        )),
        keys: agentauth::config::KeysConfig {
            prepublish_seconds: 60,
            check_interval_seconds: 1,
            ..Config::default().keys
        },
        ..Config::default()
    };
    // Refusing the configuration is one acceptable answer.
    let Ok(server) = agentauth::app::start(config, shared, false).await else {
        return;
    };
    let s = TestServer::around(
        server,
        Backend::Sqlite,
        dir.path().to_owned(),
        format!("sqlite:{}", dir.path().join("agentauth.db").display()),
        None,
    );
    let unknown = unknown_kids_met_by_a_caching_resource_server(&s, &clock, 60, 10).await;
    assert_eq!(
        unknown,
        vec![],
        "(seconds after the rotation, kid) a cache did not know"
    );
    drop(s);
    drop(dir);
}

/// A fresh P-256 key: (PKCS#8 PEM, its RFC 7638 thumbprint, its public JWK x and y).
fn p256_pem() -> (String, String, Value) {
    use base64::Engine;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("generate a P-256 key");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref())
        .expect("parse it back");
    let point = pair.public_key().as_ref();
    assert_eq!((point.len(), point[0]), (65, 0x04));
    let (x, y) = (b64url(&point[1..33]), b64url(&point[33..]));
    // RFC 7638 §3.2: the required members, lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let thumbprint = b64url(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref(),
    );
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    (pem, thumbprint, json!({"x": x, "y": y}))
}

/// Runs `agentauth keys import FILE --json` on the store of `s` (the key store as configured
/// by `kind`, through the environment); returns the exit status, stdout and stderr.
async fn cli_import(
    s: &TestServer,
    kind: KeyStoreKind,
    file: &Path,
    prepublish: i64,
) -> (bool, String, String) {
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentauth"));
    cmd.args(["keys", "import"])
        .arg(file)
        .arg("--data-dir")
        .arg(&s.data_dir)
        .args(["--database-url", &s.database_url, "--json"])
        .current_dir(cwd.path())
        .stdin(std::process::Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("AGENTAUTH_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("AGENTAUTH_KEYS__PREPUBLISH_SECONDS", prepublish.to_string());
    if kind == KeyStoreKind::Database {
        cmd.env("AGENTAUTH_KEYS__STORE", "database")
            .env("AGENTAUTH_KEYS__KEK_FILE", s.data_dir.join("kek.b64"));
    }
    let out = cmd.output().await.expect("run agentauth keys import");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[rstest]
#[case::sqlite_file(Backend::Sqlite, KeyStoreKind::File)]
#[case::sqlite_database(Backend::Sqlite, KeyStoreKind::Database)]
#[case::postgres_file(Backend::Postgres, KeyStoreKind::File)]
#[case::postgres_database(Backend::Postgres, KeyStoreKind::Database)]
#[tokio::test]
async fn a_key_imported_into_a_live_servers_store_is_published_as_next_then_signs(
    #[case] backend: Backend,
    #[case] kind: KeyStoreKind,
) {
    let Some(s) = start(backend, kind).await else {
        return;
    };
    let api = s.resource("api://imported", &["read"], &[]).await;
    let (agent, secret) = s.agent("imported-key-agent").await;
    s.grant_roles(&agent, &api, &["read"]).await;
    let scope = "api://imported/.default";
    let old = kid_of(&s.token(&agent, &secret, scope).await);

    let (pem, thumbprint, public) = p256_pem();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("imported.pem");
    std::fs::write(&file, &pem).unwrap();
    let (ok, out, err) = cli_import(&s, kind, &file, PREPUBLISH).await;
    assert!(ok, "keys import failed:\n{out}\n{err}");
    let printed: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(printed, json!({"kid": thumbprint, "state": "next"}));
    assert!(
        !out.contains("PRIVATE") && !err.contains("PRIVATE"),
        "the private key is echoed"
    );
    // A key that will sign is an admin change: audited.
    let imports = s.all_pages("/audit?action=key.import").await;
    assert_eq!(imports.len(), 1, "{imports:#?}");
    assert_eq!(imports[0]["detail"]["after"]["kid"], thumbprint.as_str());
    assert_eq!(imports[0]["detail"]["after"]["alg"], "ES256");

    // The live server picks the key up from the store at its next lifecycle check.
    let admin = s.admin_token().await;
    let views = poll(
        "the imported key to be published",
        Duration::from_secs(10),
        async || {
            let v = key_views(&s, &admin).await;
            v.contains_key(&thumbprint).then_some(v)
        },
    )
    .await;
    // It may already sign if the window has passed meanwhile; it never came in as active.
    let state = views[&thumbprint]["state"].as_str().unwrap().to_owned();
    assert!(
        state == "next" || (state == "active" && views[&old]["state"] == "retired"),
        "{views:?}"
    );
    assert_eq!(
        unix(views[&thumbprint]["activate_at"].as_str().unwrap())
            - unix(views[&thumbprint]["created_at"].as_str().unwrap()),
        PREPUBLISH
    );
    let published = jwks(&s).await;
    assert_eq!(published[&thumbprint]["x"], public["x"]);
    assert_eq!(published[&thumbprint]["y"], public["y"]);
    assert_eq!(published[&thumbprint]["crv"], "P-256");

    // After the window, the server signs with the imported private key.
    let token = poll(
        "tokens signed by the imported key",
        Duration::from_secs(15),
        async || {
            let t = s.token(&agent, &secret, scope).await;
            (kid_of(&t) == thumbprint).then_some(t)
        },
    )
    .await;
    assert!(
        verifies_with(&token, &public),
        "signed with the imported key"
    );
    // The retired key stays RETIRE_AFTER seconds more.
    assert_stored_keys(&s, kind, &set(&[&old, &thumbprint])).await;
}

#[rstest]
#[case::sqlite_file(Backend::Sqlite, KeyStoreKind::File)]
#[case::postgres_database(Backend::Postgres, KeyStoreKind::Database)]
#[tokio::test]
async fn a_key_imported_into_a_stopped_servers_store_is_published_after_restart(
    #[case] backend: Backend,
    #[case] kind: KeyStoreKind,
) {
    let Some(mut s) = start(backend, kind).await else {
        return;
    };
    let old = kids(&jwks(&s).await);
    s.stop().await;

    let (pem, thumbprint, public) = p256_pem();
    let file = s.data_dir.join("imported.pem");
    std::fs::write(&file, &pem).unwrap();
    // A long window, so the key is still `next` whenever the server comes back.
    let (ok, out, err) = cli_import(&s, kind, &file, 3600).await;
    assert!(ok, "keys import failed:\n{out}\n{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"kid": thumbprint, "state": "next"})
    );

    // A garbage file is refused, and adds nothing.
    let junk = s.data_dir.join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let (ok, out, err) = cli_import(&s, kind, &junk, 3600).await;
    assert!(!ok, "a garbage key was imported: {out}");
    assert!(err.starts_with("error: "), "{err}");

    let mut config = Config {
        data_dir: s.data_dir.clone(),
        bind: s.addr.to_string(),
        database_url: Some(s.database_url.clone()),
        ..Config::default()
    };
    configure(&mut config, kind);
    let server = agentauth::app::start(config, Arc::new(agentauth::clock::SystemClock), false)
        .await
        .expect("the server restarts");
    let restarted = TestServer::around(
        server,
        backend,
        s.data_dir.clone(),
        s.database_url.clone(),
        None,
    );
    let mut expected = old.clone();
    expected.insert(thumbprint.clone());
    let published = jwks(&restarted).await;
    assert_eq!(kids(&published), expected);
    assert_eq!(published[&thumbprint]["x"], public["x"]);
    let admin = restarted.admin_token().await;
    let views = key_views(&restarted, &admin).await;
    assert_eq!(views[&thumbprint]["state"], "next");
    assert_eq!(views[old.iter().next().unwrap()]["state"], "active");
    assert_stored_keys(&restarted, kind, &expected).await;
    drop(restarted);
    drop(s);
}

/// An agent's own `token_ttl` cannot outlast the key: no token lives longer than a retired key
/// stays published, so none is left that its JWKS can no longer verify (SPEC §7).
#[tokio::test]
async fn no_token_outlives_the_publication_of_its_key() {
    let Some(s) = start(Backend::Sqlite, KeyStoreKind::File).await else {
        return;
    };
    let api = s.resource("api://long-lived", &["read"], &[]).await;
    let (agent, secret) = s.agent("long-lived-agent").await;
    s.grant_roles(&agent, &api, &["read"]).await;
    let (st, body) = s
        .admin(
            Method::PATCH,
            &format!("/agents/{agent}"),
            Some(json!({"token_ttl_seconds": 3600})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let answer = s
        .token_response(&agent, &secret, "api://long-lived/.default")
        .await;
    assert_eq!(answer["expires_in"], RETIRE_AFTER, "{answer}");
}
