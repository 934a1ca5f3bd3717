//! The scenarios, each a set of C concurrent workers (one keep-alive
//! connection each) that stop by themselves at a deadline, on a stop flag,
//! or after a bounded number of requests.
//!
//! - [`baseline`]: `GET /healthz`, this machine's HTTP ceiling.
//! - [`flash_sale`]: everyone wants the best seats at once, until sold out.
//! - [`browse`]: seat-map reads, half of them conditional.
//! - [`buy`]: hold and pay, end to end.
//! - [`waiting_room`]: queue joins and polls, and a crowd through the
//!   virtual waiting room.

pub mod baseline;
pub mod browse;
pub mod buy;
pub mod flash_sale;
pub mod waiting_room;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::client::{Answer, TransportError};
use crate::stats::Tally;

/// A bound on any one worker's loop besides its deadline: even a server that
/// answers in no time at all cannot keep a worker going for ever.
pub const REQUESTS_PER_WORKER_MAX: u64 = 10_000_000;

/// When a phase ends.
pub struct Stop {
    pub started: Instant,
    pub deadline: Instant,
    flag: AtomicBool,
}

impl Stop {
    pub fn after(duration: Duration) -> Stop {
        let started = Instant::now();
        Stop {
            started,
            deadline: started + duration,
            flag: AtomicBool::new(false),
        }
    }

    pub fn now(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    pub fn is_over(&self) -> bool {
        self.flag.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }
}

/// Runs `worker(index)` on `connections` tasks and collects their results.
/// A worker that panicked is reported as an error, not a crash of the run.
pub async fn run_workers<F, Fut, T>(connections: usize, worker: F) -> Result<Vec<T>, String>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..connections)
        .map(|index| tokio::spawn(worker(index)))
        .collect();
    let mut results = Vec::with_capacity(connections);
    for handle in handles {
        results.push(
            handle
                .await
                .map_err(|error| format!("a worker failed: {error}"))?,
        );
    }
    Ok(results)
}

/// Each worker's random numbers: reproducible from `--seed`.
pub fn worker_rng(seed: u64, scenario: u64, index: usize) -> StdRng {
    StdRng::seed_from_u64(
        seed ^ scenario.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (index as u64).wrapping_mul(0x2545_F491),
    )
}

/// Counts an answer that is neither the wanted one nor an expected refusal.
pub fn count_error(tally: &mut Tally, answer: &Result<Answer, TransportError>) {
    match answer {
        Ok(answer) => tally.errors.add(&answer.code()),
        Err(error) => tally.errors.add(error.code),
    }
}
