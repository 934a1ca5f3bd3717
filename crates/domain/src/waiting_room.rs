//! Waiting-room admission arithmetic: who is admitted, when, and what a
//! waiting buyer is told.
//!
//! Every ticket has a place in its show's queue (1, 2, 3, …). The room's
//! *frontier* is the highest place admitted so far; it moves forward at
//! `admit_per_minute` from an anchor `(place, instant)`. Because the frontier
//! is a pure function of the stored room and the current time, every node
//! gives the same answer for the same ticket without a leader; only joins,
//! the opening and changes of the rate write.
//!
//! Buyers who join before `sales_start` form a pre-queue: each draws a random
//! key and, at opening, their places are their ranks by key — a uniformly
//! random order (Queue-it's rule, so that arriving early is no advantage over
//! arriving on time, and refreshing at the last second none either). Everyone
//! who joins after the opening gets the next place, first come first served.
//!
//! The same rules run in SQL transactions (store) and in a Redis Lua script
//! (services); both call into or mirror this module, and a test compares the
//! Lua copy against it.

/// Milliseconds per minute: rates are per minute, clocks in milliseconds.
pub const MS_PER_MINUTE: i64 = 60_000;

/// What the organizer controls, as of one version of the show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomConfig {
    pub admit_per_minute: u32,
    pub paused: bool,
    pub sales_start_ms: i64,
    /// Grows with every change of the show (its `updated_at` in ms), so a
    /// node with an older copy of the show never undoes a newer setting.
    pub version: i64,
}

/// The shared state of one show's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomState {
    /// Tickets in the pre-queue (frozen at the opening).
    pub pre_count: u64,
    /// The last place handed out (after the opening; `pre_count` at first).
    pub tail: u64,
    pub opened: bool,
    pub anchor_place: u64,
    pub anchor_ms: i64,
    pub admit_per_minute: u32,
    pub paused: bool,
    pub sales_start_ms: i64,
    pub config_version: i64,
}

/// Where a new ticket goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePlace {
    /// Before the opening: placed at random at the opening, by this key.
    PreQueue { key: i64 },
    /// After the opening: this place, first come first served.
    At(u64),
}

/// What a buyer sees of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketStatus {
    Waiting {
        /// 1 = next to be admitted. Before the opening: the size of the
        /// pre-queue (every member's place is drawn at the opening).
        position: u64,
        estimated_wait_seconds: u64,
    },
    Admitted {
        admitted_at_ms: i64,
        expires_at_ms: i64,
    },
    Expired,
}

impl RoomState {
    /// A room as it starts: nobody admitted, the frontier anchored at the
    /// opening.
    pub fn new(config: &RoomConfig) -> RoomState {
        RoomState {
            pre_count: 0,
            tail: 0,
            opened: false,
            anchor_place: 0,
            anchor_ms: config.sales_start_ms,
            admit_per_minute: config.admit_per_minute.max(1),
            paused: config.paused,
            sales_start_ms: config.sales_start_ms,
            config_version: config.version,
        }
    }

    /// The highest admitted place at `now_ms`.
    pub fn frontier(&self, now_ms: i64) -> u64 {
        if self.paused || now_ms <= self.anchor_ms {
            return self.anchor_place;
        }
        let elapsed = i128::from(now_ms - self.anchor_ms);
        let advanced = elapsed * i128::from(self.admit_per_minute) / i128::from(MS_PER_MINUTE);
        self.anchor_place
            .saturating_add(u64::try_from(advanced).unwrap_or(u64::MAX))
    }

    /// Takes over a newer configuration; the frontier continues from where it
    /// is (never jumps, never goes back). Returns whether anything changed.
    pub fn apply_config(&mut self, config: &RoomConfig, now_ms: i64) -> bool {
        if config.version <= self.config_version {
            return false;
        }
        if self.opened {
            // Past the last place the frontier means nothing; clamping keeps a
            // pause from admitting whoever joins next.
            self.anchor_place = self.frontier(now_ms).min(self.tail);
            self.anchor_ms = now_ms;
        } else {
            self.anchor_place = 0;
            self.anchor_ms = config.sales_start_ms;
            self.sales_start_ms = config.sales_start_ms;
        }
        self.admit_per_minute = config.admit_per_minute.max(1);
        self.paused = config.paused;
        self.config_version = config.version;
        true
    }

    /// Whether the opening is due: the pre-queue is then ranked and closed.
    pub fn opening_due(&self, now_ms: i64) -> bool {
        !self.opened && now_ms >= self.sales_start_ms
    }

