//! The in-memory inventory of each show on this node: a compact status array
//! in layout order plus the show's version, loaded from the database once and
//! kept current by this node's own commits and, on PostgreSQL, by the other
//! nodes' commits arriving through the change feed (`LISTEN/NOTIFY`), all
//! applied in version order. As a safety net (and the only way on SQLite,
//! where several processes may share a file), a reader compares the version
//! with the database at most every `FRESHNESS_CHECK_INTERVAL` and reloads when
//! it moved; while the feed demonstrably delivers, that check is skipped.
//! Seat maps and best-available are served from it, and holds for seats it
//! knows are taken are refused without touching the database. It is only ever
//! a filter: the store's transactions decide. See docs/adr/0007 and 0010.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use boxoffice_domain::{best_available_at, HoldId, Seat, SeatId, ShowId, VenueLayout};
use boxoffice_store::{
    ChangeListener, FeedEvent, InventorySnapshot, SeatChange, SeatStatus, ShowChange,
    StandingHoldChange, StandingState, Store,
};
use chrono::{DateTime, Utc};

use crate::error::{ServiceError, ServiceResult};

/// How stale a node's view of another node's changes may get: the seat map of
/// every node converges to the database within this (well under 1 s).
const FRESHNESS_CHECK_INTERVAL: Duration = Duration::from_millis(250);
/// How long a missing version may be in flight on the feed (another node
/// committed it just before this node's own, applied, change) before the
/// show is checked against the database.
const GAP_GRACE: Duration = Duration::from_millis(100);
/// Out-of-order changes kept while waiting for the missing version; past this
/// the show is reloaded instead.
const PENDING_CHANGES_MAX: usize = 1_024;
/// A held seat that never lapses (its hold is paying).
const NEVER: i64 = i64::MAX;
/// Changes kept per show for subscribers that resume (`Last-Event-ID`).
const RECENT_CHANGES_MAX: usize = 512;
/// Changes queued per show for live subscribers; one that falls further
/// behind is told to start over from a snapshot (bounded memory, whatever
/// the client's speed).
const SUBSCRIBER_BACKLOG_MAX: usize = 256;

/// What a seat-map subscriber gets: the places one committed change of the
/// show touched, as the seat map shows them (API.md "Seat map", `changes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatMapChange {
    /// The version this change applies on top of: `version - 1` for one
    /// committed change; earlier for the difference a reload found (its
    /// statuses are absolute, so applying it on any version in between is
    /// right too).
    pub from_version: i64,
    pub version: i64,
    pub seats: Vec<(SeatId, SeatStatus)>,
    /// Standing sections touched, with their places available.
    pub standing: Vec<(String, u32)>,
}

/// An item of a show's change stream.
#[derive(Debug, Clone)]
pub enum StreamItem {
    Change(Arc<SeatMapChange>),
    /// The inventory was reloaded (versions were skipped): subscribers start
    /// over from a snapshot.
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Available,
    Held { lapses_at_ms: i64 },
    Booked,
}

struct ShowState {
    loaded: bool,
    version: i64,
    places: Vec<Place>,
    standing: Vec<StandingState>,
    standing_holds: HashMap<HoldId, Vec<(String, u32, i64)>>,
    pending: BTreeMap<i64, ShowChange>,
    /// Since when the version after `version` is missing while later ones
    /// wait in `pending`.
    gap_since: Option<Instant>,
    /// When a version check last started that found the state current (or
    /// reloaded it).
    verified_at: Option<Instant>,
    /// A check started before this does not count: changes may have been
    /// missed since (feed lost, change too large to carry, too far behind).
    invalidated_at: Option<Instant>,
    /// Seats picked by best-available requests of this node that are still on
    /// their way to the database: other pickers skip them, so that concurrent
    /// best-available buyers do not all pick the same "best" seats and lose.
    /// Indexed by position; sized on first use.
    tentative: Vec<bool>,
    /// The last applied changes, contiguous in version, for resuming.
    recent: std::collections::VecDeque<Arc<SeatMapChange>>,
    /// Live subscribers (seat-map streams); sent to under this lock so that
    /// they see changes in version order.
    events: tokio::sync::broadcast::Sender<StreamItem>,
}

