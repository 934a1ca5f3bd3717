//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{auth, booking, catalog, queue, system};

#[derive(OpenApi)]
#[openapi(
    info(title = "boxoffice", description = "Ticket booking: venues, shows, seat maps, holds, bookings, e-tickets and check-in. Errors are RFC 9457 problem+json with a stable `code`."),
    paths(
        system::healthz, system::readyz, system::metrics,
        auth::register, auth::login, auth::me, auth::list_users, auth::patch_user,
        catalog::create_venue, catalog::list_venues, catalog::venue,
        catalog::create_event, catalog::patch_event, catalog::list_events, catalog::event,
        catalog::create_show, catalog::show, catalog::patch_show, catalog::seat_map, catalog::seat_stream, catalog::sales,
        queue::join_queue, queue::queue_ticket, queue::queue_ticket_stream, queue::challenge,
        booking::create_hold, booking::hold, booking::release_hold,
        booking::create_booking, booking::list_bookings, booking::booking, booking::cancel_booking,
        booking::check_in, booking::ticket_public_key, booking::audit, booking::sandbox_charges,
    ),
    modifiers(&BearerAuth),
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
