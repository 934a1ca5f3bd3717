//! The change feed between nodes on PostgreSQL (docs/adr/0010): every
//! transaction that changes a show's inventory sends its `ShowChange` with
//! `pg_notify` as one of its own statements, so PostgreSQL delivers it only
//! on commit and in commit order; every node `LISTEN`s on one connection and
//! hands other nodes' changes to the same listeners as its own commits.
//! SQLite has no such thing: processes sharing a file keep polling versions.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use boxoffice_domain::{HoldId, SeatId, ShowId};
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::AnyConnection;

use crate::changes::{ChangeListener, FeedEvent, SeatChange, ShowChange, StandingHoldChange};
use crate::records::{SeatStatus, StandingState};
use crate::{StoreError, StoreResult};

pub(crate) const CHANNEL: &str = "boxoffice_show_changes";
/// PostgreSQL refuses a payload of 8000 bytes or more; a larger change is
/// sent as "reload the show" instead.
const PAYLOAD_BYTES_MAX: usize = 7_999;
/// Reconnecting starts fast (a lost connection usually comes back at once)
/// and backs off while the database stays away.
const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(100);
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(5);

pub(crate) type Listeners = Arc<RwLock<Vec<Arc<dyn ChangeListener>>>>;
type WeakListeners = Weak<RwLock<Vec<Arc<dyn ChangeListener>>>>;

/// One notification. Keys are spelled out once per message; the repeated
/// parts are arrays, so that a batch of a few hundred seats still fits.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    node: String,
    show: String,
    version: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    reload: bool,
    /// `["A" | "H" | "B", lapses_at in ms or null, [seat, …]]`: the seats
    /// of one hold share their status and time, so a batch of holds costs
    /// little more than its seat IDs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    seats: Vec<(char, Option<i64>, Vec<String>)>,
    /// `[section, category, capacity, held, booked]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    standing: Vec<(String, String, u32, u32, u32)>,
    /// `[hold, section, quantity, lapses_at in ms or null, removed]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    holds: Vec<(String, String, u32, Option<i64>, bool)>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn status_code(status: SeatStatus) -> char {
    match status {
        SeatStatus::Available => 'A',
        SeatStatus::Held => 'H',
        SeatStatus::Booked => 'B',
    }
}

fn status_of(code: char) -> Option<SeatStatus> {
    match code {
        'A' => Some(SeatStatus::Available),
        'H' => Some(SeatStatus::Held),
        'B' => Some(SeatStatus::Booked),
        _ => None,
    }
}

/// Each seat's last state in `seats` (a transaction may free a lapsed hold's
/// seat and hold it again: the last one counts), grouped by state.
fn grouped_seats(seats: &[SeatChange]) -> Vec<(char, Option<i64>, Vec<String>)> {
    let last: HashMap<&SeatId, usize> = seats
        .iter()
        .enumerate()
        .map(|(position, seat)| (&seat.seat_id, position))
        .collect();
    let mut groups: Vec<(char, Option<i64>, Vec<String>)> = Vec::new();
    for (position, seat) in seats.iter().enumerate() {
        if last.get(&seat.seat_id) != Some(&position) {
            continue;
        }
        let key = (
            status_code(seat.status),
            seat.lapses_at.map(|t| t.timestamp_millis()),
        );
        let id = seat.seat_id.as_str().to_string();
        match groups.iter_mut().find(|(c, l, _)| (*c, *l) == key) {
            Some(group) => group.2.push(id),
            None => groups.push((key.0, key.1, vec![id])),
        }
    }
    groups
}

/// The payload for `change`: the change itself, or "reload" when it is too
/// large for a notification.
pub(crate) fn encode(node: &str, change: &ShowChange) -> StoreResult<String> {
    let millis = |time: Option<chrono::DateTime<chrono::Utc>>| time.map(|t| t.timestamp_millis());
    let mut message = Message {
        node: node.to_string(),
        show: change.show_id.as_str().to_string(),
        version: change.version,
        reload: false,
        seats: grouped_seats(&change.seats),
        standing: change
            .standing
            .iter()
            .map(|s| {
                (
                    s.section.clone(),
                    s.category.clone(),
                    s.capacity,
                    s.held,
                    s.booked,
                )
            })
            .collect(),
        holds: change
            .standing_holds
            .iter()
            .map(|h| {
                (
                    h.hold_id.as_str().to_string(),
                    h.section.clone(),
                    h.quantity,
                    millis(h.lapses_at),
                    h.removed,
                )
            })
            .collect(),
    };
    let payload = serde_json::to_string(&message)?;
    if payload.len() <= PAYLOAD_BYTES_MAX {
        return Ok(payload);
    }
    message.reload = true;
    message.seats.clear();
    message.standing.clear();
    message.holds.clear();
    Ok(serde_json::to_string(&message)?)
}