/// Seats a best-available request picked; released (for other pickers) when
/// the request is done, whatever its outcome.
pub struct TentativePick {
    inventory: Arc<ShowInventory>,
    positions: Vec<u32>,
}

impl Drop for TentativePick {
    fn drop(&mut self) {
        let mut state = self.inventory.state();
        for position in &self.positions {
            if let Some(flag) = state.tentative.get_mut(*position as usize) {
                *flag = false;
            }
        }
    }
}

/// One show's inventory.
pub struct ShowInventory {
    layout: Arc<VenueLayout>,
    index: HashMap<SeatId, u32>,
    /// Seat IDs by position.
    ids: Vec<SeatId>,
    state: Mutex<ShowState>,
    /// One reload at a time per show; readers arriving meanwhile wait for it.
    reload: tokio::sync::Mutex<()>,
}

/// What a reader sees at one instant.
pub struct InventoryView {
    pub version: i64,
    /// Places freed by time since `version` (part of the seat map's ETag).
    pub lapsed_places: u64,
    /// Statuses in layout order.
    pub seats: Vec<SeatStatus>,
    pub standing: Vec<StandingState>,
}

fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

fn place_of(change: &SeatChange) -> Place {
    match change.status {
        SeatStatus::Available => Place::Available,
        SeatStatus::Booked => Place::Booked,
        SeatStatus::Held => Place::Held {
            lapses_at_ms: change.lapses_at.map(millis).unwrap_or(NEVER),
        },
    }
}

impl ShowState {
    fn apply(&mut self, index: &HashMap<SeatId, u32>, change: &ShowChange) {
        for seat in &change.seats {
            if let Some(position) = index.get(&seat.seat_id) {
                if let Some(place) = self.places.get_mut(*position as usize) {
                    *place = place_of(seat);
                }
            }
        }
        for counters in &change.standing {
            match self
                .standing
                .iter_mut()
                .find(|s| s.section == counters.section)
            {
                Some(existing) => *existing = counters.clone(),
                None => self.standing.push(counters.clone()),
            }
        }
        self.apply_standing_holds(&change.standing_holds);
        self.version = change.version;
        self.publish(change);
    }

    fn publish(&mut self, change: &ShowChange) {
        let published = Arc::new(SeatMapChange {
            from_version: change.version - 1,
            version: change.version,
            seats: change
                .seats
                .iter()
                .map(|seat| (seat.seat_id.clone(), seat.status))
                .collect(),
            standing: change
                .standing
                .iter()
                .map(|counters| (counters.section.clone(), counters.available()))
                .collect(),
        });
        self.announce(published);
    }

    fn announce(&mut self, change: Arc<SeatMapChange>) {
        if self.recent.len() >= RECENT_CHANGES_MAX {
            self.recent.pop_front();
        }
        self.recent.push_back(change.clone());
        // No receiver is not an error: nobody is watching this show.
        let _ = self.events.send(StreamItem::Change(change));
    }

    /// What a reload changed, as one change from the old version to the new
    /// (other processes on one SQLite file have no feed: this is how their
    /// changes reach this node's subscribers).
    fn difference(
        &self,
        ids: &[SeatId],
        old_places: &[Place],
        old_standing: &[StandingState],
        old_version: i64,
    ) -> SeatMapChange {
        let status = |place: &Place| match place {
            Place::Available => SeatStatus::Available,
            Place::Held { .. } => SeatStatus::Held,
            Place::Booked => SeatStatus::Booked,
        };
        SeatMapChange {
            from_version: old_version,
            version: self.version,
            seats: self
                .places
                .iter()
                .zip(old_places)
                .zip(ids)
                .filter(|((new, old), _)| status(new) != status(old))
                .map(|((new, _), id)| (id.clone(), status(new)))
                .collect(),
            standing: self
                .standing
                .iter()
                .filter(|new| {
                    old_standing
                        .iter()
                        .find(|old| old.section == new.section)
                        .is_none_or(|old| old.available() != new.available())
                })
                .map(|new| (new.section.clone(), new.available()))
                .collect(),
        }
    }

