//! Introspection (RFC 7662) and revocation (RFC 7009), SPEC §6: who may ask, the exact active
//! answer, `{"active": false}` for anything not valid and live now, and revocation that shows
//! at once.

use crate::support::{
    Backend, TestServer, b64url, claims_of, header_of, keys_of, rfc3339_in, sorted,
};
use agentauth::clock::FixedClock;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use std::sync::Arc;

/// A server with `api://hotel` and an agent holding `read` and `write` there; returns the
/// server, the agent and its secret.
async fn hotel(backend: Backend) -> Option<(TestServer, String, String)> {
    let s = TestServer::start(backend).await?;
    s.resource("api://hotel", &["read", "write"], &[]).await;
    let (id, secret) = s.agent("hotel-agent").await;
    s.grant_roles(&id, "api://hotel", &["read", "write"]).await;
    Some((s, id, secret))
}

/// The exact RFC 7662 answer expected for one of this server's client-credentials tokens.
fn active_answer(token: &str) -> Value {
    let c = claims_of(token);
    json!({
        "active": true, "token_type": "Bearer", "scope": "read write",
        "client_id": c["client_id"], "sub": c["sub"], "aud": c["aud"], "iss": c["iss"],
        "exp": c["exp"], "iat": c["iat"], "nbf": c["nbf"], "jti": c["jti"], "roles": c["roles"],
    })
}

/// The whole answer for anything not valid and live (RFC 7662 §2.2).
fn inactive() -> Value {
    json!({"active": false})
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_permitted_caller_gets_the_active_answer(#[case] backend: Backend) {
    let Some((s, id, secret)) = hotel(backend).await else {
        return;
    };
    let token = s.token(&id, &secret, "api://hotel/.default").await;
    let expected = active_answer(&token);
    assert_eq!(expected["client_id"], id.as_str());
    assert_eq!(expected["sub"], id.as_str());
    assert_eq!(expected["aud"], "api://hotel");
    assert_eq!(expected["iss"], s.base.as_str());
    assert_eq!(expected["roles"], json!(["read", "write"]));

    let res = s
        .post_form_raw(
            "/oauth2/introspect",
            &[("token", &token)],
            Some(introspector(&s).await.as_pair()),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.json::<Value>().await.unwrap(), expected);
    // The admin role is enough too (the bootstrap admin).
    let answer = s
        .introspect_as(&s.admin_client_id, &s.admin_secret, &token)
        .await;
    assert_eq!(answer, expected);
    // A token_type_hint is accepted.
    let (id2, secret2) = s.introspector().await;
    let (status, answer) = s
        .post_form(
            "/oauth2/introspect",
            &[("token", &token), ("token_type_hint", "access_token")],
            Some((&id2, &secret2)),
        )
        .await;
    assert_eq!((status, answer), (StatusCode::OK, expected.clone()));
    // A resource server may also authenticate with a bearer token for the admin resource.
    let rs_token = s
        .token(&id2, &secret2, &format!("{}/.default", s.admin_resource()))
        .await;
    let res = s
        .http
        .post(s.url("/oauth2/introspect"))
        .bearer_auth(&rs_token)
        .form(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), expected);
}

struct Caller(String, String);

