//! The waiting room in Redis (`REDIS_URL` set): the same rules as the
//! domain's `waiting_room` module and the SQL adapter, in Lua scripts so that
//! each step is atomic across nodes. Keys of one show share a hash tag
//! (`{shw_…}`) so that a Redis Cluster keeps them on one shard:
//! - `bo:wr:{show}:room`    hash: the admission clock (`RoomState`);
//! - `bo:wr:{show}:users`   hash: user → their latest ticket;
//! - `bo:wr:{show}:tickets` hash: ticket → `user|place|joined_ms|admitted_ms`;
//! - `bo:wr:{show}:pre`     sorted set: pre-queue tickets by random key (a
//!   pre-queue ticket's place is its rank once the room has opened; ties are
//!   broken by ticket ID, as in SQL).
//!
//! A test in `tests/redis_waiting_room.rs` runs these scripts and the domain
//! side by side on random histories.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use boxoffice_domain::waiting_room::{RoomConfig, RoomState};
use boxoffice_domain::{QueueTicketId, ShowId, UserId};
use boxoffice_store::{
    QueueJoin, QueueJoinOutcome, QueueSnapshot, QueueStore, QueueTicketRecord, StoreError,
    StoreResult,
};

/// Every Redis call is bounded; a queue that cannot reach Redis answers 503.
const REDIS_CALL_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Queue keys outlive any sale; they go a while after the last join.
const QUEUE_KEYS_TTL_MS: i64 = 30 * 24 * 3_600 * 1_000;

/// Shared by both scripts. KEYS: room, users, tickets, pre.
/// ARGV: now, rate, paused, sales_start, version, admission_ttl, …
const PRELUDE: &str = r"
local now = tonumber(ARGV[1])
local cfg_rate = math.max(tonumber(ARGV[2]), 1)
local cfg_paused = tonumber(ARGV[3])
local cfg_start = tonumber(ARGV[4])
local cfg_version = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])

local function load_room()
  local f = redis.call('HMGET', KEYS[1], 'pre', 'tail', 'opened', 'ap', 'ams', 'rate', 'paused', 'start', 'ver')
  if not f[1] then
    return {pre = 0, tail = 0, opened = 0, ap = 0, ams = cfg_start, rate = cfg_rate,
            paused = cfg_paused, start = cfg_start, ver = cfg_version}, true
  end
  return {pre = tonumber(f[1]), tail = tonumber(f[2]), opened = tonumber(f[3]), ap = tonumber(f[4]),
          ams = tonumber(f[5]), rate = tonumber(f[6]), paused = tonumber(f[7]), start = tonumber(f[8]),
          ver = tonumber(f[9])}, false
end

local function save_room(r)
  redis.call('HSET', KEYS[1], 'pre', r.pre, 'tail', r.tail, 'opened', r.opened, 'ap', r.ap,
             'ams', r.ams, 'rate', r.rate, 'paused', r.paused, 'start', r.start, 'ver', r.ver)
end

-- Integer arithmetic on doubles: exact below 2^53.
local function frontier(r)
  if r.paused == 1 or now <= r.ams then return r.ap end
  local scaled = (now - r.ams) * r.rate
  return r.ap + (scaled - scaled % 60000) / 60000
end

local function settle_room(r)
  local changed = false
  if cfg_version > r.ver then
    if r.opened == 1 then
      r.ap = math.min(frontier(r), r.tail)
      r.ams = now
    else
      r.ap = 0
      r.ams = cfg_start
      r.start = cfg_start
    end
    r.rate = cfg_rate
    r.paused = cfg_paused
    r.ver = cfg_version
    changed = true
  end
  if r.opened == 0 and now >= r.start then
    r.opened = 1
    r.tail = r.pre
    changed = true
  end
  return changed
end

local function load_ticket(id)
  local raw = redis.call('HGET', KEYS[3], id)
  if not raw then return nil end
  local user, place, joined, admitted = string.match(raw, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  return {id = id, user = user, place = tonumber(place), joined = tonumber(joined), admitted = tonumber(admitted)}
end

local function save_ticket(t)
  redis.call('HSET', KEYS[3], t.id, t.user .. '|' .. (t.place or '') .. '|' .. t.joined .. '|' .. (t.admitted or ''))
end

-- A pre-queue ticket's place is its rank once the room is open; the first
-- admission is recorded once. Returns whether the ticket changed.
local function settle_ticket(r, t)
  local changed = false
  if not t.place and r.opened == 1 then
    local rank = redis.call('ZRANK', KEYS[4], t.id)
    if rank then
      t.place = rank + 1
      changed = true
    end
  end
  if not t.admitted and t.place and r.opened == 1 and t.place <= frontier(r) then
    t.admitted = now
    changed = true
  end
  return changed
end

local function answer(outcome, r, t)
  return {outcome, r.pre, r.tail, r.opened, r.ap, r.ams, r.rate, r.paused, r.start, r.ver,
          t.id, t.user, t.place or -1, t.joined, t.admitted or -1}
end

local function touch()
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, tonumber(ARGV[7])) end
end
";

