//! Small random venue layouts for the property tests.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use boxoffice_domain::{VenueInput, VenueLayout};
use proptest::prelude::*;
use serde_json::json;

/// Seat categories the generated layouts use; "zz" is never used, so a
/// best-available request for it never finds seats.
pub const CATEGORIES: [&str; 2] = ["a", "b"];

#[derive(Debug, Clone)]
pub enum SectionSpec {
    /// Rows of seats, each seat given by its category index.
    Seated(Vec<Vec<usize>>),
    Standing(u32),
}

pub fn section_spec() -> impl Strategy<Value = SectionSpec> {
    prop_oneof![
        3 => prop::collection::vec(prop::collection::vec(0..CATEGORIES.len(), 1..=8), 1..=3)
            .prop_map(SectionSpec::Seated),
        1 => (1..=10_u32).prop_map(SectionSpec::Standing),
    ]
}

/// A layout of 1 to 3 small sections, built through the public validation.
pub fn small_layout() -> impl Strategy<Value = VenueLayout> {
    prop::collection::vec(section_spec(), 1..=3).prop_map(|specs| build_layout(&specs))
}

pub fn build_layout(specs: &[SectionSpec]) -> VenueLayout {
    let sections: Vec<_> = specs
        .iter()
        .enumerate()
        .map(|(index, spec)| match spec {
            SectionSpec::Seated(rows) => {
                let rows: Vec<_> = rows
                    .iter()
                    .enumerate()
                    .map(|(row_index, seats)| {
                        let seats: Vec<_> = seats
                            .iter()
                            .enumerate()
                            .map(|(number, category)| {
                                json!({"number": number + 1, "category": CATEGORIES[*category]})
                            })
                            .collect();
                        json!({"label": format!("{}", row_index + 1), "seats": seats})
                    })
                    .collect();
                json!({"id": format!("S{index}"), "kind": "seated", "category": "a", "rows": rows})
            }
            SectionSpec::Standing(capacity) => {
                json!({"id": format!("F{index}"), "kind": "standing", "category": "ga", "capacity": capacity})
            }
        })
        .collect();
    let input = json!({"name": "Hall", "city": "Berlin", "timezone": "UTC", "sections": sections});
    serde_json::from_value::<VenueInput>(input)
        .expect("generated input has the input shape")
        .validate()
        .expect("generated layouts are valid")
        .layout
}

/// Does a seat of `seat_category` satisfy an optional category filter?
pub fn matches_category(wanted: Option<&str>, seat_category: &str) -> bool {
    wanted.is_none() || wanted == Some(seat_category)
}
