//! The admin API's agents (SPEC §8): create, read, change, list with filters and cursors,
//! disable, enable, delete, restore, and their credentials, with the exact JSON shapes.

use crate::support::{Backend, TestServer, keys_of, rfc3339_in, sorted, whole_seconds};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use std::collections::HashSet;

const AGENT_MEMBERS: &[&str] = &[
    "id",
    "client_id",
    "name",
    "description",
    "owners",
    "sponsors",
    "status",
    "expires_at",
    "token_ttl_seconds",
    "tags",
    "blueprint_id",
    "last_active_at",
    "created_at",
    "updated_at",
];

fn names(page: &Value) -> Vec<String> {
    let mut v: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn agents_are_created_read_changed_and_listed(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (expires_at, _) = rfc3339_in(30 * 86400);
    let (status, created) = s
        .admin(
            Method::POST,
            "/agents",
            Some(json!({
                "name": "travel-agent",
                "description": "books trips",
                "owners": ["team-travel"],
                "sponsors": ["alice@example.com", "bob@example.com"],
                "expires_at": expires_at,
                "token_ttl_seconds": 900,
                "tags": {"env": "test"},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(keys_of(&created), sorted(AGENT_MEMBERS));
    let created = whole_seconds(&created);
    let id = created["id"].as_str().unwrap().to_owned();
    uuid::Uuid::parse_str(&id).unwrap();
    let expected = json!({
        "id": id, "client_id": id, "name": "travel-agent", "description": "books trips",
        "owners": ["team-travel"], "sponsors": ["alice@example.com", "bob@example.com"],
        "status": "active", "expires_at": expires_at, "token_ttl_seconds": 900,
        "tags": {"env": "test"}, "blueprint_id": null, "last_active_at": null,
        "created_at": created["created_at"], "updated_at": created["created_at"],
    });
    assert_eq!(created, expected);
    assert_eq!(s.get_agent(&id).await, expected);

    // Defaults: no description, owners or tags; 90 days of life; the server's token TTL.
    let (status, minimal) = s
        .admin(
            Method::POST,
            "/agents",
            Some(json!({"name": "minimal", "sponsors": ["alice"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{minimal}");
    assert_eq!(minimal["description"], "");
    assert_eq!(minimal["owners"], json!([]));
    assert_eq!(minimal["tags"], json!({}));
    assert_eq!(minimal["token_ttl_seconds"], json!(null));
    let expires = time::OffsetDateTime::parse(
        minimal["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let days = (expires - time::OffsetDateTime::now_utc()).whole_hours();
    assert!((89 * 24..=90 * 24).contains(&days), "{days} hours");

    let (status, patched) = s
        .admin(
            Method::PATCH,
            &format!("/agents/{id}"),
            Some(json!({"description": "books flights", "owners": [], "tags": {"env": "prod"}, "token_ttl_seconds": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let patched = whole_seconds(&patched);
    assert_eq!(patched["description"], "books flights");
    assert_eq!(patched["owners"], json!([]));
    assert_eq!(patched["tags"], json!({"env": "prod"}));
    assert_eq!(patched["token_ttl_seconds"], json!(null));
    assert_eq!(patched["sponsors"], expected["sponsors"]);
    assert_eq!(patched["name"], "travel-agent");
    assert_eq!(s.get_agent(&id).await, patched);

    let (status, page) = s.admin(Method::GET, "/agents", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys_of(&page), sorted(&["items", "next_cursor"]));
    assert_eq!(
        names(&page),
        sorted(&["agentauth-admin", "minimal", "travel-agent"])
    );
    assert!(page["items"].as_array().unwrap().contains(&patched));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn agents_are_disabled_enabled_deleted_and_restored(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (id, _) = s.agent("lifecycle-agent").await;
    assert_eq!(
        s.agent_action(&id, "disable", StatusCode::OK).await["status"],
        "disabled"
    );
    assert_eq!(s.get_agent(&id).await["status"], "disabled");
    assert_eq!(
        s.agent_action(&id, "enable", StatusCode::OK).await["status"],
        "active"
    );
    let (status, body) = s
        .admin(Method::DELETE, &format!("/agents/{id}"), None)
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    // Soft delete: still readable, hidden from the default list, listed with status=deleted.
    assert_eq!(s.get_agent(&id).await["status"], "deleted");
    let (_, page) = s.admin(Method::GET, "/agents", None).await;
    assert_eq!(names(&page), sorted(&["agentauth-admin"]));
    let (_, page) = s.admin(Method::GET, "/agents?status=deleted", None).await;
    assert_eq!(names(&page), sorted(&["lifecycle-agent"]));
    s.agent_action(&id, "enable", StatusCode::CONFLICT).await;
    s.agent_action(&id, "disable", StatusCode::CONFLICT).await;
    // A deleted agent takes no new secret, role or delegation until it is restored.
    s.resource("api://hotel", &["read"], &["bookings.read"])
        .await;
    for (method, path, body) in [
        (
            Method::POST,
            "credentials",
            json!({"type": "client_secret"}),
        ),
        (
            Method::PUT,
            "roles",
            json!({"resource": "api://hotel", "roles": ["read"]}),
        ),
        (
            Method::PUT,
            "delegations",
            json!({"resource": "api://hotel", "scopes": ["bookings.read"]}),
        ),
    ] {
        let (status, problem) = s
            .admin(method, &format!("/agents/{id}/{path}"), Some(body))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {problem}");
    }
    let (_, roles) = s
        .admin(Method::GET, &format!("/agents/{id}/roles"), None)
        .await;
    assert_eq!(roles["items"], json!([]), "{roles}");
    assert_eq!(
        s.agent_action(&id, "restore", StatusCode::OK).await["status"],
        "active"
    );
    s.agent_action(&id, "restore", StatusCode::CONFLICT).await;
    let (status, body) = s
        .admin(Method::POST, &format!("/agents/{id}/revoke-tokens"), None)
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_secret_is_shown_once_and_never_listed(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (status, agent) = s
        .admin(
            Method::POST,
            "/agents",
            Some(json!({"name": "cred-agent", "sponsors": ["alice"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = agent["id"].as_str().unwrap();
    let res = s
        .admin_raw(
            Some(&s.admin_token().await),
            Method::POST,
            &format!("/agents/{id}/credentials"),
            Some(json!({"type": "client_secret"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let created = whole_seconds(&res.json().await.unwrap());
    assert_eq!(
        keys_of(&created),
        sorted(&["created_at", "expires_at", "hint", "id", "secret", "type"])
    );
    assert_eq!(created["type"], "client_secret");
    assert_eq!(created["expires_at"], json!(null));
    let secret = created["secret"].as_str().unwrap();
    // ≥ 256 bits of URL-safe characters.
    assert!(secret.len() >= 43, "{secret}");
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert!(secret.starts_with(created["hint"].as_str().unwrap()));
    assert!(created["hint"].as_str().unwrap().len() < 8);

    let (expires_at, _) = rfc3339_in(86400);
    let (status, second) = s
        .admin(
            Method::POST,
            &format!("/agents/{id}/credentials"),
            Some(json!({"type": "client_secret", "expires_at": expires_at})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(second["expires_at"], expires_at.as_str());
    let (status, federated) = s
        .admin(
            Method::POST,
            &format!("/agents/{id}/credentials"),
            Some(json!({"type": "federated", "issuer": "https://token.actions.githubusercontent.com", "subject": "repo:o/r:ref:refs/heads/main", "audience": "api://AzureADTokenExchange"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{federated}");
    assert_eq!(
        keys_of(&federated),
        sorted(&[
            "audience",
            "created_at",
            "expires_at",
            "id",
            "issuer",
            "subject",
            "type"
        ])
    );
    // A private JWK is refused; a public one is kept as given.
    let jwks: Value = s
        .http
        .get(s.url("/oauth2/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = jwks["keys"][0].clone();
    let mut private = public.clone();
    private["d"] = json!("AAAA");
    let (status, problem) = s
        .admin(
            Method::POST,
            &format!("/agents/{id}/credentials"),
            Some(json!({"type": "public_key", "jwk": private})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, key) = s
        .admin(
            Method::POST,
            &format!("/agents/{id}/credentials"),
            Some(json!({"type": "public_key", "jwk": public})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    assert_eq!(key["jwk"], public);

    let res = s
        .admin_raw(
            Some(&s.admin_token().await),
            Method::GET,
            &format!("/agents/{id}/credentials"),
            None,
        )
        .await;
    let text = res.text().await.unwrap();
    assert!(!text.contains(secret));
    assert!(!text.contains(second["secret"].as_str().unwrap()));
    assert!(!text.contains("\"secret\""));
    assert!(!text.contains("argon2"));
    let list: Value = serde_json::from_str(&text).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    let first = items.iter().find(|c| c["id"] == created["id"]).unwrap();
    assert_eq!(
        first,
        &json!({"id": created["id"], "type": "client_secret", "hint": created["hint"], "expires_at": null, "created_at": created["created_at"]})
    );

    let cid = created["id"].as_str().unwrap();
    let (status, _) = s
        .admin(
            Method::DELETE,
            &format!("/agents/{id}/credentials/{cid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .admin(
            Method::DELETE,
            &format!("/agents/{id}/credentials/{cid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = s
        .admin(Method::GET, &format!("/agents/{id}/credentials"), None)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn cursor_pagination_visits_every_agent_once(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    for i in 0..5 {
        s.agent(&format!("paged-{i}")).await;
    }
    let mut seen = Vec::new();
    let mut path = "/agents?limit=2".to_owned();
    for _ in 0..10 {
        let (status, page) = s.admin(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|a| a["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/agents?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "5 agents and the bootstrap admin: {seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 6);
    let (_, all) = s.admin(Method::GET, "/agents", None).await;
    assert_eq!(all["next_cursor"], json!(null));
    assert_eq!(all["items"].as_array().unwrap().len(), 6);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn agents_are_filtered(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let soon = rfc3339_in(3600).0;
    for (name, owners, sponsors, expires_at) in [
        (
            "a1",
            json!(["team-a"]),
            json!(["alice"]),
            Some(soon.clone()),
        ),
        ("a2", json!(["team-a", "team-b"]), json!(["bob"]), None),
        ("b1", json!(["team-b"]), json!(["alice", "carol"]), None),
        ("n1", json!([]), json!(["alice_x"]), None),
    ] {
        let mut body = json!({"name": name, "owners": owners, "sponsors": sponsors});
        if let Some(e) = expires_at {
            body["expires_at"] = json!(e);
        }
        s.agent_from(body).await;
    }
    let (disabled, _) = s
        .agent_from(json!({"name": "d1", "owners": ["team-a"], "sponsors": ["alice"]}))
        .await;
    s.agent_action(&disabled, "disable", StatusCode::OK).await;
    let list = |q: &'static str| {
        let s = &s;
        async move {
            let (status, page) = s.admin(Method::GET, &format!("/agents?{q}"), None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            names(&page)
        }
    };
    assert_eq!(list("owner=team-a").await, sorted(&["a1", "a2", "d1"]));
    assert_eq!(list("owner=team").await, Vec::<String>::new());
    assert_eq!(list("sponsor=alice").await, sorted(&["a1", "b1", "d1"]));
    assert_eq!(list("sponsor=alice_x").await, sorted(&["n1"]));
    assert_eq!(list("owner=team-b&sponsor=alice").await, sorted(&["b1"]));
    assert_eq!(list("status=disabled").await, sorted(&["d1"]));
    assert_eq!(
        list("status=active").await,
        sorted(&["a1", "a2", "agentauth-admin", "b1", "n1"])
    );
    assert_eq!(list("status=expired").await, Vec::<String>::new());
    let before = crate::support::rfc3339_in(7200).0;
    let (status, page) = s
        .admin(
            Method::GET,
            &format!("/agents?expiring_before={}", before.replace('+', "%2B")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(names(&page), sorted(&["a1"]));
}

/// A deleted agent can be restored for 30 days, not after (SPEC §1); the server's clock is
/// moved instead of waiting.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_deleted_agent_is_restorable_for_thirty_days(#[case] backend: Backend) {
    let clock = agentauth::clock::FixedClock::at(time::OffsetDateTime::now_utc());
    let shared = std::sync::Arc::new(clock.clone());
    let Some(s) = TestServer::start_with_clock(backend, shared).await else {
        return;
    };
    let (id, _) = s.agent("short-memory").await;
    let (status, _) = s
        .admin(Method::DELETE, &format!("/agents/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    clock.advance(time::Duration::days(29));
    s.agent_action(&id, "restore", StatusCode::OK).await;
    let (status, _) = s
        .admin(Method::DELETE, &format!("/agents/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    clock.advance(time::Duration::days(31));
    s.agent_action(&id, "restore", StatusCode::CONFLICT).await;
    assert_eq!(s.get_agent(&id).await["status"], "deleted");
}

/// What a create or change answers is what later reads show. The store keeps whole seconds, but
/// the answers to POST and PATCH format the in-memory instant with nanoseconds, so a client
/// comparing the created object with a later GET sees `created_at` and `updated_at` change.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn answers_show_what_is_stored(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (status, agent) = s
        .admin(
            Method::POST,
            "/agents",
            Some(json!({"name": "exact", "sponsors": ["alice"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = agent["id"].as_str().unwrap();
    assert_eq!(s.get_agent(id).await, agent);
    let (_, patched) = s
        .admin(
            Method::PATCH,
            &format!("/agents/{id}"),
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(s.get_agent(id).await, patched);
    let resource = s.resource_view("api://exact", &["read"], &[]).await;
    let (_, got) = s
        .admin(
            Method::GET,
            &format!("/resources/{}", resource["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(got, resource);
}

/// Every 201 names what it made in `Location` (RFC 9110 §15.3.2), and that address answers with
/// the same object.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn what_is_created_is_located(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let token = s.admin_token().await;
    let (agent, _) = s.agent("located").await;
    let creations = [
        ("/agents", json!({"name": "a", "sponsors": ["s"]}), true),
        (
            "/resources",
            json!({"identifier": "api://located", "name": "x"}),
            true,
        ),
        ("/blueprints", json!({"name": "b", "sponsors": ["s"]}), true),
        (
            "/trusted-issuers",
            json!({"issuer": "https://idp.example.com", "jwks_uri": "https://idp.example.com/keys",
                   "audiences": ["api://agentauth"], "use": ["subject_tokens"]}),
            true,
        ),
        (
            &*format!("/agents/{agent}/credentials"),
            json!({"type": "client_secret"}),
            false,
        ),
    ];
    for (collection, body, readable) in creations {
        let res = s
            .admin_raw(Some(&token), Method::POST, collection, Some(body))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "{collection}");
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        let created: Value = res.json().await.unwrap();
        let id = created["id"].as_str().unwrap();
        assert_eq!(location, format!("/admin/v1{collection}/{id}"));
        let path = location.strip_prefix("/admin/v1").unwrap();
        if readable {
            let (status, read) = s.admin(Method::GET, path, None).await;
            assert_eq!(status, StatusCode::OK, "{location}");
            assert_eq!(read["id"], created["id"], "{location}");
        } else {
            // A credential is never read back; its address is the one that removes it.
            let (status, _) = s.admin(Method::DELETE, path, None).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{location}");
        }
    }
}