/// ARGV[8] user, ARGV[9] new ticket ID, ARGV[10] pre-queue key.
const JOIN_BODY: &str = r"
local user, new_id, key = ARGV[8], ARGV[9], tonumber(ARGV[10])
local r = load_room()
local room_changed = settle_room(r)
local existing_id = redis.call('HGET', KEYS[2], user)
if existing_id then
  local t = load_ticket(existing_id)
  -- An admission ends on a whole second (domain: admission_expiry_ms).
  local expiry = t and t.admitted and (t.admitted + ttl - (t.admitted + ttl) % 1000)
  if t and (not t.admitted or now < expiry) then
    if settle_ticket(r, t) then save_ticket(t) end
    if room_changed then save_room(r) end
    return answer(0, r, t)
  end
end
local t = {id = new_id, user = user, place = nil, joined = now, admitted = nil}
if r.opened == 0 then
  r.pre = r.pre + 1
  redis.call('ZADD', KEYS[4], key, new_id)
else
  if r.paused == 0 and frontier(r) > r.tail then
    r.ap = r.tail + 1
    r.ams = now
  end
  r.tail = r.tail + 1
  t.place = r.tail
end
settle_ticket(r, t)
save_ticket(t)
redis.call('HSET', KEYS[2], user, new_id)
save_room(r)
touch()
return answer(1, r, t)
";

/// ARGV[8] ticket ID.
const TICKET_BODY: &str = r"
local t = load_ticket(ARGV[8])
if not t then return false end
local r = load_room()
if settle_room(r) then save_room(r) end
if settle_ticket(r, t) then save_ticket(t) end
return answer(0, r, t)
";

const CONFIGURE_BODY: &str = r"
local r = load_room()
settle_room(r)
save_room(r)
touch()
return 1
";

/// KEYS: the challenge key. ARGV: expiry in ms since the epoch.
const SPEND_SCRIPT: &str = r"
if redis.call('SET', KEYS[1], '1', 'NX', 'PXAT', ARGV[1]) then return 1 end
return 0
";

pub struct RedisQueueStore {
    connection: redis::aio::ConnectionManager,
    join_script: redis::Script,
    ticket_script: redis::Script,
    configure_script: redis::Script,
    spend_script: redis::Script,
    shown_url: String,
}

impl fmt::Debug for RedisQueueStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueueStore")
            .field("url", &self.shown_url)
            .finish()
    }
}

fn unavailable(error: impl fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("redis (waiting room): {error}"))
}

fn keys(show_id: &ShowId) -> [String; 4] {
    let tag = format!("bo:wr:{{{show_id}}}");
    [
        format!("{tag}:room"),
        format!("{tag}:users"),
        format!("{tag}:tickets"),
        format!("{tag}:pre"),
    ]
}

fn integer(values: &[redis::Value], index: usize) -> StoreResult<i64> {
    match values.get(index) {
        Some(redis::Value::Int(value)) => Ok(*value),
        other => Err(StoreError::Other(format!(
            "the waiting-room script answered {other:?} at {index}"
        ))),
    }
}

