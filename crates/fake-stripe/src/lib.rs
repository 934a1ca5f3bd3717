//! A fake Stripe for tests: the subset of Stripe's HTTP API that the `stripe`
//! payment gateway speaks, served on `127.0.0.1:0` inside the test process,
//! with faults a test can switch on through the [`FakeStripe`] handle.
//!
//! # Layout
//! - this module: [`FakeStripe`] (start, faults, what was charged), the
//!   server loop (one hyper connection per task, so that a fault can cut a
//!   connection without answering).
//! - [`api`]: the routes — `POST /v1/payment_intents` (with Stripe's
//!   `Idempotency-Key` replay), `GET /v1/payment_intents/search`,
//!   `POST /v1/refunds` — and the ledger behind them.
//! - [`webhook`]: signed webhook events (`Stripe-Signature`) sent to a
//!   configured endpoint after a capture ([`WebhookMode`]) or on demand.
//!
//! Test tokens: `tok_chargeDeclined` and `tok_declined` are declined (402
//! `card_error`), every other `tok_…` succeeds.
//!
//! Faults happen in front of the API, like a proxy or an outage before
//! Stripe's idempotency layer: a faulted request is not stored for replay
//! (Stripe itself replays a stored 500 to the same key; ADR 0017 says why our
//! retries still help), except [`Fault::DropResponse`], which lets the
//! request execute and only loses its answer, and [`Fault::CaptureThenHang`],
//! which lets it execute and then never answers.

pub mod api;
pub mod webhook;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tower::ServiceExt;

pub use api::{Charge, Refund};
pub use webhook::{Signing, WebhookDelivery, WebhookMode};

/// The pause after a failed `accept` before the next.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(10);
/// How often `wait_for_webhook_deliveries` looks.
const WEBHOOK_POLL_PAUSE: Duration = Duration::from_millis(20);

/// What the fake does to one request instead of (or besides) answering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Waits this long, then answers normally (a slow Stripe).
    Delay(Duration),
    /// Answers 500 `api_error` without doing anything.
    ServerError,
    /// Never answers (the client's timeout has to end it); does nothing.
    Hang,
    /// Does the work (a charge is captured), then closes the connection
    /// without answering: the client cannot know it was charged.
    DropResponse,
    /// Does the work (a charge is captured), then never answers and keeps
    /// the connection open: the client is stuck between charge and commit
    /// until its own timeout, or until it is killed. Only a charge
    /// (`POST /v1/payment_intents`) takes it from the queue; other requests
    /// pass it by, so that a look-up cannot use up the fault meant for the
    /// charge after it.
    CaptureThenHang,
}

/// A running fake Stripe; it stops when dropped.
pub struct FakeStripe {
    url: String,
    state: Arc<FakeState>,
    server: tokio::task::JoinHandle<()>,
}

struct FakeState {
    secret_key: String,
    faults: Mutex<Faults>,
    ledger: Mutex<api::Ledger>,
    webhooks: Mutex<webhook::WebhookSettings>,
    /// Sends the webhooks.
    client: reqwest::Client,
}

