//! The conformance suite, continued: resources and assignments, trusted issuers, revocations
//! and single-use keys, the audit chain, settings.

use super::{agent, days, is_conflict, now, open, resource};
use crate::support::{Backend, fresh_database_url};
use agentauth::audit::{EventExt, chain_hash, event, link, prepare, verify_chain};
use agentauth::domain::{
    AuditEvent, DelegationGrant, IssuerUse, Outcome, PageRequest, PreparedEvent, RoleAssignment,
    TokenProfile, TrustedIssuer, UserAssignment,
};
use agentauth::store::AuditFilter;
use rstest::rstest;
use time::OffsetDateTime;
use uuid::Uuid;

/// Events as the audit writer hands them to the store.
fn prepared(events: impl IntoIterator<Item = AuditEvent>) -> Vec<PreparedEvent> {
    events.into_iter().map(prepare).collect()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn resources_and_assignments(#[case] backend: Backend) {
    let Some((store, _dir)) = open(backend).await else {
        return;
    };
    let t = now();
    let mut hotel = resource("api://hotel", t);
    let mail = resource("api://mail", t);
    store.insert_resource(&hotel).await.unwrap();
    store.insert_resource(&mail).await.unwrap();
    assert!(is_conflict(
        store.insert_resource(&resource("api://hotel", t)).await
    ));
    assert_eq!(
        store.get_resource(hotel.id).await.unwrap(),
        Some(hotel.clone())
    );
    assert_eq!(
        store
            .get_resource_by_identifier("api://hotel")
            .await
            .unwrap(),
        Some(hotel.clone())
    );
    assert_eq!(
        store
            .get_resource_by_identifier("api://none")
            .await
            .unwrap(),
        None
    );
    hotel.name = "Hotel".into();
    hotel.roles = vec!["r1".into()];
    hotel.user_assignment_required = true;
    hotel.token_profile = TokenProfile::Entra;
    hotel.updated_at = t + days(1);
    store.update_resource(&hotel).await.unwrap();
    assert_eq!(
        store.get_resource(hotel.id).await.unwrap(),
        Some(hotel.clone())
    );
    let first = store.list_resources(&PageRequest::first(1)).await.unwrap();
    let rest = store
        .list_resources(&PageRequest {
            limit: 10,
            after: Some(first[0].id.to_string()),
        })
        .await
        .unwrap();
    let mut ids: Vec<Uuid> = first.iter().chain(&rest).map(|r| r.id).collect();
    ids.sort();
    let mut expected = vec![hotel.id, mail.id];
    expected.sort();
    assert_eq!(ids, expected);

    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let roles = |agent, resource_id, roles: &[&str]| RoleAssignment {
        agent_id: agent,
        resource_id,
        roles: roles.iter().map(|r| r.to_string()).collect(),
    };
    store
        .set_roles(&roles(a, hotel.id, &["r1", "r2"]))
        .await
        .unwrap();
    store.set_roles(&roles(a, hotel.id, &["r2"])).await.unwrap();
    store.set_roles(&roles(a, mail.id, &["r1"])).await.unwrap();
    store.set_roles(&roles(b, hotel.id, &["r1"])).await.unwrap();
    assert_eq!(store.roles_on(a, hotel.id).await.unwrap(), vec!["r2"]);
    let mut of_a = store.roles_of(a).await.unwrap();
    of_a.sort_by_key(|r| r.resource_id);
    let mut expected = vec![roles(a, hotel.id, &["r2"]), roles(a, mail.id, &["r1"])];
    expected.sort_by_key(|r| r.resource_id);
    assert_eq!(of_a, expected);
    store.set_roles(&roles(a, mail.id, &[])).await.unwrap();
    assert_eq!(
        store.roles_of(a).await.unwrap(),
        vec![roles(a, hotel.id, &["r2"])]
    );
    assert!(store.roles_on(a, mail.id).await.unwrap().is_empty());
    let mut on_hotel = store.role_assignments_on(hotel.id).await.unwrap();
    on_hotel.sort_by_key(|r| r.agent_id);
    let mut expected = vec![roles(a, hotel.id, &["r2"]), roles(b, hotel.id, &["r1"])];
    expected.sort_by_key(|r| r.agent_id);
    assert_eq!(on_hotel, expected);

    let grant = DelegationGrant {
        agent_id: a,
        resource_id: hotel.id,
        scopes: vec!["s1".into()],
    };
    store.set_delegation(&grant).await.unwrap();
    assert_eq!(store.delegation_on(a, hotel.id).await.unwrap(), vec!["s1"]);
    assert_eq!(store.delegations_of(a).await.unwrap(), vec![grant.clone()]);
    assert!(store.delegations_of(b).await.unwrap().is_empty());
    assert_eq!(
        store.delegations_on(hotel.id).await.unwrap(),
        vec![grant.clone()]
    );
    assert!(store.delegations_on(mail.id).await.unwrap().is_empty());

    let ua = |p: &str, r: Uuid, s: &[&str]| UserAssignment {
        principal: p.into(),
        resource_id: r,
        scopes: s.iter().map(|x| x.to_string()).collect(),
    };
    store
        .set_user_assignment(&ua("user-1", hotel.id, &["s1"]))
        .await
        .unwrap();
    store
        .set_user_assignment(&ua("user-1", mail.id, &["s2"]))
        .await
        .unwrap();
    store
        .set_user_assignment(&ua("user-2", hotel.id, &["s1", "s2"]))
        .await
        .unwrap();
    assert_eq!(
        store
            .user_assignments(Some("user-1"), None)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .user_assignments(None, Some(hotel.id))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .user_assignments(Some("user-2"), Some(hotel.id))
            .await
            .unwrap(),
        vec![ua("user-2", hotel.id, &["s1", "s2"])]
    );
    assert_eq!(store.user_assignments(None, None).await.unwrap().len(), 3);

    // Deleting a resource takes every assignment on it along.
    assert!(store.delete_resource(hotel.id).await.unwrap());
    assert!(!store.delete_resource(hotel.id).await.unwrap());
    assert_eq!(store.get_resource(hotel.id).await.unwrap(), None);
    assert!(store.roles_on(a, hotel.id).await.unwrap().is_empty());
    assert!(store.delegations_of(a).await.unwrap().is_empty());
    assert_eq!(
        store.user_assignments(None, None).await.unwrap(),
        vec![ua("user-1", mail.id, &["s2"])]
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn trusted_issuers(#[case] backend: Backend) {
    let Some((store, _dir)) = open(backend).await else {
        return;
    };
    let t = now();
    let issuer = |name: &str| TrustedIssuer {
        id: Uuid::now_v7(),
        issuer: name.into(),
        jwks_uri: None,
        jwks: Some(
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]}),
        ),
        subject_claim: "oid".into(),
        audiences: vec!["api://a".into(), "api://b".into()],
        uses: vec![IssuerUse::SubjectTokens, IssuerUse::FederatedCredentials],
        created_at: t,
    };
    let (b, a) = (issuer("https://b.example"), issuer("https://a.example"));
    store.insert_issuer(&b).await.unwrap();
    store.insert_issuer(&a).await.unwrap();
    assert!(is_conflict(
        store.insert_issuer(&issuer("https://a.example")).await
    ));
    assert_eq!(store.get_issuer(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.get_issuer_by_name("https://b.example").await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(
        store.get_issuer_by_name("https://c.example").await.unwrap(),
        None
    );
    assert_eq!(
        store.list_issuers().await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert!(store.delete_issuer(a.id).await.unwrap());
    assert!(!store.delete_issuer(a.id).await.unwrap());
    assert_eq!(store.list_issuers().await.unwrap(), vec![b]);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn revocations_and_single_use_keys(#[case] backend: Backend) {
    let Some((store, _dir)) = open(backend).await else {
        return;
    };
    let t = now();
    assert!(!store.is_token_revoked("jti-1").await.unwrap());
    store.revoke_token("jti-1", t + days(1)).await.unwrap();
    store.revoke_token("jti-1", t + days(1)).await.unwrap();
    store.revoke_token("jti-old", t - days(1)).await.unwrap();
    assert!(store.is_token_revoked("jti-1").await.unwrap());
    assert!(store.is_token_revoked("jti-old").await.unwrap());
    assert!(!store.is_token_revoked("jti-2").await.unwrap());

    assert!(store.claim_once("iss|jti-a", t + days(1)).await.unwrap());
    assert!(
        !store.claim_once("iss|jti-a", t + days(1)).await.unwrap(),
        "single use"
    );
    assert!(store.claim_once("iss|jti-b", t - days(1)).await.unwrap());
    // Concurrent claims of one key: exactly one wins.
    let claims = (0..8).map(|_| {
        let store = store.clone();
        async move { store.claim_once("iss|jti-race", t + days(1)).await.unwrap() }
    });
    let mut set = tokio::task::JoinSet::new();
    for c in claims {
        set.spawn(c);
    }
    let won = set.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(won, 1);
    // One batch: each key is new at most once, at its first occurrence.
    let batch =
        ["iss|jti-c", "iss|jti-d", "iss|jti-c", "iss|jti-a"].map(|k| (k.to_owned(), t + days(1)));
    assert_eq!(
        store.claim_many(&batch).await.unwrap(),
        [true, true, false, false]
    );
    assert!(store.is_claimed("iss|jti-c").await.unwrap());
    assert!(!store.is_claimed("iss|never-claimed").await.unwrap());

    // Purging forgets only what has expired.
    store.purge_expired(t).await.unwrap();
    assert!(store.is_token_revoked("jti-1").await.unwrap());
    assert!(!store.is_token_revoked("jti-old").await.unwrap());
    assert!(!store.claim_once("iss|jti-a", t + days(1)).await.unwrap());
    assert!(store.claim_once("iss|jti-b", t + days(1)).await.unwrap());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn audit_appends_in_order_and_chains(#[case] backend: Backend) {
    let Some((store, _dir)) = open(backend).await else {
        return;
    };
    let t = OffsetDateTime::now_utc();
    let agent = Uuid::now_v7().to_string();
    let batch = |n: usize, outcome: Outcome| -> Vec<_> {
        (0..n)
            .map(|i| {
                event(
                    t + time::Duration::milliseconds(i as i64),
                    "tester",
                    "thing.done",
                    outcome,
                )
                .agent(&agent)
                .with("i", i as i64)
                .with("nested", serde_json::json!({"z": 1, "a": [1, 2]}))
            })
            .collect()
    };
    store
        .append_audit(&prepared(batch(3, Outcome::Success)), &link)
        .await
        .unwrap();
    store.append_audit(&[], &link).await.unwrap();
    let mut failure = batch(2, Outcome::Failure);
    failure[0] = failure[0].clone().reason("denied", "because");
    store.append_audit(&prepared(failure), &link).await.unwrap();
    store
        .append_audit(
            &prepared([event(t, "system", "other", Outcome::Success)]),
            &link,
        )
        .await
        .unwrap();

    let all = store
        .list_audit(&AuditFilter::default(), &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(verify_chain(&all), Ok(6));
    assert_eq!(all[3].event.reason.as_deref(), Some("denied"));
    assert_eq!(
        all[0].event.detail["nested"],
        serde_json::json!({"z": 1, "a": [1, 2]})
    );
    assert_eq!(
        all[1].event.at,
        agentauth::clock::from_unix_millis(agentauth::clock::unix_millis(t) + 1)
    );

    let by = |f: AuditFilter| {
        let store = store.clone();
        async move {
            let found = store
                .list_audit(&f, &PageRequest::first(100))
                .await
                .unwrap();
            found.iter().map(|r| r.seq).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        by(AuditFilter {
            outcome: Some("failure".into()),
            ..Default::default()
        })
        .await,
        vec![4, 5]
    );
    assert_eq!(
        by(AuditFilter {
            agent_id: Some(agent.clone()),
            ..Default::default()
        })
        .await,
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        by(AuditFilter {
            action: Some("other".into()),
            ..Default::default()
        })
        .await,
        vec![6]
    );
    let since = AuditFilter {
        since: Some(t + time::Duration::milliseconds(1)),
        ..Default::default()
    };
    assert_eq!(by(since).await, vec![2, 3, 5]);
    let until = AuditFilter {
        until: Some(t + time::Duration::milliseconds(1)),
        ..Default::default()
    };
    assert_eq!(by(until).await, vec![1, 4, 6]);

    let page = PageRequest {
        limit: 2,
        after: Some("2".into()),
    };
    let seqs: Vec<i64> = store
        .list_audit(&AuditFilter::default(), &page)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, vec![3, 4]);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn settings(#[case] backend: Backend) {
    let Some((store, _dir)) = open(backend).await else {
        return;
    };
    store.ping().await.unwrap();
    assert_eq!(store.get_setting("tenant_id").await.unwrap(), None);
    assert_eq!(
        store.init_setting("tenant_id", "first").await.unwrap(),
        "first"
    );
    assert_eq!(
        store.init_setting("tenant_id", "second").await.unwrap(),
        "first"
    );
    assert_eq!(
        store.get_setting("tenant_id").await.unwrap().as_deref(),
        Some("first")
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn reopening_migrates_nothing_and_keeps_data(#[case] backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = fresh_database_url(backend, dir.path()).await else {
        return;
    };
    let first = agentauth::store::open(&url).await.unwrap();
    let a = agent("kept", now());
    first.insert_agent(&a).await.unwrap();
    drop(first);
    let second = agentauth::store::open(&url).await.expect("reopens");
    assert_eq!(second.get_agent(a.id).await.unwrap(), Some(a));
    assert!(agentauth::store::open("mysql://nope").await.is_err());
}

/// Two stores on one database (two replicas) appending at the same time: each batch lands whole,
/// once, and the chain stays one unbroken line — on PostgreSQL a writer with a stale view of the
/// last row collides on `seq`, re-reads it and chains again; on SQLite each batch reads the last
/// row under the file's write lock.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn two_writers_on_one_database_keep_one_chain(#[case] backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = fresh_database_url(backend, dir.path()).await else {
        return;
    };
    let first = agentauth::store::open(&url).await.unwrap();
    let second = agentauth::store::open(&url).await.unwrap();
    let t = OffsetDateTime::now_utc();
    let write = |store: agentauth::store::SharedStore, who: &'static str| async move {
        for round in 0..25 {
            let events: Vec<_> = (0..4)
                .map(|i| event(t, who, "thing.done", Outcome::Success).with("i", round * 4 + i))
                .collect();
            store.append_audit(&prepared(events), &link).await.unwrap();
        }
    };
    tokio::join!(write(first.clone(), "first"), write(second, "second"));
    let all = first
        .list_audit(&AuditFilter::default(), &PageRequest::first(500))
        .await
        .unwrap();
    assert_eq!(verify_chain(&all), Ok(200));
    for who in ["first", "second"] {
        let mut written: Vec<i64> = all
            .iter()
            .filter(|r| r.event.actor == who)
            .map(|r| r.event.detail["i"].as_i64().unwrap())
            .collect();
        written.sort();
        assert_eq!(written, (0..100).collect::<Vec<_>>(), "{who}'s events");
    }
}

/// SQLite only: a batch that finds the file's write lock held by another connection waits for
/// it without holding up the runtime's thread (this test has one, which must also run the task
/// that lets the lock go), then commits.
#[tokio::test]
async fn sqlite_appends_wait_for_another_writer_without_blocking_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("agentauth.db").display());
    let store = agentauth::store::open(&url).await.unwrap();
    let other = sqlx::SqlitePool::connect(&url).await.unwrap();
    let mut holder = other.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let hold = std::time::Duration::from_millis(300);
    let release = tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        sqlx::query("COMMIT").execute(&mut *holder).await.unwrap();
    });
    let started = std::time::Instant::now();
    let t = OffsetDateTime::now_utc();
    store
        .append_audit(
            &prepared([event(t, "waiter", "thing.done", Outcome::Success)]),
            &link,
        )
        .await
        .unwrap();
    assert!(started.elapsed() >= hold - std::time::Duration::from_millis(50));
    release.await.unwrap();
    let all = store
        .list_audit(&AuditFilter::default(), &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(verify_chain(&all), Ok(1));
}

/// SQLite only: committed audit batches are copied from the WAL into the database file in the
/// background, soon after each commit, not left for the writer's own checkpoint (every 50 ms,
/// while the batches queued behind it wait).
#[tokio::test]
async fn sqlite_copies_the_wal_into_the_database_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agentauth.db");
    let store = agentauth::store::open(&format!("sqlite:{}", file.display()))
        .await
        .unwrap();
    let size = || std::fs::metadata(&file).unwrap().len();
    let before = size();
    let t = OffsetDateTime::now_utc();
    let padding = "x".repeat(1000);
    // About 75 pages, written as fast as the store takes them.
    for round in 0..30 {
        let events: Vec<_> = (0..10)
            .map(|i| {
                event(t, "writer", "thing.done", Outcome::Success)
                    .with("i", round * 10 + i)
                    .with("padding", padding.as_str())
            })
            .collect();
        store.append_audit(&prepared(events), &link).await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size() < before + 250_000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        size() >= before + 250_000,
        "the database file grew from {before} to only {} bytes",
        size()
    );
    let all = store
        .list_audit(&AuditFilter::default(), &PageRequest::first(500))
        .await
        .unwrap();
    assert_eq!(verify_chain(&all), Ok(300));
}

/// A database the schema before migration 0003 made (a head table and triggers that checked
/// each row against it) upgrades in place: the events written then keep their chain, and the
/// store appends after them.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_audit_chain_from_before_migration_3_goes_on_after_it(#[case] backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = fresh_database_url(backend, dir.path()).await else {
        return;
    };
    let dialect = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    // The first two migrations alone, as the previous release shipped them.
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    for file in std::fs::read_dir(format!(
        "{}/migrations/{dialect}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    {
        let path = file.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("0001") || name.starts_with("0002") {
            std::fs::copy(&path, old.join(name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(old.as_path()).await.unwrap();
    match backend {
        Backend::Sqlite => {
            let options = url
                .parse::<sqlx::sqlite::SqliteConnectOptions>()
                .unwrap()
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            migrator.run(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            pool.close().await;
        }
    }
    // Three events written under the old triggers, each continuing their head.
    let t = OffsetDateTime::now_utc();
    let mut prev = agentauth::audit::GENESIS.to_owned();
    for seq in 1..=3 {
        let e = event(t, "before", "thing.done", Outcome::Success).agent("early");
        let hash = chain_hash(&prev, seq, &e);
        let inserted = crate::support::execute_sql(
            backend,
            &url,
            &format!(
                "INSERT INTO audit_events (seq, id, at_ms, actor, action, outcome, agent_id, reason, detail, prev_hash, hash) \
                 VALUES ({seq}, '{}', {}, 'before', 'thing.done', 'success', 'early', NULL, '{{}}', '{prev}', '{hash}')",
                e.id,
                agentauth::clock::unix_millis(e.at),
            ),
        )
        .await;
        assert_eq!(inserted, 1);
        prev = hash;
    }

    let store = agentauth::store::open(&url)
        .await
        .expect("migrates to 0003");
    store
        .append_audit(
            &prepared([event(t, "after", "thing.done", Outcome::Success).agent("early")]),
            &link,
        )
        .await
        .unwrap();
    let all = store
        .list_audit(&AuditFilter::default(), &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(verify_chain(&all), Ok(4));
    // The rows from before are found by agent too (SQLite's migration 0004 looks them up).
    let early = AuditFilter {
        agent_id: Some("early".into()),
        ..Default::default()
    };
    let by_agent = store
        .list_audit(&early, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        by_agent.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        all.iter()
            .map(|r| r.event.actor.as_str())
            .collect::<Vec<_>>(),
        vec!["before", "before", "before", "after"]
    );
}

/// SQLite only: a writer that never pauses still gets its WAL reset — the writer checkpoints
/// every 50 ms, with no commit racing it — so the file stays a few MiB. With checkpoints left to
/// another connection alone, it grew by every event written.
#[tokio::test]
async fn the_sqlite_wal_stays_small_under_sustained_writes() {
    let Some((store, dir)) = open(Backend::Sqlite).await else {
        return;
    };
    let t = OffsetDateTime::now_utc();
    let padding = "x".repeat(1000);
    for round in 0..60 {
        let events: Vec<_> = (0..500)
            .map(|i| {
                event(t, "tester", "thing.done", Outcome::Success)
                    .with("round", round)
                    .with("i", i)
                    .with("padding", padding.as_str())
            })
            .collect();
        store.append_audit(&prepared(events), &link).await.unwrap();
    }
    let wal = std::fs::metadata(dir.path().join("agentauth.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    // 30,000 events of about 1.2 KiB: some 36 MB of WAL if it were never reset.
    assert!(wal < 8 * 1024 * 1024, "the WAL is {wal} bytes");
}
