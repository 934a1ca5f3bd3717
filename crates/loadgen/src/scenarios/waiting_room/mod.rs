//! `waiting-room`: the virtual queue of issue 4 under a crowd.
//!
//! 1. **Joins** as fast as possible for the duration: C connections, every
//!    join a new user, into a show whose room is paused (nobody admitted),
//!    so that each join's position is its exact place in line — checked to
//!    be 1..n, once each, in join order.
//! 2. **Polls** of those tickets as fast as possible for the duration.
//! 3. **The crowd**: a show whose `sales_start` is a few seconds ahead;
//!    `arrivals` users join at scheduled instants over the arrival window
//!    (a share of them before the opening, into the pre-queue), each polls
//!    like a real client until admitted. Reported: joins/s, polls/s,
//!    admitted/s against the configured rate, the queue waits, and whether
//!    admission order matched arrival order (see `order`).
//! 4. **The admission token**: one registered buyer queues, is admitted,
//!    and holds a place with the token (and is refused without it).
//!
//! The users of 1–3 are minted, not registered (see `crate::users`).

pub mod analysis;
pub mod crowd;
pub mod order;
pub mod pow;
pub mod queue_api;
pub mod schedule;
pub mod throughput;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;

use crate::client::{Call, Http};
use crate::invariants::Check;
use crate::progress::Progress;
use crate::report::waiting_room::{CrowdReport, WaitingRoomRatios, WaitingRoomReport, USERS_NOTE};
use crate::report::ThroughputReport;
use crate::setup::{Admin, VenuePlan};
use crate::stats::ratio;
use crate::users::UserMinter;
use crate::{setup, LoadtestError};

use self::analysis::Asked;
use self::crowd::{CrowdSettings, POLL_INTERVAL_MAX_MICROSECONDS};
use self::queue_api::{Reply, Status};
use self::schedule::ArrivalPlan;

pub const ARRIVALS_MAX: u32 = 1_000_000;
/// The server's limits of `admit_per_minute`.
pub const ADMIT_PER_MINUTE_MAX: u32 = 1_000_000;
pub const POLL_INTERVAL_MIN_MILLISECONDS_MIN: u64 = 50;
pub const POLL_INTERVAL_MIN_MILLISECONDS_MAX: u64 = 30_000;
/// Places of the room's venue: nobody but the token check holds one.
const VENUE_PLACES: u32 = 100;
/// Time allowed for creating the crowd's show before its schedule starts.
const SHOW_CREATION_ALLOWANCE_SECONDS: i64 = 3;
/// After the last arrival and the expected drain, the crowd gets this long
/// (plus half the drain time) before it is stopped.
const CROWD_SLACK_MICROSECONDS: u64 = 60_000_000;
/// The crowd never runs longer than this (an hour).
const CROWD_DURATION_MAX_MICROSECONDS: u64 = 3_600_000_000;
/// The admission-token check's buyer waits this long at most.
const TOKEN_CHECK_WAIT_SECONDS: u64 = 30;

#[derive(Debug, Clone)]
pub struct WaitingRoomSettings {
    pub arrivals: u32,
    pub arrival_window: Duration,
    pub admit_per_minute: u32,
    /// Share of the arrivals (and of the window) before `sales_start`.
    pub pre_queue_fraction: f64,
    /// Bits of proof of work the crowd's show asks for (0 = off).
    pub pow_difficulty: u32,
    /// The shortest time between two polls of one client.
    pub poll_interval_min: Duration,
}

impl Default for WaitingRoomSettings {
    /// Two minutes on the 2-core machine, all phases: 50,000 arrivals in
    /// 60 s (833/s) against 750 admissions/s, so a line builds up. The
    /// embedded SQLite store keeps to that schedule; twice as many arrivals
    /// fall behind it (joins and admissions are one write each), and on
    /// PostgreSQL without Redis a tenth of it is sustainable
    /// (docs/benchmarks.md, "Waiting room").
    fn default() -> Self {
        WaitingRoomSettings {
            arrivals: 50_000,
            arrival_window: Duration::from_secs(60),
            admit_per_minute: 45_000,
            pre_queue_fraction: 0.2,
            pow_difficulty: 0,
            poll_interval_min: Duration::from_secs(1),
        }
    }
}