/// Queues `change` for the other nodes; sent when the transaction commits.
pub(crate) async fn notify(
    conn: &mut AnyConnection,
    node: &str,
    change: &ShowChange,
) -> StoreResult<()> {
    let payload = encode(node, change)?;
    // `pg_notify` returns `void`, which the Any driver cannot decode: select
    // a constant from it instead.
    sqlx::query("SELECT 1 AS sent FROM pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What a notification says.
#[derive(Debug, PartialEq)]
pub(crate) enum Decoded {
    Change {
        node: String,
        change: ShowChange,
    },
    Reload {
        node: String,
        show_id: ShowId,
        version: i64,
    },
}

fn bad(what: &str) -> StoreError {
    StoreError::Other(format!("unreadable change notification: {what}"))
}

pub(crate) fn decode(payload: &str) -> StoreResult<Decoded> {
    let message: Message = serde_json::from_str(payload)?;
    let show_id = ShowId::parse(&message.show).map_err(|_| bad("show"))?;
    if message.reload {
        return Ok(Decoded::Reload {
            node: message.node,
            show_id,
            version: message.version,
        });
    }
    let time = |millis: Option<i64>| -> StoreResult<_> {
        millis
            .map(|millis| DateTime::from_timestamp_millis(millis).ok_or_else(|| bad("time")))
            .transpose()
    };
    let mut seats = Vec::new();
    for (code, lapses_at, ids) in message.seats {
        let status = status_of(code).ok_or_else(|| bad("status"))?;
        let lapses_at = time(lapses_at)?;
        for id in ids {
            seats.push(SeatChange {
                seat_id: SeatId::parse(&id).map_err(|_| bad("seat"))?,
                status,
                lapses_at,
            });
        }
    }
    let standing = message
        .standing
        .into_iter()
        .map(
            |(section, category, capacity, held, booked)| StandingState {
                section,
                category,
                capacity,
                held,
                booked,
            },
        )
        .collect();
    let standing_holds = message
        .holds
        .into_iter()
        .map(|(hold, section, quantity, lapses_at, removed)| {
            Ok(StandingHoldChange {
                hold_id: HoldId::parse(&hold).map_err(|_| bad("hold"))?,
                section,
                quantity,
                lapses_at: time(lapses_at)?,
                removed,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Decoded::Change {
        node: message.node,
        change: ShowChange {
            show_id,
            version: message.version,
            seats,
            standing,
            standing_holds,
        },
    })
}

/// Calls `f` on every listener; false once the store is gone.
fn tell(listeners: &WeakListeners, f: impl Fn(&dyn ChangeListener)) -> bool {
    let Some(listeners) = listeners.upgrade() else {
        return false;
    };
    // Copied out so that a listener may take its time without blocking
    // `subscribe_changes`.
    let listeners: Vec<Arc<dyn ChangeListener>> = match listeners.read() {
        Ok(listeners) => listeners.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    for listener in &listeners {
        f(listener.as_ref());
    }
    true
}

fn deliver(listeners: &WeakListeners, node: &str, payload: &str) -> bool {
    match decode(payload) {
        // This node applied its own changes when it committed them; they
        // still prove that the feed delivers.
        Ok(Decoded::Change { node: sender, .. }) | Ok(Decoded::Reload { node: sender, .. })
            if sender == node =>
        {
            tell(listeners, |l| l.on_feed(FeedEvent::Alive))
        }
        Ok(Decoded::Change { change, .. }) => tell(listeners, |l| {
            l.on_feed(FeedEvent::Alive);
            l.on_change(&change);
        }),
        Ok(Decoded::Reload {
            show_id, version, ..
        }) => tell(listeners, |l| {
            l.on_feed(FeedEvent::Alive);
            l.on_feed(FeedEvent::Missed {
                show_id: &show_id,
                version,
            });
        }),
        Err(error) => {
            // A change we cannot read is a change we missed, of some show.
            tracing::warn!(%error, "unreadable change notification: checking every show");
            tell(listeners, |l| {
                l.on_feed(FeedEvent::Lost);
                l.on_feed(FeedEvent::Connected);
            })
        }
    }
}

async fn listen(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    // Reconnecting is done below, with backoff and a `Lost` for the
    // listeners, rather than silently inside `try_recv`.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// The node's listening task. Ends when the store is dropped.
pub(crate) async fn run(url: String, node: String, listeners: WeakListeners) {
    let mut delay = RECONNECT_DELAY_MIN;
    loop {
        match listen(&url).await {
            Ok(mut listener) => {
                delay = RECONNECT_DELAY_MIN;
                tracing::info!(node = %node, "listening to the other nodes' changes");
                if !tell(&listeners, |l| l.on_feed(FeedEvent::Connected)) {
                    return;
                }
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            if !deliver(&listeners, &node, notification.payload()) {
                                return;
                            }
                        }
                        Ok(None) => {
                            tracing::warn!("change feed connection lost; reconnecting");
                            break;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "change feed failed; reconnecting");
                            break;
                        }
                    }
                }
                if !tell(&listeners, |l| l.on_feed(FeedEvent::Lost)) {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?delay, "cannot listen to the change feed");
                if listeners.strong_count() == 0 {
                    return;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RECONNECT_DELAY_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn change(seats: usize) -> ShowChange {
        let lapses_at = DateTime::from_timestamp_millis(1_800_000_000_123);
        ShowChange {
            show_id: ShowId::generate(1, 2),
            version: 42,
            seats: (0..seats)
                .map(|n| SeatChange {
                    seat_id: SeatId::new(
                        "A",
                        &(n / 100 + 1).to_string(),
                        &(n % 100 + 1).to_string(),
                    )
                    .unwrap(),
                    status: [SeatStatus::Held, SeatStatus::Booked, SeatStatus::Available][n % 3],
                    lapses_at: if n % 3 == 0 { lapses_at } else { None },
                })
                .collect(),
            standing: vec![StandingState {
                section: "FLOOR".into(),
                category: "ga".into(),
                capacity: 100,
                held: 7,
                booked: 3,
            }],
            standing_holds: vec![StandingHoldChange {
                hold_id: HoldId::generate(3, 4),
                section: "FLOOR".into(),
                quantity: 2,
                lapses_at: Some(Utc::now()),
                removed: false,
            }],
        }
    }

    #[test]
    fn a_change_survives_the_round_trip() {
        let mut sent = change(6);
        // Grouped by state on the wire: compare in that order.
        sent.seats.sort_by_key(|seat| seat.status.as_str());
        // Notifications carry milliseconds, like the database.
        for hold in &mut sent.standing_holds {
            hold.lapses_at = hold
                .lapses_at
                .and_then(|t| DateTime::from_timestamp_millis(t.timestamp_millis()));
        }
        let payload = encode("node-1", &sent).unwrap();
        assert_eq!(
            decode(&payload).unwrap(),
            Decoded::Change {
                node: "node-1".into(),
                change: sent
            }
        );
    }

    #[test]
    fn a_seat_changed_twice_in_one_transaction_keeps_its_last_state() {
        let mut sent = change(0);
        let seat = SeatId::parse("A-1-1").unwrap();
        for status in [SeatStatus::Available, SeatStatus::Booked] {
            sent.seats.push(SeatChange {
                seat_id: seat.clone(),
                status,
                lapses_at: None,
            });
        }
        let Decoded::Change { change, .. } = decode(&encode("n", &sent).unwrap()).unwrap() else {
            panic!("a change");
        };
        assert_eq!(change.seats.len(), 1);
        assert_eq!(change.seats[0].status, SeatStatus::Booked);
    }

    #[test]
    fn a_change_too_large_for_a_notification_becomes_a_reload() {
        // A batch of 256 holds of two seats each still fits.
        let fits = encode("n", &change(512)).unwrap();
        assert!(fits.len() <= PAYLOAD_BYTES_MAX, "{}", fits.len());
        assert!(matches!(decode(&fits).unwrap(), Decoded::Change { .. }));
        let large = change(2_000);
        let payload = encode("n", &large).unwrap();
        assert!(payload.len() < 200, "{payload}");
        assert_eq!(
            decode(&payload).unwrap(),
            Decoded::Reload {
                node: "n".into(),
                show_id: large.show_id,
                version: 42
            }
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for payload in [
            "",
            "{}",
            r#"{"node":"n","show":"nope","version":1}"#,
            r#"{"node":"n","show":"SHW","version":1,"seats":[["X",null,["A-1-1"]]]}"#,
        ] {
            assert!(decode(payload).is_err(), "{payload}");
        }
    }
}
