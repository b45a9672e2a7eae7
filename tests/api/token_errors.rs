//! Bad requests to `POST /oauth2/token` (SPEC §2, §3, §5; RFC 6749 §5.2): each answers the
//! exact status and `error`, as JSON, never cached.

use crate::support::{Backend, TestServer};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};

const FORM: &str = "application/x-www-form-urlencoded";
const CC: &str = "grant_type=client_credentials&scope=api://hotel/.default";

/// How a table row authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    None,
    Basic,
    BasicWrongSecret,
    BasicUnknownClient,
    /// `Authorization: Basic` whose value is not base64 of `id:secret`.
    BasicGarbage,
    /// `Authorization: Bearer`, a scheme the token endpoint does not take.
    Bearer,
}

/// A server with `api://hotel`, an agent holding `read` there and a second agent:
/// returns (server, id, secret, other id).
async fn hotel(backend: Backend) -> Option<(TestServer, String, String, String)> {
    let s = TestServer::start(backend).await?;
    s.resource("api://hotel", &["read"], &[]).await;
    let (id, secret) = s.agent("booking-agent").await;
    s.grant_roles(&id, "api://hotel", &["read"]).await;
    let (other, _) = s.agent("other-agent").await;
    Some((s, id, secret, other))
}

const UNKNOWN: &str = "0190b2a4-0000-7000-8000-000000000000";

