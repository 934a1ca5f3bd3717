//! The per-show group commit of holds (DESIGN.md, "The hot path", step 4).
//! Hold requests that survive the fast reject queue per show; one task per
//! show collects them for a short window (or up to a batch size), and one
//! store transaction decides them in arrival order and commits the winners
//! together. The database's row locks keep nodes honest with each other; the
//! batcher only makes it fast.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxoffice_domain::ShowId;
use boxoffice_store::{
    HoldRecord, HoldRejection, IdempotencyCompletion, NewHold, Store, StoreError, StoreResult,
};
use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for one show's batcher; senders wait (backpressure)
/// rather than queue without bound.
const QUEUE_LENGTH_MAX: usize = 4_096;

/// How holds are executed: `naive` is one transaction per request (kept to
/// compare), `batched` the group commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldStrategy {
    Naive,
    Batched,
}

impl HoldStrategy {
    pub fn parse(text: &str) -> Option<HoldStrategy> {
        match text {
            "naive" => Some(HoldStrategy::Naive),
            "batched" => Some(HoldStrategy::Batched),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HoldStrategy::Naive => "naive",
            HoldStrategy::Batched => "batched",
        }
    }
}

/// Bounds of one batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// How long the first request of a batch waits for company.
    pub window: Duration,
    /// Requests per batch (one transaction).
    pub size_max: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            window: Duration::from_micros(300),
            size_max: 256,
        }
    }
}

type HoldOutcome = StoreResult<Result<HoldRecord, HoldRejection>>;

struct Job {
    hold: NewHold,
    completion: Option<IdempotencyCompletion>,
    respond: oneshot::Sender<HoldOutcome>,
}

pub struct HoldBatcher {
    store: Arc<dyn Store>,
    limits: BatchLimits,
    shows: Mutex<HashMap<ShowId, mpsc::Sender<Job>>>,
}

impl HoldBatcher {
    pub fn new(store: Arc<dyn Store>, limits: BatchLimits) -> Arc<HoldBatcher> {
        Arc::new(HoldBatcher {
            store,
            limits,
            shows: Mutex::new(HashMap::new()),
        })
    }

    fn sender(&self, show_id: &ShowId) -> mpsc::Sender<Job> {
        let mut shows = self
            .shows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sender) = shows.get(show_id).filter(|sender| !sender.is_closed()) {
            return sender.clone();
        }
        let (sender, receiver) = mpsc::channel(QUEUE_LENGTH_MAX);
        tokio::spawn(run_show(
            self.store.clone(),
            show_id.clone(),
            receiver,
            self.limits,
        ));
        shows.insert(show_id.clone(), sender.clone());
        sender
    }

    /// Queues a hold for its show's next batch and waits for the decision.
    pub async fn submit(
        &self,
        hold: NewHold,
        completion: Option<IdempotencyCompletion>,
    ) -> HoldOutcome {
        let (respond, answer) = oneshot::channel();
        let job = Job {
            hold,
            completion,
            respond,
        };
        if let Err(mpsc::error::SendError(job)) = self.sender(&job.hold.show_id).send(job).await {
            // The show's task is gone (it cannot be, short of a panic): run alone.
            return self
                .store
                .create_hold(&job.hold, job.completion.as_ref())
                .await;
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Other(
                "the batcher dropped a hold request".into(),
            ))
        })
    }
}

async fn run_show(
    store: Arc<dyn Store>,
    show_id: ShowId,
    mut receiver: mpsc::Receiver<Job>,
    limits: BatchLimits,
) {
    while let Some(first) = receiver.recv().await {
        let mut jobs = vec![first];
        let deadline = tokio::time::Instant::now() + limits.window;
        while jobs.len() < limits.size_max {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(job)) => jobs.push(job),
                Ok(None) | Err(_) => break,
            }
        }
        execute(store.as_ref(), &show_id, jobs).await;
    }
}

async fn execute(store: &dyn Store, show_id: &ShowId, jobs: Vec<Job>) {
    metrics::histogram!("boxoffice_hold_batch_size").record(jobs.len() as f64);
    let pairs: Vec<(NewHold, Option<IdempotencyCompletion>)> = jobs
        .iter()
        .map(|job| (job.hold.clone(), job.completion.clone()))
        .collect();
    match store.create_holds_batch(show_id, &pairs, Utc::now()).await {
        Ok(results) if results.len() == jobs.len() => {
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.respond.send(Ok(result));
            }
        }
        outcome => {
            // The batch failed as a whole (or answered nonsense): nothing of
            // it was committed, so each request runs on its own instead.
            if let Err(error) = &outcome {
                tracing::warn!(%show_id, %error, "hold batch failed; running its requests one by one");
            }
            for job in jobs {
                let result = store.create_hold(&job.hold, job.completion.as_ref()).await;
                let _ = job.respond.send(result);
            }
        }
    }
}
