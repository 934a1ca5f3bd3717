//! Tickets as documents: a code as a QR image, a booking's tickets as a PDF.

pub mod pdf;
pub mod qr_png;

use boxoffice_domain::TicketId;

use crate::auth::AuthUser;
use crate::booking::BookingService;
use crate::catalog::CatalogService;
use crate::error::{ServiceError, ServiceResult};
use pdf::{tickets_pdf, TicketPage};

/// `GET /v1/tickets/{id}/qr.png`: the ticket's code as a QR image, for its
/// booking's owner or an admin (anyone else: not found).
pub async fn ticket_qr_png(
    booking: &BookingService,
    caller: &AuthUser,
    ticket_id: &str,
) -> ServiceResult<Vec<u8>> {
    let not_found = || ServiceError::NotFound { what: "ticket" };
    let id = TicketId::parse(ticket_id).map_err(|_| not_found())?;
    let record = booking.booking_of_ticket(caller, &id).await?;
    let ticket = record
        .tickets
        .iter()
        .find(|ticket| ticket.id == id)
        .ok_or_else(not_found)?;
    qr_png::qr_png(&ticket.code).map_err(|error| ServiceError::Internal(error.to_string()))
}

/// `GET /v1/bookings/{id}/tickets.pdf`: one page per ticket.
pub async fn booking_tickets_pdf(
    booking: &BookingService,
    catalog: &CatalogService,
    caller: &AuthUser,
    booking_id: &str,
) -> ServiceResult<Vec<u8>> {
    let record = booking.owned_booking_record(caller, booking_id).await?;
    let show = catalog.show(record.show_id.as_str()).await?;
    let when = crate::display::display_time_rfc3339(&show.starts_at);
    let cancelled = record.status == boxoffice_domain::BookingStatus::Cancelled;
    let pages: Vec<TicketPage> = record
        .tickets
        .iter()
        .map(|ticket| TicketPage {
            heading: show.event.title.clone(),
            lines: vec![
                when.clone(),
                format!(
                    "{}, {}, {}",
                    show.venue.name, show.venue.address, show.venue.city
                ),
                match &ticket.seat_id {
                    Some(seat) => format!("Seat {seat}"),
                    None => format!("Standing, {}", ticket.section),
                },
                format!(
                    "Booking {}{}",
                    record.id,
                    if cancelled {
                        " - CANCELLED, not valid"
                    } else {
                        ""
                    }
                ),
            ],
            code: ticket.code.clone(),
        })
        .collect();
    tickets_pdf(&pages).map_err(|error| ServiceError::Internal(error.to_string()))
}
