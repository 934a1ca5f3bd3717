//! `browse`: seat-map reads of one show. Half the requests carry the last
//! `ETag` seen in `If-None-Match` (a client that already has the map and
//! expects 304), half do not (a new visitor, 200 with the whole map).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::Rng;

use crate::client::{Call, Http};
use crate::progress::{tick, Live, Progress};
use crate::report::BrowseReport;
use crate::scenarios::{count_error, run_workers, worker_rng, Stop, REQUESTS_PER_WORKER_MAX};
use crate::stats::{per_second, Tally};
use crate::LoadtestError;

const SCENARIO_NUMBER: u64 = 3;

#[derive(Default)]
struct Shared {
    etag: RwLock<Option<String>>,
    full: AtomicU64,
    not_modified: AtomicU64,
    bytes: AtomicU64,
}

pub struct BrowseTarget<'a> {
    pub show_id: &'a str,
    pub seats: u64,
}

pub async fn run(
    http: &Http,
    target: BrowseTarget<'_>,
    connections: usize,
    duration: Duration,
    seed: u64,
    progress: Progress,
) -> Result<BrowseReport, LoadtestError> {
    let stop = Arc::new(Stop::after(duration));
    let live = Arc::new(Live::default());
    let shared = Arc::new(Shared::default());
    let path = Arc::new(format!("/v1/shows/{}/seats", target.show_id));
    let bar = progress.bar(&format!("browse {}", target.seats), duration.as_secs());
    let ticker = tick(bar.clone(), live.clone(), stop.started);
    let tallies = run_workers(connections, |index| {
        let (http, stop, live, shared, path) = (
            http.clone(),
            stop.clone(),
            live.clone(),
            shared.clone(),
            path.clone(),
        );
        async move {
            let node = http.node_for(index);
            let mut rng = worker_rng(seed, SCENARIO_NUMBER, index);
            let mut tally = Tally::default();
            while !stop.is_over() && tally.attempts < REQUESTS_PER_WORKER_MAX {
                tally.attempts += 1;
                let etag = if rng.gen_bool(0.5) {
                    shared.etag.read().ok().and_then(|etag| etag.clone())
                } else {
                    None
                };
                let mut call = Call::get(path.as_str());
                call.if_none_match = etag.as_deref();
                let answer = http.send(node, call).await;
                match &answer {
                    Ok(ok) if ok.status.as_u16() == 200 => {
                        tally.successes.record(ok.latency);
                        shared.full.fetch_add(1, Ordering::Relaxed);
                        shared
                            .bytes
                            .fetch_add(ok.body.len() as u64, Ordering::Relaxed);
                        if let (Some(new), Ok(mut etag)) = (&ok.etag, shared.etag.write()) {
                            *etag = Some(new.clone());
                        }
                        live.request(true);
                    }
                    Ok(ok) if ok.status.as_u16() == 304 => {
                        tally.successes.record(ok.latency);
                        shared.not_modified.fetch_add(1, Ordering::Relaxed);
                        live.request(true);
                    }
                    _ => {
                        count_error(&mut tally, &answer);
                        live.request(false);
                    }
                }
            }
            tally
        }
    })
    .await
    .map_err(LoadtestError::Scenario)?;
    let elapsed = stop.started.elapsed();
    bar.finish_and_clear();
    let _ = ticker.await;
    let mut total = Tally::default();
    for tally in &tallies {
        total.merge(tally);
    }
    let full = shared.full.load(Ordering::Relaxed);
    let bytes = shared.bytes.load(Ordering::Relaxed);
    Ok(BrowseReport {
        name: format!("browse ({} seats)", target.seats),
        seats: target.seats,
        seconds: elapsed.as_secs_f64(),
        connections,
        requests: total.attempts,
        requests_per_second: per_second(total.attempts, elapsed),
        ok_200: full,
        not_modified_304: shared.not_modified.load(Ordering::Relaxed),
        map_bytes: bytes.checked_div(full).unwrap_or(0),
        latency: total.successes.summary(),
        errors: total.errors,
        peak_rss_kib: None,
    })
}
