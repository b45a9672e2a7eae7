//! Extractors that turn bad input into our own error formats instead of axum's plain text.

use super::problem::Problem;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// `Json<T>` whose rejections are RFC 9457 problems.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON with Content-Type: application/json",
            )),
            Err(JsonRejection::BytesRejection(_)) => Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is too large or unreadable",
            )),
            Err(e) => Err(Problem::new(StatusCode::BAD_REQUEST, e.body_text())),
        }
    }
}

/// `Query<T>` whose rejections are RFC 9457 problems.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e @ QueryRejection::FailedToDeserializeQueryString(_)) => {
                Err(Problem::new(StatusCode::BAD_REQUEST, e.body_text()))
            }
            Err(e) => Err(Problem::new(StatusCode::BAD_REQUEST, e.body_text())),
        }
    }
}
