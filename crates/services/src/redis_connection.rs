//! How every Redis adapter (seat locks, rate limits, the waiting room)
//! reaches Redis: a lazy connection manager that connects on first use and
//! reconnects by itself, with short retries — each adapter bounds its own
//! calls and decides what a failure means (a filter skipped, a per-node
//! limit, a 503).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Prepares a connection to `url` without waiting for Redis; fails only for
/// a URL that cannot work.
pub(crate) fn lazy_connection(
    url: &str,
    call_timeout: Duration,
) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(call_timeout))
        .set_response_timeout(Some(call_timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(20))
        .set_max_delay(Duration::from_millis(100));
    ConnectionManager::new_lazy_with_config(client, config)
}
