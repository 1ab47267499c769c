//! What handlers take from a request: the caller (from the bearer token), a JSON body parsed
//! strictly (malformed JSON, duplicate and unknown keys are 400s naming them; wrong values are
//! 422s naming their JSON path), and query parameters with the same errors.

use crate::AppState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use wharf_service::Caller;

/// The caller a request's `Authorization: Bearer` token stands for.
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Auth(bearer(&parts.headers, state).await?))
    }
}

/// The caller a request's bearer token stands for.
pub(crate) async fn bearer(
    headers: &axum::http::HeaderMap,
    state: &AppState,
) -> Result<Caller, ApiError> {
    {
        let missing = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "auth.missing_token",
                "send an API token as `Authorization: Bearer wharf_...`; an admin creates one with `wharf token create`",
            )
        };
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(missing)?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(missing)?;
        Ok(state.service.authenticate(token).await?)
    }
}

/// A JSON request body of type `T`, parsed strictly.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            ApiError::new(
                e.status(),
                "body.unreadable",
                format!("cannot read the body: {e}"),
            )
        })?;
        parse_body(&bytes).map(JsonBody)
    }
}

/// Parses a body: JSON without duplicate keys (at any depth), then `T`.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "malformed", message);
    let text = std::str::from_utf8(bytes)
        .map_err(|_| malformed("the body is not UTF-8 text".to_string()))?;
    if text.trim().is_empty() {
        return Err(malformed(
            "the body is empty; send a JSON object (Content-Type: application/json)".into(),
        ));
    }
    let value = wharf_service::parse_strict_json(text, "")
        .map_err(|e| malformed(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        // serde would take an array for a struct's fields, in order.
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "the body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| value_error(&e))
}

/// The error for a body or query that is JSON but not the expected shape.
fn value_error(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    // For unknown and duplicate fields the path already ends with the field's name; for
    // missing ones it is the enclosing object's.
    let at = |name: &str| {
        if path == "." || path.is_empty() {
            name.to_string()
        } else if path == name || path.ends_with(&format!(".{name}")) {
            path.clone()
        } else {
            format!("{path}.{name}")
        }
    };
    let quoted = inner.split('`').nth(1).unwrap_or_default().to_string();
    if inner.starts_with("unknown field") {
        let field = at(&quoted);
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_field",
            format!("unknown field {field:?}: {inner}"),
        )
        .with_field(field);
    }
    if inner.starts_with("duplicate field") {
        let field = at(&quoted);
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("field {field:?} is given twice"),
        )
        .with_field(field);
    }
    if inner.starts_with("missing field") {
        let field = at(&quoted);
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("{field}: this field is required"),
        )
        .with_field(field);
    }
    let field = if path == "." { String::new() } else { path };
    let message = if field.is_empty() {
        inner
    } else {
        format!("{field}: {inner}")
    };
    let error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message);
    if field.is_empty() {
        error
    } else {
        error.with_field(field)
    }
}

/// Query parameters of type `T`: unknown ones are 400s, wrong values 422s, naming them.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Query)
            .map_err(|e| {
                let inner = e.inner().to_string();
                let quoted = inner.split('`').nth(1).unwrap_or_default().to_string();
                if inner.starts_with("unknown field") {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "unknown_parameter",
                        format!("unknown query parameter {quoted:?}: {inner}"),
                    )
                    .with_field(quoted)
                } else {
                    let field = e.path().to_string();
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid",
                        format!("query parameter {field}: {inner}"),
                    )
                    .with_field(field)
                }
            })
    }
}
