//! Text messages: through an HTTP provider speaking Twilio's Messages API,
//! or, by default, written to the log (the embedded mode has no phone line).

use std::time::Duration;

/// One provider call may take this long before it counts as failed (and
/// is retried later by the outbox).
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Twilio's account: `POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json`
/// with HTTP Basic auth `sid:token` and form fields `To`, `From`, `Body`.
#[derive(Clone)]
pub struct TwilioConfig {
    pub api_base: String,
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
}

impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("api_base", &self.api_base)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("from", &self.from)
            .finish()
    }
}

#[derive(Debug, Clone, Default)]
pub enum SmsConfig {
    /// Messages are logged (`tracing`, target `boxoffice::sms`).
    #[default]
    Log,
    Twilio(TwilioConfig),
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// Try again later: the provider is down, slow, or throttling.
    #[error("SMS provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused this message for good (a bad number, say).
    #[error("SMS refused: {0}")]
    Refused(String),
}

pub enum SmsSender {
    Log,
    Twilio {
        config: TwilioConfig,
        client: reqwest::Client,
    },
}

impl SmsSender {
    pub fn new(config: &SmsConfig) -> Result<SmsSender, String> {
        match config {
            SmsConfig::Log => Ok(SmsSender::Log),
            SmsConfig::Twilio(config) => {
                crate::payments::stripe::check_api_base(
                    "BOXOFFICE_TWILIO_API_BASE",
                    &config.api_base,
                )?;
                let client = reqwest::Client::builder()
                    .timeout(PROVIDER_TIMEOUT)
                    .build()
                    .map_err(|error| format!("SMS client: {error}"))?;
                Ok(SmsSender::Twilio {
                    config: config.clone(),
                    client,
                })
            }
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            SmsSender::Log => "the log",
            SmsSender::Twilio { .. } => "Twilio",
        }
    }

    /// Sends `body` to `to`. `key` identifies the message across retries
    /// (logged, and sent to the provider as `X-Idempotency-Key`).
    pub async fn send(&self, key: &str, to: &str, body: &str) -> Result<(), SmsError> {
        match self {
            SmsSender::Log => {
                tracing::info!(target: "boxoffice::sms", message_key = %key, %to, %body, "SMS");
                Ok(())
            }
            SmsSender::Twilio { config, client } => {
                let url = format!(
                    "{}/2010-04-01/Accounts/{}/Messages.json",
                    config.api_base.trim_end_matches('/'),
                    config.account_sid
                );
                let response = client
                    .post(url)
                    .basic_auth(&config.account_sid, Some(&config.auth_token))
                    .header("X-Idempotency-Key", key)
                    .form(&[("To", to), ("From", config.from.as_str()), ("Body", body)])
                    .send()
                    .await
                    .map_err(|error| SmsError::Unavailable(error.to_string()))?;
                let status = response.status();
                if status.is_success() {
                    return Ok(());
                }
                let text = response.text().await.unwrap_or_default();
                if status.is_server_error() || status.as_u16() == 429 {
                    Err(SmsError::Unavailable(format!("{status}: {text}")))
                } else {
                    Err(SmsError::Refused(format!("{status}: {text}")))
                }
            }
        }
    }
}
