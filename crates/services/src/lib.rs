//! Use cases of boxoffice: accounts, catalog, the buy flow, payments, and the
//! background work (expiry sweeper, payment reconciliation).
//!
//! # Layout
//! - [`auth`]: register, login, JWT access tokens, roles.
//! - [`catalog`]: venues, events, shows, seat maps, sales.
//! - [`booking`]: hold, release, confirm, cancel, check-in, expiry, reconciliation.
//! - [`inventory`]: the in-memory inventory of each show (seat maps,
//!   best-available, fast reject), fed by the store's change feed.
//! - [`batcher`]: the per-show group commit of holds.
//! - [`expiry`]: the per-node timer that expires holds at their deadline.
//! - [`seat_locks`]: the `SeatLocks` port (seat soft-locks across nodes) and
//!   its Redis adapter.
//! - [`rate_limit`]: the `RateLimiter` port (GCRA per key), its in-process
//!   and Redis adapters, and `RateLimits`, the limits per class and scope.
//! - [`payments`]: the `PaymentGateway` port, the `sandbox` and `stripe`
//!   gateways, and the guard (timeouts, retries, circuit breaker) in front.
//! - [`search`]: full-text, typo-tolerant event search and type-ahead from
//!   an in-process tantivy index, kept current on every node.
//! - [`waiting_room`]: the virtual queue of a show, admission tokens,
//!   proof of work; state in the store or in Redis.
//! - [`outgoing_webhooks`]: the admin's webhook subscriptions and their
//!   delivery log (the sender: `notifications::webhooks_out`).
//! - [`views`]: the JSON shapes of API.md returned by the use cases.
//! - [`error`]: `ServiceError`, one variant per answer of API.md.
//!
//! Services take their ports (`Store`, `PaymentGateway`, `Clock`, `SeatLocks`,
//! `RateLimiter`) as trait objects so that tests and other deployments can
//! swap adapters.

pub mod auth;
pub mod batcher;
pub mod booking;
mod breaker;
pub mod catalog;
pub mod clock;
pub mod display;
pub mod error;
pub mod expiry;
pub mod inventory;
pub mod notifications;
pub mod outgoing_webhooks;
pub mod payments;
pub mod rate_limit;
mod redis_connection;
pub mod search;
pub mod seat_locks;
pub mod secrets;
pub mod tickets;
pub mod views;
pub mod waiting_room;

use std::sync::Arc;
use std::time::Duration;

use boxoffice_store::Store;
use tokio::sync::watch;

pub use auth::{AuthService, AuthUser};
pub use batcher::{BatchLimits, HoldStrategy};
pub use booking::{BookingConfig, BookingService, ErrorRenderer, IdempotencyRequest, Replayable};
pub use catalog::CatalogService;
pub use clock::{Clock, SystemClock};
pub use error::{ServiceError, ServiceResult};
pub use expiry::HoldExpiryQueue;
pub use payments::{
    GuardPolicy, GuardedGateway, PaymentGateway, SandboxGateway, StripeConfig, StripeGateway,
};
pub use rate_limit::{
    RateLimitClass, RateLimitConfig, RateLimitScope, RateLimited, RateLimiter, RateLimits,
    RedisRateLimiter,
};
pub use seat_locks::{LockOutcome, RedisSeatLocks, SeatLockError, SeatLocks};

/// Everything the services need besides the store.
#[derive(Debug, Clone, Default)]
pub struct ServicesConfig {
    pub booking: BookingConfig,
    /// Delay of each sandbox gateway call, to simulate a real provider.
    pub sandbox_latency: Duration,
    /// Stripe instead of the sandbox gateway.
    pub stripe: Option<StripeConfig>,
    /// Stripe's webhook signing secret (`whsec_…`): enables
    /// `POST /v1/payments/webhooks/stripe`.
    pub stripe_webhook_secret: Option<String>,
    /// The circuit breaker in front of the gateway (the attempt timeout is
    /// `booking.payment_timeout`).
    pub payment_breaker: PaymentBreakerConfig,
    /// HS256 secret for access tokens; generated and kept in the database when absent.
    pub jwt_secret: Option<String>,
    /// Hex Ed25519 seed for ticket codes; generated and kept in the database when absent.
    pub ticket_signing_seed: Option<String>,
    /// Seat soft-locks shared by the nodes (Redis); without them each node
    /// filters only with what its own inventory knows.
    pub seat_locks: Option<Arc<dyn SeatLocks>>,
    /// The limits per class and scope, and for failed logins.
    pub rate_limits: RateLimitConfig,
    /// Where their state lives; `None` keeps it in this process. A shared
    /// (Redis) limiter is wrapped so that its failures fall back to this
    /// process.
    pub rate_limiter: Option<Arc<dyn RateLimiter>>,
    pub waiting_room: waiting_room::WaitingRoomConfig,
    /// Where the waiting room keeps its state when not in the database
    /// (Redis, so that all nodes share it fast).
    pub queue_store: Option<SharedQueueStore>,
}

