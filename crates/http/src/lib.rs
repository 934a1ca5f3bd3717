//! The HTTP face of boxoffice: axum routers, auth and idempotency extractors,
//! problem+json errors, OpenAPI, metrics.
//!
//! # Layout
//! - [`routes`]: one module per area; handlers only parse, call a service and
//!   shape the answer.
//! - [`extract`]: JSON, query, bearer-token and `Idempotency-Key` extractors
//!   whose rejections are problem+json.
//! - [`error`]: the single mapping from errors to problem+json.
//! - [`rate_limit`]: the rate limits in front of the routes.
//! - [`openapi`]: the generated OpenAPI document.
//! - [`pages`]: the web pages for buyers, organizers and door staff.

pub mod error;
pub mod extract;
pub mod openapi;
pub mod pages;
pub mod rate_limit;
pub mod routes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use boxoffice_services::Services;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use error::{render_error, ApiError};

/// Request bodies above this are refused with 413: the largest legitimate
/// body is a venue layout, and 200,000 seats as a count per row fit easily.
pub const BODY_SIZE_MAX_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    pub metrics: PrometheusHandle,
    pub request_timeout: Duration,
    /// The header a trusted proxy puts the client's address in; `None`
    /// takes the socket peer (see [`rate_limit`]).
    pub client_ip_header: Option<axum::http::HeaderName>,
}

impl AppState {
    pub fn new(
        services: Arc<Services>,
        metrics: PrometheusHandle,
        request_timeout: Duration,
    ) -> Self {
        AppState {
            services,
            metrics,
            request_timeout,
            client_ip_header: None,
        }
    }

    /// Rate limits count the address in `header` instead of the peer's.
    pub fn with_client_ip_header(mut self, header: Option<axum::http::HeaderName>) -> Self {
        self.client_ip_header = header;
        self
    }
}

