//! The end-to-end harness: starts the real `boxoffice serve` binary on port 0
//! against a fresh database (a temporary SQLite file, or a uniquely named
//! PostgreSQL database) and talks to it over HTTP only.
//!
//! Layout:
//! - [`Backend`] and [`TestApp`]: one server process per test, killed on drop.
//! - [`Api`]: a cheap, cloneable HTTP handle (base URL, client, admin token)
//!   with typed helpers; `TestApp` derefs to it, and concurrent tests move
//!   clones of it into their tasks.
//! - [`Resp`]: a status, headers and parsed JSON body, with assertion helpers
//!   that print the whole answer when they fail.
//! - Fixtures: [`venue_layout`], [`Api::fixture`], seat-map readers.
//! - [`both_backends!`]: runs one `async fn(Backend)` against both stores.
//!
//! Environment: `TEST_LOG` (any value) echoes the server's stderr;
//! `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! is where per-test databases are created; `TEST_KEEP_DB` keeps them.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::ops::Deref;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Runs `async fn name(backend: Backend)` once per store. It generates a
/// module `name` with the tests `sqlite` and `postgres`, so the test names are
/// `file::name::sqlite` and `file::name::postgres` (filter with `sqlite` or
/// `postgres` to run one store only).
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )+};
}

pub const ADMIN_EMAIL: &str = "admin@boxoffice.test";
pub const ADMIN_PASSWORD: &str = "admin-password-for-e2e-tests";
pub const USER_PASSWORD: &str = "correct-horse-battery-staple";

/// The price category of the fixture's seated section `A`.
pub const SEAT_CATEGORY: &str = "std";
/// The price category of the fixture's standing section `FLOOR`.
pub const STANDING_CATEGORY: &str = "ga";
pub const SEATED_SECTION: &str = "A";
pub const STANDING_SECTION: &str = "FLOOR";
pub const SEAT_PRICE_CENTS: i64 = 2500;
pub const STANDING_PRICE_CENTS: i64 = 1000;
pub const CURRENCY: &str = "EUR";

/// The contract: the server prints its URL once it accepts requests, and we
/// wait this long for it (debug builds and migrations on a busy 2-core box).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// No request may hang; the contract says "never a hang".
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of the server's stderr we keep to show when a start-up fails.
const STDERR_LINES_KEPT: usize = 300;
const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the test's database lives, so that `Drop` can remove it.
enum Database {
    SqliteDirectory(PathBuf),
    Postgres { admin_url: String, name: String },
}

/// One running `boxoffice serve` process.
struct Server {
    child: Child,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

/// A server on a fresh database, with an admin logged in. Derefs to [`Api`].
pub struct TestApp {
    pub backend: Backend,
    pub database_url: String,
    pub api: Api,
    env: Vec<(String, String)>,
    server: Option<Server>,
    database: Database,
    /// The server's mailbox folder (removed with the app).
    pub mailbox: std::path::PathBuf,
}

/// A cloneable HTTP handle: move clones into concurrent tasks.
#[derive(Clone)]
pub struct Api {
    pub base_url: String,
    pub client: reqwest::Client,
    pub admin_token: String,
}

/// A second node on a [`TestApp`]'s database (see [`TestApp::spawn_peer`]).
pub struct Peer {
    pub api: Api,
    /// Killed on drop (`kill_on_drop`).
    _server: Server,
}

impl Deref for Peer {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, &[]).await
    }

    /// Starts a server with extra environment variables, e.g.
    /// `[("BOXOFFICE_SANDBOX_LATENCY_MS", "300")]`.
    pub async fn spawn_with(backend: Backend, env: &[(&str, &str)]) -> TestApp {
        let (database_url, database) = match backend {
            Backend::Sqlite => create_sqlite_database(),
            Backend::Postgres => create_postgres_database().await,
        };
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // E-mails go to a folder of this test (unless it sets SMTP or its own).
        let mailbox = std::env::temp_dir().join(format!("bx_mailbox_{}", random_hex(8)));
        if !env.iter().any(|(key, _)| key == "BOXOFFICE_MAILBOX_DIR") {
            env.push((
                "BOXOFFICE_MAILBOX_DIR".into(),
                mailbox.display().to_string(),
            ));
        }
        let (server, base_url) = start_server(&database_url, &env).await;
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("build the HTTP client");
        let mut app = TestApp {
            backend,
            database_url,
            api: Api {
                base_url,
                client,
                admin_token: String::new(),
            },
            env,
            server: Some(server),
            database,
            mailbox,
        };
        app.api.admin_token = app.api.login_token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        app
    }

    /// SIGKILLs the server (no graceful shutdown) and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.child.kill().await.expect("SIGKILL the server");
        }
    }

    /// Kills the server if it still runs and starts a new one on the same
    /// database (on a new port), then logs the admin in again.
    pub async fn restart(&mut self) {
        self.kill().await;
        let (server, base_url) = start_server(&self.database_url, &self.env).await;
        self.server = Some(server);
        self.api.base_url = base_url;
        self.api.admin_token = self.api.login_token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    }

    /// Starts another server process on the same database: a second node.
    /// It is killed when the returned [`Peer`] is dropped.
    /// The process ID of the server (for reading its memory use).
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().and_then(|server| server.child.id())
    }

    pub async fn spawn_peer(&self) -> Peer {
        self.spawn_peer_with(&[]).await
    }

    /// [`Self::spawn_peer`] with some of this server's environment changed.
    pub async fn spawn_peer_with(&self, changes: &[(&str, &str)]) -> Peer {
        let mut env = self.env.clone();
        for (key, value) in changes {
            env.retain(|(existing, _)| existing != key);
            env.push((key.to_string(), value.to_string()));
        }
        let (server, base_url) = start_server(&self.database_url, &env).await;
        let api = Api {
            base_url,
            client: self.api.client.clone(),
            admin_token: String::new(),
        };
        let admin_token = api.login_token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        Peer {
            api: Api { admin_token, ..api },
            _server: server,
        }
    }

    /// The last lines the server wrote to stderr (for failure messages).
    pub fn server_stderr(&self) -> String {
        match &self.server {
            Some(server) => server
                .stderr
                .lock()
                .unwrap()
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
            None => String::new(),
        }
    }
}