fn text(values: &[redis::Value], index: usize) -> StoreResult<String> {
    match values.get(index) {
        Some(redis::Value::BulkString(bytes)) => String::from_utf8(bytes.clone())
            .map_err(|_| StoreError::Other("the waiting-room script answered non-UTF-8".into())),
        other => Err(StoreError::Other(format!(
            "the waiting-room script answered {other:?} at {index}"
        ))),
    }
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Reads `answer(outcome, room, ticket)` of the scripts.
fn snapshot(show_id: &ShowId, values: &[redis::Value]) -> StoreResult<(bool, QueueSnapshot)> {
    let room = RoomState {
        pre_count: count(integer(values, 1)?),
        tail: count(integer(values, 2)?),
        opened: integer(values, 3)? == 1,
        anchor_place: count(integer(values, 4)?),
        anchor_ms: integer(values, 5)?,
        admit_per_minute: u32::try_from(integer(values, 6)?).unwrap_or(1).max(1),
        paused: integer(values, 7)? == 1,
        sales_start_ms: integer(values, 8)?,
        config_version: integer(values, 9)?,
    };
    let place = integer(values, 12)?;
    let admitted = integer(values, 14)?;
    let ticket = QueueTicketRecord {
        id: QueueTicketId::from_trusted(text(values, 10)?),
        show_id: show_id.clone(),
        user_id: UserId::from_trusted(text(values, 11)?),
        place: (place >= 0).then(|| count(place)),
        joined_at_ms: integer(values, 13)?,
        admitted_at_ms: (admitted >= 0).then_some(admitted),
    };
    Ok((integer(values, 0)? == 1, QueueSnapshot { room, ticket }))
}

impl RedisQueueStore {
    /// Prepares a lazy connection (see `RedisSeatLocks::new`).
    pub fn new(url: &str, shown_url: &str) -> Result<RedisQueueStore, StoreError> {
        let connection = crate::redis_connection::lazy_connection(url, REDIS_CALL_TIMEOUT)
            .map_err(unavailable)?;
        Ok(RedisQueueStore {
            connection,
            join_script: redis::Script::new(&format!("{PRELUDE}{JOIN_BODY}")),
            ticket_script: redis::Script::new(&format!("{PRELUDE}{TICKET_BODY}")),
            configure_script: redis::Script::new(&format!("{PRELUDE}{CONFIGURE_BODY}")),
            spend_script: redis::Script::new(SPEND_SCRIPT),
            shown_url: shown_url.to_string(),
        })
    }

    fn invocation<'a>(
        script: &'a redis::Script,
        show_id: &ShowId,
        config: &RoomConfig,
        now_ms: i64,
        admission_ttl_ms: i64,
    ) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for key in keys(show_id) {
            invocation.key(key);
        }
        invocation
            .arg(now_ms)
            .arg(config.admit_per_minute)
            .arg(i64::from(config.paused))
            .arg(config.sales_start_ms)
            .arg(config.version)
            .arg(admission_ttl_ms)
            .arg(QUEUE_KEYS_TTL_MS);
        invocation
    }

    async fn bounded<T>(
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> StoreResult<T> {
        match tokio::time::timeout(REDIS_CALL_TIMEOUT, call).await {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(unavailable(format!(
                "no answer within {REDIS_CALL_TIMEOUT:?}"
            ))),
        }
    }
}

#[async_trait]
impl QueueStore for RedisQueueStore {
    async fn join_queue(&self, join: &QueueJoin<'_>) -> StoreResult<QueueJoinOutcome> {
        let mut invocation = Self::invocation(
            &self.join_script,
            join.show_id,
            &join.config,
            join.now_ms,
            join.admission_ttl_ms,
        );
        invocation
            .arg(join.user_id.as_str())
            .arg(join.new_ticket_id.as_str())
            .arg(join.pre_queue_key);
        let mut connection = self.connection.clone();
        let values: Vec<redis::Value> =
            Self::bounded(invocation.invoke_async(&mut connection)).await?;
        let (joined, snapshot) = snapshot(join.show_id, &values)?;
        Ok(if joined {
            QueueJoinOutcome::Joined(snapshot)
        } else {
            QueueJoinOutcome::Existing(snapshot)
        })
    }

    async fn queue_ticket(
        &self,
        show_id: &ShowId,
        ticket_id: &QueueTicketId,
        config: &RoomConfig,
        now_ms: i64,
    ) -> StoreResult<Option<QueueSnapshot>> {
        // The admission TTL plays no part in reading a ticket.
        let mut invocation = Self::invocation(&self.ticket_script, show_id, config, now_ms, 0);
        invocation.arg(ticket_id.as_str());
        let mut connection = self.connection.clone();
        let values: Option<Vec<redis::Value>> =
            Self::bounded(invocation.invoke_async(&mut connection)).await?;
        match values {
            Some(values) => Ok(Some(snapshot(show_id, &values)?.1)),
            None => Ok(None),
        }
    }

    async fn configure_queue(
        &self,
        show_id: &ShowId,
        config: &RoomConfig,
        now_ms: i64,
    ) -> StoreResult<()> {
        let invocation = Self::invocation(&self.configure_script, show_id, config, now_ms, 0);
        let mut connection = self.connection.clone();
        let _: i64 = Self::bounded(invocation.invoke_async(&mut connection)).await?;
        Ok(())
    }

    async fn spend_challenge(
        &self,
        challenge_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut invocation = self.spend_script.prepare_invoke();
        invocation
            .key(format!("bo:pow:{challenge_id}"))
            .arg(expires_at_ms.max(now_ms + 1));
        let mut connection = self.connection.clone();
        let spent: i64 = Self::bounded(invocation.invoke_async(&mut connection)).await?;
        Ok(spent == 1)
    }
}
