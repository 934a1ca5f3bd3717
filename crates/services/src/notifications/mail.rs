//! Where e-mails go: an SMTP server (lettre), or `.eml` files in a mailbox
//! folder (the embedded default, so that one command runs everything).

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// One SMTP conversation may take this long before it counts as failed
/// (and is retried later by the outbox).
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
const SMTP_PORT_DEFAULT: u16 = 25;

#[derive(Debug, Clone)]
pub enum MailConfig {
    /// `smtp://[user:password@]host[:port]` (lettre's URL format).
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

/// `smtp://[user:password@]host[:port]`, plain SMTP (port 25 by default):
/// boxoffice hands mail to a relay it trusts; TLS would need a TLS library
/// in the binary.
fn smtp_transport(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let bad = |why: &str| MailError::Config(format!("BOXOFFICE_SMTP_URL: {why}"));
    let parsed = url::Url::parse(url).map_err(|error| bad(&error.to_string()))?;
    if parsed.scheme() != "smtp" {
        return Err(bad("only smtp:// is supported"));
    }
    let host = parsed.host_str().ok_or_else(|| bad("no host"))?;
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(parsed.port().unwrap_or(SMTP_PORT_DEFAULT))
        .timeout(Some(SMTP_TIMEOUT));
    if !parsed.username().is_empty() {
        let decode = |text: &str| {
            percent_decode(text).map_err(|_| bad("the user or password is not valid UTF-8"))
        };
        builder = builder.credentials(Credentials::new(
            decode(parsed.username())?,
            decode(parsed.password().unwrap_or(""))?,
        ));
    }
    Ok(builder.build())
}

fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(decoded)
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
