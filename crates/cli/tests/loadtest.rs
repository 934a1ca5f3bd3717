//! The load generator end to end, in process, against a real `boxoffice
//! serve` that it spawns itself from the built binary (SQLite in a temporary
//! folder), with a tiny configuration: the run must complete, the flash sale
//! must sell out, and every invariant check must pass.

use std::path::PathBuf;
use std::time::Duration;

use boxoffice_loadgen::{LoadtestConfig, Scenario, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_run_sells_out_and_keeps_the_invariants() {
    let config = LoadtestConfig {
        target: Target::Spawn {
            program: PathBuf::from(env!("CARGO_BIN_EXE_boxoffice")),
            database_url: None,
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