impl Caller {
    fn as_pair(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

async fn introspector(s: &TestServer) -> Caller {
    let (id, secret) = s.introspector().await;
    Caller(id, secret)
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn callers_without_the_permission_never_see_an_answer(#[case] backend: Backend) {
    let Some((s, id, secret)) = hotel(backend).await else {
        return;
    };
    let token = s.token(&id, &secret, "api://hotel/.default").await;
    // Authenticated, but holding neither introspect nor admin: 403, no answer.
    let (reader, reader_secret) = s.admin_agent(&["reader"]).await;
    for (cid, csecret) in [
        (id.as_str(), secret.as_str()),
        (reader.as_str(), reader_secret.as_str()),
    ] {
        let (status, body) = s
            .post_form(
                "/oauth2/introspect",
                &[("token", &token)],
                Some((cid, csecret)),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"], "access_denied");
        assert!(body.get("active").is_none(), "{body}");
    }
    // Not authenticated: 401.
    let (status, body) = s
        .post_form("/oauth2/introspect", &[("token", &token)], None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(body.get("active").is_none());
    let rs = introspector(&s).await;
    let (status, body) = s
        .post_form(
            "/oauth2/introspect",
            &[("token", &token)],
            Some((&rs.0, "wrong")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.get("active").is_none());
    // A bearer token that is not for the admin resource, or lacks the role.
    for bearer in [
        token.clone(),
        s.token(
            &reader,
            &reader_secret,
            &format!("{}/.default", s.admin_resource()),
        )
        .await,
    ] {
        let res = s
            .http
            .post(s.url("/oauth2/introspect"))
            .bearer_auth(&bearer)
            .form(&[("token", &token)])
            .send()
            .await
            .unwrap();
        // RFC 7662 §2.3 and RFC 6750 §3.1: a token that is not for the admin resource is
        // `invalid_token` (401); one without the role is `insufficient_scope` (403).
        let (status, error) = if bearer == token {
            (401, "invalid_token")
        } else {
            (403, "insufficient_scope")
        };
        assert_eq!(res.status().as_u16(), status);
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("Bearer") && challenge.contains(error),
            "{challenge}"
        );
        let body: Value = res.json().await.unwrap();
        assert!(body.get("active").is_none(), "{body}");
    }
    // Permitted but no token: invalid_request.
    let (status, body) = s
        .post_form("/oauth2/introspect", &[], Some(rs.as_pair()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
}

/// Ways a token can fail to be one of this server's valid tokens.
#[derive(Debug, Clone, Copy)]
enum Bad {
    Garbage,
    ThreeDots,
    /// The real header and claims, signed by another P-256 key under the same `kid`.
    ResignedSameKid,
    /// A claim changed, the original signature kept.
    PayloadModified,
    /// `alg: none`, no signature.
    AlgNone,
    /// A valid token of another agentauth server.
    OtherIssuer,
    /// Our key, a foreign `iss`.
    ResignedForeignIss,
}

fn sign_with_fresh_key(header: &Value, claims: &Value) -> String {
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", b64url(sig.as_ref()))
}

#[rstest]
#[case::garbage(Bad::Garbage)]
#[case::three_dots(Bad::ThreeDots)]
#[case::resigned_same_kid(Bad::ResignedSameKid)]
#[case::payload_modified(Bad::PayloadModified)]
#[case::alg_none(Bad::AlgNone)]
#[case::other_issuer(Bad::OtherIssuer)]
#[case::foreign_iss(Bad::ResignedForeignIss)]
#[tokio::test]
async fn anything_but_a_valid_token_of_ours_is_just_inactive(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] bad: Bad,
) {
    let Some((s, id, secret)) = hotel(backend).await else {
        return;
    };
    let token = s.token(&id, &secret, "api://hotel/.default").await;
    let (header, claims) = (header_of(&token), claims_of(&token));
    let parts: Vec<&str> = token.split('.').collect();
    let candidate = match bad {
        Bad::Garbage => "garbage".to_owned(),
        Bad::ThreeDots => "a.b.c".to_owned(),
        Bad::ResignedSameKid => sign_with_fresh_key(&header, &claims),
        Bad::PayloadModified => {
            let mut c = claims.clone();
            c["roles"] = json!(["read", "write", "admin"]);
            format!(
                "{}.{}.{}",
                parts[0],
                b64url(c.to_string().as_bytes()),
                parts[2]
            )
        }
        Bad::AlgNone => {
            let h = json!({"alg": "none", "typ": "at+jwt", "kid": header["kid"]});
            format!("{}.{}.", b64url(h.to_string().as_bytes()), parts[1])
        }
        Bad::OtherIssuer => {
            let other = TestServer::start(backend).await.unwrap();
            other.resource("api://hotel", &["read"], &[]).await;
            let (oid, osecret) = other.agent("hotel-agent").await;
            other.grant_roles(&oid, "api://hotel", &["read"]).await;
            let foreign = other.token(&oid, &osecret, "api://hotel/.default").await;
            assert_eq!(other.introspect(&foreign).await["active"], true);
            foreign
        }
        Bad::ResignedForeignIss => {
            let mut c = claims.clone();
            c["iss"] = json!("https://evil.example");
            sign_with_fresh_key(&header, &c)
        }
    };
    assert_eq!(s.introspect(&candidate).await, inactive());
    // The genuine token stays active.
    assert_eq!(s.introspect(&token).await, active_answer(&token));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_expired_token_is_inactive(#[case] backend: Backend) {
    let clock = FixedClock::at(time::OffsetDateTime::now_utc());
    let Some(s) = TestServer::start_with_clock(backend, Arc::new(clock.clone())).await else {
        return;
    };
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s
        .agent_from(json!({"name": "brief", "sponsors": ["alice"], "token_ttl_seconds": 60}))
        .await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let token = s.token(&id, &secret, "api://hotel/.default").await;
    let rs = introspector(&s).await;
    assert_eq!(s.introspect_as(&rs.0, &rs.1, &token).await["active"], true);
    clock.advance(time::Duration::seconds(61));
    assert_eq!(s.introspect_as(&rs.0, &rs.1, &token).await, inactive());
}

/// Disabling, deleting, expiring and `revoke-tokens` end the agent's tokens at once; undoing
/// the state does not bring them back, but a new token is live.
#[rstest]
#[case::disable("disable", Some("enable"))]
#[case::delete("delete", Some("restore"))]
#[case::revoke_tokens("revoke-tokens", None)]
#[case::expire("expire", Some("unexpire"))]
#[tokio::test]
async fn the_agents_tokens_die_at_once(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] action: &str,
    #[case] undo: Option<&str>,
) {
    let Some((s, id, secret)) = hotel(backend).await else {
        return;
    };
    let (bystander, bystander_secret) = s.agent("bystander").await;
    s.grant_roles(&bystander, "api://hotel", &["read"]).await;
    let theirs = s
        .token(&bystander, &bystander_secret, "api://hotel/.default")
        .await;
    let old = s.token(&id, &secret, "api://hotel/.default").await;
    let rs = introspector(&s).await;
    assert_eq!(
        s.introspect_as(&rs.0, &rs.1, &old).await,
        active_answer(&old)
    );

    let run = |what: &str| {
        let (s, id) = (&s, id.clone());
        let what = what.to_owned();
        async move {
            let (status, body) = match what.as_str() {
                "delete" => {
                    s.admin(Method::DELETE, &format!("/agents/{id}"), None)
                        .await
                }
                "expire" => {
                    let past = json!({"expires_at": rfc3339_in(-60).0});
                    s.admin(Method::PATCH, &format!("/agents/{id}"), Some(past))
                        .await
                }
                "unexpire" => {
                    let future = json!({"expires_at": rfc3339_in(86400).0});
                    s.admin(Method::PATCH, &format!("/agents/{id}"), Some(future))
                        .await
                }
                other => {
                    s.admin(Method::POST, &format!("/agents/{id}/{other}"), None)
                        .await
                }
            };
            assert!(status.is_success(), "{what}: {status} {body}");
        }
    };
    run(action).await;
    assert_eq!(s.introspect_as(&rs.0, &rs.1, &old).await, inactive());
    assert_eq!(s.introspect_as(&rs.0, &rs.1, &theirs).await["active"], true);
    if let Some(undo) = undo {
        run(undo).await;
        assert_eq!(s.get_agent(&id).await["status"], "active");
        if action != "expire" {
            // Revoked by the disable or delete: re-enabling does not resurrect it.
            assert_eq!(s.introspect_as(&rs.0, &rs.1, &old).await, inactive());
        }
    }
    let new = s.token(&id, &secret, "api://hotel/.default").await;
    assert_eq!(
        s.introspect_as(&rs.0, &rs.1, &new).await,
        active_answer(&new)
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_agent_revokes_its_own_tokens_only(#[case] backend: Backend) {
    let Some((s, id, secret)) = hotel(backend).await else {
        return;
    };
    let (other, other_secret) = s.agent("other-agent").await;
    s.grant_roles(&other, "api://hotel", &["read"]).await;
    let mine = s.token(&id, &secret, "api://hotel/.default").await;
    let also_mine = s.token(&id, &secret, "api://hotel/read").await;
    let theirs = s.token(&other, &other_secret, "api://hotel/.default").await;
    let rs = introspector(&s).await;

    let res = s
        .post_form_raw(
            "/oauth2/revoke",
            &[("token", &mine), ("token_type_hint", "access_token")],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(s.introspect_as(&rs.0, &rs.1, &mine).await, inactive());
    assert_eq!(
        s.introspect_as(&rs.0, &rs.1, &also_mine).await["active"],
        true
    );
    // Revoking again is fine.
    let (status, _) = s
        .post_form("/oauth2/revoke", &[("token", &mine)], Some((&id, &secret)))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Another agent's token: refused, and it stays active.
    let (status, body) = s
        .post_form(
            "/oauth2/revoke",
            &[("token", &theirs)],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client");
    assert_eq!(s.introspect_as(&rs.0, &rs.1, &theirs).await["active"], true);

    // RFC 7009 §2.2: an unknown token is not an error.
    for unknown in ["no-such-token", "a.b.c"] {
        let (status, _) = s
            .post_form(
                "/oauth2/revoke",
                &[("token", unknown)],
                Some((&id, &secret)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{unknown}");
    }
    // client_secret_post works here too.
    let (status, _) = s
        .post_form(
            "/oauth2/revoke",
            &[
                ("token", &also_mine),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.introspect_as(&rs.0, &rs.1, &also_mine).await, inactive());

    // Unauthenticated, wrongly authenticated, or without a token.
    let (status, body) = s
        .post_form("/oauth2/revoke", &[("token", &theirs)], None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, _) = s
        .post_form(
            "/oauth2/revoke",
            &[("token", &theirs)],
            Some((&other, "wrong")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = s
        .post_form("/oauth2/revoke", &[], Some((&id, &secret)))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    assert_eq!(s.introspect_as(&rs.0, &rs.1, &theirs).await["active"], true);
    assert_eq!(
        keys_of(&active_answer(&theirs)),
        sorted(&[
            "active",
            "aud",
            "client_id",
            "exp",
            "iat",
            "iss",
            "jti",
            "nbf",
            "roles",
            "scope",
            "sub",
            "token_type",
        ])
    );
}