#[derive(Default)]
struct Faults {
    /// One-shot faults, for the next requests in order.
    queued: VecDeque<Fault>,
    /// For every request after the queue is empty, until cleared.
    standing: Option<Fault>,
    requests: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeStripe {
    /// Starts a fake Stripe that accepts the secret key `secret_key`.
    pub async fn start(secret_key: &str) -> FakeStripe {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Stripe to a free port");
        let address = listener.local_addr().expect("local address");
        let state = Arc::new(FakeState {
            secret_key: secret_key.to_string(),
            faults: Mutex::new(Faults::default()),
            ledger: Mutex::new(api::Ledger::default()),
            webhooks: Mutex::new(webhook::WebhookSettings::default()),
            client: reqwest::Client::new(),
        });
        let router = api::router(state.clone()).layer(axum::middleware::from_fn_with_state(
            state.clone(),
            apply_fault,
        ));
        let server = tokio::spawn(serve(listener, router));
        FakeStripe {
            url: format!("http://{address}"),
            state,
            server,
        }
    }

    /// The API base, e.g. `http://127.0.0.1:41234` (for `BOXOFFICE_STRIPE_API_BASE`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next `times` requests (of any route) suffer `fault`, after the
    /// faults queued before.
    pub fn push_fault(&self, fault: Fault, times: usize) {
        let mut faults = lock(&self.state.faults);
        for _ in 0..times {
            faults.queued.push_back(fault);
        }
    }

    /// Every request suffers `fault` (once the queue is empty) until
    /// `set_standing_fault(None)`: an outage.
    pub fn set_standing_fault(&self, fault: Option<Fault>) {
        lock(&self.state.faults).standing = fault;
    }

    /// Requests received so far, faulted ones included.
    pub fn requests(&self) -> u64 {
        lock(&self.state.faults).requests
    }

    /// Every captured charge (one per succeeded payment intent; a replayed
    /// request is not a new charge).
    pub fn charges(&self) -> Vec<Charge> {
        lock(&self.state.ledger).charges.clone()
    }

    pub fn refunds(&self) -> Vec<Refund> {
        lock(&self.state.ledger).refunds.clone()
    }

    /// Where webhooks go (e.g. `http://127.0.0.1:8080/v1/payments/webhooks/stripe`)
    /// and the secret they are signed with.
    pub fn set_webhook_endpoint(&self, url: &str, secret: &str) {
        lock(&self.state.webhooks).endpoint = Some((url.to_string(), secret.to_string()));
    }

    /// When `payment_intent.succeeded` is sent after a capture (from the
    /// next capture on).
    pub fn set_webhook_mode(&self, mode: WebhookMode) {
        lock(&self.state.webhooks).mode = mode;
    }

    /// Sends `event` (see [`webhook::event`]) now, signed as `signing` says.
    pub async fn send_event(&self, event: &serde_json::Value, signing: Signing) -> WebhookDelivery {
        webhook::deliver(&self.state, event, signing).await
    }

    /// The payment intent of the captured charge for `hold_id`, as stored.
    pub fn intent_of_hold(&self, hold_id: &str) -> Option<serde_json::Value> {
        lock(&self.state.ledger).intent_of_hold(hold_id)
    }

    /// Sends a new `payment_intent.succeeded` event (a fresh event ID) for
    /// the captured charge of `hold_id`; `None` when there is none.
    pub async fn send_succeeded_for_hold(&self, hold_id: &str) -> Option<WebhookDelivery> {
        let intent = self.intent_of_hold(hold_id)?;
        let event = webhook::event("payment_intent.succeeded", intent);
        Some(webhook::deliver(&self.state, &event, Signing::Valid).await)
    }

    /// Every webhook delivery so far, in order.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        lock(&self.state.webhooks).deliveries.clone()
    }

    /// Waits until at least `count` deliveries were made (or `timeout`
    /// passed); returns them.
    pub async fn wait_for_webhook_deliveries(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<WebhookDelivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let deliveries = self.webhook_deliveries();
            if deliveries.len() >= count || tokio::time::Instant::now() >= deadline {
                return deliveries;
            }
            tokio::time::sleep(WEBHOOK_POLL_PAUSE).await;
        }
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        // Aborting the loop drops its connection tasks too (a JoinSet).
        self.server.abort();
    }
}

impl FakeState {
    fn next_fault(&self, is_charge: bool) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        faults.requests += 1;
        if !is_charge && faults.queued.front() == Some(&Fault::CaptureThenHang) {
            return faults.standing;
        }
        faults.queued.pop_front().or(faults.standing)
    }
}

/// Cuts the connection its request came on (see [`Fault::DropResponse`]).
#[derive(Clone)]
struct ConnectionCutter(Arc<Notify>);

async fn apply_fault(
    State(state): State<Arc<FakeState>>,
    request: Request,
    next: Next,
) -> Response {
    let is_charge = request.method() == axum::http::Method::POST
        && request.uri().path() == api::PAYMENT_INTENTS_PATH;
    match state.next_fault(is_charge) {
        None => next.run(request).await,
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(Fault::ServerError) => api::stripe_error(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            None,
            "fake Stripe: injected server error",
        )
        .into_response(),
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::DropResponse) => {
            let cutter = request.extensions().get::<ConnectionCutter>().cloned();
            let _lost = next.run(request).await;
            if let Some(ConnectionCutter(cut)) = cutter {
                cut.notify_one();
            }
            std::future::pending().await
        }
        Some(Fault::CaptureThenHang) => {
            let _unanswered = next.run(request).await;
            std::future::pending().await
        }
    }
}

/// Accepts connections and serves each with HTTP/1.1 in a task of its own,
/// racing it against its [`ConnectionCutter`]: dropping the connection's
/// future closes the socket without a response.
async fn serve(listener: TcpListener, router: Router) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            // Out of file descriptors or the like: do not spin.
            tokio::time::sleep(ACCEPT_RETRY_PAUSE).await;
            continue;
        };
        while connections.try_join_next().is_some() {}
        let router = router.clone();
        connections.spawn(async move {
            let cut = Arc::new(Notify::new());
            let cutter = ConnectionCutter(cut.clone());
            let service =
                hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(cutter.clone());
                    router.clone().oneshot(request.map(axum::body::Body::new))
                });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = cut.notified() => {}
            }
        });
    }
}
