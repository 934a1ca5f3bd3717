//! `flash-sale`: C connections of buyers asking for 1–4 places at once until
//! the show is sold out (or the time cap passes):
//!
//! - 60% chosen seats, aimed at the best rows still free as far as this
//!   client knows (skewed to the very first of them, so most requests race
//!   each other and lose);
//! - 25% best available (`{"quantity": n}`);
//! - 15% standing places on the floor.
//!
//! What the client "knows" is every seat named in a 201 or in a 409's
//! `unavailable` list, plus the seat map that a poller reads every second;
//! the poller also ends the sale once the map shows nothing available.
//! Without that feedback the chosen-seat requests would keep hammering sold
//! rows and the sale would never reach its last seats.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use crate::client::{Answer, Call, Http, TransportError};
use crate::invariants::{self, SaleOutcome, SeatMap, WonHold};
use crate::progress::{Live, Progress};
use crate::report::{FlashSaleReport, ModeCounts};
use crate::scenarios::{count_error, run_workers, worker_rng, Stop, REQUESTS_PER_WORKER_MAX};
use crate::setup::VenuePlan;
use crate::stats::{per_second, Tally};
use crate::LoadtestError;

const SCENARIO_NUMBER: u64 = 2;
/// Shares of the request mix, in percent (the rest is standing).
const CHOSEN_PERCENT: u32 = 60;
const BEST_AVAILABLE_PERCENT: u32 = 25;
const PLACES_PER_REQUEST_MAX: u32 = 4;
/// Chosen-seat requests aim at one of the first this-many rows with free
/// seats, the first ones far more often (a quadratic skew).
const AIM_ROWS: usize = 8;
/// How far one pick scans for free rows past the frontier (a bound on the
/// work per request; the frontier itself moves as rows fill up).
const AIM_SCAN_ROWS_MAX: usize = 256;
const POLL_INTERVAL_MILLISECONDS: u64 = 1_000;
/// Reading the final seat map: a few tries, in case one times out.
const FINAL_MAP_TRIES: u32 = 3;

/// What this client knows of the seated inventory.
struct Aim {
    ids: Vec<String>,
    rows: Vec<Range<usize>>,
    index_of: HashMap<String, usize>,
    taken: Vec<AtomicBool>,
    /// No row before this one has a seat not known taken.
    frontier: AtomicUsize,
}

impl Aim {
    fn new(plan: &VenuePlan) -> Aim {
        let mut ids = Vec::new();
        let mut rows = Vec::new();
        for row in &plan.rows {
            let start = ids.len();
            ids.extend(row.iter().cloned());
            rows.push(start..ids.len());
        }
        let index_of = ids
            .iter()
            .enumerate()
            .map(|(index, id)| (id.clone(), index))
            .collect();
        let taken = ids.iter().map(|_| AtomicBool::new(false)).collect();
        Aim {
            ids,
            rows,
            index_of,
            taken,
            frontier: AtomicUsize::new(0),
        }
    }

    fn mark_taken(&self, seat_id: &str) {
        if let Some(&index) = self.index_of.get(seat_id) {
            self.taken[index].store(true, Ordering::Relaxed);
        }
    }

