//! The per-node expiry timer (DESIGN.md "The hot path", 5): every hold this
//! node creates is put in a delay queue at its `expires_at`; a task sleeps
//! until the earliest deadline and expires exactly the due holds by ID, so
//! the seats come back and the change is announced (to this node's inventory
//! at once, to other nodes through the change feed) without scanning the
//! holds table. At start the queue is filled with every `ACTIVE` hold, so a
//! restarted node picks up where it stopped. Holds created by other nodes
//! are their timers' business; the slower sweep
//! (`BookingService::expire_due_holds`) is only the safety net for a node
//! that died. Availability never waits for either: an expired hold never
//! blocks (the inventory and the store treat `expires_at <= now` as free).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxoffice_domain::{DelayQueue, HoldId};
use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};

use crate::Services;

/// Holds expired per store transaction.
const EXPIRY_BATCH_MAX: usize = 500;
/// Upper bound of one sleep, so that a clock change or a missed wake-up
/// cannot delay expiry for long.
const SLEEP_MAX: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct HoldExpiryQueue {
    queue: Mutex<DelayQueue<HoldId>>,
    /// Woken when a deadline earlier than the one slept on may have arrived.
    scheduled: Notify,
}

impl HoldExpiryQueue {
    pub fn new() -> Arc<HoldExpiryQueue> {
        Arc::new(HoldExpiryQueue::default())
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, DelayQueue<HoldId>> {
        // The heap is consistent after every push and pop; a panic elsewhere
        // while holding the lock cannot corrupt it.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn schedule(&self, hold_id: HoldId, expires_at: DateTime<Utc>) {
        let deadline = expires_at.timestamp_millis();
        let earliest = {
            let mut queue = self.queue();
            let earlier = queue.next_deadline().is_none_or(|next| deadline < next);
            queue.schedule(deadline, hold_id);
            metrics::gauge!("boxoffice_expiry_queue_length").set(queue.len() as f64);
            earlier
        };
        if earliest {
            self.scheduled.notify_one();
        }
    }

    fn take_due(&self, now: DateTime<Utc>) -> Vec<HoldId> {
        let mut queue = self.queue();
        let due = queue.take_due(now.timestamp_millis(), EXPIRY_BATCH_MAX);
        metrics::gauge!("boxoffice_expiry_queue_length").set(queue.len() as f64);
        due
    }

    fn next_deadline(&self) -> Option<i64> {
        self.queue().next_deadline()
    }

    pub fn len(&self) -> usize {
        self.queue().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs the timer until `shutdown` flips: fills the queue from the store,
/// then expires holds as their deadlines pass.
pub async fn run(services: Arc<Services>, mut shutdown: watch::Receiver<bool>) {
    let booking = &services.booking;
    let queue = booking.expiry_queue().clone();
    // Fill the queue from the store; retried, because a node that started
    // while the database was away must still expire the holds it finds.
    loop {
        match booking.schedule_active_holds().await {
            Ok(count) => {
                tracing::debug!(count, "expiry queue filled from the store");
                break;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read active holds for the expiry queue; retrying");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(SLEEP_MAX) => {}
                }
            }
        }
    }
    loop {
        let now = booking.now();
        let due = queue.take_due(now);
        if !due.is_empty() {
            if let Err(error) = booking.expire_holds(&due).await {
                tracing::warn!(%error, holds = due.len(), "expiring due holds failed; retrying");
                // Put them back a little later: nothing is lost, and a
                // database outage does not turn into a busy loop.
                for hold_id in due {
                    queue.schedule(hold_id, now + chrono::Duration::seconds(1));
                }
            }
            continue;
        }
        let sleep = queue
            .next_deadline()
            .map(|deadline| {
                let wait_ms = deadline.saturating_sub(now.timestamp_millis()).max(0);
                Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)).min(SLEEP_MAX)
            })
            .unwrap_or(SLEEP_MAX);
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = queue.scheduled.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}
