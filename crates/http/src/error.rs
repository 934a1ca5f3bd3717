//! The one place where errors become HTTP answers: RFC 9457 problem details
//! with the stable `code`s of API.md.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use boxoffice_services::ServiceError;
use boxoffice_store::StoredResponse;
use serde_json::{json, Map, Value};

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Errors of the HTTP layer itself, plus every service error.
#[derive(Debug)]
pub enum ApiError {
    Service(ServiceError),
    PayloadTooLarge,
    UnsupportedMediaType,
    MethodNotAllowed,
    RouteNotFound,
    Timeout,
    Panic,
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        ApiError::Service(error)
    }
}

impl From<boxoffice_store::StoreError> for ApiError {
    fn from(error: boxoffice_store::StoreError) -> Self {
        ApiError::Service(error.into())
    }
}

/// Status, code, title and extension members of a problem.
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub extensions: Map<String, Value>,
}

fn problem(
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: impl Into<String>,
) -> Problem {
    Problem {
        status,
        code,
        title,
        detail: detail.into(),
        extensions: Map::new(),
    }
}

impl Problem {
    fn with(mut self, key: &str, value: Value) -> Problem {
        self.extensions.insert(key.to_string(), value);
        self
    }

    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            json!(format!("https://boxoffice.dev/problems/{}", self.code)),
        );
        body.insert("title".into(), json!(self.title));
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("code".into(), json!(self.code));
        body.insert("detail".into(), json!(self.detail));
        for (key, value) in &self.extensions {
            body.insert(key.clone(), value.clone());
        }
        Value::Object(body)
    }
}

pub fn problem_of_service(error: &ServiceError) -> Problem {
    use ServiceError as E;
    let detail = error.to_string();
    match error {
        E::InvalidRequest { errors } => problem(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid request",
            invalid_detail(errors),
        )
        .with("errors", json!(errors)),
        E::Unauthorized => problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        ),
        E::InvalidCredentials => problem(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Invalid credentials",
            detail,
        ),
        E::Forbidden { .. } => problem(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail),
        E::NotFound { .. } => problem(StatusCode::NOT_FOUND, "not_found", "Not found", detail),
        E::EmailTaken => problem(
            StatusCode::CONFLICT,
            "email_taken",
            "E-mail already registered",
            detail,
        ),
        E::SeatsUnavailable { seat_ids, sections } => problem(
            StatusCode::CONFLICT,
            "seats_unavailable",
            "Seats unavailable",
            detail,
        )
        .with("unavailable", json!(seat_ids))
        .with("sections", json!(sections)),
        E::ShowNotOnSale { reason } => problem(
            StatusCode::CONFLICT,
            "show_not_on_sale",
            "Show not on sale",
            reason.clone(),
        ),
        E::TicketLimitExceeded {
            limit,
            already,
            requested,
        } => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ticket_limit_exceeded",
            "Ticket limit exceeded",
            detail,
        )
        .with("limit", json!(limit))
        .with("already", json!(already))
        .with("requested", json!(requested)),
        E::PriceMissing { categories } => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "price_missing",
            "Price missing",
            format!("{detail}: missing {}", categories.join(", ")),
        )
        .with("categories", json!(categories)),
        E::HoldExpired => problem(StatusCode::CONFLICT, "hold_expired", "Hold expired", detail),
        E::HoldNotActive { status } => problem(
            StatusCode::CONFLICT,
            "hold_not_active",
            "Hold not active",
            format!("the hold is {status}"),
        )
        .with("hold_status", json!(status)),
        E::PaymentDeclined => problem(
            StatusCode::PAYMENT_REQUIRED,
            "payment_declined",
            "Payment declined",
            "the payment was declined; the seats were released",
        ),
        E::PaymentUnavailable => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "payment_unavailable",
            "Payment unavailable",
            detail,
        ),
        E::BookingNotActive => problem(
            StatusCode::CONFLICT,
            "booking_not_active",
            "Booking not active",
            detail,
        ),
        E::AlreadyCheckedIn { at } => problem(
            StatusCode::CONFLICT,
            "already_checked_in",
            "Already checked in",
            detail,
        )
        .with(
            "checked_in_at",
            json!(boxoffice_services::views::rfc3339(*at)),
        ),
        E::TicketCancelled => problem(
            StatusCode::CONFLICT,
            "ticket_cancelled",
            "Ticket cancelled",
            detail,
        ),
        E::InvalidTicket => problem(
            StatusCode::BAD_REQUEST,
            "invalid_ticket",
            "Invalid ticket",
            detail,
        ),
        E::InvalidSignature => problem(
            StatusCode::BAD_REQUEST,
            "invalid_signature",
            "Invalid signature",
            detail,
        ),
        E::IdempotencyKeyRequired => problem(
            StatusCode::BAD_REQUEST,
            "idempotency_key_required",
            "Idempotency-Key required",
            detail,
        ),
        E::IdempotencyKeyReused => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "Idempotency-Key reused",
            detail,
        ),
        E::RequestInProgress => problem(
            StatusCode::CONFLICT,
            "request_in_progress",
            "Request in progress",
            detail,
        ),
        E::AdmissionRequired => problem(
            StatusCode::FORBIDDEN,
            "admission_required",
            "Admission required",
            detail,
        ),
        E::AdmissionInvalid => problem(
            StatusCode::FORBIDDEN,
            "admission_invalid",
            "Admission invalid",
            detail,
        ),
        E::WaitingRoomDisabled => problem(
            StatusCode::CONFLICT,
            "waiting_room_disabled",
            "No waiting room",
            detail,
        ),
        E::PowRequired => problem(
            StatusCode::FORBIDDEN,
            "pow_required",
            "Proof of work required",
            detail,
        ),
        E::PowInvalid { .. } => problem(
            StatusCode::FORBIDDEN,
            "pow_invalid",
            "Proof of work invalid",
            detail,
        ),
        E::RateLimited {
            retry_after_seconds,
            ..
        } => problem(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
            detail,
        )
        .with("retry_after_seconds", json!(retry_after_seconds)),
        E::NotImplemented => problem(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            "Not implemented",
            detail,
        ),
        E::Unavailable(message) => {
            tracing::warn!(%message, "service unavailable");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "the service is temporarily unavailable, try again",
            )
        }
        E::Internal(message) => {
            tracing::error!(%message, "internal error");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "something went wrong on our side",
            )
        }
    }
}

