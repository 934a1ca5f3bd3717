//! Validation and shape tests for venue layouts.

use serde_json::json;

use super::*;
use crate::seat::SeatId;

fn venue(sections: serde_json::Value) -> serde_json::Value {
    json!({
        "name": "Riverside Arena", "city": "Berlin", "address": "Ufer 1",
        "timezone": "Europe/Berlin", "sections": sections
    })
}

fn validate(value: serde_json::Value) -> Result<Venue, Vec<FieldError>> {
    serde_json::from_value::<VenueInput>(value)
        .unwrap()
        .validate()
}

fn errors_of(value: serde_json::Value) -> Vec<(String, String)> {
    validate(value)
        .unwrap_err()
        .into_iter()
        .map(|error| (error.field, error.message))
        .collect()
}

fn fields_of(value: serde_json::Value) -> Vec<String> {
    errors_of(value)
        .into_iter()
        .map(|(field, _)| field)
        .collect()
}

fn example() -> serde_json::Value {
    venue(json!([
        {"id": "A", "name": "Block A", "kind": "seated", "category": "premium",
         "rows": [{"label": "1", "seats": 20}, {"label": "2", "seats": 22}]},
        {"id": "FLOOR", "name": "Floor", "kind": "standing", "category": "ga",
         "capacity": 5000}
    ]))
}

fn seated(rows: serde_json::Value) -> serde_json::Value {
    venue(json!([{"id": "A", "kind": "seated", "category": "c", "rows": rows}]))
}

#[test]
fn the_api_example_is_valid() {
    let venue = validate(example()).unwrap();
    assert_eq!(venue.name, "Riverside Arena");
    let layout = &venue.layout;
    assert_eq!(layout.seat_count(), 42);
    assert_eq!(layout.standing_capacity(), 5000);
    let categories: Vec<String> = layout.categories().into_iter().collect();
    assert_eq!(categories, ["ga", "premium"]);
    let first = layout.seats().next().unwrap();
    assert_eq!(first.2.id.as_str(), "A-1-1");
    let last = layout.seats().last().unwrap();
    assert_eq!(last.2.id.as_str(), "A-2-22");
    let found = layout.find_seat(&SeatId::parse("A-2-7").unwrap()).unwrap();
    assert_eq!(
        (
            found.0.id.as_str(),
            found.1.label.as_str(),
            found.2.number.as_str()
        ),
        ("A", "2", "7")
    );
    assert!(layout
        .find_seat(&SeatId::parse("A-2-23").unwrap())
        .is_none());
    assert!(layout
        .find_seat(&SeatId::parse("FLOOR-1-1").unwrap())
        .is_none());
    assert_eq!(
        layout.find_standing("FLOOR").map(|(_, capacity)| capacity),
        Some(5000)
    );
    assert!(layout.find_standing("A").is_none());
    assert_eq!(layout.standing_sections().count(), 1);
}

#[test]
fn names_are_trimmed_and_default_to_the_id() {
    let mut input = example();
    input["name"] = json!("  Arena  ");
    input["sections"][0].as_object_mut().unwrap().remove("name");
    let venue = validate(input).unwrap();
    assert_eq!(venue.name, "Arena");
    assert_eq!(venue.layout.sections[0].name, "A");
}

#[test]
fn text_limits_at_the_limit_and_one_past_it() {
    let cases = [
        ("name", VENUE_NAME_LENGTH_MAX),
        ("city", CITY_LENGTH_MAX),
        ("address", ADDRESS_LENGTH_MAX),
        ("timezone", TIMEZONE_LENGTH_MAX),
    ];
    for (field, max) in cases {
        let mut at_limit = example();
        at_limit[field] = json!("a".repeat(max));
        assert!(validate(at_limit).is_ok(), "{field} at its limit");
        let mut past = example();
        past[field] = json!("a".repeat(max + 1));
        assert_eq!(fields_of(past), [field], "{field} past its limit");
    }
    let mut empty = example();
    empty["name"] = json!("   ");
    empty["city"] = json!("");
    empty["timezone"] = json!("");
    assert_eq!(fields_of(empty), ["name", "city", "timezone"]);
    let mut no_address = example();
    no_address.as_object_mut().unwrap().remove("address");
    assert_eq!(validate(no_address).unwrap().address, "");
}

#[test]
fn control_characters_and_bad_timezones_are_rejected() {
    let mut input = example();
    input["name"] = json!("Arena\u{7}");
    input["city"] = json!("Ber\nlin");
    input["timezone"] = json!("Europe/Berlin; DROP");
    input["sections"][0]["name"] = json!("Block\u{1b}[31m");
    assert_eq!(
        fields_of(input),
        ["name", "city", "timezone", "sections[0].name"]
    );
    let mut zone = example();
    zone["timezone"] = json!("Etc/GMT+1");
    assert!(validate(zone).is_ok());
}

