//! Plain records passed across the store port.

use std::collections::BTreeMap;

use boxoffice_domain::waiting_room::{RoomConfig, RoomState};
use boxoffice_domain::{
    BookingId, BookingStatus, EventId, HoldId, HoldStatus, Money, PaymentId, QueueTicketId, Role,
    SeatId, ShowId, ShowStatus, TicketId, UserId, Venue, VenueId,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    pub role: Role,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct VenueRecord {
    pub id: VenueId,
    pub venue: Venue,
    pub created_at: DateTime<Utc>,
}

/// A venue without its (possibly large) layout, for lists.
#[derive(Debug, Clone)]
pub struct VenueSummary {
    pub id: VenueId,
    pub name: String,
    pub city: String,
    pub address: String,
    pub timezone: String,
    pub seat_count: u64,
    pub standing_capacity: u64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: EventId,
    pub title: String,
    pub description: String,
    pub performer: String,
    pub genre: String,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Filters of `GET /v1/events`. The store takes `query` as a
/// case-insensitive substring; the service answers queries with text from
/// its search index instead (`services::search`) and keeps this only for
/// the other filters. `city`, `from` and `to` must hold for one show that
/// is not `CANCELLED`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub query: Option<String>,
    pub city: Option<String>,
    pub genre: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// What the search index needs of one event: the event and its shows, each
/// with its venue's name and city.
#[derive(Debug, Clone)]
pub struct SearchDocument {
    pub event: EventRecord,
    /// In order of `starts_at`, cancelled ones included.
    pub shows: Vec<SearchShow>,
}

impl SearchDocument {
    /// The latest change of the event or one of its shows.
    pub fn changed_at(&self) -> DateTime<Utc> {
        self.shows
            .iter()
            .map(|show| show.updated_at)
            .fold(self.event.updated_at, DateTime::max)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchShow {
    pub id: ShowId,
    pub starts_at: DateTime<Utc>,
    pub status: ShowStatus,
    pub venue_name: String,
    pub city: String,
    pub updated_at: DateTime<Utc>,
}

/// Which events [`crate::CatalogStore::search_documents`] returns.
#[derive(Debug, Clone, Copy)]
pub enum SearchScope<'a> {
    /// Every event, a page at a time (building the index): up to `limit`
    /// events with IDs after `after`, by ID.
    All {
        after: Option<&'a EventId>,
        limit: u32,
    },
    /// Events whose row, or one of whose shows' rows, has an `updated_at`
    /// at or after this time (another node's creates and updates).
    ChangedSince(DateTime<Utc>),
    /// One event (this node's own change).
    Event(&'a EventId),
}

/// Stored as JSON in the show row; fields added later default when read
/// from older rows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WaitingRoomSettings {
    pub enabled: bool,
    pub admit_per_minute: u32,
    /// Admission stopped by the organizer; the queue keeps its order.
    #[serde(default)]
    pub paused: bool,
    /// Leading zero bits of the proof of work asked on joining; 0 = none.
    #[serde(default)]
    pub pow_difficulty: u8,
}

impl Default for WaitingRoomSettings {
    fn default() -> Self {
        WaitingRoomSettings {
            enabled: false,
            admit_per_minute: 2000,
            paused: false,
            pow_difficulty: 0,
        }
    }
}

/// A place in a show's waiting room, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTicketRecord {
    pub id: QueueTicketId,
    pub show_id: ShowId,
    pub user_id: UserId,
    /// `None` while in the pre-queue before the opening.
    pub place: Option<u64>,
    pub joined_at_ms: i64,
    pub admitted_at_ms: Option<i64>,
}

/// A ticket together with its room, read in one atomic step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSnapshot {
    pub room: RoomState,
    pub ticket: QueueTicketRecord,
}

/// A request to join a show's waiting room.
#[derive(Debug, Clone)]
pub struct QueueJoin<'a> {
    pub show_id: &'a ShowId,
    pub user_id: &'a UserId,
    /// The ID of the ticket if a new one is made.
    pub new_ticket_id: &'a QueueTicketId,
    pub config: RoomConfig,
    /// Used when the user lands in the pre-queue.
    pub pre_queue_key: i64,
    pub now_ms: i64,
    pub admission_ttl_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueJoinOutcome {
    Joined(QueueSnapshot),
    /// The user already had a live ticket: this one.
    Existing(QueueSnapshot),
}

#[derive(Debug, Clone)]
pub struct ShowRecord {
    pub id: ShowId,
    pub event_id: EventId,
    pub venue_id: VenueId,
    pub starts_at: DateTime<Utc>,
    pub sales_start: DateTime<Utc>,
    pub prices: BTreeMap<String, Money>,
    pub hold_ttl_seconds: u32,
    pub max_tickets_per_user: u32,
    pub waiting_room: WaitingRoomSettings,
    pub status: ShowStatus,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields `PATCH /v1/shows/{id}` may change; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ShowPatch {
    pub status: Option<ShowStatus>,
    pub prices: Option<BTreeMap<String, Money>>,
    pub sales_start: Option<DateTime<Utc>>,
    pub hold_ttl_seconds: Option<u32>,
    pub max_tickets_per_user: Option<u32>,
    pub waiting_room: Option<WaitingRoomSettings>,
}

/// One held or booked seat with the price it was sold at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeldSeat {
    pub seat_id: SeatId,
    pub section: String,
    pub category: String,
    pub price: Money,
}

/// Places of one standing section in a hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeldStanding {
    pub section: String,
    pub category: String,
    pub quantity: u32,
    pub unit_price: Money,
}

/// What a hold (and later its booking) contains.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct HoldItems {
    pub seats: Vec<HeldSeat>,
    pub standing: Vec<HeldStanding>,
}

