//! Unit tests of the inventory model; the property tests live in
//! `tests/inventory_properties.rs`.

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::layout::VenueInput;
use crate::status::SeatStatus;

fn layout() -> VenueLayout {
    let input = json!({
        "name": "Hall", "city": "Berlin", "timezone": "Europe/Berlin",
        "sections": [
            {"id": "A", "kind": "seated", "category": "premium",
             "rows": [{"label": "1", "seats": 6}, {"label": "2", "seats": 6}]},
            {"id": "F", "kind": "standing", "category": "ga", "capacity": 5}
        ]
    });
    serde_json::from_value::<VenueInput>(input)
        .unwrap()
        .validate()
        .unwrap()
        .layout
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + seconds, 0).unwrap()
}

fn ttl() -> Duration {
    Duration::seconds(600)
}

fn hold_id(number: u128) -> HoldId {
    HoldId::generate(1, number)
}

fn user(number: u128) -> UserId {
    UserId::generate(1, number)
}

fn seats(texts: &[&str]) -> HoldSelection {
    HoldSelection::Seats(
        texts
            .iter()
            .map(|text| SeatId::parse(text).unwrap())
            .collect(),
    )
}

fn standing(quantity: u32) -> HoldSelection {
    HoldSelection::Standing {
        section: "F".to_owned(),
        quantity,
    }
}

#[test]
fn hold_takes_places_all_or_nothing() {
    let mut inventory = ShowInventory::new(&layout(), 4);
    let held = inventory
        .hold(
            hold_id(1),
            &user(1),
            &seats(&["A-1-1", "A-1-2"]),
            at(0),
            ttl(),
        )
        .unwrap();
    assert_eq!(held.seats.len(), 2);
    let error = inventory
        .hold(
            hold_id(2),
            &user(2),
            &seats(&["A-1-3", "A-1-2", "A-1-1"]),
            at(1),
            ttl(),
        )
        .unwrap_err();
    assert_eq!(
        error,
        InventoryError::SeatsUnavailable {
            seat_ids: vec![
                SeatId::parse("A-1-2").unwrap(),
                SeatId::parse("A-1-1").unwrap()
            ]
        }
    );
    // Nothing of the failed request was taken.
    assert_eq!(
        inventory.seat_status(&SeatId::parse("A-1-3").unwrap(), at(1)),
        Some(SeatStatus::Available)
    );
    assert_eq!(
        inventory.seat_status(&SeatId::parse("A-1-1").unwrap(), at(1)),
        Some(SeatStatus::Held)
    );
    inventory.check_invariants(at(1)).unwrap();
}

#[test]
fn unknown_places_are_reported() {
    let mut inventory = ShowInventory::new(&layout(), 4);
    assert_eq!(
        inventory.hold(hold_id(1), &user(1), &seats(&["A-9-1"]), at(0), ttl()),
        Err(InventoryError::UnknownSeat(SeatId::parse("A-9-1").unwrap()))
    );
    let nowhere = HoldSelection::Standing {
        section: "A".to_owned(),
        quantity: 1,
    };
    assert_eq!(
        inventory.hold(hold_id(1), &user(1), &nowhere, at(0), ttl()),
        Err(InventoryError::UnknownSection("A".to_owned()))
    );
}

#[test]
fn standing_never_passes_capacity() {
    let mut inventory = ShowInventory::new(&layout(), 10);
    inventory
        .hold(hold_id(1), &user(1), &standing(3), at(0), ttl())
        .unwrap();
    assert_eq!(
        inventory.hold(hold_id(2), &user(2), &standing(3), at(0), ttl()),
        Err(InventoryError::NotEnoughStanding {
            section: "F".to_owned(),
            available: 2
        })
    );
    let held = inventory
        .hold(hold_id(3), &user(2), &standing(2), at(0), ttl())
        .unwrap();
    assert_eq!(held.standing, [("F".to_owned(), 2)]);
    assert_eq!(inventory.standing_available("F", at(0)), Some(0));
    inventory.check_invariants(at(0)).unwrap();
}

