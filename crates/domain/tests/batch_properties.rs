//! The group commit decides a batch of holds exactly as serial execution in
//! arrival order would: the same winners. The serial reference is the
//! independent `ShowInventory` model, one `hold` call at a time.

use std::collections::{HashMap, HashSet};

use boxoffice_domain::{
    decide_batch, BatchDecision, BatchRequest, BatchState, HoldId, HoldSelection, SeatId,
    ShowInventory, UserId, VenueInput, VenueLayout,
};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::json;

const SEATS_PER_ROW: u32 = 6;
const ROWS: u32 = 2;
const STANDING_CAPACITY: u32 = 6;
const USERS: u64 = 4;
const MAX_TICKETS_PER_USER: u32 = 5;

fn layout() -> VenueLayout {
    let input: VenueInput = serde_json::from_value(json!({
        "name": "Batch Hall", "city": "Berlin", "timezone": "Europe/Berlin",
        "sections": [
            {"id": "A", "kind": "seated", "category": "std",
             "rows": (1..=ROWS).map(|row| json!({"label": row.to_string(), "seats": SEATS_PER_ROW})).collect::<Vec<_>>()},
            {"id": "FLOOR", "kind": "standing", "category": "ga", "capacity": STANDING_CAPACITY}
        ]
    }))
    .expect("layout JSON");
    input.validate().expect("valid layout").layout
}

fn user(index: u64) -> UserId {
    UserId::generate(1_000 + index, u128::from(index))
}

#[derive(Debug, Clone)]
enum Wish {
    Seats(Vec<(u32, u32)>),
    Standing(u32),
}

fn wish() -> impl Strategy<Value = Wish> {
    prop_oneof![
        3 => prop::collection::hash_set((1..=ROWS, 1..=SEATS_PER_ROW), 1..=4)
            .prop_map(|seats| Wish::Seats(seats.into_iter().collect())),
        1 => (1..=4_u32).prop_map(Wish::Standing),
    ]
}

fn seat_id((row, number): (u32, u32)) -> SeatId {
    SeatId::parse(&format!("A-{row}-{number}")).expect("seat id")
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("time")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn batch_winners_equal_serial_winners(
        wishes in prop::collection::vec((0..USERS, wish()), 1..40),
    ) {
        let layout = layout();

        // Serial: one hold at a time, in arrival order, on the model.
        let mut serial = ShowInventory::new(&layout, MAX_TICKETS_PER_USER);
        let mut serial_winners = Vec::new();
        for (index, (who, wish)) in wishes.iter().enumerate() {
            let selection = match wish {
                Wish::Seats(seats) => HoldSelection::Seats(seats.iter().copied().map(seat_id).collect()),
                Wish::Standing(quantity) => HoldSelection::Standing { section: "FLOOR".into(), quantity: *quantity },
            };
            let hold_id = HoldId::generate(2_000 + index as u64, index as u128);
            let won = serial.hold(hold_id, &user(*who), &selection, now(), Duration::minutes(10)).is_ok();
            serial_winners.push(won);
        }

        // Batched: the same requests decided together from the fresh state.
        let mut state = BatchState {
            free_seats: (1..=ROWS)
                .flat_map(|row| (1..=SEATS_PER_ROW).map(move |number| (seat_id((row, number)), true)))
                .collect(),
            standing_free: HashMap::from([("FLOOR".to_string(), STANDING_CAPACITY)]),
            user_places: HashMap::new(),
            max_tickets_per_user: MAX_TICKETS_PER_USER,
        };
        let requests: Vec<BatchRequest> = wishes
            .iter()
            .map(|(who, wish)| match wish {
                Wish::Seats(seats) => BatchRequest { user: user(*who), seats: seats.iter().copied().map(seat_id).collect(), standing: Vec::new() },
                Wish::Standing(quantity) => BatchRequest { user: user(*who), seats: Vec::new(), standing: vec![("FLOOR".into(), *quantity)] },
            })
            .collect();
        let decisions = decide_batch(&mut state, &requests);
        let batch_winners: Vec<bool> = decisions.iter().map(|d| *d == BatchDecision::Accept).collect();
        prop_assert_eq!(&batch_winners, &serial_winners);

        // And the batch never double-sells or oversells on its own terms.
        let mut taken = HashSet::new();
        let mut standing = 0;
        for (request, won) in requests.iter().zip(&batch_winners) {
            if *won {
                for seat in &request.seats {
                    prop_assert!(taken.insert(seat.clone()), "seat {} won twice", seat);
                }
                standing += request.standing.iter().map(|(_, q)| q).sum::<u32>();
            }
        }
        prop_assert!(standing <= STANDING_CAPACITY);
    }
}
