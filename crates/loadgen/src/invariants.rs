//! The invariants of a sale, checked from the outside: what the winners were
//! told (their 201 answers) against what the seat map shows afterwards.
//!
//! A request that got no readable answer (a timeout, a cut connection, a
//! malformed 201) may or may not have held its places; the checker knows how
//! many places such requests asked for and allows exactly that much slack,
//! and says so. With no such requests every comparison is exact.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

/// One successful hold as its 201 answer described it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WonHold {
    pub seats: Vec<String>,
    /// (standing section, places)
    pub standing: Vec<(String, u64)>,
}

impl WonHold {
    /// Reads the `seats[].id` and `standing[].{section,quantity}` of a hold;
    /// `None` when the body does not have that shape.
    pub fn from_answer(body: &Value) -> Option<WonHold> {
        let seats = body
            .get("seats")?
            .as_array()?
            .iter()
            .map(|seat| seat.get("id")?.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()?;
        let standing = match body.get("standing") {
            None | Some(Value::Null) => Vec::new(),
            Some(parts) => parts
                .as_array()?
                .iter()
                .map(|part| {
                    Some((
                        part.get("section")?.as_str()?.to_string(),
                        part.get("quantity")?.as_u64()?,
                    ))
                })
                .collect::<Option<Vec<(String, u64)>>>()?,
        };
        Some(WonHold { seats, standing })
    }

    pub fn places(&self) -> u64 {
        self.seats.len() as u64 + self.standing.iter().map(|(_, n)| n).sum::<u64>()
    }
}

/// What the sale's clients saw.
#[derive(Debug, Clone, Default)]
pub struct SaleOutcome {
    pub won: Vec<WonHold>,
    /// Places asked for by requests whose outcome is unknown.
    pub unknown_places: u64,
}

/// A standing section on the seat map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingOnMap {
    pub section: String,
    pub capacity: u64,
    pub available: u64,
}

/// The parts of `GET /v1/shows/{id}/seats` the checks read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeatMap {
    /// seat id → `AVAILABLE`, `HELD` or `BOOKED`
    pub seats: Vec<(String, String)>,
    pub standing: Vec<StandingOnMap>,
    pub available: u64,
    pub held: u64,
    pub booked: u64,
}

