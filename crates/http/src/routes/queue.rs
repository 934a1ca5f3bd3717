//! The virtual waiting room: join, poll, the position stream, and the
//! proof-of-work challenge.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use boxoffice_services::waiting_room::{JoinQueueInput, PowChallengeView, QueueTicketView};
use boxoffice_services::ServiceError;
use futures::Stream;

use crate::error::ApiError;
use crate::extract::{Caller, OptionalJson, StreamCaller};
use crate::AppState;

/// How often the position stream looks at the ticket.
const STREAM_TICK: Duration = Duration::from_secs(1);
/// Comment lines that keep proxies from closing a quiet stream.
const STREAM_HEARTBEAT: Duration = Duration::from_secs(15);

/// Join the show's waiting room: 201 with a new ticket, 200 with the one the
/// caller already has.
#[utoipa::path(post, path = "/v1/shows/{id}/queue", tag = "waiting room", security(("bearer" = [])),
    request_body(content = Option<JoinQueueInput>, description = "may be empty; `pow` is required when the show asks for a proof of work"),
    responses((status = 201, body = QueueTicketView, description = "joined"), (status = 200, body = QueueTicketView, description = "the caller's existing ticket"),
        (status = 401, description = "unauthorized"), (status = 403, description = "pow_required, pow_invalid"),
        (status = 404, description = "not_found"), (status = 409, description = "waiting_room_disabled, show_not_on_sale"),
        (status = 429, description = "rate_limited")))]
pub async fn join_queue(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    OptionalJson(input): OptionalJson<JoinQueueInput>,
) -> Result<Response, ApiError> {
    let (ticket, created) = state
        .services
        .waiting_room
        .join(&caller, &id, input)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ticket)).into_response())
}

/// A queue ticket of the caller: status, position, and once admitted the
/// admission token.
#[utoipa::path(get, path = "/v1/shows/{id}/queue/{ticket_id}", tag = "waiting room", security(("bearer" = [])),
    responses((status = 200, body = QueueTicketView), (status = 401, description = "unauthorized"),
        (status = 404, description = "not_found (no such ticket, or not the caller's)"), (status = 409, description = "waiting_room_disabled"),
        (status = 429, description = "rate_limited")))]
pub async fn queue_ticket(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, ticket_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ticket = state
        .services
        .waiting_room
        .ticket(&caller, &id, &ticket_id)
        .await?;
    Ok(no_store(Json(ticket).into_response()))
}

/// A proof-of-work challenge for joining this show's queue.
#[utoipa::path(get, path = "/v1/shows/{id}/queue/challenge", tag = "waiting room", security(("bearer" = [])),
    responses((status = 200, body = PowChallengeView), (status = 401, description = "unauthorized"),
        (status = 404, description = "not_found"), (status = 409, description = "waiting_room_disabled")))]
pub async fn challenge(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let challenge = state.services.waiting_room.challenge(&caller, &id).await?;
    Ok(no_store(Json(challenge).into_response()))
}

/// The ticket as Server-Sent Events: an event `ticket` (the queue ticket
/// object) now and whenever it changes; the stream ends after `ADMITTED`
/// or `EXPIRED`. Auth by header or `?access_token=` (for `EventSource`).
#[utoipa::path(get, path = "/v1/shows/{id}/queue/{ticket_id}/stream", tag = "waiting room", security(("bearer" = [])),
    params(("access_token" = Option<String>, Query, description = "the bearer token, for clients that cannot send headers")),
    responses((status = 200, content_type = "text/event-stream", description = "events `ticket`"), (status = 401, description = "unauthorized"),
        (status = 404, description = "not_found")))]
pub async fn queue_ticket_stream(
    State(state): State<AppState>,
    StreamCaller(caller): StreamCaller,
    Path((id, ticket_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    // The first read answers errors (404, 401) as plain problem+json.
    let first = state
        .services
        .waiting_room
        .ticket(&caller, &id, &ticket_id)
        .await?;
    let stream = ticket_events(state, caller, id, ticket_id, first);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(STREAM_HEARTBEAT))
        .into_response())
}

struct StreamState {
    state: AppState,
    caller: boxoffice_services::AuthUser,
    show_id: String,
    ticket_id: String,
    /// What the client has been sent last (`None`: nothing yet).
    sent: Option<QueueTicketView>,
    next: Option<QueueTicketView>,
    sequence: u64,
}

fn ticket_events(
    state: AppState,
    caller: boxoffice_services::AuthUser,
    show_id: String,
    ticket_id: String,
    first: QueueTicketView,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let initial = StreamState {
        state,
        caller,
        show_id,
        ticket_id,
        sent: None,
        next: Some(first),
        sequence: 0,
    };
    futures::stream::unfold(initial, |mut stream| async move {
        loop {
            if stream.sent.as_ref().is_some_and(QueueTicketView::is_final) {
                return None;
            }
            if let Some(view) = stream.next.take() {
                if stream.sent.as_ref() != Some(&view) {
                    stream.sequence += 1;
                    let event = Event::default()
                        .event("ticket")
                        .id(stream.sequence.to_string())
                        .json_data(&view)
                        .unwrap_or_else(|_| Event::default().comment("unserializable"));
                    stream.sent = Some(view);
                    return Some((Ok(event), stream));
                }
            }
            tokio::time::sleep(STREAM_TICK).await;
            match stream
                .state
                .services
                .waiting_room
                .ticket(&stream.caller, &stream.show_id, &stream.ticket_id)
                .await
            {
                Ok(view) => stream.next = Some(view),
                // A passing store hiccup: try again on the next tick; the
                // client keeps its last known position meanwhile.
                Err(ServiceError::Unavailable(error)) => {
                    tracing::debug!(%error, "queue stream: reading the ticket failed")
                }
                // The room was switched off or the ticket is gone: nothing
                // more will come.
                Err(_) => return None,
            }
        }
    })
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
