//! `boxoffice loadtest`: the options of the load generator
//! (`boxoffice-loadgen`), each also an environment variable
//! `BOXOFFICE_LOADTEST_*`, and the printing of its report.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use boxoffice_loadgen::scenarios::waiting_room::{
    WaitingRoomSettings, ADMIT_PER_MINUTE_MAX, ARRIVALS_MAX, POLL_INTERVAL_MIN_MILLISECONDS_MAX,
    POLL_INTERVAL_MIN_MILLISECONDS_MIN,
};
use boxoffice_loadgen::{LoadtestConfig, Scenario, Target};
use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, ValueEnum};

use crate::config::Secret;

#[derive(Debug, Clone, Args)]
pub struct LoadtestArgs {
    /// Server URL(s); repeat or separate with commas to spread the
    /// connections round-robin over several nodes. Start those servers with
    /// `BOXOFFICE_RATE_LIMITS=off`: from one address, the load generator is
    /// over their per-address limits within a second (`--spawn` does this).
    #[arg(
        long = "url",
        env = "BOXOFFICE_LOADTEST_URL",
        value_delimiter = ',',
        conflicts_with = "spawn"
    )]
    pub urls: Vec<String>,
    /// Start a server here (`boxoffice serve` on 127.0.0.1:0, a fresh SQLite
    /// file in a temporary folder) and stop it at the end.
    #[arg(long, env = "BOXOFFICE_LOADTEST_SPAWN", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub spawn: bool,
    /// With --spawn: use this database instead of SQLite (`postgres://…`).
    #[arg(
        long,
        env = "BOXOFFICE_LOADTEST_DATABASE_URL",
        requires = "spawn",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// With --spawn: the server's REDIS_URL (`redis://127.0.0.1:6379`).
    #[arg(
        long,
        env = "BOXOFFICE_LOADTEST_REDIS_URL",
        requires = "spawn",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
    /// `waiting-room` is not part of `all` (its crowd takes a minute or more).
    #[arg(long, env = "BOXOFFICE_LOADTEST_SCENARIO", value_enum, default_value_t = ScenarioArg::All)]
    pub scenario: ScenarioArg,
    /// Concurrent keep-alive connections (one worker each).
    #[arg(long, env = "BOXOFFICE_LOADTEST_CONNECTIONS", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=boxoffice_loadgen::CONNECTIONS_MAX as i64))]
    pub connections: u32,
    /// Places of the venue: seated blocks plus a standing floor of a tenth.
    #[arg(long, env = "BOXOFFICE_LOADTEST_SEATS", default_value_t = 50_000,
          value_parser = clap::value_parser!(u32).range(i64::from(boxoffice_loadgen::PLACES_MIN)..=i64::from(boxoffice_loadgen::PLACES_MAX)))]
    pub seats: u32,
    /// Seats of the smaller show that `browse` also reads.
    #[arg(long, env = "BOXOFFICE_LOADTEST_BROWSE_SEATS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u32).range(i64::from(boxoffice_loadgen::PLACES_MIN)..=i64::from(boxoffice_loadgen::PLACES_MAX)))]
    pub browse_seats: u32,
    /// Buyers registered before the scenarios start.
    #[arg(long, env = "BOXOFFICE_LOADTEST_USERS", default_value_t = 2_000,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(boxoffice_loadgen::USERS_MAX)))]
    pub users: u32,
    /// How long baseline, browse and buy run.
    #[arg(long, env = "BOXOFFICE_LOADTEST_DURATION_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=boxoffice_loadgen::DURATION_SECONDS_MAX))]
    pub duration_seconds: u64,
    /// A flash sale that has not sold out after this long is stopped.
    #[arg(long, env = "BOXOFFICE_LOADTEST_SALE_CAP_SECONDS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=boxoffice_loadgen::DURATION_SECONDS_MAX))]
    pub sale_cap_seconds: u64,
    /// Admin for the setup (default: the server's BOXOFFICE_ADMIN_EMAIL).
    #[arg(long, env = "BOXOFFICE_LOADTEST_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// (default: the server's BOXOFFICE_ADMIN_PASSWORD)
    #[arg(
        long,
        env = "BOXOFFICE_LOADTEST_ADMIN_PASSWORD",
        hide_env_values = true
    )]
    pub admin_password: Option<Secret>,
    /// PID of a server on this machine, to report its peak memory.
    #[arg(long, env = "BOXOFFICE_LOADTEST_SERVER_PID")]
    pub server_pid: Option<u32>,
    /// Print the report as JSON on stdout (and no progress bars).
    #[arg(long, env = "BOXOFFICE_LOADTEST_JSON", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub json: bool,
    /// Seed of the request mix, for a reproducible run (default: random, printed).
    #[arg(long, env = "BOXOFFICE_LOADTEST_SEED")]
    pub seed: Option<u64>,
    /// Waiting room: members of the crowd, each a distinct minted user.
    #[arg(long, env = "BOXOFFICE_LOADTEST_ARRIVALS", default_value_t = 50_000,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(ARRIVALS_MAX)))]
    pub arrivals: u32,
    /// Waiting room: the crowd arrives evenly over this many seconds.
    #[arg(long, env = "BOXOFFICE_LOADTEST_ARRIVAL_WINDOW_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=boxoffice_loadgen::DURATION_SECONDS_MAX))]
    pub arrival_window_seconds: u64,
    /// Waiting room: the crowd's show admits this many buyers a minute.
    #[arg(long, env = "BOXOFFICE_LOADTEST_ADMIT_PER_MINUTE", default_value_t = 45_000,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(ADMIT_PER_MINUTE_MAX)))]
    pub admit_per_minute: u32,
    /// Waiting room: share of the arrivals that join before `sales_start`
    /// (the pre-queue, shuffled at the opening), 0–1.
    #[arg(long, env = "BOXOFFICE_LOADTEST_PRE_QUEUE_FRACTION", default_value_t = 0.2,
          value_parser = parse_fraction)]
    pub pre_queue_fraction: f64,
    /// Waiting room: proof-of-work bits the crowd's show asks for (0 = off);
    /// the load generator solves every challenge itself.
    #[arg(long, env = "BOXOFFICE_LOADTEST_POW_DIFFICULTY", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=32))]
    pub pow_difficulty: u32,
    /// Waiting room: the shortest time a client waits between two polls.
    #[arg(long, env = "BOXOFFICE_LOADTEST_POLL_INTERVAL_MIN_MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(POLL_INTERVAL_MIN_MILLISECONDS_MIN..=POLL_INTERVAL_MIN_MILLISECONDS_MAX))]
    pub poll_interval_min_ms: u64,
    /// Waiting room with --url: the server's BOXOFFICE_JWT_SECRET, to mint
    /// the crowd's users (default: BOXOFFICE_JWT_SECRET). --spawn makes one up.
    #[arg(
        long,
        env = "BOXOFFICE_LOADTEST_JWT_SECRET",
        hide_env_values = true,
        conflicts_with = "spawn"
    )]
    pub jwt_secret: Option<Secret>,
    /// Allow --url hosts other than this machine (loopback only by default).
    #[arg(long, env = "BOXOFFICE_LOADTEST_ALLOW_REMOTE", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub allow_remote: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioArg {
    FlashSale,
    Browse,
    Buy,
    Baseline,
    WaitingRoom,
    All,
}

