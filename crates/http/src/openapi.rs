//! The OpenAPI document, generated from the handlers' annotations.

use axum::http::Method;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Object, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};

use crate::rate_limit::rate_limit_class;

use crate::routes::{auth, booking, catalog, payments, queue, seat_stream, system, webhooks_out};

#[derive(OpenApi)]
#[openapi(
    info(title = "boxoffice", description = "Ticket booking: venues, shows, seat maps, holds, bookings, e-tickets and check-in. Errors are RFC 9457 problem+json with a stable `code`."),
    paths(
        system::healthz, system::readyz, system::metrics,
        auth::register, auth::login, auth::me, auth::list_users, auth::patch_user,
        catalog::create_venue, catalog::list_venues, catalog::venue,
        catalog::create_event, catalog::patch_event, catalog::list_events, catalog::suggest_events, catalog::event,
        catalog::create_show, catalog::show, catalog::patch_show, catalog::seat_map, seat_stream::seat_stream, catalog::sales,
        queue::join_queue, queue::queue_ticket, queue::queue_ticket_stream, queue::challenge,
        booking::create_hold, booking::hold, booking::release_hold,
        booking::create_booking, booking::list_bookings, booking::booking, booking::cancel_booking,
        booking::check_in, booking::ticket_public_key, booking::tickets_pdf, booking::ticket_qr_png, booking::audit, booking::sandbox_charges,
        payments::webhook,
        webhooks_out::create_subscription, webhooks_out::list_subscriptions, webhooks_out::subscription,
        webhooks_out::patch_subscription, webhooks_out::delete_subscription, webhooks_out::deliveries,
        webhooks_out::delivery, webhooks_out::retry_delivery,
    ),
    modifiers(&BearerAuth, &RateLimitResponses),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
        }
    }
}

/// Adds the 429 answer to every operation the rate limits cover, decided by
/// the same classification as the limits themselves, so that the document
/// and the server cannot disagree (and routes that land later are covered).
struct RateLimitResponses;

impl Modify for RateLimitResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (Method::GET, item.get.as_mut()),
                (Method::POST, item.post.as_mut()),
                (Method::PUT, item.put.as_mut()),
                (Method::PATCH, item.patch.as_mut()),
                (Method::DELETE, item.delete.as_mut()),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    if rate_limit_class(&method, path).is_some() {
                        add_rate_limited(operation);
                    }
                }
            }
        }
    }
}

fn add_rate_limited(operation: &mut Operation) {
    let retry_after = HeaderBuilder::new()
        .schema(Object::with_type(Type::Integer))
        .description(Some(
            "whole seconds until the request would pass (rounded up, at least 1)",
        ))
        .build();
    let response = ResponseBuilder::new()
        .description(
            "rate_limited: over a rate limit of the caller's user or address (or, on login, \
             of the account's failed logins); problem+json \
             with `retry_after_seconds`",
        )
        .header("Retry-After", retry_after)
        .build();
    operation
        .responses
        .responses
        .insert("429".to_string(), response.into());
}
