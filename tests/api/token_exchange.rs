//! Token exchange (RFC 8693, SPEC §3): an agent presents a user's token from a trusted IdP and
//! gets a delegated token — `sub` the user, `act` the agent — with scopes = requested ∩ the
//! delegation grant ∩ the user's assignments; agent-to-agent chains nest `act`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure is the report

use crate::fake_idp::{FakeIdp, now};
use crate::federation::trust_idp;
use crate::support::{Backend, TestServer, claims_of};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};

pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const HOTEL: &str = "api://hotel";

/// A server with `api://hotel` (scopes bookings.read, bookings.write, rooms.read), a fake IdP
/// trusted for subject tokens (accepting the audience `api://agents`), and an agent delegated
/// bookings.read and bookings.write there.
pub struct World {
    pub s: TestServer,
    pub idp: FakeIdp,
    pub agent: String,
    pub secret: String,
}

pub async fn world(
    backend: Backend,
    tweak: impl FnOnce(&mut agentauth::config::Config),
) -> Option<World> {
    let s = TestServer::start_with(backend, tweak).await?;
    s.resource(
        HOTEL,
        &[],
        &["bookings.read", "bookings.write", "rooms.read"],
    )
    .await;
    let idp = FakeIdp::start().await;
    trust_idp(&s, &idp, &["subject_tokens"], &["api://agents"]).await;
    let (agent, secret) = s.agent("travel-agent").await;
    delegate(&s, &agent, HOTEL, &["bookings.read", "bookings.write"]).await;
    Some(World {
        s,
        idp,
        agent,
        secret,
    })
}

