//! ONE conformance suite for the store traits (`agentauth::store`), run against SQLite and
//! PostgreSQL: both must behave the same, call for call.

use crate::support::{Backend, fresh_database_url};
use agentauth::domain::{
    Agent, AgentStatus, Blueprint, Credential, CredentialKind, PageRequest, Resource, TokenProfile,
};
use agentauth::store::{AgentFilter, SharedStore, StoreError};
use rstest::rstest;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

mod audit_listing;
mod records;

/// A fresh, migrated store, and the directory that holds its SQLite file.
async fn open(backend: Backend) -> Option<(SharedStore, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(backend, dir.path()).await?;
    let store = agentauth::store::open(&url).await.expect("store opens");
    Some((store, dir))
}

/// The store keeps whole seconds: tests use whole-second instants.
fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap()
}

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

fn agent(name: &str, t: OffsetDateTime) -> Agent {
    Agent {
        id: Uuid::now_v7(),
        name: name.into(),
        description: format!("{name} does things"),
        owners: vec!["team-a".into()],
        sponsors: vec!["alice".into()],
        disabled: false,
        deleted_at: None,
        expires_at: t + days(90),
        token_ttl_seconds: Some(600),
        tags: BTreeMap::from([("env".into(), "test".into())]),
        blueprint_id: None,
        last_active_at: None,
        tokens_revoked_before_ms: 0,
        created_at: t,
        updated_at: t,
    }
}

fn resource(identifier: &str, t: OffsetDateTime) -> Resource {
    Resource {
        id: Uuid::now_v7(),
        identifier: identifier.into(),
        name: identifier.into(),
        scopes: vec!["s1".into(), "s2".into()],
        roles: vec!["r1".into(), "r2".into()],
        user_assignment_required: false,
        token_profile: TokenProfile::Rfc9068,
        created_at: t,
        updated_at: t,
    }
}

fn is_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

