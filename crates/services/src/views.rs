//! The JSON shapes of API.md that use cases return. They are built here, not
//! in the http crate, because idempotent responses are stored in the same
//! transaction as the effect they describe.

use boxoffice_domain::Money;
use boxoffice_store::{BookingRecord, HoldRecord, TicketStatus};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// RFC 3339 in UTC with a `Z`, as API.md writes times.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub fn rfc3339_opt(time: Option<DateTime<Utc>>) -> Option<String> {
    time.map(rfc3339)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MoneyView {
    /// Integer minor units (cents).
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

impl From<&Money> for MoneyView {
    fn from(money: &Money) -> Self {
        MoneyView {
            amount: money.amount,
            currency: money.currency.as_str().to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldSeatView {
    pub id: String,
    pub section: String,
    pub category: String,
    pub price: MoneyView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldStandingView {
    pub section: String,
    pub category: String,
    pub quantity: u32,
    pub unit_price: MoneyView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HoldView {
    pub id: String,
    pub show_id: String,
    /// `ACTIVE`, `PAYING`, `CONFIRMED`, `RELEASED` or `EXPIRED`.
    pub status: String,
    pub seats: Vec<HeldSeatView>,
    pub standing: Vec<HeldStandingView>,
    pub total: MoneyView,
    pub expires_at: String,
    pub expires_in_seconds: i64,
    pub booking_id: Option<String>,
    pub created_at: String,
}

fn seat_views(items: &boxoffice_store::HoldItems) -> (Vec<HeldSeatView>, Vec<HeldStandingView>) {
    let seats = items
        .seats
        .iter()
        .map(|seat| HeldSeatView {
            id: seat.seat_id.to_string(),
            section: seat.section.clone(),
            category: seat.category.clone(),
            price: MoneyView::from(&seat.price),
        })
        .collect();
    let standing = items
        .standing
        .iter()
        .map(|place| HeldStandingView {
            section: place.section.clone(),
            category: place.category.clone(),
            quantity: place.quantity,
            unit_price: MoneyView::from(&place.unit_price),
        })
        .collect();
    (seats, standing)
}

impl HoldView {
    pub fn of(hold: &HoldRecord, now: DateTime<Utc>) -> HoldView {
        let (seats, standing) = seat_views(&hold.items);
        // A hold whose time is up reads as EXPIRED even before the sweeper runs.
        let status =
            if hold.status == boxoffice_domain::HoldStatus::Active && hold.expires_at <= now {
                "EXPIRED".to_string()
            } else {
                hold.status.as_str().to_string()
            };
        HoldView {
            id: hold.id.to_string(),
            show_id: hold.show_id.to_string(),
            status,
            seats,
            standing,
            total: MoneyView::from(&hold.total),
            expires_at: rfc3339(hold.expires_at),
            expires_in_seconds: (hold.expires_at - now).num_seconds().max(0),
            booking_id: hold.booking_id.as_ref().map(|id| id.to_string()),
            created_at: rfc3339(hold.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketView {
    pub id: String,
    /// Null for a standing place.
    pub seat_id: Option<String>,
    pub section: String,
    /// The signed code to show at the door (also as a QR code).
    pub code: String,
    /// `VALID` or `CANCELLED`.
    pub status: String,
    pub checked_in_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BookingView {
    pub id: String,
    /// `CONFIRMED` or `CANCELLED`.
    pub status: String,
    pub hold_id: String,
    pub show_id: String,
    pub user_id: String,
    pub seats: Vec<HeldSeatView>,
    pub standing: Vec<HeldStandingView>,
    pub total: MoneyView,
    pub tickets: Vec<TicketView>,
    pub created_at: String,
    pub cancelled_at: Option<String>,
}

impl BookingView {
    pub fn of(booking: &BookingRecord) -> BookingView {
        let (seats, standing) = seat_views(&booking.items);
        BookingView {
            id: booking.id.to_string(),
            status: booking.status.as_str().to_string(),
            hold_id: booking.hold_id.to_string(),
            show_id: booking.show_id.to_string(),
            user_id: booking.user_id.to_string(),
            seats,
            standing,
            total: MoneyView::from(&booking.total),
            tickets: booking
                .tickets
                .iter()
                .map(|ticket| TicketView {
                    id: ticket.id.to_string(),
                    seat_id: ticket.seat_id.as_ref().map(|id| id.to_string()),
                    section: ticket.section.clone(),
                    code: ticket.code.clone(),
                    status: match ticket.status {
                        TicketStatus::Valid => "VALID".into(),
                        TicketStatus::Cancelled => "CANCELLED".into(),
                    },
                    checked_in_at: rfc3339_opt(ticket.checked_in_at),
                })
                .collect(),
            created_at: rfc3339(booking.created_at),
            cancelled_at: rfc3339_opt(booking.cancelled_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckinView {
    pub ticket_id: String,
    pub booking_id: String,
    pub show_id: String,
    pub seat_id: Option<String>,
    pub section: String,
    pub checked_in_at: String,
}
