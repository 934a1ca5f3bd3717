//! Property (2): best-available finds adjacent, available seats in one row
//! whenever some row has such a run, and picks exactly the block that a
//! brute-force reading of the rules picks.

mod common;

use std::collections::HashSet;

use boxoffice_domain::{best_available, SeatId, VenueLayout};
use proptest::prelude::*;

/// One candidate block: its row's place in preference order, its start,
/// whether it strands a seat, and twice its distance from the row centre.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    row: usize,
    start: usize,
    orphan: bool,
    distance: usize,
}

fn candidates(
    layout: &VenueLayout,
    available: &HashSet<SeatId>,
    quantity: usize,
    category: Option<&str>,
) -> Vec<Candidate> {
    let rows = layout.sections.iter().flat_map(|section| section.rows());
    let mut found = Vec::new();
    for (row_index, row) in rows.enumerate() {
        let free: Vec<bool> = row
            .seats
            .iter()
            .map(|seat| available.contains(&seat.id))
            .collect();
        let length = row.seats.len();
        if length < quantity {
            continue;
        }
        for start in 0..=length - quantity {
            let block = &row.seats[start..start + quantity];
            let fits = block.iter().all(|seat| {
                available.contains(&seat.id) && common::matches_category(category, &seat.category)
            });
            if !fits {
                continue;
            }
            let end = start + quantity;
            let left = start >= 1 && free[start - 1] && (start == 1 || !free[start - 2]);
            let right = end < length && free[end] && (end + 1 == length || !free[end + 1]);
            let centre_twice = 2 * start + quantity - 1;
            found.push(Candidate {
                row: row_index,
                start,
                orphan: left || right,
                distance: centre_twice.abs_diff(length - 1),
            });
        }
    }
    found
}

/// The rules, read literally: clean blocks first; then the first row; then
/// nearest the centre; then the left one.
fn expected(found: &[Candidate]) -> Option<Candidate> {
    let pool: Vec<Candidate> = if found.iter().any(|candidate| !candidate.orphan) {
        found
            .iter()
            .copied()
            .filter(|candidate| !candidate.orphan)
            .collect()
    } else {
        found.to_vec()
    };
    pool.into_iter()
        .min_by_key(|candidate| (candidate.row, candidate.distance, candidate.start))
}

fn scenario() -> impl Strategy<Value = (VenueLayout, Vec<bool>, u32, Option<&'static str>)> {
    (
        common::small_layout(),
        prop::collection::vec(prop::bool::weighted(0.6), 72),
        1..=5_u32,
        prop::option::of(prop::sample::select(vec!["a", "b", "zz"])),
    )
}

proptest! {
    #[test]
    fn finds_the_best_block_whenever_one_exists((layout, mask, quantity, category) in scenario()) {
        let available: HashSet<SeatId> = layout
            .seats()
            .zip(mask.iter().cycle())
            .filter(|(_, free)| **free)
            .map(|((_, _, seat), _)| seat.id.clone())
            .collect();
        let is_available = |seat: &SeatId| available.contains(seat);
        let chosen = best_available(&layout, &is_available, quantity, category);
        let found = candidates(&layout, &available, quantity as usize, category);
        match (expected(&found), chosen) {
            (None, None) => {}
            (None, Some(chosen)) => prop_assert!(false, "no block exists, yet {chosen:?} was chosen"),
            (Some(best), None) => prop_assert!(false, "{best:?} exists, yet nothing was chosen"),
            (Some(best), Some(chosen)) => {
                prop_assert_eq!(chosen.len(), quantity as usize);
                // One row, adjacent, in row order.
                let (_, row, first) = layout.find_seat(&chosen[0]).expect("chosen seats exist");
                let position = row.seats.iter().position(|seat| seat.id == first.id).expect("in its row");
                let block: Vec<SeatId> = row.seats[position..position + chosen.len()].iter().map(|seat| seat.id.clone()).collect();
                prop_assert_eq!(&block, &chosen);
                for seat in &chosen {
                    prop_assert!(available.contains(seat));
                    let (_, _, seat) = layout.find_seat(seat).expect("chosen seats exist");
                    prop_assert!(common::matches_category(category, &seat.category));
                }
                // And exactly the block the rules pick.
                let rows: Vec<_> = layout.sections.iter().flat_map(|section| section.rows()).collect();
                let best_row = rows[best.row];
                prop_assert_eq!(&chosen[0], &best_row.seats[best.start].id);
            }
        }
    }
}
