//! The errors of every use case. Each variant is one answer of API.md; the
//! http crate maps them to problem+json in exactly one place.

use boxoffice_domain::FieldError;
use boxoffice_store::StoreError;
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 400 `invalid_request`, naming the offending fields.
    #[error("invalid request")]
    InvalidRequest { errors: Vec<FieldError> },
    /// 401 `unauthorized`.
    #[error("missing or invalid access token")]
    Unauthorized,
    /// 401 `invalid_credentials`.
    #[error("wrong e-mail or password")]
    InvalidCredentials,
    /// 403 `forbidden`.
    #[error("this needs the {required} role")]
    Forbidden { required: &'static str },
    /// 404 `not_found`: no such thing, or not yours.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// 409 `email_taken`.
    #[error("this e-mail address is already registered")]
    EmailTaken,
    /// 409 `seats_unavailable`.
    #[error("some of the requested places are not available")]
    SeatsUnavailable {
        seat_ids: Vec<String>,
        sections: Vec<String>,
    },
    /// 409 `show_not_on_sale`.
    #[error("the show is not on sale")]
    ShowNotOnSale { reason: String },
    /// 422 `ticket_limit_exceeded`.
    #[error("this would pass the limit of {limit} tickets per buyer for this show")]
    TicketLimitExceeded {
        limit: u32,
        already: u32,
        requested: u32,
    },
    /// 422 `price_missing`.
    #[error("every category of the venue needs a price")]
    PriceMissing { categories: Vec<String> },
    /// 409 `hold_expired`.
    #[error("the hold has expired")]
    HoldExpired,
    /// 409 `hold_not_active`.
    #[error("the hold is not active")]
    HoldNotActive { status: String },
    /// 402 `payment_declined`.
    #[error("the payment was declined")]
    PaymentDeclined,
    /// 503 `payment_unavailable`.
    #[error("the payment provider is unavailable, try again")]
    PaymentUnavailable,
    /// 409 `booking_not_active`.
    #[error("the booking is not active")]
    BookingNotActive,
    /// 409 `already_checked_in`.
    #[error("ticket already checked in")]
    AlreadyCheckedIn { at: DateTime<Utc> },
    /// 409 `ticket_cancelled`.
    #[error("the ticket was cancelled")]
    TicketCancelled,
    /// 400 `invalid_ticket`.
    #[error("not a valid ticket code")]
    InvalidTicket,
    /// 400 `invalid_signature`: a payment webhook whose signature is
    /// missing, wrong or too old.
    #[error("the webhook signature is missing, wrong or too old")]
    InvalidSignature,
    /// 400 `idempotency_key_required`.
    #[error("this request needs an Idempotency-Key header")]
    IdempotencyKeyRequired,
    /// 422 `idempotency_key_reused`.
    #[error("this Idempotency-Key was used with another request body")]
    IdempotencyKeyReused,
    /// 409 `request_in_progress`.
    #[error("a request with this Idempotency-Key is still running")]
    RequestInProgress,
    /// 403 `admission_required`: the show has a waiting room.
    #[error("this show has a waiting room: join it and send the X-Admission-Token it gives")]
    AdmissionRequired,
    /// 403 `admission_invalid`: forged, expired, or for another user or show.
    #[error("the admission token is not valid for this user and show (forged, expired or someone else's): join the waiting room again")]
    AdmissionInvalid,
    /// 409 `waiting_room_disabled`: the show has no waiting room to join.
    #[error("this show has no waiting room: hold seats directly")]
    WaitingRoomDisabled,
    /// 403 `pow_required`: joining this show's queue needs a proof of work.
    #[error("joining this waiting room needs a proof of work: GET /v1/shows/{{id}}/queue/challenge and send its solution as `pow`")]
    PowRequired,
    /// 403 `pow_invalid`: wrong, expired, replayed, or for another user or show.
    #[error("the proof of work is not valid: {reason}")]
    PowInvalid { reason: &'static str },
    /// 429 `rate_limited`, with `Retry-After`.
    #[error("too many requests ({class} per {scope}); retry after {retry_after_seconds} s")]
    RateLimited {
        class: &'static str,
        scope: &'static str,
        retry_after_seconds: u64,
    },
    /// 501 `not_implemented`.
    #[error("not implemented yet")]
    NotImplemented,
    /// 503 `unavailable`: the database is down or overloaded.
    #[error("service temporarily unavailable")]
    Unavailable(String),
    /// 500 `internal`: a bug. Logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceError::InvalidRequest {
            errors: vec![FieldError {
                field: field.into(),
                message: message.into(),
            }],
        }
    }

    /// 5xx answers are never stored for idempotent replay.
    pub fn is_server_error(&self) -> bool {
        matches!(
            self,
            ServiceError::PaymentUnavailable
                | ServiceError::Unavailable(_)
                | ServiceError::Internal(_)
                | ServiceError::NotImplemented
        )
    }
}

impl From<crate::rate_limit::RateLimited> for ServiceError {
    fn from(limited: crate::rate_limit::RateLimited) -> Self {
        ServiceError::RateLimited {
            class: limited.class,
            scope: limited.scope.as_str(),
            retry_after_seconds: limited.retry_after_seconds(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ServiceError::NotFound { what: "resource" },
            StoreError::Unavailable(message) => ServiceError::Unavailable(message),
            StoreError::Conflict(message) | StoreError::Other(message) => {
                ServiceError::Internal(message)
            }
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
