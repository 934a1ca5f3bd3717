//! `baseline`: `GET /healthz` on every connection for the duration — what
//! this machine's HTTP stack can do at all, measured in the same run as the
//! others so that their numbers read as a share of it.

use std::sync::Arc;
use std::time::Duration;

use crate::client::{Call, Http};
use crate::progress::{tick, Live, Progress};
use crate::report::ThroughputReport;
use crate::scenarios::{count_error, run_workers, Stop, REQUESTS_PER_WORKER_MAX};
use crate::stats::{per_second, Tally};
use crate::LoadtestError;

pub async fn run(
    http: &Http,
    connections: usize,
    duration: Duration,
    progress: Progress,
) -> Result<ThroughputReport, LoadtestError> {
    let stop = Arc::new(Stop::after(duration));
    let live = Arc::new(Live::default());
    let bar = progress.bar("baseline", duration.as_secs());
    let ticker = tick(bar.clone(), live.clone(), stop.started);
    let tallies = run_workers(connections, |index| {
        let http = http.clone();
        let stop = stop.clone();
        let live = live.clone();
        async move {
            let node = http.node_for(index);
            let mut tally = Tally::default();
            while !stop.is_over() && tally.attempts < REQUESTS_PER_WORKER_MAX {
                tally.attempts += 1;
                let answer = http.send(node, Call::get("/healthz")).await;
                match &answer {
                    Ok(ok) if ok.status.as_u16() == 200 => {
                        tally.successes.record(ok.latency);
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
    Ok(ThroughputReport {
        name: "baseline".into(),
        seconds: elapsed.as_secs_f64(),
        connections,
        requests: total.attempts,
        requests_per_second: per_second(total.attempts, elapsed),
        latency: total.successes.summary(),
        errors: total.errors,
        peak_rss_kib: None,
    })
}