#[test]
fn ticket_limit_counts_held_and_booked_and_is_checked_first() {
    let mut inventory = ShowInventory::new(&layout(), 4);
    let buyer = user(1);
    inventory
        .hold(
            hold_id(1),
            &buyer,
            &seats(&["A-1-1", "A-1-2"]),
            at(0),
            ttl(),
        )
        .unwrap();
    inventory.confirm(&hold_id(1), at(1)).unwrap();
    inventory
        .hold(hold_id(2), &buyer, &standing(1), at(2), ttl())
        .unwrap();
    // Two seats asked for, one of them taken: the limit is reported, not the seat.
    assert_eq!(
        inventory.hold(
            hold_id(3),
            &buyer,
            &seats(&["A-1-1", "A-2-1"]),
            at(3),
            ttl()
        ),
        Err(InventoryError::TicketLimitExceeded {
            limit: 4,
            already: 3,
            requested: 2
        })
    );
    inventory
        .hold(hold_id(4), &buyer, &seats(&["A-2-1"]), at(3), ttl())
        .unwrap();
    assert_eq!(inventory.user_places(&buyer), 4);
    // Cancelling the booking frees the user's allowance too.
    inventory.cancel(&hold_id(1)).unwrap();
    assert_eq!(inventory.user_places(&buyer), 2);
    inventory.check_invariants(at(3)).unwrap();
}

#[test]
fn expired_holds_never_block_even_before_the_sweep() {
    let mut inventory = ShowInventory::new(&layout(), 10);
    inventory
        .hold(hold_id(1), &user(1), &seats(&["A-1-1"]), at(0), ttl())
        .unwrap();
    inventory
        .hold(hold_id(2), &user(1), &standing(4), at(0), ttl())
        .unwrap();
    // At exactly expires_at the hold is still live.
    assert!(inventory
        .hold(hold_id(3), &user(2), &seats(&["A-1-1"]), at(600), ttl())
        .is_err());
    assert_eq!(
        inventory.seat_status(&SeatId::parse("A-1-1").unwrap(), at(601)),
        Some(SeatStatus::Available)
    );
    assert_eq!(inventory.standing_available("F", at(601)), Some(5));
    inventory
        .hold(hold_id(4), &user(2), &seats(&["A-1-1"]), at(601), ttl())
        .unwrap();
    // The hold swept on the way is still announced, once.
    assert_eq!(inventory.expire_due(at(601)), [hold_id(1), hold_id(2)]);
    assert_eq!(inventory.expire_due(at(601)), Vec::<HoldId>::new());
    assert_eq!(
        inventory.confirm(&hold_id(1), at(601)),
        Err(InventoryError::HoldExpired)
    );
    assert_eq!(
        inventory.release(&hold_id(1)),
        Err(InventoryError::HoldExpired)
    );
    inventory.check_invariants(at(601)).unwrap();
}

#[test]
fn confirm_fails_when_expired_and_frees_the_places() {
    let mut inventory = ShowInventory::new(&layout(), 4);
    inventory
        .hold(hold_id(1), &user(1), &seats(&["A-1-1"]), at(0), ttl())
        .unwrap();
    assert_eq!(
        inventory.confirm(&hold_id(1), at(601)),
        Err(InventoryError::HoldExpired)
    );
    assert_eq!(inventory.user_places(&user(1)), 0);
    assert_eq!(inventory.expire_due(at(601)), [hold_id(1)]);
    inventory.check_invariants(at(601)).unwrap();
}

