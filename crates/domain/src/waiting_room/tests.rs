use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use super::*;

const OPEN_MS: i64 = 1_000_000;
const TTL_MS: i64 = 15 * 60_000;

fn config(rate: u32, paused: bool, version: i64) -> RoomConfig {
    RoomConfig {
        admit_per_minute: rate,
        paused,
        sales_start_ms: OPEN_MS,
        version,
    }
}

fn opened_room(rate: u32) -> RoomState {
    let mut room = RoomState::new(&config(rate, false, 1));
    room.open();
    room
}

#[test]
fn the_frontier_moves_at_the_rate_from_the_opening() {
    let room = opened_room(60); // one place per second
    assert_eq!(room.frontier(OPEN_MS - 5_000), 0);
    assert_eq!(room.frontier(OPEN_MS), 0);
    assert_eq!(room.frontier(OPEN_MS + 999), 0);
    assert_eq!(room.frontier(OPEN_MS + 1_000), 1);
    assert_eq!(room.frontier(OPEN_MS + 61_500), 61);
}

#[test]
fn joins_after_the_opening_are_first_come_first_served() {
    let mut room = opened_room(60);
    // Nobody came in the first 5 s: the first newcomer is admitted at once,
    // the rest one per second after it — no burst from the idle time.
    let now = OPEN_MS + 5_000;
    let places: Vec<QueuePlace> = (0..5).map(|_| room.assign_place(now, 0)).collect();
    assert_eq!(
        places,
        vec![
            QueuePlace::At(1),
            QueuePlace::At(2),
            QueuePlace::At(3),
            QueuePlace::At(4),
            QueuePlace::At(5)
        ]
    );
    assert_eq!(room.frontier(now), 1);
    assert_eq!(room.frontier(now + 1_000), 2);
    assert_eq!(room.frontier(now + 4_000), 5);
}

#[test]
fn an_idle_hour_does_not_become_a_burst() {
    let mut room = opened_room(60);
    let later = OPEN_MS + 3_600_000; // the frontier would be at 3,600
    for expected in 1..=10 {
        assert_eq!(room.assign_place(later, 0), QueuePlace::At(expected));
    }
    assert_eq!(
        room.frontier(later),
        1,
        "only the first newcomer is admitted at once"
    );
}

#[test]
fn before_the_opening_joins_go_to_the_pre_queue() {
    let mut room = RoomState::new(&config(60, false, 1));
    assert_eq!(
        room.assign_place(OPEN_MS - 10, 7),
        QueuePlace::PreQueue { key: 7 }
    );
    assert_eq!(
        room.assign_place(OPEN_MS - 5, 3),
        QueuePlace::PreQueue { key: 3 }
    );
    assert!(!room.opening_due(OPEN_MS - 1));
    assert!(room.opening_due(OPEN_MS));
    room.open();
    assert_eq!(room.tail, 2);
    // The pre-queue is admitted from the opening on, then newcomers.
    assert_eq!(room.assign_place(OPEN_MS + 10, 0), QueuePlace::At(3));
}

#[test]
fn a_rate_change_continues_from_the_current_frontier() {
    let mut room = opened_room(60);
    for _ in 0..100 {
        room.assign_place(OPEN_MS, 0);
    }
    let at = OPEN_MS + 10_000;
    let before = room.frontier(at);
    assert!(room.apply_config(&config(600, false, 2), at));
    assert_eq!(room.frontier(at), before, "no jump at the change");
    assert_eq!(
        room.frontier(at + 1_000),
        before + 10,
        "then ten per second"
    );
    // An older configuration (a node with a stale copy) changes nothing.
    assert!(!room.apply_config(&config(1, true, 1), at + 2_000));
    assert_eq!(room.admit_per_minute, 600);
}

#[test]
fn pausing_stops_admission_and_resuming_continues() {
    let mut room = opened_room(60);
    for _ in 0..100 {
        room.assign_place(OPEN_MS, 0);
    }
    let paused_at = OPEN_MS + 5_000;
    let frontier = room.frontier(paused_at);
    room.apply_config(&config(60, true, 2), paused_at);
    assert_eq!(room.frontier(paused_at + 60_000), frontier);
    room.apply_config(&config(60, false, 3), paused_at + 60_000);
    assert_eq!(room.frontier(paused_at + 61_000), frontier + 1);
}