impl WaitingRoomSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=ARRIVALS_MAX).contains(&self.arrivals) {
            return Err(format!("arrivals must be 1–{ARRIVALS_MAX}"));
        }
        if self.arrival_window.is_zero()
            || self.arrival_window.as_secs() > crate::DURATION_SECONDS_MAX
        {
            return Err(format!(
                "the arrival window must be 1–{} seconds",
                crate::DURATION_SECONDS_MAX
            ));
        }
        if !(1..=ADMIT_PER_MINUTE_MAX).contains(&self.admit_per_minute) {
            return Err(format!("admit per minute must be 1–{ADMIT_PER_MINUTE_MAX}"));
        }
        if !(0.0..=1.0).contains(&self.pre_queue_fraction) {
            return Err("the pre-queue fraction must be 0–1".into());
        }
        if self.pow_difficulty > pow::DIFFICULTY_MAX {
            return Err(format!(
                "the proof-of-work difficulty must be 0–{}",
                pow::DIFFICULTY_MAX
            ));
        }
        let milliseconds = self.poll_interval_min.as_millis();
        if !(u128::from(POLL_INTERVAL_MIN_MILLISECONDS_MIN)
            ..=u128::from(POLL_INTERVAL_MIN_MILLISECONDS_MAX))
            .contains(&milliseconds)
        {
            return Err(format!(
                "the minimum poll interval must be {POLL_INTERVAL_MIN_MILLISECONDS_MIN}–\
                 {POLL_INTERVAL_MIN_MILLISECONDS_MAX} ms"
            ));
        }
        Ok(())
    }
}

/// What the scenario needs from the run.
pub struct Context<'a> {
    pub http: &'a Http,
    pub admin: &'a Admin,
    pub event_id: &'a str,
    pub minter: Arc<UserMinter>,
    pub connections: usize,
    /// How long each as-fast-as-possible phase runs.
    pub duration: Duration,
    pub seed: u64,
    pub run_id: u64,
    pub progress: Progress,
    /// The server's peak memory since the last call, when sampled.
    pub phase_peak: &'a (dyn Fn() -> Option<u64> + Sync),
}

pub async fn run(
    context: &Context<'_>,
    settings: &WaitingRoomSettings,
    baseline: Option<&ThroughputReport>,
) -> Result<WaitingRoomReport, LoadtestError> {
    settings.validate().map_err(LoadtestError::Config)?;
    let admin = context.admin;
    let plan = VenuePlan::new("Waiting Room Hall", VENUE_PLACES, true);
    let venue_id = admin.create_venue(&plan).await?;

    let paused = json!({"waiting_room": crowd::waiting_room_settings(
        settings.admit_per_minute, true, 0)});
    let paused_show = admin
        .create_show_with(context.event_id, &venue_id, &plan, 40, paused)
        .await?;
    let phase = throughput::Phase {
        http: context.http,
        show_id: &paused_show,
        minter: &context.minter,
        connections: context.connections,
        duration: context.duration,
        progress: context.progress,
    };
    let _ = (context.phase_peak)();
    let (mut joins, joined) = throughput::joins(&phase).await?;
    joins.peak_rss_kib = (context.phase_peak)();
    let mut polls = throughput::polls(&phase, &joined).await?;
    polls.peak_rss_kib = (context.phase_peak)();
    drop(joined);

    let (crowd_show, mut crowd) = run_crowd(context, settings, &venue_id, &plan).await?;
    crowd.peak_rss_kib = (context.phase_peak)();
    let admission_token_checks =
        check_admission_token(context, &crowd_show, &plan, settings.pow_difficulty).await;

    let ceiling = baseline.map(|baseline| baseline.requests_per_second);
    let share = |value: f64| ceiling.and_then(|ceiling| ratio(value, ceiling));
    let ratios = WaitingRoomRatios {
        joins_to_baseline: share(joins.requests_per_second),
        polls_to_baseline: share(polls.requests_per_second),
        crowd_requests_to_baseline: share(crowd.joins_per_second + crowd.polls_per_second),
    };
    Ok(WaitingRoomReport {
        users: USERS_NOTE,
        joins,
        polls,
        crowd,
        admission_token_checks,
        ratios,
    })
}