#[test]
fn lifecycle_errors() {
    let mut inventory = ShowInventory::new(&layout(), 4);
    assert_eq!(
        inventory.release(&hold_id(9)),
        Err(InventoryError::NoSuchHold)
    );
    assert_eq!(
        inventory.confirm(&hold_id(9), at(0)),
        Err(InventoryError::NoSuchHold)
    );
    assert_eq!(
        inventory.cancel(&hold_id(9)),
        Err(InventoryError::NoSuchHold)
    );
    inventory
        .hold(hold_id(1), &user(1), &seats(&["A-1-1"]), at(0), ttl())
        .unwrap();
    assert_eq!(
        inventory.cancel(&hold_id(1)),
        Err(InventoryError::HoldNotActive)
    );
    inventory.confirm(&hold_id(1), at(1)).unwrap();
    assert_eq!(
        inventory.seat_status(&SeatId::parse("A-1-1").unwrap(), at(9_999)),
        Some(SeatStatus::Booked)
    );
    assert_eq!(
        inventory.confirm(&hold_id(1), at(1)),
        Err(InventoryError::HoldNotActive)
    );
    assert_eq!(
        inventory.release(&hold_id(1)),
        Err(InventoryError::HoldNotActive)
    );
    // A booked hold never expires.
    assert_eq!(inventory.expire_due(at(9_999)), Vec::<HoldId>::new());
    inventory.cancel(&hold_id(1)).unwrap();
    assert_eq!(
        inventory.cancel(&hold_id(1)),
        Err(InventoryError::HoldNotActive)
    );
    assert_eq!(inventory.hold_places(&hold_id(1)), None);
    // A hold ID is used once.
    assert_eq!(
        inventory.hold(hold_id(1), &user(1), &seats(&["A-1-2"]), at(2), ttl()),
        Err(InventoryError::HoldNotActive)
    );
    inventory.check_invariants(at(2)).unwrap();
}

#[test]
fn release_puts_places_back() {
    let mut inventory = ShowInventory::new(&layout(), 4);
    inventory
        .hold(hold_id(1), &user(1), &standing(2), at(0), ttl())
        .unwrap();
    inventory.release(&hold_id(1)).unwrap();
    assert_eq!(inventory.standing_available("F", at(0)), Some(5));
    assert_eq!(
        inventory.release(&hold_id(1)),
        Err(InventoryError::HoldNotActive)
    );
    inventory.check_invariants(at(0)).unwrap();
}

#[test]
fn best_available_holds_adjacent_seats() {
    let mut inventory = ShowInventory::new(&layout(), 10);
    let best = HoldSelection::BestAvailable {
        quantity: 2,
        category: None,
    };
    let held = inventory
        .hold(hold_id(1), &user(1), &best, at(0), ttl())
        .unwrap();
    let texts: Vec<&str> = held.seats.iter().map(SeatId::as_str).collect();
    assert_eq!(texts, ["A-1-3", "A-1-4"]);
    let too_many = HoldSelection::BestAvailable {
        quantity: 7,
        category: None,
    };
    assert_eq!(
        inventory.hold(hold_id(2), &user(2), &too_many, at(0), ttl()),
        Err(InventoryError::SeatsUnavailable {
            seat_ids: Vec::new()
        })
    );
    let wrong_category = HoldSelection::BestAvailable {
        quantity: 1,
        category: Some("ga".to_owned()),
    };
    assert!(inventory
        .hold(hold_id(3), &user(2), &wrong_category, at(0), ttl())
        .is_err());
    inventory.check_invariants(at(0)).unwrap();
}

#[test]
fn duplicates_and_empty_selections() {
    let mut inventory = ShowInventory::new(&layout(), 4);
    let held = inventory
        .hold(
            hold_id(1),
            &user(1),
            &seats(&["A-1-1", "A-1-1"]),
            at(0),
            ttl(),
        )
        .unwrap();
    assert_eq!(held.seats.len(), 1);
    assert_eq!(inventory.user_places(&user(1)), 1);
    assert!(inventory
        .hold(hold_id(2), &user(1), &seats(&[]), at(0), ttl())
        .is_err());
    assert!(inventory
        .hold(hold_id(3), &user(1), &standing(0), at(0), ttl())
        .is_err());
    inventory.check_invariants(at(0)).unwrap();
}

#[test]
fn zero_limit_means_nobody_buys() {
    let mut inventory = ShowInventory::new(&layout(), 0);
    assert!(matches!(
        inventory.hold(hold_id(1), &user(1), &standing(1), at(0), ttl()),
        Err(InventoryError::TicketLimitExceeded { .. })
    ));
}
