//! The buyer is told when a payment came too late: it arrived after the
//! hold expired, the places were gone (or over the ticket limit), and the
//! money went back. There is no booking to compose from, so everything comes
//! from the outbox payload of `payment.refunded` (reason `late_payment`).

use boxoffice_domain::UserId;
use boxoffice_store::{OutboxMessage, UserRecord};
use lettre::message::{Mailbox, SinglePart};
use lettre::Message;
use serde::Deserialize;

use super::booking_mail::ComposeError;
use super::{sms, DeliveryError, OutboxDispatcher};
use crate::catalog::ShowView;
use crate::display::{display_money, display_time_rfc3339};

/// The only reason a `payment.refunded` message goes to the buyer: refunds
/// of a cancelled booking are announced by `booking.cancelled`.
const REASON_LATE_PAYMENT: &str = "late_payment";

/// The payload of a late payment's `payment.refunded` outbox message.
#[derive(Debug, Clone, Deserialize)]
pub struct LateRefund {
    pub reason: String,
    /// `places_gone` or `ticket_limit`; absent in messages written before
    /// it was recorded (those were all `places_gone`).
    #[serde(default)]
    pub cause: Option<String>,
    pub hold_id: String,
    pub user_id: String,
    pub show_id: String,
    pub total: Total,
    pub places: Places,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Total {
    pub amount: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Places {
    #[serde(default)]
    pub seats: Vec<String>,
    #[serde(default)]
    pub standing: Vec<StandingPlaces>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StandingPlaces {
    pub section: String,
    pub quantity: u32,
}

impl LateRefund {
    /// Reads the payload; an error says why it is not a late refund.
    pub fn from_payload(payload: &serde_json::Value) -> Result<LateRefund, String> {
        let refund: LateRefund = serde_json::from_value(payload.clone())
            .map_err(|error| format!("payment.refunded payload: {error}"))?;
        if refund.reason != REASON_LATE_PAYMENT {
            return Err(format!(
                "payment.refunded for {:?} is announced otherwise",
                refund.reason
            ));
        }
        Ok(refund)
    }

    /// Why it could not be booked, in words, for the e-mail.
    fn why(&self) -> &'static str {
        match self.cause.as_deref() {
            Some("ticket_limit") => {
                "with these tickets you would have had more for this show than its limit \
                 per buyer (you have held or bought others since)"
            }
            _ => "the seats were no longer free",
        }
    }

    /// Why, shorter, for the text message.
    fn why_short(&self) -> &'static str {
        match self.cause.as_deref() {
            Some("ticket_limit") => "it would have put you over the show's ticket limit",
            _ => "the seats were gone",
        }
    }

    fn amount(&self) -> String {
        display_money(self.total.amount, &self.total.currency)
    }

    /// `A-1-1, A-1-2, 2 × standing (FLOOR)`.
    fn places_in_words(&self) -> String {
        self.places
            .seats
            .iter()
            .map(|seat| format!("seat {seat}"))
            .chain(
                self.places
                    .standing
                    .iter()
                    .map(|place| format!("{} × standing ({})", place.quantity, place.section)),
            )
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The e-mail; `event_id` makes its `Message-ID` (one per event, so a
    /// redelivery is recognisably the same message).
    pub fn compose_email(
        &self,
        event_id: &str,
        user: &UserRecord,
        show: &ShowView,
        from: &Mailbox,
    ) -> Result<Message, ComposeError> {
        let to = Mailbox::new(
            Some(user.name.clone()),
            user.email
                .parse()
                .map_err(|error| ComposeError(format!("{error}")))?,
        );
        let title = &show.event.title;
        let when = display_time_rfc3339(&show.starts_at);
        let body = format!(
            "Hello {},\n\nyour payment for {title} on {when} ({}) arrived after your hold expired; \
             {}, so we refunded {} — nothing was booked. \
             The refund can take a few days to show on your card.\n\nHold {}\n\nboxoffice\n",
            user.name,
            self.places_in_words(),
            self.why(),
            self.amount(),
            self.hold_id,
        );
        Message::builder()
            .from(from.clone())
            .to(to)
            .message_id(Some(format!("<{event_id}@boxoffice>")))
            .subject(format!("Payment refunded: {title}, {when}"))
            .singlepart(SinglePart::plain(body))
            .map_err(|error| ComposeError(error.to_string()))
    }

    /// The text message.
    pub fn sms_text(&self, show: &ShowView) -> String {
        format!(
            "boxoffice: your payment for {}, {} came after your hold expired and {}. {} refunded, nothing booked.",
            show.event.title,
            display_time_rfc3339(&show.starts_at),
            self.why_short(),
            self.amount(),
        )
    }
}

impl OutboxDispatcher {
    /// The refund's payload, buyer and show.
    async fn late_refund_parts(
        &self,
        message: &OutboxMessage,
    ) -> Result<(LateRefund, UserRecord, ShowView), DeliveryError> {
        let refund =
            LateRefund::from_payload(&message.payload).map_err(DeliveryError::Permanent)?;
        let user_id = UserId::parse(&refund.user_id)
            .map_err(|error| DeliveryError::Permanent(format!("user_id: {error}")))?;
        let user = self
            .store
            .user_by_id(&user_id)
            .await
            .map_err(|error| DeliveryError::Transient(error.to_string()))?
            .ok_or_else(|| DeliveryError::Permanent(format!("no user {user_id}")))?;
        let show = self
            .catalog
            .show(&refund.show_id)
            .await
            .map_err(|error| DeliveryError::Transient(error.to_string()))?;
        Ok((refund, user, show))
    }

    pub(super) async fn deliver_late_refund_email(
        &self,
        message: &OutboxMessage,
    ) -> Result<(), DeliveryError> {
        let (refund, user, show) = self.late_refund_parts(message).await?;
        let composed = refund
            .compose_email(&message.event_id, &user, &show, &self.from)
            .map_err(|error| DeliveryError::Permanent(error.to_string()))?;
        self.mail
            .send(&message.event_id, composed)
            .await
            .map_err(|error| DeliveryError::Transient(error.to_string()))
    }

    pub(super) async fn deliver_late_refund_sms(
        &self,
        message: &OutboxMessage,
    ) -> Result<(), DeliveryError> {
        let (refund, user, show) = self.late_refund_parts(message).await?;
        // Buyers who gave no phone number get e-mail only.
        let Some(phone) = user.phone.as_deref().filter(|p| !p.trim().is_empty()) else {
            return Ok(());
        };
        self.sms
            .send(&message.event_id, phone, &refund.sms_text(&show))
            .await
            .map_err(|error| match error {
                sms::SmsError::Unavailable(why) => DeliveryError::Transient(why),
                sms::SmsError::Refused(why) => DeliveryError::Permanent(why),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_refund_payloads_are_read_and_others_refused() {
        let payload = serde_json::json!({
            "reason": "late_payment", "hold_id": "hld_1", "show_id": "shw_1", "user_id": "usr_1",
            "total": {"amount": 2500, "currency": "EUR"},
            "places": {"seats": ["A-1-1", "A-1-2"], "standing": [{"section": "FLOOR", "quantity": 2}]},
        });
        let refund = LateRefund::from_payload(&payload).expect("a late refund");
        assert_eq!(refund.amount(), "€25.00");
        assert_eq!(
            refund.places_in_words(),
            "seat A-1-1, seat A-1-2, 2 × standing (FLOOR)"
        );
        let mut other = payload.clone();
        other["reason"] = "cancelled".into();
        assert!(LateRefund::from_payload(&other).is_err());
        assert!(LateRefund::from_payload(&serde_json::json!({"reason": "late_payment"})).is_err());
    }
}
