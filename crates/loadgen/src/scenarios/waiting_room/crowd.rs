//! The crowd: every arrival a distinct minted user who joins at its
//! scheduled instant and then polls like a real client (at about the
//! server's estimated wait, within bounds) until it sees ADMITTED.
//!
//! A million arrivals cannot each be a task with its own connection, so one
//! dispatcher owns the timeline: the arrival schedule (a pure function, see
//! `schedule`) and a heap of the tickets' next polls. It hands due work to C
//! workers (one keep-alive connection each) over a channel of capacity C;
//! a worker makes one request and hands the ticket back with its next due
//! instant, or as finished. A ticket is only ever in one place — the heap,
//! the channel, a worker, or the finished list — so no locks guard it.
//! When all workers are busy the dispatcher waits: the delay shows as the
//! joins' lag behind their schedule.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, Mutex};

use crate::client::Http;
use crate::progress::Progress;
use crate::scenarios::run_workers;
use crate::scenarios::waiting_room::queue_api::{self, QueueTicket, Reply, Status};
use crate::scenarios::waiting_room::schedule::{next_poll_at_us, unit, ArrivalPlan};
use crate::scenarios::waiting_room::throughput::micros_since;
use crate::stats::{ErrorCounts, Latencies};
use crate::users::{Population, UserMinter};
use crate::LoadtestError;

/// A join is tried this often (transport errors, 5xx, a refused proof of
/// work) before its arrival counts as failed.
const JOIN_TRIES_MAX: u32 = 5;
/// A ticket whose polls fail this often in all is given up.
const POLL_FAILURES_MAX: u32 = 20;
/// The longest a client waits between two polls, whatever the estimate.
pub const POLL_INTERVAL_MAX_MICROSECONDS: u64 = 30_000_000;
/// How often the progress bar is redrawn.
const PROGRESS_TICK_MILLISECONDS: u64 = 250;

/// What a member of the crowd went through.
#[derive(Debug, Clone, Default)]
pub struct Ticket {
    /// Arrival number (and minted user number).
    pub index: u32,
    pub scheduled_us: u64,
    /// When its current request was due (its arrival, or its next poll).
    pub due_us: u64,
    pub id: Option<String>,
    /// The first try's send instant.
    pub join_sent_us: Option<u64>,
    pub join_answered_us: u64,
    pub join_tries: u32,
    pub position_at_join: u64,
    /// Send instant of the last request that answered WAITING.
    pub admitted_after_us: u64,
    /// Answer instant of the first request that answered ADMITTED.
    pub admitted_by_us: Option<u64>,
    pub polls: u32,
    pub poll_failures: u32,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Outcome {
    /// Not joined yet (never arrived, if the deadline came first).
    #[default]
    Arriving,
    Waiting,
    Admitted,
    Expired,
    JoinFailed,
    PollFailed,
}

/// A ticket due at an instant; the heap is ordered by (instant, sequence)
/// so that equal instants keep their insertion order.
struct Due {
    at_us: u64,
    sequence: u64,
    ticket: Box<Ticket>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at_us, self.sequence) == (other.at_us, other.sequence)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest must come first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at_us, other.sequence).cmp(&(self.at_us, self.sequence))
    }
}

/// A worker's verdict on a ticket.
enum Back {
    Again { at_us: u64, ticket: Box<Ticket> },
    Done(Box<Ticket>),
}

pub struct CrowdSettings {
    pub plan: ArrivalPlan,
    pub pow_difficulty: u32,
    pub poll_bounds_us: (u64, u64),
    pub connections: usize,
    /// When the dispatcher stops (microseconds after the epoch).
    pub deadline_us: u64,
    pub seed: u64,
    pub progress: Progress,
}

/// What the workers counted, merged.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub join_latency: Latencies,
    pub join_lag: Latencies,
    pub poll_lag: Latencies,
    pub poll_latency: Latencies,
    pub pow_solve: Latencies,
    pub challenges: u64,
    pub polls: u64,
    pub errors: ErrorCounts,
}

impl Counts {
    fn merge(&mut self, other: &Counts) {
        self.join_latency.merge(&other.join_latency);
        self.join_lag.merge(&other.join_lag);
        self.poll_lag.merge(&other.poll_lag);
        self.poll_latency.merge(&other.poll_latency);
        self.pow_solve.merge(&other.pow_solve);
        self.challenges += other.challenges;
        self.polls += other.polls;
        self.errors.merge(&other.errors);
    }
}

pub struct CrowdRun {
    pub tickets: Vec<Ticket>,
    pub counts: Counts,
    pub seconds: f64,
}