async fn run_crowd(
    context: &Context<'_>,
    settings: &WaitingRoomSettings,
    venue_id: &str,
    plan: &VenuePlan,
) -> Result<(String, CrowdReport), LoadtestError> {
    let window_us = u64::try_from(settings.arrival_window.as_micros()).unwrap_or(u64::MAX);
    let arrival_plan = ArrivalPlan::new(
        settings.arrivals,
        window_us,
        settings.pre_queue_fraction,
        context.seed,
    );
    // The opening on a whole second, far enough ahead to create the show;
    // time zero of the schedule is then `sales_start` minus the plan's
    // opening, and the crowd starts when that instant comes.
    let opening =
        chrono::Duration::microseconds(i64::try_from(arrival_plan.opening_us).unwrap_or(i64::MAX));
    let sales_start: DateTime<Utc> =
        (Utc::now() + chrono::Duration::seconds(SHOW_CREATION_ALLOWANCE_SECONDS + 1) + opening)
            .trunc_subsecs(0);
    let body = json!({
        "sales_start": sales_start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "waiting_room": crowd::waiting_room_settings(
            settings.admit_per_minute, false, settings.pow_difficulty),
    });
    let show_id = context
        .admin
        .create_show_with(context.event_id, venue_id, plan, 41, body)
        .await?;
    let Ok(until_start) = (sales_start - opening - Utc::now()).to_std() else {
        return Err(LoadtestError::Setup(format!(
            "creating the waiting room's show took more than {SHOW_CREATION_ALLOWANCE_SECONDS} s"
        )));
    };
    tokio::time::sleep(until_start).await;
    let epoch = Instant::now();
    let drain_us = u64::from(settings.arrivals).saturating_mul(60_000_000)
        / u64::from(settings.admit_per_minute.max(1));
    let deadline_us = (arrival_plan
        .last_arrival_us()
        .max(arrival_plan.opening_us + drain_us)
        + drain_us / 2
        + CROWD_SLACK_MICROSECONDS)
        .min(CROWD_DURATION_MAX_MICROSECONDS);
    let poll_minimum_us = u64::try_from(settings.poll_interval_min.as_micros()).unwrap_or(0);
    let crowd_settings = CrowdSettings {
        plan: arrival_plan.clone(),
        pow_difficulty: settings.pow_difficulty,
        poll_bounds_us: (
            poll_minimum_us,
            POLL_INTERVAL_MAX_MICROSECONDS.max(poll_minimum_us),
        ),
        connections: context.connections,
        deadline_us,
        seed: context.seed,
        progress: context.progress,
    };
    let _ = (context.phase_peak)();
    let result = crowd::run(
        context.http,
        &show_id,
        context.minter.clone(),
        crowd_settings,
        epoch,
    )
    .await?;
    let asked = Asked {
        arrival_window_seconds: settings.arrival_window.as_secs_f64(),
        pre_queue_fraction: settings.pre_queue_fraction,
        admit_per_minute: settings.admit_per_minute,
        pow_difficulty: settings.pow_difficulty,
        poll_interval_min_seconds: settings.poll_interval_min.as_secs_f64(),
        connections: context.connections,
    };
    let report = analysis::crowd_report(
        &result.tickets,
        &result.counts,
        &arrival_plan,
        &asked,
        result.seconds,
    );
    Ok((show_id, report))
}

pub const CHECK_TOKEN_REQUIRED: &str = "a hold without an admission token is refused";
pub const CHECK_TOKEN_OPENS: &str = "an admitted buyer's token opens POST /v1/holds";

