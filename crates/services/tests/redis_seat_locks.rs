//! `RedisSeatLocks` against a real Redis: a `redis-server` of its own per
//! test (on a free port, nothing on disk), so that tests never share keys.
//! A test that cannot start Redis fails; it never skips.

mod common;

use std::time::{Duration, Instant};

use boxoffice_domain::{HoldId, SeatId, ShowId};
use boxoffice_services::seat_locks::{seat_lock_key, GuardedSeatLocks, LockAttempt};
use boxoffice_services::{LockOutcome, RedisSeatLocks, SeatLockError, SeatLocks};
use common::{free_port, RedisServer};
use redis::AsyncCommands;

fn seats(ids: &[&str]) -> Vec<SeatId> {
    ids.iter()
        .map(|id| SeatId::parse(id).expect("seat id"))
        .collect()
}

fn new_show() -> ShowId {
    ShowId::generate(now_ms(), rand::random())
}

fn new_hold() -> HoldId {
    HoldId::generate(now_ms(), rand::random())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

const TTL: Duration = Duration::from_secs(60);

#[tokio::test]
async fn locks_all_or_nothing_and_only_the_owner_unlocks() {
    let server = RedisServer::start();
    let locks = RedisSeatLocks::new(&server.url(), &server.url()).expect("redis url");
    locks.ping().await.expect("ping");
    let mut redis = server.connection().await;
    let show = new_show();
    let (first, second) = (new_hold(), new_hold());

    let outcome = locks
        .lock(&show, &seats(&["A-1-1", "A-1-2"]), &first, TTL)
        .await
        .expect("lock A-1-1, A-1-2");
    assert_eq!(outcome, LockOutcome::Locked);

    let outcome = locks
        .lock(&show, &seats(&["A-1-2", "A-1-3"]), &second, TTL)
        .await
        .expect("lock A-1-2, A-1-3");
    assert_eq!(
        outcome,
        LockOutcome::Taken {
            seat_ids: seats(&["A-1-2"])
        }
    );
    let c_key = seat_lock_key(&show, &SeatId::parse("A-1-3").expect("seat"));
    let c_holder: Option<String> = redis.get(&c_key).await.expect("GET");
    assert_eq!(c_holder, None, "all or nothing: A-1-3 stays unlocked");

    // The owner asking again (a retried request) keeps its locks.
    let outcome = locks
        .lock(&show, &seats(&["A-1-1", "A-1-2"]), &first, TTL)
        .await
        .expect("relock");
    assert_eq!(outcome, LockOutcome::Locked);

    // Keys are hash-tagged with the show and carry the owner and a TTL.
    let mut keys: Vec<String> = redis.keys("bx:*").await.expect("KEYS");
    keys.sort();
    assert_eq!(
        keys,
        vec![
            format!("bx:{{{show}}}:seat:A-1-1"),
            format!("bx:{{{show}}}:seat:A-1-2"),
        ]
    );
    for key in &keys {
        let holder: String = redis.get(key).await.expect("GET");
        assert_eq!(holder, first.as_str());
        let pttl: i64 = redis.pttl(key).await.expect("PTTL");
        assert!(
            pttl > 0 && pttl <= TTL.as_millis() as i64,
            "{key}: PTTL {pttl}"
        );
    }

    // Another owner cannot unlock them; the owner can.
    locks
        .unlock(&show, &seats(&["A-1-1", "A-1-2"]), &second)
        .await
        .expect("unlock by a stranger");
    let count: usize = redis.exists(&keys).await.expect("EXISTS");
    assert_eq!(count, 2, "a stranger's unlock removes nothing");
    locks
        .unlock(&show, &seats(&["A-1-1", "A-1-2"]), &first)
        .await
        .expect("unlock by the owner");
    let count: usize = redis.exists(&keys).await.expect("EXISTS");
    assert_eq!(count, 0, "the owner's unlock removes its locks");

    let outcome = locks
        .lock(&show, &seats(&["A-1-2", "A-1-3"]), &second, TTL)
        .await
        .expect("lock after unlock");
    assert_eq!(outcome, LockOutcome::Locked);

    // Another show's seats with the same IDs are other keys.
    let outcome = locks
        .lock(&new_show(), &seats(&["A-1-2"]), &first, TTL)
        .await
        .expect("lock in another show");
    assert_eq!(outcome, LockOutcome::Locked);
}

#[tokio::test]
async fn locks_lapse_with_their_ttl_and_flushed_locks_are_free() {
    let server = RedisServer::start();
    let locks = RedisSeatLocks::new(&server.url(), &server.url()).expect("redis url");
    let show = new_show();
    let outcome = locks
        .lock(
            &show,
            &seats(&["B-1-1"]),
            &new_hold(),
            Duration::from_millis(150),
        )
        .await
        .expect("short lock");
    assert_eq!(outcome, LockOutcome::Locked);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let outcome = locks
        .lock(&show, &seats(&["B-1-1", "B-1-2"]), &new_hold(), TTL)
        .await
        .expect("lock after the TTL");
    assert_eq!(outcome, LockOutcome::Locked);

    let mut redis = server.connection().await;
    let () = redis::cmd("FLUSHALL")
        .query_async(&mut redis)
        .await
        .expect("FLUSHALL");
    let outcome = locks
        .lock(&show, &seats(&["B-1-2"]), &new_hold(), TTL)
        .await
        .expect("lock after FLUSHALL");
    assert_eq!(outcome, LockOutcome::Locked, "a missing key is not a lock");
}

#[tokio::test]
async fn a_dead_redis_fails_fast_and_the_guard_answers_no_lock() {
    // A port nobody listens on.
    let url = format!("redis://127.0.0.1:{}", free_port());
    let locks = RedisSeatLocks::new(&url, &url).expect("redis url");
    let started = Instant::now();
    assert!(locks.ping().await.is_err());
    let result = locks
        .lock(&new_show(), &seats(&["A-1-1"]), &new_hold(), TTL)
        .await;
    assert!(result.is_err(), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the call timeout: {:?}",
        started.elapsed()
    );

    let guarded = GuardedSeatLocks::new(std::sync::Arc::new(locks));
    let started = Instant::now();
    let outcome = guarded
        .lock(&new_show(), &seats(&["A-1-1"]), &new_hold(), TTL)
        .await;
    assert_eq!(outcome, LockAttempt::Failed);
    for _ in 0..100 {
        let outcome = guarded
            .lock(&new_show(), &seats(&["A-1-1"]), &new_hold(), TTL)
            .await;
        assert_eq!(outcome, LockAttempt::Skipped);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "after one failure the breaker skips Redis: {:?}",
        started.elapsed()
    );
}

/// The real Redis adapter with a switch that makes every call fail, as a
/// Redis outage would, while the server and its keys stay as they are.
#[derive(Debug)]
struct Switchable {
    redis: RedisSeatLocks,
    down: std::sync::atomic::AtomicBool,
}

impl Switchable {
    fn check(&self) -> Result<(), SeatLockError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(SeatLockError::Redis("switched off by the test".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl SeatLocks for Switchable {
    async fn lock(
        &self,
        show_id: &ShowId,
        seat_ids: &[SeatId],
        owner: &HoldId,
        ttl: Duration,
    ) -> Result<LockOutcome, SeatLockError> {
        self.check()?;
        self.redis.lock(show_id, seat_ids, owner, ttl).await
    }

    async fn unlock(
        &self,
        show_id: &ShowId,
        seat_ids: &[SeatId],
        owner: &HoldId,
    ) -> Result<(), SeatLockError> {
        self.check()?;
        self.redis.unlock(show_id, seat_ids, owner).await
    }
}

#[tokio::test]
async fn an_unlock_that_failed_is_retried_once_redis_answers() {
    use std::sync::atomic::Ordering;
    let server = RedisServer::start();
    let switchable = std::sync::Arc::new(Switchable {
        redis: RedisSeatLocks::new(&server.url(), &server.url()).expect("redis url"),
        down: false.into(),
    });
    let guarded = GuardedSeatLocks::new(switchable.clone());
    let (show, owner) = (new_show(), new_hold());
    let seat_ids = seats(&["C-1-1", "C-1-2"]);
    assert_eq!(
        guarded.lock(&show, &seat_ids, &owner, TTL).await,
        LockAttempt::Done(LockOutcome::Locked)
    );

    switchable.down.store(true, Ordering::SeqCst);
    guarded.unlock(&show, &seat_ids, &owner).await;
    assert_eq!(guarded.deferred_unlocks(), 1, "the failed unlock is kept");
    guarded.retry_deferred_unlocks().await;
    assert_eq!(guarded.deferred_unlocks(), 1, "Redis is still away");

    switchable.down.store(false, Ordering::SeqCst);
    let mut redis = server.connection().await;
    let key = seat_lock_key(&show, &seat_ids[0]);
    let count: usize = redis.exists(&key).await.expect("EXISTS");
    assert_eq!(count, 1, "the lock outlived the failed unlock");
    // The breaker leaves Redis alone for a second after the failure.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    guarded.retry_deferred_unlocks().await;
    assert_eq!(guarded.deferred_unlocks(), 0);
    let count: usize = redis.exists(&key).await.expect("EXISTS");
    assert_eq!(count, 0, "the retried unlock removed the lock");
}