#[test]
fn section_rules() {
    let input = venue(json!([
        {"id": "A-1", "kind": "seated", "category": "c", "rows": [{"label": "1", "seats": 1}]},
        {"id": "B", "kind": "balcony", "category": "c"},
        {"id": "B", "kind": "standing", "category": "bad category", "capacity": 10},
        {"id": "C", "kind": "seated", "category": "c"},
        {"id": "D", "kind": "seated", "category": "c", "rows": [], "capacity": 3},
        {"id": "E", "kind": "standing", "category": "c", "rows": [{"label": "1", "seats": 1}]},
        {"id": "F", "kind": "standing", "category": "c", "capacity": 0}
    ]));
    assert_eq!(
        fields_of(input),
        [
            "sections[0].id",
            "sections[1].kind",
            "sections[2].id",
            "sections[2].category",
            "sections[3].rows",
            "sections[4].capacity",
            "sections[4].rows",
            "sections[5].rows",
            "sections[5].capacity",
            "sections[6].capacity",
        ]
    );
}

#[test]
fn section_count_at_the_limit_and_one_past_it() {
    let section = |index: usize| json!({"id": format!("S{index}"), "kind": "standing", "category": "c", "capacity": 1});
    let at_limit: Vec<_> = (0..SECTIONS_MAX).map(section).collect();
    assert!(validate(venue(json!(at_limit))).is_ok());
    let past: Vec<_> = (0..=SECTIONS_MAX).map(section).collect();
    assert_eq!(fields_of(venue(json!(past))), ["sections"]);
    assert_eq!(fields_of(venue(json!([]))), ["sections"]);
}

#[test]
fn standing_capacity_at_the_limit_and_one_past_it() {
    let standing = |capacity: i64| {
        venue(json!([{"id": "F", "kind": "standing", "category": "c", "capacity": capacity}]))
    };
    assert!(validate(standing(i64::from(STANDING_CAPACITY_MAX))).is_ok());
    assert_eq!(
        fields_of(standing(i64::from(STANDING_CAPACITY_MAX) + 1)),
        ["sections[0].capacity"]
    );
    assert_eq!(fields_of(standing(-1)), ["sections[0].capacity"]);
    assert_eq!(fields_of(standing(i64::MAX)), ["sections[0].capacity"]);
}

#[test]
fn rows_at_the_limit_and_one_past_it() {
    let rows = |count: usize| -> Vec<_> {
        (0..count)
            .map(|index| json!({"label": format!("R{index}"), "seats": 1}))
            .collect()
    };
    assert!(validate(seated(json!(rows(ROWS_PER_SECTION_MAX)))).is_ok());
    assert_eq!(
        fields_of(seated(json!(rows(ROWS_PER_SECTION_MAX + 1)))),
        ["sections[0].rows"]
    );
}

#[test]
fn row_rules() {
    let input = seated(json!([
        {"label": "1", "seats": 2},
        {"label": "1", "seats": 2},
        {"label": "x".repeat(17), "seats": 2},
        {"label": "x".repeat(16), "seats": 0},
        {"label": "5", "seats": []}
    ]));
    assert_eq!(
        fields_of(input),
        [
            "sections[0].rows[1].label",
            "sections[0].rows[2].label",
            "sections[0].rows[3].seats",
            "sections[0].rows[4].seats"
        ]
    );
}

#[test]
fn seats_per_row_at_the_limit_and_one_past_it() {
    let count = i64::try_from(SEATS_PER_ROW_MAX).unwrap();
    let venue = validate(seated(json!([{"label": "1", "seats": count}]))).unwrap();
    assert_eq!(venue.layout.seat_count(), SEATS_PER_ROW_MAX);
    assert_eq!(
        fields_of(seated(json!([{"label": "1", "seats": count + 1}]))),
        ["sections[0].rows[0].seats"]
    );
    let list: Vec<_> = (1..=SEATS_PER_ROW_MAX + 1)
        .map(|number| json!({"number": number}))
        .collect();
    assert_eq!(
        fields_of(seated(json!([{"label": "1", "seats": list}]))),
        ["sections[0].rows[0].seats"]
    );
}

#[test]
fn seats_per_venue_at_the_limit_and_one_past_it() {
    // 200 rows of 1000 seats is exactly the venue limit.
    let rows = |count: usize| -> Vec<_> {
        (0..count)
            .map(|index| json!({"label": format!("R{index}"), "seats": 1000}))
            .collect()
    };
    let venue_with = |extra: i64| {
        let mut sections =
            vec![json!({"id": "A", "kind": "seated", "category": "c", "rows": rows(200)})];
        if extra > 0 {
            sections.push(json!({"id": "B", "kind": "seated", "category": "c", "rows": [{"label": "1", "seats": extra}]}));
        }
        venue(json!(sections))
    };
    assert_eq!(
        validate(venue_with(0)).unwrap().layout.seat_count(),
        SEATS_PER_VENUE_MAX
    );
    assert_eq!(fields_of(venue_with(1)), ["sections"]);
}

