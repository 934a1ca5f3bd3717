//! Turning a hold selection into concrete free places: which seats and
//! standing pools it names, and whether they are free.

use std::collections::HashSet;

use super::types::{Claim, InventoryError};
use super::ShowInventory;
use crate::best_available::best_available;
use crate::hold::HoldSelection;
use crate::seat::SeatId;

impl ShowInventory {
    /// Maps a selection onto seat indices and standing pools.
    pub(super) fn locate<'a>(
        &self,
        selection: &'a HoldSelection,
    ) -> Result<Request<'a>, InventoryError> {
        let request = match selection {
            HoldSelection::Seats(seat_ids) => {
                let mut seen = HashSet::new();
                let mut seats = Vec::with_capacity(seat_ids.len());
                for seat_id in seat_ids {
                    let index = *self
                        .seat_index
                        .get(seat_id)
                        .ok_or_else(|| InventoryError::UnknownSeat(seat_id.clone()))?;
                    // A seat listed twice is held once.
                    if seen.insert(index) {
                        seats.push(index);
                    }
                }
                Request::Seats(seats)
            }
            HoldSelection::BestAvailable { quantity, category } => Request::BestAvailable {
                quantity: *quantity,
                category: category.as_deref(),
            },
            HoldSelection::Standing { section, quantity } => {
                let pool = *self
                    .pool_index
                    .get(section)
                    .ok_or_else(|| InventoryError::UnknownSection(section.clone()))?;
                Request::Standing {
                    pool,
                    quantity: *quantity,
                }
            }
        };
        if request.place_count() == 0 {
            // An empty hold would be a hold on nothing; nothing is never
            // available.
            return Err(InventoryError::SeatsUnavailable {
                seat_ids: Vec::new(),
            });
        }
        Ok(request)
    }

    /// Finds the free places the request asks for, without taking them.
    pub(super) fn claim(&self, request: Request<'_>) -> Result<Claim, InventoryError> {
        match request {
            Request::Seats(seats) => {
                let taken: Vec<SeatId> = seats
                    .iter()
                    .filter(|&&index| !self.is_free(index))
                    .filter_map(|&index| self.seat_ids.get(index).cloned())
                    .collect();
                if !taken.is_empty() {
                    return Err(InventoryError::SeatsUnavailable { seat_ids: taken });
                }
                Ok(Claim::seats(seats))
            }
            Request::BestAvailable { quantity, category } => {
                let is_free = |seat: &SeatId| {
                    self.seat_index
                        .get(seat)
                        .is_some_and(|&index| self.is_free(index))
                };
                let chosen = best_available(&self.layout, &is_free, quantity, category).ok_or(
                    InventoryError::SeatsUnavailable {
                        seat_ids: Vec::new(),
                    },
                )?;
                let seats = chosen
                    .iter()
                    .filter_map(|seat| self.seat_index.get(seat).copied())
                    .collect();
                Ok(Claim::seats(seats))
            }
            Request::Standing { pool, quantity } => {
                let Some(standing) = self.pools.get(pool) else {
                    return Err(InventoryError::UnknownSection(String::new()));
                };
                let available = standing.capacity.saturating_sub(standing.taken);
                if quantity > available {
                    return Err(InventoryError::NotEnoughStanding {
                        section: standing.section.clone(),
                        available,
                    });
                }
                Ok(Claim {
                    seats: Vec::new(),
                    standing: vec![(pool, quantity)],
                })
            }
        }
    }

    fn is_free(&self, seat: usize) -> bool {
        matches!(self.seat_owner.get(seat), Some(None))
    }
}

/// A selection mapped onto this show's seats and pools.
pub(super) enum Request<'a> {
    Seats(Vec<usize>),
    BestAvailable {
        quantity: u32,
        category: Option<&'a str>,
    },
    Standing {
        pool: usize,
        quantity: u32,
    },
}

impl Request<'_> {
    pub(super) fn place_count(&self) -> u32 {
        match self {
            Request::Seats(seats) => u32::try_from(seats.len()).unwrap_or(u32::MAX),
            Request::BestAvailable { quantity, .. } | Request::Standing { quantity, .. } => {
                *quantity
            }
        }
    }
}
