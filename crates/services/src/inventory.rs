//! The in-memory inventory of each show on this node: a compact status array
//! in layout order plus the show's version, loaded from the database once and
//! kept current by this node's own commits (the store's change feed, applied
//! in version order) and, for changes made by other nodes, by comparing the
//! version with the database at most every `FRESHNESS_CHECK_INTERVAL` and
//! reloading when it moved. Seat maps and best-available are served from it,
//! and holds for seats it knows are taken are refused without touching the
//! database. It is only ever a filter: the store's transactions decide.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use boxoffice_domain::{best_available_at, HoldId, Seat, SeatId, ShowId, VenueLayout};
use boxoffice_store::{
    ChangeListener, InventorySnapshot, SeatChange, SeatStatus, ShowChange, StandingHoldChange,
    StandingState, Store,
};
use chrono::{DateTime, Utc};

use crate::error::{ServiceError, ServiceResult};

/// How stale a node's view of another node's changes may get: the seat map of
/// every node converges to the database within this (well under 1 s).
const FRESHNESS_CHECK_INTERVAL: Duration = Duration::from_millis(250);
/// Out-of-order changes kept while waiting for the missing version; past this
/// the show is reloaded instead.
const PENDING_CHANGES_MAX: usize = 1_024;
/// A held seat that never lapses (its hold is paying).
const NEVER: i64 = i64::MAX;

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
    verified_at: Option<Instant>,
    /// Seats picked by best-available requests of this node that are still on
    /// their way to the database: other pickers skip them, so that concurrent
    /// best-available buyers do not all pick the same "best" seats and lose.
    /// Indexed by position; sized on first use.
    tentative: Vec<bool>,
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

    fn load(&mut self, index: &HashMap<SeatId, u32>, snapshot: InventorySnapshot) {
        self.places = vec![Place::Available; index.len()];
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
        self.drain_pending(index);
    }

    fn drain_pending(&mut self, index: &HashMap<SeatId, u32>) {
        while let Some(change) = self.pending.remove(&(self.version + 1)) {
            self.apply(index, &change);
        }
        let version = self.version;
        self.pending.retain(|pending, _| *pending > version);
    }
}

impl ShowInventory {
    fn new(layout: Arc<VenueLayout>) -> ShowInventory {
        let index = layout
            .seats()
            .enumerate()
            .map(|(position, (_, _, seat))| (seat.id.clone(), position as u32))
            .collect();
        ShowInventory {
            layout,
            index,
            state: Mutex::new(ShowState {
                loaded: false,
                version: -1,
                places: Vec::new(),
                standing: Vec::new(),
                standing_holds: HashMap::new(),
                pending: BTreeMap::new(),
                verified_at: None,
                tentative: Vec::new(),
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

    fn on_change(&self, change: &ShowChange) {
        let mut state = self.state();
        if !state.loaded || change.version <= state.version {
            return;
        }
        if change.version == state.version + 1 {
            state.apply(&self.index, change);
            state.drain_pending(&self.index);
        } else if state.pending.len() < PENDING_CHANGES_MAX {
            state.pending.insert(change.version, change.clone());
        } else {
            // Too far behind: the next reader reloads.
            state.verified_at = None;
        }
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

/// The inventories of every show this node has served.
pub struct InventoryEngine {
    store: Arc<dyn Store>,
    shows: RwLock<HashMap<ShowId, Arc<ShowInventory>>>,
}

impl ChangeListener for InventoryEngine {
    fn on_change(&self, change: &ShowChange) {
        let show = self
            .shows
            .read()
            .ok()
            .and_then(|shows| shows.get(&change.show_id).cloned());
        if let Some(show) = show {
            show.on_change(change);
        }
    }
}

impl InventoryEngine {
    pub fn new(store: Arc<dyn Store>) -> Arc<InventoryEngine> {
        let engine = Arc::new(InventoryEngine {
            store: store.clone(),
            shows: RwLock::new(HashMap::new()),
        });
        store.subscribe_changes(engine.clone());
        engine
    }

    /// The show's inventory, current to within `FRESHNESS_CHECK_INTERVAL` of
    /// other nodes' changes and exact for this node's own.
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
        if Self::fresh(show) {
            return Ok(());
        }
        let _reloading = show.reload.lock().await;
        if Self::fresh(show) {
            return Ok(());
        }
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
            show.state().verified_at = Some(Instant::now());
            return Ok(());
        }
        let snapshot = self.store.inventory_snapshot(show_id).await?;
        let mut state = show.state();
        if !state.loaded || snapshot.version > state.version {
            state.load(&show.index, snapshot);
            metrics::counter!("boxoffice_inventory_reloads_total").increment(1);
        }
        state.verified_at = Some(Instant::now());
        Ok(())
    }

    fn fresh(show: &ShowInventory) -> bool {
        let state = show.state();
        state.loaded
            && state
                .verified_at
                .is_some_and(|at| at.elapsed() < FRESHNESS_CHECK_INTERVAL)
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
}