#[test]
fn a_pause_with_an_empty_queue_admits_nobody_new() {
    let mut room = opened_room(60);
    room.assign_place(OPEN_MS, 0); // place 1, admitted
    let at = OPEN_MS + 600_000; // frontier far past the tail
    room.apply_config(&config(60, true, 2), at);
    let QueuePlace::At(place) = room.assign_place(at + 1, 0) else {
        panic!("the room is open");
    };
    let mut admitted = None;
    assert!(!admit_if_due(
        &room,
        Some(place),
        &mut admitted,
        at + 100_000
    ));
}

#[test]
fn a_newcomer_right_after_the_opening_waits_for_the_first_step() {
    let mut room = opened_room(60);
    assert_eq!(room.assign_place(OPEN_MS + 100, 0), QueuePlace::At(1));
    let mut admitted = None;
    assert!(!admit_if_due(&room, Some(1), &mut admitted, OPEN_MS + 999));
    assert!(admit_if_due(&room, Some(1), &mut admitted, OPEN_MS + 1_000));
}

#[test]
fn status_waiting_then_admitted_then_expired() {
    let mut room = opened_room(60);
    let now = OPEN_MS + 5_000;
    let QueuePlace::At(_) = room.assign_place(now, 0) else {
        panic!()
    };
    let QueuePlace::At(third_place) = ({
        room.assign_place(now, 0);
        room.assign_place(now, 0)
    }) else {
        panic!()
    };
    let mut admitted = None;
    assert!(!admit_if_due(&room, Some(third_place), &mut admitted, now));
    assert_eq!(
        ticket_status(&room, Some(third_place), admitted, now, TTL_MS),
        TicketStatus::Waiting {
            position: 2,
            estimated_wait_seconds: 2
        }
    );
    let later = now + 2_000;
    let expiry = admission_expiry_ms(later, TTL_MS);
    assert_eq!(expiry % 1_000, 0, "on a whole second");
    assert!(expiry > later + TTL_MS - 1_000 && expiry <= later + TTL_MS);
    assert!(admit_if_due(&room, Some(third_place), &mut admitted, later));
    assert!(
        !admit_if_due(&room, Some(third_place), &mut admitted, later + 1),
        "only once"
    );
    assert_eq!(
        ticket_status(&room, Some(third_place), admitted, later + 5, TTL_MS),
        TicketStatus::Admitted {
            admitted_at_ms: later,
            expires_at_ms: expiry
        }
    );
    assert_eq!(
        ticket_status(&room, Some(third_place), admitted, expiry, TTL_MS),
        TicketStatus::Expired
    );
    assert!(admission_lapsed(admitted, expiry, TTL_MS));
    assert!(!admission_lapsed(admitted, expiry - 1, TTL_MS));
}

#[test]
fn the_pre_queue_is_told_its_size_and_the_time_to_the_opening() {
    let mut room = RoomState::new(&config(60, false, 1));
    for key in 0..30 {
        room.assign_place(OPEN_MS - 20_000, key);
    }
    assert_eq!(
        ticket_status(&room, None, None, OPEN_MS - 20_000, TTL_MS),
        TicketStatus::Waiting {
            position: 30,
            estimated_wait_seconds: 20 + 30
        }
    );
}

#[test]
fn pre_queue_keys_are_non_negative_and_fit_a_double() {
    for entropy in [0, 1, u64::MAX, u64::MAX / 2, 1 << 63] {
        let key = pre_queue_key(entropy);
        assert!((0..(1_i64 << 52)).contains(&key), "{key}");
        assert_eq!(key as f64 as i64, key, "exact as a Redis score");
    }
}

