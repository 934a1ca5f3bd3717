//! Where e-mails go: an SMTP server (lettre), or `.eml` files in a mailbox
//! folder (the embedded default, so that one command runs everything).

use std::path::PathBuf;
use std::time::Duration;

use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// One SMTP conversation may take this long before it counts as failed
/// (and is retried later by the outbox).
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub enum MailConfig {
    /// `smtp[s]://[user:password@]host[:port][?tls=required]` (lettre's URL format).
    Smtp { url: String },
    /// One `.eml` file per message, named after its event.
    Mailbox { dir: PathBuf },
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("bad mail configuration: {0}")]
    Config(String),
    #[error("mail not delivered: {0}")]
    Delivery(String),
}

pub enum MailTransport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Mailbox(PathBuf),
}

/// lettre's URL format: `smtp://host[:port]` is plain SMTP to a relay
/// (port 25), `smtp://host?tls=required` STARTTLS (port 587), `smtps://host`
/// TLS from the first byte (port 465); `user:password@` logs in. Servers'
/// certificates are checked against the system's CA store.
fn smtp_transport(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let bad = |why: String| MailError::Config(format!("BOXOFFICE_SMTP_URL: {why}"));
    let parsed = url::Url::parse(url).map_err(|error| bad(error.to_string()))?;
    if !matches!(parsed.scheme(), "smtp" | "smtps") {
        return Err(bad("only smtp:// and smtps:// are supported".into()));
    }
    let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|error| bad(error.to_string()))?;
    Ok(builder.timeout(Some(SMTP_TIMEOUT)).build())
}

impl MailTransport {
    pub fn new(config: &MailConfig) -> Result<MailTransport, MailError> {
        match config {
            MailConfig::Smtp { url } => Ok(MailTransport::Smtp(smtp_transport(url)?)),
            MailConfig::Mailbox { dir } => {
                std::fs::create_dir_all(dir).map_err(|error| {
                    MailError::Config(format!("mailbox folder {}: {error}", dir.display()))
                })?;
                Ok(MailTransport::Mailbox(dir.clone()))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            MailTransport::Smtp(_) => "SMTP".into(),
            MailTransport::Mailbox(dir) => format!("mailbox folder {}", dir.display()),
        }
    }

    /// Sends `message`; `key` names it in the mailbox folder, so a second
    /// delivery of the same event replaces the file instead of adding one.
    pub async fn send(&self, key: &str, message: Message) -> Result<(), MailError> {
        match self {
            MailTransport::Smtp(transport) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|error| MailError::Delivery(error.to_string())),
            MailTransport::Mailbox(dir) => {
                let path = dir.join(format!("{key}.eml"));
                let partial = dir.join(format!(".{key}.eml.partial"));
                // Written whole, then renamed: a reader never sees half a mail.
                tokio::fs::write(&partial, message.formatted())
                    .await
                    .map_err(|error| MailError::Delivery(error.to_string()))?;
                tokio::fs::rename(&partial, &path)
                    .await
                    .map_err(|error| MailError::Delivery(error.to_string()))
            }
        }
    }
}