    /// Opens the room (the caller ranks the pre-queue in the same atomic
    /// step). The frontier has been moving since `sales_start`.
    pub fn open(&mut self) {
        self.opened = true;
        self.tail = self.pre_count;
    }

    /// The place of a buyer joining now (the room must have been opened if
    /// due). When the queue has run empty, the frontier is pulled back to
    /// the newcomer so that a quiet hour does not turn into a burst of
    /// admissions later.
    pub fn assign_place(&mut self, now_ms: i64, pre_queue_key: i64) -> QueuePlace {
        if !self.opened {
            self.pre_count += 1;
            return QueuePlace::PreQueue { key: pre_queue_key };
        }
        if !self.paused && self.frontier(now_ms) > self.tail {
            self.anchor_place = self.tail + 1;
            self.anchor_ms = now_ms;
        }
        self.tail += 1;
        QueuePlace::At(self.tail)
    }

    /// Seconds until the frontier passes `position` more places.
    fn wait_seconds(&self, position: u64) -> u64 {
        let per_minute = u128::from(self.admit_per_minute.max(1));
        u64::try_from((u128::from(position) * 60).div_ceil(per_minute)).unwrap_or(u64::MAX)
    }
}

/// Records the admission instant the first time the frontier is seen at or
/// past the ticket's place. Returns whether it did.
pub fn admit_if_due(
    room: &RoomState,
    place: Option<u64>,
    admitted_at_ms: &mut Option<i64>,
    now_ms: i64,
) -> bool {
    match (place, *admitted_at_ms) {
        (Some(place), None) if room.opened && place <= room.frontier(now_ms) => {
            *admitted_at_ms = Some(now_ms);
            true
        }
        _ => false,
    }
}

/// The status of a ticket at `now_ms` (after [`admit_if_due`]).
pub fn ticket_status(
    room: &RoomState,
    place: Option<u64>,
    admitted_at_ms: Option<i64>,
    now_ms: i64,
    admission_ttl_ms: i64,
) -> TicketStatus {
    if let Some(admitted_at_ms) = admitted_at_ms {
        let expires_at_ms = admission_expiry_ms(admitted_at_ms, admission_ttl_ms);
        return if now_ms >= expires_at_ms {
            TicketStatus::Expired
        } else {
            TicketStatus::Admitted {
                admitted_at_ms,
                expires_at_ms,
            }
        };
    }
    match place {
        Some(place) if room.opened => {
            let position = place.saturating_sub(room.frontier(now_ms)).max(1);
            TicketStatus::Waiting {
                position,
                estimated_wait_seconds: room.wait_seconds(position),
            }
        }
        _ => {
            let until_opening =
                u64::try_from((room.sales_start_ms - now_ms).max(0).div_euclid(1000)).unwrap_or(0);
            let position = room.pre_count.max(1);
            TicketStatus::Waiting {
                position,
                estimated_wait_seconds: until_opening.saturating_add(room.wait_seconds(position)),
            }
        }
    }
}

/// Whether a ticket admitted at `admitted_at_ms` has lapsed; the buyer may
/// then join again at the back.
pub fn admission_lapsed(admitted_at_ms: Option<i64>, now_ms: i64, admission_ttl_ms: i64) -> bool {
    admitted_at_ms.is_some_and(|at| now_ms >= admission_expiry_ms(at, admission_ttl_ms))
}

/// When an admission ends: on a whole second, because the admission token's
/// `exp` is in seconds and the ticket and the token must agree.
pub fn admission_expiry_ms(admitted_at_ms: i64, admission_ttl_ms: i64) -> i64 {
    admitted_at_ms
        .saturating_add(admission_ttl_ms)
        .div_euclid(1_000)
        .saturating_mul(1_000)
}

/// A pre-queue key from 64 random bits: uniform and non-negative, in 52
/// bits because Redis scores are doubles and SQL columns signed.
pub fn pre_queue_key(entropy: u64) -> i64 {
    i64::try_from(entropy >> 12).unwrap_or(0)
}

/// The order of the pre-queue at the opening: by key, ties by ticket ID (the
/// same `ORDER BY` as the store's ranking). Returns indexes into `tickets`.
pub fn pre_queue_order<T: AsRef<str>>(tickets: &[(i64, T)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tickets.len()).collect();
    order.sort_by(|&a, &b| {
        tickets[a]
            .0
            .cmp(&tickets[b].0)
            .then_with(|| tickets[a].1.as_ref().cmp(tickets[b].1.as_ref()))
    });
    order
}

#[cfg(test)]
mod tests;
