//! Notifications: the outbox dispatcher and the channels it delivers to.
//!
//! The store writes outbox rows in the transaction of the change they
//! announce (a booking confirmed, cancelled, refunded). The dispatcher here
//! claims due rows in bounded batches, delivers each to its channel, and
//! marks it delivered — or due again later with exponential backoff, until
//! the retry window has passed. Delivery is at least once: a crash after
//! sending and before marking sends again, so consumers deduplicate by the
//! event ID (the e-mail's `Message-ID`, the mailbox file name).
//!
//! # Layout
//! - [`mail`]: SMTP or mailbox-folder transport.
//! - [`sms`]: text messages through a Twilio-shaped provider, or the log.
//! - [`booking_mail`]: the confirmation and cancellation e-mails.
//! - [`refund_mail`]: the e-mail and SMS about a late payment refunded.
//! - [`ics`]: the calendar entry. (QR images: `crate::tickets`.)
//! - [`nats`]: domain events (the `events` channel) to NATS JetStream.
//! - [`webhooks_out`]: outgoing webhooks (the `webhooks` channel is only
//!   fanned out into deliveries here; their sender runs on its own).

pub mod booking_mail;
pub mod ics;
pub mod mail;
pub mod nats;
pub mod refund_mail;
pub mod sms;
pub mod webhooks_out;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use boxoffice_domain::{BookingId, UserId};
use boxoffice_store::{
    BookingRecord, OutboxMessage, Store, UserRecord, OUTBOX_CHANNEL_EMAIL, OUTBOX_CHANNEL_EVENTS,
    OUTBOX_CHANNEL_SMS, OUTBOX_CHANNEL_WEBHOOKS,
};
use chrono::Utc;
use futures::StreamExt;
use lettre::message::Mailbox;
use tokio::sync::watch;

use crate::catalog::CatalogService;
use booking_mail::{BookingMail, BookingMailKind};
use mail::{MailConfig, MailTransport};
use nats::{EventPublisher, NatsConfig};
use sms::{SmsConfig, SmsSender};

/// A claim lasts this long; a dispatcher that died mid-batch gives its rows
/// back after it (then another delivers them: at least once).
const CLAIM_LEASE: Duration = Duration::from_secs(60);
/// Messages delivered at once per batch: SMTP servers and brokers take a
/// few connections well; more only queues at their end.
const DELIVERY_CONCURRENCY: usize = 8;
/// How often the backlog gauges are refreshed.
const BACKLOG_REPORT_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    pub mail: MailConfig,
    pub sms: SmsConfig,
    /// `From:` of every e-mail.
    pub mail_from: String,
    /// How often to look for due messages when idle.
    pub poll_interval: Duration,
    /// Messages claimed per batch.
    pub batch_size: u32,
    /// The first retry waits this long; each next one twice as long…
    pub backoff_initial: Duration,
    /// … up to this.
    pub backoff_max: Duration,
    /// Then give up (a message older than this is not retried).
    pub retry_window: Duration,
    /// Publish domain events to NATS JetStream; without it the `events`
    /// channel is marked delivered without going anywhere.
    pub events: Option<NatsConfig>,
}

impl DispatcherConfig {
    /// The embedded defaults: mail into `mailbox/`.
    pub fn with_mail(mail: MailConfig) -> Self {
        DispatcherConfig {
            mail,
            sms: SmsConfig::Log,
            mail_from: "boxoffice <tickets@boxoffice.local>".into(),
            poll_interval: Duration::from_millis(250),
            batch_size: 100,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            retry_window: Duration::from_secs(3 * 24 * 3600),
            events: None,
        }
    }
}

/// Why a delivery failed.
#[derive(Debug)]
enum DeliveryError {
    /// Try again later (the server is down, a timeout…).
    Transient(String),
    /// Will never work (the message cannot be composed): give up now.
    Permanent(String),
}

pub struct OutboxDispatcher {
    store: Arc<dyn Store>,
    catalog: Arc<CatalogService>,
    mail: MailTransport,
    sms: SmsSender,
    events: Option<EventPublisher>,
    from: Mailbox,
    config: DispatcherConfig,
}

