//! The admin API (SPEC §8) beyond agents: roles, delegations, user assignments, resources,
//! trusted issuers, with their exact JSON shapes, and the OpenAPI document.

use crate::support::{Backend, TestServer, whole_seconds};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use std::collections::HashSet;

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn roles_delegations_and_user_assignments_are_replaced_and_listed(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.resource(
        "api://hotel",
        &["read", "write"],
        &["bookings.read", "bookings.write"],
    )
    .await;
    s.resource("api://mail", &["send"], &["mail.read"]).await;
    let (id, _) = s.agent("grant-agent").await;
    let put = |path: &'static str, body: Value| {
        let s = &s;
        let id = id.clone();
        async move {
            s.admin(Method::PUT, &format!("/agents/{id}/{path}"), Some(body))
                .await
        }
    };
    let (status, body) = put(
        "roles",
        json!({"resource": "api://hotel", "roles": ["write", "read", "read"]}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"resource": "api://hotel", "roles": ["read", "write"]})
        )
    );
    put(
        "roles",
        json!({"resource": "api://mail", "roles": ["send"]}),
    )
    .await;
    let (status, body) = put(
        "roles",
        json!({"resource": "api://hotel", "roles": ["read"]}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"resource": "api://hotel", "roles": ["read"]})
        )
    );
    let (_, list) = s
        .admin(Method::GET, &format!("/agents/{id}/roles"), None)
        .await;
    let mut items = list["items"].as_array().unwrap().clone();
    items.sort_by_key(|i| i["resource"].as_str().unwrap().to_owned());
    assert_eq!(
        items,
        vec![
            json!({"resource": "api://hotel", "roles": ["read"]}),
            json!({"resource": "api://mail", "roles": ["send"]})
        ]
    );
    put("roles", json!({"resource": "api://mail", "roles": []})).await;
    let (_, list) = s
        .admin(Method::GET, &format!("/agents/{id}/roles"), None)
        .await;
    assert_eq!(
        list,
        json!({"items": [{"resource": "api://hotel", "roles": ["read"]}], "next_cursor": null})
    );
    for bad in [
        json!({"resource": "api://hotel", "roles": ["delete"]}),
        json!({"resource": "api://nowhere", "roles": ["read"]}),
        json!({"resource": "api://hotel", "roles": ["read"], "extra": 1}),
    ] {
        let (status, _) = put("roles", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    let (status, body) = put(
        "delegations",
        json!({"resource": "api://hotel", "scopes": ["bookings.read"]}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"resource": "api://hotel", "scopes": ["bookings.read"]})
        )
    );
    let (_, list) = s
        .admin(Method::GET, &format!("/agents/{id}/delegations"), None)
        .await;
    assert_eq!(
        list,
        json!({"items": [{"resource": "api://hotel", "scopes": ["bookings.read"]}], "next_cursor": null})
    );
    let (status, _) = put(
        "delegations",
        json!({"resource": "api://hotel", "scopes": ["read"]}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "roles are not delegated scopes"
    );

    for (principal, resource, scopes) in [
        ("user-1", "api://hotel", json!(["bookings.read"])),
        ("user-1", "api://mail", json!(["mail.read"])),
        (
            "group:travel",
            "api://hotel",
            json!(["bookings.read", "bookings.write"]),
        ),
    ] {
        let body = json!({"principal": principal, "resource": resource, "scopes": scopes});
        let (status, answer) = s
            .admin(Method::PUT, "/user-assignments", Some(body.clone()))
            .await;
        assert_eq!((status, answer), (StatusCode::OK, body));
    }
    let (_, by_user) = s
        .admin(Method::GET, "/user-assignments?principal=user-1", None)
        .await;
    assert_eq!(by_user["items"].as_array().unwrap().len(), 2);
    let (_, by_both) = s
        .admin(
            Method::GET,
            "/user-assignments?principal=user-1&resource=api://mail",
            None,
        )
        .await;
    assert_eq!(
        by_both,
        json!({"items": [{"principal": "user-1", "resource": "api://mail", "scopes": ["mail.read"]}], "next_cursor": null})
    );
    let (_, by_resource) = s
        .admin(Method::GET, "/user-assignments?resource=api://hotel", None)
        .await;
    assert_eq!(by_resource["items"].as_array().unwrap().len(), 2);
    let (status, _) = s
        .admin(
            Method::PUT,
            "/user-assignments",
            Some(json!({"principal": "user-1", "resource": "api://hotel", "scopes": ["nope"]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A role or scope taken off a resource is taken from whoever held it, audited; defining the
/// name again later grants it to nobody.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn permissions_removed_from_a_resource_are_withdrawn(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let hotel = s
        .resource_view("api://hotel", &["read", "write"], &["b.read", "b.write"])
        .await;
    let hotel_id = hotel["id"].as_str().unwrap().to_owned();
    let (id, secret) = s.agent("holder").await;
    s.grant_roles(&id, "api://hotel", &["read", "write"]).await;
    for (method, path, body) in [
        (
            Method::PUT,
            format!("/agents/{id}/delegations"),
            json!({"resource": "api://hotel", "scopes": ["b.read", "b.write"]}),
        ),
        (
            Method::PUT,
            "/user-assignments".to_owned(),
            json!({"principal": "user-1", "resource": "api://hotel", "scopes": ["b.read", "b.write"]}),
        ),
    ] {
        let (status, body) = s.admin(method, &path, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, blueprint) = s
        .admin(
            Method::POST,
            "/blueprints",
            Some(json!({
                "name": "holders", "sponsors": ["s"],
                "default_roles": [{"resource": "api://hotel", "roles": ["read", "write"]}],
                "default_delegations": [{"resource": "api://hotel", "scopes": ["b.read", "b.write"]}],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{blueprint}");
    let blueprint = blueprint["id"].as_str().unwrap().to_owned();
    let patch = |roles: &[&str], scopes: &[&str]| json!({"roles": roles, "scopes": scopes});
    let (status, body) = s
        .admin(
            Method::PATCH,
            &format!("/resources/{hotel_id}"),
            Some(patch(&["read"], &["b.read"])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed = |path: String| {
        let s = &s;
        async move { s.admin(Method::GET, &path, None).await.1["items"].clone() }
    };
    assert_eq!(
        listed(format!("/agents/{id}/roles")).await,
        json!([{"resource": "api://hotel", "roles": ["read"]}])
    );
    assert_eq!(
        listed(format!("/agents/{id}/delegations")).await,
        json!([{"resource": "api://hotel", "scopes": ["b.read"]}])
    );
    assert_eq!(
        listed("/user-assignments?resource=api://hotel".to_owned()).await,
        json!([{"principal": "user-1", "resource": "api://hotel", "scopes": ["b.read"]}])
    );
    let (_, defaults) = s
        .admin(Method::GET, &format!("/blueprints/{blueprint}"), None)
        .await;
    assert_eq!(
        defaults["default_roles"],
        json!([{"resource": "api://hotel", "roles": ["read"]}]),
        "{defaults}"
    );
    assert_eq!(
        defaults["default_delegations"],
        json!([{"resource": "api://hotel", "scopes": ["b.read"]}]),
        "{defaults}"
    );
    let withdrawn = s
        .all_pages(&format!("/audit?agent_id={id}&action=agent.roles.set"))
        .await;
    assert!(
        withdrawn
            .iter()
            .any(|e| e["detail"]["after"]["roles"] == json!(["read"])),
        "{withdrawn:?}"
    );
    // Defining `write` again grants it to nobody.
    let (status, body) = s
        .admin(
            Method::PATCH,
            &format!("/resources/{hotel_id}"),
            Some(patch(&["read", "write"], &["b.read", "b.write"])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = s.token(&id, &secret, "api://hotel/.default").await;
    assert_eq!(crate::support::claims_of(&token)["roles"], json!(["read"]));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn resources_are_created_read_changed_listed_and_deleted(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let created = whole_seconds(
        &s.resource_view("https://hotel.example", &["write", "read"], &["book"])
            .await,
    );
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created,
        json!({
            "id": id, "identifier": "https://hotel.example", "name": "https://hotel.example",
            "scopes": ["book"], "roles": ["read", "write"], "user_assignment_required": false,
            "token_profile": "rfc9068", "created_at": created["created_at"], "updated_at": created["created_at"],
        })
    );
    let (status, got) = s
        .admin(Method::GET, &format!("/resources/{id}"), None)
        .await;
    assert_eq!((status, &got), (StatusCode::OK, &created));
    let (status, patched) = s
        .admin(
            Method::PATCH,
            &format!("/resources/{id}"),
            Some(json!({"name": "Hotel", "roles": ["read"], "user_assignment_required": true, "token_profile": "entra"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Hotel");
    assert_eq!(patched["roles"], json!(["read"]));
    assert_eq!(patched["scopes"], json!(["book"]));
    assert_eq!(patched["user_assignment_required"], true);
    assert_eq!(patched["token_profile"], "entra");
    let (_, page) = s.admin(Method::GET, "/resources", None).await;
    let identifiers: HashSet<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(
        identifiers,
        HashSet::from(["https://hotel.example", s.admin_resource().as_str()])
    );
    let (status, _) = s
        .admin(Method::DELETE, &format!("/resources/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .admin(Method::GET, &format!("/resources/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The admin resource stays.
    let admin_id = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["identifier"] == s.admin_resource().as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = s
        .admin(Method::DELETE, &format!("/resources/{admin_id}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn trusted_issuers_are_added_read_and_removed(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let body = json!({
        "issuer": "https://idp.example.com",
        "jwks_uri": "https://idp.example.com/keys",
        "audiences": ["api://agentauth"],
        "use": ["subject_tokens"],
    });
    let (status, created) = s
        .admin(Method::POST, "/trusted-issuers", Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let created = whole_seconds(&created);
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created,
        json!({
            "id": id, "issuer": "https://idp.example.com", "jwks_uri": "https://idp.example.com/keys",
            "jwks": null, "subject_claim": "sub", "audiences": ["api://agentauth"],
            "use": ["subject_tokens"], "created_at": created["created_at"],
        })
    );
    let (status, got) = s
        .admin(Method::GET, &format!("/trusted-issuers/{id}"), None)
        .await;
    assert_eq!((status, &got), (StatusCode::OK, &created));
    let (_, list) = s.admin(Method::GET, "/trusted-issuers", None).await;
    assert_eq!(list, json!({"items": [created], "next_cursor": null}));
    let (status, _) = s.admin(Method::POST, "/trusted-issuers", Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = s
        .admin(Method::DELETE, &format!("/trusted-issuers/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .admin(Method::GET, &format!("/trusted-issuers/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = s.admin(Method::GET, "/trusted-issuers", None).await;
    assert_eq!(list, json!({"items": [], "next_cursor": null}));
    // This server's own issuer, in either profile's form, is never a trusted issuer.
    for issuer in [
        s.base.clone(),
        format!("{}/", s.base),
        s.base.to_uppercase(),
        format!("{}/{}/v2.0", s.base, s.tenant_id()),
    ] {
        let (status, problem) = s
            .admin(
                Method::POST,
                "/trusted-issuers",
                Some(json!({"issuer": issuer, "jwks_uri": "https://idp.example/keys", "use": ["subject_tokens"]})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{issuer}: {problem}");
    }
    // Another IdP on the same origin is not this server.
    let (status, body) = s
        .admin(
            Method::POST,
            "/trusted-issuers",
            Some(json!({"issuer": format!("{}/realms/other", s.base), "jwks_uri": "https://idp.example/keys", "use": ["subject_tokens"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_openapi_document_describes_the_api(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let res = s
        .http
        .get(s.url("/admin/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/agents",
        "/agents/{id}",
        "/agents/{id}/credentials",
        "/resources",
        "/audit",
        "/keys",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    assert!(paths["/agents"].get("post").is_some());
    assert!(paths["/agents"].get("get").is_some());
}

/// The short lists (credentials, grants, user assignments, issuers, keys) page like the others
/// (SPEC §8: `?limit=&cursor=` → `{"items", "next_cursor"}`).
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn every_list_pages(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (id, _) = s.agent("many-secrets").await;
    for _ in 0..2 {
        let (status, _) = s
            .admin(
                Method::POST,
                &format!("/agents/{id}/credentials"),
                Some(json!({"type": "client_secret"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    for name in ["https://a.example", "https://b.example"] {
        let (status, body) = s
            .admin(
                Method::POST,
                "/trusted-issuers",
                Some(json!({"issuer": name, "jwks_uri": "https://idp.example/keys", "use": ["subject_tokens"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_, one) = s.admin(Method::GET, "/trusted-issuers?limit=1", None).await;
    let cursor = one["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let (_, two) = s
        .admin(
            Method::GET,
            &format!("/trusted-issuers?limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(two["next_cursor"], Value::Null, "{two}");
    assert_ne!(one["items"][0]["id"], two["items"][0]["id"]);
    let (_, keys) = s.admin(Method::GET, "/keys?limit=1", None).await;
    assert_eq!(keys["items"].as_array().unwrap().len(), 1, "{keys}");
    let (_, first) = s
        .admin(
            Method::GET,
            &format!("/agents/{id}/credentials?limit=2"),
            None,
        )
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2, "{first}");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, second) = s
        .admin(
            Method::GET,
            &format!("/agents/{id}/credentials?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1, "{second}");
    assert_eq!(second["next_cursor"], Value::Null);
    let ids: HashSet<String> = [&first, &second]
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().iter())
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3, "every credential once");
    // A credential removed between pages moves no other across the cursor.
    let (_, first) = s
        .admin(
            Method::GET,
            &format!("/agents/{id}/credentials?limit=1"),
            None,
        )
        .await;
    let gone = first["items"][0]["id"].as_str().unwrap().to_owned();
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    s.admin(
        Method::DELETE,
        &format!("/agents/{id}/credentials/{gone}"),
        None,
    )
    .await;
    let (_, rest) = s
        .admin(
            Method::GET,
            &format!("/agents/{id}/credentials?cursor={cursor}"),
            None,
        )
        .await;
    let rest: HashSet<String> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert!(!rest.contains(&gone));
    for bad in ["limit=0", "limit=501", "cursor=%21%21"] {
        let (status, problem) = s
            .admin(
                Method::GET,
                &format!("/agents/{id}/credentials?{bad}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
    }
}
