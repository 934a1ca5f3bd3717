//! Hold request parsing, at the limits and one past them.

use serde_json::json;

use super::*;

fn selection(body: serde_json::Value) -> Result<HoldSelection, Vec<FieldError>> {
    serde_json::from_value::<HoldRequestInput>(body)
        .unwrap()
        .selection()
}

fn fields(body: serde_json::Value) -> Vec<String> {
    selection(body)
        .unwrap_err()
        .into_iter()
        .map(|error| error.field)
        .collect()
}

fn seat_list(count: usize) -> Vec<String> {
    (1..=count).map(|number| format!("A-1-{number}")).collect()
}

#[test]
fn chosen_seats() {
    let chosen = selection(json!({"show_id": "shw_x", "seat_ids": ["A-1-3", "A-1-4"]})).unwrap();
    let expected = ["A-1-3", "A-1-4"]
        .map(|text| SeatId::parse(text).unwrap())
        .to_vec();
    assert_eq!(chosen, HoldSelection::Seats(expected));
    assert_eq!(chosen.place_count(), 2);
}

#[test]
fn seat_count_at_the_limit_and_one_past_it() {
    let at_limit = selection(json!({"show_id": "s", "seat_ids": seat_list(20)})).unwrap();
    assert_eq!(at_limit.place_count(), SEATS_PER_HOLD_MAX);
    assert_eq!(
        fields(json!({"show_id": "s", "seat_ids": seat_list(21)})),
        ["seat_ids"]
    );
    assert_eq!(
        fields(json!({"show_id": "s", "seat_ids": []})),
        ["seat_ids"]
    );
}

#[test]
fn bad_and_duplicate_seat_ids_are_reported_each() {
    let body = json!({"show_id": "s", "seat_ids": ["A-1-1", "A-1", "A-1-1", "A-1-2", "B-2-x_"]});
    assert_eq!(fields(body), ["seat_ids[1]", "seat_ids[2]", "seat_ids[4]"]);
}

#[test]
fn best_available() {
    assert_eq!(
        selection(json!({"show_id": "s", "quantity": 2, "category": "premium"})).unwrap(),
        HoldSelection::BestAvailable {
            quantity: 2,
            category: Some("premium".to_owned())
        }
    );
    assert_eq!(
        selection(json!({"show_id": "s", "quantity": 1})).unwrap(),
        HoldSelection::BestAvailable {
            quantity: 1,
            category: None
        }
    );
    assert_eq!(
        fields(json!({"show_id": "s", "quantity": 2, "category": "no spaces"})),
        ["category"]
    );
}

#[test]
fn quantity_at_the_limits_and_one_past_them() {
    assert!(selection(json!({"show_id": "s", "quantity": 20})).is_ok());
    assert_eq!(
        fields(json!({"show_id": "s", "quantity": 21})),
        ["quantity"]
    );
    assert!(selection(json!({"show_id": "s", "quantity": 1})).is_ok());
    assert_eq!(fields(json!({"show_id": "s", "quantity": 0})), ["quantity"]);
    assert_eq!(
        fields(json!({"show_id": "s", "quantity": -1})),
        ["quantity"]
    );
    assert_eq!(
        fields(json!({"show_id": "s", "quantity": i64::MAX})),
        ["quantity"]
    );
    assert_eq!(
        fields(json!({"show_id": "s", "section": "F", "quantity": 21})),
        ["quantity"]
    );
}

#[test]
fn standing() {
    assert_eq!(
        selection(json!({"show_id": "s", "section": "FLOOR", "quantity": 2})).unwrap(),
        HoldSelection::Standing {
            section: "FLOOR".to_owned(),
            quantity: 2
        }
    );
    assert_eq!(
        fields(json!({"show_id": "s", "section": "FLOOR"})),
        ["quantity"]
    );
    assert_eq!(
        fields(json!({"show_id": "s", "section": "FL-OOR", "quantity": 1})),
        ["section"]
    );
    assert_eq!(
        fields(json!({"show_id": "s", "section": "FLOOR", "quantity": 1, "category": "ga"})),
        ["category"]
    );
}

#[test]
fn exactly_one_form() {
    assert_eq!(fields(json!({"show_id": "s"})), ["quantity"]);
    assert_eq!(
        fields(json!({"show_id": "s", "seat_ids": ["A-1-1"], "quantity": 1})),
        ["seat_ids"]
    );
    assert_eq!(
        fields(json!({"show_id": "s", "seat_ids": ["A-1-1"], "section": "F"})),
        ["seat_ids"]
    );
    assert_eq!(
        fields(json!({"show_id": "s", "category": "ga"})),
        ["quantity"]
    );
}

#[test]
fn unknown_fields_are_rejected() {
    let body = json!({"show_id": "s", "quantity": 1, "user_id": "usr_x"});
    assert!(serde_json::from_value::<HoldRequestInput>(body).is_err());
}
