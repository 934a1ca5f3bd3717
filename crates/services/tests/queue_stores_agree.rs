//! The waiting room's two adapters — SQL (`SqlStore`, embedded mode) and
//! Redis (`RedisQueueStore`, Lua scripts) — must be one queue: the same
//! joins, reads and configuration changes at the same instants give the same
//! tickets, places, admissions and rooms. Random histories (seeded, so a
//! failure replays) run against both side by side; any difference fails.
//! A `redis-server` of its own runs on a free port; without it the test
//! fails, never skips.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice_domain::waiting_room::{pre_queue_key, RoomConfig};
use boxoffice_domain::{QueueTicketId, ShowId, UserId};
use boxoffice_services::waiting_room::RedisQueueStore;
use boxoffice_store::{QueueJoin, QueueStore, SqlStore};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

const HISTORIES: usize = 24;
const STEPS: usize = 60;
const USERS: usize = 8;
const ADMISSION_TTL_MS: i64 = 4_000;

struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> RedisServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local address").port();
        drop(listener);
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("this test needs `redis-server` on the PATH (apt-get install redis-server): {error}")
            });
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer { child, port }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SQLite store with `count` shows (the SQL queue refers to real shows).
async fn sql_store_with_shows(count: usize) -> (Arc<SqlStore>, Vec<ShowId>, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("bx-queue-agree-{}.db", rand::random::<u64>()));
    let (store, services) = common::services_on(format!("sqlite://{}", path.display())).await;
    let shows = common::shows_in_a_small_hall(
        &services,
        &store,
        count,
        serde_json::json!({"waiting_room": {"enabled": true}}),
    )
    .await;
    (store, shows, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_and_redis_queues_agree_on_random_histories() {
    let redis_server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", redis_server.port);
    let redis = RedisQueueStore::new(&url, &url).expect("redis queue store");
    let (sql, shows, path) = sql_store_with_shows(HISTORIES).await;
    let users: Vec<UserId> = (0..USERS)
        .map(|n| UserId::generate(1, n as u128 + 1))
        .collect();
    let mut joins = 0;
    let mut admitted = 0;
    let mut pre_queued = 0;
    for (history, show_id) in shows.iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(0xb0c5 + history as u64);
        let mut now: i64 = 1_800_000_000_000;
        let mut config = RoomConfig {
            admit_per_minute: [30, 120, 600, 6_000][rng.gen_range(0..4)],
            paused: rng.gen_bool(0.2),
            // Some histories start with a pre-queue.
            sales_start_ms: now + rng.gen_range(-2_000..6_000),
            version: 1,
        };
        let mut tickets: Vec<QueueTicketId> = Vec::new();
        for step in 0..STEPS {
            now += rng.gen_range(0..1_500);
            let context = format!(
                "history {history} step {step} (seed {:#x})",
                0xb0c5 + history
            );
            match rng.gen_range(0..10) {
                0..=4 => {
                    let user = &users[rng.gen_range(0..USERS)];
                    let ticket_id =
                        QueueTicketId::generate(u64::try_from(now).unwrap_or(0), rng.gen());
                    let join = QueueJoin {
                        show_id,
                        user_id: user,
                        new_ticket_id: &ticket_id,
                        config,
                        pre_queue_key: pre_queue_key(rng.next_u64()),
                        now_ms: now,
                        admission_ttl_ms: ADMISSION_TTL_MS,
                    };
                    let from_sql = sql.join_queue(&join).await.expect("sql join");
                    let from_redis = redis.join_queue(&join).await.expect("redis join");
                    assert_eq!(from_sql, from_redis, "join: {context}");
                    if let boxoffice_store::QueueJoinOutcome::Joined(snapshot) = &from_sql {
                        joins += 1;
                        pre_queued += usize::from(snapshot.ticket.place.is_none());
                        tickets.push(ticket_id);
                    }
                }
                5..=7 if !tickets.is_empty() => {
                    let ticket_id = &tickets[rng.gen_range(0..tickets.len())];
                    let from_sql = sql
                        .queue_ticket(show_id, ticket_id, &config, now)
                        .await
                        .expect("sql read");
                    let from_redis = redis
                        .queue_ticket(show_id, ticket_id, &config, now)
                        .await
                        .expect("redis read");
                    assert_eq!(from_sql, from_redis, "read: {context}");
                    admitted +=
                        usize::from(from_sql.is_some_and(|s| s.ticket.admitted_at_ms.is_some()));
                }
                8 => {
                    config.version += 1;
                    config.admit_per_minute = [30, 120, 600, 6_000, 60_000][rng.gen_range(0..5)];
                    config.paused = rng.gen_bool(0.3);
                    sql.configure_queue(show_id, &config, now)
                        .await
                        .expect("sql configure");
                    redis
                        .configure_queue(show_id, &config, now)
                        .await
                        .expect("redis configure");
                }
                _ => {
                    // An unknown ticket of this show is unknown to both.
                    let stranger = QueueTicketId::generate(1, rng.gen());
                    assert_eq!(
                        sql.queue_ticket(show_id, &stranger, &config, now)
                            .await
                            .expect("sql read"),
                        None,
                        "{context}"
                    );
                    assert_eq!(
                        redis
                            .queue_ticket(show_id, &stranger, &config, now)
                            .await
                            .expect("redis read"),
                        None,
                        "{context}"
                    );
                }
            }
        }
    }
    // The histories must have exercised what they compare.
    assert!(joins > HISTORIES * 10, "joins: {joins}");
    assert!(pre_queued > 10, "pre-queue joins: {pre_queued}");
    assert!(admitted > 50, "reads of admitted tickets: {admitted}");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_is_spent_once_in_both_stores() {
    let redis_server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", redis_server.port);
    let redis = RedisQueueStore::new(&url, &url).expect("redis queue store");
    let (sql, _, path) = sql_store_with_shows(0).await;
    let now = chrono::Utc::now().timestamp_millis();
    for store in [&redis as &dyn QueueStore, sql.as_ref() as &dyn QueueStore] {
        let id = format!("challenge-{}", rand::random::<u64>());
        assert!(store
            .spend_challenge(&id, now + 60_000, now)
            .await
            .expect("spend"));
        assert!(!store
            .spend_challenge(&id, now + 60_000, now)
            .await
            .expect("spend again"));
        assert!(store
            .spend_challenge(&format!("{id}-other"), now + 60_000, now)
            .await
            .expect("another"));
    }
    let _ = std::fs::remove_file(&path);
}
