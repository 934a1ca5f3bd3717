//! A pure model of one show's inventory: which seats and standing places
//! are held or booked, by which hold, for which user.
//!
//! Every operation is all-or-nothing: it either succeeds completely or
//! returns an error and changes nothing (apart from sweeping holds that had
//! already expired). Expired holds never block anyone (invariant 4): each
//! operation that takes a `now` first ends the holds due by then, and
//! remembers them for [`ShowInventory::expire_due`] to announce.
//!
//! Property tests drive this model with random operations; the services
//! layer can use it as its in-memory inventory engine.

mod invariants;
mod queries;
mod request;
mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};

use crate::hold::{is_hold_expired, HoldSelection};
use crate::ids::{HoldId, UserId};
use crate::layout::VenueLayout;
use crate::seat::SeatId;
use crate::status::ReleaseReason;

use types::{Claim, HoldRecord, Phase, StandingPool};
pub use types::{HeldPlaces, InventoryError};

#[derive(Debug, Clone)]
pub struct ShowInventory {
    /// Kept for best-available, which walks the layout in preference order.
    layout: VenueLayout,
    max_tickets_per_user: u32,
    /// Seat IDs in layout order; a seat's index is its position here.
    seat_ids: Vec<SeatId>,
    seat_index: HashMap<SeatId, usize>,
    /// The hold that holds or booked each seat.
    seat_owner: Vec<Option<HoldId>>,
    pools: Vec<StandingPool>,
    pool_index: HashMap<String, usize>,
    holds: BTreeMap<HoldId, HoldRecord>,
    /// Held (not booked) holds by expiry time, so sweeping is cheap.
    expiry_queue: BTreeSet<(DateTime<Utc>, HoldId)>,
    /// Places held or booked per user, for the ticket limit.
    places_by_user: HashMap<UserId, u32>,
    /// Holds swept inside another operation, not yet returned by `expire_due`.
    expired_unannounced: Vec<HoldId>,
}

impl ShowInventory {
    /// Every place on sale. `max_tickets_per_user` is the limit on places
    /// held plus booked by one user (0 means nobody can hold anything).
    pub fn new(layout: &VenueLayout, max_tickets_per_user: u32) -> Self {
        let seat_ids: Vec<SeatId> = layout.seats().map(|(_, _, seat)| seat.id.clone()).collect();
        let seat_index = seat_ids
            .iter()
            .enumerate()
            .map(|(index, id)| (id.clone(), index))
            .collect();
        let pools: Vec<StandingPool> = layout
            .standing_sections()
            .map(|(section, capacity)| StandingPool {
                section: section.id.clone(),
                capacity,
                taken: 0,
            })
            .collect();
        let pool_index = pools
            .iter()
            .enumerate()
            .map(|(index, pool)| (pool.section.clone(), index))
            .collect();
        ShowInventory {
            layout: layout.clone(),
            max_tickets_per_user,
            seat_owner: vec![None; seat_ids.len()],
            seat_ids,
            seat_index,
            pools,
            pool_index,
            holds: BTreeMap::new(),
            expiry_queue: BTreeSet::new(),
            places_by_user: HashMap::new(),
            expired_unannounced: Vec::new(),
        }
    }