/// Live numbers for the progress bar.
#[derive(Default)]
struct Live {
    joined: AtomicU64,
    admitted: AtomicU64,
    polls: AtomicU64,
}

struct Shared {
    http: Http,
    show_id: String,
    queue_path: String,
    minter: Arc<UserMinter>,
    settings: CrowdSettings,
    epoch: Instant,
    live: Live,
}

/// Runs the crowd from `epoch` (the plan's time zero) to its end or the
/// deadline.
pub async fn run(
    http: &Http,
    show_id: &str,
    minter: Arc<UserMinter>,
    settings: CrowdSettings,
    epoch: Instant,
) -> Result<CrowdRun, LoadtestError> {
    let connections = settings.connections;
    let bar = settings
        .progress
        .bar("waiting room", u64::from(settings.plan.arrivals));
    let shared = Arc::new(Shared {
        http: http.clone(),
        show_id: show_id.to_string(),
        queue_path: queue_api::queue_path(show_id),
        minter,
        settings,
        epoch,
        live: Live::default(),
    });
    let (jobs, job_receiver) = mpsc::channel::<Box<Ticket>>(connections);
    let job_receiver = Arc::new(Mutex::new(job_receiver));
    let (back, back_receiver) = mpsc::unbounded_channel::<Back>();
    let dispatcher = tokio::spawn(dispatch(shared.clone(), jobs, back_receiver));
    let ticker = tokio::spawn(show_progress(shared.clone(), bar.clone()));
    let worker_counts = run_workers(connections, |index| {
        let (shared, job_receiver, back) = (shared.clone(), job_receiver.clone(), back.clone());
        async move {
            let mut counts = Counts::default();
            let node = shared.http.node_for(index);
            loop {
                let next = job_receiver.lock().await.recv().await;
                let Some(ticket) = next else { break };
                let verdict = step(&shared, node, ticket, &mut counts).await;
                if back.send(verdict).is_err() {
                    break;
                }
            }
            counts
        }
    })
    .await;
    // The workers' senders are gone with them; this one too, so that the
    // dispatcher sees the channel close once it has everything back.
    drop(back);
    let tickets = dispatcher
        .await
        .map_err(|error| LoadtestError::Scenario(format!("the dispatcher failed: {error}")))?;
    let seconds = shared.epoch.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let _ = ticker.await;
    let mut counts = Counts::default();
    for worker in worker_counts.map_err(LoadtestError::Scenario)? {
        counts.merge(&worker);
    }
    Ok(CrowdRun {
        tickets,
        counts,
        seconds,
    })
}

/// Owns the timeline; returns every ticket, finished or not, by index.
async fn dispatch(
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Box<Ticket>>,
    mut back: mpsc::UnboundedReceiver<Back>,
) -> Vec<Ticket> {
    let plan = &shared.settings.plan;
    let deadline_us = shared.settings.deadline_us;
    let mut heap: BinaryHeap<Due> = BinaryHeap::new();
    let mut finished: Vec<Box<Ticket>> = Vec::with_capacity(plan.arrivals as usize);
    let mut next_arrival: u32 = 0;
    let mut sequence: u64 = 0;
    let mut in_flight: usize = 0;
    let mut take_back =
        |verdict: Back, heap: &mut BinaryHeap<Due>, finished: &mut Vec<_>| match verdict {
            Back::Again { at_us, ticket } => {
                sequence += 1;
                heap.push(Due {
                    at_us,
                    sequence,
                    ticket,
                });
            }
            Back::Done(ticket) => finished.push(ticket),
        };
    loop {
        while let Ok(verdict) = back.try_recv() {
            in_flight -= 1;
            take_back(verdict, &mut heap, &mut finished);
        }
        let now_us = micros_since(shared.epoch);
        if now_us >= deadline_us
            || (next_arrival == plan.arrivals && heap.is_empty() && in_flight == 0)
        {
            break;
        }
        let arrival_due = (next_arrival < plan.arrivals).then(|| plan.arrival_us(next_arrival));
        let poll_due = heap.peek().map(|due| due.at_us);
        let next_due = match (arrival_due, poll_due) {
            (Some(arrival), Some(poll)) => Some(arrival.min(poll)),
            (arrival, poll) => arrival.or(poll),
        };
        match next_due {
            Some(due) if due <= now_us => {
                // Reserve a place first, so that a ticket never leaves the
                // heap for a channel that cannot take it.
                let deadline = shared.epoch + Duration::from_micros(deadline_us);
                let permit = tokio::select! {
                    permit = jobs.reserve() => permit,
                    _ = tokio::time::sleep_until(deadline.into()) => break,
                };
                let Ok(permit) = permit else { break };
                // `due` is the earlier of the two, arrivals first on a tie.
                let ticket = if arrival_due == Some(due) {
                    let ticket = Box::new(Ticket {
                        index: next_arrival,
                        scheduled_us: due,
                        due_us: due,
                        ..Ticket::default()
                    });
                    next_arrival += 1;
                    ticket
                } else {
                    match heap.pop() {
                        Some(Due {
                            at_us, mut ticket, ..
                        }) => {
                            ticket.due_us = at_us;
                            ticket
                        }
                        None => continue,
                    }
                };
                permit.send(ticket);
                in_flight += 1;
            }
            _ => {
                let wake_us = next_due.unwrap_or(deadline_us).min(deadline_us);
                let wake = shared.epoch + Duration::from_micros(wake_us);
                tokio::select! {
                    verdict = back.recv() => {
                        if let Some(verdict) = verdict {
                            in_flight -= 1;
                            take_back(verdict, &mut heap, &mut finished);
                        }
                    }
                    _ = tokio::time::sleep_until(wake.into()) => {}
                }
            }
        }
    }
    // No more work: the workers finish what they hold and hand it back.
    drop(jobs);
    while let Some(verdict) = back.recv().await {
        take_back(verdict, &mut heap, &mut finished);
    }
    let mut tickets: Vec<Ticket> = finished.into_iter().map(|ticket| *ticket).collect();
    tickets.extend(heap.into_iter().map(|due| *due.ticket));
    tickets.extend((next_arrival..plan.arrivals).map(|index| Ticket {
        index,
        scheduled_us: plan.arrival_us(index),
        ..Ticket::default()
    }));
    tickets.sort_by_key(|ticket| ticket.index);
    tickets
}

