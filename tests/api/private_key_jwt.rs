//! private_key_jwt (RFC 7523 §2.2, SPEC §5): client assertions signed by a key registered on the
//! agent — a JWK, a certificate, or a `jwks_uri` — and every way such an assertion is refused.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure is the report

use crate::fake_idp::{
    FakeIdp, TestKey, add_credential, assert_invalid_client, assert_refused_for, assertion_for,
    bare_agent, cc_with_assertion, now, now_f64, register_certificate, register_jwk, thumbprints,
    unsigned_jwt,
};
use crate::support::{Backend, TestServer, claims_of};
use jsonwebtoken::Algorithm;
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

const SCOPE: &str = "api://hotel/.default";

/// A server with `api://hotel` and an agent holding `bookings.read` there (no credential yet).
async fn setup(s: &TestServer, name: &str) -> String {
    s.resource("api://hotel", &["bookings.read"], &[]).await;
    let id = bare_agent(s, name).await;
    s.grant_roles(&id, "api://hotel", &["bookings.read"]).await;
    id
}

fn assert_token_for(agent: &str, status: StatusCode, body: &serde_json::Value) {
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = claims_of(body["access_token"].as_str().expect("access_token"));
    assert_eq!(claims["sub"], agent);
    assert_eq!(claims["client_id"], agent);
    assert_eq!(claims["roles"], json!(["bookings.read"]));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_assertion_authenticates_with_or_without_client_id(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let id = setup(&s, "pkj-agent").await;
    let key = TestKey::ec(Some("agent-key-1"));
    register_jwk(&s, &id, key.jwk()).await;

    let a = key.sign(&assertion_for(&s, &id, json!({})));
    let (st, body) = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_token_for(&id, st, &body);

    // Authlib sends no client_id: the client is found by `sub`.
    let a = key.sign(&assertion_for(&s, &id, json!({})));
    let (st, body) = cc_with_assertion(&s, None, &a, SCOPE).await;
    assert_token_for(&id, st, &body);

    // `aud` as an array naming the issuer; exp 59 minutes ahead is within the limit.
    let a = key.sign(&assertion_for(
        &s,
        &id,
        json!({"aud": [s.base.clone()], "exp": now() + 59 * 60}),
    ));
    let (st, body) = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_token_for(&id, st, &body);

    // The Entra route's token endpoint is an accepted audience too.
    let entra = format!("{}/{}/oauth2/v2.0/token", s.base, s.tenant_id());
    let a = key.sign(&assertion_for(&s, &id, json!({"aud": entra})));
    let (st, body) = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_token_for(&id, st, &body);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn fractional_dates_and_absent_kids_are_accepted(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let id = setup(&s, "pkj-fractional").await;
    // A key registered without kid, and one with: an assertion without kid tries each.
    let plain = TestKey::ec(None);
    let named = TestKey::ec(Some("named"));
    register_jwk(&s, &id, named.jwk()).await;
    register_jwk(&s, &id, plain.jwk()).await;

    // azure-identity sends float NumericDates.
    let t = now_f64();
    let fractional = json!({"iat": t, "nbf": t, "exp": t + 300.25});
    let a = plain.sign(&assertion_for(&s, &id, fractional.clone()));
    let (st, body) = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_token_for(&id, st, &body);

    // The named key, but the header carries no kid.
    let header = json!({"alg": "ES256", "typ": "JWT"});
    let a = named.sign_with_header(&header, &assertion_for(&s, &id, fractional));
    let (st, body) = cc_with_assertion(&s, None, &a, SCOPE).await;
    assert_token_for(&id, st, &body);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn rsa_keys_sign_with_rs256_and_ps256(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let id = setup(&s, "pkj-rsa").await;
    for (alg, kid) in [(Algorithm::RS256, "rsa-1"), (Algorithm::PS256, "rsa-2")] {
        let key = TestKey::rsa(Some(kid), alg);
        register_jwk(&s, &id, key.jwk()).await;
        let a = key.sign(&assertion_for(&s, &id, json!({})));
        let (st, body) = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
        assert_token_for(&id, st, &body);
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn certificates_are_picked_by_thumbprint(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let id = setup(&s, "pkj-cert").await;
    let rsa = TestKey::rsa(None, Algorithm::RS256);
    let (pem, der) = rsa.certificate();
    register_certificate(&s, &id, &pem).await;
    let (x5t, _) = thumbprints(&der);

    // azure-identity's CertificateCredential: RS256, x5t, no kid.
    let a = rsa.sign_with_header(
        &json!({"alg": "RS256", "typ": "JWT", "x5t": x5t}),
        &assertion_for(&s, &id, json!({})),
    );
    let (st, body) = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_token_for(&id, st, &body);

    // MSAL: PS256 with x5t#S256, same certificate.
    let ps = TestKey::rsa(None, Algorithm::PS256);
    let (ps_pem, ps_der) = ps.certificate();
    register_certificate(&s, &id, &ps_pem).await;
    let (_, ps_s256) = thumbprints(&ps_der);
    let a = ps.sign_with_header(
        &json!({"alg": "PS256", "typ": "JWT", "x5t#S256": ps_s256}),
        &assertion_for(&s, &id, json!({})),
    );
    let (st, body) = cc_with_assertion(&s, None, &a, SCOPE).await;
    assert_token_for(&id, st, &body);

    // An EC certificate with ES256 and no hint at all.
    let ec = TestKey::ec(None);
    let (ec_pem, _) = ec.certificate();
    register_certificate(&s, &id, &ec_pem).await;
    let a = ec.sign(&assertion_for(&s, &id, json!({})));
    let (st, body) = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_token_for(&id, st, &body);

    // The right key, but a thumbprint naming another certificate: the hint picks the key.
    let a = rsa.sign_with_header(
        &json!({"alg": "RS256", "typ": "JWT", "x5t#S256": ps_s256}),
        &assertion_for(&s, &id, json!({})),
    );
    let r = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_refused_for(
        &s,
        &id,
        "x5t#S256 of another certificate",
        r,
        "assertion_signature",
    )
    .await;
    let (unknown, _) = thumbprints(b"no such certificate");
    let a = rsa.sign_with_header(
        &json!({"alg": "RS256", "typ": "JWT", "x5t": unknown}),
        &assertion_for(&s, &id, json!({})),
    );
    let r = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_refused_for(
        &s,
        &id,
        "x5t of no registered certificate",
        r,
        "assertion_signature",
    )
    .await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn bad_claims_are_refused(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let id = setup(&s, "pkj-claims").await;
    let key = TestKey::ec(Some("k1"));
    register_jwk(&s, &id, key.jwk()).await;

    // Replay: the same assertion twice.
    let a = key.sign(&assertion_for(&s, &id, json!({})));
    let (st, body) = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_token_for(&id, st, &body);
    let r = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_refused_for(&s, &id, "replayed jti", r, "assertion_replayed").await;
    // The same jti in a new assertion is a replay too.
    let jti = claims_of(&a)["jti"].clone();
    let again = key.sign(&assertion_for(&s, &id, json!({"jti": jti})));
    let (st, body) = cc_with_assertion(&s, None, &again, SCOPE).await;
    assert_invalid_client("reused jti", st, &body);
    let r = cc_with_assertion(&s, Some(&id), &again, SCOPE).await;
    assert_refused_for(&s, &id, "reused jti", r, "assertion_replayed").await;

    let t = now();
    let cases = [
        ("missing jti", json!({"jti": null}), "assertion_jti"),
        (
            "expired",
            json!({"iat": t - 900, "exp": t - 300}),
            "assertion_time",
        ),
        ("no exp", json!({"exp": null}), "assertion_time"),
        (
            "exp more than 60 minutes ahead",
            json!({"exp": t + 3600 + 120}),
            "assertion_lifetime",
        ),
        (
            "aud of another server",
            json!({"aud": "https://other.example/oauth2/token"}),
            "assertion_audience",
        ),
        (
            "aud of a resource",
            json!({"aud": "api://hotel"}),
            "assertion_audience",
        ),
        (
            "nbf in the future",
            json!({"nbf": t + 600}),
            "assertion_time",
        ),
        (
            "iat in the future",
            json!({"iat": t + 600}),
            "assertion_time",
        ),
    ];
    for (what, extra, reason) in cases {
        let a = key.sign(&assertion_for(&s, &id, extra));
        let r = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
        assert_refused_for(&s, &id, what, r, reason).await;
    }
}

/// A self-signed certificate for a 1024-bit RSA key, valid until 2126 (`openssl req -x509
/// -newkey rsa:1024 -days 36500`): aws-lc will not make a key that short.
const SHORT_RSA_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----\nMIICBjCCAW+gAwIBAgIUKdclb2/WHPK+ZpvC9Po2lAgK+7swDQYJKoZIhvcNAQEL\nBQAwFDESMBAGA1UEAwwJc2hvcnQtcnNhMCAXDTI2MTIwMTAxMzAzNFoYDzIxMjYx\nMTA3MDEzMDM0WjAUMRIwEAYDVQQDDAlzaG9ydC1yc2EwgZ8wDQYJKoZIhvcNAQEB\nBQADgY0AMIGJAoGBAL/cbAxV/axIRQmfwrOGg9CCyw3Z3l7DhN6JmULrMifK5rlI\nV91n0h0bPPTmKvebKF7q7oIcZdkLfizwIYLapmOw8TOBWIdkE7hEgmgrji4F2A0r\nS4WFAz0geuE1oHSUzz0d40aqHEbnYYFpt5Jn9zspI/XTCHY5TQwesVyp3URhAgMB\nAAGjUzBRMB0GA1UdDgQWBBTEs516w4w9WVoqPVconMMRrZPwWDAfBgNVHSMEGDAW\ngBTEs516w4w9WVoqPVconMMRrZPwWDAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3\nDQEBCwUAA4GBAGPJHVCWTSwHvqDj2c8jzszjMJZFRZfh7/4Zh3bhomNF3wR7/b/s\nncocoMbk7ZyH6SOhvgrBtx6MMFQQI9DkRQn3UpVxri8U/zexshklDQxOEd8xSy6v\nRkNcP7QMDrM53ikgEyCh+ae7XlXYm0WwNu3KhnksRl3MQKUiaTW3MjnF\n-----END CERTIFICATE-----";

/// A credential that repeats one the agent has (a `kid`, a federated issuer/subject/audience)
/// is a conflict, and an RSA key too short to ever verify is refused.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn repeated_or_unusable_keys_are_refused(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let id = setup(&s, "pkj-repeats").await;
    let key = TestKey::ec(Some("k1"));
    register_jwk(&s, &id, key.jwk()).await;
    let same_kid = TestKey::ec(Some("k1"));
    let (st, body) = add_credential(
        &s,
        &id,
        json!({"type": "public_key", "jwk": same_kid.jwk()}),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    let federated = json!({"type": "federated", "issuer": "https://issuer.example", "subject": "wl-1", "audience": "api://AzureADTokenExchange"});
    let (st, body) = add_credential(&s, &id, federated.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let (st, body) = add_credential(&s, &id, federated).await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    // A 1024-bit modulus (RFC 7518 §3.3 asks for 2048).
    let mut n = vec![0xc5u8; 128];
    n[127] = 0x01;
    let short_rsa =
        json!({"kty": "RSA", "kid": "short", "n": crate::fake_idp::b64(&n), "e": "AQAB"});
    let (st, body) = add_credential(&s, &id, json!({"type": "public_key", "jwk": short_rsa})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    let (st, body) = add_credential(
        &s,
        &id,
        json!({"type": "public_key", "certificate": SHORT_RSA_CERTIFICATE}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    let (_, listed) = s
        .admin(Method::GET, &format!("/agents/{id}/credentials"), None)
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
}

/// On the Entra route an assertion may be presented again until it expires (MSAL reuses one),
/// but not one already spent on `/oauth2/token`; one used on the Entra route is spent there.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_entra_route_reuses_its_own_assertions_only(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let id = setup(&s, "pkj-routes").await;
    let key = TestKey::ec(Some("k1"));
    register_jwk(&s, &id, key.jwk()).await;
    let entra = format!("/{}/oauth2/v2.0/token", s.tenant_id());
    let on_entra = |assertion: String| {
        let (s, entra) = (&s, entra.clone());
        async move {
            s.post_form(
                &entra,
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", SCOPE),
                    ("client_assertion_type", crate::fake_idp::ASSERTION_TYPE),
                    ("client_assertion", &assertion),
                ],
                None,
            )
            .await
        }
    };

    // Spent on the RFC route: refused on the Entra route.
    let spent = key.sign(&assertion_for(&s, &id, json!({})));
    let (st, body) = cc_with_assertion(&s, Some(&id), &spent, SCOPE).await;
    assert_token_for(&id, st, &body);
    let (st, body) = on_entra(spent).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");

    // Used on the Entra route: again there, not on the RFC route.
    let reused = key.sign(&assertion_for(&s, &id, json!({})));
    for _ in 0..2 {
        let (st, body) = on_entra(reused.clone()).await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }
    let r = cc_with_assertion(&s, Some(&id), &reused, SCOPE).await;
    assert_refused_for(&s, &id, "used on the Entra route", r, "assertion_replayed").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn bad_signatures_and_foreign_subjects_are_refused(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let id = setup(&s, "pkj-sig").await;
    let key = TestKey::ec(Some("k1"));
    register_jwk(&s, &id, key.jwk()).await;
    let other_id = setup_other(&s).await;
    let other_key = TestKey::ec(Some("other-key"));
    register_jwk(&s, &other_id, other_key.jwk()).await;

    let claims = || assertion_for(&s, &id, json!({}));
    let stranger = TestKey::ec(Some("k1"));
    let unknown = TestKey::ec(Some("never-registered"));
    let cases = [
        ("alg none", unsigned_jwt(&claims()), "assertion_alg"),
        (
            "HS256 keyed with the public key",
            key.hs256_with_public_key(&claims()),
            "assertion_alg",
        ),
        (
            "a crit extension the server does not understand (RFC 7515 §4.1.11)",
            key.sign_with_header(
                &json!({"alg": "ES256", "kid": "k1", "crit": ["urn:example:ext"], "urn:example:ext": 1}),
                &claims(),
            ),
            "assertion_alg",
        ),
        (
            "b64: false under crit (RFC 7797)",
            key.sign_with_header(
                &json!({"alg": "ES256", "kid": "k1", "crit": ["b64"], "b64": false}),
                &claims(),
            ),
            "assertion_alg",
        ),
        (
            "unknown key and kid",
            unknown.sign(&claims()),
            "assertion_signature",
        ),
        (
            "wrong key under a registered kid",
            stranger.sign(&claims()),
            "assertion_signature",
        ),
        (
            "signature of another agent's key",
            other_key.sign(&claims()),
            "assertion_signature",
        ),
        (
            "iss and sub name another agent",
            other_key.sign(&assertion_for(&s, &other_id, json!({}))),
            "assertion_issuer",
        ),
        (
            "sub names another agent",
            key.sign(&assertion_for(&s, &id, json!({"sub": other_id}))),
            "assertion_subject",
        ),
    ];
    for (what, a, reason) in cases {
        let r = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
        assert_refused_for(&s, &id, what, r, reason).await;
    }
    // A tampered payload under a valid signature.
    let good = key.sign(&claims());
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = crate::fake_idp::b64(
        assertion_for(&s, &id, json!({"exp": now() + 3000}))
            .to_string()
            .as_bytes(),
    );
    let r = cc_with_assertion(&s, Some(&id), &parts.join("."), SCOPE).await;
    assert_refused_for(&s, &id, "tampered payload", r, "assertion_signature").await;
}

async fn setup_other(s: &TestServer) -> String {
    let id = bare_agent(s, "pkj-other").await;
    s.grant_roles(&id, "api://hotel", &["bookings.read"]).await;
    id
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_jwks_uri_credential_is_fetched_once_and_refetched_for_a_new_kid(
    #[case] backend: Backend,
) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let id = setup(&s, "pkj-jwks-uri").await;
    // The agent's keys live at its own JWKS endpoint (the fake IdP stands in for it).
    let host = FakeIdp::start_with(TestKey::ec(Some("uri-key-1"))).await;
    let (st, b) = crate::fake_idp::add_credential(
        &s,
        &id,
        json!({"type": "public_key", "jwks_uri": host.jwks_uri()}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["jwks_uri"], host.jwks_uri().as_str());
    assert_eq!(host.jwks_requests(), 0, "registering does not fetch");

    let a = host.key.sign(&assertion_for(&s, &id, json!({})));
    let (st, body) = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_token_for(&id, st, &body);
    assert_eq!(host.jwks_requests(), 1);

    // Steady state: the cached set answers.
    for _ in 0..3 {
        let a = host.key.sign(&assertion_for(&s, &id, json!({})));
        let (st, body) = cc_with_assertion(&s, None, &a, SCOPE).await;
        assert_token_for(&id, st, &body);
    }
    assert_eq!(
        host.jwks_requests(),
        1,
        "a cached key set is not fetched again"
    );

    // Rotation: a new key appears under a new kid. The server refetches on an unknown kid at
    // most once per 30 s (federation::REFETCH_INTERVAL), so let that interval pass first.
    let next = TestKey::ec(Some("uri-key-2"));
    host.publish(next.jwk());
    tokio::time::sleep(std::time::Duration::from_secs(31)).await;
    let a = next.sign(&assertion_for(&s, &id, json!({})));
    let (st, body) = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_token_for(&id, st, &body);
    assert_eq!(host.jwks_requests(), 2, "an unknown kid refetches the set");
    for k in [&next, &host.key] {
        let a = k.sign(&assertion_for(&s, &id, json!({})));
        let (st, body) = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
        assert_token_for(&id, st, &body);
    }
    assert_eq!(
        host.jwks_requests(),
        2,
        "known kids are served from the cache"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn removed_expired_or_unreachable_keys_and_disabled_agents_are_refused(
    #[case] backend: Backend,
) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let id = setup(&s, "pkj-gone").await;
    let key = TestKey::ec(Some("removed"));
    let cid = register_jwk(&s, &id, key.jwk()).await["id"]
        .as_str()
        .expect("credential id")
        .to_owned();
    let (st, _) = s
        .admin(
            Method::DELETE,
            &format!("/agents/{id}/credentials/{cid}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let a = key.sign(&assertion_for(&s, &id, json!({})));
    let r = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_refused_for(&s, &id, "a removed key", r, "assertion_signature").await;

    // A key whose credential expires in two seconds works until then, not after.
    let expiring = TestKey::ec(Some("expiring"));
    let until = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let (st, b) = add_credential(
        &s,
        &id,
        json!({"type": "public_key", "jwk": expiring.jwk(), "expires_at": until.format(&Rfc3339).expect("RFC 3339")}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let a = expiring.sign(&assertion_for(&s, &id, json!({})));
    let (st, body) = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_token_for(&id, st, &body);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let a = expiring.sign(&assertion_for(&s, &id, json!({})));
    let r = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_refused_for(&s, &id, "an expired credential", r, "assertion_signature").await;

    // A jwks_uri that does not answer refuses, it does not fail.
    let dead = FakeIdp::start().await;
    let dead_uri = dead.jwks_uri();
    drop(dead);
    let (st, b) =
        add_credential(&s, &id, json!({"type": "public_key", "jwks_uri": dead_uri})).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let a = TestKey::ec(Some("dead")).sign(&assertion_for(&s, &id, json!({})));
    let r = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_refused_for(&s, &id, "an unreachable jwks_uri", r, "assertion_signature").await;

    // A disabled agent's good assertion is refused.
    let live = TestKey::ec(Some("live"));
    register_jwk(&s, &id, live.jwk()).await;
    let (st, b) = s
        .admin(Method::POST, &format!("/agents/{id}/disable"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let a = live.sign(&assertion_for(&s, &id, json!({})));
    let r = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
    assert_refused_for(&s, &id, "a disabled agent", r, "agent_not_active").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_certificate_outside_its_validity_is_refused(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let id = setup(&s, "pkj-old-cert").await;
    for (what, from, until) in [
        ("expired in 2021", (2020, 1, 1), (2021, 1, 1)),
        ("valid from 2090", (2090, 1, 1), (2091, 1, 1)),
    ] {
        let key = TestKey::ec(None);
        let (pem, _) = key.certificate_valid(Some((
            rcgen::date_time_ymd(from.0, from.1, from.2),
            rcgen::date_time_ymd(until.0, until.1, until.2),
        )));
        // Refused at registration (RFC 9457, naming the field) …
        let (st, body) =
            add_credential(&s, &id, json!({"type": "public_key", "certificate": pem})).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(body["field"], "certificate", "{what}: {body}");
        // … so an assertion signed by its key cannot authenticate.
        let a = key.sign(&assertion_for(&s, &id, json!({})));
        let (st, body) = cc_with_assertion(&s, Some(&id), &a, SCOPE).await;
        assert_invalid_client(what, st, &body);
    }
    // A certificate valid now bounds the credential by its notAfter.
    let key = TestKey::ec(None);
    let (pem, _) = key.certificate_valid(Some((
        rcgen::date_time_ymd(2020, 1, 1),
        rcgen::date_time_ymd(2099, 1, 1),
    )));
    let created = register_certificate(&s, &id, &pem).await;
    assert_eq!(created["expires_at"], "2099-01-01T00:00:00Z");
}

/// An expired credential repeats nothing: the same federated credential may be added again
/// once the old one has expired.
#[tokio::test]
async fn an_expired_credential_does_not_block_its_successor() {
    let clock = agentauth::clock::FixedClock::at(time::OffsetDateTime::now_utc());
    let shared: agentauth::clock::SharedClock = std::sync::Arc::new(clock.clone());
    let Some(s) = TestServer::start_with_clock(Backend::Sqlite, shared).await else {
        return;
    };
    let id = setup(&s, "pkj-successor").await;
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&Rfc3339)
        .unwrap();
    let federated = |expires_at: Option<&str>| {
        let mut body = json!({"type": "federated", "issuer": "https://issuer.example", "subject": "wl-1", "audience": "api://AzureADTokenExchange"});
        if let Some(t) = expires_at {
            body["expires_at"] = json!(t);
        }
        body
    };
    let (st, body) = add_credential(&s, &id, federated(Some(&soon))).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let (st, body) = add_credential(&s, &id, federated(None)).await;
    assert_eq!(st, StatusCode::CONFLICT, "while the first is live: {body}");
    clock.advance(time::Duration::hours(2));
    let (st, body) = add_credential(&s, &id, federated(None)).await;
    assert_eq!(st, StatusCode::CREATED, "once it has expired: {body}");
}
