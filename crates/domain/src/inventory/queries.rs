//! Read-only questions about a show's inventory, for seat maps and limits.
//! Each answers as of `now`: places of holds that have expired count as
//! free even before a sweep has ended those holds.

use chrono::{DateTime, Utc};

use super::types::{HeldPlaces, Phase};
use super::ShowInventory;
use crate::hold::is_hold_expired;
use crate::ids::{HoldId, UserId};
use crate::seat::SeatId;
use crate::status::SeatStatus;

impl ShowInventory {
    pub fn max_tickets_per_user(&self) -> u32 {
        self.max_tickets_per_user
    }

    /// Places `user` holds or booked (holds swept at the last operation).
    pub fn user_places(&self, user: &UserId) -> u32 {
        self.places_by_user.get(user).copied().unwrap_or(0)
    }

    /// A seat's status at `now`, or `None` for a seat not in the venue.
    pub fn seat_status(&self, seat: &SeatId, now: DateTime<Utc>) -> Option<SeatStatus> {
        let index = *self.seat_index.get(seat)?;
        let Some(owner) = self.seat_owner.get(index)?.as_ref() else {
            return Some(SeatStatus::Available);
        };
        let status = match self.holds.get(owner) {
            Some(record) if record.is_live(now) => match record.phase {
                Phase::Booked => SeatStatus::Booked,
                Phase::Held | Phase::Ended(_) => SeatStatus::Held,
            },
            _ => SeatStatus::Available,
        };
        Some(status)
    }

    /// Free places of a standing section at `now`, or `None` if there is
    /// no such standing section.
    pub fn standing_available(&self, section: &str, now: DateTime<Utc>) -> Option<u32> {
        let pool_index = *self.pool_index.get(section)?;
        let pool = self.pools.get(pool_index)?;
        // Places of holds that expired but were not swept yet are free.
        let expired: u32 = self
            .expiry_queue
            .iter()
            .take_while(|(expires_at, _)| is_hold_expired(*expires_at, now))
            .filter_map(|(_, hold_id)| self.holds.get(hold_id))
            .flat_map(|record| &record.standing)
            .filter(|(pool, _)| *pool == pool_index)
            .map(|(_, quantity)| *quantity)
            .sum();
        Some(pool.capacity - pool.taken.saturating_sub(expired).min(pool.capacity))
    }

    /// The places of a hold that still holds or booked them.
    pub fn hold_places(&self, hold_id: &HoldId) -> Option<HeldPlaces> {
        let record = self.holds.get(hold_id)?;
        matches!(record.phase, Phase::Held | Phase::Booked).then(|| self.places_of(record))
    }
}
