//! Choosing seats for a best-available hold (API.md "Holds").
//!
//! Best means: sections in layout order, rows in layout order (the first is
//! the best), and within a row the block of adjacent seats whose centre is
//! nearest the row's centre (on a tie, the left one). A block that would
//! leave a single orphan seat — an available seat stranded between the block
//! and a taken seat or the row's end — is taken only when every possible
//! block in the venue would strand one: single seats are the hardest to sell.
//!
//! Adjacency and the centre are measured in positions in the row's seat
//! list, which the layout defines as the order across the row.
//!
//! The scan is linear in the number of seats and allocates two reusable
//! per-row buffers plus the result, so it is fast for a 50,000-seat venue.

use crate::layout::{Row, Seat, VenueLayout};
use crate::seat::SeatId;

/// Picks `quantity` adjacent seats in one row of a seated section, all
/// available and, if `category` is given, all of that category. Returns
/// their IDs in row order, or `None` when no row has such a block.
pub fn best_available(
    layout: &VenueLayout,
    is_available: &dyn Fn(&SeatId) -> bool,
    quantity: u32,
    category: Option<&str>,
) -> Option<Vec<SeatId>> {
    best_available_at(
        layout,
        &|_, seat: &Seat| is_available(&seat.id),
        quantity,
        category,
    )
}

/// [`best_available`] for callers that keep availability by position: the
/// predicate gets each seat's position in layout order (the order of
/// [`VenueLayout::seats`]) with the seat, so that an in-memory inventory can
/// answer from an array instead of hashing every seat ID of the venue.
pub fn best_available_at(
    layout: &VenueLayout,
    is_available: &dyn Fn(usize, &Seat) -> bool,
    quantity: u32,
    category: Option<&str>,
) -> Option<Vec<SeatId>> {
    let quantity = usize::try_from(quantity)
        .ok()
        .filter(|&quantity| quantity > 0)?;
    let mut scan = RowScan::default();
    // The best block of the best row, kept in case every block strands a seat.
    let mut fallback: Option<(&Row, usize)> = None;
    let mut first_position = 0;
    for row in layout.sections.iter().flat_map(|section| section.rows()) {
        let row_start = first_position;
        first_position += row.seats.len();
        if row.seats.len() < quantity {
            continue;
        }
        scan.load(row, row_start, is_available, category);
        let choice = scan.choose(quantity);
        if let Some(start) = choice.without_orphan {
            return seat_ids(row, start, quantity);
        }
        if fallback.is_none() {
            fallback = choice.any.map(|start| (row, start));
        }
    }
    let (row, start) = fallback?;
    seat_ids(row, start, quantity)
}

fn seat_ids(row: &Row, start: usize, quantity: usize) -> Option<Vec<SeatId>> {
    let block = row.seats.get(start..start.checked_add(quantity)?)?;
    Some(block.iter().map(|seat| seat.id.clone()).collect())
}

/// The best block starts found in one row.
struct Choice {
    /// Nearest the centre among blocks that strand no seat.
    without_orphan: Option<usize>,
    /// Nearest the centre among all blocks.
    any: Option<usize>,
}

/// Per-row flags, reused from row to row to avoid allocating per row.
#[derive(Default)]
struct RowScan {
    /// The seat can be sold to anyone (it is what orphans are made of).
    available: Vec<bool>,
    /// The seat is available and of the requested category.
    eligible: Vec<bool>,
}

impl RowScan {
    fn load(
        &mut self,
        row: &Row,
        row_start: usize,
        is_available: &dyn Fn(usize, &Seat) -> bool,
        category: Option<&str>,
    ) {
        self.available.clear();
        self.eligible.clear();
        for (offset, seat) in row.seats.iter().enumerate() {
            let available = is_available(row_start + offset, seat);
            let wanted = category.is_none() || category == Some(seat.category.as_str());
            self.available.push(available);
            self.eligible.push(available && wanted);
        }
    }

    fn choose(&self, quantity: usize) -> Choice {
        let length = self.eligible.len();
        let mut choice = Choice {
            without_orphan: None,
            any: None,
        };
        let mut best_distance = usize::MAX;
        let mut best_clean_distance = usize::MAX;
        // Eligible seats in a row ending at the current position.
        let mut run = 0;
        for (end, &eligible) in self.eligible.iter().enumerate() {
            run = if eligible { run + 1 } else { 0 };
            if run < quantity {
                continue;
            }
            let start = end + 1 - quantity;
            // Twice the distance between the block's and the row's centres,
            // kept in integers: |(2·start + quantity − 1) − (length − 1)|.
            let distance = (2 * start + quantity).abs_diff(length);
            // Strict comparison keeps the left block on a tie.
            if distance < best_distance {
                best_distance = distance;
                choice.any = Some(start);
            }
            if distance < best_clean_distance && !self.strands_a_seat(start, quantity) {
                best_clean_distance = distance;
                choice.without_orphan = Some(start);
            }
        }
        choice
    }

    /// Would taking `start..start + quantity` leave an available seat alone
    /// on either side?
    fn strands_a_seat(&self, start: usize, quantity: usize) -> bool {
        let is_available = |position: Option<usize>| {
            position
                .and_then(|position| self.available.get(position))
                .copied()
                .unwrap_or(false)
        };
        let left = start.checked_sub(1);
        let left_alone =
            is_available(left) && !is_available(left.and_then(|left| left.checked_sub(1)));
        let right = start + quantity;
        let right_alone = is_available(Some(right)) && !is_available(Some(right + 1));
        left_alone || right_alone
    }
}

#[cfg(test)]
mod tests;
