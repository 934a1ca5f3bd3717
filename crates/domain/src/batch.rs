//! Deciding a batch of hold requests for one show at once, as the group
//! commit does: each request all-or-nothing, in arrival order, against the
//! state the batch locked. The result must be exactly what serial execution
//! of the same requests in the same order would give (property-tested
//! against [`crate::ShowInventory`]).

use std::collections::HashMap;

use crate::{SeatId, UserId};

/// One request of a batch, resolved to concrete places.
#[derive(Debug, Clone)]
pub struct BatchRequest {
    pub user: UserId,
    pub seats: Vec<SeatId>,
    /// (standing section, quantity)
    pub standing: Vec<(String, u32)>,
}

impl BatchRequest {
    pub fn place_count(&self) -> u32 {
        self.seats.len() as u32
            + self
                .standing
                .iter()
                .map(|(_, quantity)| quantity)
                .sum::<u32>()
    }
}

/// What the batch locked: which of the requested seats are free, the free
/// places per standing section, and each user's places already held or booked.
#[derive(Debug, Clone, Default)]
pub struct BatchState {
    pub free_seats: HashMap<SeatId, bool>,
    pub standing_free: HashMap<String, u32>,
    pub user_places: HashMap<UserId, u32>,
    pub max_tickets_per_user: u32,
}

/// The decision for one request, checked in the same order as a single hold
/// transaction: the buyer's limit, then the seats, then standing places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchDecision {
    Accept,
    TicketLimitExceeded {
        limit: u32,
        already: u32,
        requested: u32,
    },
    SeatsUnavailable {
        seat_ids: Vec<SeatId>,
    },
    StandingUnavailable {
        section: String,
        available: u32,
    },
}

/// Decides every request in order, updating `state` with the winners.
pub fn decide_batch(state: &mut BatchState, requests: &[BatchRequest]) -> Vec<BatchDecision> {
    requests
        .iter()
        .map(|request| decide_one(state, request))
        .collect()
}

fn decide_one(state: &mut BatchState, request: &BatchRequest) -> BatchDecision {
    let requested = request.place_count();
    let already = state.user_places.get(&request.user).copied().unwrap_or(0);
    if already.saturating_add(requested) > state.max_tickets_per_user {
        return BatchDecision::TicketLimitExceeded {
            limit: state.max_tickets_per_user,
            already,
            requested,
        };
    }
    let mut unavailable: Vec<SeatId> = request
        .seats
        .iter()
        .filter(|seat| !state.free_seats.get(*seat).copied().unwrap_or(false))
        .cloned()
        .collect();
    if !unavailable.is_empty() {
        unavailable.sort();
        return BatchDecision::SeatsUnavailable {
            seat_ids: unavailable,
        };
    }
    let mut wanted: HashMap<&str, u32> = HashMap::new();
    for (section, quantity) in &request.standing {
        *wanted.entry(section.as_str()).or_default() += quantity;
    }
    for (section, _) in &request.standing {
        let available = state.standing_free.get(section).copied().unwrap_or(0);
        if wanted[section.as_str()] > available {
            return BatchDecision::StandingUnavailable {
                section: section.clone(),
                available,
            };
        }
    }
    for seat in &request.seats {
        state.free_seats.insert(seat.clone(), false);
    }
    for (section, quantity) in &request.standing {
        if let Some(free) = state.standing_free.get_mut(section) {
            *free -= quantity;
        }
    }
    *state.user_places.entry(request.user.clone()).or_default() += requested;
    BatchDecision::Accept
}