/// Installs the process-wide Prometheus recorder (once per process).
pub fn install_metrics_recorder() -> PrometheusHandle {
    let builder = PrometheusBuilder::new();
    match builder.install_recorder() {
        Ok(handle) => handle,
        // A recorder is already installed (e.g. two apps in one test
        // process): render from a fresh, unregistered one instead.
        Err(_) => PrometheusBuilder::new().build_recorder().handle(),
    }
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("boxoffice_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("boxoffice_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// axum's own extractor rejections (a path segment that is not valid
/// percent-encoded UTF-8, say) answer in plain text; every client error of
/// the API is problem+json with a stable code, so they are rewritten here.
async fn problem_for_plain_rejections(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/plain"));
    if !status.is_client_error() || !plain {
        return response;
    }
    let detail = match axum::body::to_bytes(response.into_body(), PLAIN_REJECTION_BYTES_MAX).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let code = match status.as_u16() {
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        _ => "invalid_request",
    };
    let problem = error::Problem {
        status,
        code,
        title: "Invalid request",
        detail,
        extensions: Default::default(),
    };
    error::problem_response(&problem)
}

/// axum's rejection texts are one line; anything longer is cut.
const PLAIN_REJECTION_BYTES_MAX: usize = 4096;

async fn not_found() -> ApiError {
    ApiError::RouteNotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::Panic.into_response()
}

/// Refuses bodies announced larger than the limit on every route, also on
/// routes that never read a body (a 2 MB cancel request is still refused).
async fn limit_announced_body(request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if announced.is_some_and(|length| length > BODY_SIZE_MAX_BYTES as u64) {
        // Read (and drop) what the client is sending before answering, so it
        // sees the 413 instead of a broken pipe.
        drain_body(request, OVERSIZED_BODY_DRAIN_MAX_BYTES).await;
        return ApiError::PayloadTooLarge.into_response();
    }
    next.run(request).await
}

/// Reads and drops a request's body, bounded in bytes and time so that a
/// huge or slow upload cannot hold the connection: an answer given before
/// the body was read (413, 429) would otherwise reach a client still
/// writing as a broken pipe, and its connection could not be reused.
pub(crate) async fn drain_body(request: Request, max_bytes: usize) {
    let mut body = request.into_body().into_data_stream();
    let drain = async {
        let mut drained = 0usize;
        while let Some(Ok(chunk)) = futures::StreamExt::next(&mut body).await {
            drained += chunk.len();
            if drained > max_bytes {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(OVERSIZED_BODY_DRAIN_TIMEOUT, drain).await;
}

/// An oversized body is read and dropped up to this size before the 413.
const OVERSIZED_BODY_DRAIN_MAX_BYTES: usize = 16 * 1024 * 1024;
/// ... and for at most this long (any body that is drained unread).
const OVERSIZED_BODY_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

async fn timeout_layer(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// A router with `/metrics` only, for `BOXOFFICE_METRICS_LISTEN`.
pub fn metrics_router(metrics: PrometheusHandle) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
        .fallback(not_found)
}

/// The whole application. Tests and the CLI both build it from here.
pub fn router(state: AppState) -> Router {
    use routes::{auth, booking, catalog, payments, queue, seat_stream, system, webhooks_out};
    let timeout = state.request_timeout;
    let limits = middleware::from_fn_with_state(state.clone(), rate_limit::limit_requests);
    let api = Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi_json))
        .route("/docs", get(system::docs))
        .route("/v1/auth/register", post(auth::register))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/me", get(auth::me))
        .route("/v1/users", get(auth::list_users))
        .route("/v1/users/{id}", axum::routing::patch(auth::patch_user))
        .route(
            "/v1/venues",
            post(catalog::create_venue).get(catalog::list_venues),
        )
        .route("/v1/venues/{id}", get(catalog::venue))
        .route(
            "/v1/events",
            post(catalog::create_event).get(catalog::list_events),
        )
        // A static segment wins over `{id}` whatever the order; it is
        // listed first for the reader.
        .route("/v1/events/suggest", get(catalog::suggest_events))
        .route(
            "/v1/events/{id}",
            get(catalog::event).patch(catalog::patch_event),
        )
        .route("/v1/events/{id}/shows", post(catalog::create_show))
        .route(
            "/v1/shows/{id}",
            get(catalog::show).patch(catalog::patch_show),
        )
        .route("/v1/shows/{id}/seats", get(catalog::seat_map))
        .route("/v1/shows/{id}/seats/stream", get(seat_stream::seat_stream))
        .route("/v1/shows/{id}/sales", get(catalog::sales))
        .route("/v1/shows/{id}/queue", post(queue::join_queue))
        .route("/v1/shows/{id}/queue/challenge", get(queue::challenge))
        .route("/v1/shows/{id}/queue/{ticket_id}", get(queue::queue_ticket))
        .route(
            "/v1/shows/{id}/queue/{ticket_id}/stream",
            get(queue::queue_ticket_stream),
        )
        .route("/v1/holds", post(booking::create_hold))
        .route(
            "/v1/holds/{id}",
            get(booking::hold).delete(booking::release_hold),
        )
        .route(
            "/v1/bookings",
            post(booking::create_booking).get(booking::list_bookings),
        )
        .route("/v1/bookings/{id}", get(booking::booking))
        .route("/v1/bookings/{id}/cancel", post(booking::cancel_booking))
        .route("/v1/checkin", post(booking::check_in))
        .route("/v1/bookings/{id}/tickets.pdf", get(booking::tickets_pdf))
        .route("/v1/tickets/public-key", get(booking::ticket_public_key))
        .route("/v1/tickets/{id}/qr.png", get(booking::ticket_qr_png))
        .route("/v1/audit", get(booking::audit))
        .route("/v1/sandbox/charges", get(booking::sandbox_charges))
        .route("/v1/payments/webhooks/{gateway}", post(payments::webhook))
        .route(
            "/v1/webhooks",
            post(webhooks_out::create_subscription).get(webhooks_out::list_subscriptions),
        )
        .route(
            "/v1/webhooks/{id}",
            get(webhooks_out::subscription)
                .patch(webhooks_out::patch_subscription)
                .delete(webhooks_out::delete_subscription),
        )
        .route(
            "/v1/webhooks/{id}/deliveries",
            get(webhooks_out::deliveries),
        )
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery_id}",
            get(webhooks_out::delivery),
        )
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
            post(webhooks_out::retry_delivery),
        )
        // Matched routes only: requests are classified by the route's pattern.
        .route_layer(limits)
        .merge(pages::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_SIZE_MAX_BYTES))
        .with_state(state);
    api.layer(middleware::from_fn_with_state(timeout, timeout_layer))
        .layer(middleware::from_fn(limit_announced_body))
        .layer(middleware::from_fn(problem_for_plain_rejections))
        .layer(middleware::from_fn(record_metrics))
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(TraceLayer::new_for_http()),
        )
}
