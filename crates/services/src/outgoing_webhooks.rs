//! The admin's side of outgoing webhooks: subscriptions and their delivery
//! log (the sender is `notifications::webhooks_out`).

use std::sync::Arc;

use boxoffice_domain::{FieldError, Role, WebhookDeliveryId, WebhookSubscriptionId};
use boxoffice_store::{
    Page, PageRequest, Store, WebhookAttemptRecord, WebhookDeliveryRecord, WebhookDeliveryStatus,
    WebhookSubscriptionPatch, WebhookSubscriptionRecord,
};
use chrono::{DateTime, DurationRound, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::views::{rfc3339, rfc3339_opt};
use crate::{AuthUser, Clock, ServiceError, ServiceResult};

/// The domain events a subscription can ask for.
pub const EVENT_TYPES: [&str; 4] = [
    "booking.confirmed",
    "booking.cancelled",
    "payment.refunded",
    "hold.expired",
];
pub const URL_LENGTH_MAX: usize = 2048;
pub const DESCRIPTION_LENGTH_MAX: usize = 500;
/// Bytes of randomness in a signing secret.
const SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSubscriptionInput {
    /// Absolute `http` or `https` URL the events are POSTed to.
    pub url: String,
    /// Event types to send; omitted or empty means all of them.
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSubscriptionPatchInput {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    /// `false` pauses: no new deliveries, pending ones wait.
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookSubscriptionView {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&WebhookSubscriptionRecord> for WebhookSubscriptionView {
    fn from(record: &WebhookSubscriptionRecord) -> Self {
        WebhookSubscriptionView {
            id: record.id.to_string(),
            url: record.url.clone(),
            event_types: record.event_types.clone(),
            description: record.description.clone(),
            active: record.active,
            created_at: rfc3339(record.created_at),
            updated_at: rfc3339(record.updated_at),
        }
    }
}

/// A new subscription: the only answer that shows its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedWebhookSubscriptionView {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
    /// `whsec_…`: verify `Boxoffice-Signature` with it. Shown only here.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookDeliveryView {
    pub id: String,
    pub subscription_id: String,
    pub event_id: String,
    pub event_type: String,
    /// `PENDING`, `DELIVERED` or `FAILED`.
    pub status: String,
    pub attempts: u32,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub failed_at: Option<String>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
}

impl From<&WebhookDeliveryRecord> for WebhookDeliveryView {
    fn from(record: &WebhookDeliveryRecord) -> Self {
        let status = record.status();
        WebhookDeliveryView {
            id: record.id.to_string(),
            subscription_id: record.subscription_id.to_string(),
            event_id: record.event_id.clone(),
            event_type: record.event_type.clone(),
            status: status.as_str().into(),
            attempts: record.attempts,
            created_at: rfc3339(record.created_at),
            next_attempt_at: (status == WebhookDeliveryStatus::Pending)
                .then(|| rfc3339(record.next_attempt_at)),
            delivered_at: rfc3339_opt(record.delivered_at),
            failed_at: rfc3339_opt(record.failed_at),
            last_status_code: record.last_status_code,
            last_error: record.last_error.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAttemptView {
    pub attempt: u32,
    pub at: String,
    /// None when no answer came (timeout, connection refused).
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// The first KiB of the answer.
    pub response_body: Option<String>,
}

impl From<&WebhookAttemptRecord> for WebhookAttemptView {
    fn from(record: &WebhookAttemptRecord) -> Self {
        WebhookAttemptView {
            attempt: record.attempt,
            at: rfc3339(record.at),
            status_code: record.status_code,
            duration_ms: record.duration_ms,
            error: record.error.clone(),
            response_body: record.response_body.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookDeliveryDetailView {
    #[serde(flatten)]
    pub delivery: WebhookDeliveryView,
    /// What was sent as `data` (with the event's own fields).
    pub payload: serde_json::Value,
    pub attempt_log: Vec<WebhookAttemptView>,
}

pub struct OutgoingWebhookService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

fn not_found_subscription() -> ServiceError {
    ServiceError::NotFound {
        what: "webhook subscription",
    }
}

fn not_found_delivery() -> ServiceError {
    ServiceError::NotFound {
        what: "webhook delivery",
    }
}

fn subscription_id(id: &str) -> ServiceResult<WebhookSubscriptionId> {
    WebhookSubscriptionId::parse(id).map_err(|_| not_found_subscription())
}

fn delivery_id(id: &str) -> ServiceResult<WebhookDeliveryId> {
    WebhookDeliveryId::parse(id).map_err(|_| not_found_delivery())
}

fn check_url(url: &str, errors: &mut Vec<FieldError>) {
    if url.len() > URL_LENGTH_MAX {
        errors.push(FieldError::new(
            "url",
            format!("at most {URL_LENGTH_MAX} characters"),
        ));
        return;
    }
    match url::Url::parse(url) {
        Ok(parsed)
            if matches!(parsed.scheme(), "http" | "https")
                && parsed.host_str().is_some_and(|host| !host.is_empty()) => {}
        _ => errors.push(FieldError::new(
            "url",
            "must be an absolute http:// or https:// URL",
        )),
    }
}

fn check_event_types(types: &[String], errors: &mut Vec<FieldError>) {
    if let Some(unknown) = types
        .iter()
        .find(|event_type| !EVENT_TYPES.contains(&event_type.as_str()))
    {
        errors.push(FieldError::new(
            "event_types",
            format!(
                "unknown event type {unknown:?}; one of {}",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
}

fn check_description(description: &str, errors: &mut Vec<FieldError>) {
    if description.chars().count() > DESCRIPTION_LENGTH_MAX {
        errors.push(FieldError::new(
            "description",
            format!("at most {DESCRIPTION_LENGTH_MAX} characters"),
        ));
    }
}

/// The list without repeats, in the order given.
fn distinct(types: Vec<String>) -> Vec<String> {
    let mut seen = Vec::with_capacity(types.len());
    for event_type in types {
        if !seen.contains(&event_type) {
            seen.push(event_type);
        }
    }
    seen
}

fn new_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    format!("whsec_{}", hex::encode(bytes))
}

impl OutgoingWebhookService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        OutgoingWebhookService { store, clock }
    }

    fn now(&self) -> DateTime<Utc> {
        let now = self.clock.now();
        now.duration_trunc(chrono::TimeDelta::milliseconds(1))
            .unwrap_or(now)
    }

    pub async fn create(
        &self,
        caller: &AuthUser,
        input: WebhookSubscriptionInput,
    ) -> ServiceResult<CreatedWebhookSubscriptionView> {
        caller.require(Role::Admin)?;
        let url = input.url.trim().to_string();
        let event_types = input.event_types.unwrap_or_default();
        let description = input.description.unwrap_or_default();
        let mut errors = Vec::new();
        check_url(&url, &mut errors);
        check_event_types(&event_types, &mut errors);
        check_description(&description, &mut errors);
        if !errors.is_empty() {
            return Err(ServiceError::InvalidRequest { errors });
        }
        let now = self.now();
        let record = WebhookSubscriptionRecord {
            id: crate::new_id!(WebhookSubscriptionId, now),
            url,
            secret: new_secret(),
            event_types: distinct(event_types),
            description,
            active: true,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_webhook_subscription(&record).await?;
        let view = WebhookSubscriptionView::from(&record);
        Ok(CreatedWebhookSubscriptionView {
            id: view.id,
            url: view.url,
            event_types: view.event_types,
            description: view.description,
            active: view.active,
            created_at: view.created_at,
            updated_at: view.updated_at,
            secret: record.secret,
        })
    }

    pub async fn list(
        &self,
        caller: &AuthUser,
        page: &PageRequest,
    ) -> ServiceResult<Page<WebhookSubscriptionView>> {
        caller.require(Role::Admin)?;
        let page = self.store.list_webhook_subscriptions(page).await?;
        Ok(Page {
            items: page
                .items
                .iter()
                .map(WebhookSubscriptionView::from)
                .collect(),
            next_cursor: page.next_cursor,
        })
    }

    pub async fn get(&self, caller: &AuthUser, id: &str) -> ServiceResult<WebhookSubscriptionView> {
        caller.require(Role::Admin)?;
        let record = self
            .store
            .webhook_subscription(&subscription_id(id)?)
            .await?
            .ok_or_else(not_found_subscription)?;
        Ok(WebhookSubscriptionView::from(&record))
    }

    pub async fn update(
        &self,
        caller: &AuthUser,
        id: &str,
        input: WebhookSubscriptionPatchInput,
    ) -> ServiceResult<WebhookSubscriptionView> {
        caller.require(Role::Admin)?;
        let id = subscription_id(id)?;
        let url = input.url.map(|url| url.trim().to_string());
        let mut errors = Vec::new();
        if let Some(url) = &url {
            check_url(url, &mut errors);
        }
        if let Some(types) = &input.event_types {
            check_event_types(types, &mut errors);
        }
        if let Some(description) = &input.description {
            check_description(description, &mut errors);
        }
        if !errors.is_empty() {
            return Err(ServiceError::InvalidRequest { errors });
        }
        let patch = WebhookSubscriptionPatch {
            url,
            event_types: input.event_types.map(distinct),
            description: input.description,
            active: input.active,
        };
        let record = self
            .store
            .update_webhook_subscription(&id, &patch, self.now())
            .await?
            .ok_or_else(not_found_subscription)?;
        Ok(WebhookSubscriptionView::from(&record))
    }

    pub async fn delete(&self, caller: &AuthUser, id: &str) -> ServiceResult<()> {
        caller.require(Role::Admin)?;
        let id = subscription_id(id)?;
        if self
            .store
            .delete_webhook_subscription(&id, self.now())
            .await?
        {
            Ok(())
        } else {
            Err(not_found_subscription())
        }
    }

    /// The subscription's ID, checked to exist (deliveries of a deleted
    /// subscription are not shown).
    async fn live_subscription(&self, id: &str) -> ServiceResult<WebhookSubscriptionId> {
        let id = subscription_id(id)?;
        self.store
            .webhook_subscription(&id)
            .await?
            .ok_or_else(not_found_subscription)?;
        Ok(id)
    }

    pub async fn deliveries(
        &self,
        caller: &AuthUser,
        id: &str,
        status: Option<&str>,
        page: &PageRequest,
    ) -> ServiceResult<Page<WebhookDeliveryView>> {
        caller.require(Role::Admin)?;
        let status = status
            .map(|status| {
                WebhookDeliveryStatus::parse(status).ok_or_else(|| {
                    ServiceError::invalid("status", "one of PENDING, DELIVERED, FAILED")
                })
            })
            .transpose()?;
        let id = self.live_subscription(id).await?;
        let page = self
            .store
            .list_webhook_deliveries(&id, status, page)
            .await?;
        Ok(Page {
            items: page.items.iter().map(WebhookDeliveryView::from).collect(),
            next_cursor: page.next_cursor,
        })
    }

    pub async fn delivery(
        &self,
        caller: &AuthUser,
        id: &str,
        delivery: &str,
    ) -> ServiceResult<WebhookDeliveryDetailView> {
        caller.require(Role::Admin)?;
        let id = self.live_subscription(id).await?;
        let (delivery, attempts) = self
            .store
            .webhook_delivery(&id, &delivery_id(delivery)?)
            .await?
            .ok_or_else(not_found_delivery)?;
        Ok(WebhookDeliveryDetailView {
            delivery: WebhookDeliveryView::from(&delivery),
            payload: delivery.payload.clone(),
            attempt_log: attempts.iter().map(WebhookAttemptView::from).collect(),
        })
    }

    pub async fn retry(
        &self,
        caller: &AuthUser,
        id: &str,
        delivery: &str,
    ) -> ServiceResult<WebhookDeliveryView> {
        caller.require(Role::Admin)?;
        let id = self.live_subscription(id).await?;
        let delivery = self
            .store
            .retry_webhook_delivery(&id, &delivery_id(delivery)?, self.now())
            .await?
            .ok_or_else(not_found_delivery)?;
        Ok(WebhookDeliveryView::from(&delivery))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http() {
        let errors_of = |url: &str| {
            let mut errors = Vec::new();
            check_url(url, &mut errors);
            errors.len()
        };
        assert_eq!(errors_of("https://example.com/hooks"), 0);
        assert_eq!(errors_of("http://127.0.0.1:8080/"), 0);
        assert_eq!(errors_of("ftp://example.com/"), 1);
        assert_eq!(errors_of("/relative"), 1);
        assert_eq!(errors_of("not a url"), 1);
        assert_eq!(
            errors_of(&format!("https://e.com/{}", "a".repeat(URL_LENGTH_MAX))),
            1
        );
    }

    #[test]
    fn secrets_are_prefixed_and_random() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("whsec_") && a.len() == 6 + 2 * SECRET_BYTES);
        assert_ne!(a, b);
    }
}