/// One request for `ticket`: its join, or its next poll.
async fn step(shared: &Shared, node: usize, mut ticket: Box<Ticket>, counts: &mut Counts) -> Back {
    let token = match shared
        .minter
        .token(Population::Crowd, u64::from(ticket.index))
    {
        Ok(token) => token,
        Err(_) => {
            counts.errors.add("minting");
            ticket.outcome = Outcome::JoinFailed;
            return Back::Done(ticket);
        }
    };
    if ticket.id.is_none() {
        join(shared, node, ticket, &token, counts).await
    } else {
        poll(shared, node, ticket, &token, counts).await
    }
}

async fn join(
    shared: &Shared,
    node: usize,
    mut ticket: Box<Ticket>,
    token: &str,
    counts: &mut Counts,
) -> Back {
    let settings = &shared.settings;
    let first_try = ticket.join_sent_us.is_none();
    if first_try {
        let lag_us = micros_since(shared.epoch).saturating_sub(ticket.scheduled_us);
        counts.join_lag.record(Duration::from_micros(lag_us));
    }
    ticket.join_tries += 1;
    let body = if settings.pow_difficulty > 0 {
        counts.challenges += 1;
        match queue_api::solve_challenge(&shared.http, node, &shared.show_id, token).await {
            Ok(solved) => {
                counts
                    .pow_solve
                    .record(Duration::from_micros(solved.solve_microseconds));
                solved.body
            }
            Err(code) => return join_failed(shared, ticket, &code, None, counts),
        }
    } else {
        json!({})
    };
    let sent_us = micros_since(shared.epoch);
    ticket.join_sent_us.get_or_insert(sent_us);
    let answer = queue_api::join(&shared.http, node, &shared.queue_path, token, &body).await;
    let answered_us = micros_since(shared.epoch);
    match Reply::of(&answer) {
        Reply::Ticket { ticket: seen, .. } => {
            if let Ok(answer) = &answer {
                counts.join_latency.record(answer.latency);
            }
            shared.live.joined.fetch_add(1, Ordering::Relaxed);
            ticket.join_answered_us = answered_us;
            ticket.position_at_join = seen.position;
            ticket.id = Some(seen.id.clone());
            settle(shared, ticket, &seen, sent_us, answered_us)
        }
        Reply::RetryAfter { seconds, code } => {
            join_failed(shared, ticket, &code, Some(seconds), counts)
        }
        Reply::Failed { code } => join_failed(shared, ticket, &code, None, counts),
    }
}