impl From<ScenarioArg> for Scenario {
    fn from(scenario: ScenarioArg) -> Scenario {
        match scenario {
            ScenarioArg::FlashSale => Scenario::FlashSale,
            ScenarioArg::Browse => Scenario::Browse,
            ScenarioArg::Buy => Scenario::Buy,
            ScenarioArg::Baseline => Scenario::Baseline,
            ScenarioArg::WaitingRoom => Scenario::WaitingRoom,
            ScenarioArg::All => Scenario::All,
        }
    }
}

impl LoadtestArgs {
    /// The load generator's configuration; `--spawn` runs this very binary.
    pub fn config(&self) -> anyhow::Result<LoadtestConfig> {
        let target = if self.spawn {
            let program = std::env::current_exe().context("cannot find the boxoffice binary")?;
            Target::Spawn {
                program,
                database_url: self.database_url.clone(),
                redis_url: self.redis_url.clone(),
            }
        } else {
            if self.urls.is_empty() {
                anyhow::bail!("give --url URL (or BOXOFFICE_LOADTEST_URL), or --spawn");
            }
            Target::Urls(self.urls.clone())
        };
        let email = self
            .admin_email
            .clone()
            .or_else(|| std::env::var("BOXOFFICE_ADMIN_EMAIL").ok());
        let password = self
            .admin_password
            .as_ref()
            .map(|secret| secret.expose().to_string())
            .or_else(|| std::env::var("BOXOFFICE_ADMIN_PASSWORD").ok());
        Ok(LoadtestConfig {
            target,
            scenario: self.scenario.into(),
            connections: self.connections as usize,
            places: self.seats,
            browse_seats: self.browse_seats,
            users: self.users,
            duration: Duration::from_secs(self.duration_seconds),
            sale_cap: Duration::from_secs(self.sale_cap_seconds),
            admin: email.zip(password),
            server_pid: self.server_pid,
            seed: self.seed.unwrap_or_else(rand::random),
            progress: !self.json && std::io::stderr().is_terminal(),
            allow_remote: self.allow_remote,
            waiting_room: WaitingRoomSettings {
                arrivals: self.arrivals,
                arrival_window: Duration::from_secs(self.arrival_window_seconds),
                admit_per_minute: self.admit_per_minute,
                pre_queue_fraction: self.pre_queue_fraction,
                pow_difficulty: self.pow_difficulty,
                poll_interval_min: Duration::from_millis(self.poll_interval_min_ms),
            },
            jwt_secret: self
                .jwt_secret
                .as_ref()
                .map(|secret| secret.expose().to_string())
                .or_else(|| std::env::var("BOXOFFICE_JWT_SECRET").ok()),
        })
    }
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("`{text}` is not a number from 0 to 1")),
    }
}

