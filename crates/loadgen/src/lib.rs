//! The load generator behind `boxoffice loadtest`: a client of the public
//! HTTP API (API.md) and nothing else. It sets up a venue, shows and buyers
//! as an admin would, runs the scenarios of issue 3 (baseline, flash-sale,
//! browse, buy) and of issue 4 (waiting-room) with C keep-alive connections,
//! checks the sale's invariants and the queue's order from the outside, and
//! reports rates, latency percentiles and the server's memory.
//!
//! # Layout
//! - [`client`]: pooled HTTP/1.1 clients, round-robin over the nodes; answers
//!   reduced to status, ETag, body and latency.
//! - [`server`]: `--spawn` (start `boxoffice serve` on a loopback port with a
//!   fresh database) and the `/proc` memory sampler.
//! - [`setup`]: venue layout of N places, event, shows, buyers.
//! - [`users`]: minted access tokens for crowds too large to register.
//! - [`scenarios`]: the workers of each scenario.
//! - [`stats`]: latency histograms (HdrHistogram), counters, rates.
//! - [`invariants`]: the outside checks of a sale.
//! - [`report`]: result structs (`--json`) and human tables.
//! - [`progress`]: indicatif bars on stderr.
//!
//! Safety: traffic goes only to the given URLs, which must be on this
//! machine unless the caller allows otherwise; every loop ends at a
//! deadline and after a bounded number of requests; a spawned server is
//! killed at the end (and on any early return).

pub mod client;
pub mod invariants;
pub mod progress;
pub mod report;
pub mod scenarios;
pub mod server;
pub mod setup;
pub mod stats;
pub mod users;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use client::{Call, Http};
use progress::Progress;
use report::{Ratios, Report, SetupReport};
use scenarios::waiting_room::WaitingRoomSettings;
use server::{RssSampler, SpawnedServer};
use setup::{Admin, VenuePlan};
use users::UserMinter;

/// Bounds of the configuration, checked before anything is sent.
pub const CONNECTIONS_MAX: usize = 4_096;
pub const USERS_MAX: u32 = 100_000;
pub const PLACES_MIN: u32 = 10;
/// The server's limit of seats per venue.
pub const PLACES_MAX: u32 = 200_000;
pub const DURATION_SECONDS_MAX: u64 = 3_600;
/// How long the server gets to answer `/healthz` before setup starts.
const READY_TIMEOUT_SECONDS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("server: {0}")]
    Server(String),
    #[error("setup: {0}")]
    Setup(String),
    #[error("scenario: {0}")]
    Scenario(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    FlashSale,
    Browse,
    Buy,
    Baseline,
    /// Not part of `All`: a crowd takes a minute or more.
    WaitingRoom,
    All,
}

impl Scenario {
    fn includes(self, other: Scenario) -> bool {
        match (self, other) {
            (Scenario::WaitingRoom, Scenario::WaitingRoom | Scenario::Baseline) => true,
            (Scenario::WaitingRoom, _) | (_, Scenario::WaitingRoom) => self == other,
            _ => self == Scenario::All || self == other,
        }
    }

    /// Whether the scenario needs registered buyers and the big venue.
    fn needs_buyers(self) -> bool {
        [Scenario::FlashSale, Scenario::Browse, Scenario::Buy]
            .iter()
            .any(|&scenario| self.includes(scenario))
    }
}