/// How many of the kept stderr lines a failing test prints.
const STDERR_LINES_SHOWN_ON_FAILURE: usize = 40;

impl Drop for TestApp {
    fn drop(&mut self) {
        if std::thread::panicking() && std::env::var_os("TEST_LOG").is_none() {
            if let Some(server) = &self.server {
                let lines = server.stderr.lock().unwrap();
                let shown: Vec<&String> = lines
                    .iter()
                    .skip(lines.len().saturating_sub(STDERR_LINES_SHOWN_ON_FAILURE))
                    .collect();
                eprintln!(
                    "--- the last {} lines of the server's stderr ({}; TEST_LOG=1 shows all) ---",
                    shown.len(),
                    self.database_url
                );
                for line in shown {
                    eprintln!("{line}");
                }
            }
        }
        if let Some(mut server) = self.server.take() {
            let _ = server.child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.mailbox);
        if std::env::var_os("TEST_KEEP_DB").is_some() {
            eprintln!("TEST_KEEP_DB: kept {}", self.database_url);
            return;
        }
        match &self.database {
            Database::SqliteDirectory(directory) => {
                let _ = std::fs::remove_dir_all(directory);
            }
            Database::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime, so the clean-up gets a
                // thread and a runtime of its own. Failures only leak a database.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    if let Ok(runtime) = runtime {
                        runtime.block_on(async {
                            if let Ok(mut connection) = PgConnection::connect(&admin_url).await {
                                let sql =
                                    format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                                let _ = connection.execute(sql.as_str()).await;
                            }
                        });
                    }
                })
                .join();
            }
        }
    }
}

pub fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

pub fn unique_email() -> String {
    format!("user-{}@example.test", random_hex(8))
}

pub fn unique_key() -> String {
    format!("key-{}", random_hex(12))
}

fn create_sqlite_database() -> (String, Database) {
    let directory = std::env::temp_dir().join(format!("bx_test_{}", random_hex(8)));
    std::fs::create_dir_all(&directory).expect("create the SQLite temp directory");
    let path = directory.join("test.db");
    let url = format!("sqlite://{}", path.display());
    assert!(
        url.starts_with("sqlite:///"),
        "temp dir must be absolute: {url}"
    );
    (url, Database::SqliteDirectory(directory))
}

