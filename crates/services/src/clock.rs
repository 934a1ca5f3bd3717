//! Time and identity sources, injected so that tests can control them.

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Entropy for IDs: 80 random bits per ID (see the domain's ULID layout).
pub(crate) fn entropy() -> u128 {
    rand::random::<u128>()
}

/// Milliseconds since the epoch for ID time stamps.
pub(crate) fn unix_millis(now: DateTime<Utc>) -> u64 {
    u64::try_from(now.timestamp_millis()).unwrap_or(0)
}

#[macro_export]
#[doc(hidden)]
macro_rules! new_id {
    ($type:ty, $now:expr) => {
        <$type>::generate($crate::clock::unix_millis($now), $crate::clock::entropy())
    };
}