fn invalid_detail(errors: &[boxoffice_domain::FieldError]) -> String {
    match errors.first() {
        Some(first) if errors.len() == 1 => format!("{}: {}", first.field, first.message),
        Some(first) => format!(
            "{}: {} (and {} more)",
            first.field,
            first.message,
            errors.len() - 1
        ),
        None => "the request is invalid".into(),
    }
}

impl ApiError {
    pub fn problem(&self) -> Problem {
        match self {
            ApiError::Service(error) => problem_of_service(error),
            ApiError::PayloadTooLarge => problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
                format!(
                    "request bodies are limited to {} bytes",
                    crate::BODY_SIZE_MAX_BYTES
                ),
            ),
            ApiError::UnsupportedMediaType => problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send JSON with Content-Type: application/json",
            ),
            ApiError::MethodNotAllowed => problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
                "this route does not accept that method",
            ),
            ApiError::RouteNotFound => problem(
                StatusCode::NOT_FOUND,
                "not_found",
                "Not found",
                "no such route",
            ),
            ApiError::Timeout => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "Request timed out",
                "the request took too long, try again",
            ),
            ApiError::Panic => problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "something went wrong on our side",
            ),
        }
    }
}

pub fn problem_response(problem: &Problem) -> Response {
    let mut response = (problem.status, problem.body().to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    match problem.status {
        StatusCode::UNAUTHORIZED => {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            // The rest of the body was not read: the connection cannot be reused.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        StatusCode::TOO_MANY_REQUESTS => {
            let seconds = problem
                .extensions
                .get("retry_after_seconds")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        _ => {}
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem_response(&self.problem())
    }
}

/// Renders a service error as it is answered, for idempotent replays.
pub fn render_error(error: &ServiceError) -> StoredResponse {
    let problem = problem_of_service(error);
    StoredResponse {
        status: problem.status.as_u16(),
        body: problem.body().to_string(),
    }
}

/// Answers with a stored response (an idempotent replay).
pub fn stored_response(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        PROBLEM_CONTENT_TYPE
    };
    let mut response = (status, stored.body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
