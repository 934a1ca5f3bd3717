//! Progress bars (indicatif) on stderr: one per phase, hidden when stderr is
//! not a terminal or the output is `--json`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a timed phase's bar is redrawn.
const TICK_MILLISECONDS: u64 = 200;

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub enabled: bool,
}

impl Progress {
    /// A bar of `length` steps named `phase`, or a hidden one.
    pub fn bar(&self, phase: &str, length: u64) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix:>18.bold} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(phase.to_string());
        bar
    }
}

/// Live counters that a timed phase's bar shows while the workers run.
#[derive(Debug, Default)]
pub struct Live {
    pub requests: AtomicU64,
    pub successes: AtomicU64,
}

impl Live {
    pub fn request(&self, success: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if success {
            self.successes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Redraws `bar` (length = the phase's seconds) until `done` resolves.
pub fn tick(bar: ProgressBar, live: Arc<Live>, started: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(TICK_MILLISECONDS));
        while !bar.is_finished() {
            interval.tick().await;
            bar.set_position(started.elapsed().as_secs());
            bar.set_message(format!(
                "{} requests, {} ok",
                live.requests.load(Ordering::Relaxed),
                live.successes.load(Ordering::Relaxed)
            ));
        }
    })
}