impl SeatMap {
    /// Parses a seat-map answer; `None` when it lacks a field the checks need.
    pub fn from_answer(body: &Value) -> Option<SeatMap> {
        let seats = body
            .get("seats")?
            .as_array()?
            .iter()
            .map(|seat| {
                Some((
                    seat.get("id")?.as_str()?.to_string(),
                    seat.get("status")?.as_str()?.to_string(),
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        let standing = body
            .get("standing")?
            .as_array()?
            .iter()
            .map(|part| {
                Some(StandingOnMap {
                    section: part.get("section")?.as_str()?.to_string(),
                    capacity: part.get("capacity")?.as_u64()?,
                    available: part.get("available")?.as_u64()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let summary = body.get("summary")?;
        Some(SeatMap {
            seats,
            standing,
            available: summary.get("available")?.as_u64()?,
            held: summary.get("held")?.as_u64()?,
            booked: summary.get("booked")?.as_u64()?,
        })
    }
}

/// One invariant's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

pub const CHECK_COUNTS: &str = "seat map held+booked = places in 201 answers";
pub const CHECK_NO_DOUBLE: &str = "no seat in two successful holds";
pub const CHECK_WINNERS_TAKEN: &str = "every won seat is HELD/BOOKED on the map";
pub const CHECK_STANDING: &str = "standing never over capacity";

/// Runs every check; all must pass.
pub fn check(outcome: &SaleOutcome, map: &SeatMap) -> Vec<Check> {
    vec![
        check_counts(outcome, map),
        check_no_double_hold(outcome),
        check_winners_taken(outcome, map),
        check_standing(outcome, map),
    ]
}

fn check_counts(outcome: &SaleOutcome, map: &SeatMap) -> Check {
    let won: u64 = outcome.won.iter().map(WonHold::places).sum();
    let taken = map.held + map.booked;
    let slack = outcome.unknown_places;
    let passed = taken >= won && taken <= won + slack;
    let detail = if slack == 0 {
        format!(
            "map {taken} (held {} + booked {}), answers {won}",
            map.held, map.booked
        )
    } else {
        format!(
            "map {taken} (held {} + booked {}), answers {won}, plus up to {slack} places of \
             requests with no readable answer",
            map.held, map.booked
        )
    };
    Check {
        name: CHECK_COUNTS,
        passed,
        detail,
    }
}

fn check_no_double_hold(outcome: &SaleOutcome) -> Check {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut doubled: Vec<&str> = Vec::new();
    for hold in &outcome.won {
        for seat in &hold.seats {
            if !seen.insert(seat.as_str()) {
                doubled.push(seat.as_str());
            }
        }
    }
    let passed = doubled.is_empty();
    let detail = if passed {
        format!("{} distinct seats", seen.len())
    } else {
        format!(
            "{} seats held twice, e.g. {}",
            doubled.len(),
            doubled
                .iter()
                .take(5)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Check {
        name: CHECK_NO_DOUBLE,
        passed,
        detail,
    }
}

fn check_winners_taken(outcome: &SaleOutcome, map: &SeatMap) -> Check {
    let status: HashMap<&str, &str> = map
        .seats
        .iter()
        .map(|(id, status)| (id.as_str(), status.as_str()))
        .collect();
    let wrong: Vec<String> = outcome
        .won
        .iter()
        .flat_map(|hold| hold.seats.iter())
        .filter_map(|seat| match status.get(seat.as_str()) {
            Some(&"HELD") | Some(&"BOOKED") => None,
            Some(other) => Some(format!("{seat} is {other}")),
            None => Some(format!("{seat} is not on the map")),
        })
        .collect();
    let on_map_taken = map
        .seats
        .iter()
        .filter(|(_, status)| status == "HELD" || status == "BOOKED")
        .count() as u64;
    let won_seats: u64 = outcome.won.iter().map(|hold| hold.seats.len() as u64).sum();
    let extra = on_map_taken.saturating_sub(won_seats);
    let passed = wrong.is_empty() && extra <= outcome.unknown_places;
    let detail = if passed {
        format!("{won_seats} won seats, {on_map_taken} taken seats on the map")
    } else {
        format!(
            "{} won seats not taken (e.g. {}); {on_map_taken} taken on the map for {won_seats} won",
            wrong.len(),
            wrong.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        )
    };
    Check {
        name: CHECK_WINNERS_TAKEN,
        passed,
        detail,
    }
}

fn check_standing(outcome: &SaleOutcome, map: &SeatMap) -> Check {
    let mut won: BTreeMap<&str, u64> = BTreeMap::new();
    for hold in &outcome.won {
        for (section, quantity) in &hold.standing {
            *won.entry(section.as_str()).or_insert(0) += quantity;
        }
    }
    let slack = outcome.unknown_places;
    let mut problems = Vec::new();
    let mut lines = Vec::new();
    for (section, quantity) in &won {
        if !map.standing.iter().any(|part| part.section == *section) {
            problems.push(format!("{section}: won {quantity} but not on the map"));
        }
    }
    for part in &map.standing {
        let sold = won.get(part.section.as_str()).copied().unwrap_or(0);
        if sold > part.capacity {
            problems.push(format!(
                "{}: {sold} won for a capacity of {}",
                part.section, part.capacity
            ));
            continue;
        }
        let expected = part.capacity - sold;
        // Unknown requests can only have taken places, never returned them.
        let low = expected.saturating_sub(slack);
        if part.available > expected || part.available < low {
            problems.push(format!(
                "{}: available {} but capacity {} − won {sold} = {expected}",
                part.section, part.available, part.capacity
            ));
        }
        lines.push(format!(
            "{}: {sold}/{} won, {} available",
            part.section, part.capacity, part.available
        ));
    }
    let passed = problems.is_empty();
    Check {
        name: CHECK_STANDING,
        passed,
        detail: if passed {
            lines.join("; ")
        } else {
            problems.join("; ")
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hold(seats: &[&str], standing: &[(&str, u64)]) -> WonHold {
        WonHold {
            seats: seats.iter().map(|s| s.to_string()).collect(),
            standing: standing.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
        }
    }

    /// Seats A-1-1..A-1-4, a floor of 10; A-1-1, A-1-2 held and 3 standing.
    fn consistent() -> (SaleOutcome, SeatMap) {
        let outcome = SaleOutcome {
            won: vec![hold(&["A-1-1", "A-1-2"], &[]), hold(&[], &[("FLOOR", 3)])],
            unknown_places: 0,
        };
        let map = SeatMap {
            seats: vec![
                ("A-1-1".into(), "HELD".into()),
                ("A-1-2".into(), "HELD".into()),
                ("A-1-3".into(), "AVAILABLE".into()),
                ("A-1-4".into(), "AVAILABLE".into()),
            ],
            standing: vec![StandingOnMap {
                section: "FLOOR".into(),
                capacity: 10,
                available: 7,
            }],
            available: 9,
            held: 5,
            booked: 0,
        };
        (outcome, map)
    }

    fn failed(checks: &[Check]) -> Vec<&'static str> {
        checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn a_consistent_sale_passes() {
        let (outcome, map) = consistent();
        let checks = check(&outcome, &map);
        assert!(failed(&checks).is_empty(), "{checks:#?}");
    }

    #[test]
    fn more_taken_on_the_map_than_won_fails() {
        let (outcome, mut map) = consistent();
        map.held += 1;
        map.seats[2].1 = "HELD".into();
        let checks = check(&outcome, &map);
        assert_eq!(failed(&checks), vec![CHECK_COUNTS, CHECK_WINNERS_TAKEN]);
    }

    #[test]
    fn fewer_taken_on_the_map_than_won_fails() {
        let (outcome, mut map) = consistent();
        map.held -= 1;
        map.seats[1].1 = "AVAILABLE".into();
        let checks = check(&outcome, &map);
        assert_eq!(failed(&checks), vec![CHECK_COUNTS, CHECK_WINNERS_TAKEN]);
    }

    #[test]
    fn a_seat_in_two_holds_fails() {
        let (mut outcome, mut map) = consistent();
        outcome.won.push(hold(&["A-1-2"], &[]));
        map.held += 1; // even if the counts were made to agree
        let checks = check(&outcome, &map);
        assert_eq!(failed(&checks), vec![CHECK_NO_DOUBLE]);
    }

    #[test]
    fn standing_over_capacity_fails() {
        let (mut outcome, mut map) = consistent();
        outcome.won.push(hold(&[], &[("FLOOR", 8)]));
        map.held += 8;
        map.standing[0].available = 0;
        let checks = check(&outcome, &map);
        assert_eq!(failed(&checks), vec![CHECK_STANDING]);
    }

    #[test]
    fn standing_availability_that_disagrees_fails() {
        let (outcome, mut map) = consistent();
        map.standing[0].available = 8;
        let checks = check(&outcome, &map);
        assert_eq!(failed(&checks), vec![CHECK_STANDING]);
    }

    #[test]
    fn standing_won_in_a_section_the_map_lacks_fails() {
        let (mut outcome, mut map) = consistent();
        outcome.won.push(hold(&[], &[("BALCONY", 1)]));
        map.held += 1;
        let checks = check(&outcome, &map);
        assert_eq!(failed(&checks), vec![CHECK_STANDING]);
    }

    #[test]
    fn unknown_outcomes_allow_exactly_their_places() {
        let (mut outcome, mut map) = consistent();
        // A timed-out request for 2 seats did win them on the server.
        map.held += 2;
        map.seats[2].1 = "HELD".into();
        map.seats[3].1 = "HELD".into();
        assert!(!failed(&check(&outcome, &map)).is_empty());
        outcome.unknown_places = 2;
        assert!(failed(&check(&outcome, &map)).is_empty());
        // …but not one place more.
        map.held += 1;
        map.standing[0].available -= 1;
        outcome.unknown_places = 2;
        let checks = check(&outcome, &map);
        assert_eq!(failed(&checks), vec![CHECK_COUNTS]);
    }

    #[test]
    fn answers_parse_from_the_contract_shapes() {
        let won = WonHold::from_answer(&json!({
            "id": "hld_1", "seats": [{"id": "A-1-3", "category": "std"}],
            "standing": [{"section": "FLOOR", "quantity": 2}]
        }))
        .expect("a hold");
        assert_eq!(won, hold(&["A-1-3"], &[("FLOOR", 2)]));
        assert_eq!(won.places(), 3);
        assert!(WonHold::from_answer(&json!({"seats": "nope"})).is_none());
        let map = SeatMap::from_answer(&json!({
            "show_id": "shw_1", "version": 3,
            "seats": [{"id": "A-1-1", "status": "HELD"}],
            "standing": [{"section": "FLOOR", "category": "ga", "capacity": 10, "available": 9}],
            "summary": {"available": 9, "held": 2, "booked": 0}
        }))
        .expect("a map");
        assert_eq!(map.held, 2);
        assert_eq!(map.standing[0].available, 9);
        assert!(SeatMap::from_answer(&json!({"seats": []})).is_none());
    }
}