fn names(agents: &[Agent]) -> Vec<&str> {
    let mut v: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
    v.sort_unstable();
    v
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn agents(#[case] backend: Backend) {
    let Some((store, _dir)) = open(backend).await else {
        return;
    };
    let t = now();
    let mut a = agent("alpha", t);
    store.insert_agent(&a).await.unwrap();
    assert_eq!(store.get_agent(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.get_agent_by_name("alpha").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.get_agent(Uuid::now_v7()).await.unwrap(), None);
    assert_eq!(store.get_agent_by_name("nobody").await.unwrap(), None);
    assert!(
        is_conflict(store.insert_agent(&agent("alpha", t)).await),
        "duplicate name"
    );
    let mut same_id = agent("other-name", t);
    same_id.id = a.id;
    assert!(
        is_conflict(store.insert_agent(&same_id).await),
        "duplicate id"
    );

    // Update replaces every column but last_active_at (touch_agents owns it).
    a.description = "changed".into();
    a.owners = vec![];
    a.sponsors = vec!["bob".into(), "carol".into()];
    a.disabled = true;
    a.token_ttl_seconds = None;
    a.tags = BTreeMap::new();
    a.blueprint_id = Some(Uuid::now_v7());
    a.tokens_revoked_before_ms = 1_700_000_000_123;
    a.updated_at = t + days(1);
    store.update_agent(&a).await.unwrap();
    assert_eq!(store.get_agent(a.id).await.unwrap(), Some(a.clone()));
    let b = agent("beta", t);
    store.insert_agent(&b).await.unwrap();
    let mut renamed = b.clone();
    renamed.name = "alpha".into();
    assert!(
        is_conflict(store.update_agent(&renamed).await),
        "rename onto a taken name"
    );
    assert_eq!(store.get_agent(b.id).await.unwrap(), Some(b.clone()));

    // last_active_at only moves forward.
    store.touch_agents(&[(b.id, t + days(1))]).await.unwrap();
    store.touch_agents(&[(b.id, t)]).await.unwrap();
    assert_eq!(
        store.get_agent(b.id).await.unwrap().unwrap().last_active_at,
        Some(t + days(1))
    );
    store.touch_agents(&[]).await.unwrap();
}

/// `last_active_at` moves forward only, for each agent of a batch, and an unknown agent in the
/// batch changes nothing.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn agents_last_active_at_moves_forward_only(#[case] backend: Backend) {
    let Some((store, _dir)) = open(backend).await else {
        return;
    };
    let t = now();
    let (a, b) = (agent("active-a", t), agent("active-b", t));
    store.insert_agent(&a).await.unwrap();
    store.insert_agent(&b).await.unwrap();
    let seen = |id: Uuid| {
        let store = store.clone();
        async move { store.get_agent(id).await.unwrap().unwrap().last_active_at }
    };
    store
        .touch_agents(&[(a.id, t), (b.id, t), (Uuid::now_v7(), t)])
        .await
        .unwrap();
    assert_eq!((seen(a.id).await, seen(b.id).await), (Some(t), Some(t)));
    let later = t + time::Duration::seconds(10);
    let earlier = t - time::Duration::seconds(10);
    store
        .touch_agents(&[(a.id, later), (b.id, earlier)])
        .await
        .unwrap();
    assert_eq!((seen(a.id).await, seen(b.id).await), (Some(later), Some(t)));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn agent_lists_filter_and_page(#[case] backend: Backend) {
    let Some((store, _dir)) = open(backend).await else {
        return;
    };
    let t = now();
    let bp = Uuid::now_v7();
    let mut all = Vec::new();
    for (name, owners, sponsors, expires_in, disabled, deleted, blueprint) in [
        (
            "a-active",
            vec!["team-a"],
            vec!["alice"],
            90,
            false,
            false,
            false,
        ),
        (
            "b-soon",
            vec!["team-a", "team_b"],
            vec!["bob"],
            1,
            false,
            false,
            true,
        ),
        (
            "c-disabled",
            vec!["team-b"],
            vec!["alice"],
            90,
            true,
            false,
            false,
        ),
        (
            "d-deleted",
            vec!["team-a"],
            vec!["alice"],
            90,
            false,
            true,
            false,
        ),
        ("e-expired", vec![], vec!["100%"], -1, false, false, true),
    ] {
        let mut a = agent(name, t - days(5));
        a.owners = owners.into_iter().map(String::from).collect();
        a.sponsors = sponsors.into_iter().map(String::from).collect();
        a.expires_at = t + days(expires_in);
        a.disabled = disabled;
        a.deleted_at = deleted.then_some(t - days(1));
        a.blueprint_id = blueprint.then_some(bp);
        store.insert_agent(&a).await.unwrap();
        all.push(a);
    }
    let list = |filter: AgentFilter| {
        let store = store.clone();
        async move {
            store
                .list_agents(&filter, t, &PageRequest::first(100))
                .await
                .unwrap()
        }
    };
    let status = |s| AgentFilter {
        status: Some(s),
        ..Default::default()
    };
    assert_eq!(
        names(&list(AgentFilter::default()).await),
        ["a-active", "b-soon", "c-disabled", "e-expired"]
    );
    assert_eq!(
        names(&list(status(AgentStatus::Active)).await),
        ["a-active", "b-soon"]
    );
    assert_eq!(
        names(&list(status(AgentStatus::Disabled)).await),
        ["c-disabled"]
    );
    assert_eq!(
        names(&list(status(AgentStatus::Deleted)).await),
        ["d-deleted"]
    );
    assert_eq!(
        names(&list(status(AgentStatus::Expired)).await),
        ["e-expired"]
    );
    let owner = |o: &str| AgentFilter {
        owner: Some(o.into()),
        ..Default::default()
    };
    assert_eq!(names(&list(owner("team-a")).await), ["a-active", "b-soon"]);
    // LIKE wildcards in a filter are plain characters.
    assert_eq!(names(&list(owner("team_b")).await), ["b-soon"]);
    assert_eq!(names(&list(owner("team")).await), Vec::<&str>::new());
    let sponsor = |o: &str| AgentFilter {
        sponsor: Some(o.into()),
        ..Default::default()
    };
    assert_eq!(
        names(&list(sponsor("alice")).await),
        ["a-active", "c-disabled"]
    );
    assert_eq!(names(&list(sponsor("100%")).await), ["e-expired"]);
    assert_eq!(names(&list(sponsor("%")).await), Vec::<&str>::new());
    let expiring = AgentFilter {
        expiring_before: Some(t + days(2)),
        ..Default::default()
    };
    assert_eq!(names(&list(expiring).await), ["b-soon", "e-expired"]);
    let of_bp = AgentFilter {
        blueprint_id: Some(bp),
        ..Default::default()
    };
    assert_eq!(names(&list(of_bp).await), ["b-soon", "e-expired"]);

    // Pages of two, in id order, each item once.
    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let batch = store
            .list_agents(&AgentFilter::default(), t, &page)
            .await
            .unwrap();
        assert!(batch.len() <= 2);
        seen.extend(batch.iter().map(|a| a.id));
        if batch.len() < 2 {
            break;
        }
        page.after = batch.last().map(|a| a.id.to_string());
    }
    let mut expected: Vec<Uuid> = all
        .iter()
        .filter(|a| a.deleted_at.is_none())
        .map(|a| a.id)
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn blueprints(#[case] backend: Backend) {
    let Some((store, _dir)) = open(backend).await else {
        return;
    };
    let t = now();
    let mut b = Blueprint {
        id: Uuid::now_v7(),
        name: "travel".into(),
        description: "travel agents".into(),
        owners: vec!["team-a".into()],
        sponsors: vec!["alice".into()],
        disabled: false,
        deleted_at: None,
        default_roles: BTreeMap::from([("api://hotel".into(), vec!["r1".into()])]),
        default_delegations: BTreeMap::from([("api://hotel".into(), vec!["s1".into()])]),
        created_at: t,
        updated_at: t,
    };
    store.insert_blueprint(&b).await.unwrap();
    assert_eq!(store.get_blueprint(b.id).await.unwrap(), Some(b.clone()));
    let mut dup = b.clone();
    dup.id = Uuid::now_v7();
    assert!(is_conflict(store.insert_blueprint(&dup).await));
    b.disabled = true;
    b.deleted_at = Some(t);
    b.default_roles.clear();
    store.update_blueprint(&b).await.unwrap();
    assert_eq!(store.get_blueprint(b.id).await.unwrap(), Some(b.clone()));
    let listed = store
        .list_blueprints(&PageRequest::first(10), true)
        .await
        .unwrap();
    assert_eq!(listed, vec![b.clone()]);
    let live = store
        .list_blueprints(&PageRequest::first(10), false)
        .await
        .unwrap();
    assert!(live.is_empty(), "{live:?}");
    let after = PageRequest {
        limit: 10,
        after: Some(b.id.to_string()),
    };
    assert!(
        store
            .list_blueprints(&after, true)
            .await
            .unwrap()
            .is_empty()
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn credentials(#[case] backend: Backend) {
    let Some((store, _dir)) = open(backend).await else {
        return;
    };
    let t = now();
    let owner = Uuid::now_v7();
    let kinds = [
        CredentialKind::ClientSecret {
            hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            hint: "abc".into(),
        },
        CredentialKind::PublicKey {
            jwk: Some(serde_json::json!({"kty": "EC", "crv": "P-256", "x": "x", "y": "y"})),
            jwks_uri: None,
            certificate: None,
        },
        CredentialKind::PublicKey {
            jwk: None,
            jwks_uri: Some("https://keys.example/jwks".into()),
            certificate: None,
        },
        CredentialKind::Federated {
            issuer: "https://iss.example".into(),
            subject: "sub".into(),
            audience: "aud".into(),
        },
    ];
    let mut stored = Vec::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        let c = Credential {
            id: Uuid::now_v7(),
            owner_id: owner,
            kind,
            expires_at: (i % 2 == 0).then_some(t + days(1)),
            created_at: t + time::Duration::seconds(i as i64),
        };
        store.insert_credential(&c).await.unwrap();
        stored.push(c);
    }
    assert_eq!(store.list_credentials(owner).await.unwrap(), stored);
    assert!(
        store
            .list_credentials(Uuid::now_v7())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(is_conflict(store.insert_credential(&stored[0]).await));
    // Deleting needs the right owner; a second delete finds nothing.
    assert!(
        !store
            .delete_credential(Uuid::now_v7(), stored[1].id)
            .await
            .unwrap()
    );
    assert!(store.delete_credential(owner, stored[1].id).await.unwrap());
    assert!(!store.delete_credential(owner, stored[1].id).await.unwrap());
    stored.remove(1);
    assert_eq!(store.list_credentials(owner).await.unwrap(), stored);
}
