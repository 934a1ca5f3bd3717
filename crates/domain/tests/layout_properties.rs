//! Property (3): a validated layout serializes to the input shape and
//! deserializes back to an equal layout, and to the same JSON again.

mod common;

use boxoffice_domain::{VenueInput, VenueLayout};
use proptest::prelude::*;
use serde_json::{json, Value};

fn seat() -> impl Strategy<Value = Value> {
    (
        prop::option::of(-1_000_000.0..1_000_000.0_f64),
        prop::option::of(-1_000.0..1_000.0_f64),
        prop::option::of(prop::sample::select(vec!["a", "b", "vip-1", "x_y"])),
        prop::option::of(any::<bool>()),
        prop::sample::select(vec!["", "A", "b", "bis"]),
    )
        .prop_map(|(x, y, category, accessible, suffix)| {
            let mut seat = json!({"suffix": suffix});
            if let Some(x) = x {
                seat["x"] = json!(x);
            }
            if let Some(y) = y {
                seat["y"] = json!(y);
            }
            if let Some(category) = category {
                seat["category"] = json!(category);
            }
            if let Some(accessible) = accessible {
                seat["accessible"] = json!(accessible);
            }
            seat
        })
}

fn row() -> impl Strategy<Value = Value> {
    prop_oneof![
        (1..=30_i64).prop_map(|count| json!(count)),
        prop::collection::vec(seat(), 1..=8).prop_map(|seats| {
            // Numbers are the position plus a suffix, so they are unique.
            let seats: Vec<Value> = seats
                .into_iter()
                .enumerate()
                .map(|(index, mut seat)| {
                    let suffix = seat["suffix"].as_str().unwrap_or_default().to_owned();
                    let object = seat.as_object_mut().expect("an object");
                    object.remove("suffix");
                    let number = if suffix.is_empty() {
                        json!(index + 1)
                    } else {
                        json!(format!("{}{suffix}", index + 1))
                    };
                    object.insert("number".to_owned(), number);
                    seat
                })
                .collect();
            json!(seats)
        }),
    ]
}

fn section() -> impl Strategy<Value = Value> {
    prop_oneof![
        (
            prop::collection::vec(row(), 1..=4),
            prop::option::of(Just(" Block  A ")),
            prop::sample::select(vec!["a", "b"])
        )
            .prop_map(|(rows, name, category)| {
                let rows: Vec<Value> = rows
                    .into_iter()
                    .enumerate()
                    .map(|(index, seats)| json!({"label": format!("R{index}"), "seats": seats}))
                    .collect();
                let mut section = json!({"kind": "seated", "category": category, "rows": rows});
                if let Some(name) = name {
                    section["name"] = json!(name);
                }
                section
            }),
        (1..=1_000_000_i64).prop_map(
            |capacity| json!({"kind": "standing", "category": "ga", "capacity": capacity})
        ),
    ]
}

fn layout() -> impl Strategy<Value = VenueLayout> {
    prop::collection::vec(section(), 1..=4).prop_map(|sections| {
        let sections: Vec<Value> = sections
            .into_iter()
            .enumerate()
            .map(|(index, mut section)| {
                section["id"] = json!(format!("S{index}"));
                section
            })
            .collect();
        let input =
            json!({"name": "Hall", "city": "Berlin", "timezone": "UTC", "sections": sections});
        serde_json::from_value::<VenueInput>(input)
            .expect("the input shape")
            .validate()
            .expect("a valid layout")
            .layout
    })
}

proptest! {
    #[test]
    fn serialize_then_deserialize_round_trips(layout in layout()) {
        let json = serde_json::to_string(&layout).expect("serializes");
        let back: VenueLayout = serde_json::from_str(&json).expect("deserializes");
        prop_assert_eq!(&back, &layout);
        prop_assert_eq!(serde_json::to_string(&back).expect("serializes"), json);
    }

    #[test]
    fn small_generated_layouts_round_trip(layout in common::small_layout()) {
        let value = serde_json::to_value(&layout).expect("serializes");
        let back: VenueLayout = serde_json::from_value(value).expect("deserializes");
        prop_assert_eq!(back, layout);
    }
}
