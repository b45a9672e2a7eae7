//! The conformance suite, continued: audit listings by agent and by time find every match, in
//! `seq` order and page by page, whether the store has looked the rows up in bulk already
//! (SQLite fills lookup tables in a file beside the database every 100 ms) or not yet.

use super::open;
use crate::support::Backend;
use agentauth::audit::{EventExt, event, link, prepare};
use agentauth::domain::{Outcome, PageRequest, PreparedEvent};
use agentauth::store::{AuditFilter, SharedStore};
use rstest::rstest;
use time::{Duration, OffsetDateTime};

/// Six events at `t0 + first ms` onwards, alternating between agents "a" and "b".
fn six(t0: OffsetDateTime, first: i64) -> Vec<PreparedEvent> {
    (first..first + 6)
        .map(|i| {
            let agent = if i % 2 == 0 { "a" } else { "b" };
            let action = if i % 3 == 0 { "other" } else { "thing.done" };
            prepare(
                event(
                    t0 + Duration::milliseconds(i),
                    "tester",
                    action,
                    Outcome::Success,
                )
                .agent(agent),
            )
        })
        .collect()
}

async fn seqs(
    store: &SharedStore,
    filter: AuditFilter,
    limit: u32,
    after: Option<i64>,
) -> Vec<i64> {
    let page = PageRequest {
        limit,
        after: after.map(|a| a.to_string()),
    };
    store
        .list_audit(&filter, &page)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect()
}

