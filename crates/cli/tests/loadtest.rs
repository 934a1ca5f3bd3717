//! The load generator end to end, in process, against a real `boxoffice
//! serve` that it spawns itself from the built binary (SQLite in a temporary
//! folder), with tiny configurations: the runs must complete, the flash sale
//! must sell out, the waiting room's crowd must get through in order, and
//! every invariant check must pass.

use std::path::PathBuf;
use std::time::Duration;

use boxoffice_loadgen::scenarios::waiting_room::WaitingRoomSettings;
use boxoffice_loadgen::{LoadtestConfig, Scenario, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_run_sells_out_and_keeps_the_invariants() {
    let config = LoadtestConfig {
        target: Target::Spawn {
            program: PathBuf::from(env!("CARGO_BIN_EXE_boxoffice")),
            database_url: None,
            redis_url: None,
        },
        scenario: Scenario::All,
        connections: 16,
        places: 200,
        browse_seats: 100,
        users: 50,
        duration: Duration::from_secs(2),
        sale_cap: Duration::from_secs(20),
        admin: None,
        server_pid: None,
        seed: 7,
        progress: false,
        allow_remote: false,
        waiting_room: Default::default(),
        jwt_secret: None,
    };
    let report = tokio::time::timeout(Duration::from_secs(120), boxoffice_loadgen::run(config))
        .await
        .expect("the run ends by itself")
        .expect("the run completes");
    let text = boxoffice_loadgen::report::human(&report);

    let baseline = report.baseline.as_ref().expect("baseline ran");
    assert!(baseline.requests > 0, "{text}");
    let sale = report.flash_sale.as_ref().expect("the flash sale ran");
    assert!(sale.sold_out, "not sold out:\n{text}");
    assert_eq!(sale.places_won, 200, "{text}");
    assert!(
        sale.losers > 0,
        "a sale where nobody loses is not a race:\n{text}"
    );
    assert!(sale.invariants_passed, "{text}");
    assert_eq!(sale.invariants.len(), 4, "{text}");
    assert_eq!(report.browse.len(), 2, "{text}");
    for browse in &report.browse {
        assert!(browse.ok_200 > 0 && browse.not_modified_304 > 0, "{text}");
    }
    let buy = report.buy.as_ref().expect("buy ran");
    assert!(buy.bookings > 0, "{text}");
    assert!(report.memory.is_some_and(|m| m.peak_rss_kib > 0), "{text}");
    assert!(report.invariants_passed());
    // The JSON form carries the same numbers.
    let json = serde_json::to_value(&report).expect("the report serializes");
    assert_eq!(json["flash_sale"]["places_won"], 200);
}

/// The waiting room end to end: a paused room's places are handed out in
/// join order, polls answer, a crowd of 400 minted users (half of them
/// before the opening) goes through at 50 admissions a second — slow enough
/// that order is observable at a 250 ms poll interval — and a registered
/// buyer's admission token opens a hold. Every number of the report must be
/// consistent with the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_crowd_goes_through_the_waiting_room_in_order() {
    let config = LoadtestConfig {
        target: Target::Spawn {
            program: PathBuf::from(env!("CARGO_BIN_EXE_boxoffice")),
            database_url: None,
            redis_url: None,
        },
        scenario: Scenario::WaitingRoom,
        connections: 16,
        places: 200,
        browse_seats: 100,
        users: 50,
        duration: Duration::from_secs(1),
        sale_cap: Duration::from_secs(20),
        admin: None,
        server_pid: None,
        seed: 11,
        progress: false,
        allow_remote: false,
        waiting_room: WaitingRoomSettings {
            arrivals: 400,
            arrival_window: Duration::from_secs(4),
            admit_per_minute: 3_000,
            pre_queue_fraction: 0.5,
            // A few bits: every join fetches and answers a challenge.
            pow_difficulty: 4,
            poll_interval_min: Duration::from_millis(250),
        },
        jwt_secret: None,
    };
    let report = tokio::time::timeout(Duration::from_secs(180), boxoffice_loadgen::run(config))
        .await
        .expect("the run ends by itself")
        .expect("the run completes");
    let text = boxoffice_loadgen::report::human(&report);
    assert!(
        report.flash_sale.is_none() && report.buy.is_none(),
        "{text}"
    );
    assert_eq!(report.setup.users, 0, "the crowd is minted:\n{text}");
    assert!(report.baseline.is_some(), "{text}");
    let room = report.waiting_room.as_ref().expect("the waiting room ran");
    assert!(room.users.contains("minted"), "{text}");
    for check in room.checks() {
        assert!(check.passed, "{}: {}\n{text}", check.name, check.detail);
    }
    assert_eq!(room.checks().count(), 8, "{text}");
    assert!(report.invariants_passed(), "{text}");

    // Joins into the paused room: places 1..n in join order.
    let positions = room.joins.positions.expect("positions");
    assert!(
        room.joins.ok > 0 && room.joins.errors.0.is_empty(),
        "{text}"
    );
    assert_eq!(positions.joins, room.joins.ok, "{text}");
    assert_eq!(positions.highest_position, positions.joins, "{text}");
    assert_eq!(positions.fifo.checked, positions.joins, "{text}");
    assert!(
        room.polls.ok > 0 && room.polls.ok == room.polls.requests,
        "{text}"
    );

    let crowd = &room.crowd;
    assert_eq!(crowd.joins, 400, "{text}");
    assert_eq!(crowd.admitted, 400, "{text}");
    assert_eq!(
        crowd.pre_queue_joins + crowd.post_opening_joins + crowd.straddling_joins,
        400,
        "{text}"
    );
    // The schedule puts half before the opening, half a second clear of it.
    assert!(
        crowd.pre_queue_joins > 150 && crowd.post_opening_joins > 150,
        "{text}"
    );
    assert_eq!(crowd.challenges, 400, "one challenge per join:\n{text}");
    assert!(crowd.errors.0.is_empty(), "{text}");
    assert!(crowd.polls >= crowd.admitted / 2, "{text}");
    let wait = crowd.wait;
    assert_eq!(wait.count, 400, "{text}");
    assert!(
        wait.p50_seconds <= wait.p90_seconds
            && wait.p90_seconds <= wait.p99_seconds
            && wait.p99_seconds <= wait.max_seconds,
        "{text}"
    );
    // The pre-queue waits for the opening; with 400 places at 50/s the last
    // admission comes at least 8 s after it, so waits are long somewhere.
    assert!(crowd.wait_pre_queue.max_seconds >= 4.0, "{text}");
    assert_eq!(
        crowd.order.definite_overtakes.checked, crowd.post_opening_joins,
        "{text}"
    );
    assert_eq!(crowd.order.definite_overtakes.violations, 0, "{text}");
    assert!(crowd.order.pre_queue_rank_correlation.is_some(), "{text}");
    assert!(
        crowd.admitted_per_second.overall_per_second <= crowd.configured_admitted_per_second * 1.1,
        "{text}"
    );

    let json = serde_json::to_value(&report).expect("the report serializes");
    assert_eq!(json["waiting_room"]["crowd"]["admitted"], 400);
}
