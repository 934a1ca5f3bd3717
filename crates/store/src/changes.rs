//! The change feed of show inventories: every write transaction that touches
//! places records what it changed, bumps each touched show's version once,
//! and, after the commit, hands the changes to the node's listeners (the
//! in-memory inventory, later the seat-map streams). Values are absolute (a
//! seat's new status, a section's new counters), so applying a change twice
//! is harmless; versions give the order.

use std::collections::{BTreeMap, BTreeSet};

use boxoffice_domain::{HoldId, SeatId, ShowId};
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use crate::records::{HoldItems, SeatStatus, StandingState};
use crate::StoreResult;

/// One seat's new state. `lapses_at` is when a `HELD` seat counts as free
/// again; `None` for a hold that is paying (it never lapses) and for seats
/// that are not held.
#[derive(Debug, Clone, PartialEq)]
pub struct SeatChange {
    pub seat_id: SeatId,
    pub status: SeatStatus,
    pub lapses_at: Option<DateTime<Utc>>,
}

/// A hold's standing places, so that readers can count them as free once the
/// hold lapses. `removed` when the hold ended (released, expired, booked).
#[derive(Debug, Clone, PartialEq)]
pub struct StandingHoldChange {
    pub hold_id: HoldId,
    pub section: String,
    pub quantity: u32,
    pub lapses_at: Option<DateTime<Utc>>,
    pub removed: bool,
}

/// Everything one transaction changed in one show, at the version it wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowChange {
    pub show_id: ShowId,
    pub version: i64,
    pub seats: Vec<SeatChange>,
    /// Absolute counters of every standing section the transaction touched.
    pub standing: Vec<StandingState>,
    pub standing_holds: Vec<StandingHoldChange>,
}

/// A show's whole inventory at one version, for (re)loading a reader.
#[derive(Debug, Clone)]
pub struct InventorySnapshot {
    pub version: i64,
    pub seats: Vec<SeatChange>,
    pub standing: Vec<StandingState>,
    /// Live (ACTIVE or PAYING) holds with standing places.
    pub standing_holds: Vec<StandingHoldChange>,
}

/// What the change feed from other nodes (PostgreSQL `LISTEN`) reports
/// besides changes. See docs/adr/0010-postgres-change-feed.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedEvent<'a> {
    /// Listening: every change committed from now on will arrive, in commit
    /// order.
    Connected,
    /// The connection was lost (or a notification was unreadable): changes
    /// may have been missed, so every show must be checked again.
    Lost,
    /// A notification arrived (this node's own ones included): the feed
    /// delivers.
    Alive,
    /// Another node committed `version` of the show but its change was too
    /// large to carry: the show must be reloaded.
    Missed { show_id: &'a ShowId, version: i64 },
}

/// Receives committed changes: synchronously on the node that made them,
/// and, on PostgreSQL, from the other nodes through the change feed.
pub trait ChangeListener: Send + Sync {
    fn on_change(&self, change: &ShowChange);

    /// Only called on PostgreSQL, from the feed's task.
    fn on_feed(&self, _event: FeedEvent<'_>) {}
}

#[derive(Default)]
struct PendingChange {
    seats: Vec<SeatChange>,
    sections: BTreeSet<String>,
    standing_holds: Vec<StandingHoldChange>,
}

/// Collects the changes of one transaction.
#[derive(Default)]
pub(crate) struct ChangeLog {
    shows: BTreeMap<ShowId, PendingChange>,
}

impl ChangeLog {
    fn show(&mut self, show_id: &ShowId) -> &mut PendingChange {
        self.shows.entry(show_id.clone()).or_default()
    }

    /// The places of `items` are now held by `hold_id` until `lapses_at`
    /// (`None`: paying, never lapses).
    pub(crate) fn held(
        &mut self,
        show_id: &ShowId,
        hold_id: &HoldId,
        items: &HoldItems,
        lapses_at: Option<DateTime<Utc>>,
        counters_changed: bool,
    ) {
        let change = self.show(show_id);
        for seat in &items.seats {
            change.seats.push(SeatChange {
                seat_id: seat.seat_id.clone(),
                status: SeatStatus::Held,
                lapses_at,
            });
        }
        for place in &items.standing {
            if counters_changed {
                change.sections.insert(place.section.clone());
            }
            change.standing_holds.push(StandingHoldChange {
                hold_id: hold_id.clone(),
                section: place.section.clone(),
                quantity: place.quantity,
                lapses_at,
                removed: false,
            });
        }
    }

    /// The hold ended: its places moved to `status` (AVAILABLE or BOOKED).
    pub(crate) fn hold_ended(
        &mut self,
        show_id: &ShowId,
        hold_id: &HoldId,
        items: &HoldItems,
        status: SeatStatus,
    ) {
        let change = self.show(show_id);
        for seat in &items.seats {
            change.seats.push(SeatChange {
                seat_id: seat.seat_id.clone(),
                status,
                lapses_at: None,
            });
        }
        for place in &items.standing {
            change.sections.insert(place.section.clone());
            change.standing_holds.push(StandingHoldChange {
                hold_id: hold_id.clone(),
                section: place.section.clone(),
                quantity: place.quantity,
                lapses_at: None,
                removed: true,
            });
        }
    }

    /// A booking was cancelled: its places are on sale again.
    pub(crate) fn booking_cancelled(&mut self, show_id: &ShowId, items: &HoldItems) {
        let change = self.show(show_id);
        for seat in &items.seats {
            change.seats.push(SeatChange {
                seat_id: seat.seat_id.clone(),
                status: SeatStatus::Available,
                lapses_at: None,
            });
        }
        for place in &items.standing {
            change.sections.insert(place.section.clone());
        }
    }

    /// Bumps the version of every touched show (in show-ID order, so that
    /// transactions never wait on each other's show rows in a cycle) and reads
    /// back the touched standing counters. Runs last in the transaction.
    /// With `feed_node` (PostgreSQL) each change is also sent to the other
    /// nodes by `pg_notify`, which PostgreSQL delivers on commit, in commit
    /// order, and never for a rolled-back attempt.
    pub(crate) async fn finish(
        self,
        conn: &mut AnyConnection,
        feed_node: Option<&str>,
    ) -> StoreResult<Vec<ShowChange>> {
        let mut changes = Vec::with_capacity(self.shows.len());
        for (show_id, pending) in self.shows {
            let version: i64 = sqlx::query(
                "UPDATE shows SET version = version + 1 WHERE id = $1 RETURNING version",
            )
            .bind(show_id.as_str())
            .fetch_one(&mut *conn)
            .await?
            .try_get("version")?;
            let mut standing = Vec::with_capacity(pending.sections.len());
            for section in &pending.sections {
                let row = sqlx::query(
                    "SELECT section, category, capacity, held, booked FROM show_standing WHERE show_id = $1 AND section = $2",
                )
                .bind(show_id.as_str())
                .bind(section.as_str())
                .fetch_one(&mut *conn)
                .await?;
                standing.push(crate::bookings::standing_from_row(&row)?);
            }
            changes.push(ShowChange {
                show_id,
                version,
                seats: pending.seats,
                standing,
                standing_holds: pending.standing_holds,
            });
        }
        if let Some(node) = feed_node {
            for change in &changes {
                crate::feed::notify(conn, node, change).await?;
            }
        }
        Ok(changes)
    }
}
