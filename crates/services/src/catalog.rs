//! Venues, events and shows: what organizers set up and buyers browse.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use boxoffice_domain::{
    EventId, FieldError, Money, Role, SectionKind, ShowId, ShowStatus, VenueId, VenueInput,
    VenueLayout,
};
use boxoffice_store::{
    EventFilter, EventRecord, Page, PageRequest, SeatStatus, ShowPatch, ShowRecord, Store,
    VenueRecord, WaitingRoomSettings,
};
use chrono::DurationRound;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::inventory::{InventoryEngine, InventoryView, ShowInventory};
use crate::search::{EventSearch, SearchFilter, SuggestionsView, RESULTS_DEPTH_MAX};
use crate::views::{rfc3339, MoneyView};

pub const TITLE_LENGTH_MAX: usize = 200;
pub const DESCRIPTION_LENGTH_MAX: usize = 5_000;
pub const PERFORMER_LENGTH_MAX: usize = 200;
pub const GENRE_LENGTH_MAX: usize = 50;
pub const TAGS_MAX: usize = 20;
pub const TAG_LENGTH_MAX: usize = 50;
pub const HOLD_TTL_SECONDS_DEFAULT: u32 = 600;
pub const HOLD_TTL_SECONDS_MAX: i64 = 3_600;
pub const MAX_TICKETS_PER_USER_DEFAULT: u32 = 4;
/// A per-buyer limit above this is no limit at all for a flash sale.
pub const MAX_TICKETS_PER_USER_MAX: i64 = 1_000;
/// Admission rate bounds for the waiting room (per minute).
pub const ADMIT_PER_MINUTE_MAX: i64 = 1_000_000;
pub const SEARCH_QUERY_LENGTH_MAX: usize = 200;
/// Cursors of ranked search results: the rank of the next page's first item.
const RANK_CURSOR_PREFIX: &str = "rank:";
/// How long a node trusts its copy of a show row (status, prices, limits):
/// the bound on how late another node's `PATCH` takes effect here.
const SHOW_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// Cached shows at most; past it, expired entries are dropped.
const SHOW_CACHE_ENTRIES_MAX: usize = 10_000;

fn text_error(field: &str, value: &str, min: usize, max: usize, errors: &mut Vec<FieldError>) {
    let length = value.chars().count();
    if length < min
        || length > max
        || value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        errors.push(FieldError {
            field: field.into(),
            message: format!("must be {min} to {max} characters without control characters"),
        });
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub performer: String,
    #[serde(default)]
    pub genre: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EventPatchInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub performer: Option<String>,
    pub genre: Option<String>,
    pub tags: Option<Vec<String>>,
}

fn validate_event(event: &EventRecord) -> ServiceResult<()> {
    let mut errors = Vec::new();
    text_error(
        "title",
        event.title.trim(),
        1,
        TITLE_LENGTH_MAX,
        &mut errors,
    );
    text_error(
        "description",
        &event.description,
        0,
        DESCRIPTION_LENGTH_MAX,
        &mut errors,
    );
    text_error(
        "performer",
        &event.performer,
        0,
        PERFORMER_LENGTH_MAX,
        &mut errors,
    );
    text_error("genre", &event.genre, 0, GENRE_LENGTH_MAX, &mut errors);
    if event.tags.len() > TAGS_MAX {
        errors.push(FieldError {
            field: "tags".into(),
            message: format!("at most {TAGS_MAX} tags"),
        });
    }
    for (index, tag) in event.tags.iter().enumerate() {
        text_error(
            &format!("tags[{index}]"),
            tag,
            1,
            TAG_LENGTH_MAX,
            &mut errors,
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::InvalidRequest { errors })
    }
}