    /// Up to `quantity` free-looking seats of one of the first free rows;
    /// `None` when no seat is known to be free any more.
    fn pick(&self, rng: &mut StdRng, quantity: usize) -> Option<Vec<String>> {
        let mut candidates: Vec<Vec<usize>> = Vec::with_capacity(AIM_ROWS);
        let first = self.frontier.load(Ordering::Relaxed);
        let mut all_taken_so_far = true;
        for row in first..self.rows.len().min(first + AIM_SCAN_ROWS_MAX) {
            let free: Vec<usize> = self.rows[row]
                .clone()
                .filter(|&index| !self.taken[index].load(Ordering::Relaxed))
                .collect();
            if free.is_empty() {
                if all_taken_so_far {
                    self.frontier.fetch_max(row + 1, Ordering::Relaxed);
                }
                continue;
            }
            all_taken_so_far = false;
            candidates.push(free);
            if candidates.len() == AIM_ROWS {
                break;
            }
        }
        if candidates.is_empty() {
            return None;
        }
        let skew: f64 = rng.gen::<f64>().powi(2);
        let row = ((candidates.len() as f64 * skew) as usize).min(candidates.len() - 1);
        let free = &candidates[row];
        let quantity = quantity.min(free.len());
        let start = rng.gen_range(0..=free.len() - quantity);
        Some(
            free[start..start + quantity]
                .iter()
                .map(|&index| self.ids[index].clone())
                .collect(),
        )
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Chosen = 0,
    BestAvailable = 1,
    Standing = 2,
}

struct Sale {
    http: Http,
    show_id: String,
    floor: Option<&'static str>,
    tokens: Arc<Vec<String>>,
    aim: Aim,
    stop: Stop,
    live: Live,
    seed: u64,
}

#[derive(Default)]
struct WorkerResult {
    tally: Tally,
    won: Vec<WonHold>,
    unknown_places: u64,
    modes: [ModeCounts; 3],
    last_win_seconds: f64,
}

pub struct SaleSettings {
    pub connections: usize,
    pub cap: Duration,
    pub seed: u64,
    pub progress: Progress,
}

pub async fn run(
    http: &Http,
    show_id: &str,
    plan: &VenuePlan,
    tokens: Arc<Vec<String>>,
    settings: SaleSettings,
) -> Result<FlashSaleReport, LoadtestError> {
    if tokens.is_empty() {
        return Err(LoadtestError::Config("a flash sale needs users".into()));
    }
    let sale = Arc::new(Sale {
        http: http.clone(),
        show_id: show_id.to_string(),
        floor: plan.floor(),
        tokens,
        aim: Aim::new(plan),
        stop: Stop::after(settings.cap),
        live: Live::default(),
        seed: settings.seed,
    });
    let bar = settings.progress.bar("flash-sale", plan.places());
    let sold_out_seen = Arc::new(AtomicU64::new(0));
    let poller = tokio::spawn(poll(sale.clone(), bar.clone(), sold_out_seen.clone()));
    let results = run_workers(settings.connections, |index| worker(sale.clone(), index))
        .await
        .map_err(LoadtestError::Scenario)?;
    let elapsed = sale.stop.started.elapsed();
    sale.stop.now();
    let _ = poller.await;
    bar.finish_and_clear();

    let mut total = Tally::default();
    let mut outcome = SaleOutcome::default();
    let mut modes = [ModeCounts::default(); 3];
    let mut last_win_seconds: f64 = 0.0;
    for result in results {
        total.merge(&result.tally);
        outcome.won.extend(result.won);
        outcome.unknown_places += result.unknown_places;
        for (sum, part) in modes.iter_mut().zip(result.modes) {
            sum.attempts += part.attempts;
            sum.wins += part.wins;
        }
        last_win_seconds = last_win_seconds.max(result.last_win_seconds);
    }
    let map = final_map(http, show_id).await?;
    let checks = invariants::check(&outcome, &map);
    let places_won: u64 = outcome.won.iter().map(WonHold::places).sum();
    let wins = total.successes.count();
    let sold_out = map.available == 0;
    let seen = sold_out_seen.load(Ordering::Relaxed);
    Ok(FlashSaleReport {
        places: plan.places(),
        seated: plan.seated(),
        standing_capacity: u64::from(plan.standing_capacity),
        connections: settings.connections,
        seconds: elapsed.as_secs_f64(),
        sold_out,
        sellout_seconds: sold_out.then_some(last_win_seconds),
        sellout_seen_seconds: (seen > 0).then_some(seen as f64 / 1_000.0),
        attempts: total.attempts,
        attempts_per_second: per_second(total.attempts, elapsed),
        successes: wins,
        successes_per_second: per_second(wins, elapsed),
        places_won,
        losers: total.losers.count(),
        winners_latency: total.successes.summary(),
        losers_latency: total.losers.summary(),
        errors: total.errors,
        chosen: modes[Mode::Chosen as usize],
        best_available: modes[Mode::BestAvailable as usize],
        standing: modes[Mode::Standing as usize],
        unknown_places: outcome.unknown_places,
        map_available: map.available,
        map_held: map.held,
        map_booked: map.booked,
        invariants_passed: checks.iter().all(|check| check.passed),
        invariants: checks,
        peak_rss_kib: None,
    })
}

async fn worker(sale: Arc<Sale>, index: usize) -> WorkerResult {
    let node = sale.http.node_for(index);
    let mut rng = worker_rng(sale.seed, SCENARIO_NUMBER, index);
    let mut result = WorkerResult::default();
    while !sale.stop.is_over() && result.tally.attempts < REQUESTS_PER_WORKER_MAX {
        let token = &sale.tokens[rng.gen_range(0..sale.tokens.len())];
        let quantity = rng.gen_range(1..=PLACES_PER_REQUEST_MAX);
        let (mode, body) = request(&sale, &mut rng, quantity);
        result.tally.attempts += 1;
        result.modes[mode as usize].attempts += 1;
        let answer = sale
            .http
            .send(node, Call::post("/v1/holds", &body).token(token))
            .await;
        let won = settle(&sale, &mut result, &answer, u64::from(quantity));
        if won {
            result.modes[mode as usize].wins += 1;
            result.last_win_seconds = sale.stop.started.elapsed().as_secs_f64();
        }
        sale.live.request(won);
    }
    result
}

/// The next request's form and body.
fn request(sale: &Sale, rng: &mut StdRng, quantity: u32) -> (Mode, Value) {
    let roll = rng.gen_range(0..100);
    if roll < CHOSEN_PERCENT {
        if let Some(seat_ids) = sale.aim.pick(rng, quantity as usize) {
            return (
                Mode::Chosen,
                json!({"show_id": sale.show_id, "seat_ids": seat_ids}),
            );
        }
    } else if roll >= CHOSEN_PERCENT + BEST_AVAILABLE_PERCENT {
        if let Some(floor) = sale.floor {
            return (
                Mode::Standing,
                json!({"show_id": sale.show_id, "section": floor, "quantity": quantity}),
            );
        }
    }
    (
        Mode::BestAvailable,
        json!({"show_id": sale.show_id, "quantity": quantity}),
    )
}

/// Counts one answer; true for a won hold.
fn settle(
    sale: &Sale,
    result: &mut WorkerResult,
    answer: &Result<Answer, TransportError>,
    quantity: u64,
) -> bool {
    let ok = match answer {
        Ok(ok) => ok,
        Err(_) => {
            // No answer: the hold may or may not exist.
            result.unknown_places += quantity;
            count_error(&mut result.tally, answer);
            return false;
        }
    };
    match ok.status.as_u16() {
        201 => match ok.json().as_ref().and_then(WonHold::from_answer) {
            Some(won) => {
                for seat in &won.seats {
                    sale.aim.mark_taken(seat);
                }
                result.tally.successes.record(ok.latency);
                result.won.push(won);
                true
            }
            None => {
                result.unknown_places += quantity;
                result.tally.errors.add("malformed_answer");
                false
            }
        },
        409 if ok.code() == "seats_unavailable" => {
            result.tally.losers.record(ok.latency);
            if let Some(taken) = ok
                .json()
                .as_ref()
                .and_then(|body| body.get("unavailable"))
                .and_then(Value::as_array)
            {
                for seat in taken.iter().filter_map(Value::as_str) {
                    sale.aim.mark_taken(seat);
                }
            }
            false
        }
        status => {
            // A 5xx (a request timeout, say) may have committed before it failed.
            if status >= 500 {
                result.unknown_places += quantity;
            }
            count_error(&mut result.tally, answer);
            false
        }
    }
}

/// Reads the seat map every second: feeds the aim, moves the progress bar,
/// and ends the sale when nothing is available.
async fn poll(sale: Arc<Sale>, bar: indicatif::ProgressBar, sold_out_seen: Arc<AtomicU64>) {
    let path = format!("/v1/shows/{}/seats", sale.show_id);
    let mut interval = tokio::time::interval(Duration::from_millis(POLL_INTERVAL_MILLISECONDS));
    while !sale.stop.is_over() {
        interval.tick().await;
        let node = sale.http.next_node();
        let Ok(answer) = sale.http.send(node, Call::get(&path)).await else {
            continue;
        };
        let Some(map) = answer.json().as_ref().and_then(SeatMap::from_answer) else {
            continue;
        };
        for (seat, status) in &map.seats {
            if status != "AVAILABLE" {
                sale.aim.mark_taken(seat);
            }
        }
        bar.set_position(map.held + map.booked);
        bar.set_message(format!(
            "{} attempts, {} won",
            sale.live.requests.load(Ordering::Relaxed),
            sale.live.successes.load(Ordering::Relaxed)
        ));
        if map.available == 0 {
            let millis = sale.stop.started.elapsed().as_millis();
            sold_out_seen.store(
                u64::try_from(millis).unwrap_or(u64::MAX).max(1),
                Ordering::Relaxed,
            );
            sale.stop.now();
        }
    }
}

async fn final_map(http: &Http, show_id: &str) -> Result<SeatMap, LoadtestError> {
    let path = format!("/v1/shows/{show_id}/seats");
    let mut last_problem = String::new();
    for _ in 0..FINAL_MAP_TRIES {
        match http.send(http.next_node(), Call::get(&path)).await {
            Ok(answer) if answer.status.as_u16() == 200 => {
                match answer.json().as_ref().and_then(SeatMap::from_answer) {
                    Some(map) => return Ok(map),
                    None => last_problem = "the seat map does not have the contract's shape".into(),
                }
            }
            Ok(answer) => last_problem = format!("the seat map answered {}", answer.status),
            Err(error) => last_problem = error.message,
        }
    }
    Err(LoadtestError::Scenario(format!(
        "cannot read the final seat map of {show_id}: {last_problem}"
    )))
}
