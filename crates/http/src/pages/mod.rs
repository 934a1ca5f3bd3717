//! The web pages: buyers, organizers and door staff, server-rendered with
//! maud (ADR 0016).
//!
//! Every page works without JavaScript, except the live parts (the seat map,
//! the hold countdown, the live sales table). Forms post to the page routes
//! here, which call the same services as `/v1`, so a page can never do what
//! the API would refuse; the live parts call `/v1` from the browser.
//!
//! The session is the API's own access token in an `HttpOnly`,
//! `SameSite=Lax` cookie; page forms also refuse a foreign `Origin`.
//!
//! # Layout
//! - [`session`]: the cookie, the viewer, the origin check.
//! - [`layout`]: the page shell, money and time in words, problems in words.
//! - [`form`]: urlencoded and multipart form fields.
//! - [`assets`]: CSS and JavaScript, compiled into the binary.
//! - [`buyer`], [`account`], [`admin`], [`door`], [`webhooks`]: the pages.

mod account;
mod admin;
mod assets;
mod buyer;
mod door;
mod form;
mod layout;
mod queue;
mod session;
mod tickets;
mod webhooks;

use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

pub use layout::PageError;
pub use session::Viewer;

/// The pages' routes, merged into the application's router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(buyer::home))
        .route("/events/{id}", get(buyer::event))
        .route("/shows/{id}", get(buyer::show))
        .route("/shows/{id}/hold", post(buyer::hold))
        .route("/shows/{id}/queue", post(queue::join))
        .route("/holds/{id}", get(buyer::hold_page))
        .route("/holds/{id}/pay", post(buyer::pay))
        .route("/holds/{id}/release", post(buyer::release))
        .route("/bookings", get(buyer::bookings))
        .route("/bookings/{id}", get(buyer::booking))
        .route("/bookings/{id}/cancel", post(buyer::cancel))
        .route("/signup", get(account::signup_page).post(account::signup))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route("/admin", get(admin::dashboard))
        .route(
            "/admin/webhooks",
            get(webhooks::subscriptions).post(webhooks::create_subscription),
        )
        .route("/admin/webhooks/{id}", get(webhooks::deliveries))
        .route(
            "/admin/venues/new",
            get(admin::new_venue_page).post(admin::create_venue),
        )
        .route("/admin/venues/{id}", get(admin::venue))
        .route(
            "/admin/events/new",
            get(admin::new_event_page).post(admin::create_event),
        )
        .route(
            "/admin/events/{id}",
            get(admin::event).post(admin::update_event),
        )
        .route(
            "/admin/events/{id}/shows",
            get(admin::new_show_page).post(admin::create_show),
        )
        .route(
            "/admin/shows/{id}",
            get(admin::show).post(admin::update_show),
        )
        .route("/admin/shows/{id}/sales", get(admin::sales))
        .route("/checkin", get(door::checkin_page).post(door::checkin))
        .route("/assets/{name}", get(assets::asset))
        .route("/favicon.ico", get(assets::favicon))
}