/// When the circuit breaker in front of the payment gateway opens and for
/// how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentBreakerConfig {
    pub failures_to_open: u32,
    pub cool_down: Duration,
}

impl Default for PaymentBreakerConfig {
    fn default() -> Self {
        PaymentBreakerConfig {
            failures_to_open: payments::guard::BREAKER_FAILURES_TO_OPEN_DEFAULT,
            cool_down: Duration::from_millis(
                payments::guard::BREAKER_COOL_DOWN_MILLISECONDS_DEFAULT,
            ),
        }
    }
}

impl ServicesConfig {
    /// The guard's bounds: the attempt timeout of the booking config and the
    /// breaker of this one.
    pub fn payment_guard_policy(&self) -> GuardPolicy {
        GuardPolicy {
            breaker_failures_to_open: self.payment_breaker.failures_to_open,
            breaker_cool_down: self.payment_breaker.cool_down,
            ..GuardPolicy::new(self.booking.payment_timeout)
        }
    }
}

/// A queue store other than the database (Redis).
#[derive(Clone)]
pub struct SharedQueueStore(pub Arc<dyn boxoffice_store::QueueStore>);

impl std::fmt::Debug for SharedQueueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedQueueStore")
    }
}

pub struct Services {
    pub store: Arc<dyn Store>,
    pub auth: AuthService,
    pub catalog: Arc<CatalogService>,
    /// The event search index, kept current by [`spawn_background`].
    pub search: Arc<search::EventSearch>,
    pub booking: BookingService,
    pub waiting_room: waiting_room::WaitingRoomService,
    pub rate_limits: Arc<RateLimits>,
    pub outgoing_webhooks: outgoing_webhooks::OutgoingWebhookService,
}

impl Services {
    pub async fn build(
        store: Arc<dyn Store>,
        config: ServicesConfig,
        render_error: ErrorRenderer,
    ) -> ServiceResult<Arc<Services>> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let secrets = secrets::load(store.as_ref(), &config).await?;
        let gateway: Arc<dyn PaymentGateway> = match &config.stripe {
            Some(stripe) => {
                Arc::new(StripeGateway::new(stripe.clone()).map_err(ServiceError::Internal)?)
            }
            None => Arc::new(SandboxGateway::new(
                store.clone(),
                clock.clone(),
                config.sandbox_latency,
            )),
        };
        tracing::info!(gateway = gateway.name(), policy = ?config.payment_guard_policy(), "payment gateway");
        let gateway: Arc<dyn PaymentGateway> =
            Arc::new(GuardedGateway::new(gateway, config.payment_guard_policy()));
        let inventory = inventory::InventoryEngine::new(store.clone());
        let search = Arc::new(search::EventSearch::build(store.clone(), clock.clone()).await?);
        let queue_store: Arc<dyn boxoffice_store::QueueStore> = match &config.queue_store {
            Some(queue_store) => queue_store.0.clone(),
            None => store.clone(),
        };
        let catalog = Arc::new(
            CatalogService::new(store.clone(), clock.clone(), inventory, search.clone())
                .with_queue_store(queue_store.clone()),
        );
        let waiting_room_tokens =
            Arc::new(waiting_room::WaitingRoomTokens::new(&secrets.jwt_secret));
        let waiting_room = waiting_room::WaitingRoomService::new(
            queue_store,
            catalog.clone(),
            clock.clone(),
            waiting_room_tokens.clone(),
            &config.waiting_room,
        );
        let booking = BookingService::new(
            store.clone(),
            clock.clone(),
            gateway,
            catalog.clone(),
            Arc::new(secrets.ticket_signer),
            config.booking.clone(),
            render_error,
        )
        .with_admission_tokens(waiting_room_tokens)
        .with_webhook_secret(config.stripe_webhook_secret.clone());
        let booking = match &config.seat_locks {
            Some(locks) => booking.with_seat_locks(locks.clone()),
            None => booking,
        };
        let rate_limits = Arc::new(match &config.rate_limiter {
            Some(shared) => RateLimits::new(
                config.rate_limits.clone(),
                Arc::new(rate_limit::FailOpenRateLimiter::new(shared.clone())),
            ),
            None => RateLimits::in_process(config.rate_limits.clone()),
        });
        Ok(Arc::new(Services {
            outgoing_webhooks: outgoing_webhooks::OutgoingWebhookService::new(
                store.clone(),
                clock.clone(),
            ),
            auth: AuthService::new(store.clone(), clock, &secrets.jwt_secret)
                .with_login_throttle(rate_limits.clone()),
            store,
            catalog,
            search,
            booking,
            waiting_room,
            rate_limits,
        }))
    }
}