/// What every listing below must find: the same before and after the lookups are filled.
async fn listings_find_every_match(store: &SharedStore, t0: OffsetDateTime) {
    let ms = |n: i64| Some(t0 + Duration::milliseconds(n));
    let agent = |a: &str| AuditFilter {
        agent_id: Some(a.into()),
        ..Default::default()
    };
    assert_eq!(
        seqs(store, agent("a"), 100, None).await,
        vec![1, 3, 5, 7, 9, 11]
    );
    assert_eq!(
        seqs(store, agent("b"), 100, None).await,
        vec![2, 4, 6, 8, 10, 12]
    );
    assert_eq!(
        seqs(store, agent("nobody"), 100, None).await,
        Vec::<i64>::new()
    );
    // Pages cross from the rows looked up to the rows not yet looked up.
    assert_eq!(seqs(store, agent("a"), 2, Some(3)).await, vec![5, 7]);
    assert_eq!(seqs(store, agent("a"), 2, Some(7)).await, vec![9, 11]);
    assert_eq!(
        seqs(store, agent("a"), 2, Some(11)).await,
        Vec::<i64>::new()
    );
    let a_since_4 = AuditFilter {
        since: ms(4),
        ..agent("a")
    };
    assert_eq!(seqs(store, a_since_4, 100, None).await, vec![5, 7, 9, 11]);
    let a_until_8 = AuditFilter {
        until: ms(8),
        ..agent("a")
    };
    assert_eq!(seqs(store, a_until_8, 100, None).await, vec![1, 3, 5, 7]);
    let a_other = AuditFilter {
        action: Some("other".into()),
        ..agent("a")
    };
    assert_eq!(seqs(store, a_other, 100, None).await, vec![1, 7]);
    let since_5 = AuditFilter {
        since: ms(5),
        ..Default::default()
    };
    assert_eq!(
        seqs(store, since_5.clone(), 100, None).await,
        vec![6, 7, 8, 9, 10, 11, 12]
    );
    assert_eq!(seqs(store, since_5, 3, Some(6)).await, vec![7, 8, 9]);
    let window = AuditFilter {
        since: ms(3),
        until: ms(9),
        ..Default::default()
    };
    assert_eq!(seqs(store, window, 100, None).await, vec![4, 5, 6, 7, 8, 9]);
    let until_3_other = AuditFilter {
        until: ms(3),
        action: Some("other".into()),
        ..Default::default()
    };
    assert_eq!(seqs(store, until_3_other, 100, None).await, vec![1]);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn audit_listings_find_rows_looked_up_and_rows_not_yet(#[case] backend: Backend) {
    let Some((store, dir)) = open(backend).await else {
        return;
    };
    let t0 = OffsetDateTime::now_utc();
    store.append_audit(&six(t0, 0), &link).await.unwrap();
    let sqlite = backend == Backend::Sqlite;
    if sqlite {
        filled(dir.path(), 6).await;
    }
    // Listed right after their commit, the next six are most likely not looked up yet (the
    // background fills every 100 ms); filled or not, the listings are the same.
    store.append_audit(&six(t0, 6), &link).await.unwrap();
    listings_find_every_match(&store, t0).await;

    if sqlite {
        assert_eq!(
            filled(dir.path(), 12).await,
            (12, 12, 12),
            "every row is looked up once"
        );
    }
    listings_find_every_match(&store, t0).await;
}

/// SQLite's lookups once they cover `seq`: the background fills them every 100 ms.
async fn filled(dir: &std::path::Path, seq: i64) -> (i64, i64, i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = looked_up(dir).await;
        if found.0 >= seq || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// SQLite's lookups: the last `seq` they cover, and how many rows each holds.
async fn looked_up(dir: &std::path::Path) -> (i64, i64, i64) {
    let url = format!(
        "sqlite:{}",
        dir.join("agentauth.db-audit-lookups").display()
    );
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let row: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT upto FROM audit_indexed), (SELECT count(*) FROM audit_by_agent), \
         (SELECT count(*) FROM audit_by_time)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    row
}

/// SQLite only: lookups that no longer match the database (here its last rows replaced, as
/// when an older backup is restored beside newer lookups) are filled again from the start,
/// not trusted: otherwise they would list agent "c"'s new rows 4-6 under "a" and "b".
#[tokio::test]
async fn sqlite_audit_lookups_start_over_when_the_database_changed_under_them() {
    let Some((store, dir)) = open(Backend::Sqlite).await else {
        return;
    };
    let t0 = OffsetDateTime::now_utc();
    store.append_audit(&six(t0, 0), &link).await.unwrap();
    filled(dir.path(), 6).await;
    let url = format!("sqlite:{}", dir.path().join("agentauth.db").display());
    crate::support::execute_sql(
        Backend::Sqlite,
        &url,
        "DELETE FROM audit_events WHERE seq > 3",
    )
    .await;
    let c: Vec<_> = (0..6)
        .map(|i| {
            prepare(
                event(
                    t0 + Duration::milliseconds(i),
                    "tester",
                    "thing.done",
                    Outcome::Success,
                )
                .agent("c"),
            )
        })
        .collect();
    store.append_audit(&c, &link).await.unwrap();
    assert_eq!(filled(dir.path(), 9).await, (9, 9, 9));
    let agent = |a: &str| AuditFilter {
        agent_id: Some(a.into()),
        ..Default::default()
    };
    assert_eq!(seqs(&store, agent("a"), 100, None).await, vec![1, 3]);
    assert_eq!(seqs(&store, agent("b"), 100, None).await, vec![2]);
    assert_eq!(
        seqs(&store, agent("c"), 100, None).await,
        vec![4, 5, 6, 7, 8, 9]
    );
}

/// SQLite only: a lookups file that is not a database stops the store from opening, with an
/// error that names it and says it can go; once it is gone, the store opens and fills it again.
#[tokio::test]
async fn sqlite_an_unusable_audit_lookups_file_is_named_and_can_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("agentauth.db").display());
    let lookups = dir.path().join("agentauth.db-audit-lookups");
    std::fs::write(&lookups, "not a database ".repeat(512)).unwrap();
    let Err(e) = agentauth::store::open(&url).await else {
        panic!("a store opened over an unusable lookups file");
    };
    assert!(
        e.to_string()
            .contains("agentauth.db-audit-lookups is derived from the database"),
        "{e}"
    );
    std::fs::remove_file(&lookups).unwrap();
    let store = agentauth::store::open(&url).await.unwrap();
    store
        .append_audit(&six(OffsetDateTime::now_utc(), 0), &link)
        .await
        .unwrap();
    assert_eq!(filled(dir.path(), 6).await, (6, 6, 6));
}