/// Runs the load test and prints its report; fails when an invariant failed.
pub async fn run(args: LoadtestArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let report = boxoffice_loadgen::run(config)
        .await
        .context("the load test failed")?;
    let text = if args.json {
        serde_json::to_string_pretty(&report).context("cannot write the report as JSON")?
    } else {
        boxoffice_loadgen::report::human(&report)
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}").context("cannot write to stdout")?;
    stdout.flush().context("cannot flush stdout")?;
    if !report.invariants_passed() {
        anyhow::bail!(
            "an invariant of the flash sale or a waiting-room check failed (see the report)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::config::{Cli, Command};

    #[test]
    fn urls_repeat_or_split_on_commas() {
        let cli = Cli::try_parse_from([
            "boxoffice",
            "loadtest",
            "--url",
            "http://127.0.0.1:1,http://127.0.0.1:2",
            "--url",
            "http://127.0.0.1:3",
        ])
        .expect("parse");
        let Command::Loadtest(args) = cli.command else {
            panic!("not loadtest")
        };
        assert_eq!(args.urls.len(), 3);
        assert_eq!(args.connections, 256);
    }

    #[test]
    fn spawn_and_url_exclude_each_other() {
        assert!(Cli::try_parse_from([
            "boxoffice",
            "loadtest",
            "--spawn",
            "--url",
            "http://127.0.0.1:1"
        ])
        .is_err());
        assert!(Cli::try_parse_from(["boxoffice", "loadtest", "--connections", "0"]).is_err());
        assert!(Cli::try_parse_from(["boxoffice", "loadtest", "--seats", "200001"]).is_err());
    }

    #[test]
    fn waiting_room_options_are_bounded() {
        let parse = |extra: &[&str]| {
            let mut argv = vec![
                "boxoffice",
                "loadtest",
                "--spawn",
                "--scenario",
                "waiting-room",
            ];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv)
        };
        let Ok(cli) = parse(&["--arrivals", "1000000", "--pre-queue-fraction", "0.5"]) else {
            panic!("a million arrivals are allowed")
        };
        let Command::Loadtest(args) = cli.command else {
            panic!("not loadtest")
        };
        assert_eq!(args.arrivals, 1_000_000);
        assert_eq!(args.pre_queue_fraction, 0.5);
        assert_eq!(args.pow_difficulty, 0);
        for bad in [
            &["--arrivals", "1000001"][..],
            &["--arrivals", "0"],
            &["--pre-queue-fraction", "1.5"],
            &["--pre-queue-fraction", "-0.1"],
            &["--pow-difficulty", "33"],
            &["--admit-per-minute", "0"],
            &["--admit-per-minute", "1000001"],
            &["--jwt-secret", "sixteen-chars-or-more"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse(&["--redis-url", "redis://127.0.0.1:6379"]).is_ok());
    }
}