/// Background work of a node.
#[derive(Debug, Clone)]
pub struct BackgroundConfig {
    /// Expire this node's holds by a timer at their deadlines.
    pub expiry_timer: bool,
    /// The safety-net sweep for holds no live node's timer knows.
    pub expiry_sweep_interval: Duration,
    pub reconcile_interval: Duration,
    /// Deliver the outbox (e-mails…) from this node; `None` leaves it to
    /// other nodes.
    pub outbox: Option<notifications::DispatcherConfig>,
    /// Send outgoing webhooks from this node; `None` leaves it to others.
    pub webhooks: Option<notifications::webhooks_out::WebhookSenderConfig>,
}

/// Runs the expiry timer, the expiry sweep, payment reconciliation and the
/// search index's poll until `shutdown` flips. Reconciliation also runs once
/// right away (start-up recovery).
pub fn spawn_background(
    services: Arc<Services>,
    config: BackgroundConfig,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let BackgroundConfig {
        expiry_timer,
        expiry_sweep_interval: expiry_interval,
        reconcile_interval,
        outbox,
        webhooks,
    } = config;
    let webhook_sender = webhooks.and_then(|config| {
        match notifications::webhooks_out::WebhookSender::new(services.store.clone(), config) {
            Ok(sender) => Some(tokio::spawn(sender.run(shutdown.clone()))),
            Err(error) => {
                tracing::error!(%error, "the webhook sender cannot start; deliveries wait");
                None
            }
        }
    });
    let dispatcher = outbox.and_then(|config| {
        match notifications::OutboxDispatcher::new(
            services.store.clone(),
            services.catalog.clone(),
            config,
        ) {
            Ok(dispatcher) => {
                tracing::info!(mail = %dispatcher.describe(), events = %dispatcher.describe_events(), "outbox dispatcher started");
                Some(tokio::spawn(dispatcher.run(shutdown.clone())))
            }
            Err(error) => {
                tracing::error!(%error, "the outbox dispatcher cannot start; e-mails wait in the outbox");
                None
            }
        }
    });
    let timer = expiry_timer.then(|| tokio::spawn(expiry::run(services.clone(), shutdown.clone())));
    let search = tokio::spawn(search::run(services.search.clone(), shutdown.clone()));
    tokio::spawn(async move {
        let mut expiry = tokio::time::interval(expiry_interval.max(Duration::from_millis(50)));
        let mut reconcile =
            tokio::time::interval(reconcile_interval.max(Duration::from_millis(100)));
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = expiry.tick() => {
                    if let Err(error) = services.booking.expire_due_holds().await {
                        tracing::warn!(%error, "expiry sweep failed; retrying next tick");
                    }
                }
                _ = reconcile.tick() => {
                    if let Err(error) = services.booking.reconcile_payments().await {
                        tracing::warn!(%error, "payment reconciliation failed; retrying next tick");
                    }
                }
            }
        }
        if let Some(timer) = timer {
            if let Err(error) = timer.await {
                tracing::warn!(%error, "the expiry timer ended abnormally");
            }
        }
        if let Some(dispatcher) = dispatcher {
            if let Err(error) = dispatcher.await {
                tracing::warn!(%error, "the outbox dispatcher ended abnormally");
            }
        }
        if let Some(sender) = webhook_sender {
            if let Err(error) = sender.await {
                tracing::warn!(%error, "the webhook sender ended abnormally");
            }
        }
        if let Err(error) = search.await {
            tracing::warn!(%error, "the search index poll ended abnormally");
        }
    })
}
