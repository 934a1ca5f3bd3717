//! Outgoing webhook subscriptions and their delivery log (admin only).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use boxoffice_services::outgoing_webhooks::{
    CreatedWebhookSubscriptionView, WebhookDeliveryDetailView, WebhookDeliveryView,
    WebhookSubscriptionInput, WebhookSubscriptionPatchInput, WebhookSubscriptionView,
};
use serde::Deserialize;

use super::{created, Created, ListView};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Caller, PageParams};
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Subscribe a URL to domain events (admin). The answer is the only one
/// that shows the signing `secret`.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", security(("bearer" = [])), request_body = WebhookSubscriptionInput,
    responses((status = 201, body = CreatedWebhookSubscriptionView), (status = 400, description = "invalid_request"),
        (status = 401, description = "unauthorized"), (status = 403, description = "forbidden")))]
pub async fn create_subscription(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(input): ApiJson<WebhookSubscriptionInput>,
) -> Result<Created<CreatedWebhookSubscriptionView>, ApiError> {
    Ok(created(
        state
            .services
            .outgoing_webhooks
            .create(&caller, input)
            .await?,
    ))
}

/// Webhook subscriptions (admin), oldest first.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<WebhookSubscriptionView>), (status = 403, description = "forbidden")))]
pub async fn list_subscriptions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListView<WebhookSubscriptionView>>, ApiError> {
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page_request()?;
    Ok(ListView::of(
        state
            .services
            .outgoing_webhooks
            .list(&caller, &page)
            .await?,
    ))
}

/// A webhook subscription (admin; without its secret).
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = WebhookSubscriptionView), (status = 404, description = "not_found")))]
pub async fn subscription(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookSubscriptionView>, ApiError> {
    Ok(Json(
        state.services.outgoing_webhooks.get(&caller, &id).await?,
    ))
}

/// Change a webhook subscription's URL, event types, description, or pause
/// it (`active: false`) (admin).
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])), request_body = WebhookSubscriptionPatchInput,
    responses((status = 200, body = WebhookSubscriptionView), (status = 400, description = "invalid_request"), (status = 404, description = "not_found")))]
pub async fn patch_subscription(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<WebhookSubscriptionPatchInput>,
) -> Result<Json<WebhookSubscriptionView>, ApiError> {
    Ok(Json(
        state
            .services
            .outgoing_webhooks
            .update(&caller, &id, input)
            .await?,
    ))
}

/// Delete a webhook subscription: nothing more is sent to it, pending
/// deliveries included (admin).
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 404, description = "not_found")))]
pub async fn delete_subscription(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .outgoing_webhooks
        .delete(&caller, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A subscription's deliveries, newest first (admin).
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("status" = Option<String>, Query, description = "PENDING, DELIVERED or FAILED"), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<WebhookDeliveryView>), (status = 400, description = "invalid_request"), (status = 404, description = "not_found")))]
pub async fn deliveries(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<ListView<WebhookDeliveryView>>, ApiError> {
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page_request()?;
    Ok(ListView::of(
        state
            .services
            .outgoing_webhooks
            .deliveries(&caller, &id, query.status.as_deref(), &page)
            .await?,
    ))
}

/// A delivery with its payload and every attempt (admin).
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries/{delivery_id}", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = WebhookDeliveryDetailView), (status = 404, description = "not_found")))]
pub async fn delivery(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Json<WebhookDeliveryDetailView>, ApiError> {
    Ok(Json(
        state
            .services
            .outgoing_webhooks
            .delivery(&caller, &id, &delivery_id)
            .await?,
    ))
}

/// Send a delivery again now, also a FAILED one (admin).
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks", security(("bearer" = [])),
    responses((status = 202, body = WebhookDeliveryView), (status = 404, description = "not_found")))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<WebhookDeliveryView>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(
            state
                .services
                .outgoing_webhooks
                .retry(&caller, &id, &delivery_id)
                .await?,
        ),
    ))
}
