//! The persistence port of boxoffice and its SQLite and PostgreSQL adapters.
//!
//! # Layout
//! - [`records`]: plain data crossing the port.
//! - the `*Store` traits below: one per area, each method a use case that runs
//!   in one transaction. [`Store`] is all of them together.
//! - [`SqlStore`] (`db.rs` plus one module per area): the adapter. Both
//!   backends share its SQL through sqlx's Any driver; `db.rs` holds what
//!   differs (URL parsing, pragmas, single-writer lock, migrations).
//!
//! Every invariant of DESIGN.md is enforced inside a transaction here, with
//! conditional updates and constraints — never a read followed by a separate
//! write — and every state change of a seat, hold, booking or payment writes
//! its audit record in that same transaction.

mod audit;
mod batch;
mod bookings;
mod catalog;
pub mod changes;
pub mod db;
pub mod error;
mod feed;
mod holds;
mod idempotency;
mod outbox;
mod outgoing_webhooks;
mod queue;
pub mod records;
mod sandbox;
mod search;
mod settings;
mod users;
mod webhooks;

use async_trait::async_trait;
use boxoffice_domain::waiting_room::RoomConfig;
use boxoffice_domain::{
    BookingId, EventId, HoldId, QueueTicketId, Role, ShowId, TicketId, UserId, VenueId, VenueLayout,
};
use chrono::{DateTime, Utc};

pub use changes::{
    ChangeListener, FeedEvent, InventorySnapshot, SeatChange, ShowChange, StandingHoldChange,
};
pub use db::{parse_database_url, Backend, SqlStore, StoreConfig, POOL_SIZE_DEFAULT};
pub use error::StoreError;
pub use outgoing_webhooks::{
    DueWebhookDelivery, OutgoingWebhookStore, WebhookAttemptOutcome, WebhookAttemptRecord,
    WebhookDeliveryRecord, WebhookDeliveryStatus, WebhookSubscriptionPatch,
    WebhookSubscriptionRecord,
};
pub use records::*;
pub use search::{EVENTS_BY_IDS_MAX, SEARCH_PAGE_EVENTS_MAX};

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// Succeeds when the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Returns the stored value of `key`, storing `value` first if there is
    /// none (race-safe: every node ends up with the same secret).
    async fn setting_get_or_insert(&self, key: &str, value: &str) -> StoreResult<String>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// `Conflict` when the e-mail is taken.
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn user_by_id(&self, id: &UserId) -> StoreResult<Option<UserRecord>>;
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;
    async fn list_users(
        &self,
        email: Option<&str>,
        page: &PageRequest,
    ) -> StoreResult<Page<UserRecord>>;
    async fn update_user_role(&self, id: &UserId, role: Role) -> StoreResult<Option<UserRecord>>;
}

