//! Agent-to-agent delegation (RFC 8693 §4.1, SPEC §3): exchanging a delegated token again
//! nests `act`, up to the configured depth; every agent of the chain must stay active; an
//! `actor_token` must name the authenticated agent.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure is the report

use crate::support::{Backend, TestServer, claims_of};
use crate::token_exchange::{
    ACCESS_TOKEN, HOTEL, JWT, assert_error, delegate, exchange, exchange_ok, world,
};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::json;

/// Registers `api://<agent>` so another agent can be delegated to reach it.
async fn agent_resource(s: &TestServer, agent: &str) -> String {
    s.resource(&format!("api://{agent}"), &[], &["delegate"])
        .await
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn agent_chains_nest_act_and_die_with_any_agent(#[case] backend: Backend) {
    let Some(w) = world(backend, |_| {}).await else {
        return;
    };
    let (s, a) = (&w.s, w.agent.as_str());
    let (b, b_secret) = s.agent("hotel-agent").await;
    let b_api = agent_resource(s, &b).await;
    delegate(s, a, &b_api, &["delegate"]).await;
    delegate(s, &b, HOTEL, &["bookings.read"]).await;

    let user = w.idp.token("user-1", a, json!({}));
    let to_b = exchange_ok(s, (a, &w.secret), &user, &b_api, "delegate").await;
    let c = claims_of(&to_b);
    assert_eq!(
        (c["aud"].as_str(), c["sub"].as_str()),
        (Some(b_api.as_str()), Some("user-1"))
    );
    assert_eq!(c["act"], json!({"sub": a}));

    let chained = exchange_ok(s, (&b, &b_secret), &to_b, HOTEL, "bookings.read").await;
    let c = claims_of(&chained);
    assert_eq!(c["sub"], "user-1");
    assert_eq!(c["client_id"], b.as_str());
    assert_eq!(c["act"], json!({"sub": b, "act": {"sub": a}}));
    assert_eq!(c["scope"], "bookings.read");
    let i = s.introspect(&chained).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["act"], json!({"sub": b, "act": {"sub": a}}));

    // A cannot redeem a token addressed to B.
    let r = exchange(
        s,
        a,
        &w.secret,
        &[
            ("subject_token", &to_b),
            ("subject_token_type", ACCESS_TOKEN),
            ("resource", HOTEL),
        ],
    )
    .await;
    assert_error("a token addressed to another agent", r, "invalid_request");

    // Disabling A, an inner agent of the chain, kills the chained token.
    let (st, body) = s
        .admin(Method::POST, &format!("/agents/{a}/disable"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(s.introspect(&chained).await, json!({"active": false}));
    assert_eq!(s.introspect(&to_b).await, json!({"active": false}));
    let r = exchange(
        s,
        &b,
        &b_secret,
        &[
            ("subject_token", &to_b),
            ("subject_token_type", ACCESS_TOKEN),
            ("resource", HOTEL),
        ],
    )
    .await;
    assert_error("a chain through a disabled agent", r, "invalid_request");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn chains_past_the_depth_limit_are_refused(#[case] backend: Backend) {
    let Some(w) = world(backend, |c| c.max_delegation_depth = 2).await else {
        return;
    };
    let (s, a) = (&w.s, w.agent.as_str());
    let (b, b_secret) = s.agent("agent-b").await;
    let (c, c_secret) = s.agent("agent-c").await;
    let (b_api, c_api) = (agent_resource(s, &b).await, agent_resource(s, &c).await);
    delegate(s, a, &b_api, &["delegate"]).await;
    delegate(s, &b, &c_api, &["delegate"]).await;
    delegate(s, &b, HOTEL, &["bookings.read"]).await;
    delegate(s, &c, HOTEL, &["bookings.read"]).await;

    let user = w.idp.token("user-1", a, json!({}));
    let to_b = exchange_ok(s, (a, &w.secret), &user, &b_api, "delegate").await;
    // Two agents deep is within the limit…
    exchange_ok(s, (&b, &b_secret), &to_b, HOTEL, "bookings.read").await;
    let to_c = exchange_ok(s, (&b, &b_secret), &to_b, &c_api, "delegate").await;
    assert_eq!(
        claims_of(&to_c)["act"],
        json!({"sub": b, "act": {"sub": a}})
    );
    // …three is not.
    let r = exchange(
        s,
        &c,
        &c_secret,
        &[
            ("subject_token", &to_c),
            ("subject_token_type", ACCESS_TOKEN),
            ("resource", HOTEL),
        ],
    )
    .await;
    assert_error("a chain three agents deep", r, "invalid_request");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_actor_token_must_name_the_agent(#[case] backend: Backend) {
    let Some(w) = world(backend, |_| {}).await else {
        return;
    };
    let (s, a) = (&w.s, w.agent.as_str());
    s.resource("api://tools", &["run"], &[]).await;
    let (b, b_secret) = s.agent("bystander").await;
    s.grant_roles(a, "api://tools", &["run"]).await;
    s.grant_roles(&b, "api://tools", &["run"]).await;
    let own = s.token(a, &w.secret, "api://tools/.default").await;
    let foreign = s.token(&b, &b_secret, "api://tools/.default").await;
    let user = w.idp.token("user-1", a, json!({}));
    let secret = w.secret.as_str();
    let with_actor = |actor: String, actor_type: Option<&'static str>| {
        let user = user.clone();
        async move {
            let mut form = vec![
                ("subject_token", user.as_str()),
                ("subject_token_type", ACCESS_TOKEN),
                ("resource", HOTEL),
                ("actor_token", actor.as_str()),
            ];
            if let Some(t) = actor_type {
                form.push(("actor_token_type", t));
            }
            exchange(s, a, secret, &form).await
        }
    };
    let (st, body) = with_actor(own.clone(), Some(ACCESS_TOKEN)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        claims_of(body["access_token"].as_str().expect("token"))["act"],
        json!({"sub": a})
    );
    assert_error(
        "an actor token of another agent",
        with_actor(foreign, Some(ACCESS_TOKEN)).await,
        "invalid_request",
    );
    assert_error(
        "an actor token from elsewhere",
        with_actor(user.clone(), Some(JWT)).await,
        "invalid_request",
    );
    assert_error(
        "actor_token without its type",
        with_actor(own, None).await,
        "invalid_request",
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn group_assignments_hold_along_a_chain(#[case] backend: Backend) {
    let Some(w) = world(backend, |_| {}).await else {
        return;
    };
    let (s, a) = (&w.s, w.agent.as_str());
    let (st, b) = s
        .admin(
            Method::POST,
            "/resources",
            Some(json!({"identifier": "api://spa", "name": "spa", "scopes": ["massage", "sauna"], "user_assignment_required": true})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    for (principal, scope) in [("user-1", "massage"), ("group-gold", "sauna")] {
        let (st, b) = s
            .admin(
                Method::PUT,
                "/user-assignments",
                Some(json!({"principal": principal, "resource": "api://spa", "scopes": [scope]})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
    }
    let (b, b_secret) = s.agent("spa-agent").await;
    let b_api = agent_resource(s, &b).await;
    delegate(s, a, &b_api, &["delegate"]).await;
    delegate(s, a, "api://spa", &["massage", "sauna"]).await;
    delegate(s, &b, "api://spa", &["massage", "sauna"]).await;
    let user = w.idp.token("user-1", a, json!({"groups": ["group-gold"]}));

    // Directly, A gets both: massage as user-1, sauna through group-gold.
    let direct = exchange_ok(s, (a, &w.secret), &user, "api://spa", "massage sauna").await;
    assert_eq!(claims_of(&direct)["scope"], "massage sauna");
    // Through B, the same user and the same request should get the same.
    let to_b = exchange_ok(s, (a, &w.secret), &user, &b_api, "delegate").await;
    let chained = exchange_ok(s, (&b, &b_secret), &to_b, "api://spa", "massage sauna").await;
    assert_eq!(claims_of(&chained)["scope"], "massage sauna");
}