    fn apply_standing_holds(&mut self, changes: &[StandingHoldChange]) {
        let mut touched: HashMap<&HoldId, Vec<(String, u32, i64)>> = HashMap::new();
        for change in changes {
            if change.removed {
                self.standing_holds.remove(&change.hold_id);
                touched.remove(&change.hold_id);
            } else {
                touched.entry(&change.hold_id).or_default().push((
                    change.section.clone(),
                    change.quantity,
                    change.lapses_at.map(millis).unwrap_or(NEVER),
                ));
            }
        }
        for (hold_id, places) in touched {
            self.standing_holds.insert(hold_id.clone(), places);
        }
    }

    fn load(&mut self, index: &HashMap<SeatId, u32>, ids: &[SeatId], snapshot: InventorySnapshot) {
        let was_loaded = self.loaded && self.places.len() == ids.len();
        let old_places = std::mem::replace(&mut self.places, vec![Place::Available; index.len()]);
        let old_standing = self.standing.clone();
        let old_version = self.version;
        for seat in &snapshot.seats {
            if let Some(position) = index.get(&seat.seat_id) {
                if let Some(place) = self.places.get_mut(*position as usize) {
                    *place = place_of(seat);
                }
            }
        }
        self.standing = snapshot.standing;
        self.standing_holds.clear();
        self.apply_standing_holds(&snapshot.standing_holds);
        self.version = snapshot.version;
        self.pending
            .retain(|version, _| *version > snapshot.version);
        self.loaded = true;
        if was_loaded && snapshot.version > old_version {
            let change = self.difference(ids, &old_places, &old_standing, old_version);
            self.announce(Arc::new(change));
        } else if was_loaded {
            // Not newer (cannot happen today): subscribers start over.
            self.recent.clear();
            let _ = self.events.send(StreamItem::Reset);
        }
        self.drain_pending(index);
    }

    fn drain_pending(&mut self, index: &HashMap<SeatId, u32>) {
        while let Some(change) = self.pending.remove(&(self.version + 1)) {
            self.apply(index, &change);
        }
        let version = self.version;
        self.pending.retain(|pending, _| *pending > version);
        // Called after the version moved: whatever still waits, waits for a
        // new gap.
        self.gap_since = (!self.pending.is_empty()).then(Instant::now);
    }
}

