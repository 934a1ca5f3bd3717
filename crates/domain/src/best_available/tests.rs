//! Best-available cases. Rows are drawn as strings: `.` a free seat, `x` a
//! taken one, `v` a free seat of category "vip" (others are "std").

use std::collections::HashSet;

use super::*;
use crate::layout::{Seat, Section, SectionKind};

fn layout(sections: &[&[&str]]) -> (VenueLayout, HashSet<SeatId>) {
    let mut taken = HashSet::new();
    let sections = sections
        .iter()
        .enumerate()
        .map(|(section_index, rows)| {
            let section_id = format!("S{section_index}");
            let rows = rows
                .iter()
                .enumerate()
                .map(|(row_index, drawing)| {
                    let label = format!("{}", row_index + 1);
                    let seats = drawing
                        .chars()
                        .enumerate()
                        .map(|(seat_index, mark)| {
                            let number = format!("{}", seat_index + 1);
                            let id = SeatId::new(&section_id, &label, &number).unwrap();
                            if mark == 'x' {
                                taken.insert(id.clone());
                            }
                            let category = if mark == 'v' { "vip" } else { "std" };
                            Seat {
                                id,
                                number,
                                x: None,
                                y: None,
                                category: category.to_owned(),
                                accessible: false,
                            }
                        })
                        .collect();
                    Row { label, seats }
                })
                .collect();
            Section {
                id: section_id.clone(),
                name: section_id,
                category: "std".to_owned(),
                kind: SectionKind::Seated { rows },
            }
        })
        .collect();
    (VenueLayout { sections }, taken)
}

fn pick(sections: &[&[&str]], quantity: u32, category: Option<&str>) -> Option<Vec<String>> {
    let (layout, taken) = layout(sections);
    let is_available = |id: &SeatId| !taken.contains(id);
    best_available(&layout, &is_available, quantity, category)
        .map(|seats| seats.iter().map(|seat| seat.as_str().to_owned()).collect())
}

fn ids(texts: &[&str]) -> Option<Vec<String>> {
    Some(texts.iter().map(|text| (*text).to_owned()).collect())
}

#[test]
fn prefers_the_centre_of_the_row() {
    assert_eq!(pick(&[&["........"]], 2, None), ids(&["S0-1-4", "S0-1-5"]));
    assert_eq!(
        pick(&[&["......."]], 3, None),
        ids(&["S0-1-3", "S0-1-4", "S0-1-5"])
    );
    assert_eq!(pick(&[&["......."]], 1, None), ids(&["S0-1-4"]));
}

#[test]
fn ties_go_to_the_left_block() {
    // Two seats in a row of 7: 3-4 and 4-5 are equally far from the centre.
    assert_eq!(pick(&[&["......."]], 2, None), ids(&["S0-1-3", "S0-1-4"]));
}

#[test]
fn first_row_and_first_section_win() {
    assert_eq!(
        pick(&[&["xx..", "...."]], 2, None),
        ids(&["S0-1-3", "S0-1-4"])
    );
    assert_eq!(
        pick(&[&["x.x."], &["...."]], 2, None),
        ids(&["S1-1-1", "S1-1-2"])
    );
    assert_eq!(
        pick(&[&["xxxx", "...."]], 4, None),
        ids(&["S0-2-1", "S0-2-2", "S0-2-3", "S0-2-4"])
    );
}

#[test]
fn category_filter() {
    assert_eq!(
        pick(&[&["..vv..", "vvvvvv"]], 2, Some("vip")),
        ids(&["S0-1-3", "S0-1-4"])
    );
    assert_eq!(
        pick(&[&["..v...", "vvvvvv"]], 2, Some("vip")),
        ids(&["S0-2-3", "S0-2-4"])
    );
    assert_eq!(
        pick(&[&["vv..vv"]], 2, Some("std")),
        ids(&["S0-1-3", "S0-1-4"])
    );
    assert_eq!(pick(&[&["......"]], 1, Some("nope")), None);
}

#[test]
fn avoids_orphans_within_a_row() {
    // Free seats 2-6: 3-4 strands 2 and 4-5 strands 6; of the clean blocks
    // 2-3 and 5-6, equally far from the centre, the left one wins.
    assert_eq!(pick(&[&["x.....x"]], 2, None), ids(&["S0-1-2", "S0-1-3"]));
    // Row "x..x....": the centre block 5-6 leaves 7-8, clean.
    assert_eq!(pick(&[&["x..x...."]], 2, None), ids(&["S0-1-5", "S0-1-6"]));
    // A run of 3 when asking 2 always strands one: a clean pair elsewhere wins.
    assert_eq!(
        pick(&[&["x...xxxx", "xx..xxxx"]], 2, None),
        ids(&["S0-2-3", "S0-2-4"])
    );
}

#[test]
fn row_end_counts_as_a_wall_for_orphans() {
    // In "...." taking 2-3 strands 1 and 4, so 1-2 or 3-4 is chosen.
    assert_eq!(pick(&[&["...."]], 2, None), ids(&["S0-1-1", "S0-1-2"]));
}

#[test]
fn takes_an_orphan_block_when_nothing_cleaner_exists() {
    assert_eq!(
        pick(&[&["x...x", "xx.xx"]], 2, None),
        ids(&["S0-1-2", "S0-1-3"])
    );
}

#[test]
fn an_orphan_of_another_category_still_counts() {
    // Seat 1 of row 1 is a free vip seat; taking std seats 2-3 would strand it.
    assert_eq!(
        pick(&[&["v..xxx", "..xxxx"]], 2, Some("std")),
        ids(&["S0-2-1", "S0-2-2"])
    );
}

#[test]
fn none_when_nothing_fits() {
    assert_eq!(pick(&[&["xxxx", "x.x."]], 2, None), None);
    assert_eq!(pick(&[&["...", "...."]], 5, None), None);
    assert_eq!(pick(&[&["...."]], 0, None), None);
    assert_eq!(pick(&[], 1, None), None);
}

#[test]
fn standing_sections_are_ignored() {
    let layout = VenueLayout {
        sections: vec![Section {
            id: "F".to_owned(),
            name: "F".to_owned(),
            category: "ga".to_owned(),
            kind: SectionKind::Standing { capacity: 100 },
        }],
    };
    assert_eq!(best_available(&layout, &|_| true, 1, None), None);
}

#[test]
fn finds_the_last_free_pair_of_a_fifty_thousand_seat_venue() {
    // 50 sections × 50 rows × 20 seats, all taken but the very last seat
    // pair: the whole venue is scanned. (Speed is measured in benchmarks,
    // never asserted in tests.)
    let row = "xxxxxxxxxxxxxxxxxxxx";
    let rows: Vec<&str> = vec![row; 50];
    let mut sections: Vec<&[&str]> = vec![rows.as_slice(); 49];
    let mut last_rows = rows.clone();
    last_rows[49] = "xxxxxxxxxxxxxxxxxx..";
    sections.push(last_rows.as_slice());
    let (layout, taken) = layout(&sections);
    assert_eq!(layout.seat_count(), 50_000);
    let is_available = |id: &SeatId| !taken.contains(id);
    let seats = best_available(&layout, &is_available, 2, None).unwrap();
    assert_eq!(seats[0].as_str(), "S49-50-19");
}