#[rstest]
#[case::unknown_client_basic(Auth::BasicUnknownClient, FORM, CC, 401, "invalid_client")]
#[case::wrong_secret_basic(Auth::BasicWrongSecret, FORM, CC, 401, "invalid_client")]
#[case::garbage_basic(Auth::BasicGarbage, FORM, CC, 401, "invalid_client")]
#[case::unknown_client_post(
    Auth::None,
    FORM,
    "grant_type=client_credentials&scope=api://hotel/.default&client_id={unknown}&client_secret=whatever-it-is",
    401,
    "invalid_client"
)]
#[case::wrong_secret_post(
    Auth::None,
    FORM,
    "grant_type=client_credentials&scope=api://hotel/.default&client_id={id}&client_secret=wrong-secret",
    401,
    "invalid_client"
)]
#[case::no_credentials(Auth::None, FORM, CC, 401, "invalid_client")]
#[case::bearer_instead_of_client_credentials(Auth::Bearer, FORM, CC, 401, "invalid_client")]
#[case::client_id_alone(
    Auth::None,
    FORM,
    "grant_type=client_credentials&scope=api://hotel/.default&client_id={id}",
    401,
    "invalid_client"
)]
#[case::duplicate_grant_type(
    Auth::Basic,
    FORM,
    "grant_type=client_credentials&grant_type=client_credentials&scope=api://hotel/.default",
    400,
    "invalid_request"
)]
#[case::duplicate_scope(
    Auth::Basic,
    FORM,
    "grant_type=client_credentials&scope=api://hotel/.default&scope=api://hotel/read",
    400,
    "invalid_request"
)]
#[case::basic_and_body_secret(
    Auth::Basic,
    FORM,
    "grant_type=client_credentials&scope=api://hotel/.default&client_secret={secret}",
    400,
    "invalid_request"
)]
#[case::basic_and_assertion(
    Auth::Basic,
    FORM,
    "grant_type=client_credentials&scope=api://hotel/.default&client_assertion=a.b.c&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    400,
    "invalid_request"
)]
#[case::body_secret_and_assertion(
    Auth::None,
    FORM,
    "grant_type=client_credentials&scope=api://hotel/.default&client_id={id}&client_secret={secret}&client_assertion=a.b.c&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    400,
    "invalid_request"
)]
#[case::client_id_differs_from_basic(
    Auth::Basic,
    FORM,
    "grant_type=client_credentials&scope=api://hotel/.default&client_id={other}",
    400,
    "invalid_request"
)]
#[case::secret_without_client_id(
    Auth::None,
    FORM,
    "grant_type=client_credentials&scope=api://hotel/.default&client_secret={secret}",
    400,
    "invalid_request"
)]
#[case::wrong_assertion_type(
    Auth::None,
    FORM,
    "grant_type=client_credentials&scope=api://hotel/.default&client_id={id}&client_assertion=a.b.c&client_assertion_type=urn:example:other",
    400,
    "invalid_request"
)]
#[case::json_body(
    Auth::Basic,
    "application/json",
    r#"{"grant_type":"client_credentials","scope":"api://hotel/.default"}"#,
    400,
    "invalid_request"
)]
#[case::text_body(Auth::Basic, "text/plain", CC, 400, "invalid_request")]
#[case::multipart_body(
    Auth::Basic,
    "multipart/form-data; boundary=x",
    "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--x--\r\n",
    400,
    "invalid_request"
)]
#[case::unknown_grant_type(
    Auth::Basic,
    FORM,
    "grant_type=password&username=u&password=p",
    400,
    "unsupported_grant_type"
)]
#[case::authorization_code(
    Auth::Basic,
    FORM,
    "grant_type=authorization_code&code=x&redirect_uri=https://a.example/cb",
    400,
    "unsupported_grant_type"
)]
#[case::refresh_token(
    Auth::Basic,
    FORM,
    "grant_type=refresh_token&refresh_token=x",
    400,
    "unsupported_grant_type"
)]
#[case::missing_grant_type(
    Auth::Basic,
    FORM,
    "scope=api://hotel/.default",
    400,
    "invalid_request"
)]
#[case::empty_grant_type(
    Auth::Basic,
    FORM,
    "grant_type=&scope=api://hotel/.default",
    400,
    "invalid_request"
)]
#[case::empty_body(Auth::Basic, FORM, "", 400, "invalid_request")]
#[case::malformed_escape_alone(Auth::Basic, FORM, "%zz", 400, "invalid_request")]
#[case::malformed_escape_in_value(
    Auth::Basic,
    FORM,
    "grant_type=client_%zzcredentials&scope=api://hotel/.default",
    400,
    "unsupported_grant_type"
)]
#[case::invalid_utf8(
    Auth::Basic,
    FORM,
    "grant_type=%ff%fe&scope=api://hotel/.default",
    400,
    "unsupported_grant_type"
)]
#[tokio::test]
async fn bad_token_requests_are_refused(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] auth: Auth,
    #[case] content_type: &str,
    #[case] body: &str,
    #[case] status: u16,
    #[case] error: &str,
) {
    let Some((s, id, secret, other)) = hotel(backend).await else {
        return;
    };
    let body = body
        .replace("{id}", &id)
        .replace("{secret}", &secret)
        .replace("{other}", &other)
        .replace("{unknown}", UNKNOWN);
    let mut req = s
        .http
        .post(s.url("/oauth2/token"))
        .header("content-type", content_type)
        .body(body);
    req = match auth {
        Auth::None => req,
        Auth::Basic => req.basic_auth(&id, Some(&secret)),
        Auth::BasicWrongSecret => req.basic_auth(&id, Some("wrong-secret")),
        Auth::BasicUnknownClient => req.basic_auth(UNKNOWN, Some(&secret)),
        Auth::BasicGarbage => req.header("authorization", "Basic !!not-base64!!"),
        Auth::Bearer => req.bearer_auth("some-token"),
    };
    let res = req.send().await.unwrap();
    assert_eq!(res.status().as_u16(), status);
    let h = res.headers().clone();
    assert_eq!(h["cache-control"], "no-store");
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    // RFC 9110 §15.5.2 (and RFC 6749 §5.2 for a failed Basic login): every 401 is challenged,
    // with Basic, the scheme this endpoint takes; nothing else is.
    match h.get("www-authenticate") {
        Some(v) => {
            assert_eq!(status, 401, "unexpected WWW-Authenticate: {v:?}");
            assert!(v.to_str().unwrap().starts_with("Basic"), "{v:?}");
        }
        None => assert_ne!(status, 401, "missing WWW-Authenticate"),
    }
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body.get("access_token").is_none());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn unknown_client_and_wrong_secret_answer_alike(#[case] backend: Backend) {
    let Some((s, id, _secret, _)) = hotel(backend).await else {
        return;
    };
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "api://hotel/.default"),
    ];
    let (s1, unknown) = s.token_form(&form, Some((UNKNOWN, "some-secret"))).await;
    let (s2, wrong) = s.token_form(&form, Some((&id, "some-secret"))).await;
    let (s3, not_uuid) = s
        .token_form(&form, Some(("not-a-uuid", "some-secret")))
        .await;
    assert_eq!(
        (s1, s2, s3),
        (
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED
        )
    );
    assert_eq!(unknown, wrong);
    assert_eq!(unknown, not_uuid);
    assert_eq!(
        unknown,
        json!({"error": "invalid_client", "error_description": "client authentication failed"})
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn other_methods_are_not_allowed(#[case] backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    for path in ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"] {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let res = s
                .http
                .request(method.clone(), s.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(res.headers()["allow"], "POST");
            assert_eq!(res.headers()["cache-control"], "no-store");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"], "invalid_request", "{body}");
        }
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_oversized_body_is_refused(#[case] backend: Backend) {
    let Some((s, id, secret, _)) = hotel(backend).await else {
        return;
    };
    let body = format!("{CC}&padding={}", "a".repeat(1024 * 1024));
    let res = s
        .http
        .post(s.url("/oauth2/token"))
        .header("content-type", FORM)
        .basic_auth(&id, Some(&secret))
        .body(body)
        .send()
        .await
        .expect("the server answers instead of dropping the connection");
    assert!(
        matches!(res.status().as_u16(), 400 | 413),
        "status {}",
        res.status()
    );
    let body: Value = res.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
}