pub async fn delegate(s: &TestServer, agent: &str, resource: &str, scopes: &[&str]) {
    let (st, b) = s
        .admin(
            Method::PUT,
            &format!("/agents/{agent}/delegations"),
            Some(json!({"resource": resource, "scopes": scopes})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
}

/// A token-exchange request by (`agent`, `secret`) with these extra parameters.
pub async fn exchange(
    s: &TestServer,
    agent: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", GRANT)];
    form.extend_from_slice(extra);
    s.token_form(&form, Some((agent, secret))).await
}

/// Exchanges `subject` (access_token type) for `target` as audience, asserting success.
pub async fn exchange_ok(
    s: &TestServer,
    agent: (&str, &str),
    subject: &str,
    target: &str,
    scope: &str,
) -> String {
    let (st, b) = exchange(
        s,
        agent.0,
        agent.1,
        &[
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", target),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    b["access_token"].as_str().expect("access_token").to_owned()
}

pub fn scopes_of(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    out.sort();
    out
}

/// A refusal case: what it is, the parameters it sets, the error expected.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

pub fn assert_error(what: &str, (st, b): (StatusCode, Value), error: &str) {
    assert_eq!(st, StatusCode::BAD_REQUEST, "{what}: {b}");
    assert_eq!(b["error"], error, "{what}: {b}");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_user_token_becomes_a_delegated_token(#[case] backend: Backend) {
    let Some(w) = world(backend, |_| {}).await else {
        return;
    };
    let (s, agent) = (&w.s, w.agent.as_str());
    let subject_exp = now() + 120;
    let user = w.idp.token("user-1", agent, json!({"exp": subject_exp}));
    let (st, b) = exchange(
        s,
        agent,
        &w.secret,
        &[
            ("subject_token", &user),
            ("subject_token_type", ACCESS_TOKEN),
            ("resource", HOTEL),
            ("scope", "bookings.read bookings.write rooms.read"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(scopes_of(&b["scope"]), ["bookings.read", "bookings.write"]);
    let expires_in = b["expires_in"].as_i64().expect("expires_in");
    assert!(expires_in > 0 && expires_in <= 120, "{b}");
    let token = b["access_token"].as_str().expect("access_token");
    let c = claims_of(token);
    assert_eq!(c["sub"], "user-1");
    assert_eq!(c["act"], json!({"sub": agent}));
    assert_eq!(c["client_id"], agent);
    assert_eq!(c["aud"], HOTEL);
    assert_eq!(c["iss"], s.base.as_str());
    assert_eq!(scopes_of(&c["scope"]), ["bookings.read", "bookings.write"]);
    assert!(c["exp"].as_i64().expect("exp") <= subject_exp, "{c}");
    let i = s.introspect(token).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["sub"], "user-1");
    assert_eq!(i["act"], json!({"sub": agent}));

    // `jwt` subject type, `audience=`, an audience the issuer accepts, fractional dates,
    // `may_act` naming the agent by every member it has, and a jwt issued type.
    let user = w.idp.token(
        "user-1",
        "api://agents",
        json!({"exp": crate::fake_idp::now_f64() + 300.5,
               "may_act": {"sub": agent, "client_id": agent, "iss": s.base}}),
    );
    let (st, b) = exchange(
        s,
        agent,
        &w.secret,
        &[
            ("subject_token", &user),
            ("subject_token_type", JWT),
            ("audience", HOTEL),
            ("scope", "bookings.read"),
            ("requested_token_type", JWT),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["issued_token_type"], JWT);
    assert_eq!(b["scope"], "bookings.read");

    // aud = api://<agent id>; no scope asks for every delegated one.
    let user = w.idp.token("user-2", &format!("api://{agent}"), json!({}));
    let (st, b) = exchange(
        s,
        agent,
        &w.secret,
        &[
            ("subject_token", &user),
            ("subject_token_type", ACCESS_TOKEN),
            ("resource", HOTEL),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        claims_of(b["access_token"].as_str().expect("token"))["sub"],
        "user-2"
    );
    assert_eq!(scopes_of(&b["scope"]), ["bookings.read", "bookings.write"]);

    // An issuer naming the user in another claim (Entra's `oid`), with inline keys.
    let entra_like = FakeIdp::start().await;
    let (st, b) = crate::federation::trust(
        s,
        json!({"issuer": entra_like.issuer, "jwks": entra_like.jwks(), "subject_claim": "oid", "use": ["subject_tokens"]}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let user = entra_like.token("pairwise-sub", agent, json!({"oid": "oid-of-user-3"}));
    let (st, b) = exchange(
        s,
        agent,
        &w.secret,
        &[
            ("subject_token", &user),
            ("subject_token_type", ACCESS_TOKEN),
            ("resource", HOTEL),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        claims_of(b["access_token"].as_str().expect("token"))["sub"],
        "oid-of-user-3"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn user_assignments_limit_the_scopes(#[case] backend: Backend) {
    let Some(w) = world(backend, |_| {}).await else {
        return;
    };
    let (s, agent) = (&w.s, w.agent.as_str());
    let (st, b) = s
        .admin(
            Method::POST,
            "/resources",
            Some(json!({"identifier": "api://spa", "name": "spa", "scopes": ["massage", "sauna", "pool"], "user_assignment_required": true})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    // `pool` is not delegated: asking for it is no refusal while other scopes remain.
    delegate(s, agent, "api://spa", &["massage", "sauna"]).await;
    for (principal, scopes) in [
        ("user-1", json!(["massage"])),
        ("group-gold", json!(["sauna"])),
    ] {
        let (st, b) = s
            .admin(
                Method::PUT,
                "/user-assignments",
                Some(json!({"principal": principal, "resource": "api://spa", "scopes": scopes})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
    }
    let secret = w.secret.as_str();
    let ask = |user: String| async move {
        exchange(
            s,
            agent,
            secret,
            &[
                ("subject_token", &user),
                ("subject_token_type", ACCESS_TOKEN),
                ("resource", "api://spa"),
                ("scope", "massage sauna pool"),
            ],
        )
        .await
    };
    let (st, b) = ask(w
        .idp
        .token("user-1", agent, json!({"groups": ["group-gold"]})))
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(scopes_of(&b["scope"]), ["massage", "sauna"]);
    let (st, b) = ask(w.idp.token("user-1", agent, json!({}))).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(scopes_of(&b["scope"]), ["massage"]);
    // A user with no assignment: the refusal names that, not the undelegated `pool`.
    let (st, b) = ask(w.idp.token("user-2", agent, json!({}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"], "invalid_scope");
    assert_eq!(
        b["error_description"],
        "user user-2 is not assigned any scope on api://spa"
    );
    // Its audit event names the user, the issuer and what was asked for.
    let refusals = s
        .all_pages(&format!(
            "/audit?agent_id={agent}&action=token.issue&outcome=failure"
        ))
        .await;
    let d = &refusals.last().expect("the refusal's event")["detail"];
    assert_eq!(d["subject"], "user-2", "{d}");
    assert_eq!(d["subject_issuer"], w.idp.issuer.as_str(), "{d}");
    assert_eq!(d["requested_resource"], "api://spa", "{d}");
    assert_eq!(d["requested_scope"], "massage sauna pool", "{d}");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn bad_exchanges_are_refused(#[case] backend: Backend) {
    let Some(w) = world(backend, |_| {}).await else {
        return;
    };
    let (s, agent) = (&w.s, w.agent.as_str());
    let (other, _) = s.agent("other-agent").await;
    let untrusted = FakeIdp::start().await;
    let federated_only = FakeIdp::start().await;
    trust_idp(s, &federated_only, &["federated_credentials"], &[]).await;
    let forger = crate::fake_idp::TestKey::ec(Some("idp-key-1"));
    let dead = FakeIdp::start_with(crate::fake_idp::TestKey::ec(Some("dead"))).await;
    trust_idp(s, &dead, &["subject_tokens"], &[]).await;
    let dead_token = dead.token("user-1", agent, json!({}));
    drop(dead);
    let t = now();
    let ok = |extra: Value| w.idp.token("user-1", agent, extra);
    let grant_cases = [
        (
            "another audience",
            w.idp.token("user-1", "api://someone-else", json!({})),
        ),
        (
            "another agent's id as audience",
            w.idp.token("user-1", &other, json!({})),
        ),
        (
            "may_act excluding the agent",
            ok(json!({"may_act": {"sub": other}})),
        ),
        (
            "may_act naming the agent by one member and another party by the next",
            ok(json!({"may_act": {"sub": other, "client_id": agent}})),
        ),
        (
            "may_act naming the agent at another issuer",
            ok(json!({"may_act": {"sub": agent, "iss": "https://elsewhere.example"}})),
        ),
        (
            "may_act with a member this server cannot check",
            ok(json!({"may_act": {"sub": agent, "email": "bot@example.com"}})),
        ),
        (
            "may_act that is not an object",
            ok(json!({"may_act": agent})),
        ),
        ("expired", ok(json!({"iat": t - 900, "exp": t - 300}))),
        ("not yet valid", ok(json!({"nbf": t + 900}))),
        (
            "untrusted issuer",
            untrusted.token("user-1", agent, json!({})),
        ),
        (
            "issuer trusted only for federated credentials",
            federated_only.token("user-1", agent, json!({})),
        ),
        (
            "forged signature",
            forger.sign(&w.idp.claims("user-1", agent)),
        ),
        (
            "alg none",
            crate::fake_idp::unsigned_jwt(&w.idp.claims("user-1", agent)),
        ),
        ("not a JWT", "not-a-token".to_owned()),
        (
            "HS256 keyed with the IdP's public key",
            w.idp
                .key
                .hs256_with_public_key(&w.idp.claims("user-1", agent)),
        ),
        ("claiming to be this server's", ok(json!({"iss": s.base}))),
        ("no subject", ok(json!({"sub": null}))),
        ("an empty subject", ok(json!({"sub": ""}))),
        ("a blank subject", ok(json!({"sub": "  "}))),
        ("a crit extension (RFC 7515 §4.1.11)", {
            let mut header = w.idp.key.header();
            header["crit"] = json!(["urn:example:ext"]);
            header["urn:example:ext"] = json!(1);
            w.idp
                .key
                .sign_with_header(&header, &w.idp.claims("user-1", agent))
        }),
        ("an issuer whose keys do not answer", dead_token),
    ];
    for (what, subject) in grant_cases {
        let r = exchange(
            s,
            agent,
            &w.secret,
            &[
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("resource", HOTEL),
                ("scope", "bookings.read"),
            ],
        )
        .await;
        assert_error(what, r, "invalid_request");
    }
    let user = ok(json!({}));
    let base = [
        ("subject_token", user.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    let cases: [Case; 6] = [
        (
            "scope outside the grant",
            vec![("resource", HOTEL), ("scope", "rooms.read")],
            "invalid_scope",
        ),
        (
            "scope the resource does not define",
            vec![("resource", HOTEL), ("scope", "spa.massage")],
            "invalid_scope",
        ),
        (
            "unknown resource",
            vec![("resource", "api://nowhere"), ("scope", "x")],
            "invalid_target",
        ),
        ("no target", vec![], "invalid_target"),
        (
            "bad subject_token_type",
            vec![
                ("resource", HOTEL),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:saml2",
                ),
            ],
            "invalid_request",
        ),
        (
            "bad requested_token_type",
            vec![
                ("resource", HOTEL),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
            "invalid_request",
        ),
    ];
    for (what, extra, error) in cases {
        let mut form: Vec<(&str, &str)> = base.to_vec();
        for (k, v) in extra {
            form.retain(|(n, _)| *n != k);
            form.push((k, v));
        }
        assert_error(what, exchange(s, agent, &w.secret, &form).await, error);
    }
    let r = exchange(
        s,
        agent,
        &w.secret,
        &[("subject_token_type", ACCESS_TOKEN), ("resource", HOTEL)],
    )
    .await;
    assert_error("no subject_token", r, "invalid_request");
    // An agent with no delegation on the resource.
    let (plain, plain_secret) = s.agent("undelegated").await;
    let user = w.idp.token("user-1", &plain, json!({}));
    let r = exchange(
        s,
        &plain,
        &plain_secret,
        &[
            ("subject_token", &user),
            ("subject_token_type", ACCESS_TOKEN),
            ("resource", HOTEL),
        ],
    )
    .await;
    assert_error("no delegation grant", r, "invalid_scope");
}
