//! The notification options of `boxoffice serve`: where e-mails and domain
//! events go and how the outbox dispatcher retries (issue 6).

use std::path::PathBuf;
use std::time::Duration;

use boxoffice_services::notifications::mail::MailConfig;
use boxoffice_services::notifications::nats::NatsConfig;
use boxoffice_services::notifications::sms::{SmsConfig, TwilioConfig};
use boxoffice_services::notifications::webhooks_out::WebhookSenderConfig;
use boxoffice_services::notifications::DispatcherConfig;
use clap::Args;

use crate::config::{Secret, UrlWithCredentials};

/// A poll above a minute would make a confirmation e-mail feel lost.
const POLL_INTERVAL_MS_MAX: u64 = 60_000;
/// Retries further apart than a day would outlast the retry window's point.
const BACKOFF_MAX_MS_MAX: u64 = 86_400_000;
/// A receiver slower than a minute holds a sender slot for too long.
const WEBHOOK_TIMEOUT_MS_MAX: u64 = 60_000;
/// Thirty days: beyond that an event is history, not news.
const WEBHOOK_RETRY_WINDOW_SECONDS_MAX: u64 = 30 * 86_400;
/// NATS caps stream names at 255 bytes; subjects are kept as short.
const NATS_NAME_LENGTH_MAX: usize = 255;

#[derive(Debug, Clone, Args)]
pub struct NotificationArgs {
    /// SMTP server for e-mails, `smtp://[user:password@]host[:port]`;
    /// without it, e-mails are written as `.eml` files to the mailbox folder.
    #[arg(long, env = "BOXOFFICE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<UrlWithCredentials>,
    /// Where e-mails go without an SMTP server.
    #[arg(long, env = "BOXOFFICE_MAILBOX_DIR", default_value = "mailbox")]
    pub mailbox_dir: PathBuf,
    /// The sender of every e-mail.
    #[arg(
        long,
        env = "BOXOFFICE_MAIL_FROM",
        default_value = "boxoffice <tickets@boxoffice.local>"
    )]
    pub mail_from: String,
    /// Deliver the outbox (e-mails, SMS, events) and send outgoing webhooks
    /// from this node; `off` leaves them to other nodes on the same
    /// database, e.g. to keep the CPU of nodes that sell free of composing
    /// e-mails (docs/benchmarks.md).
    #[arg(
        long,
        env = "BOXOFFICE_OUTBOX_DISPATCH",
        action = clap::ArgAction::Set,
        default_value_t = true,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub outbox_dispatch: bool,
    /// How often the outbox dispatcher looks for due messages when idle.
    #[arg(
        long,
        env = "BOXOFFICE_OUTBOX_POLL_MS",
        default_value_t = 250,
        value_parser = clap::value_parser!(u64).range(10..=POLL_INTERVAL_MS_MAX)
    )]
    pub outbox_poll_ms: u64,
    /// The longest wait between two attempts of a failing delivery (the
    /// first waits a second, each next one twice as long).
    #[arg(
        long,
        env = "BOXOFFICE_OUTBOX_BACKOFF_MAX_MS",
        default_value_t = 300_000,
        value_parser = clap::value_parser!(u64).range(100..=BACKOFF_MAX_MS_MAX)
    )]
    pub outbox_backoff_max_ms: u64,
    /// Twilio account for text messages; without it SMS go to the log.
    #[arg(
        long,
        env = "BOXOFFICE_TWILIO_ACCOUNT_SID",
        requires = "twilio_auth_token"
    )]
    pub twilio_account_sid: Option<String>,
    #[arg(long, env = "BOXOFFICE_TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<Secret>,
    /// The provider's API (`https://` checked against the system CA store).
    #[arg(
        long,
        env = "BOXOFFICE_TWILIO_API_BASE",
        default_value = "https://api.twilio.com"
    )]
    pub twilio_api_base: String,
    /// The sender number or name of text messages.
    #[arg(long, env = "BOXOFFICE_SMS_FROM", default_value = "boxoffice")]
    pub sms_from: String,
    /// The JetStream stream that holds the domain events (with `NATS_URL`).
    #[arg(
        long,
        env = "BOXOFFICE_NATS_STREAM",
        default_value = "BOXOFFICE",
        value_parser = parse_stream_name
    )]
    pub nats_stream: String,
    /// Domain events are published to `{prefix}.{event type}`, e.g.
    /// `boxoffice.booking.confirmed`; the stream takes `{prefix}.>`.
    #[arg(
        long,
        env = "BOXOFFICE_NATS_SUBJECT_PREFIX",
        default_value = "boxoffice",
        value_parser = parse_subject_prefix
    )]
    pub nats_subject_prefix: String,
    /// An outgoing webhook's receiver that has not answered by then failed
    /// the attempt.
    #[arg(
        long,
        env = "BOXOFFICE_WEBHOOK_TIMEOUT_MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(100..=WEBHOOK_TIMEOUT_MS_MAX)
    )]
    pub webhook_timeout_ms: u64,
    /// The first retry of a failed outgoing webhook waits this long, each
    /// next one twice as long…
    #[arg(
        long,
        env = "BOXOFFICE_WEBHOOK_BACKOFF_INITIAL_MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(10..=BACKOFF_MAX_MS_MAX)
    )]
    pub webhook_backoff_initial_ms: u64,
    /// … up to this.
    #[arg(
        long,
        env = "BOXOFFICE_WEBHOOK_BACKOFF_MAX_MS",
        default_value_t = 3_600_000,
        value_parser = clap::value_parser!(u64).range(10..=BACKOFF_MAX_MS_MAX)
    )]
    pub webhook_backoff_max_ms: u64,
    /// An outgoing webhook not delivered this long after its event is FAILED.
    #[arg(
        long,
        env = "BOXOFFICE_WEBHOOK_RETRY_WINDOW_SECONDS",
        default_value_t = 259_200,
        value_parser = clap::value_parser!(u64).range(1..=WEBHOOK_RETRY_WINDOW_SECONDS_MAX)
    )]
    pub webhook_retry_window_seconds: u64,
}