#[test]
fn a_huge_declared_venue_is_rejected_without_building_it() {
    // 200 sections × 500 rows × 1000 seats would be 100 million seats.
    let rows: Vec<_> = (0..ROWS_PER_SECTION_MAX)
        .map(|index| json!({"label": format!("R{index}"), "seats": 1000}))
        .collect();
    let sections: Vec<_> = (0..SECTIONS_MAX)
        .map(|index| json!({"id": format!("S{index}"), "kind": "seated", "category": "c", "rows": rows}))
        .collect();
    let errors = errors_of(venue(json!(sections)));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].1.contains("100000000"), "{errors:?}");
}

#[test]
fn seat_list_rules() {
    let input = seated(json!([{"label": "1", "seats": [
        {"number": 1, "x": 1.5, "y": -2.0, "accessible": true},
        {"number": "1"},
        {"number": -3},
        {"number": "12A", "category": "bad cat"},
        {"number": "x".repeat(17), "x": 2.0e6},
        {"number": "x".repeat(16), "category": "vip"}
    ]}]));
    assert_eq!(
        fields_of(input),
        [
            "sections[0].rows[0].seats[1].number",
            "sections[0].rows[0].seats[2].number",
            "sections[0].rows[0].seats[3].category",
            "sections[0].rows[0].seats[4].number",
            "sections[0].rows[0].seats[4].x",
        ]
    );
}

#[test]
fn seat_lists_keep_their_details() {
    let input = seated(json!([{"label": "1", "seats": [
        {"number": 7, "x": 1.5, "y": -2.0, "accessible": true},
        {"number": "7A", "category": "vip"}
    ]}]));
    let layout = validate(input).unwrap().layout;
    let seats: Vec<_> = layout.seats().map(|(_, _, seat)| seat.clone()).collect();
    assert_eq!(seats[0].id.as_str(), "A-1-7");
    assert_eq!(
        (seats[0].x, seats[0].y, seats[0].accessible),
        (Some(1.5), Some(-2.0), true)
    );
    assert_eq!(seats[0].category, "c");
    assert_eq!(seats[1].id.as_str(), "A-1-7A");
    assert_eq!(seats[1].category, "vip");
    let categories: Vec<String> = layout.categories().into_iter().collect();
    assert_eq!(categories, ["c", "vip"]);
}

#[test]
fn unknown_fields_are_rejected() {
    let mut input = example();
    input["sections"][1]["capcity"] = json!(5);
    assert!(serde_json::from_value::<VenueInput>(input).is_err());
    let mut seat = seated(json!([{"label": "1", "seats": [{"number": 1, "row": 2}]}]));
    assert!(serde_json::from_value::<VenueInput>(seat.clone()).is_err());
    seat["extra"] = json!(1);
    assert!(serde_json::from_value::<VenueInput>(seat).is_err());
}

#[test]
fn serializes_in_the_input_shape() {
    let layout = validate(example()).unwrap().layout;
    let json = serde_json::to_value(&layout).unwrap();
    assert_eq!(
        json,
        json!({"sections": [
            {"id": "A", "name": "Block A", "kind": "seated", "category": "premium",
             "rows": [{"label": "1", "seats": 20}, {"label": "2", "seats": 22}]},
            {"id": "FLOOR", "name": "Floor", "kind": "standing", "category": "ga", "capacity": 5000}
        ]})
    );
    let back: VenueLayout = serde_json::from_value(json).unwrap();
    assert_eq!(back, layout);
}

#[test]
fn detailed_rows_serialize_as_lists_and_round_trip() {
    let input = seated(json!([
        {"label": "1", "seats": [{"number": 2}, {"number": 1}]},
        {"label": "2", "seats": [{"number": 1, "accessible": true}]},
        {"label": "3", "seats": [{"number": 1, "category": "vip"}, {"number": 2, "category": "c"}]},
        {"label": "4", "seats": [{"number": 1, "x": 0.1, "y": 1e-9}]},
        {"label": "5", "seats": [{"number": "1"}, {"number": "2"}]}
    ]));
    let layout = validate(input).unwrap().layout;
    let json = serde_json::to_value(&layout).unwrap();
    let rows = &json["sections"][0]["rows"];
    assert_eq!(
        rows[0]["seats"],
        json!([{"number": "2", "accessible": false}, {"number": "1", "accessible": false}])
    );
    assert_eq!(
        rows[2]["seats"][0],
        json!({"number": "1", "category": "vip", "accessible": false})
    );
    assert_eq!(rows[4]["seats"], json!(2));
    let back: VenueLayout = serde_json::from_value(json).unwrap();
    assert_eq!(back, layout);
}

#[test]
fn deserializing_an_invalid_layout_fails_with_the_reason() {
    let bad = json!({"sections": [{"id": "A", "kind": "seated", "category": "c", "rows": [{"label": "1", "seats": 0}]}]});
    let error = serde_json::from_value::<VenueLayout>(bad)
        .unwrap_err()
        .to_string();
    assert!(error.contains("sections[0].rows[0].seats"), "{error}");
    assert!(serde_json::from_value::<VenueLayout>(json!({"sections": [], "x": 1})).is_err());
}
