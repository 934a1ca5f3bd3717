//! The server under test when the load generator starts it itself
//! (`--spawn`), and the memory sampler for any local server.
//!
//! A spawned server is `PROGRAM serve` on `127.0.0.1:0` with a fresh SQLite
//! file in a temporary folder (or the given PostgreSQL URL), an admin
//! account and a JWT secret made up for this run, and rate limits off
//! (`BOXOFFICE_RATE_LIMITS=off`). It is killed when the run ends, and also
//! when [`SpawnedServer`] is dropped (`kill_on_drop`), so an early error
//! never leaves it behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::LoadtestError;

/// Migrations and the first admin's password hash on a busy 2-core box.
const STARTUP_TIMEOUT_SECONDS: u64 = 60;
/// How often `/proc/PID/status` is read.
pub const RSS_SAMPLE_INTERVAL_MILLISECONDS: u64 = 200;
const LISTENING_PREFIX: &str = "boxoffice listening on ";

pub struct SpawnedServer {
    child: Child,
    pub url: String,
    pub pid: u32,
    pub admin_email: String,
    pub admin_password: String,
    /// The temporary folder of the SQLite file and the server's log.
    folder: PathBuf,
    pub log_path: PathBuf,
}

/// What a spawned server is started with besides its defaults.
pub struct SpawnOptions<'a> {
    /// PostgreSQL instead of a fresh SQLite file.
    pub database_url: Option<&'a str>,
    pub redis_url: Option<&'a str>,
    /// `BOXOFFICE_JWT_SECRET`: chosen here so that the load generator can
    /// mint users' tokens (`crate::users`).
    pub jwt_secret: &'a str,
}

impl SpawnedServer {
    /// Starts `program serve` and waits for its `boxoffice listening on` line.
    pub async fn start(
        program: &Path,
        options: &SpawnOptions<'_>,
    ) -> Result<SpawnedServer, LoadtestError> {
        let suffix: u64 = rand::thread_rng().gen();
        let folder = std::env::temp_dir().join(format!("boxoffice-loadtest-{suffix:016x}"));
        std::fs::create_dir_all(&folder).map_err(|error| {
            LoadtestError::Server(format!("cannot create {}: {error}", folder.display()))
        })?;
        let database_url = match options.database_url {
            Some(url) => url.to_string(),
            None => format!("sqlite://{}", folder.join("loadtest.db").display()),
        };
        let log_path = folder.join("server.log");
        let log = std::fs::File::create(&log_path).map_err(|error| {
            LoadtestError::Server(format!("cannot create {}: {error}", log_path.display()))
        })?;
        let admin_email = format!("loadtest-admin-{suffix:016x}@boxoffice.test");
        let admin_password = format!("loadtest-{suffix:016x}");
        let mut command = Command::new(program);
        command
            .arg("serve")
            .env("BOXOFFICE_LISTEN", "127.0.0.1:0")
            .env("DATABASE_URL", &database_url)
            .env("BOXOFFICE_ADMIN_EMAIL", &admin_email)
            .env("BOXOFFICE_ADMIN_PASSWORD", &admin_password)
            .env("RUST_LOG", "warn")
            .env("BOXOFFICE_JWT_SECRET", options.jwt_secret)
            // One address sending thousands of requests a second is what a
            // load test is (and, in the waiting room, a whole crowd), and
            // what the rate limits exist to stop. Only a spawned server is
            // told so.
            .env("BOXOFFICE_RATE_LIMITS", "off")
            // The tickets' e-mails land beside the server's log.
            .env("BOXOFFICE_MAILBOX_DIR", folder.join("mailbox"))
            .env_remove("BOXOFFICE_DEMO")
            .env_remove("BOXOFFICE_METRICS_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        if let Some(redis_url) = options.redis_url {
            command.env("REDIS_URL", redis_url);
        }
        let mut child = command.spawn().map_err(|error| {
            LoadtestError::Server(format!("cannot start {} serve: {error}", program.display()))
        })?;
        let pid = child.id().unwrap_or(0);
        let url = wait_for_url(&mut child, &log_path).await?;
        if !crate::client::is_loopback_url(&url) {
            return Err(LoadtestError::Server(format!(
                "the spawned server listens on {url}, not on loopback"
            )));
        }
        Ok(SpawnedServer {
            child,
            url,
            pid,
            admin_email,
            admin_password,
            folder,
            log_path,
        })
    }