/// Where the server is.
#[derive(Debug, Clone)]
pub enum Target {
    /// Running servers (several nodes share the connections round-robin).
    Urls(Vec<String>),
    /// Start `PROGRAM serve` here; SQLite in a temporary folder unless a
    /// database URL is given.
    Spawn {
        program: PathBuf,
        database_url: Option<String>,
        /// `REDIS_URL` for the spawned server.
        redis_url: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct LoadtestConfig {
    pub target: Target,
    pub scenario: Scenario,
    pub connections: usize,
    /// Places of the main venue (a tenth of them standing).
    pub places: u32,
    /// Seats of the smaller show that `browse` also reads.
    pub browse_seats: u32,
    pub users: u32,
    /// How long baseline, browse and buy run.
    pub duration: Duration,
    /// The longest a flash sale may take before it is stopped unsold.
    pub sale_cap: Duration,
    /// (e-mail, password) of an admin; a spawned server gets its own.
    pub admin: Option<(String, String)>,
    /// A local server's PID, to sample its memory (a spawned one is known).
    pub server_pid: Option<u32>,
    pub seed: u64,
    pub progress: bool,
    /// Lets `Target::Urls` name hosts other than this machine.
    pub allow_remote: bool,
    pub waiting_room: WaitingRoomSettings,
    /// The server's JWT secret, to mint the waiting room's users
    /// (`Target::Urls` only: a spawned server gets one made up here).
    pub jwt_secret: Option<String>,
}

impl LoadtestConfig {
    fn validate(&self) -> Result<(), LoadtestError> {
        let problem = |message: String| Err(LoadtestError::Config(message));
        if !(1..=CONNECTIONS_MAX).contains(&self.connections) {
            return problem(format!("connections must be 1–{CONNECTIONS_MAX}"));
        }
        if !(1..=USERS_MAX).contains(&self.users) {
            return problem(format!("users must be 1–{USERS_MAX}"));
        }
        for (name, places) in [("seats", self.places), ("browse seats", self.browse_seats)] {
            if !(PLACES_MIN..=PLACES_MAX).contains(&places) {
                return problem(format!("{name} must be {PLACES_MIN}–{PLACES_MAX}"));
            }
        }
        for (name, duration) in [("duration", self.duration), ("sale cap", self.sale_cap)] {
            if duration.is_zero() || duration.as_secs() > DURATION_SECONDS_MAX {
                return problem(format!("{name} must be 1–{DURATION_SECONDS_MAX} seconds"));
            }
        }
        if let Target::Urls(urls) = &self.target {
            if urls.is_empty() {
                return problem("give --url or --spawn".into());
            }
            for url in urls {
                if !url.starts_with("http://") && !url.starts_with("https://") {
                    return problem(format!("{url} is not an http(s) URL"));
                }
                if !self.allow_remote && !client::is_loopback_url(url) {
                    return problem(format!(
                        "{url} is not on this machine; load tests go to loopback addresses \
                         unless --allow-remote is given"
                    ));
                }
            }
            if self.scenario.includes(Scenario::WaitingRoom) && self.jwt_secret.is_none() {
                return problem(
                    "the waiting room's crowd needs the server's JWT secret to mint its users: \
                     --jwt-secret (or BOXOFFICE_JWT_SECRET)"
                        .into(),
                );
            }
            if self.admin.is_none() {
                return problem(
                    "an admin account is needed for setup: --admin-email and --admin-password \
                     (or BOXOFFICE_ADMIN_EMAIL / BOXOFFICE_ADMIN_PASSWORD)"
                        .into(),
                );
            }
        }
        if self.scenario.includes(Scenario::WaitingRoom) {
            self.waiting_room
                .validate()
                .map_err(LoadtestError::Config)?;
        }
        Ok(())
    }
}

/// Runs the configured scenarios to their end and returns the report.
pub async fn run(config: LoadtestConfig) -> Result<Report, LoadtestError> {
    config.validate()?;
    match &config.target {
        Target::Urls(urls) => {
            let server = Server {
                urls: urls.clone(),
                database: None,
                admin: config.admin.clone().unwrap_or_default(),
                pid: config.server_pid,
                jwt_secret: config.jwt_secret.clone(),
            };
            run_against(&config, server).await
        }
        Target::Spawn {
            program,
            database_url,
            redis_url,
        } => {
            let jwt_secret = users::random_secret();
            let options = server::SpawnOptions {
                database_url: database_url.as_deref(),
                redis_url: redis_url.as_deref(),
                jwt_secret: &jwt_secret,
            };
            let spawned = SpawnedServer::start(program, &options).await?;
            let mut database = match database_url {
                Some(url) => redact_password(url),
                None => "sqlite (temporary file)".into(),
            };
            if let Some(redis_url) = redis_url {
                database.push_str(&format!(" + Redis {}", redact_password(redis_url)));
            }
            let server = Server {
                urls: vec![spawned.url.clone()],
                database: Some(database),
                admin: (spawned.admin_email.clone(), spawned.admin_password.clone()),
                pid: Some(spawned.pid),
                jwt_secret: Some(jwt_secret),
            };
            let result = run_against(&config, server).await;
            let server = spawned;
            let log = server.log_path.display().to_string();
            server.stop().await;
            result.map_err(|error| match error {
                LoadtestError::Server(message) => {
                    LoadtestError::Server(format!("{message} (server log was {log})"))
                }
                other => other,
            })
        }
    }
}

/// The server(s) under test and what the run knows of them.
struct Server {
    urls: Vec<String>,
    database: Option<String>,
    /// (e-mail, password)
    admin: (String, String),
    pid: Option<u32>,
    jwt_secret: Option<String>,
}

async fn run_against(config: &LoadtestConfig, server: Server) -> Result<Report, LoadtestError> {
    let Server {
        urls,
        database,
        admin: (admin_email, admin_password),
        pid: server_pid,
        jwt_secret,
    } = server;
    let progress = Progress {
        enabled: config.progress,
    };
    let http = Http::new(&urls, config.connections)?;
    for node in 0..urls.len() {
        wait_until_ready(&http, node).await?;
    }
    let sampler = server_pid.map(RssSampler::start);
    let phase_peak = || sampler.as_ref().map(RssSampler::take_phase_peak);
    let run_id: u64 = rand::random();
    let admin = Admin::login(&http, &admin_email, &admin_password).await?;
    let scenario = config.scenario;
    let plan = VenuePlan::new("Loadtest Arena", config.places, true);
    // The sale scenarios' venue; the waiting room makes a small one itself,
    // and only the sale scenarios below read this ID.
    let venue_id = if scenario.needs_buyers() {
        admin.create_venue(&plan).await?
    } else {
        String::new()
    };
    let event_id = admin.create_event("Loadtest Night").await?;
    let registering = Instant::now();
    // The waiting room's crowd is minted; only the sale scenarios register.
    let users = if scenario.needs_buyers() {
        config.users
    } else {
        0
    };
    let tokens = setup::register_users(&http, users, run_id, progress).await?;
    let setup = SetupReport {
        users,
        register_seconds: registering.elapsed().as_secs_f64(),
        venue_places: if scenario.needs_buyers() {
            plan.places()
        } else {
            0
        },
        peak_rss_kib: phase_peak(),
    };

    let mut baseline = None;
    if scenario.includes(Scenario::Baseline) {
        let mut result =
            scenarios::baseline::run(&http, config.connections, config.duration, progress).await?;
        result.peak_rss_kib = phase_peak();
        baseline = Some(result);
    }
    let mut flash_sale = None;
    let mut sale_show = None;
    if scenario.includes(Scenario::FlashSale) {
        let show_id = admin.create_show(&event_id, &venue_id, &plan, 30).await?;
        let _ = phase_peak();
        let settings = scenarios::flash_sale::SaleSettings {
            connections: config.connections,
            cap: config.sale_cap,
            seed: config.seed,
            progress,
        };
        let mut result =
            scenarios::flash_sale::run(&http, &show_id, &plan, tokens.clone(), settings).await?;
        result.peak_rss_kib = phase_peak();
        flash_sale = Some(result);
        sale_show = Some(show_id);
    }
    let mut browse = Vec::new();
    if scenario.includes(Scenario::Browse) {
        let big_show = match sale_show {
            Some(show_id) => show_id,
            None => admin.create_show(&event_id, &venue_id, &plan, 31).await?,
        };
        let small_plan = VenuePlan::new("Loadtest Club", config.browse_seats, false);
        let small_venue = admin.create_venue(&small_plan).await?;
        let small_show = admin
            .create_show(&event_id, &small_venue, &small_plan, 32)
            .await?;
        for (show_id, seats) in [
            (&big_show, plan.places()),
            (&small_show, small_plan.places()),
        ] {
            let _ = phase_peak();
            let target = scenarios::browse::BrowseTarget { show_id, seats };
            let mut result = scenarios::browse::run(
                &http,
                target,
                config.connections,
                config.duration,
                config.seed,
                progress,
            )
            .await?;
            result.peak_rss_kib = phase_peak();
            browse.push(result);
        }
    }
    let mut buy = None;
    if scenario.includes(Scenario::Buy) {
        let show_id = admin.create_show(&event_id, &venue_id, &plan, 33).await?;
        let _ = phase_peak();
        let mut result = scenarios::buy::run(
            &http,
            &show_id,
            tokens.clone(),
            config.connections,
            config.duration,
            config.seed,
            progress,
        )
        .await?;
        result.peak_rss_kib = phase_peak();
        buy = Some(result);
    }
    let mut waiting_room = None;
    if scenario.includes(Scenario::WaitingRoom) {
        let secret = jwt_secret.ok_or_else(|| {
            LoadtestError::Config("the waiting room needs the server's JWT secret".into())
        })?;
        let context = scenarios::waiting_room::Context {
            http: &http,
            admin: &admin,
            event_id: &event_id,
            minter: std::sync::Arc::new(UserMinter::new(&secret, run_id)?),
            connections: config.connections,
            duration: config.duration,
            seed: config.seed,
            run_id,
            progress,
            phase_peak: &phase_peak,
        };
        waiting_room = Some(
            scenarios::waiting_room::run(&context, &config.waiting_room, baseline.as_ref()).await?,
        );
    }
    let memory = sampler.map(RssSampler::finish);
    let ratios = Ratios::of(
        baseline.as_ref(),
        flash_sale.as_ref(),
        &browse,
        buy.as_ref(),
    );
    Ok(Report {
        urls,
        database,
        connections: config.connections,
        seed: config.seed,
        setup,
        baseline,
        flash_sale,
        browse,
        buy,
        waiting_room,
        ratios,
        memory,
    })
}

async fn wait_until_ready(http: &Http, node: usize) -> Result<(), LoadtestError> {
    let deadline = Instant::now() + Duration::from_secs(READY_TIMEOUT_SECONDS);
    loop {
        match http.send(node, Call::get("/healthz")).await {
            Ok(answer) if answer.status.is_success() => return Ok(()),
            _ if Instant::now() >= deadline => {
                return Err(LoadtestError::Server(format!(
                    "/healthz did not answer 200 within {READY_TIMEOUT_SECONDS} s"
                )))
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:[redacted]@host/db`.
fn redact_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("[redacted]"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
