use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use boxoffice_domain::HoldRequestInput;
use boxoffice_services::booking::{CheckinInput, ConfirmInput, SandboxChargeView};
use boxoffice_services::views::{BookingView, CheckinView, HoldView};
use boxoffice_services::Replayable;
use boxoffice_store::{AuditFilter, AuditRecord};
use serde::Deserialize;

use super::ListView;
use crate::error::{stored_response, ApiError};
use crate::extract::{
    AdmissionToken, ApiJson, ApiQuery, Caller, HashedJson, IdempotencyKey, PageParams,
};
use crate::AppState;

fn replayable<T: serde::Serialize>(result: Replayable<T>) -> Response {
    match result {
        Replayable::Fresh(view) => (StatusCode::CREATED, Json(view)).into_response(),
        Replayable::Replay(stored) => stored_response(stored),
    }
}

/// Hold seats: chosen seats, best available, or standing; all or nothing.
#[utoipa::path(post, path = "/v1/holds", tag = "holds", security(("bearer" = [])), request_body = Object,
    params(("Idempotency-Key" = Option<String>, Header),
        ("X-Admission-Token" = Option<String>, Header, description = "required on shows with a waiting room: the `admission_token` of an ADMITTED queue ticket")),
    responses((status = 201, body = HoldView), (status = 400, description = "invalid_request"),
        (status = 403, description = "admission_required, admission_invalid"), (status = 404, description = "not_found"),
        (status = 409, description = "seats_unavailable, show_not_on_sale"), (status = 422, description = "ticket_limit_exceeded")))]
pub async fn create_hold(
    State(state): State<AppState>,
    Caller(caller): Caller,
    key: IdempotencyKey,
    admission: AdmissionToken,
    body: HashedJson<HoldRequestInput>,
) -> Result<Response, ApiError> {
    let idempotency = key.with_hash(body.hash);
    Ok(replayable(
        state
            .services
            .booking
            .hold(&caller, body.value, admission.0.as_deref(), idempotency)
            .await?,
    ))
}

/// A hold (its owner or an admin).
#[utoipa::path(get, path = "/v1/holds/{id}", tag = "holds", security(("bearer" = [])), responses((status = 200, body = HoldView), (status = 404, description = "not_found")))]
pub async fn hold(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<HoldView>, ApiError> {
    Ok(Json(state.services.booking.get_hold(&caller, &id).await?))
}

/// Release a hold now.
#[utoipa::path(delete, path = "/v1/holds/{id}", tag = "holds", security(("bearer" = [])),
    responses((status = 204, description = "released"), (status = 404, description = "not_found"), (status = 409, description = "hold_not_active")))]
