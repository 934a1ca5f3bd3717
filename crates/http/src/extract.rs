//! Extractors whose rejections are problem+json like every other error.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use boxoffice_domain::FieldError;
use boxoffice_services::{AuthUser, IdempotencyRequest, ServiceError};
use boxoffice_store::PageRequest;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::rate_limit::{bearer_token, Authenticated};
use crate::AppState;

pub const PAGE_SIZE_DEFAULT: u32 = 20;
pub const PAGE_SIZE_MAX: u32 = 100;
/// API.md: keys are any string up to 255 characters.
pub const IDEMPOTENCY_KEY_LENGTH_MAX: usize = 255;
/// Cursors we hand out are short; anything longer is not one of ours.
const CURSOR_LENGTH_MAX: usize = 512;

fn json_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    let message = inner.to_string();
    // serde names missing/unknown fields in the message, not in the path.
    let field = extract_backticked(&message)
        .filter(|_| message.starts_with("missing field") || message.starts_with("unknown field"))
        .map(|name| {
            if path == "." {
                name
            } else {
                format!("{path}.{name}")
            }
        })
        .unwrap_or_else(|| {
            if path == "." {
                "body".to_string()
            } else {
                path
            }
        });
    let message = match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("malformed JSON: {message}")
        }
        _ => message,
    };
    ApiError::Service(ServiceError::InvalidRequest {
        errors: vec![FieldError { field, message }],
    })
}

fn extract_backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = message[start..].find('`')? + start;
    Some(message[start..end].to_string())
}

async fn json_bytes(request: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !(essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json")))
    {
        return Err(ApiError::UnsupportedMediaType);
    }
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::Service(ServiceError::invalid("body", rejection.body_text()))
            }
        })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(json_error)?;
    deserializer.end().map_err(|error| {
        ApiError::Service(ServiceError::invalid(
            "body",
            format!("malformed JSON: {error}"),
        ))
    })?;
    Ok(value)
}

/// The raw body, whatever its type (bounded by the body limit), with the
/// same problem answers as the JSON extractors: for signed payloads, whose
/// signature covers the exact bytes.
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::Service(ServiceError::invalid("body", rejection.body_text()))
                }
            })
    }
}

/// A JSON body.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(request, state).await?;
        Ok(ApiJson(parse_json(&bytes)?))
    }
}

/// A JSON body that may be left out entirely (no body, no Content-Type):
/// then `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let announced_empty = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0");
        let untyped = !request.headers().contains_key(header::CONTENT_TYPE);
        if untyped {
            let bytes = Bytes::from_request(request, state)
                .await
                .map_err(|_| ApiError::PayloadTooLarge)?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(T::default()));
            }
            return Err(ApiError::UnsupportedMediaType);
        }
        if announced_empty {
            return Ok(OptionalJson(T::default()));
        }
        let bytes = json_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        Ok(OptionalJson(parse_json(&bytes)?))
    }
}

/// A JSON body plus the hash of its canonical form, for `Idempotency-Key`
/// checks ("same key, same body").
pub struct HashedJson<T> {
    pub value: T,
    pub hash: String,
}

impl<T: DeserializeOwned> FromRequest<AppState> for HashedJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(request, state).await?;
        let value: T = parse_json(&bytes)?;
        // Canonical: object keys sorted, no insignificant whitespace.
        let canonical = serde_json::from_slice::<serde_json::Value>(&bytes)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
        Ok(HashedJson { value, hash })
    }
}

/// The authenticated caller, from `Authorization: Bearer …`.
pub struct Caller(pub AuthUser);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(Authenticated(user)) = parts.extensions.get::<Authenticated>() {
            return Ok(Caller(user.clone()));
        }
        let token =
            bearer_token(&parts.headers).ok_or(ApiError::Service(ServiceError::Unauthorized))?;
        Ok(Caller(state.services.auth.authenticate(token)?))
    }
}

/// The caller of a Server-Sent Events stream: the `Authorization` header,
/// or `?access_token=` because a browser's `EventSource` cannot send
/// headers.
pub struct StreamCaller(pub AuthUser);

impl FromRequestParts<AppState> for StreamCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Caller::from_request_parts(parts, state)
                .await
                .map(|Caller(user)| StreamCaller(user));
        }
        let token = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .find_map(|pair| pair.strip_prefix("access_token="))
            .ok_or(ApiError::Service(ServiceError::Unauthorized))?;
        Ok(StreamCaller(state.services.auth.authenticate(token)?))
    }
}

/// The optional `X-Admission-Token` header of `POST /v1/holds`.
pub struct AdmissionToken(pub Option<String>);

impl FromRequestParts<AppState> for AdmissionToken {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(AdmissionToken(
            parts
                .headers
                .get("x-admission-token")
                // Not visible ASCII cannot be one of our tokens: treat as forged.
                .map(|value| value.to_str().unwrap_or("\u{0}").trim().to_string()),
        ))
    }
}

/// The optional `Idempotency-Key` header.
pub struct IdempotencyKey(pub Option<String>);

impl FromRequestParts<AppState> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let value = value
            .to_str()
            .map_err(|_| ServiceError::invalid("Idempotency-Key", "must be visible ASCII"))?
            .to_string();
        if value.is_empty() || value.len() > IDEMPOTENCY_KEY_LENGTH_MAX {
            return Err(ServiceError::invalid(
                "Idempotency-Key",
                format!("must be 1 to {IDEMPOTENCY_KEY_LENGTH_MAX} characters"),
            )
            .into());
        }
        Ok(IdempotencyKey(Some(value)))
    }
}

impl IdempotencyKey {
    pub fn with_hash(self, hash: String) -> Option<IdempotencyRequest> {
        self.0.map(|key| IdempotencyRequest {
            key,
            request_hash: hash,
        })
    }
}

/// Query parameters, with problem+json rejections.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str::<T>(query)
            .map(ApiQuery)
            .map_err(|error| {
                let message = error.to_string();
                let field = extract_backticked(&message).unwrap_or_else(|| "query".to_string());
                ApiError::Service(ServiceError::InvalidRequest {
                    errors: vec![FieldError { field, message }],
                })
            })
    }
}

/// `limit` and `cursor` of every list (API.md: limit 1–100, default 20).
#[derive(Debug, Deserialize, Default)]
pub struct PageParams {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn page_request(&self) -> Result<PageRequest, ApiError> {
        let limit = match &self.limit {
            None => PAGE_SIZE_DEFAULT,
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(value) if (1..=i64::from(PAGE_SIZE_MAX)).contains(&value) => value as u32,
                _ => {
                    return Err(ServiceError::invalid(
                        "limit",
                        format!("must be an integer from 1 to {PAGE_SIZE_MAX}"),
                    )
                    .into())
                }
            },
        };
        let after = match &self.cursor {
            None => None,
            Some(cursor) if cursor.is_empty() => None,
            Some(cursor) => Some(decode_cursor(cursor)?),
        };
        Ok(PageRequest { limit, after })
    }
}

pub fn encode_cursor(cursor: Option<String>) -> Option<String> {
    cursor.map(|c| URL_SAFE_NO_PAD.encode(c.as_bytes()))
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::Service(ServiceError::invalid(
            "cursor",
            "not a cursor returned by this API",
        ))
    };
    if cursor.len() > CURSOR_LENGTH_MAX {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| invalid())?;
    String::from_utf8(bytes).map_err(|_| invalid())
}
