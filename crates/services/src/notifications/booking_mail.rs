//! The e-mails about a booking: the confirmation with its tickets (QR codes
//! as inline PNG images, a calendar entry) and the cancellation.

use boxoffice_store::{BookingRecord, UserRecord};
use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use super::ics::{calendar, CalendarEntry};
use crate::catalog::ShowView;
use crate::display::{display_money, display_time};
use crate::tickets::qr_png::qr_png;

/// What a booking e-mail is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingMailKind {
    Confirmed,
    Cancelled,
}

pub struct BookingMail<'a> {
    pub kind: BookingMailKind,
    pub event_id: &'a str,
    pub booking: &'a BookingRecord,
    pub user: &'a UserRecord,
    pub show: &'a ShowView,
    pub from: &'a Mailbox,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot compose the e-mail: {0}")]
pub struct ComposeError(pub String);

fn compose_error(error: impl std::fmt::Display) -> ComposeError {
    ComposeError(error.to_string())
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn place_of(ticket: &boxoffice_store::TicketRecord) -> String {
    match &ticket.seat_id {
        Some(seat) => format!("Seat {seat}"),
        None => format!("Standing, {}", ticket.section),
    }
}

impl BookingMail<'_> {
    /// The `Message-ID`: one per event, so a redelivery is recognisably the
    /// same message and consumers can drop duplicates.
    pub fn message_id(&self) -> String {
        format!("<{}@boxoffice>", self.event_id)
    }

    pub fn compose(&self, now: DateTime<Utc>) -> Result<Message, ComposeError> {
        let to = Mailbox::new(
            Some(self.user.name.clone()),
            self.user.email.parse().map_err(compose_error)?,
        );
        let title = &self.show.event.title;
        let starts = DateTime::parse_from_rfc3339(&self.show.starts_at)
            .map(|time| time.with_timezone(&Utc))
            .map_err(compose_error)?;
        let when = display_time(starts);
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .message_id(Some(self.message_id()));
        match self.kind {
            BookingMailKind::Confirmed => builder
                .subject(format!("Your tickets: {title}, {when}"))
                .multipart(self.confirmation(&when, starts, now)?)
                .map_err(compose_error),
            BookingMailKind::Cancelled => builder
                .subject(format!("Booking cancelled: {title}, {when}"))
                .singlepart(SinglePart::plain(format!(
                    "Hello {},\n\nyour booking {} for {title} on {when} is cancelled. {} goes back to your card; it can take a few days to show.\n\nboxoffice\n",
                    self.user.name,
                    self.booking.id,
                    display_money(self.booking.total.amount, self.booking.total.currency.as_str()),
                )))
                .map_err(compose_error),
        }
    }

    fn confirmation(
        &self,
        when: &str,
        starts: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<MultiPart, ComposeError> {
        let show = self.show;
        let venue = format!(
            "{}, {}, {}",
            show.venue.name, show.venue.address, show.venue.city
        );
        let total = display_money(
            self.booking.total.amount,
            self.booking.total.currency.as_str(),
        );
        let mut text = format!(
            "Hello {},\n\nyou're going to {} on {when} at {venue}.\nBooking {} — {total}\n\n",
            self.user.name, show.event.title, self.booking.id
        );
        let mut html = format!(
            "<p>Hello {},</p><p>you're going to <b>{}</b> on {when} at {}.</p><p>Booking {} — {total}</p>",
            html_escape(&self.user.name),
            html_escape(&show.event.title),
            html_escape(&venue),
            self.booking.id
        );
        let mut related = MultiPart::related().build();
        let mut images = Vec::new();
        for ticket in &self.booking.tickets {
            let place = place_of(ticket);
            text.push_str(&format!("{place}: {}\n", ticket.code));
            html.push_str(&format!(
                "<div><h3>{}</h3><img src=\"cid:{}\" alt=\"QR code of {}\" width=\"220\" height=\"220\"><p><code>{}</code></p></div>",
                html_escape(&place),
                ticket.id,
                html_escape(&place),
                html_escape(&ticket.code)
            ));
            let png = qr_png(&ticket.code).map_err(compose_error)?;
            images.push(
                Attachment::new_inline(ticket.id.to_string())
                    .body(png, ContentType::parse("image/png").map_err(compose_error)?),
            );
        }
        text.push_str("\nShow a ticket's code at the door; each one admits one person once.\n");
        html.push_str("<p>Show a ticket's code at the door; each one admits one person once.</p>");
        related = related.multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::plain(text))
                .singlepart(SinglePart::html(html)),
        );
        for image in images {
            related = related.singlepart(image);
        }
        let uid = format!("{}@boxoffice", self.booking.id);
        let description = format!(
            "Booking {}, {} tickets",
            self.booking.id,
            self.booking.tickets.len()
        );
        let ics = calendar(
            &CalendarEntry {
                uid: &uid,
                starts_at: starts,
                summary: &show.event.title,
                location: &venue,
                description: &description,
            },
            now,
        );
        let calendar_type = ContentType::parse("text/calendar; charset=utf-8; method=PUBLISH")
            .map_err(compose_error)?;
        Ok(MultiPart::mixed()
            .multipart(related)
            .singlepart(Attachment::new("show.ics".to_string()).body(ics, calendar_type)))
    }
}
