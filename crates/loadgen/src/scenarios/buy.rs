//! `buy`: the whole purchase, end to end, on a fresh show — hold 1–2 seats
//! best-available, then `POST /v1/bookings` with `tok_visa` and a fresh
//! `Idempotency-Key`. Stops at the deadline, or when holds keep failing
//! because the show is sold out.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};

use crate::client::{Call, Http};
use crate::progress::{tick, Live, Progress};
use crate::report::BuyReport;
use crate::scenarios::{count_error, run_workers, worker_rng, Stop, REQUESTS_PER_WORKER_MAX};
use crate::stats::{per_second, Latencies, Tally};
use crate::LoadtestError;

const SCENARIO_NUMBER: u64 = 4;
const SEATS_PER_PURCHASE_MAX: u32 = 2;
/// After this many `seats_unavailable` answers in a row across all workers
/// (per connection), a worker reads the seat map to see whether the show is
/// sold out. (Best-available requests also lose races for the same "best"
/// seats, so losses alone prove nothing.)
const LOSSES_IN_A_ROW_PER_CONNECTION: u64 = 4;

#[derive(Default)]
struct WorkerResult {
    /// successes: bookings (end-to-end latency); losers: holds refused.
    tally: Tally,
    holds: Latencies,
    bookings: Latencies,
    places: u64,
}

struct Shared {
    http: Http,
    show_id: String,
    tokens: Arc<Vec<String>>,
    stop: Stop,
    live: Arc<Live>,
    losses_in_a_row: AtomicU64,
    sold_out_after: u64,
    sold_out: AtomicBool,
    seed: u64,
}

pub async fn run(
    http: &Http,
    show_id: &str,
    tokens: Arc<Vec<String>>,
    connections: usize,
    duration: Duration,
    seed: u64,
    progress: Progress,
) -> Result<BuyReport, LoadtestError> {
    if tokens.is_empty() {
        return Err(LoadtestError::Config("buying needs users".into()));
    }
    let live = Arc::new(Live::default());
    let shared = Arc::new(Shared {
        http: http.clone(),
        show_id: show_id.to_string(),
        tokens,
        stop: Stop::after(duration),
        live: live.clone(),
        losses_in_a_row: AtomicU64::new(0),
        sold_out_after: LOSSES_IN_A_ROW_PER_CONNECTION * connections as u64,
        sold_out: AtomicBool::new(false),
        seed,
    });
    let bar = progress.bar("buy", duration.as_secs());
    let ticker = tick(bar.clone(), live, shared.stop.started);
    let results = run_workers(connections, |index| worker(shared.clone(), index))
        .await
        .map_err(LoadtestError::Scenario)?;
    let elapsed = shared.stop.started.elapsed();
    bar.finish_and_clear();
    let _ = ticker.await;
    let mut total = WorkerResult::default();
    for result in &results {
        total.tally.merge(&result.tally);
        total.holds.merge(&result.holds);
        total.bookings.merge(&result.bookings);
        total.places += result.places;
    }
    let bookings = total.tally.successes.count();
    Ok(BuyReport {
        connections,
        seconds: elapsed.as_secs_f64(),
        purchases_started: total.tally.attempts,
        bookings,
        bookings_per_second: per_second(bookings, elapsed),
        places_booked: total.places,
        holds_refused: total.tally.losers.count(),
        sold_out: shared.sold_out.load(Ordering::Relaxed),
        end_to_end_latency: total.tally.successes.summary(),
        hold_latency: total.holds.summary(),
        booking_latency: total.bookings.summary(),
        errors: total.tally.errors,
        peak_rss_kib: None,
    })
}

async fn worker(shared: Arc<Shared>, index: usize) -> WorkerResult {
    let node = shared.http.node_for(index);
    let mut rng = worker_rng(shared.seed, SCENARIO_NUMBER, index);
    let mut result = WorkerResult::default();
    let hold_body_of = |quantity: u32| json!({"show_id": shared.show_id, "quantity": quantity});
    while !shared.stop.is_over() && result.tally.attempts < REQUESTS_PER_WORKER_MAX {
        result.tally.attempts += 1;
        let token = &shared.tokens[rng.gen_range(0..shared.tokens.len())];
        let quantity = rng.gen_range(1..=SEATS_PER_PURCHASE_MAX);
        let started = Instant::now();
        let body = hold_body_of(quantity);
        let hold = shared
            .http
            .send(node, Call::post("/v1/holds", &body).token(token))
            .await;
        let hold_id = match &hold {
            Ok(ok) if ok.status.as_u16() == 201 => {
                result.holds.record(ok.latency);
                ok.json()
                    .as_ref()
                    .and_then(|body| body.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }
            Ok(ok) if ok.status.as_u16() == 409 && ok.code() == "seats_unavailable" => {
                result.tally.losers.record(ok.latency);
                let losses = shared.losses_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                if losses == shared.sold_out_after && sold_out(&shared, node).await {
                    shared.sold_out.store(true, Ordering::Relaxed);
                    shared.stop.now();
                } else if losses >= shared.sold_out_after {
                    shared.losses_in_a_row.store(0, Ordering::Relaxed);
                }
                shared.live.request(false);
                continue;
            }
            _ => {
                count_error(&mut result.tally, &hold);
                shared.live.request(false);
                continue;
            }
        };
        let Some(hold_id) = hold_id else {
            result.tally.errors.add("malformed_answer");
            shared.live.request(false);
            continue;
        };
        shared.losses_in_a_row.store(0, Ordering::Relaxed);
        let key = format!(
            "loadtest-{:x}-{index}-{}",
            shared.seed, result.tally.attempts
        );
        let body = json!({"hold_id": hold_id, "payment_token": "tok_visa"});
        let mut call = Call::post("/v1/bookings", &body).token(token);
        call.idempotency_key = Some(&key);
        let booking = shared.http.send(node, call).await;
        match &booking {
            Ok(ok) if ok.status.as_u16() == 201 => {
                result.bookings.record(ok.latency);
                result.tally.successes.record(started.elapsed());
                result.places += u64::from(quantity);
                shared.live.request(true);
            }
            Ok(ok) => {
                result.tally.errors.add(&format!("booking:{}", ok.code()));
                shared.live.request(false);
            }
            Err(error) => {
                result.tally.errors.add(&format!("booking:{}", error.code));
                shared.live.request(false);
            }
        }
    }
    result
}

/// Whether the seat map shows no free seat (standing places do not count:
/// best-available never picks them). A malformed or failed read says no:
/// the deadline still ends the run.
async fn sold_out(shared: &Shared, node: usize) -> bool {
    let path = format!("/v1/shows/{}/seats", shared.show_id);
    let Ok(answer) = shared.http.send(node, Call::get(&path)).await else {
        return false;
    };
    let Some(map) = answer.json() else {
        return false;
    };
    let available = map
        .get("summary")
        .and_then(|summary| summary.get("available"))
        .and_then(Value::as_u64);
    let standing: Option<u64> = map.get("standing").and_then(Value::as_array).map(|parts| {
        parts
            .iter()
            .filter_map(|part| part.get("available").and_then(Value::as_u64))
            .sum()
    });
    matches!((available, standing), (Some(all), Some(standing)) if all <= standing)
}