impl HoldItems {
    pub fn ticket_count(&self) -> u32 {
        let standing: u32 = self.standing.iter().map(|s| s.quantity).sum();
        self.seats.len() as u32 + standing
    }
}

#[derive(Debug, Clone)]
pub struct HoldRecord {
    pub id: HoldId,
    pub show_id: ShowId,
    pub user_id: UserId,
    pub status: HoldStatus,
    pub items: HoldItems,
    pub total: Money,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub payment_started_at: Option<DateTime<Utc>>,
    pub booking_id: Option<BookingId>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A hold the service has resolved to concrete seats and prices.
#[derive(Debug, Clone)]
pub struct NewHold {
    pub id: HoldId,
    pub show_id: ShowId,
    pub user_id: UserId,
    pub items: HoldItems,
    pub total: Money,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub max_tickets_per_user: u32,
}

/// Why the store refused a hold.
#[derive(Debug, Clone, PartialEq)]
pub enum HoldRejection {
    SeatsUnavailable {
        seat_ids: Vec<SeatId>,
    },
    StandingUnavailable {
        section: String,
        available: u32,
    },
    TicketLimitExceeded {
        limit: u32,
        already: u32,
        requested: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketStatus {
    Valid,
    Cancelled,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Valid => "VALID",
            TicketStatus::Cancelled => "CANCELLED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TicketRecord {
    pub id: TicketId,
    pub booking_id: BookingId,
    pub show_id: ShowId,
    pub seat_id: Option<SeatId>,
    pub section: String,
    pub code: String,
    pub status: TicketStatus,
    pub checked_in_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct PaymentRecord {
    pub id: PaymentId,
    pub hold_id: HoldId,
    pub gateway: String,
    pub gateway_reference: String,
    pub amount: Money,
    pub refunded: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct BookingRecord {
    pub id: BookingId,
    pub hold_id: HoldId,
    pub show_id: ShowId,
    pub user_id: UserId,
    pub status: BookingStatus,
    pub items: HoldItems,
    pub total: Money,
    pub payment_id: PaymentId,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub tickets: Vec<TicketRecord>,
}

/// Filters of the admin booking list.
#[derive(Debug, Clone, Default)]
pub struct BookingFilter {
    pub user_id: Option<UserId>,
    pub show_id: Option<ShowId>,
}

/// Seat status as the seat map shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeatStatus {
    Available,
    Held,
    Booked,
}

impl SeatStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SeatStatus::Available => "AVAILABLE",
            SeatStatus::Held => "HELD",
            SeatStatus::Booked => "BOOKED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingState {
    pub section: String,
    pub category: String,
    pub capacity: u32,
    pub held: u32,
    pub booked: u32,
}

impl StandingState {
    pub fn available(&self) -> u32 {
        self.capacity.saturating_sub(self.held + self.booked)
    }
}

/// An audit record to write in the same transaction as the change it describes.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub action: &'static str,
    pub actor_user_id: Option<UserId>,
    pub show_id: Option<ShowId>,
    pub hold_id: Option<HoldId>,
    pub booking_id: Option<BookingId>,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub id: String,
    pub at: DateTime<Utc>,
    pub action: String,
    pub actor_user_id: Option<String>,
    pub show_id: Option<String>,
    pub hold_id: Option<String>,
    pub booking_id: Option<String>,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub show_id: Option<String>,
    pub booking_id: Option<String>,
    pub user_id: Option<String>,
}

/// A page request: `after` is the opaque position returned as `next_cursor`.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Who asks for an idempotent operation, on which route, with which key.
#[derive(Debug, Clone)]
pub struct IdempotencyScope {
    pub user_id: UserId,
    pub route: String,
    pub key: String,
}

/// A response to store with the effect, for replays.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// The outcome of claiming an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub enum IdempotencyClaim {
    /// This request owns the key now and must complete or abandon it.
    Claimed,
    /// As `Claimed`, but the key was left `IN_PROGRESS` by a request that died
    /// (its server crashed): its effect may have been finished by recovery.
    TakenOver,
    /// The key was used with this body before; answer with the stored response.
    Replay(StoredResponse),
    /// The key was used with another body.
    Mismatch,
    /// A request with this key is still running.
    InProgress,
}

/// A charge in the sandbox gateway's own ledger.
#[derive(Debug, Clone)]
pub struct SandboxCharge {
    pub id: String,
    pub hold_id: String,
    pub idempotency_key: String,
    pub amount: Money,
    pub refunded: bool,
    pub created_at: DateTime<Utc>,
}

/// Outbox channels. `email` and `sms` go to the buyer; `events` to NATS when
/// it is configured; `webhooks` to the outgoing-webhook subscriptions.
pub const OUTBOX_CHANNEL_EMAIL: &str = "email";
pub const OUTBOX_CHANNEL_EVENTS: &str = "events";
/// A text message to the buyer's phone, when they gave one.
pub const OUTBOX_CHANNEL_SMS: &str = "sms";
/// Fanned out to the outgoing-webhook subscriptions that want the event.
pub const OUTBOX_CHANNEL_WEBHOOKS: &str = "webhooks";

/// A domain event to announce, written with the change (see `write_outbox`).
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub event_type: &'static str,
    pub channels: &'static [&'static str],
    /// JSON object; `event_id`, `type` and `occurred_at` are added.
    pub payload: serde_json::Value,
}

/// One delivery of an event to a channel, as the dispatcher sees it.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub channel: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// Including the one in progress.
    pub attempts: u32,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct OutboxBacklog {
    pub pending: u64,
    pub oldest_created_at: Option<DateTime<Utc>>,
    pub failed: u64,
}