#[async_trait]
pub trait CatalogStore: Send + Sync {
    async fn insert_venue(&self, venue: &VenueRecord) -> StoreResult<()>;
    async fn venue(&self, id: &VenueId) -> StoreResult<Option<VenueRecord>>;
    async fn list_venues(&self, page: &PageRequest) -> StoreResult<Page<VenueSummary>>;
    async fn insert_event(&self, event: &EventRecord) -> StoreResult<()>;
    /// Returns false when there is no such event.
    async fn update_event(&self, event: &EventRecord) -> StoreResult<bool>;
    async fn event(&self, id: &EventId) -> StoreResult<Option<EventRecord>>;
    async fn list_events(
        &self,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<EventRecord>>;
    /// The events of `ids` that exist, in no particular order (at most
    /// `EVENTS_BY_IDS_MAX` ids).
    async fn events_by_ids(&self, ids: &[EventId]) -> StoreResult<Vec<EventRecord>>;
    /// Events with their shows and venues, for the search index.
    async fn search_documents(&self, scope: SearchScope<'_>) -> StoreResult<Vec<SearchDocument>>;
    /// Creates the show and its whole inventory (one row per seat, one per
    /// standing section) in one transaction.
    async fn insert_show(
        &self,
        show: &ShowRecord,
        layout: &VenueLayout,
        actor: &UserId,
    ) -> StoreResult<()>;
    async fn show(&self, id: &ShowId) -> StoreResult<Option<ShowRecord>>;
    async fn shows_of_event(&self, event_id: &EventId) -> StoreResult<Vec<ShowRecord>>;
    async fn update_show(
        &self,
        id: &ShowId,
        patch: &ShowPatch,
        actor: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ShowRecord>>;
}

/// Why a hold cannot move to `PAYING`.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentStartRejection {
    NotFound,
    Expired,
    NotActive,
}

/// How a payment attempt ended without a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentAbort {
    /// The card was declined: the hold is released at once.
    Declined,
    /// The gateway failed or timed out: the hold goes back to `ACTIVE` (or
    /// `EXPIRED` when its time is up).
    Unavailable,
}

/// A booking to write when its payment was captured.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub booking: BookingRecord,
    pub payment: PaymentRecord,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BookingRejection {
    /// The hold is no longer `PAYING` (reconciliation or another request
    /// finished it).
    HoldNotPaying,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HoldStateRejection {
    NotFound,
    NotActive,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CancelRejection {
    NotFound,
    NotActive,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckinRejection {
    UnknownTicket,
    AlreadyCheckedIn { at: DateTime<Utc> },
    Cancelled,
}

/// The response to store together with an effect.
#[derive(Debug, Clone)]
pub struct IdempotencyCompletion {
    pub scope: IdempotencyScope,
    pub response: StoredResponse,
}

#[async_trait]
pub trait InventoryStore: Send + Sync {
    /// Registers a listener for the changes this node commits (called
    /// synchronously after each commit, in no particular order across
    /// concurrent transactions; versions give the order).
    fn subscribe_changes(&self, listener: std::sync::Arc<dyn ChangeListener>);
    /// The show's current version, or `None` when there is no such show.
    async fn show_version(&self, show_id: &ShowId) -> StoreResult<Option<i64>>;
    /// The show's whole inventory at one version.
    async fn inventory_snapshot(&self, show_id: &ShowId) -> StoreResult<InventorySnapshot>;
    /// Revenue of the show's confirmed bookings in minor units, and its
    /// valid tickets. (Place counts come from the in-memory inventory.)
    async fn sales_totals(&self, show_id: &ShowId) -> StoreResult<(i64, u64)>;
    /// Group commit: decides holds of ONE show in arrival order, each all or
    /// nothing, in one transaction (rows locked in seat-ID order), and writes
    /// the winners. Equivalent to calling `create_hold` for each in turn.
    async fn create_holds_batch(
        &self,
        show_id: &ShowId,
        holds: &[(NewHold, Option<IdempotencyCompletion>)],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Result<HoldRecord, HoldRejection>>>;
    /// All-or-nothing; expires the show's due holds first, so an expired hold
    /// never blocks a new one.
    async fn create_hold(
        &self,
        hold: &NewHold,
        completion: Option<&IdempotencyCompletion>,
    ) -> StoreResult<Result<HoldRecord, HoldRejection>>;
    async fn hold(&self, id: &HoldId) -> StoreResult<Option<HoldRecord>>;
    /// Releases an `ACTIVE` hold of `user` (any user's when `None`).
    async fn release_hold(
        &self,
        id: &HoldId,
        user: Option<&UserId>,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<HoldRecord, HoldStateRejection>>;
    /// Expires up to `limit` due holds; returns them.
    async fn expire_due_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<HoldRecord>>;
    /// Expires those of `ids` that are still `ACTIVE` and due at `now` (the
    /// others were confirmed, released or already expired: left alone).
    async fn expire_holds(
        &self,
        ids: &[HoldId],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<HoldRecord>>;
    /// Every `ACTIVE` hold with its deadline, to fill a node's expiry queue
    /// at start.
    async fn active_hold_deadlines(&self) -> StoreResult<Vec<(HoldId, DateTime<Utc>)>>;
    /// `ACTIVE` → `PAYING`, committed before the gateway is called.
    async fn begin_payment(
        &self,
        id: &HoldId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<HoldRecord, PaymentStartRejection>>;
    /// `PAYING` → `CONFIRMED` with booking, tickets, payment and audit.
    async fn complete_booking(
        &self,
        booking: &NewBooking,
        now: DateTime<Utc>,
        completion: Option<&IdempotencyCompletion>,
    ) -> StoreResult<Result<BookingRecord, BookingRejection>>;
    /// `PAYING` → `RELEASED` (declined) or back to `ACTIVE`/`EXPIRED` (unavailable).
    async fn abort_payment(
        &self,
        id: &HoldId,
        abort: PaymentAbort,
        now: DateTime<Utc>,
        completion: Option<&IdempotencyCompletion>,
    ) -> StoreResult<Option<HoldRecord>>;
    /// Holds in `PAYING` whose payment started before `started_before`.
    async fn holds_in_payment(
        &self,
        started_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<HoldRecord>>;
    async fn booking(&self, id: &BookingId) -> StoreResult<Option<BookingRecord>>;
    async fn booking_of_hold(&self, hold_id: &HoldId) -> StoreResult<Option<BookingRecord>>;
    /// The booking a ticket belongs to.
    async fn booking_of_ticket(&self, ticket_id: &TicketId) -> StoreResult<Option<BookingRecord>>;
    async fn list_bookings(
        &self,
        filter: &BookingFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<BookingRecord>>;
    /// `CONFIRMED` → `CANCELLED`: tickets void, places back on sale, payment refunded.
    async fn cancel_booking(
        &self,
        id: &BookingId,
        actor: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<BookingRecord, CancelRejection>>;
    /// Admits a ticket once, even when two scans race.
    async fn check_in(
        &self,
        ticket_id: &TicketId,
        actor: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<TicketRecord, CheckinRejection>>;
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `scope` for a request whose body hashes to `request_hash`. A
    /// claim left `IN_PROGRESS` since before `stale_before` (its request died
    /// with its server) is taken over.
    async fn claim_idempotency_key(
        &self,
        scope: &IdempotencyScope,
        request_hash: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<IdempotencyClaim>;
    /// Stores a response for a request whose effect (if any) is already committed.
    async fn complete_idempotency_key(&self, completion: &IdempotencyCompletion)
        -> StoreResult<()>;
    /// Forgets a claim whose request failed (5xx answers are not stored).
    async fn abandon_idempotency_key(&self, scope: &IdempotencyScope) -> StoreResult<()>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<AuditRecord>>;
}

/// Storage for the sandbox payment gateway's ledger (the gateway plays a third
/// party, so its writes never join our transactions).
#[async_trait]
pub trait SandboxLedgerStore: Send + Sync {
    /// Records a capture once per idempotency key; returns the charge.
    async fn sandbox_capture(&self, charge: &SandboxCharge) -> StoreResult<SandboxCharge>;
    async fn sandbox_charge_by_key(
        &self,
        idempotency_key: &str,
    ) -> StoreResult<Option<SandboxCharge>>;
    /// Marks a charge refunded; returns it, or `None` when there is none.
    async fn sandbox_refund(&self, idempotency_key: &str) -> StoreResult<Option<SandboxCharge>>;
    async fn sandbox_charges_of_hold(&self, hold_id: &str) -> StoreResult<Vec<SandboxCharge>>;
}

/// The waiting room's shared state (see `boxoffice_domain::waiting_room`):
/// in the database in embedded mode, in Redis when it is configured (the
/// services crate has that adapter). Every method is one atomic step.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Gives the user a place, or returns their live ticket (an admission
    /// that lapsed does not count: the user joins again at the back).
    async fn join_queue(&self, join: &QueueJoin<'_>) -> StoreResult<QueueJoinOutcome>;
    /// A ticket of the show with its room, brought up to date: a newer
    /// configuration applied, the room opened when due, and the admission
    /// instant recorded the first time the frontier is seen past it.
    async fn queue_ticket(
        &self,
        show_id: &ShowId,
        ticket_id: &QueueTicketId,
        config: &RoomConfig,
        now_ms: i64,
    ) -> StoreResult<Option<QueueSnapshot>>;
    /// Applies a show's new settings to its room now (creating the room if
    /// it has none yet), so that the frontier changes pace at this instant.
    async fn configure_queue(
        &self,
        show_id: &ShowId,
        config: &RoomConfig,
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Marks a proof-of-work challenge used; `false` when it already was.
    async fn spend_challenge(
        &self,
        challenge_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool>;
}

/// The transactional outbox's delivery side (rows are written by the use
/// cases above, in their own transactions). Every step is one statement.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Takes up to `limit` due messages, oldest first, for this dispatcher
    /// until `lease_until` (then another may take them again: at least once).
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>>;
    /// Marks these messages delivered, in one statement: a batch's
    /// successes cost one write, not one each (SQLite has one writer).
    async fn outbox_delivered(&self, ids: &[String], now: DateTime<Utc>) -> StoreResult<()>;
    /// A failed attempt: due again at `next_attempt_at`.
    async fn outbox_retry_later(
        &self,
        id: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()>;
    /// No more attempts (the retry window has passed, or it can never work).
    async fn outbox_give_up(&self, id: &str, now: DateTime<Utc>, error: &str) -> StoreResult<()>;
    /// What is waiting, for `/metrics`.
    async fn outbox_backlog(&self) -> StoreResult<OutboxBacklog>;
    /// Every message of a type and channel, oldest first (tests, operators).
    async fn outbox_messages_of_event_type(
        &self,
        event_type: &str,
        channel: &str,
    ) -> StoreResult<Vec<OutboxMessage>>;
}

/// A payment event delivered by a gateway's webhook (recorded once by ID).
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// `stripe`.
    pub gateway: String,
    /// The gateway's event ID (`evt_…`).
    pub event_id: String,
    pub event_type: String,
}

/// What booking a hold whose payment a webhook announced came to.
#[derive(Debug, Clone)]
pub enum PaidHoldOutcome {
    /// The event was processed before: nothing done again.
    Duplicate,
    /// The hold is now booked (it was `PAYING`, `ACTIVE`, or ended with
    /// every place still free).
    Booked(Box<BookingRecord>),
    /// The API or reconciliation had booked it already (event recorded).
    AlreadyConfirmed,
    /// No such hold (event recorded; nothing to book).
    UnknownHold,
    /// The hold changed while we looked (nothing written): look again.
    Raced,
    /// The hold ended and some of its places were sold since, or a refund
    /// of its charge is under way (nothing written): refund the payment.
    PlacesGone,
    /// The hold ended and, with its places, the buyer would now be over the
    /// show's ticket limit (nothing written): refund the payment.
    OverTicketLimit,
}

/// Why a payment that came after its hold ended was refunded (the buyer is
/// told which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateRefundCause {
    PlacesGone,
    TicketLimit,
}

impl LateRefundCause {
    pub fn as_str(self) -> &'static str {
        match self {
            LateRefundCause::PlacesGone => "places_gone",
            LateRefundCause::TicketLimit => "ticket_limit",
        }
    }
}

/// Incoming payment webhooks: every event ID recorded in the transaction of
/// its effect, so a replayed event does nothing again.
#[async_trait]
pub trait PaymentWebhookStore: Send + Sync {
    /// Records an event that has no effect of its own; `false` when it was
    /// recorded before.
    async fn record_webhook_event(
        &self,
        event: &WebhookEvent,
        hold_id: Option<&HoldId>,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Books the hold of a captured payment, whatever state the hold is in
    /// (`PAYING`, `ACTIVE`, or ended with its places still free), in one
    /// transaction with the event's record.
    async fn book_paid_hold(
        &self,
        event: &WebhookEvent,
        booking: &NewBooking,
        now: DateTime<Utc>,
    ) -> StoreResult<PaidHoldOutcome>;
    /// Marks that the hold's charge is being refunded, so that it is never
    /// booked afterwards; `false` when the hold is booked (or unknown).
    async fn claim_refund(&self, hold_id: &HoldId, now: DateTime<Utc>) -> StoreResult<bool>;
    /// After the refund of a late payment: the event, the audit record and
    /// the `payment.refunded` outbox event (`events` channel) in one
    /// transaction; `false` when the event was recorded before.
    async fn record_late_payment_refund(
        &self,
        event: &WebhookEvent,
        hold: &HoldRecord,
        gateway_reference: &str,
        cause: LateRefundCause,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
}

/// The whole persistence port.
pub trait Store:
    SettingsStore
    + UserStore
    + CatalogStore
    + InventoryStore
    + IdempotencyStore
    + AuditStore
    + SandboxLedgerStore
    + QueueStore
    + OutboxStore
    + PaymentWebhookStore
    + OutgoingWebhookStore
{
}

impl<T> Store for T where
    T: SettingsStore
        + UserStore
        + CatalogStore
        + InventoryStore
        + IdempotencyStore
        + AuditStore
        + SandboxLedgerStore
        + QueueStore
        + OutboxStore
        + PaymentWebhookStore
        + OutgoingWebhookStore
{
}