    /// Holds the selected places for `ttl`, all or nothing. Checks, in
    /// order: unknown places (bad input), the user's ticket limit (before
    /// anything is reserved), then availability. A hold ID can be used once.
    pub fn hold(
        &mut self,
        hold_id: HoldId,
        user: &UserId,
        selection: &HoldSelection,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<HeldPlaces, InventoryError> {
        self.expire_through(now);
        if self.holds.contains_key(&hold_id) {
            return Err(InventoryError::HoldNotActive);
        }
        let request = self.locate(selection)?;
        let already = self.user_places(user);
        let requested = request.place_count();
        if already.saturating_add(requested) > self.max_tickets_per_user {
            return Err(InventoryError::TicketLimitExceeded {
                limit: self.max_tickets_per_user,
                already,
                requested,
            });
        }
        let claim = self.claim(request)?;
        let expires_at = now
            .checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Ok(self.commit(hold_id, user, claim, expires_at))
    }

    /// Ends a held (not booked) hold now; its places go back on sale.
    pub fn release(&mut self, hold_id: &HoldId) -> Result<(), InventoryError> {
        match self.phase(hold_id)? {
            Phase::Held => {
                self.end_hold(hold_id, ReleaseReason::UserReleased);
                Ok(())
            }
            Phase::Ended(ReleaseReason::Expired) => Err(InventoryError::HoldExpired),
            Phase::Booked | Phase::Ended(_) => Err(InventoryError::HoldNotActive),
        }
    }

    /// Ends every hold whose `expires_at` has passed at `now`, and returns
    /// those and any swept earlier by another operation, oldest first, each
    /// exactly once.
    pub fn expire_due(&mut self, now: DateTime<Utc>) -> Vec<HoldId> {
        self.expire_through(now);
        std::mem::take(&mut self.expired_unannounced)
    }

    /// Turns a live hold into a booking. Fails when it has expired, even if
    /// no sweep has noticed yet.
    pub fn confirm(&mut self, hold_id: &HoldId, now: DateTime<Utc>) -> Result<(), InventoryError> {
        self.expire_through(now);
        match self.phase(hold_id)? {
            Phase::Held => {}
            Phase::Ended(ReleaseReason::Expired) => return Err(InventoryError::HoldExpired),
            Phase::Booked | Phase::Ended(_) => return Err(InventoryError::HoldNotActive),
        }
        if let Some(record) = self.holds.get_mut(hold_id) {
            self.expiry_queue
                .remove(&(record.expires_at, hold_id.clone()));
            record.phase = Phase::Booked;
        }
        Ok(())
    }

    /// Cancels the booking made from this hold: its places go back on sale.
    pub fn cancel(&mut self, hold_id: &HoldId) -> Result<(), InventoryError> {
        match self.phase(hold_id)? {
            Phase::Booked => {
                self.end_hold(hold_id, ReleaseReason::BookingCancelled);
                Ok(())
            }
            Phase::Held | Phase::Ended(_) => Err(InventoryError::HoldNotActive),
        }
    }

    fn phase(&self, hold_id: &HoldId) -> Result<Phase, InventoryError> {
        self.holds
            .get(hold_id)
            .map(|record| record.phase)
            .ok_or(InventoryError::NoSuchHold)
    }

    /// Takes the claimed places for the hold.
    fn commit(
        &mut self,
        hold_id: HoldId,
        user: &UserId,
        claim: Claim,
        expires_at: DateTime<Utc>,
    ) -> HeldPlaces {
        for &seat in &claim.seats {
            if let Some(owner) = self.seat_owner.get_mut(seat) {
                *owner = Some(hold_id.clone());
            }
        }
        for &(pool, quantity) in &claim.standing {
            if let Some(pool) = self.pools.get_mut(pool) {
                pool.taken = pool.taken.saturating_add(quantity);
            }
        }
        let record = HoldRecord {
            user: user.clone(),
            seats: claim.seats,
            standing: claim.standing,
            expires_at,
            phase: Phase::Held,
        };
        let places = record.place_count();
        let user_places = self.places_by_user.entry(user.clone()).or_insert(0);
        *user_places = user_places.saturating_add(places);
        let held = self.places_of(&record);
        self.expiry_queue.insert((expires_at, hold_id.clone()));
        self.holds.insert(hold_id, record);
        held
    }

    fn places_of(&self, record: &HoldRecord) -> HeldPlaces {
        HeldPlaces {
            seats: record
                .seats
                .iter()
                .filter_map(|&seat| self.seat_ids.get(seat).cloned())
                .collect(),
            standing: record
                .standing
                .iter()
                .filter_map(|&(pool, quantity)| {
                    Some((self.pools.get(pool)?.section.clone(), quantity))
                })
                .collect(),
        }
    }

    /// Sweeps every held hold whose `expires_at` has passed at `now`.
    fn expire_through(&mut self, now: DateTime<Utc>) {
        while let Some((expires_at, _)) = self.expiry_queue.first() {
            if !is_hold_expired(*expires_at, now) {
                break;
            }
            let Some((_, hold_id)) = self.expiry_queue.pop_first() else {
                break;
            };
            self.end_hold(&hold_id, ReleaseReason::Expired);
            self.expired_unannounced.push(hold_id);
        }
    }

    /// Puts a hold's places back on sale and marks it ended.
    fn end_hold(&mut self, hold_id: &HoldId, reason: ReleaseReason) {
        let Some(record) = self.holds.get_mut(hold_id) else {
            return;
        };
        if !matches!(record.phase, Phase::Held | Phase::Booked) {
            return;
        }
        record.phase = Phase::Ended(reason);
        self.expiry_queue
            .remove(&(record.expires_at, hold_id.clone()));
        for &seat in &record.seats {
            if let Some(owner) = self.seat_owner.get_mut(seat) {
                if owner.as_ref() == Some(hold_id) {
                    *owner = None;
                }
            }
        }
        for &(pool, quantity) in &record.standing {
            if let Some(pool) = self.pools.get_mut(pool) {
                pool.taken = pool.taken.saturating_sub(quantity);
            }
        }
        let places = record.place_count();
        if let Some(user_places) = self.places_by_user.get_mut(&record.user) {
            *user_places = user_places.saturating_sub(places);
            if *user_places == 0 {
                self.places_by_user.remove(&record.user);
            }
        }
    }
}

#[cfg(test)]
mod tests;
