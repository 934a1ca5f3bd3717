//! The inventory's results, errors and internal records.

use chrono::{DateTime, Utc};

use crate::hold::is_hold_expired;
use crate::ids::UserId;
use crate::seat::SeatId;
use crate::status::ReleaseReason;

/// The places a hold got, to show the user and price.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeldPlaces {
    /// In the order requested (chosen seats) or row order (best available).
    pub seats: Vec<SeatId>,
    /// `(section, quantity)` per standing section.
    pub standing: Vec<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// Some places are taken; `seat_ids` lists the taken ones among those
    /// asked for (empty when best-available found no block).
    #[error("the seats are not available")]
    SeatsUnavailable { seat_ids: Vec<SeatId> },
    #[error("there is no seat {0} in this venue")]
    UnknownSeat(SeatId),
    #[error("there is no standing section {0} in this venue")]
    UnknownSection(String),
    #[error("only {available} places are left in section {section}")]
    NotEnoughStanding { section: String, available: u32 },
    #[error("at most {limit} tickets per user for this show: {already} held or booked, {requested} requested")]
    TicketLimitExceeded {
        limit: u32,
        already: u32,
        requested: u32,
    },
    #[error("there is no such hold")]
    NoSuchHold,
    #[error("the hold is not active")]
    HoldNotActive,
    #[error("the hold has expired")]
    HoldExpired,
}

/// Where a hold is: holding places, booked, or over (and why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Held,
    Booked,
    Ended(ReleaseReason),
}

#[derive(Debug, Clone)]
pub(super) struct HoldRecord {
    pub user: UserId,
    /// Seat indices.
    pub seats: Vec<usize>,
    /// `(pool index, quantity)`.
    pub standing: Vec<(usize, u32)>,
    pub expires_at: DateTime<Utc>,
    pub phase: Phase,
}

impl HoldRecord {
    pub fn place_count(&self) -> u32 {
        let seats = u32::try_from(self.seats.len()).unwrap_or(u32::MAX);
        self.standing.iter().fold(seats, |total, (_, quantity)| {
            total.saturating_add(*quantity)
        })
    }

    /// Does the hold own its places at `now` (booked, or held and not expired)?
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        match self.phase {
            Phase::Booked => true,
            Phase::Held => !is_hold_expired(self.expires_at, now),
            Phase::Ended(_) => false,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct StandingPool {
    pub section: String,
    pub capacity: u32,
    /// Places held or booked by holds that were not ended yet.
    pub taken: u32,
}

/// Places found free for a hold, as indices.
pub(super) struct Claim {
    pub seats: Vec<usize>,
    pub standing: Vec<(usize, u32)>,
}

impl Claim {
    pub fn seats(seats: Vec<usize>) -> Claim {
        Claim {
            seats,
            standing: Vec::new(),
        }
    }
}
