//! `GET /v1/shows/{id}/seats/stream`: the live seat map as Server-Sent
//! Events (API.md "Seat map"): a `snapshot`, then `changes` in version
//! order, each with `id:` = its version; `Last-Event-ID` resumes.
//!
//! Memory stays bounded whatever the client does: changes reach a stream
//! through the show's bounded broadcast queue, and a stream that falls
//! behind it starts over from a fresh snapshot (and is closed if that keeps
//! happening).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use boxoffice_services::inventory::{SeatMapChange, ShowInventory, StreamItem};
use futures::Stream;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use crate::error::ApiError;
use crate::AppState;

/// Comment lines that keep proxies from closing a quiet stream.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// How often a stream makes sure its node's copy of the show is current
/// (changes of other nodes without a live feed, e.g. on SQLite).
const REFRESH_EVERY: Duration = Duration::from_millis(500);
/// A stream that had to start over this often within `RESTART_WINDOW` is
/// too slow to follow the show: it is closed (the client may reconnect).
const RESTARTS_MAX: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);

#[derive(Serialize)]
struct SeatChangeView<'a> {
    id: &'a str,
    status: &'static str,
}

#[derive(Serialize)]
struct StandingChangeView<'a> {
    section: &'a str,
    available: u32,
}

#[derive(Serialize)]
struct ChangesView<'a> {
    version: i64,
    seats: Vec<SeatChangeView<'a>>,
    standing: Vec<StandingChangeView<'a>>,
}

fn changes_event(change: &SeatMapChange) -> Event {
    let view = ChangesView {
        version: change.version,
        seats: change
            .seats
            .iter()
            .map(|(id, status)| SeatChangeView {
                id: id.as_str(),
                status: status.as_str(),
            })
            .collect(),
        standing: change
            .standing
            .iter()
            .map(|(section, available)| StandingChangeView {
                section,
                available: *available,
            })
            .collect(),
    };
    Event::default()
        .event("changes")
        .id(change.version.to_string())
        .json_data(&view)
        .unwrap_or_else(|_| Event::default().comment("unserializable change"))
}

/// The seat map as one `snapshot` event, and its version.
async fn snapshot(state: &AppState, show_id: &str) -> Result<(Event, i64), ApiError> {
    let (map, _etag) = state.services.catalog.seat_map(show_id).await?;
    let event = Event::default()
        .event("snapshot")
        .id(map.version.to_string())
        .json_data(&map)
        .map_err(|error| {
            ApiError::Service(boxoffice_services::ServiceError::Internal(
                error.to_string(),
            ))
        })?;
    Ok((event, map.version))
}

/// Seat-map stream (Server-Sent Events): `snapshot`, then `changes`.
#[utoipa::path(get, path = "/v1/shows/{id}/seats/stream", tag = "shows",
    params(("Last-Event-ID" = Option<String>, Header, description = "resume after this version (a fresh snapshot when it is no longer kept)")),
    responses((status = 200, content_type = "text/event-stream",
        description = "event `snapshot` (the seat map), then events `changes` `{version, seats: [{id, status}], standing: [{section, available}]}`, each with `id:` = its version; comment lines as heartbeats"),
        (status = 404, description = "not_found")))]
pub async fn seat_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let inventory = state.services.catalog.seat_stream_source(&id).await?;
    // Subscribed before the snapshot is taken: nothing falls between.
    let receiver = inventory.subscribe();
    let resume_from = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<i64>().ok());
    let resumed =
        resume_from.and_then(|version| Some((version, inventory.changes_since(version)?)));
    let (queued, sent_version) = match resumed {
        Some((version, changes)) => {
            let last = changes.last().map_or(version, |change| change.version);
            (changes.iter().map(|c| changes_event(c)).collect(), last)
        }
        None => {
            let (event, version) = snapshot(&state, &id).await?;
            (vec![event], version)
        }
    };
    metrics::counter!("boxoffice_seat_streams_opened_total").increment(1);
    let stream = SeatStream {
        state,
        show_id: id,
        inventory,
        receiver,
        queued: queued.into(),
        sent_version,
        restarts: Vec::new(),
        refresh: Instant::now(),
    };
    Ok(Sse::new(stream.events())
        .keep_alive(KeepAlive::new().interval(HEARTBEAT))
        .into_response())
}

struct SeatStream {
    state: AppState,
    show_id: String,
    /// Kept so that the show's inventory (and its broadcast) lives as long
    /// as the stream.
    inventory: Arc<ShowInventory>,
    receiver: Receiver<StreamItem>,
    queued: std::collections::VecDeque<Event>,
    sent_version: i64,
    restarts: Vec<Instant>,
    refresh: Instant,
}

impl SeatStream {
    fn events(self) -> impl Stream<Item = Result<Event, Infallible>> {
        futures::stream::unfold(self, |mut stream| async move {
            let event = stream.next_event().await?;
            Some((Ok(event), stream))
        })
    }

    /// The next event to send; `None` ends the stream.
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.queued.pop_front() {
                return Some(event);
            }
            let wait = REFRESH_EVERY.saturating_sub(self.refresh.elapsed());
            let item = tokio::select! {
                item = self.receiver.recv() => item,
                _ = tokio::time::sleep(wait) => {
                    self.refresh = Instant::now();
                    // Reloads (which this may cause) arrive as `Reset`.
                    if let Err(error) = self.state.services.catalog.seat_stream_source(&self.show_id).await {
                        tracing::debug!(%error, "seat stream: refreshing the show failed");
                    }
                    continue;
                }
            };
            match item {
                Ok(StreamItem::Change(change)) if change.version <= self.sent_version => {}
                Ok(StreamItem::Change(change)) if change.from_version <= self.sent_version => {
                    self.sent_version = change.version;
                    return Some(changes_event(&change));
                }
                // A gap, a reload, or this stream fell behind the queue.
                Ok(StreamItem::Change(_)) | Ok(StreamItem::Reset) | Err(RecvError::Lagged(_)) => {
                    return self.restart().await;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Starts over from a fresh snapshot, or closes a stream that keeps
    /// falling behind.
    async fn restart(&mut self) -> Option<Event> {
        let now = Instant::now();
        self.restarts
            .retain(|at| now.duration_since(*at) < RESTART_WINDOW);
        self.restarts.push(now);
        if self.restarts.len() > RESTARTS_MAX {
            metrics::counter!("boxoffice_seat_streams_dropped_total").increment(1);
            return None;
        }
        // Drop what is queued: the snapshot covers it.
        self.receiver = self.inventory.subscribe();
        match snapshot(&self.state, &self.show_id).await {
            Ok((event, version)) => {
                self.sent_version = version;
                Some(event)
            }
            Err(_) => None,
        }
    }
}