/// A join that did not give a ticket: try again later, or give up.
fn join_failed(
    shared: &Shared,
    mut ticket: Box<Ticket>,
    code: &str,
    retry_after_seconds: Option<u64>,
    counts: &mut Counts,
) -> Back {
    counts.errors.add(&format!("join:{code}"));
    if ticket.join_tries >= JOIN_TRIES_MAX {
        ticket.outcome = Outcome::JoinFailed;
        return Back::Done(ticket);
    }
    let delay_us = retry_after_seconds.map_or(shared.settings.poll_bounds_us.0, |seconds| {
        seconds.saturating_mul(1_000_000)
    });
    Back::Again {
        at_us: micros_since(shared.epoch) + delay_us,
        ticket,
    }
}

async fn poll(
    shared: &Shared,
    node: usize,
    mut ticket: Box<Ticket>,
    token: &str,
    counts: &mut Counts,
) -> Back {
    let Some(ticket_id) = ticket.id.clone() else {
        return Back::Done(ticket);
    };
    let path = queue_api::ticket_path(&shared.show_id, &ticket_id);
    let sent_us = micros_since(shared.epoch);
    counts
        .poll_lag
        .record(Duration::from_micros(sent_us.saturating_sub(ticket.due_us)));
    let answer = queue_api::poll(&shared.http, node, &path, token).await;
    let answered_us = micros_since(shared.epoch);
    counts.polls += 1;
    ticket.polls += 1;
    shared.live.polls.fetch_add(1, Ordering::Relaxed);
    let retry_after_us = match Reply::of(&answer) {
        Reply::Ticket { ticket: seen, .. } if seen.id == ticket_id => {
            if let Ok(answer) = &answer {
                counts.poll_latency.record(answer.latency);
            }
            return settle(shared, ticket, &seen, sent_us, answered_us);
        }
        Reply::Ticket { .. } => {
            counts.errors.add("poll:another_ticket");
            None
        }
        Reply::RetryAfter { seconds, code } => {
            counts.errors.add(&format!("poll:{code}"));
            Some(seconds.saturating_mul(1_000_000))
        }
        Reply::Failed { code } => {
            counts.errors.add(&format!("poll:{code}"));
            None
        }
    };
    ticket.poll_failures += 1;
    if ticket.poll_failures >= POLL_FAILURES_MAX {
        ticket.outcome = Outcome::PollFailed;
        return Back::Done(ticket);
    }
    let delay_us = retry_after_us.unwrap_or(shared.settings.poll_bounds_us.0);
    Back::Again {
        at_us: answered_us + delay_us,
        ticket,
    }
}

/// Takes in what an answer said about the ticket.
fn settle(
    shared: &Shared,
    mut ticket: Box<Ticket>,
    seen: &QueueTicket,
    sent_us: u64,
    answered_us: u64,
) -> Back {
    match seen.status {
        Status::Waiting => {
            ticket.outcome = Outcome::Waiting;
            ticket.admitted_after_us = sent_us;
            let random = unit(
                shared.settings.seed ^ (u64::from(ticket.index) << 20) ^ u64::from(ticket.polls),
            );
            let at_us = next_poll_at_us(
                answered_us,
                seen.estimated_wait_seconds,
                &shared.settings.plan,
                shared.settings.poll_bounds_us,
                random,
            );
            Back::Again { at_us, ticket }
        }
        Status::Admitted => {
            ticket.outcome = Outcome::Admitted;
            ticket.admitted_by_us = Some(answered_us);
            // The join itself may admit at once (an empty line): the join's
            // send is then the last instant it was not yet admitted.
            if ticket.polls == 0 {
                ticket.admitted_after_us = sent_us;
            }
            shared.live.admitted.fetch_add(1, Ordering::Relaxed);
            Back::Done(ticket)
        }
        Status::Expired => {
            ticket.outcome = Outcome::Expired;
            Back::Done(ticket)
        }
    }
}

async fn show_progress(shared: Arc<Shared>, bar: indicatif::ProgressBar) {
    let mut interval = tokio::time::interval(Duration::from_millis(PROGRESS_TICK_MILLISECONDS));
    while !bar.is_finished() {
        interval.tick().await;
        let live = &shared.live;
        bar.set_position(live.admitted.load(Ordering::Relaxed));
        bar.set_message(format!(
            "admitted; {} joined, {} polls",
            live.joined.load(Ordering::Relaxed),
            live.polls.load(Ordering::Relaxed)
        ));
    }
}

/// The body of `POST /v1/events/{id}/shows`' `waiting_room`.
pub fn waiting_room_settings(admit_per_minute: u32, paused: bool, pow_difficulty: u32) -> Value {
    json!({
        "enabled": true, "admit_per_minute": admit_per_minute,
        "paused": paused, "pow_difficulty": pow_difficulty,
    })
}
