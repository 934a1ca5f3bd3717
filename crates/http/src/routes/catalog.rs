use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use boxoffice_domain::VenueInput;
use boxoffice_services::catalog::{
    EventInput, EventPatchInput, EventView, SalesView, SeatMapView, ShowInput, ShowPatchInput,
    ShowView, VenueView,
};
use boxoffice_services::search::{SuggestionsView, SUGGEST_LIMIT_DEFAULT, SUGGEST_LIMIT_MAX};
use boxoffice_services::ServiceError;
use boxoffice_store::EventFilter;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{created, Created, ListView};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Caller, PageParams};
use crate::AppState;

/// Create a venue with its seat layout (admin).
#[utoipa::path(post, path = "/v1/venues", tag = "venues", security(("bearer" = [])), request_body = Object,
    responses((status = 201, body = VenueView), (status = 400, description = "invalid_request")))]
pub async fn create_venue(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(input): ApiJson<VenueInput>,
) -> Result<Created<VenueView>, ApiError> {
    Ok(created(
        state.services.catalog.create_venue(&caller, input).await?,
    ))
}

/// List venues (without layouts).
#[utoipa::path(get, path = "/v1/venues", tag = "venues",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<VenueView>)))]
pub async fn list_venues(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<ListView<VenueView>>, ApiError> {
    Ok(ListView::of(
        state
            .services
            .catalog
            .list_venues(&params.page_request()?)
            .await?,
    ))
}

/// A venue with its layout.
#[utoipa::path(get, path = "/v1/venues/{id}", tag = "venues", responses((status = 200, body = VenueView), (status = 404, description = "not_found")))]
pub async fn venue(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<VenueView>, ApiError> {
    Ok(Json(state.services.catalog.venue(&id).await?))
}

/// Create an event (admin).
#[utoipa::path(post, path = "/v1/events", tag = "events", security(("bearer" = [])), request_body = EventInput,
    responses((status = 201, body = EventView), (status = 400, description = "invalid_request")))]
pub async fn create_event(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(input): ApiJson<EventInput>,
) -> Result<Created<EventView>, ApiError> {
    Ok(created(
        state.services.catalog.create_event(&caller, input).await?,
    ))
}

/// Update an event (admin).
#[utoipa::path(patch, path = "/v1/events/{id}", tag = "events", security(("bearer" = [])), request_body = EventPatchInput,
    responses((status = 200, body = EventView), (status = 404, description = "not_found")))]
pub async fn patch_event(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<EventPatchInput>,
) -> Result<Json<EventView>, ApiError> {
    Ok(Json(
        state
            .services
            .catalog
            .update_event(&caller, &id, input)
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct EventQuery {
    q: Option<String>,
    city: Option<String>,
    genre: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn parse_time(field: &str, value: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    match value.as_deref().filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(raw) => DateTime::parse_from_rfc3339(raw)
            .map(|time| Some(time.with_timezone(&Utc)))
            .map_err(|_| {
                ServiceError::invalid(field, "must be an RFC 3339 time like 2026-12-01T20:00:00Z")
                    .into()
            }),
    }
}

/// Search events. With `q`: full text over title, performer, description,
/// genre, tags, venue names and cities; every word must match, with typos
/// (one edit from 5 letters, two from 8) and the last word as a prefix of names
/// while it is being typed (no trailing space); ranked by relevance, then
/// the next show, at most 1,000 results deep. Without `q`: every event that
/// passes the filters, by ID. `city`, `from` and `to` must hold for one show
/// that is not cancelled.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(("q" = Option<String>, Query, description = "words to search for, at most 200 characters and 16 words, no control characters"),
        ("city" = Option<String>, Query, description = "a show's venue is in this city (case-insensitive)"),
        ("genre" = Option<String>, Query, description = "the event's genre (case-insensitive)"),
        ("from" = Option<String>, Query, description = "a show starts at or after this RFC 3339 time"),
        ("to" = Option<String>, Query, description = "a show starts at or before this RFC 3339 time"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page, with the same parameters")),
    responses((status = 200, body = ListView<EventView>), (status = 400, description = "invalid_request")))]
pub async fn list_events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<Json<ListView<EventView>>, ApiError> {
    let page = PageParams {
        limit: query.limit.clone(),
        cursor: query.cursor.clone(),
    }
    .page_request()?;
    let filter = EventFilter {
        query: query.q.clone(),
        city: query.city.clone().filter(|c| !c.is_empty()),
        genre: query.genre.clone().filter(|g| !g.is_empty()),
        from: parse_time("from", &query.from)?,
        to: parse_time("to", &query.to)?,
    };
    Ok(ListView::of(
        state.services.catalog.search_events(filter, &page).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct SuggestQuery {
    q: Option<String>,
    limit: Option<String>,
}

/// Type-ahead: events whose title or performer match what was typed so far
/// (the last word as a prefix, typos tolerated), best first. Small and
/// fast: served from the node's index, no database read.
#[utoipa::path(get, path = "/v1/events/suggest", tag = "events",
    params(("q" = String, Query, description = "what was typed so far: 1 to 200 characters, at most 16 words, no control characters"),
        ("limit" = Option<u32>, Query, description = "1 to 20, default 8")),
    responses((status = 200, body = SuggestionsView), (status = 400, description = "invalid_request: `q` missing, empty or too long, or `limit` out of range")))]
pub async fn suggest_events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SuggestQuery>,
) -> Result<Json<SuggestionsView>, ApiError> {
    let limit = match query.limit.as_deref() {
        None => SUGGEST_LIMIT_DEFAULT,
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=SUGGEST_LIMIT_MAX).contains(limit))
            .ok_or_else(|| {
                ServiceError::invalid(
                    "limit",
                    format!("must be an integer from 1 to {SUGGEST_LIMIT_MAX}"),
                )
            })?,
    };
    Ok(Json(
        state
            .services
            .catalog
            .suggest_events(query.q.as_deref(), limit)
            .await?,
    ))
}