async fn create_postgres_database() -> (String, Database) {
    let admin_url = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_string());
    let name = format!("bx_test_{}", random_hex(8));
    let mut connection = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|error| {
            panic!(
            "PostgreSQL is required for the *_postgres tests and cannot be reached at {admin_url} \
             (set TEST_POSTGRES_URL): {error}"
        )
        });
    connection
        .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .unwrap_or_else(|error| panic!("CREATE DATABASE {name} on {admin_url}: {error}"));
    let _ = connection.close().await;
    let mut url = reqwest::Url::parse(&admin_url).expect("TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    (url.to_string(), Database::Postgres { admin_url, name })
}

async fn start_server(database_url: &str, env: &[(String, String)]) -> (Server, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_boxoffice"));
    command
        .arg("serve")
        .env("BOXOFFICE_LISTEN", "127.0.0.1:0")
        .env("DATABASE_URL", database_url)
        .env("BOXOFFICE_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("BOXOFFICE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("REDIS_URL")
        .env_remove("NATS_URL")
        .env_remove("BOXOFFICE_METRICS_LISTEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn `boxoffice serve`");

    let stderr_lines = Arc::new(Mutex::new(VecDeque::new()));
    let echo = std::env::var_os("TEST_LOG").is_some();
    let stderr = child.stderr.take().expect("piped stderr");
    let lines = Arc::clone(&stderr_lines);
    tokio::spawn(async move {
        let mut reader = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if echo {
                eprintln!("[boxoffice] {line}");
            }
            let mut lines = lines.lock().unwrap();
            if lines.len() == STDERR_LINES_KEPT {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    });

    let stdout = child.stdout.take().expect("piped stdout");
    let mut stdout = BufReader::new(stdout).lines();
    let listening = tokio::time::timeout(STARTUP_TIMEOUT, async {
        while let Ok(Some(line)) = stdout.next_line().await {
            if echo {
                eprintln!("[boxoffice stdout] {line}");
            }
            if let Some(rest) = line.split("boxoffice listening on ").nth(1) {
                return Some(rest.trim().trim_end_matches('/').to_string());
            }
        }
        None
    })
    .await;
    let show_stderr = |lines: &Arc<Mutex<VecDeque<String>>>| {
        lines
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    };
    match listening {
        Ok(Some(base_url)) => {
            // Keep draining stdout so that the server never blocks on a full pipe.
            tokio::spawn(async move {
                while let Ok(Some(line)) = stdout.next_line().await {
                    if echo {
                        eprintln!("[boxoffice stdout] {line}");
                    }
                }
            });
            (
                Server {
                    child,
                    stderr: stderr_lines,
                },
                base_url,
            )
        }
        Ok(None) => {
            let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            panic!(
                "`boxoffice serve` ({database_url}) closed stdout without printing \
                 `boxoffice listening on http://…` (exit: {status:?}). stderr:\n{}",
                show_stderr(&stderr_lines)
            );
        }
        Err(_) => {
            let _ = child.kill().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            panic!(
                "`boxoffice serve` ({database_url}) did not print `boxoffice listening on http://…` \
                 within {STARTUP_TIMEOUT:?}. stderr:\n{}",
                show_stderr(&stderr_lines)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// An HTTP answer: status, headers, raw text and the body parsed as JSON
/// (`Value::Null` when it is not JSON).
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl std::fmt::Display for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN_CHARS: usize = 1500;
        let text: String = self.text.chars().take(SHOWN_CHARS).collect();
        let more = if self.text.chars().count() > SHOWN_CHARS {
            "…"
        } else {
            ""
        };
        write!(
            f,
            "{} (content-type {:?}) {}{}",
            self.status.as_u16(),
            self.header("content-type").unwrap_or(""),
            text,
            more
        )
    }
}

impl Resp {
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// The problem's `code`, or "" when there is none.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(&self, status: u16, what: &str) -> &Value {
        assert_eq!(
            self.status(),
            status,
            "{what}: expected HTTP {status}, got {self}"
        );
        &self.body
    }

    /// Asserts an RFC 9457 problem with this status and contract `code`.
    #[track_caller]
    pub fn expect_problem(&self, status: u16, code: &str, what: &str) -> &Value {
        let violations = problem_violations(self, &[status], Some(code), None);
        assert!(
            violations.is_empty(),
            "{what}: {}\n  answer: {self}",
            violations.join("; ")
        );
        &self.body
    }

    /// The problem's `errors[].field` values.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Everything that is wrong with `resp` as a problem answer: the status must
/// be one of `statuses` (any 4xx when empty), the content type
/// `application/problem+json`, the body an object with `type`, `title`,
/// `status` (= the HTTP status), `code` when one is given, and for 400
/// `invalid_request` an `errors` entry naming `field` when one is given.
pub fn problem_violations(
    resp: &Resp,
    statuses: &[u16],
    code: Option<&str>,
    field: Option<&str>,
) -> Vec<String> {
    let mut violations = Vec::new();
    let status = resp.status();
    if statuses.is_empty() {
        if !(400..500).contains(&status) {
            violations.push(format!("expected a 4xx, got {status}"));
        }
    } else if !statuses.contains(&status) {
        violations.push(format!("expected HTTP {statuses:?}, got {status}"));
    }
    let content_type = resp.header("content-type").unwrap_or("");
    if !content_type.starts_with("application/problem+json") {
        violations.push(format!(
            "Content-Type is {content_type:?}, not application/problem+json"
        ));
    }
    if !resp.body.is_object() {
        violations.push("body is not a JSON object".to_string());
        return violations;
    }
    if !resp.body["type"].is_string() {
        violations.push("no string `type`".to_string());
    }
    if !resp.body["title"].is_string() {
        violations.push("no string `title`".to_string());
    }
    if resp.body["status"].as_u64() != Some(u64::from(status)) {
        violations.push(format!(
            "`status` is {} but the HTTP status is {status}",
            resp.body["status"]
        ));
    }
    if let Some(code) = code {
        if resp.code() != code {
            violations.push(format!(
                "`code` is {:?}, expected {code:?}",
                resp.body["code"]
            ));
        }
    }
    if let Some(field) = field {
        let fields = resp.error_fields();
        if !fields.iter().any(|f| f.contains(field)) {
            violations.push(format!(
                "`errors` does not name the field {field:?} (fields: {fields:?})"
            ));
        }
    }
    violations
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// A request being built: `api.request(Method::POST, "/v1/holds").token(t).json(&body).send()`.
pub struct Req {
    builder: reqwest::RequestBuilder,
    description: String,
}

impl Req {
    pub fn token(mut self, token: &str) -> Req {
        self.builder = self.builder.bearer_auth(token);
        self
    }

    pub fn maybe_token(self, token: Option<&str>) -> Req {
        match token {
            Some(token) => self.token(token),
            None => self,
        }
    }

    pub fn json(mut self, body: &Value) -> Req {
        self.builder = self.builder.json(body);
        self
    }

    /// A raw body with an optional Content-Type (none at all when `None`).
    pub fn raw(mut self, content_type: Option<&str>, body: impl Into<reqwest::Body>) -> Req {
        if let Some(content_type) = content_type {
            self.builder = self.builder.header("content-type", content_type);
        }
        self.builder = self.builder.body(body);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.builder = self.builder.header(name, value);
        self
    }

    /// Sends the request; a transport error (refused, reset, timeout) is Err.
    pub async fn try_send(self) -> Result<Resp, String> {
        let response = self
            .builder
            .send()
            .await
            .map_err(|e| format!("{}: {e:?}", self.description))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("{}: reading the body: {e:?}", self.description))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Resp {
            status,
            headers,
            text,
            body,
        })
    }

    /// Sends the request and fails the test on a transport error.
    pub async fn send(self) -> Resp {
        match self.try_send().await {
            Ok(resp) => resp,
            Err(error) => {
                panic!("request failed without an HTTP answer (hang, crash or reset?): {error}")
            }
        }
    }
}

/// A registered user and its current access token.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
    pub token: String,
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub fn request(&self, method: Method, path: &str) -> Req {
        Req {
            description: format!("{method} {path}"),
            builder: self.client.request(method, self.url(path)),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.request(Method::GET, path)
            .maybe_token(token)
            .send()
            .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.request(Method::POST, path)
            .maybe_token(token)
            .json(body)
            .send()
            .await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.request(Method::PATCH, path)
            .maybe_token(token)
            .json(body)
            .send()
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.request(Method::DELETE, path)
            .maybe_token(token)
            .send()
            .await
    }

    pub fn admin(&self) -> Option<&str> {
        Some(self.admin_token.as_str())
    }

    // --- users -------------------------------------------------------------

    pub async fn register(&self, email: &str, password: &str, name: &str) -> Resp {
        self.post(
            "/v1/auth/register",
            None,
            &json!({"email": email, "password": password, "name": name}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.post(
            "/v1/auth/login",
            None,
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn login_token(&self, email: &str, password: &str) -> String {
        let resp = self.login(email, password).await;
        let body = resp.expect(200, &format!("log in as {email}"));
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("login without access_token: {resp}"))
            .to_string()
    }

    /// Registers a customer with a unique e-mail address.
    pub async fn register_user(&self) -> TestUser {
        let email = unique_email();
        let resp = self.register(&email, USER_PASSWORD, "Test Buyer").await;
        let body = resp.expect(201, "register a user");
        TestUser {
            id: body["user"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("no user.id: {resp}"))
                .to_string(),
            email,
            password: USER_PASSWORD.to_string(),
            token: body["access_token"]
                .as_str()
                .unwrap_or_else(|| panic!("no access_token: {resp}"))
                .to_string(),
        }
    }

    /// Registers `count` customers, a few at a time.
    pub async fn register_users(&self, count: usize) -> Vec<TestUser> {
        use futures::StreamExt;
        futures::stream::iter(0..count)
            .map(|_| self.register_user())
            .buffer_unordered(8)
            .collect()
            .await
    }

    /// A door-staff account: registered, promoted by the admin, logged in again.
    pub async fn staff_user(&self) -> TestUser {
        let mut user = self.register_user().await;
        self.patch(
            &format!("/v1/users/{}", user.id),
            self.admin(),
            &json!({"role": "staff"}),
        )
        .await
        .expect(200, "make a staff user");
        user.token = self.login_token(&user.email, &user.password).await;
        user
    }

    // --- catalogue (as admin) ----------------------------------------------

    pub async fn create_venue(&self, layout: &Value) -> String {
        let resp = self.post("/v1/venues", self.admin(), layout).await;
        id_of(resp.expect(201, "create a venue"), &resp)
    }

    pub async fn create_event(&self, title: &str) -> String {
        self.create_event_with(&json!({
            "title": title,
            "description": "An evening of tests.",
            "performer": "The Assertions",
            "genre": "rock",
            "tags": ["e2e"],
        }))
        .await
    }

    pub async fn create_event_with(&self, body: &Value) -> String {
        let resp = self.post("/v1/events", self.admin(), body).await;
        id_of(resp.expect(201, "create an event"), &resp)
    }

    /// Creates a show of `event_id` at `venue_id`, 30 days from now, with the
    /// fixture's prices; top-level keys of `overrides` replace the defaults.
    /// Returns the 201 body.
    pub async fn create_show(&self, event_id: &str, venue_id: &str, overrides: Value) -> Value {
        let resp = self
            .post(
                &format!("/v1/events/{event_id}/shows"),
                self.admin(),
                &show_body(venue_id, overrides),
            )
            .await;
        resp.expect(201, "create a show").clone()
    }

    /// A venue with seated section `A` (`rows` rows of `seats_per_row` seats,
    /// category `std`) and, when `standing_capacity` is given, standing section
    /// `FLOOR` (category `ga`); an event; and a show of it.
    pub async fn fixture(
        &self,
        rows: u32,
        seats_per_row: u32,
        standing_capacity: Option<u32>,
        show_overrides: Value,
    ) -> Fixture {
        let venue_id = self
            .create_venue(&venue_layout(
                &format!("Hall {}", random_hex(3)),
                rows,
                seats_per_row,
                standing_capacity,
            ))
            .await;
        let event_id = self
            .create_event(&format!("Fixture Night {}", random_hex(3)))
            .await;
        let mut show_overrides = show_overrides;
        if show_overrides.get("prices").is_none() {
            show_overrides["prices"] = prices_for(rows > 0, standing_capacity.is_some());
        }
        let show = self.create_show(&event_id, &venue_id, show_overrides).await;
        let show_id = id_of(&show, &show);
        let seat_ids = (1..=rows)
            .flat_map(|row| (1..=seats_per_row).map(move |n| format!("{SEATED_SECTION}-{row}-{n}")))
            .collect();
        Fixture {
            venue_id,
            event_id,
            show_id,
            seat_ids,
            standing_capacity,
        }
    }

    // --- inventory ---------------------------------------------------------

    /// The seat map (asserting 200).
    pub async fn seat_map(&self, show_id: &str) -> Value {
        let resp = self.get(&format!("/v1/shows/{show_id}/seats"), None).await;
        resp.expect(200, "seat map").clone()
    }

    pub async fn hold(&self, token: &str, body: &Value) -> Resp {
        self.post("/v1/holds", Some(token), body).await
    }

    pub async fn hold_seats(&self, token: &str, show_id: &str, seat_ids: &[&str]) -> Resp {
        self.hold(token, &json!({"show_id": show_id, "seat_ids": seat_ids}))
            .await
    }

    /// Holds `seats` and pays for them with `tok_visa`: the booking.
    pub async fn buy(&self, user: &TestUser, show_id: &str, seats: &[&str]) -> Value {
        let held = self.hold_seats(&user.token, show_id, seats).await;
        let hold_id = id_of(held.expect(201, "hold"), &held);
        let booked = self
            .book(&user.token, &hold_id, &unique_key(), "tok_visa")
            .await;
        booked.expect(201, "book").clone()
    }

    /// `users` buy `each` single seats apiece of a show with rows of ten,
    /// all at once (user `i` takes seats `4i…` in row order): the booking
    /// IDs, per user.
    pub async fn buy_concurrently(
        &self,
        users: &[TestUser],
        show_id: &str,
        each: usize,
    ) -> Vec<Vec<String>> {
        futures::future::join_all(users.iter().enumerate().map(|(index, user)| async move {
            let mut ids = Vec::new();
            for seat in 0..each {
                let n = index * 4 + seat;
                let seat_id = format!("A-{}-{}", 1 + n / 10, 1 + n % 10);
                let booking = self.buy(user, show_id, &[seat_id.as_str()]).await;
                ids.push(id_of(&booking, &booking));
            }
            ids
        }))
        .await
    }

    pub async fn get_hold(&self, token: &str, hold_id: &str) -> Resp {
        self.get(&format!("/v1/holds/{hold_id}"), Some(token)).await
    }

    /// `POST /v1/bookings` with an Idempotency-Key.
    pub async fn book(&self, token: &str, hold_id: &str, key: &str, payment_token: &str) -> Resp {
        self.request(Method::POST, "/v1/bookings")
            .token(token)
            .header("Idempotency-Key", key)
            .json(&json!({"hold_id": hold_id, "payment_token": payment_token}))
            .send()
            .await
    }

    /// The sandbox gateway's charges for a hold (as admin).
    pub async fn charges(&self, hold_id: &str) -> Vec<Value> {
        self.list_all(
            &format!("/v1/sandbox/charges?hold_id={hold_id}"),
            self.admin(),
        )
        .await
    }

    pub async fn captured_charges(&self, hold_id: &str) -> usize {
        self.charges(hold_id)
            .await
            .iter()
            .filter(|c| c["status"] == "CAPTURED")
            .count()
    }

    /// Follows `next_cursor` until it is null and returns all items.
    pub async fn list_all(&self, path: &str, token: Option<&str>) -> Vec<Value> {
        const PAGES_MAX: usize = 1000;
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..PAGES_MAX {
            let page_path = match &cursor {
                Some(cursor) => {
                    format!("{path}{separator}limit=100&cursor={}", encode_query(cursor))
                }
                None => format!("{path}{separator}limit=100"),
            };
            let resp = self.get(&page_path, token).await;
            let body = resp.expect(200, &format!("list {page_path}"));
            let page = body["items"]
                .as_array()
                .unwrap_or_else(|| panic!("{page_path}: no items array: {resp}"));
            items.extend(page.iter().cloned());
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return items,
            }
        }
        panic!("{path}: more than {PAGES_MAX} pages — is next_cursor looping?");
    }
}

/// The `id` of a created resource.
#[track_caller]
pub fn id_of(body: &Value, context: &dyn std::fmt::Display) -> String {
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no string `id` in {context}"))
        .to_string()
}

pub fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

pub struct Fixture {
    pub venue_id: String,
    pub event_id: String,
    pub show_id: String,
    /// Every seat of section A in layout order: `A-1-1`, `A-1-2`, …
    pub seat_ids: Vec<String>,
    pub standing_capacity: Option<u32>,
}

pub fn money(amount: i64) -> Value {
    json!({"amount": amount, "currency": CURRENCY})
}

/// Prices for both fixture categories (a venue with seats and standing).
pub fn default_prices() -> Value {
    prices_for(true, true)
}

/// Prices for exactly the categories a [`venue_layout`] uses: the server
/// refuses prices for categories the venue does not have.
pub fn prices_for(seated: bool, standing: bool) -> Value {
    let mut prices = json!({});
    if seated {
        prices[SEAT_CATEGORY] = money(SEAT_PRICE_CENTS);
    }
    if standing {
        prices[STANDING_CATEGORY] = money(STANDING_PRICE_CENTS);
    }
    prices
}

/// The `standing` part of a hold or booking as (section, quantity) pairs,
/// ignoring any extra fields the server adds.
pub fn standing_parts(body: &Value) -> Vec<(String, i64)> {
    body["standing"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .map(|p| {
                    (
                        p["section"].as_str().unwrap_or("").to_string(),
                        p["quantity"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A venue layout: section `A` with `rows` rows (labels "1".."rows") of
/// `seats_per_row` seats, category `std`; plus standing section `FLOOR`,
/// category `ga`, when a capacity is given. `rows == 0` means no seated section.
pub fn venue_layout(
    name: &str,
    rows: u32,
    seats_per_row: u32,
    standing_capacity: Option<u32>,
) -> Value {
    let mut sections = Vec::new();
    if rows > 0 {
        let rows: Vec<Value> = (1..=rows)
            .map(|row| json!({"label": row.to_string(), "seats": seats_per_row}))
            .collect();
        sections.push(json!({"id": SEATED_SECTION, "name": "Block A", "kind": "seated", "category": SEAT_CATEGORY, "rows": rows}));
    }
    if let Some(capacity) = standing_capacity {
        sections.push(json!({"id": STANDING_SECTION, "name": "Floor", "kind": "standing", "category": STANDING_CATEGORY, "capacity": capacity}));
    }
    json!({"name": name, "city": "Berlin", "address": "Ufer 1", "timezone": "Europe/Berlin", "sections": sections})
}

/// The body of `POST /v1/events/{id}/shows`: defaults, then `overrides`.
pub fn show_body(venue_id: &str, overrides: Value) -> Value {
    let starts_at = (Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut body =
        json!({"venue_id": venue_id, "starts_at": starts_at, "prices": default_prices()});
    if let Value::Object(overrides) = overrides {
        for (key, value) in overrides {
            body[key] = value;
        }
    }
    body
}

pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[track_caller]
pub fn parse_time(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected an RFC 3339 string, got {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

// --- seat-map readers --------------------------------------------------------

/// seat id → status.
pub fn seat_statuses(map: &Value) -> BTreeMap<String, String> {
    map["seats"]
        .as_array()
        .unwrap_or_else(|| panic!("seat map without `seats`: {map}"))
        .iter()
        .map(|seat| {
            (
                seat["id"].as_str().unwrap_or_default().to_string(),
                seat["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The ids of the seats with this status.
pub fn seats_with_status(map: &Value, status: &str) -> BTreeSet<String> {
    seat_statuses(map)
        .into_iter()
        .filter(|(_, s)| s == status)
        .map(|(id, _)| id)
        .collect()
}

/// `(available, held, booked)` of the map's `summary`.
#[track_caller]
pub fn summary(map: &Value) -> (i64, i64, i64) {
    let s = &map["summary"];
    let read = |key: &str| {
        s[key]
            .as_i64()
            .unwrap_or_else(|| panic!("summary.{key} missing: {map}"))
    };
    (read("available"), read("held"), read("booked"))
}

/// A standing section's entry of the seat map.
#[track_caller]
pub fn standing_entry<'a>(map: &'a Value, section: &str) -> &'a Value {
    map["standing"]
        .as_array()
        .and_then(|sections| sections.iter().find(|s| s["section"] == section))
        .unwrap_or_else(|| panic!("seat map has no standing section {section}: {map}"))
}

#[track_caller]
pub fn standing_available(map: &Value, section: &str) -> i64 {
    standing_entry(map, section)["available"]
        .as_i64()
        .unwrap_or_else(|| panic!("standing {section} without `available`: {map}"))
}

/// The seat ids of a hold or booking body (`seats[].id`).
pub fn seat_ids_of(body: &Value) -> BTreeSet<String> {
    body["seats"]
        .as_array()
        .map(|seats| {
            seats
                .iter()
                .filter_map(|s| s["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn set_of(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// `A-3-12` → ("A", "3", 12).
pub fn split_seat_id(seat_id: &str) -> (String, String, u32) {
    let parts: Vec<&str> = seat_id.split('-').collect();
    assert_eq!(
        parts.len(),
        3,
        "seat id {seat_id:?} is not section-row-number"
    );
    (
        parts[0].to_string(),
        parts[1].to_string(),
        parts[2]
            .parse()
            .unwrap_or_else(|_| panic!("seat number of {seat_id:?}")),
    )
}

// --- waiting -------------------------------------------------------------------

/// Polls `check` every `every` until it returns `Some`, or fails after
/// `deadline` with `what` and the last value seen by `check` (via its `Err`).
pub async fn poll_until<T, F, Fut>(
    what: &str,
    deadline: Duration,
    every: Duration,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(last) => last,
        };
        if started.elapsed() > deadline {
            panic!("gave up after {deadline:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(every).await;
    }
}

/// Sleeps until the wall clock passes `time` (no-op if it already has).
pub async fn sleep_until_time(time: DateTime<Utc>) {
    let remaining = time - Utc::now();
    if let Ok(remaining) = remaining.to_std() {
        tokio::time::sleep(remaining).await;
    }
}

// --- Server-Sent Events ------------------------------------------------------------

/// One server-sent event.
#[derive(Debug)]
pub struct SseEvent {
    pub name: String,
    pub id: Option<String>,
    pub data: Value,
}

/// Reads a `text/event-stream` response event by event.
pub struct SseStream {
    response: reqwest::Response,
    buffer: String,
}

impl SseStream {
    /// Wraps an answer, asserting 200 and the event-stream content type.
    pub fn of(response: reqwest::Response) -> SseStream {
        assert_eq!(response.status().as_u16(), 200, "stream status");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "stream content type: {content_type:?}"
        );
        SseStream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (skipping comments/heartbeats) within `deadline`, or
    /// `None` when the server ended the stream.
    pub async fn next_or_end(&mut self, deadline: Duration) -> Option<SseEvent> {
        let started = Instant::now();
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut id, mut data) = ("message".to_string(), None, Vec::new());
                for line in block.lines() {
                    if line.starts_with(':') || line.is_empty() {
                        continue;
                    }
                    let (field, value) = line
                        .split_once(':')
                        .map(|(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)))
                        .unwrap_or((line, ""));
                    match field {
                        "event" => name = value.to_string(),
                        "id" => id = Some(value.to_string()),
                        "data" => data.push(value.to_string()),
                        _ => {}
                    }
                }
                if data.is_empty() {
                    continue; // a heartbeat or a retry: line
                }
                let text = data.join("\n");
                let data = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("event {name} data is not JSON ({e}): {text}"));
                return Some(SseEvent { name, id, data });
            }
            let remaining = deadline.checked_sub(started.elapsed()).unwrap_or_else(|| {
                panic!(
                    "no complete event within {deadline:?}; buffered: {:?}",
                    self.buffer
                )
            });
            match tokio::time::timeout(remaining, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n")),
                Ok(Ok(None)) => return None,
                Ok(Err(error)) => panic!("reading the stream: {error}"),
                Err(_) => panic!("no event within {deadline:?}; buffered: {:?}", self.buffer),
            }
        }
    }

    /// The next event; the stream must not end.
    pub async fn next(&mut self, deadline: Duration) -> SseEvent {
        match self.next_or_end(deadline).await {
            Some(event) => event,
            None => panic!("the stream ended; buffered: {:?}", self.buffer),
        }
    }
}

// --- base64url (for forging JWTs) -------------------------------------------------

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(BASE64URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let value = BASE64URL.iter().position(|&x| x == c)? as u32;
        bits = (bits << 6) | value;
        bit_count += 6;
        if bit_count >= 8 {
            bit_count -= 8;
            out.push((bits >> bit_count) as u8);
            bits &= (1 << bit_count) - 1;
        }
    }
    Some(out)
}

/// An external server process of a test (aiosmtpd, nats-server) with a free
/// port and a data folder of its own. It can be stopped and started again
/// (an outage) keeping both; on drop it is killed and its folder removed.
pub struct ServerProcess {
    name: &'static str,
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

impl ServerProcess {
    pub fn new(name: &'static str) -> ServerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        ServerProcess {
            name,
            child: None,
            port,
            dir: std::env::temp_dir().join(format!("bx_{name}_{}", random_hex(8))),
        }
    }

    /// Spawns `command` and waits until the port accepts connections.
    pub async fn start(&mut self, mut command: Command, install_hint: &str) {
        let name = self.name;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name} ({install_hint}): {error}"));
        self.child = Some(child);
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("{name} exited with {status} ({install_hint})");
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{name} does not answer on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