/// A registered buyer (holds refer to real users) queues for the crowd's
/// show once the crowd is through, and holds one standing place: refused
/// without the token, granted with it.
async fn check_admission_token(
    context: &Context<'_>,
    show_id: &str,
    plan: &VenuePlan,
    pow_difficulty: u32,
) -> Vec<Check> {
    let http = context.http;
    let floor = plan.floor().unwrap_or(setup::STANDING_SECTION);
    let hold = json!({"show_id": show_id, "section": floor, "quantity": 1});
    let failed = |problem: String| {
        vec![Check {
            name: CHECK_TOKEN_OPENS,
            passed: false,
            detail: problem,
        }]
    };
    // Its own e-mail namespace (run ID + 1): a run's buyers never collide.
    let namespace = context.run_id.wrapping_add(1);
    let token = match setup::register_users(http, 1, namespace, Progress { enabled: false }).await {
        Ok(tokens) => match tokens.first() {
            Some(token) => token.clone(),
            None => return failed("registering the buyer gave no token".into()),
        },
        Err(error) => return failed(format!("registering the buyer: {error}")),
    };
    let admission = match admitted_token(http, show_id, &token, pow_difficulty).await {
        Ok(admission) => admission,
        Err(problem) => return failed(problem),
    };
    let node = http.next_node();
    let without = http
        .send(node, Call::post("/v1/holds", &hold).token(&token))
        .await;
    let refused = Check {
        name: CHECK_TOKEN_REQUIRED,
        passed: matches!(&without, Ok(answer)
            if answer.status.as_u16() == 403 && answer.code() == "admission_required"),
        detail: describe(&without, "403 admission_required"),
    };
    let mut call = Call::post("/v1/holds", &hold).token(&token);
    call.admission_token = Some(&admission);
    let with = http.send(node, call).await;
    let granted = Check {
        name: CHECK_TOKEN_OPENS,
        passed: matches!(&with, Ok(answer) if answer.status.as_u16() == 201),
        detail: describe(&with, "201"),
    };
    vec![refused, granted]
}

fn describe(
    answer: &Result<crate::client::Answer, crate::client::TransportError>,
    wanted: &str,
) -> String {
    match answer {
        Ok(answer) if answer.status.is_success() => {
            format!("answered {} (wanted {wanted})", answer.status.as_u16())
        }
        Ok(answer) => format!(
            "answered {} {} (wanted {wanted})",
            answer.status.as_u16(),
            answer.code()
        ),
        Err(error) => format!("no answer: {} (wanted {wanted})", error.code),
    }
}

/// Joins (with a proof of work if the show asks for one) and polls (once a
/// second, bounded) until admitted; the token.
async fn admitted_token(
    http: &Http,
    show_id: &str,
    token: &str,
    pow_difficulty: u32,
) -> Result<String, String> {
    let node = http.next_node();
    let body = if pow_difficulty > 0 {
        queue_api::solve_challenge(http, node, show_id, token)
            .await
            .map_err(|code| format!("answering the challenge: {code}"))?
            .body
    } else {
        json!({})
    };
    let answer = queue_api::join(http, node, &queue_api::queue_path(show_id), token, &body).await;
    let mut ticket = match Reply::of(&answer) {
        Reply::Ticket { ticket, .. } => ticket,
        Reply::RetryAfter { code, .. } | Reply::Failed { code } => {
            return Err(format!("joining the queue: {code}"))
        }
    };
    let path = queue_api::ticket_path(show_id, &ticket.id);
    for _ in 0..TOKEN_CHECK_WAIT_SECONDS {
        match (ticket.status, &ticket.admission_token) {
            (Status::Admitted, Some(admission)) => return Ok(admission.clone()),
            (Status::Expired, _) => return Err("the ticket expired before admission".into()),
            _ => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        ticket = match Reply::of(&queue_api::poll(http, node, &path, token).await) {
            Reply::Ticket { ticket, .. } => ticket,
            Reply::RetryAfter { code, .. } | Reply::Failed { code } => {
                return Err(format!("polling the ticket: {code}"))
            }
        };
    }
    Err(format!("not admitted within {TOKEN_CHECK_WAIT_SECONDS} s"))
}
