//! Property (1): random sequences of hold, release, expire, confirm and
//! cancel — random users, random selections including standing, random
//! clock advances — never break invariants 1, 2 and 6.
//!
//! Besides `check_invariants`, the test keeps its own simple model of every
//! hold, predicts each operation's outcome from it, and re-counts seats,
//! standing places and per-user places from that model after every step.

mod common;

use std::collections::BTreeMap;

use boxoffice_domain::{
    is_hold_expired, HeldPlaces, HoldId, HoldSelection, InventoryError, SeatId, SeatStatus,
    ShowInventory, UserId, VenueLayout,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

const USERS: usize = 4;
const TTL_SECONDS: i64 = 300;
const UNKNOWN_SECTION: &str = "NOPE";

#[derive(Debug, Clone)]
enum Pick {
    /// Seat indices into the layout (wrapping), plus maybe an unknown seat.
    Seats(Vec<usize>, bool),
    Best {
        quantity: u32,
        category: Option<&'static str>,
    },
    /// A standing section index (wrapping, one past the end is unknown).
    Standing(usize, u32),
}

#[derive(Debug, Clone)]
enum Op {
    Hold { user: usize, pick: Pick },
    Release(usize),
    Confirm(usize),
    Cancel(usize),
    ExpireDue,
    Advance(i64),
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        (
            prop::collection::vec(any::<usize>(), 0..=4),
            prop::bool::weighted(0.1)
        )
            .prop_map(|(seats, unknown)| Pick::Seats(seats, unknown)),
        (
            1..=4_u32,
            prop::option::of(prop::sample::select(vec!["a", "b", "zz"]))
        )
            .prop_map(|(quantity, category)| Pick::Best { quantity, category }),
        (any::<usize>(), 1..=4_u32)
            .prop_map(|(section, quantity)| Pick::Standing(section, quantity)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..USERS, pick()).prop_map(|(user, pick)| Op::Hold { user, pick }),
        1 => any::<usize>().prop_map(Op::Release),
        2 => any::<usize>().prop_map(Op::Confirm),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => Just(Op::ExpireDue),
        2 => (0..=400_i64).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Held,
    Booked,
    Expired,
    Ended,
}

#[derive(Debug, Clone)]
struct ModelHold {
    user: usize,
    seats: Vec<SeatId>,
    standing: Vec<(String, u32)>,
    expires_at: DateTime<Utc>,
    state: State,
}

impl ModelHold {
    fn owns(&self) -> bool {
        matches!(self.state, State::Held | State::Booked)
    }

    fn live(&self, now: DateTime<Utc>) -> bool {
        match self.state {
            State::Booked => true,
            State::Held => !is_hold_expired(self.expires_at, now),
            State::Expired | State::Ended => false,
        }
    }

    fn places(&self) -> u32 {
        self.seats.len() as u32
            + self
                .standing
                .iter()
                .map(|(_, quantity)| quantity)
                .sum::<u32>()
    }
}

/// The test's own bookkeeping, deliberately naive: every question is
/// answered by scanning all holds.
struct Model {
    layout: VenueLayout,
    max: u32,
    users: Vec<UserId>,
    holds: BTreeMap<HoldId, ModelHold>,
    hold_ids: Vec<HoldId>,
    unannounced: Vec<HoldId>,
}

impl Model {
    fn sweep(&mut self, now: DateTime<Utc>) {
        for (hold_id, hold) in &mut self.holds {
            if hold.state == State::Held && is_hold_expired(hold.expires_at, now) {
                hold.state = State::Expired;
                self.unannounced.push(hold_id.clone());
            }
        }
    }

    fn owner_of(&self, seat: &SeatId) -> Option<&ModelHold> {
        self.holds
            .values()
            .find(|hold| hold.owns() && hold.seats.contains(seat))
    }

    fn user_places(&self, user: usize) -> u32 {
        self.holds
            .values()
            .filter(|hold| hold.owns() && hold.user == user)
            .map(ModelHold::places)
            .sum()
    }

    fn standing_taken(&self, section: &str) -> u32 {
        self.holds
            .values()
            .filter(|hold| hold.owns())
            .flat_map(|hold| &hold.standing)
            .filter(|(name, _)| name == section)
            .map(|(_, quantity)| quantity)
            .sum()
    }

    fn pick_hold(&self, index: usize) -> HoldId {
        if self.hold_ids.is_empty() {
            HoldId::generate(0, u128::MAX)
        } else {
            self.hold_ids[index % self.hold_ids.len()].clone()
        }
    }

    fn selection(&self, pick: &Pick) -> HoldSelection {
        match pick {
            Pick::Seats(indices, unknown) => {
                let seats: Vec<SeatId> = self
                    .layout
                    .seats()
                    .map(|(_, _, seat)| seat.id.clone())
                    .collect();
                let mut chosen: Vec<SeatId> = if seats.is_empty() {
                    Vec::new()
                } else {
                    indices
                        .iter()
                        .map(|index| seats[index % seats.len()].clone())
                        .collect()
                };
                if *unknown {
                    chosen.push(SeatId::parse("ZZ-9-9").expect("valid"));
                }
                HoldSelection::Seats(chosen)
            }
            Pick::Best { quantity, category } => HoldSelection::BestAvailable {
                quantity: *quantity,
                category: category.map(str::to_owned),
            },
            Pick::Standing(index, quantity) => {
                let sections: Vec<String> = self
                    .layout
                    .standing_sections()
                    .map(|(section, _)| section.id.clone())
                    .collect();
                let section = sections
                    .get(index % (sections.len() + 1))
                    .cloned()
                    .unwrap_or_else(|| UNKNOWN_SECTION.to_owned());
                HoldSelection::Standing {
                    section,
                    quantity: *quantity,
                }
            }
        }
    }

    /// Does some row have `quantity` adjacent free seats of the category?
    fn block_exists(&self, quantity: usize, category: Option<&str>) -> bool {
        self.layout
            .sections
            .iter()
            .flat_map(|section| section.rows())
            .any(|row| {
                row.seats.windows(quantity).any(|block| {
                    block.iter().all(|seat| {
                        self.owner_of(&seat.id).is_none()
                            && common::matches_category(category, &seat.category)
                    })
                })
            })
    }

    /// The outcome the rules promise, or `Ok(None)` when success is
    /// expected but the exact seats are best-available's to choose.
    fn predict_hold(
        &self,
        user: usize,
        selection: &HoldSelection,
    ) -> Result<Option<HeldPlaces>, InventoryError> {
        let already = self.user_places(user);
        let within_limit = |requested: u32| {
            if already + requested > self.max {
                Err(InventoryError::TicketLimitExceeded {
                    limit: self.max,
                    already,
                    requested,
                })
            } else {
                Ok(())
            }
        };
        match selection {
            HoldSelection::Seats(seats) => {
                let mut unique: Vec<SeatId> = Vec::new();
                for seat in seats {
                    if self.layout.find_seat(seat).is_none() {
                        return Err(InventoryError::UnknownSeat(seat.clone()));
                    }
                    if !unique.contains(seat) {
                        unique.push(seat.clone());
                    }
                }
                if unique.is_empty() {
                    return Err(InventoryError::SeatsUnavailable {
                        seat_ids: Vec::new(),
                    });
                }
                within_limit(unique.len() as u32)?;
                let taken: Vec<SeatId> = unique
                    .iter()
                    .filter(|seat| self.owner_of(seat).is_some())
                    .cloned()
                    .collect();
                if !taken.is_empty() {
                    return Err(InventoryError::SeatsUnavailable { seat_ids: taken });
                }
                Ok(Some(HeldPlaces {
                    seats: unique,
                    standing: Vec::new(),
                }))
            }
            HoldSelection::BestAvailable { quantity, category } => {
                within_limit(*quantity)?;
                if self.block_exists(*quantity as usize, category.as_deref()) {
                    Ok(None)
                } else {
                    Err(InventoryError::SeatsUnavailable {
                        seat_ids: Vec::new(),
                    })
                }
            }
            HoldSelection::Standing { section, quantity } => {
                let Some((_, capacity)) = self.layout.find_standing(section) else {
                    return Err(InventoryError::UnknownSection(section.clone()));
                };
                within_limit(*quantity)?;
                let available = capacity - self.standing_taken(section);
                if *quantity > available {
                    return Err(InventoryError::NotEnoughStanding {
                        section: section.clone(),
                        available,
                    });
                }
                Ok(Some(HeldPlaces {
                    seats: Vec::new(),
                    standing: vec![(section.clone(), *quantity)],
                }))
            }
        }
    }

    /// Best-available seats: adjacent in one row, free, of the category.
    fn check_best(&self, seats: &[SeatId], selection: &HoldSelection) -> Result<(), TestCaseError> {
        let HoldSelection::BestAvailable { quantity, category } = selection else {
            return Ok(());
        };
        prop_assert_eq!(seats.len(), *quantity as usize);
        let (_, row, first) = self.layout.find_seat(&seats[0]).expect("a real seat");
        let start = row
            .seats
            .iter()
            .position(|seat| seat.id == first.id)
            .expect("in its row");
        let block: Vec<SeatId> = row.seats[start..start + seats.len()]
            .iter()
            .map(|seat| seat.id.clone())
            .collect();
        prop_assert_eq!(&block, seats);
        for seat in &row.seats[start..start + seats.len()] {
            prop_assert!(
                self.owner_of(&seat.id).is_none(),
                "{} was not free",
                seat.id
            );
            prop_assert!(common::matches_category(
                category.as_deref(),
                &seat.category
            ));
        }
        Ok(())
    }

    /// Invariants 1, 2 and 6 re-counted from the model, and the engine's
    /// view of every seat, section and user compared with it.
    fn check_against(
        &self,
        inventory: &ShowInventory,
        now: DateTime<Utc>,
    ) -> Result<(), TestCaseError> {
        for (_, _, seat) in self.layout.seats() {
            let owners: Vec<&ModelHold> = self
                .holds
                .values()
                .filter(|hold| hold.owns() && hold.seats.contains(&seat.id))
                .collect();
            prop_assert!(
                owners.len() <= 1,
                "seat {} has {} owners",
                seat.id,
                owners.len()
            );
            let expected = match owners.first() {
                Some(hold) if hold.state == State::Booked => SeatStatus::Booked,
                Some(hold) if hold.live(now) => SeatStatus::Held,
                _ => SeatStatus::Available,
            };
            prop_assert_eq!(
                inventory.seat_status(&seat.id, now),
                Some(expected),
                "seat {}",
                seat.id
            );
        }
        for (section, capacity) in self.layout.standing_sections() {
            prop_assert!(self.standing_taken(&section.id) <= capacity);
            let live: u32 = self
                .holds
                .values()
                .filter(|hold| hold.live(now))
                .flat_map(|hold| &hold.standing)
                .filter(|(name, _)| *name == section.id)
                .map(|(_, quantity)| quantity)
                .sum();
            prop_assert_eq!(
                inventory.standing_available(&section.id, now),
                Some(capacity - live)
            );
        }
        for (index, user) in self.users.iter().enumerate() {
            let places = self.user_places(index);
            prop_assert!(places <= self.max, "user {index} has {places} places");
            prop_assert_eq!(inventory.user_places(user), places);
        }
        Ok(())
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0)
        .single()
        .expect("a valid time")
}

fn run(layout: VenueLayout, max: u32, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut inventory = ShowInventory::new(&layout, max);
    let mut model = Model {
        layout,
        max,
        users: (0..USERS)
            .map(|index| UserId::generate(0, index as u128 + 1))
            .collect(),
        holds: BTreeMap::new(),
        hold_ids: Vec::new(),
        unannounced: Vec::new(),
    };
    let ttl = Duration::seconds(TTL_SECONDS);
    let mut now = start();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Hold { user, pick } => {
                let selection = model.selection(&pick);
                let hold_id = HoldId::generate(step as u64, step as u128);
                model.sweep(now);
                let predicted = model.predict_hold(user, &selection);
                let result =
                    inventory.hold(hold_id.clone(), &model.users[user], &selection, now, ttl);
                model.hold_ids.push(hold_id.clone());
                match (predicted, result) {
                    (Err(expected), actual) => prop_assert_eq!(actual, Err(expected)),
                    (Ok(expected), Ok(held)) => {
                        if let Some(expected) = expected {
                            prop_assert_eq!(&held, &expected);
                        }
                        model.check_best(&held.seats, &selection)?;
                        let hold = ModelHold {
                            user,
                            seats: held.seats,
                            standing: held.standing,
                            expires_at: now + ttl,
                            state: State::Held,
                        };
                        model.holds.insert(hold_id, hold);
                    }
                    (Ok(_), Err(error)) => prop_assert!(false, "hold failed with {error:?}"),
                }
            }
            Op::Release(index) => {
                let hold_id = model.pick_hold(index);
                let expected = match model.holds.get(&hold_id).map(|hold| hold.state) {
                    None => Err(InventoryError::NoSuchHold),
                    Some(State::Held) => Ok(()),
                    Some(State::Expired) => Err(InventoryError::HoldExpired),
                    Some(State::Booked | State::Ended) => Err(InventoryError::HoldNotActive),
                };
                prop_assert_eq!(inventory.release(&hold_id), expected.clone());
                if expected.is_ok() {
                    model.holds.get_mut(&hold_id).expect("known").state = State::Ended;
                }
            }
            Op::Confirm(index) => {
                let hold_id = model.pick_hold(index);
                model.sweep(now);
                let expected = match model.holds.get(&hold_id).map(|hold| hold.state) {
                    None => Err(InventoryError::NoSuchHold),
                    Some(State::Held) => Ok(()),
                    Some(State::Expired) => Err(InventoryError::HoldExpired),
                    Some(State::Booked | State::Ended) => Err(InventoryError::HoldNotActive),
                };
                prop_assert_eq!(inventory.confirm(&hold_id, now), expected.clone());
                if expected.is_ok() {
                    model.holds.get_mut(&hold_id).expect("known").state = State::Booked;
                }
            }
            Op::Cancel(index) => {
                let hold_id = model.pick_hold(index);
                let expected = match model.holds.get(&hold_id).map(|hold| hold.state) {
                    None => Err(InventoryError::NoSuchHold),
                    Some(State::Booked) => Ok(()),
                    Some(_) => Err(InventoryError::HoldNotActive),
                };
                prop_assert_eq!(inventory.cancel(&hold_id), expected.clone());
                if expected.is_ok() {
                    model.holds.get_mut(&hold_id).expect("known").state = State::Ended;
                }
            }
            Op::ExpireDue => {
                model.sweep(now);
                let mut expected = std::mem::take(&mut model.unannounced);
                let mut announced = inventory.expire_due(now);
                expected.sort();
                announced.sort();
                prop_assert_eq!(announced, expected);
            }
            Op::Advance(seconds) => now += Duration::seconds(seconds),
        }
        if let Err(broken) = inventory.check_invariants(now) {
            prop_assert!(false, "step {step}: {broken}");
        }
        model.check_against(&inventory, now)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_operations_keep_the_invariants(
        layout in common::small_layout(),
        max in 1..=6_u32,
        ops in prop::collection::vec(op(), 1..=60),
    ) {
        run(layout, max, ops)?;
    }
}

#[test]
fn a_crowded_sale_keeps_the_invariants() {
    // A fixed, busy scenario on top of the random ones: every user keeps
    // asking for the best pair while the clock runs past the hold TTL.
    let layout = common::build_layout(&[
        common::SectionSpec::Seated(vec![vec![0; 6], vec![1; 6]]),
        common::SectionSpec::Standing(3),
    ]);
    let mut ops = Vec::new();
    for round in 0..40 {
        ops.push(Op::Hold {
            user: round % USERS,
            pick: Pick::Best {
                quantity: 2,
                category: None,
            },
        });
        ops.push(Op::Hold {
            user: (round + 1) % USERS,
            pick: Pick::Standing(0, 1),
        });
        ops.push(Op::Confirm(round * 7));
        ops.push(Op::Advance(97));
        if round % 5 == 0 {
            ops.push(Op::Cancel(round * 3));
            ops.push(Op::ExpireDue);
        }
    }
    let outcome = run(layout, 4, ops);
    assert!(outcome.is_ok(), "{outcome:?}");
}