impl OutboxDispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<CatalogService>,
        config: DispatcherConfig,
    ) -> Result<OutboxDispatcher, String> {
        let mail = MailTransport::new(&config.mail).map_err(|error| error.to_string())?;
        let sms = SmsSender::new(&config.sms)?;
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|error| format!("BOXOFFICE_MAIL_FROM {:?}: {error}", config.mail_from))?;
        let events = config.events.clone().map(EventPublisher::new);
        if let Some(Err(error)) = events.as_ref().map(EventPublisher::check_url) {
            // Bookings and e-mails go on; the events wait in the outbox and
            // every attempt to publish them says why again.
            tracing::error!(%error, "NATS_URL cannot be used: domain events will wait in the outbox");
        }
        Ok(OutboxDispatcher {
            store,
            catalog,
            mail,
            sms,
            events,
            from,
            config,
        })
    }

    /// Where e-mails go, for the start-up log.
    pub fn describe(&self) -> String {
        format!(
            "e-mail: {}, SMS: {}",
            self.mail.describe(),
            self.sms.describe()
        )
    }

    /// Where domain events go, for the start-up log.
    pub fn describe_events(&self) -> String {
        match &self.events {
            Some(publisher) => publisher.describe(),
            None => "nowhere (NATS_URL is not set; the events channel is a no-op)".into(),
        }
    }

    /// Delivers until `shutdown` flips.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let pacing = worker::Pacing {
            name: "outbox",
            batch_size: self.config.batch_size,
            poll_interval: self.config.poll_interval,
            report_every: BACKLOG_REPORT_EVERY,
        };
        worker::run_until_shutdown(
            pacing,
            shutdown,
            || self.dispatch_batch(),
            || self.report_backlog(),
        )
        .await;
    }

    /// Claims one batch and delivers it; returns how many were claimed.
    pub async fn dispatch_batch(&self) -> Result<usize, boxoffice_store::StoreError> {
        let now = Utc::now();
        let lease = chrono::Duration::from_std(CLAIM_LEASE).unwrap_or_default();
        let batch = self
            .store
            .claim_outbox(now, now + lease, self.config.batch_size)
            .await?;
        let claimed = batch.len();
        let delivered: Vec<String> = futures::stream::iter(batch)
            .map(|message| async move {
                match self.deliver(&message).await {
                    Ok(()) => {
                        metrics::counter!("boxoffice_outbox_delivered_total", "channel" => message.channel.clone())
                            .increment(1);
                        Some(message.id)
                    }
                    Err(error) => {
                        self.settle_failure(&message, error).await;
                        None
                    }
                }
            })
            .buffer_unordered(DELIVERY_CONCURRENCY)
            .filter_map(|id| async move { id })
            .collect()
            .await;
        // One write for the batch's successes. Should it fail, the lease
        // runs out and they are delivered again: at least once.
        if let Err(error) = self.store.outbox_delivered(&delivered, Utc::now()).await {
            tracing::warn!(%error, messages = delivered.len(), "outbox: could not mark messages delivered");
        }
        Ok(claimed)
    }

    async fn settle_failure(&self, message: &OutboxMessage, error: DeliveryError) {
        let now = Utc::now();
        let channel = message.channel.clone();
        let result = match error {
            DeliveryError::Permanent(error) => {
                tracing::error!(message_id = %message.id, %error, "outbox: giving up on a message that cannot be delivered");
                metrics::counter!("boxoffice_outbox_failed_total", "channel" => channel)
                    .increment(1);
                self.store.outbox_give_up(&message.id, now, &error).await
            }
            DeliveryError::Transient(error) => {
                let age = (now - message.created_at).to_std().unwrap_or_default();
                if age > self.config.retry_window {
                    tracing::error!(message_id = %message.id, %error, "outbox: retry window passed; giving up");
                    metrics::counter!("boxoffice_outbox_failed_total", "channel" => channel)
                        .increment(1);
                    self.store.outbox_give_up(&message.id, now, &error).await
                } else {
                    let wait = backoff(
                        message.attempts,
                        self.config.backoff_initial,
                        self.config.backoff_max,
                    );
                    tracing::warn!(message_id = %message.id, attempts = message.attempts, retry_in_ms = wait.as_millis() as u64, %error, "outbox: delivery failed");
                    metrics::counter!("boxoffice_outbox_retries_total", "channel" => channel)
                        .increment(1);
                    let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
                    self.store
                        .outbox_retry_later(&message.id, next, &error)
                        .await
                }
            }
        };
        if let Err(error) = result {
            // The lease runs out and the message is delivered again: at least once.
            tracing::warn!(message_id = %message.id, %error, "outbox: could not record the outcome");
        }
    }

    async fn deliver(&self, message: &OutboxMessage) -> Result<(), DeliveryError> {
        match message.channel.as_str() {
            OUTBOX_CHANNEL_EMAIL => self.deliver_email(message).await,
            OUTBOX_CHANNEL_SMS => self.deliver_sms(message).await,
            OUTBOX_CHANNEL_EVENTS => self.deliver_event(message).await,
            OUTBOX_CHANNEL_WEBHOOKS => self
                .store
                .fan_out_webhook_event(message, Utc::now())
                .await
                .map(|_| ())
                .map_err(|error| DeliveryError::Transient(error.to_string())),
            other => Err(DeliveryError::Permanent(format!("unknown channel {other}"))),
        }
    }

    async fn deliver_email(&self, message: &OutboxMessage) -> Result<(), DeliveryError> {
        let kind = match message.event_type.as_str() {
            "booking.confirmed" => BookingMailKind::Confirmed,
            "booking.cancelled" => BookingMailKind::Cancelled,
            "payment.refunded" => return self.deliver_late_refund_email(message).await,
            other => return Err(DeliveryError::Permanent(format!("no e-mail for {other}"))),
        };
        let (booking, user) = self.booking_and_user(message).await?;
        let show = self
            .catalog
            .show(booking.show_id.as_str())
            .await
            .map_err(|error| DeliveryError::Transient(error.to_string()))?;
        let mail = BookingMail {
            kind,
            event_id: &message.event_id,
            booking: &booking,
            user: &user,
            show: &show,
            from: &self.from,
        };
        let composed = mail
            .compose(Utc::now())
            .map_err(|error| DeliveryError::Permanent(error.to_string()))?;
        self.mail
            .send(&message.event_id, composed)
            .await
            .map_err(|error| DeliveryError::Transient(error.to_string()))
    }

    /// The booking and buyer an outbox message is about.
    async fn booking_and_user(
        &self,
        message: &OutboxMessage,
    ) -> Result<(BookingRecord, UserRecord), DeliveryError> {
        let field = |name: &str| message.payload[name].as_str().unwrap_or("").to_string();
        let booking_id = BookingId::parse(&field("booking_id"))
            .map_err(|error| DeliveryError::Permanent(format!("booking_id: {error}")))?;
        let user_id = UserId::parse(&field("user_id"))
            .map_err(|error| DeliveryError::Permanent(format!("user_id: {error}")))?;
        let transient =
            |error: boxoffice_store::StoreError| DeliveryError::Transient(error.to_string());
        let booking = self
            .store
            .booking(&booking_id)
            .await
            .map_err(transient)?
            .ok_or_else(|| DeliveryError::Permanent(format!("no booking {booking_id}")))?;
        let user = self
            .store
            .user_by_id(&user_id)
            .await
            .map_err(transient)?
            .ok_or_else(|| DeliveryError::Permanent(format!("no user {user_id}")))?;
        Ok((booking, user))
    }

    async fn deliver_sms(&self, message: &OutboxMessage) -> Result<(), DeliveryError> {
        let confirmed = match message.event_type.as_str() {
            "booking.confirmed" => true,
            "booking.cancelled" => false,
            "payment.refunded" => return self.deliver_late_refund_sms(message).await,
            other => return Err(DeliveryError::Permanent(format!("no SMS for {other}"))),
        };
        let (booking, user) = self.booking_and_user(message).await?;
        // Buyers who gave no phone number get e-mail only.
        let Some(phone) = user.phone.as_deref().filter(|p| !p.trim().is_empty()) else {
            return Ok(());
        };
        let show = self
            .catalog
            .show(booking.show_id.as_str())
            .await
            .map_err(|error| DeliveryError::Transient(error.to_string()))?;
        let when = crate::display::display_time_rfc3339(&show.starts_at);
        let body = if confirmed {
            format!(
                "boxoffice: {} tickets for {}, {when}. Booking {}. Your QR codes are in your e-mail.",
                booking.tickets.len(),
                show.event.title,
                booking.id
            )
        } else {
            format!(
                "boxoffice: booking {} for {}, {when} is cancelled and refunded.",
                booking.id, show.event.title
            )
        };
        self.sms
            .send(&message.event_id, phone, &body)
            .await
            .map_err(|error| match error {
                sms::SmsError::Unavailable(why) => DeliveryError::Transient(why),
                sms::SmsError::Refused(why) => DeliveryError::Permanent(why),
            })
    }

    async fn deliver_event(&self, message: &OutboxMessage) -> Result<(), DeliveryError> {
        // Without NATS there is no consumer to wait for: nothing to do.
        let Some(publisher) = &self.events else {
            return Ok(());
        };
        // Every failure may heal (the server comes back, the stream is
        // created): the outbox keeps the event and retries with backoff.
        publisher
            .publish(message)
            .await
            .map(|_| ())
            .map_err(|error| DeliveryError::Transient(error.to_string()))
    }

    async fn report_backlog(&self) {
        match self.store.outbox_backlog().await {
            Ok(backlog) => {
                metrics::gauge!("boxoffice_outbox_pending").set(backlog.pending as f64);
                metrics::gauge!("boxoffice_outbox_failed").set(backlog.failed as f64);
                let age = backlog
                    .oldest_created_at
                    .map(|oldest| (Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0)
                    .unwrap_or(0.0);
                metrics::gauge!("boxoffice_outbox_oldest_age_seconds").set(age);
            }
            Err(error) => tracing::debug!(%error, "outbox: backlog not read"),
        }
    }
}

/// Exponential backoff with ±20 % jitter, so that messages that failed
/// together do not all come back in the same instant.
pub(crate) fn backoff(attempts: u32, initial: Duration, max: Duration) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    let base = initial.saturating_mul(1u32 << exponent).min(max);
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    base.mul_f64(jitter).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops_at_the_maximum() {
        let initial = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for attempts in 1..40 {
            let wait = backoff(attempts, initial, max);
            let base = initial.saturating_mul(1 << (attempts - 1).min(20)).min(max);
            assert!(
                wait >= base.mul_f64(0.8) && wait <= base.mul_f64(1.2).min(max),
                "{attempts}: {wait:?}"
            );
        }
        assert!(backoff(1, initial, max) <= Duration::from_millis(1200));
        assert!(backoff(30, initial, max) <= max);
    }
}