impl ShowInventory {
    fn new(layout: Arc<VenueLayout>) -> ShowInventory {
        let ids: Vec<SeatId> = layout.seats().map(|(_, _, seat)| seat.id.clone()).collect();
        let index = ids
            .iter()
            .enumerate()
            .map(|(position, id)| (id.clone(), position as u32))
            .collect();
        ShowInventory {
            layout,
            index,
            ids,
            state: Mutex::new(ShowState {
                loaded: false,
                version: -1,
                places: Vec::new(),
                standing: Vec::new(),
                standing_holds: HashMap::new(),
                pending: BTreeMap::new(),
                gap_since: None,
                verified_at: None,
                invalidated_at: None,
                tentative: Vec::new(),
                recent: std::collections::VecDeque::new(),
                events: tokio::sync::broadcast::channel(SUBSCRIBER_BACKLOG_MAX).0,
            }),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ShowState> {
        // A panic while holding the lock cannot leave the array half-written
        // in a way that matters (each place is one word); keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn layout(&self) -> &Arc<VenueLayout> {
        &self.layout
    }

    /// The seat's position in layout order (and in `InventoryView::seats`).
    pub fn position(&self, seat_id: &SeatId) -> Option<usize> {
        self.index.get(seat_id).map(|position| *position as usize)
    }

    /// Live changes from now on (subscribe before taking the snapshot they
    /// continue).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<StreamItem> {
        self.state().events.subscribe()
    }

    /// The changes after `version` up to the current one, if they are all
    /// still kept; `None` when the caller must start from a snapshot.
    pub fn changes_since(&self, version: i64) -> Option<Vec<Arc<SeatMapChange>>> {
        let state = self.state();
        if !state.loaded || version > state.version {
            return None;
        }
        if version == state.version {
            return Some(Vec::new());
        }
        let changes: Vec<Arc<SeatMapChange>> = state
            .recent
            .iter()
            .filter(|change| change.version > version)
            .cloned()
            .collect();
        changes
            .first()
            .is_some_and(|first| first.from_version <= version)
            .then_some(changes)
    }

    fn on_change(&self, change: &ShowChange) {
        let mut state = self.state();
        if state.loaded && change.version <= state.version {
            return;
        }
        if state.loaded && change.version == state.version + 1 {
            state.apply(&self.index, change);
            state.drain_pending(&self.index);
        } else if state.pending.len() < PENDING_CHANGES_MAX {
            // Also while the first load is under way: a change committed
            // after its snapshot arrives only once, and the load keeps what
            // is newer than the snapshot.
            state.pending.insert(change.version, change.clone());
            if state.gap_since.is_none() {
                state.gap_since = Some(Instant::now());
            }
        } else {
            // Too far behind: the next reader reloads.
            state.invalidated_at = Some(Instant::now());
        }
    }

    /// Another node committed `version` but its change did not come along.
    fn missed(&self, version: i64) {
        let mut state = self.state();
        if !state.loaded || state.version < version {
            state.invalidated_at = Some(Instant::now());
        }
    }

    fn invalidate(&self) {
        self.state().invalidated_at = Some(Instant::now());
    }

    /// The version and how many places lapsed since (the seat map's ETag),
    /// without copying the statuses.
    pub fn version_and_lapsed(&self, now: DateTime<Utc>) -> (i64, u64) {
        let state = self.state();
        let now_ms = millis(now);
        let seats = state
            .places
            .iter()
            .filter(
                |place| matches!(place, Place::Held { lapses_at_ms } if *lapses_at_ms <= now_ms),
            )
            .count() as u64;
        let standing: u64 = state
            .standing_holds
            .values()
            .flatten()
            .filter(|(section, _, lapses_at_ms)| {
                *lapses_at_ms <= now_ms && state.standing.iter().any(|s| &s.section == section)
            })
            .map(|(_, quantity, _)| u64::from(*quantity))
            .sum();
        (state.version, seats + standing)
    }

    /// The statuses at `now`: a held place whose hold lapsed reads as free.
    pub fn view(&self, now: DateTime<Utc>) -> InventoryView {
        let state = self.state();
        let now_ms = millis(now);
        let mut lapsed_places = 0u64;
        let seats = state
            .places
            .iter()
            .map(|place| match place {
                Place::Available => SeatStatus::Available,
                Place::Booked => SeatStatus::Booked,
                Place::Held { lapses_at_ms } if *lapses_at_ms <= now_ms => {
                    lapsed_places += 1;
                    SeatStatus::Available
                }
                Place::Held { .. } => SeatStatus::Held,
            })
            .collect();
        let mut standing = state.standing.clone();
        for places in state.standing_holds.values() {
            for (section, quantity, lapses_at_ms) in places {
                if *lapses_at_ms <= now_ms {
                    if let Some(counters) = standing.iter_mut().find(|s| &s.section == section) {
                        counters.held = counters.held.saturating_sub(*quantity);
                        lapsed_places += u64::from(*quantity);
                    }
                }
            }
        }
        InventoryView {
            version: state.version,
            lapsed_places,
            seats,
            standing,
        }
    }

    /// Picks the best adjacent seats that are free now and not picked by
    /// another request of this node in flight, and marks them picked until
    /// the returned guard is dropped.
    pub fn pick_best_available(
        self: &Arc<Self>,
        quantity: u32,
        category: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<(Vec<SeatId>, TentativePick)> {
        let mut state = self.state();
        let now_ms = millis(now);
        let picked = {
            let state = &*state;
            // By position: hashing every seat ID of a large venue per request
            // was most of a flash sale's CPU time.
            let is_available = |position: usize, _: &Seat| {
                !state.tentative.get(position).copied().unwrap_or(false)
                    && match state.places.get(position) {
                        Some(Place::Available) => true,
                        Some(Place::Held { lapses_at_ms }) => *lapses_at_ms <= now_ms,
                        _ => false,
                    }
            };
            best_available_at(&self.layout, &is_available, quantity, category)?
        };
        let positions: Vec<u32> = picked
            .iter()
            .filter_map(|seat| self.index.get(seat).copied())
            .collect();
        if state.tentative.len() < self.index.len() {
            state.tentative.resize(self.index.len(), false);
        }
        for position in &positions {
            if let Some(flag) = state.tentative.get_mut(*position as usize) {
                *flag = true;
            }
        }
        Some((
            picked,
            TentativePick {
                inventory: self.clone(),
                positions,
            },
        ))
    }

    /// Places of a standing section free at `now` as far as this node knows
    /// (held places of lapsed holds count as free); `None` for an unknown
    /// section.
    pub fn standing_available(&self, section: &str, now: DateTime<Utc>) -> Option<u32> {
        let state = self.state();
        let now_ms = millis(now);
        let counters = state.standing.iter().find(|s| s.section == section)?;
        let lapsed: u32 = state
            .standing_holds
            .values()
            .flatten()
            .filter(|(held_in, _, lapses_at_ms)| held_in == section && *lapses_at_ms <= now_ms)
            .map(|(_, quantity, _)| *quantity)
            .sum();
        Some(
            counters
                .available()
                .saturating_add(lapsed.min(counters.held))
                .min(counters.capacity),
        )
    }

    /// The requested seats this node knows are taken (booked, or held by a
    /// hold that has not lapsed) at `now`.
    pub fn known_taken(&self, seat_ids: &[SeatId], now: DateTime<Utc>) -> Vec<SeatId> {
        let state = self.state();
        let now_ms = millis(now);
        seat_ids
            .iter()
            .filter(|seat_id| {
                let place = self
                    .index
                    .get(seat_id)
                    .and_then(|position| state.places.get(*position as usize));
                match place {
                    Some(Place::Booked) => true,
                    Some(Place::Held { lapses_at_ms }) => *lapses_at_ms > now_ms,
                    _ => false,
                }
            })
            .cloned()
            .collect()
    }
}

/// What this node knows about the change feed from the other nodes.
#[derive(Debug, Default, Clone, Copy)]
struct FeedState {
    /// Since when the feed listens without interruption: every change
    /// committed after this arrives.
    connected_since: Option<Instant>,
    /// When the last notification arrived.
    last_notification: Option<Instant>,
}

/// Whether a reader may use the show's state as it is, without asking the
/// database for its version. It may when a check started recently, or when
/// a check started while the feed was already listening and the feed has
/// been delivering since (so every later change reached this node) and no
/// version has been missing for long.
fn is_fresh(state: &ShowState, feed: FeedState, now: Instant) -> bool {
    let Some(verified_at) = state.verified_at else {
        return false;
    };
    if !state.loaded || state.invalidated_at.is_some_and(|at| at >= verified_at) {
        return false;
    }
    if now.saturating_duration_since(verified_at) < FRESHNESS_CHECK_INTERVAL {
        return true;
    }
    let fed = feed
        .connected_since
        .is_some_and(|since| since <= verified_at)
        && feed
            .last_notification
            .is_some_and(|at| now.saturating_duration_since(at) < FRESHNESS_CHECK_INTERVAL);
    let gap_young = match state.gap_since {
        Some(since) => now.saturating_duration_since(since) < GAP_GRACE,
        None => true,
    };
    fed && gap_young
}

/// The inventories of every show this node has served.
pub struct InventoryEngine {
    store: Arc<dyn Store>,
    shows: RwLock<HashMap<ShowId, Arc<ShowInventory>>>,
    feed: Mutex<FeedState>,
}

impl ChangeListener for InventoryEngine {
    fn on_change(&self, change: &ShowChange) {
        if let Some(show) = self.loaded_show(&change.show_id) {
            show.on_change(change);
        }
    }

    fn on_feed(&self, event: FeedEvent<'_>) {
        let now = Instant::now();
        match event {
            FeedEvent::Connected => self.feed_state().connected_since = Some(now),
            FeedEvent::Lost => {
                metrics::counter!("boxoffice_change_feed_losses_total").increment(1);
                self.feed_state().connected_since = None;
                let shows: Vec<Arc<ShowInventory>> = match self.shows.read() {
                    Ok(shows) => shows.values().cloned().collect(),
                    Err(_) => Vec::new(),
                };
                for show in shows {
                    show.invalidate();
                }
            }
            FeedEvent::Alive => {
                metrics::counter!("boxoffice_change_feed_notifications_total").increment(1);
                self.feed_state().last_notification = Some(now);
            }
            FeedEvent::Missed { show_id, version } => {
                metrics::counter!("boxoffice_change_feed_missed_total").increment(1);
                if let Some(show) = self.loaded_show(show_id) {
                    show.missed(version);
                }
            }
        }
    }
}

impl InventoryEngine {
    pub fn new(store: Arc<dyn Store>) -> Arc<InventoryEngine> {
        let engine = Arc::new(InventoryEngine {
            store: store.clone(),
            shows: RwLock::new(HashMap::new()),
            feed: Mutex::new(FeedState::default()),
        });
        store.subscribe_changes(engine.clone());
        engine
    }

    fn loaded_show(&self, show_id: &ShowId) -> Option<Arc<ShowInventory>> {
        self.shows
            .read()
            .ok()
            .and_then(|shows| shows.get(show_id).cloned())
    }

    fn feed_state(&self) -> std::sync::MutexGuard<'_, FeedState> {
        // Two instants: nothing a panic could leave half-written.
        self.feed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The show's inventory, current to within `FRESHNESS_CHECK_INTERVAL` of
    /// other nodes' changes (within the feed's delivery time while it
    /// delivers) and exact for this node's own.
    pub async fn show(
        &self,
        show_id: &ShowId,
        layout: Arc<VenueLayout>,
    ) -> ServiceResult<Arc<ShowInventory>> {
        let existing = self
            .shows
            .read()
            .ok()
            .and_then(|shows| shows.get(show_id).cloned());
        let show = match existing {
            Some(show) => show,
            None => {
                let created = Arc::new(ShowInventory::new(layout));
                match self.shows.write() {
                    Ok(mut shows) => shows.entry(show_id.clone()).or_insert(created).clone(),
                    Err(_) => created,
                }
            }
        };
        self.refresh(show_id, &show).await?;
        Ok(show)
    }

    async fn refresh(&self, show_id: &ShowId, show: &ShowInventory) -> ServiceResult<()> {
        if self.fresh(show) {
            return Ok(());
        }
        let _reloading = show.reload.lock().await;
        if self.fresh(show) {
            return Ok(());
        }
        // Before the query: what it reads was committed before this instant.
        let started = Instant::now();
        metrics::counter!("boxoffice_inventory_version_checks_total").increment(1);
        let database_version = self
            .store
            .show_version(show_id)
            .await?
            .ok_or(ServiceError::NotFound { what: "show" })?;
        let known_version = {
            let state = show.state();
            state.loaded.then_some(state.version)
        };
        if known_version == Some(database_version) {
            show.state().verified_at = Some(started);
            return Ok(());
        }
        let snapshot = self.store.inventory_snapshot(show_id).await?;
        let mut state = show.state();
        if !state.loaded || snapshot.version > state.version {
            state.load(&show.index, &show.ids, snapshot);
            metrics::counter!("boxoffice_inventory_reloads_total").increment(1);
        }
        state.verified_at = Some(started);
        Ok(())
    }

    fn fresh(&self, show: &ShowInventory) -> bool {
        let feed = *self.feed_state();
        is_fresh(&show.state(), feed, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxoffice_domain::VenueInput;

    fn layout() -> Arc<VenueLayout> {
        let input: VenueInput = serde_json::from_value(serde_json::json!({
            "name": "Hall", "city": "Berlin", "timezone": "Europe/Berlin",
            "sections": [
                {"id": "A", "kind": "seated", "category": "std", "rows": [{"label": "1", "seats": 4}]},
                {"id": "FLOOR", "kind": "standing", "category": "ga", "capacity": 10}
            ]
        }))
        .unwrap();
        Arc::new(input.validate().unwrap().layout)
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn seat(id: &str, status: SeatStatus, lapses_at: Option<DateTime<Utc>>) -> SeatChange {
        SeatChange {
            seat_id: SeatId::parse(id).unwrap(),
            status,
            lapses_at,
        }
    }

    fn change(version: i64, seats: Vec<SeatChange>) -> ShowChange {
        ShowChange {
            show_id: ShowId::generate(0, 1),
            version,
            seats,
            standing: Vec::new(),
            standing_holds: Vec::new(),
        }
    }

    fn loaded(version: i64) -> ShowInventory {
        let inventory = ShowInventory::new(layout());
        inventory.state().load(
            &inventory.index,
            &inventory.ids,
            InventorySnapshot {
                version,
                seats: Vec::new(),
                standing: vec![StandingState {
                    section: "FLOOR".into(),
                    category: "ga".into(),
                    capacity: 10,
                    held: 0,
                    booked: 0,
                }],
                standing_holds: Vec::new(),
            },
        );
        inventory
    }

    fn statuses(inventory: &ShowInventory, now: DateTime<Utc>) -> Vec<SeatStatus> {
        inventory.view(now).seats
    }

    #[test]
    fn changes_apply_in_version_order_even_when_they_arrive_out_of_order() {
        let inventory = loaded(5);
        inventory.on_change(&change(7, vec![seat("A-1-2", SeatStatus::Booked, None)]));
        // Version 6 is missing: 7 waits.
        assert_eq!(inventory.view(at(0)).version, 5);
        assert_eq!(statuses(&inventory, at(0))[1], SeatStatus::Available);
        inventory.on_change(&change(
            6,
            vec![seat("A-1-2", SeatStatus::Held, Some(at(60)))],
        ));
        let view = inventory.view(at(0));
        assert_eq!(view.version, 7);
        assert_eq!(
            view.seats[1],
            SeatStatus::Booked,
            "7 applied after 6, not the other way round"
        );
    }

    #[test]
    fn old_and_repeated_changes_are_ignored() {
        let inventory = loaded(5);
        inventory.on_change(&change(
            6,
            vec![seat("A-1-1", SeatStatus::Held, Some(at(60)))],
        ));
        inventory.on_change(&change(5, vec![seat("A-1-1", SeatStatus::Available, None)]));
        inventory.on_change(&change(6, vec![seat("A-1-1", SeatStatus::Available, None)]));
        assert_eq!(statuses(&inventory, at(0))[0], SeatStatus::Held);
    }

    #[test]
    fn a_lapsed_hold_reads_as_available_and_is_not_known_taken() {
        let inventory = loaded(1);
        inventory.on_change(&change(
            2,
            vec![
                seat("A-1-1", SeatStatus::Held, Some(at(10))),
                seat("A-1-2", SeatStatus::Held, None),
            ],
        ));
        let ids = [
            SeatId::parse("A-1-1").unwrap(),
            SeatId::parse("A-1-2").unwrap(),
        ];
        assert_eq!(inventory.known_taken(&ids, at(9)).len(), 2);
        let later = inventory.view(at(11));
        assert_eq!(later.seats[0], SeatStatus::Available, "lapsed at 10");
        assert_eq!(
            later.seats[1],
            SeatStatus::Held,
            "a paying hold never lapses"
        );
        assert_eq!(later.lapsed_places, 1);
        assert_eq!(inventory.known_taken(&ids, at(11)), vec![ids[1].clone()]);
    }

    #[test]
    fn lapsed_standing_holds_count_as_free() {
        let inventory = loaded(1);
        let hold = HoldId::generate(0, 7);
        let mut held = change(2, Vec::new());
        held.standing = vec![StandingState {
            section: "FLOOR".into(),
            category: "ga".into(),
            capacity: 10,
            held: 3,
            booked: 0,
        }];
        held.standing_holds = vec![StandingHoldChange {
            hold_id: hold.clone(),
            section: "FLOOR".into(),
            quantity: 3,
            lapses_at: Some(at(10)),
            removed: false,
        }];
        inventory.on_change(&held);
        assert_eq!(inventory.view(at(9)).standing[0].held, 3);
        assert_eq!(inventory.view(at(10)).standing[0].held, 0);
        let mut expired = change(3, Vec::new());
        expired.standing = vec![StandingState {
            section: "FLOOR".into(),
            category: "ga".into(),
            capacity: 10,
            held: 0,
            booked: 0,
        }];
        expired.standing_holds = vec![StandingHoldChange {
            hold_id: hold,
            section: "FLOOR".into(),
            quantity: 3,
            lapses_at: None,
            removed: true,
        }];
        inventory.on_change(&expired);
        let view = inventory.view(at(11));
        assert_eq!(
            (view.standing[0].held, view.lapsed_places),
            (0, 0),
            "not subtracted twice"
        );
    }

    #[test]
    fn a_reload_drops_pending_changes_it_already_contains() {
        let inventory = loaded(1);
        inventory.on_change(&change(3, vec![seat("A-1-3", SeatStatus::Booked, None)]));
        inventory.on_change(&change(5, vec![seat("A-1-4", SeatStatus::Booked, None)]));
        inventory.state().load(
            &inventory.index,
            &inventory.ids,
            InventorySnapshot {
                version: 4,
                seats: vec![seat("A-1-3", SeatStatus::Booked, None)],
                standing: Vec::new(),
                standing_holds: Vec::new(),
            },
        );
        let view = inventory.view(at(0));
        assert_eq!(view.version, 5, "the pending 5 follows the reloaded 4");
        assert_eq!(view.seats[2..], [SeatStatus::Booked, SeatStatus::Booked]);
    }

    #[test]
    fn a_change_arriving_during_the_first_load_is_kept() {
        let inventory = ShowInventory::new(layout());
        inventory.on_change(&change(4, vec![seat("A-1-4", SeatStatus::Booked, None)]));
        inventory.state().load(
            &inventory.index,
            &inventory.ids,
            InventorySnapshot {
                version: 3,
                seats: Vec::new(),
                standing: Vec::new(),
                standing_holds: Vec::new(),
            },
        );
        let view = inventory.view(at(0));
        assert_eq!(view.version, 4);
        assert_eq!(view.seats[3], SeatStatus::Booked);
        assert!(inventory.state().gap_since.is_none());
    }

    fn fed(connected_ago: u64, notified_ago: u64, now: Instant) -> FeedState {
        FeedState {
            connected_since: Some(now - Duration::from_millis(connected_ago)),
            last_notification: Some(now - Duration::from_millis(notified_ago)),
        }
    }

    fn verified(inventory: &ShowInventory, ago: u64, now: Instant) {
        inventory.state().verified_at = Some(now - Duration::from_millis(ago));
    }

    #[test]
    fn a_recent_check_is_fresh_with_or_without_the_feed() {
        let now = Instant::now() + Duration::from_secs(60);
        let inventory = loaded(1);
        verified(&inventory, 100, now);
        assert!(is_fresh(&inventory.state(), FeedState::default(), now));
        verified(&inventory, 300, now);
        assert!(!is_fresh(&inventory.state(), FeedState::default(), now));
    }

    #[test]
    fn a_delivering_feed_replaces_the_check() {
        let now = Instant::now() + Duration::from_secs(60);
        let inventory = loaded(1);
        verified(&inventory, 5_000, now);
        assert!(is_fresh(&inventory.state(), fed(10_000, 50, now), now));
        assert!(
            !is_fresh(&inventory.state(), fed(10_000, 400, now), now),
            "a silent feed may be a dead one"
        );
        assert!(
            !is_fresh(&inventory.state(), fed(1_000, 50, now), now),
            "changes before the feed (re)connected may be missing"
        );
        assert!(
            !is_fresh(
                &inventory.state(),
                FeedState {
                    connected_since: None,
                    last_notification: Some(now),
                },
                now
            ),
            "lost"
        );
    }

    #[test]
    fn a_lasting_gap_or_an_invalidation_forces_a_check() {
        let now = Instant::now() + Duration::from_secs(60);
        let inventory = loaded(1);
        verified(&inventory, 5_000, now);
        inventory.on_change(&change(3, vec![seat("A-1-1", SeatStatus::Booked, None)]));
        let feed = fed(10_000, 10, now);
        assert!(inventory.state().gap_since.is_some(), "2 is missing");
        inventory.state().gap_since = Some(now - GAP_GRACE / 2);
        assert!(
            is_fresh(&inventory.state(), feed, now),
            "2 may be in flight"
        );
        inventory.state().gap_since = Some(now - GAP_GRACE);
        assert!(!is_fresh(&inventory.state(), feed, now), "2 is overdue");
        inventory.on_change(&change(2, Vec::new()));
        assert_eq!(inventory.view(at(0)).version, 3);
        assert!(is_fresh(&inventory.state(), feed, now), "gap filled");
        // Real instants from here: invalidation stamps the real time.
        inventory.state().verified_at = Some(Instant::now());
        inventory.missed(3);
        assert!(
            is_fresh(&inventory.state(), feed, Instant::now()),
            "already had 3"
        );
        inventory.missed(4);
        assert!(!is_fresh(&inventory.state(), feed, Instant::now()));
        inventory.state().verified_at = Some(Instant::now());
        assert!(
            is_fresh(&inventory.state(), feed, Instant::now()),
            "checked again"
        );
    }
}