/// `waiting_room` of a show. On create, omitted fields take their
/// defaults; on `PATCH`, omitted fields keep their current values.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitingRoomInput {
    /// Holds need an admission token from the queue (default false).
    pub enabled: Option<bool>,
    /// Buyers let in per minute, 1 to 1,000,000 (default 2000).
    pub admit_per_minute: Option<i64>,
    /// Stop admitting; the queue keeps its order and continues from where
    /// it stopped when resumed (default false).
    pub paused: Option<bool>,
    /// Proof of work on joining: leading zero bits of SHA-256, 0 (off) to 32
    /// (default 0).
    pub pow_difficulty: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowInput {
    pub venue_id: String,
    pub starts_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub prices: BTreeMap<String, Money>,
    pub sales_start: Option<DateTime<Utc>>,
    pub hold_ttl_seconds: Option<i64>,
    pub max_tickets_per_user: Option<i64>,
    pub waiting_room: Option<WaitingRoomInput>,
    pub status: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ShowPatchInput {
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub prices: Option<BTreeMap<String, Money>>,
    pub sales_start: Option<DateTime<Utc>>,
    pub hold_ttl_seconds: Option<i64>,
    pub max_tickets_per_user: Option<i64>,
    pub waiting_room: Option<WaitingRoomInput>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VenueView {
    pub id: String,
    pub name: String,
    pub city: String,
    pub address: String,
    pub timezone: String,
    pub seat_count: u64,
    pub standing_capacity: u64,
    /// The seat layout (detail only).
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sections: Option<serde_json::Value>,
    pub created_at: String,
}

impl VenueView {
    fn of(record: &VenueRecord) -> VenueView {
        let layout = serde_json::to_value(&record.venue.layout).unwrap_or(serde_json::Value::Null);
        VenueView {
            id: record.id.to_string(),
            name: record.venue.name.clone(),
            city: record.venue.city.clone(),
            address: record.venue.address.clone(),
            timezone: record.venue.timezone.clone(),
            seat_count: record.venue.layout.seat_count() as u64,
            standing_capacity: record.venue.layout.standing_capacity(),
            sections: layout.get("sections").cloned(),
            created_at: rfc3339(record.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub title: String,
    pub description: String,
    pub performer: String,
    pub genre: String,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The event's shows (detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shows: Option<Vec<ShowView>>,
}

impl EventView {
    fn of(event: &EventRecord, shows: Option<Vec<ShowView>>) -> EventView {
        EventView {
            id: event.id.to_string(),
            title: event.title.clone(),
            description: event.description.clone(),
            performer: event.performer.clone(),
            genre: event.genre.clone(),
            tags: event.tags.clone(),
            created_at: rfc3339(event.created_at),
            updated_at: rfc3339(event.updated_at),
            shows,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Summary {
    pub available: u64,
    pub held: u64,
    pub booked: u64,
}

/// The event a show belongs to, as shown with the show.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShowEventView {
    pub id: String,
    pub title: String,
    pub performer: String,
    pub genre: String,
}

/// The venue of a show, without its layout (see `GET /v1/venues/{id}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShowVenueView {
    pub id: String,
    pub name: String,
    pub city: String,
    pub address: String,
    pub timezone: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShowView {
    pub id: String,
    pub event_id: String,
    pub venue_id: String,
    pub event: ShowEventView,
    pub venue: ShowVenueView,
    pub starts_at: String,
    pub sales_start: String,
    #[schema(value_type = Object)]
    pub prices: BTreeMap<String, MoneyView>,
    pub hold_ttl_seconds: u32,
    pub max_tickets_per_user: u32,
    #[schema(value_type = Object)]
    pub waiting_room: WaitingRoomSettings,
    /// `ON_SALE`, `PAUSED` or `CANCELLED`.
    pub status: String,
    /// Places of the show, seated and standing.
    pub availability: Summary,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeatView {
    pub id: String,
    pub section: String,
    pub row: String,
    pub number: String,
    pub category: String,
    pub price: MoneyView,
    /// `AVAILABLE`, `HELD` or `BOOKED`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<f64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub accessible: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StandingView {
    pub section: String,
    pub category: String,
    pub capacity: u32,
    pub available: u32,
    pub price: MoneyView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeatMapView {
    pub show_id: String,
    pub version: i64,
    pub seats: Vec<SeatView>,
    pub standing: Vec<StandingView>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SectionSalesView {
    pub section: String,
    pub available: u64,
    pub held: u64,
    pub booked: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SalesView {
    pub show_id: String,
    pub sections: Vec<SectionSalesView>,
    pub revenue: MoneyView,
    pub tickets_sold: u64,
}

pub struct CatalogService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    inventory: Arc<InventoryEngine>,
    /// The full-text index of events (`q`, suggestions).
    search: Arc<EventSearch>,
    /// Venues never change once created, so their parsed layouts are cached.
    layouts: RwLock<HashMap<VenueId, Arc<VenueLayout>>>,
    /// Recently read shows, with when they were read.
    shows: RwLock<HashMap<ShowId, (std::time::Instant, ShowRecord)>>,
    /// The last serialized seat map per show, with its ETag.
    seat_maps: RwLock<HashMap<ShowId, (String, bytes::Bytes)>>,
    /// The waiting rooms' state, told at once when an organizer changes a
    /// show (rate, pause, sales start), so the change takes effect at that
    /// instant and not only at the next join or poll.
    queue: Option<Arc<dyn boxoffice_store::QueueStore>>,
}

pub(crate) fn parse_show_id(id: &str) -> ServiceResult<ShowId> {
    ShowId::parse(id).map_err(|_| ServiceError::NotFound { what: "show" })
}

fn validate_prices(
    prices: &BTreeMap<String, Money>,
    layout: &VenueLayout,
    errors: &mut Vec<FieldError>,
) -> Vec<String> {
    let categories = layout.categories();
    for category in prices.keys() {
        if !categories.contains(category) {
            errors.push(FieldError {
                field: format!("prices.{category}"),
                message: "the venue has no such category".into(),
            });
        }
    }
    let mut currencies: Vec<&str> = prices
        .values()
        .map(|money| money.currency.as_str())
        .collect();
    currencies.sort();
    currencies.dedup();
    if currencies.len() > 1 {
        errors.push(FieldError {
            field: "prices".into(),
            message: "all prices of a show must use one currency".into(),
        });
    }
    categories
        .into_iter()
        .filter(|category| !prices.contains_key(category))
        .collect()
}

fn validate_ttl(value: i64, errors: &mut Vec<FieldError>) -> u32 {
    if !(1..=HOLD_TTL_SECONDS_MAX).contains(&value) {
        errors.push(FieldError {
            field: "hold_ttl_seconds".into(),
            message: format!("must be 1 to {HOLD_TTL_SECONDS_MAX}"),
        });
    }
    u32::try_from(value.clamp(1, HOLD_TTL_SECONDS_MAX)).unwrap_or(HOLD_TTL_SECONDS_DEFAULT)
}

fn validate_max_tickets(value: i64, errors: &mut Vec<FieldError>) -> u32 {
    if !(1..=MAX_TICKETS_PER_USER_MAX).contains(&value) {
        errors.push(FieldError {
            field: "max_tickets_per_user".into(),
            message: format!("must be 1 to {MAX_TICKETS_PER_USER_MAX}"),
        });
    }
    u32::try_from(value.clamp(1, MAX_TICKETS_PER_USER_MAX)).unwrap_or(MAX_TICKETS_PER_USER_DEFAULT)
}

fn validate_waiting_room(
    input: &WaitingRoomInput,
    current: &WaitingRoomSettings,
    errors: &mut Vec<FieldError>,
) -> WaitingRoomSettings {
    let mut settings = current.clone();
    if let Some(enabled) = input.enabled {
        settings.enabled = enabled;
    }
    if let Some(paused) = input.paused {
        settings.paused = paused;
    }
    if let Some(rate) = input.admit_per_minute {
        match u32::try_from(rate) {
            Ok(rate) if (1..=ADMIT_PER_MINUTE_MAX).contains(&i64::from(rate)) => {
                settings.admit_per_minute = rate
            }
            _ => errors.push(FieldError {
                field: "waiting_room.admit_per_minute".into(),
                message: format!("must be 1 to {ADMIT_PER_MINUTE_MAX}"),
            }),
        }
    }
    if let Some(difficulty) = input.pow_difficulty {
        match u8::try_from(difficulty) {
            Ok(bits) if bits <= crate::waiting_room::pow::DIFFICULTY_MAX => {
                settings.pow_difficulty = bits
            }
            _ => errors.push(FieldError {
                field: "waiting_room.pow_difficulty".into(),
                message: format!(
                    "must be 0 (off) to {}",
                    crate::waiting_room::pow::DIFFICULTY_MAX
                ),
            }),
        }
    }
    settings
}

fn parse_status(value: &str, errors: &mut Vec<FieldError>) -> Option<ShowStatus> {
    let status = ShowStatus::parse(value);
    if status.is_none() {
        errors.push(FieldError {
            field: "status".into(),
            message: "must be ON_SALE, PAUSED or CANCELLED".into(),
        });
    }
    status
}

impl CatalogService {
    /// Now, at the precision the store keeps (milliseconds): a record this
    /// node caches right after writing it must read the same as the one
    /// every other read gets from the database.
    fn record_time(&self) -> DateTime<Utc> {
        self.clock
            .now()
            .duration_trunc(chrono::TimeDelta::milliseconds(1))
            .unwrap_or_else(|_| self.clock.now())
    }

    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        inventory: Arc<InventoryEngine>,
        search: Arc<EventSearch>,
    ) -> Self {
        CatalogService {
            store,
            clock,
            inventory,
            search,
            layouts: RwLock::new(HashMap::new()),
            shows: RwLock::new(HashMap::new()),
            seat_maps: RwLock::new(HashMap::new()),
            queue: None,
        }
    }

    pub fn with_queue_store(mut self, queue: Arc<dyn boxoffice_store::QueueStore>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// The show's in-memory inventory.
    pub(crate) async fn inventory(&self, show: &ShowRecord) -> ServiceResult<Arc<ShowInventory>> {
        let layout = self.layout(&show.venue_id).await?;
        self.inventory.show(&show.id, layout).await
    }

    /// The show's in-memory inventory and what it says now.
    pub(crate) async fn inventory_of(
        &self,
        show: &ShowRecord,
    ) -> ServiceResult<(Arc<ShowInventory>, InventoryView)> {
        let inventory = self.inventory(show).await?;
        let view = inventory.view(self.clock.now());
        Ok((inventory, view))
    }

    pub(crate) async fn layout(&self, venue_id: &VenueId) -> ServiceResult<Arc<VenueLayout>> {
        if let Ok(cache) = self.layouts.read() {
            if let Some(layout) = cache.get(venue_id) {
                return Ok(layout.clone());
            }
        }
        let venue = self
            .store
            .venue(venue_id)
            .await?
            .ok_or(ServiceError::NotFound { what: "venue" })?;
        let layout = Arc::new(venue.venue.layout);
        if let Ok(mut cache) = self.layouts.write() {
            cache.insert(venue_id.clone(), layout.clone());
        }
        Ok(layout)
    }

    pub async fn create_venue(
        &self,
        caller: &AuthUser,
        input: VenueInput,
    ) -> ServiceResult<VenueView> {
        caller.require(Role::Admin)?;
        let venue = input
            .validate()
            .map_err(|errors| ServiceError::InvalidRequest { errors })?;
        let now = self.record_time();
        let record = VenueRecord {
            id: crate::new_id!(VenueId, now),
            venue,
            created_at: now,
        };
        self.store.insert_venue(&record).await?;
        Ok(VenueView::of(&record))
    }

    pub async fn venue(&self, id: &str) -> ServiceResult<VenueView> {
        let id = VenueId::parse(id).map_err(|_| ServiceError::NotFound { what: "venue" })?;
        let record = self
            .store
            .venue(&id)
            .await?
            .ok_or(ServiceError::NotFound { what: "venue" })?;
        Ok(VenueView::of(&record))
    }

    pub async fn list_venues(&self, page: &PageRequest) -> ServiceResult<Page<VenueView>> {
        let venues = self.store.list_venues(page).await?;
        Ok(Page {
            items: venues
                .items
                .into_iter()
                .map(|venue| VenueView {
                    id: venue.id.to_string(),
                    name: venue.name,
                    city: venue.city,
                    address: venue.address,
                    timezone: venue.timezone,
                    seat_count: venue.seat_count,
                    standing_capacity: venue.standing_capacity,
                    sections: None,
                    created_at: rfc3339(venue.created_at),
                })
                .collect(),
            next_cursor: venues.next_cursor,
        })
    }

    pub async fn create_event(
        &self,
        caller: &AuthUser,
        input: EventInput,
    ) -> ServiceResult<EventView> {
        caller.require(Role::Admin)?;
        let now = self.record_time();
        let event = EventRecord {
            id: crate::new_id!(EventId, now),
            title: input.title.trim().to_string(),
            description: input.description,
            performer: input.performer.trim().to_string(),
            genre: input.genre.trim().to_string(),
            tags: input
                .tags
                .into_iter()
                .map(|tag| tag.trim().to_string())
                .collect(),
            created_at: now,
            updated_at: now,
        };
        validate_event(&event)?;
        self.store.insert_event(&event).await?;
        self.reindex(&event.id).await;
        Ok(EventView::of(&event, Some(Vec::new())))
    }

    pub async fn update_event(
        &self,
        caller: &AuthUser,
        id: &str,
        patch: EventPatchInput,
    ) -> ServiceResult<EventView> {
        caller.require(Role::Admin)?;
        let id = EventId::parse(id).map_err(|_| ServiceError::NotFound { what: "event" })?;
        let mut event = self
            .store
            .event(&id)
            .await?
            .ok_or(ServiceError::NotFound { what: "event" })?;
        if let Some(title) = patch.title {
            event.title = title.trim().to_string();
        }
        if let Some(description) = patch.description {
            event.description = description;
        }
        if let Some(performer) = patch.performer {
            event.performer = performer.trim().to_string();
        }
        if let Some(genre) = patch.genre {
            event.genre = genre.trim().to_string();
        }
        if let Some(tags) = patch.tags {
            event.tags = tags.into_iter().map(|tag| tag.trim().to_string()).collect();
        }
        event.updated_at = self.record_time();
        validate_event(&event)?;
        if !self.store.update_event(&event).await? {
            return Err(ServiceError::NotFound { what: "event" });
        }
        self.reindex(&id).await;
        self.event(id.as_str()).await
    }

    pub async fn event(&self, id: &str) -> ServiceResult<EventView> {
        let id = EventId::parse(id).map_err(|_| ServiceError::NotFound { what: "event" })?;
        let event = self
            .store
            .event(&id)
            .await?
            .ok_or(ServiceError::NotFound { what: "event" })?;
        let mut shows = Vec::new();
        for show in self.store.shows_of_event(&id).await? {
            shows.push(self.show_view(&show, Some(&event)).await?);
        }
        Ok(EventView::of(&event, Some(shows)))
    }

    /// An event's next show that is not cancelled, for listings: only that
    /// show's view is built (its venue and availability loaded), not all.
    pub async fn next_show(&self, event_id: &str) -> ServiceResult<Option<ShowView>> {
        let id = EventId::parse(event_id).map_err(|_| ServiceError::NotFound { what: "event" })?;
        let now = self.clock.now();
        let next = self
            .store
            .shows_of_event(&id)
            .await?
            .into_iter()
            .filter(|show| show.status != ShowStatus::Cancelled && show.starts_at >= now)
            .min_by_key(|show| show.starts_at);
        match next {
            Some(show) => Ok(Some(self.show_view(&show, None).await?)),
            None => Ok(None),
        }
    }

    /// Tells the search index about this node's change at once, so that the
    /// answer's sender finds it right away. The change is committed either
    /// way; if this fails the index's poll picks it up within a second.
    async fn reindex(&self, event_id: &EventId) {
        if let Err(error) = self.search.refresh_event(event_id).await {
            tracing::warn!(%error, %event_id, "search index not updated at once; the poll will");
        }
    }

    /// `GET /v1/events`: with words in `q`, ranked results from the search
    /// index; without, every event that passes the filters, by ID.
    pub async fn search_events(
        &self,
        filter: EventFilter,
        page: &PageRequest,
    ) -> ServiceResult<Page<EventView>> {
        match filter.query.as_deref() {
            Some(text) if !text.trim().is_empty() => self.search_text(text, &filter, page).await,
            _ => {
                let filter = EventFilter {
                    query: None,
                    ..filter
                };
                let events = self.store.list_events(&filter, page).await?;
                Ok(Page {
                    items: events
                        .items
                        .iter()
                        .map(|e| EventView::of(e, None))
                        .collect(),
                    next_cursor: events.next_cursor,
                })
            }
        }
    }

    async fn search_text(
        &self,
        text: &str,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> ServiceResult<Page<EventView>> {
        let offset = rank_of_cursor(page.after.as_deref())?;
        let empty = Page {
            items: Vec::new(),
            next_cursor: None,
        };
        if !crate::search::validate_query(&self.search, text, SEARCH_QUERY_LENGTH_MAX)? {
            return Ok(empty);
        }
        let search_filter = SearchFilter {
            city: filter.city.clone(),
            genre: filter.genre.clone(),
            from: filter.from,
            to: filter.to,
        };
        let limit = page.limit as usize;
        let found = self
            .search
            .search(text, &search_filter, offset, limit)
            .await?;
        let mut records: HashMap<EventId, EventRecord> = self
            .store
            .events_by_ids(&found.event_ids)
            .await?
            .into_iter()
            .map(|event| (event.id.clone(), event))
            .collect();
        Ok(Page {
            items: found
                .event_ids
                .iter()
                .filter_map(|id| records.remove(id))
                .map(|event| EventView::of(&event, None))
                .collect(),
            next_cursor: found
                .more
                .then(|| format!("{RANK_CURSOR_PREFIX}{}", offset + limit)),
        })
    }

    /// `GET /v1/events/suggest`: type-ahead over titles and performers.
    pub async fn suggest_events(
        &self,
        text: Option<&str>,
        limit: usize,
    ) -> ServiceResult<SuggestionsView> {
        let text = text.unwrap_or("");
        if text.trim().is_empty() {
            return Err(ServiceError::invalid(
                "q",
                "required: what was typed so far",
            ));
        }
        if !crate::search::validate_query(&self.search, text, SEARCH_QUERY_LENGTH_MAX)? {
            return Ok(SuggestionsView { items: Vec::new() });
        }
        self.search.suggest(text, limit).await
    }

    pub async fn create_show(
        &self,
        caller: &AuthUser,
        event_id: &str,
        input: ShowInput,
    ) -> ServiceResult<ShowView> {
        caller.require(Role::Admin)?;
        let event_id =
            EventId::parse(event_id).map_err(|_| ServiceError::NotFound { what: "event" })?;
        let event = self
            .store
            .event(&event_id)
            .await?
            .ok_or(ServiceError::NotFound { what: "event" })?;
        let venue_id = VenueId::parse(&input.venue_id)
            .map_err(|_| ServiceError::NotFound { what: "venue" })?;
        let layout = self.layout(&venue_id).await?;
        let mut errors = Vec::new();
        let missing = validate_prices(&input.prices, &layout, &mut errors);
        let hold_ttl_seconds = validate_ttl(
            input
                .hold_ttl_seconds
                .unwrap_or(i64::from(HOLD_TTL_SECONDS_DEFAULT)),
            &mut errors,
        );
        let max_tickets_per_user = validate_max_tickets(
            input
                .max_tickets_per_user
                .unwrap_or(i64::from(MAX_TICKETS_PER_USER_DEFAULT)),
            &mut errors,
        );
        let waiting_room = input
            .waiting_room
            .as_ref()
            .map(|w| validate_waiting_room(w, &WaitingRoomSettings::default(), &mut errors))
            .unwrap_or_default();
        let status = match input.status.as_deref() {
            Some(value) => parse_status(value, &mut errors).unwrap_or(ShowStatus::OnSale),
            None => ShowStatus::OnSale,
        };
        if !errors.is_empty() {
            return Err(ServiceError::InvalidRequest { errors });
        }
        if !missing.is_empty() {
            return Err(ServiceError::PriceMissing {
                categories: missing,
            });
        }
        let now = self.record_time();
        let show = ShowRecord {
            id: crate::new_id!(ShowId, now),
            event_id,
            venue_id,
            starts_at: input.starts_at,
            sales_start: input.sales_start.unwrap_or(now),
            prices: input.prices,
            hold_ttl_seconds,
            max_tickets_per_user,
            waiting_room,
            status,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_show(&show, &layout, &caller.id).await?;
        self.remember_show(&show);
        self.reindex(&show.event_id).await;
        self.show_view(&show, Some(&event)).await
    }

    pub async fn update_show(
        &self,
        caller: &AuthUser,
        id: &str,
        input: ShowPatchInput,
    ) -> ServiceResult<ShowView> {
        caller.require(Role::Admin)?;
        let id = parse_show_id(id)?;
        let show = self
            .store
            .show(&id)
            .await?
            .ok_or(ServiceError::NotFound { what: "show" })?;
        let layout = self.layout(&show.venue_id).await?;
        let mut errors = Vec::new();
        let mut patch = ShowPatch::default();
        if let Some(status) = &input.status {
            patch.status = parse_status(status, &mut errors);
        }
        if let Some(prices) = &input.prices {
            let missing = validate_prices(prices, &layout, &mut errors);
            if !missing.is_empty() && errors.is_empty() {
                return Err(ServiceError::PriceMissing {
                    categories: missing,
                });
            }
            patch.prices = Some(prices.clone());
        }
        patch.sales_start = input.sales_start;
        patch.hold_ttl_seconds = input.hold_ttl_seconds.map(|v| validate_ttl(v, &mut errors));
        patch.max_tickets_per_user = input
            .max_tickets_per_user
            .map(|v| validate_max_tickets(v, &mut errors));
        patch.waiting_room = input
            .waiting_room
            .as_ref()
            .map(|w| validate_waiting_room(w, &show.waiting_room, &mut errors));
        if !errors.is_empty() {
            return Err(ServiceError::InvalidRequest { errors });
        }
        let updated = self
            .store
            .update_show(&id, &patch, &caller.id, self.record_time())
            .await?
            .ok_or(ServiceError::NotFound { what: "show" })?;
        self.remember_show(&updated);
        self.reindex(&updated.event_id).await;
        if updated.waiting_room.enabled
            && (input.waiting_room.is_some() || input.sales_start.is_some())
        {
            self.configure_waiting_room(&updated).await;
        }
        self.show_view(&updated, None).await
    }

    async fn configure_waiting_room(&self, show: &ShowRecord) {
        let Some(queue) = &self.queue else { return };
        let config = crate::waiting_room::room_config(show);
        let now_ms = self.clock.now().timestamp_millis();
        if let Err(error) = queue.configure_queue(&show.id, &config, now_ms).await {
            // The next join or poll applies it (each carries the show's
            // settings); only the instant of the change is lost.
            tracing::warn!(%error, show_id = %show.id, "could not apply the waiting-room settings at once");
        }
    }

    /// The show, from a short-lived cache: a hold must not cost a database
    /// read of the show row. This node's own updates refresh the cache at
    /// once; other nodes' updates (a `PATCH` to `PAUSED`, new prices) reach
    /// it within `SHOW_CACHE_TTL`.
    pub async fn show_record(&self, id: &str) -> ServiceResult<ShowRecord> {
        let id = parse_show_id(id)?;
        if let Ok(cache) = self.shows.read() {
            if let Some((loaded_at, show)) = cache.get(&id) {
                if loaded_at.elapsed() < SHOW_CACHE_TTL {
                    return Ok(show.clone());
                }
            }
        }
        let show = self
            .store
            .show(&id)
            .await?
            .ok_or(ServiceError::NotFound { what: "show" })?;
        self.remember_show(&show);
        Ok(show)
    }

    fn remember_show(&self, show: &ShowRecord) {
        if let Ok(mut cache) = self.shows.write() {
            if cache.len() >= SHOW_CACHE_ENTRIES_MAX {
                cache.retain(|_, (loaded_at, _)| loaded_at.elapsed() < SHOW_CACHE_TTL);
            }
            cache.insert(show.id.clone(), (std::time::Instant::now(), show.clone()));
        }
    }

    pub async fn show(&self, id: &str) -> ServiceResult<ShowView> {
        let show = self.show_record(id).await?;
        self.show_view(&show, None).await
    }

    async fn show_view(
        &self,
        show: &ShowRecord,
        event: Option<&EventRecord>,
    ) -> ServiceResult<ShowView> {
        let event = match event {
            Some(event) => event.clone(),
            None => self
                .store
                .event(&show.event_id)
                .await?
                .ok_or(ServiceError::NotFound { what: "event" })?,
        };
        let venue = self
            .store
            .venue(&show.venue_id)
            .await?
            .ok_or(ServiceError::NotFound { what: "venue" })?;
        let (_, state) = self.inventory_of(show).await?;
        Ok(ShowView {
            id: show.id.to_string(),
            event_id: show.event_id.to_string(),
            venue_id: show.venue_id.to_string(),
            event: ShowEventView {
                id: event.id.to_string(),
                title: event.title,
                performer: event.performer,
                genre: event.genre,
            },
            venue: ShowVenueView {
                id: venue.id.to_string(),
                name: venue.venue.name,
                city: venue.venue.city,
                address: venue.venue.address,
                timezone: venue.venue.timezone,
            },
            starts_at: rfc3339(show.starts_at),
            sales_start: rfc3339(show.sales_start),
            prices: show
                .prices
                .iter()
                .map(|(k, v)| (k.clone(), MoneyView::from(v)))
                .collect(),
            hold_ttl_seconds: show.hold_ttl_seconds,
            max_tickets_per_user: show.max_tickets_per_user,
            waiting_room: show.waiting_room.clone(),
            status: show.status.as_str().to_string(),
            availability: summary_of(&state),
            created_at: rfc3339(show.created_at),
        })
    }

    /// The seat map's current ETag, without building the map (for 304s).
    pub async fn seat_map_etag(&self, id: &str) -> ServiceResult<String> {
        let show = self.show_record(id).await?;
        let inventory = self.inventory(&show).await?;
        let (version, lapsed_places) = inventory.version_and_lapsed(self.clock.now());
        Ok(format!("W/\"{}-{}-{}\"", show.id, version, lapsed_places))
    }

    /// The seat map serialized as JSON, and its ETag. The serialized map is
    /// kept per show until its ETag changes, so that a crowd reading an
    /// unchanged map does not rebuild 6 MB of JSON per request.
    pub async fn seat_map_json(&self, id: &str) -> ServiceResult<(bytes::Bytes, String)> {
        let current = self.seat_map_etag(id).await?;
        let show_id = parse_show_id(id)?;
        if let Ok(cache) = self.seat_maps.read() {
            if let Some((etag, json)) = cache.get(&show_id) {
                if *etag == current {
                    return Ok((json.clone(), current));
                }
            }
        }
        let (view, etag) = self.seat_map(id).await?;
        // Bytes: every answer shares the one buffer instead of copying 6 MB.
        let json = bytes::Bytes::from(
            serde_json::to_vec(&view).map_err(|e| ServiceError::Internal(e.to_string()))?,
        );
        if let Ok(mut cache) = self.seat_maps.write() {
            if cache.len() >= SHOW_CACHE_ENTRIES_MAX {
                cache.clear();
            }
            cache.insert(show_id, (etag.clone(), json.clone()));
        }
        Ok((json, etag))
    }

    /// The inventory of a show for a seat-map stream: current (reloaded if
    /// another node moved it), with its live changes.
    pub async fn seat_stream_source(&self, id: &str) -> ServiceResult<Arc<ShowInventory>> {
        let show = self.show_record(id).await?;
        self.inventory(&show).await
    }

    /// The seat map and its ETag (the version plus places freed by time since).
    pub async fn seat_map(&self, id: &str) -> ServiceResult<(SeatMapView, String)> {
        let show = self.show_record(id).await?;
        let (inventory, state) = self.inventory_of(&show).await?;
        let layout = inventory.layout().clone();
        let zero = show.prices.values().next().map(|m| Money::zero(m.currency));
        let price_of = |category: &str| -> MoneyView {
            show.prices
                .get(category)
                .or(zero.as_ref())
                .map(MoneyView::from)
                .unwrap_or(MoneyView {
                    amount: 0,
                    currency: "EUR".into(),
                })
        };
        let seats = layout
            .seats()
            .zip(state.seats.iter())
            .map(|((section, row, seat), status)| SeatView {
                id: seat.id.to_string(),
                section: section.id.clone(),
                row: row.label.clone(),
                number: seat.number.clone(),
                category: seat.category.clone(),
                price: price_of(&seat.category),
                status: status.as_str(),
                x: seat.x,
                y: seat.y,
                accessible: seat.accessible,
            })
            .collect();
        let standing = layout
            .sections
            .iter()
            .filter_map(|section| match section.kind {
                SectionKind::Standing { capacity } => {
                    let live = state.standing.iter().find(|s| s.section == section.id);
                    Some(StandingView {
                        section: section.id.clone(),
                        category: section.category.clone(),
                        capacity,
                        available: live.map(|s| s.available()).unwrap_or(capacity),
                        price: price_of(&section.category),
                    })
                }
                SectionKind::Seated { .. } => None,
            })
            .collect();
        let etag = format!(
            "W/\"{}-{}-{}\"",
            show.id, state.version, state.lapsed_places
        );
        Ok((
            SeatMapView {
                show_id: show.id.to_string(),
                version: state.version,
                seats,
                standing,
                summary: summary_of(&state),
            },
            etag,
        ))
    }

    pub async fn sales(&self, caller: &AuthUser, id: &str) -> ServiceResult<SalesView> {
        caller.require(Role::Admin)?;
        let show = self.show_record(id).await?;
        let (inventory, state) = self.inventory_of(&show).await?;
        let (revenue, tickets_sold) = self.store.sales_totals(&show.id).await?;
        // Sections in layout order; seats are in layout order in the view.
        let mut sections: Vec<SectionSalesView> = Vec::new();
        for ((section, _, _), status) in inventory.layout().seats().zip(state.seats.iter()) {
            if sections
                .last()
                .is_none_or(|last| last.section != section.id)
            {
                sections.push(SectionSalesView {
                    section: section.id.clone(),
                    available: 0,
                    held: 0,
                    booked: 0,
                });
            }
            if let Some(entry) = sections.last_mut() {
                match status {
                    SeatStatus::Available => entry.available += 1,
                    SeatStatus::Held => entry.held += 1,
                    SeatStatus::Booked => entry.booked += 1,
                }
            }
        }
        for standing in &state.standing {
            sections.push(SectionSalesView {
                section: standing.section.clone(),
                available: u64::from(standing.available()),
                held: u64::from(standing.held),
                booked: u64::from(standing.booked),
            });
        }
        let order: Vec<&str> = inventory
            .layout()
            .sections
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        sections.sort_by_key(|s| {
            order
                .iter()
                .position(|id| *id == s.section)
                .unwrap_or(usize::MAX)
        });
        let currency = show
            .prices
            .values()
            .next()
            .map(|m| m.currency.as_str().to_string())
            .unwrap_or_else(|| "EUR".into());
        Ok(SalesView {
            show_id: show.id.to_string(),
            sections,
            revenue: MoneyView {
                amount: revenue,
                currency,
            },
            tickets_sold,
        })
    }
}

/// The rank a cursor of ranked results points at; none is the first page.
fn rank_of_cursor(cursor: Option<&str>) -> ServiceResult<usize> {
    let Some(cursor) = cursor else { return Ok(0) };
    cursor
        .strip_prefix(RANK_CURSOR_PREFIX)
        .and_then(|rank| rank.parse::<usize>().ok())
        .filter(|rank| *rank < RESULTS_DEPTH_MAX)
        .ok_or_else(|| {
            ServiceError::invalid(
                "cursor",
                "not a cursor returned by this API for this search",
            )
        })
}

fn summary_of(state: &InventoryView) -> Summary {
    let mut summary = Summary {
        available: 0,
        held: 0,
        booked: 0,
    };
    for status in &state.seats {
        match status {
            SeatStatus::Available => summary.available += 1,
            SeatStatus::Held => summary.held += 1,
            SeatStatus::Booked => summary.booked += 1,
        }
    }
    for standing in &state.standing {
        summary.available += u64::from(standing.available());
        summary.held += u64::from(standing.held);
        summary.booked += u64::from(standing.booked);
    }
    summary
}