/// An event with its shows.
#[utoipa::path(get, path = "/v1/events/{id}", tag = "events", responses((status = 200, body = EventView), (status = 404, description = "not_found")))]
pub async fn event(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    Ok(Json(state.services.catalog.event(&id).await?))
}

/// Create a show of an event at a venue (admin); its inventory comes from the layout.
#[utoipa::path(post, path = "/v1/events/{id}/shows", tag = "shows", security(("bearer" = [])), request_body = ShowInput,
    responses((status = 201, body = ShowView), (status = 404, description = "not_found"), (status = 422, description = "price_missing")))]
pub async fn create_show(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ShowInput>,
) -> Result<Created<ShowView>, ApiError> {
    Ok(created(
        state
            .services
            .catalog
            .create_show(&caller, &id, input)
            .await?,
    ))
}

/// Show detail with availability.
#[utoipa::path(get, path = "/v1/shows/{id}", tag = "shows", responses((status = 200, body = ShowView), (status = 404, description = "not_found")))]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ShowView>, ApiError> {
    Ok(Json(state.services.catalog.show(&id).await?))
}

/// Change status, prices, sales start, hold TTL, ticket limit or waiting room (admin).
#[utoipa::path(patch, path = "/v1/shows/{id}", tag = "shows", security(("bearer" = [])), request_body = ShowPatchInput,
    responses((status = 200, body = ShowView), (status = 404, description = "not_found")))]
pub async fn patch_show(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ShowPatchInput>,
) -> Result<Json<ShowView>, ApiError> {
    Ok(Json(
        state
            .services
            .catalog
            .update_show(&caller, &id, input)
            .await?,
    ))
}

/// The seat map with live status; answers 304 to a matching `If-None-Match`.
#[utoipa::path(get, path = "/v1/shows/{id}/seats", tag = "shows",
    responses((status = 200, body = SeatMapView), (status = 304, description = "not modified"), (status = 404, description = "not_found")))]
pub async fn seat_map(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let matches = |etag: &str| {
        if_none_match.is_some_and(|candidates| {
            candidates
                .split(',')
                .any(|c| c.trim() == etag || c.trim() == "*")
        })
    };
    // The serialized map is cached per ETag, so a 304 costs no rendering.
    let (json, etag) = state.services.catalog.seat_map_json(&id).await?;
    let mut response = if matches(&etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response()
    };
    let etag_value =
        HeaderValue::from_str(&etag).map_err(|e| ServiceError::Internal(e.to_string()))?;
    response.headers_mut().insert(header::ETAG, etag_value);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Sales of a show: counts per section, revenue, tickets sold (admin).
#[utoipa::path(get, path = "/v1/shows/{id}/sales", tag = "shows", security(("bearer" = [])), responses((status = 200, body = SalesView)))]
pub async fn sales(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<SalesView>, ApiError> {
    Ok(Json(state.services.catalog.sales(&caller, &id).await?))
}