    /// Kills the server and removes its temporary folder.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

async fn wait_for_url(child: &mut Child, log_path: &Path) -> Result<String, LoadtestError> {
    let Some(stdout) = child.stdout.take() else {
        return Err(LoadtestError::Server("the server has no stdout".into()));
    };
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(Duration::from_secs(STARTUP_TIMEOUT_SECONDS), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split(LISTENING_PREFIX).nth(1) {
                return Some(rest.trim().trim_end_matches('/').to_string());
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(url)) => {
            // Keep draining stdout so that the server never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok(url)
        }
        Ok(None) => Err(LoadtestError::Server(format!(
            "the server exited before listening; its log: {}\n{}",
            log_path.display(),
            log_tail(log_path)
        ))),
        Err(_) => Err(LoadtestError::Server(format!(
            "the server did not listen within {STARTUP_TIMEOUT_SECONDS} s; its log: {}\n{}",
            log_path.display(),
            log_tail(log_path)
        ))),
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Resident memory of the server, in kibibytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// The highest VmRSS sampled.
    pub peak_rss_kib: u64,
    /// The kernel's own high-water mark (VmHWM) at the last sample: it
    /// catches peaks between two samples.
    pub hwm_kib: u64,
}

/// Samples `/proc/PID/status` every 200 ms until stopped. Each phase takes
/// its own peak with [`RssSampler::take_phase_peak`].
pub struct RssSampler {
    state: Arc<Mutex<SamplerState>>,
    stop: watch::Sender<bool>,
}

#[derive(Default)]
struct SamplerState {
    overall: Memory,
    phase_peak_rss_kib: u64,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let state = Arc::new(Mutex::new(SamplerState::default()));
        let (stop, mut stopped) = watch::channel(false);
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            let path = format!("/proc/{pid}/status");
            let mut interval =
                tokio::time::interval(Duration::from_millis(RSS_SAMPLE_INTERVAL_MILLISECONDS));
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = stopped.changed() => break,
                }
                let Ok(status) = tokio::fs::read_to_string(&path).await else {
                    break; // the process is gone
                };
                let (rss, hwm) = parse_status(&status);
                if let Ok(mut state) = shared.lock() {
                    state.overall.peak_rss_kib = state.overall.peak_rss_kib.max(rss);
                    state.overall.hwm_kib = state.overall.hwm_kib.max(hwm);
                    state.phase_peak_rss_kib = state.phase_peak_rss_kib.max(rss);
                }
            }
        });
        RssSampler { state, stop }
    }

    /// The highest VmRSS since the last call (or the start).
    pub fn take_phase_peak(&self) -> u64 {
        match self.state.lock() {
            Ok(mut state) => std::mem::take(&mut state.phase_peak_rss_kib),
            Err(_) => 0,
        }
    }

    pub fn finish(self) -> Memory {
        let _ = self.stop.send(true);
        self.state
            .lock()
            .map(|state| state.overall)
            .unwrap_or_default()
    }
}

/// (VmRSS, VmHWM) in kibibytes from the text of `/proc/PID/status`.
fn parse_status(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_hwm() {
        let status = "Name:\tboxoffice\nVmHWM:\t  123456 kB\nVmRSS:\t   98765 kB\nThreads:\t4\n";
        assert_eq!(parse_status(status), (98_765, 123_456));
        assert_eq!(parse_status("Name: x\n"), (0, 0));
    }
}