impl NotificationArgs {
    /// The dispatcher's settings; `nats_url` (`NATS_URL`) turns on the
    /// publishing of domain events.
    pub fn dispatcher_config(&self, nats_url: Option<&UrlWithCredentials>) -> DispatcherConfig {
        let mail = match &self.smtp_url {
            Some(url) => MailConfig::Smtp {
                url: url.expose().to_string(),
            },
            None => MailConfig::Mailbox {
                dir: self.mailbox_dir.clone(),
            },
        };
        let mut config = DispatcherConfig::with_mail(mail);
        if let (Some(sid), Some(token)) = (&self.twilio_account_sid, &self.twilio_auth_token) {
            config.sms = SmsConfig::Twilio(TwilioConfig {
                api_base: self.twilio_api_base.clone(),
                account_sid: sid.clone(),
                auth_token: token.expose().to_string(),
                from: self.sms_from.clone(),
            });
        }
        config.mail_from = self.mail_from.clone();
        config.poll_interval = Duration::from_millis(self.outbox_poll_ms);
        config.backoff_max = Duration::from_millis(self.outbox_backoff_max_ms);
        config.backoff_initial = config.backoff_initial.min(config.backoff_max);
        config.events = nats_url.map(|url| NatsConfig {
            url: url.expose().to_string(),
            stream: self.nats_stream.clone(),
            subject_prefix: self.nats_subject_prefix.clone(),
        });
        config
    }
}

impl NotificationArgs {
    /// The outgoing webhook sender's settings.
    pub fn webhook_sender_config(&self) -> WebhookSenderConfig {
        let backoff_max = Duration::from_millis(self.webhook_backoff_max_ms);
        WebhookSenderConfig {
            timeout: Duration::from_millis(self.webhook_timeout_ms),
            backoff_initial: Duration::from_millis(self.webhook_backoff_initial_ms)
                .min(backoff_max),
            backoff_max,
            retry_window: Duration::from_secs(self.webhook_retry_window_seconds),
            poll_interval: Duration::from_millis(self.outbox_poll_ms),
            ..WebhookSenderConfig::default()
        }
    }
}

/// A JetStream stream name: no spaces, dots or wildcards (NATS rejects them).
fn parse_stream_name(value: &str) -> Result<String, String> {
    let bad = |c: char| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\');
    if value.is_empty() || value.len() > NATS_NAME_LENGTH_MAX || value.contains(bad) {
        return Err(format!(
            "a stream name of 1 to {NATS_NAME_LENGTH_MAX} characters without spaces, '.', '*', '>', '/' or '\\'"
        ));
    }
    Ok(value.to_string())
}

/// Subject tokens separated by dots, none empty, no wildcards or spaces.
fn parse_subject_prefix(value: &str) -> Result<String, String> {
    let bad_token = |token: &str| {
        token.is_empty() || token.contains(|c: char| c.is_whitespace() || matches!(c, '*' | '>'))
    };
    if value.len() > NATS_NAME_LENGTH_MAX || value.split('.').any(bad_token) {
        return Err(format!(
            "dot-separated subject tokens (at most {NATS_NAME_LENGTH_MAX} characters), none empty, without spaces, '*' or '>'"
        ));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_and_subject_prefixes_are_checked() {
        assert!(parse_stream_name("BOXOFFICE").is_ok());
        assert!(parse_stream_name("").is_err());
        assert!(parse_stream_name("BOX.OFFICE").is_err());
        assert!(parse_stream_name("BOX OFFICE").is_err());
        assert!(parse_stream_name(&"S".repeat(NATS_NAME_LENGTH_MAX)).is_ok());
        assert!(parse_stream_name(&"S".repeat(NATS_NAME_LENGTH_MAX + 1)).is_err());
        assert!(parse_subject_prefix("boxoffice").is_ok());
        assert!(parse_subject_prefix("acme.boxoffice").is_ok());
        assert!(parse_subject_prefix("").is_err());
        assert!(parse_subject_prefix("acme..boxoffice").is_err());
        assert!(parse_subject_prefix("boxoffice.>").is_err());
        assert!(parse_subject_prefix("box office").is_err());
    }
}
