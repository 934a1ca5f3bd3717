//! The loop shared by the claim-and-deliver workers (the outbox dispatcher,
//! the webhook sender): claim a batch, go on at once while batches come back
//! full, else wait for the next poll; report the backlog now and then.

use std::future::Future;
use std::time::Duration;

use boxoffice_store::StoreError;
use tokio::sync::watch;

/// How a worker paces itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacing {
    /// What it is, for the logs (`outbox`, `webhooks`).
    pub name: &'static str,
    /// A batch this full means more may be due: no pause before the next.
    pub batch_size: u32,
    /// The pause after a batch that was not full.
    pub poll_interval: Duration,
    /// How often `report` runs.
    pub report_every: Duration,
}

/// Runs `batch` (which returns how many it claimed) until `shutdown` flips.
pub(crate) async fn run_until_shutdown<B, BatchDone, R, ReportDone>(
    pacing: Pacing,
    mut shutdown: watch::Receiver<bool>,
    mut batch: B,
    mut report: R,
) where
    B: FnMut() -> BatchDone,
    BatchDone: Future<Output = Result<usize, StoreError>>,
    R: FnMut() -> ReportDone,
    ReportDone: Future<Output = ()>,
{
    let mut last_report = tokio::time::Instant::now() - pacing.report_every;
    loop {
        let claimed = match batch().await {
            Ok(count) => count,
            Err(error) => {
                tracing::warn!(%error, worker = pacing.name, "claiming failed; retrying");
                0
            }
        };
        if last_report.elapsed() >= pacing.report_every {
            report().await;
            last_report = tokio::time::Instant::now();
        }
        if u32::try_from(claimed).unwrap_or(u32::MAX) >= pacing.batch_size {
            if *shutdown.borrow() {
                break;
            }
            continue;
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(pacing.poll_interval) => {}
        }
    }
}