/// Pearson's chi-square statistic of observed counts against a uniform
/// expectation.
fn chi_square(counts: &[u64], expected: f64) -> f64 {
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// Each of N buyers, joining the pre-queue in a known order, must end up in
/// each of the N places equally often: chi-square over 20,000 drawings
/// (fixed seed) of the N×N table "join order → place".
#[test]
fn the_pre_queue_order_is_a_uniform_shuffle() {
    const BUYERS: usize = 6;
    const TRIALS: usize = 20_000;
    let mut rng = StdRng::seed_from_u64(0x5eed_0b0c);
    let mut counts = vec![0_u64; BUYERS * BUYERS];
    for _ in 0..TRIALS {
        // Ticket IDs grow with the join order, as real (time-ordered) IDs do.
        let tickets: Vec<(i64, String)> = (0..BUYERS)
            .map(|joined| (pre_queue_key(rng.next_u64()), format!("qtk_{joined:04}")))
            .collect();
        for (place, &buyer) in pre_queue_order(&tickets).iter().enumerate() {
            counts[buyer * BUYERS + place] += 1;
        }
    }
    let expected = TRIALS as f64 / BUYERS as f64;
    let statistic = chi_square(&counts, expected);
    // (N-1)^2 = 25 degrees of freedom; 52.62 is the 0.999 quantile.
    assert!(
        statistic < 52.62,
        "chi-square {statistic:.1} over {counts:?}"
    );
    // And the test can fail: ordering by join order is far from uniform.
    let mut biased = vec![0_u64; BUYERS * BUYERS];
    for _ in 0..TRIALS {
        for buyer in 0..BUYERS {
            biased[buyer * BUYERS + buyer] += 1;
        }
    }
    assert!(chi_square(&biased, expected) > 52.62);
}

#[test]
fn ties_are_broken_by_ticket_id() {
    let tickets = [(5, "qtk_b"), (5, "qtk_a"), (1, "qtk_c")];
    assert_eq!(pre_queue_order(&tickets), vec![2, 1, 0]);
}

proptest! {
    /// Whatever happens (joins, rate changes, pauses, time passing), the
    /// frontier never goes back, places after the opening grow by one, and a
    /// ticket is never admitted before one with a smaller place.
    #[test]
    fn admission_follows_the_queue_order(
        steps in proptest::collection::vec((0u8..4, 0i64..5_000, 1u32..10_000, any::<bool>()), 1..200)
    ) {
        let mut room = RoomState::new(&config(600, false, 1));
        let mut now = OPEN_MS - 10_000;
        let mut version = 1;
        let mut places: Vec<(u64, Option<i64>)> = Vec::new();
        let mut last_frontier = 0;
        let mut last_place = 0;
        for (kind, advance, rate, paused) in steps {
            now += advance;
            if room.opening_due(now) {
                room.open();
                // The pre-queue takes places 1..=pre_count.
                for place in 1..=room.pre_count {
                    places.push((place, None));
                }
                last_place = room.pre_count;
            }
            match kind {
                0 | 1 => match room.assign_place(now, 0) {
                    QueuePlace::At(place) => {
                        prop_assert_eq!(place, last_place + 1);
                        last_place = place;
                        places.push((place, None));
                    }
                    QueuePlace::PreQueue { .. } => prop_assert!(!room.opened),
                },
                2 => {
                    version += 1;
                    room.apply_config(&config(rate, paused, version), now);
                }
                _ => {}
            }
            // Past the last place the frontier is free to be pulled back
            // (a pause, a newcomer after a quiet spell); up to it, never.
            let frontier = room.frontier(now).min(last_place);
            prop_assert!(frontier >= last_frontier, "frontier went back: {} → {}", last_frontier, frontier);
            last_frontier = frontier;
            for (place, admitted) in places.iter_mut() {
                admit_if_due(&room, Some(*place), admitted, now);
            }
            for pair in places.windows(2) {
                if let (Some(first), Some(second)) = (pair[0].1, pair[1].1) {
                    prop_assert!(first <= second, "place {} admitted after place {}", pair[0].0, pair[1].0);
                }
                prop_assert!(pair[0].1.is_some() || pair[1].1.is_none(), "a later place admitted first");
            }
        }
    }
}