pub async fn release_hold(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.booking.release(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pay for a hold and confirm it. Requires `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/bookings", tag = "bookings", security(("bearer" = [])), request_body = ConfirmInput,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = BookingView), (status = 400, description = "idempotency_key_required, invalid_request"),
        (status = 402, description = "payment_declined"), (status = 404, description = "not_found"),
        (status = 409, description = "hold_expired, hold_not_active, request_in_progress"),
        (status = 422, description = "idempotency_key_reused"), (status = 503, description = "payment_unavailable")))]
pub async fn create_booking(
    State(state): State<AppState>,
    Caller(caller): Caller,
    key: IdempotencyKey,
    body: HashedJson<ConfirmInput>,
) -> Result<Response, ApiError> {
    let idempotency = key.with_hash(body.hash);
    Ok(replayable(
        state
            .services
            .booking
            .confirm(&caller, body.value, idempotency)
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingsQuery {
    show_id: Option<String>,
    user_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The caller's bookings, newest first (admin: filter by `show_id`, `user_id`).
#[utoipa::path(get, path = "/v1/bookings", tag = "bookings", security(("bearer" = [])),
    params(("show_id" = Option<String>, Query), ("user_id" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<BookingView>)))]
pub async fn list_bookings(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<BookingsQuery>,
) -> Result<Json<ListView<BookingView>>, ApiError> {
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page_request()?;
    Ok(ListView::of(
        state
            .services
            .booking
            .list_bookings(
                &caller,
                query.show_id.as_deref(),
                query.user_id.as_deref(),
                &page,
            )
            .await?,
    ))
}

/// A booking with its tickets (its owner or an admin).
#[utoipa::path(get, path = "/v1/bookings/{id}", tag = "bookings", security(("bearer" = [])), responses((status = 200, body = BookingView), (status = 404, description = "not_found")))]
pub async fn booking(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<BookingView>, ApiError> {
    Ok(Json(state.services.booking.booking(&caller, &id).await?))
}

/// Cancel a booking: refund, tickets void, places back on sale.
#[utoipa::path(post, path = "/v1/bookings/{id}/cancel", tag = "bookings", security(("bearer" = [])),
    responses((status = 200, body = BookingView), (status = 404, description = "not_found"), (status = 409, description = "booking_not_active")))]
pub async fn cancel_booking(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<BookingView>, ApiError> {
    Ok(Json(state.services.booking.cancel(&caller, &id).await?))
}

/// Admit a ticket at the door (staff, admin). Admits each ticket once.
#[utoipa::path(post, path = "/v1/checkin", tag = "check-in", security(("bearer" = [])), request_body = CheckinInput,
    responses((status = 200, body = CheckinView), (status = 400, description = "invalid_ticket"),
        (status = 409, description = "already_checked_in, ticket_cancelled")))]
pub async fn check_in(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(input): ApiJson<CheckinInput>,
) -> Result<Json<CheckinView>, ApiError> {
    Ok(Json(state.services.booking.check_in(&caller, input).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    show_id: Option<String>,
    booking_id: Option<String>,
    user_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The audit trail, newest first (admin).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("bearer" = [])),
    params(("show_id" = Option<String>, Query), ("booking_id" = Option<String>, Query), ("user_id" = Option<String>, Query),
        ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "audit records")))]
pub async fn audit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<ListView<AuditRecord>>, ApiError> {
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page_request()?;
    let filter = AuditFilter {
        show_id: query.show_id,
        booking_id: query.booking_id,
        user_id: query.user_id,
    };
    Ok(ListView::of(
        state.services.booking.audit(&caller, filter, &page).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct ChargesQuery {
    hold_id: String,
}

/// The sandbox payment gateway's own ledger of charges for a hold (admin).
#[utoipa::path(get, path = "/v1/sandbox/charges", tag = "payments", security(("bearer" = [])),
    params(("hold_id" = String, Query)), responses((status = 200, body = ListView<SandboxChargeView>)))]
pub async fn sandbox_charges(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ChargesQuery>,
) -> Result<Json<ListView<SandboxChargeView>>, ApiError> {
    let items = state
        .services
        .booking
        .sandbox_charges(&caller, &query.hold_id)
        .await?;
    Ok(Json(ListView {
        items,
        next_cursor: None,
    }))
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TicketKeyView {
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    /// The 32-byte public key, base64url without padding.
    pub public_key: String,
    /// How a code is built, for scanners that verify offline.
    pub code_format: &'static str,
}

/// The public key that verifies ticket codes offline (door scanners cache it).
#[utoipa::path(get, path = "/v1/tickets/public-key", tag = "check-in", responses((status = 200, body = TicketKeyView)))]
pub async fn ticket_public_key(State(state): State<AppState>) -> Json<TicketKeyView> {
    use base64::Engine;
    let key = state.services.booking.ticket_public_key();
    Json(TicketKeyView {
        algorithm: "Ed25519",
        public_key: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key),
        code_format: "bx1.<base64url(JSON claims)>.<base64url(Ed25519 signature of the bytes before the last dot)>",
    })
}

fn binary(content_type: &'static str, bytes: Vec<u8>, filename: Option<String>) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    // Tickets are personal: never kept by shared caches.
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("private, no-store"),
    );
    if let Some(name) = filename.and_then(|name| {
        axum::http::HeaderValue::from_str(&format!("inline; filename=\"{name}\"")).ok()
    }) {
        headers.insert(axum::http::header::CONTENT_DISPOSITION, name);
    }
    response
}

/// The booking's tickets as a PDF, one page per ticket with its QR code.
#[utoipa::path(get, path = "/v1/bookings/{id}/tickets.pdf", tag = "bookings", security(("bearer" = [])),
    responses((status = 200, content_type = "application/pdf", description = "one page per ticket"),
        (status = 404, description = "not_found")))]
pub async fn tickets_pdf(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let pdf = boxoffice_services::tickets::booking_tickets_pdf(
        &state.services.booking,
        &state.services.catalog,
        &caller,
        &id,
    )
    .await?;
    Ok(binary(
        "application/pdf",
        pdf,
        Some(format!("tickets-{id}.pdf")),
    ))
}

/// A ticket's code as a QR image (PNG), for its booking's owner or an admin.
#[utoipa::path(get, path = "/v1/tickets/{id}/qr.png", tag = "bookings", security(("bearer" = [])),
    responses((status = 200, content_type = "image/png", description = "the ticket's QR code"),
        (status = 404, description = "not_found")))]
pub async fn ticket_qr_png(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let png =
        boxoffice_services::tickets::ticket_qr_png(&state.services.booking, &caller, &id).await?;
    Ok(binary("image/png", png, None))
}
