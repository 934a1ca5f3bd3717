//! The buyer's pages: search, an event, the seat picker, a hold with its
//! countdown and payment, bookings with their QR tickets.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use boxoffice_domain::HoldRequestInput;
use boxoffice_services::booking::{ConfirmInput, IdempotencyRequest};
use boxoffice_services::catalog::{EventView, ShowView};
use boxoffice_services::views::{BookingView, HoldView};
use boxoffice_services::{Replayable, ServiceError};
use boxoffice_store::{EventFilter, PageRequest};
use maud::{html, Markup};
use rand::Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::form::{FormFields, PageQuery};
use super::layout::{
    countdown, html_response, money, notice, ok, problem_box, when, PageError, PageResult, Shell,
};
use super::session::{SameOrigin, Viewer};
use super::tickets::qr_svg;
use crate::error::{problem_of_service, Problem};
use crate::AppState;

/// Events on the home page and on one page of search results.
const EVENTS_PER_PAGE: u32 = 12;
/// Bookings listed on "My bookings".
const BOOKINGS_PER_PAGE: u32 = 50;

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    q: Option<String>,
    city: Option<String>,
    genre: Option<String>,
}

fn blank_to_none(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

pub async fn home(
    State(state): State<AppState>,
    viewer: Viewer,
    PageQuery(query): PageQuery<SearchQuery>,
) -> PageResult {
    let filter = EventFilter {
        query: blank_to_none(&query.q),
        city: blank_to_none(&query.city),
        genre: blank_to_none(&query.genre),
        from: None,
        to: None,
    };
    let searching = filter.query.is_some() || filter.city.is_some() || filter.genre.is_some();
    let page = PageRequest {
        limit: EVENTS_PER_PAGE,
        after: None,
    };
    let (events, problem) = match state.services.catalog.search_events(filter, &page).await {
        Ok(found) => (found.items, None),
        Err(error) => (Vec::new(), Some(problem_of_service(&error))),
    };
    let mut cards = Vec::new();
    for event in &events {
        // The listing shows each event's next show; its page has them all.
        let next = state
            .services
            .catalog
            .next_show(&event.id)
            .await
            .ok()
            .flatten();
        cards.push(event_card(event, next.as_ref()));
    }
    let q = query.q.clone().unwrap_or_default();
    ok(Shell::new(&viewer, "Events").render(html! {
        h1 { "Find a show" }
        form.search role="search" method="get" action="/" {
            input type="search" name="q" value=(q) placeholder="Artist, event, venue or city"
                aria-label="Search" autocomplete="off" list="suggestions" data-suggest;
            datalist id="suggestions" {}
            input type="text" name="city" value=(query.city.clone().unwrap_or_default())
                placeholder="City" aria-label="City";
            button type="submit" { "Search" }
        }
        @if let Some(problem) = &problem { (problem_box(problem)) }
        h2 { @if searching { "Results for “" (q) "”" } @else { "Upcoming" } }
        @if cards.is_empty() {
            p.empty { @if searching { "Nothing found. Try other words." } @else { "No events yet." } }
        }
        ul.cards data-results { @for card in cards { (card) } }
    }))
}

fn event_card(event: &EventView, next_show: Option<&ShowView>) -> Markup {
    html! {
        li.card data-event-id=(event.id) {
            h3 { a href={ "/events/" (event.id) } { (event.title) } }
            @if !event.performer.is_empty() { p.performer { (event.performer) } }
            p.meta {
                @if !event.genre.is_empty() { span.tag { (event.genre) } }
                @for tag in &event.tags { span.tag { (tag) } }
            }
            @if let Some(show) = next_show {
                p { (when(&show.starts_at)) " · " (show.venue.name) ", " (show.venue.city) }
                a.button href={ "/shows/" (show.id) } { "Choose seats" }
            }
        }
    }
}

pub async fn event(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> PageResult {
    let event = state.services.catalog.event(&id).await?;
    let mut shows = event.shows.clone().unwrap_or_default();
    shows.sort_by(|a, b| a.starts_at.cmp(&b.starts_at));
    ok(Shell::new(&viewer, &event.title).render(html! {
        h1 { (event.title) }
        @if !event.performer.is_empty() { p.performer { (event.performer) } }
        @if !event.description.is_empty() { p { (event.description) } }
        h2 { "Shows" }
        @if shows.is_empty() { p.empty { "No shows yet." } }
        ul.cards {
            @for show in &shows {
                li.card data-show-id=(show.id) {
                    h3 { (when(&show.starts_at)) }
                    p { (show.venue.name) ", " (show.venue.city) }
                    p.meta { (show_status_words(show)) " · " (show.availability.available) " places left" }
                    @if show.status == "ON_SALE" {
                        a.button href={ "/shows/" (show.id) } { "Choose seats" }
                    }
                }
            }
        }
    }))
}

fn show_status_words(show: &ShowView) -> &'static str {
    match show.status.as_str() {
        "ON_SALE" => "On sale",
        "PAUSED" => "Sales paused",
        "CANCELLED" => "Cancelled",
        _ => "Not on sale",
    }
}

/// The seat picker: the live map (JavaScript), and forms that work without
/// it (best available, standing).
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<TicketQuery>,
) -> PageResult {
    show_page(&state, &viewer, &id, query.ticket.as_deref(), None).await
}

#[derive(Deserialize, Default)]
pub struct TicketQuery {
    /// The viewer's waiting-room ticket for this show.
    ticket: Option<String>,
}

struct StandingSection {
    id: String,
    name: String,
    category: String,
}

async fn standing_sections(state: &AppState, show: &ShowView) -> Vec<StandingSection> {
    let Ok(venue) = state.services.catalog.venue(&show.venue_id).await else {
        return Vec::new();
    };
    let sections = venue
        .sections
        .as_ref()
        .and_then(|s| s.as_array())
        .cloned()
        .unwrap_or_default();
    sections
        .iter()
        .filter(|section| section["kind"] == "standing")
        .map(|section| StandingSection {
            id: section["id"].as_str().unwrap_or("").to_string(),
            name: section["name"].as_str().unwrap_or("").to_string(),
            category: section["category"].as_str().unwrap_or("").to_string(),
        })
        .collect()
}

async fn show_page(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    ticket: Option<&str>,
    problem: Option<Problem>,
) -> PageResult {
    let show = state.services.catalog.show(id).await?;
    let room = match show.waiting_room.enabled {
        true => Some(super::queue::room_panel(state, viewer, &show, ticket).await),
        false => None,
    };
    let admission_token = room.as_ref().and_then(|room| room.admission_token.clone());
    let admission = html! {
        @if let Some(token) = &admission_token {
            input type="hidden" name="admission_token" value=(token);
            input type="hidden" name="ticket" value=(ticket.unwrap_or(""));
        }
    };
    let standing = standing_sections(state, &show).await;
    let status = problem.as_ref().map(|p| p.status).unwrap_or(StatusCode::OK);
    // With a waiting room, holding waits for an admission.
    let on_sale = show.status == "ON_SALE" && (room.is_none() || admission_token.is_some());
    let max = show.max_tickets_per_user.max(1);
    let title = format!("{} · {}", show.event.title, when(&show.starts_at));
    let markup = Shell::new(viewer, &title).with_seat_map().render(html! {
        h1 { (show.event.title) }
        p.meta { (when(&show.starts_at)) " · " (show.venue.name) ", " (show.venue.city) }
        @if let Some(problem) = &problem { (problem_box(problem)) }
        @if show.status != "ON_SALE" { (notice(&format!("{}: seats cannot be held right now.", show_status_words(&show)))) }
        @if let Some(room) = &room { (room.markup) }
        section.picker {
            div.seat-map data-seat-map data-show-id=(show.id)
                data-stream-url={ "/v1/shows/" (show.id) "/seats/stream" }
                data-max-select=(max) {
                p data-seat-map-status { "Loading the seat map… (it needs JavaScript; the forms below work without it)" }
            }
            div.legend data-seat-map-legend {}
            form.stack.hold-form method="post" action={ "/shows/" (show.id) "/hold" } data-seat-form {
                input type="hidden" name="mode" value="seats";
                (admission)
                p data-selection-summary { "No seats selected. Click seats on the map." }
                button type="submit" disabled[!on_sale] data-hold-selected { "Hold selected seats" }
            }
        }
        section.alternatives {
            h2 { "Or let us choose" }
            form.inline-form method="post" action={ "/shows/" (show.id) "/hold" } data-best-form {
                input type="hidden" name="mode" value="best";
                (admission)
                label { "Seats" (quantity_select(max)) }
                label { "Category"
                    select name="category" {
                        option value="" { "Any" }
                        @for (category, price) in &show.prices {
                            option value=(category) { (category) " · " (money(price)) }
                        }
                    }
                }
                button type="submit" disabled[!on_sale] { "Best available" }
            }
            @for section in &standing {
                form.inline-form method="post" action={ "/shows/" (show.id) "/hold" } data-standing-form=(section.id) {
                    input type="hidden" name="mode" value="standing";
                    (admission)
                    input type="hidden" name="section" value=(section.id);
                    label { (section.name) " (standing"
                        @if let Some(price) = show.prices.get(&section.category) { ", " (money(price)) }
                        ")" (quantity_select(max)) }
                    button type="submit" disabled[!on_sale] { "Hold standing places" }
                }
            }
        }
        p.meta { "You can hold up to " (max) " tickets for this show. A hold keeps them for "
            (show.hold_ttl_seconds / 60) " minutes while you pay." }
    });
    Ok(html_response(status, markup))
}

fn quantity_select(max: u32) -> Markup {
    html! {
        select name="quantity" {
            @for n in 1..=max.min(boxoffice_domain::SEATS_PER_HOLD_MAX) {
                option value=(n) selected[n == 2.min(max)] { (n) }
            }
        }
    }
}

fn hold_input(show_id: &str, form: &FormFields) -> HoldRequestInput {
    // A quantity that is not a number is passed on as 0, which the service
    // refuses with its usual words.
    let quantity = || {
        form.get("quantity")
            .map(|q| q.trim().parse::<i64>().unwrap_or(0))
    };
    let mut input = HoldRequestInput {
        show_id: show_id.to_string(),
        seat_ids: None,
        quantity: None,
        category: None,
        section: None,
    };
    match form.get("mode").unwrap_or("seats") {
        "best" => {
            input.quantity = quantity();
            input.category = form.non_blank("category");
        }
        "standing" => {
            input.quantity = quantity();
            input.section = form.non_blank("section");
        }
        _ => input.seat_ids = Some(form.all("seat_ids")),
    }
    input
}

pub async fn hold(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    form: FormFields,
) -> PageResult {
    let caller = viewer.require_user(&format!("/shows/{id}"))?;
    let input = hold_input(&id, &form);
    let admission = form.non_blank("admission_token");
    let ticket = form.non_blank("ticket");
    match state
        .services
        .booking
        .hold(&caller, input, admission.as_deref(), None)
        .await
    {
        Ok(Replayable::Fresh(hold)) => {
            Ok(Redirect::to(&format!("/holds/{}", hold.id)).into_response())
        }
        Ok(Replayable::Replay(_)) => Ok(Redirect::to(&format!("/shows/{id}")).into_response()),
        Err(ServiceError::NotFound { .. }) => Err(PageError::NotFound),
        Err(error) => {
            let problem = problem_of_service(&error);
            show_page(&state, &viewer, &id, ticket.as_deref(), Some(problem)).await
        }
    }
}

pub async fn hold_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> PageResult {
    let caller = viewer.require_user(&format!("/holds/{id}"))?;
    let hold = state.services.booking.get_hold(&caller, &id).await?;
    render_hold(&state, &viewer, &hold, None, StatusCode::OK).await
}

async fn render_hold(
    state: &AppState,
    viewer: &Viewer,
    hold: &HoldView,
    message: Option<Markup>,
    status: StatusCode,
) -> PageResult {
    let show = state.services.catalog.show(&hold.show_id).await?;
    let active = hold.status == "ACTIVE";
    let idempotency_key = format!("web-{:032x}", rand::thread_rng().gen::<u128>());
    let markup = Shell::new(viewer, "Your hold").render(html! {
        h1 { "Your seats for " (show.event.title) }
        p.meta { (when(&show.starts_at)) " · " (show.venue.name) ", " (show.venue.city) }
        @if let Some(message) = message { (message) }
        (places_table(&hold.seats, &hold.standing))
        p.total { "Total " strong data-total { (money(&hold.total)) } }
        @match hold.status.as_str() {
            "ACTIVE" => {
                p.hold-timer data-hold-timer {
                    "Held for you for " (countdown(&hold.expires_at, hold.expires_in_seconds))
                    " (until " (when(&hold.expires_at)) ")."
                }
                p.expired-message hidden data-expired-message {
                    "Your hold has expired and the seats are back on sale. "
                    a href={ "/shows/" (hold.show_id) } { "Choose seats again" } "."
                }
                form.stack method="post" action={ "/holds/" (hold.id) "/pay" } data-pay-form {
                    input type="hidden" name="idempotency_key" value=(idempotency_key);
                    label { "Card (test mode)"
                        select name="payment_token" {
                            option value="tok_visa" { "Visa ending 4242 — test card that pays" }
                            option value="tok_declined" { "Card that is declined — test" }
                            option value="tok_unavailable" { "Payment provider down — test" }
                        }
                    }
                    button type="submit" { "Pay " (money(&hold.total)) }
                }
                form method="post" action={ "/holds/" (hold.id) "/release" } {
                    button.secondary type="submit" { "Release these seats" }
                }
            }
            "CONFIRMED" => {
                @if let Some(booking_id) = &hold.booking_id {
                    p { "Paid. " a href={ "/bookings/" (booking_id) } { "See your tickets" } "." }
                }
            }
            "EXPIRED" => {
                p.problem { "This hold has expired; its seats are back on sale. "
                    a href={ "/shows/" (hold.show_id) } { "Choose seats again" } "." }
            }
            _ => {
                p { "These seats were released and are back on sale. "
                    a href={ "/shows/" (hold.show_id) } { "Choose seats again" } "." }
            }
        }
        @if !active { p { a href={ "/shows/" (hold.show_id) } { "Back to the seat map" } } }
    });
    Ok(html_response(status, markup))
}

fn places_table(
    seats: &[boxoffice_services::views::HeldSeatView],
    standing: &[boxoffice_services::views::HeldStandingView],
) -> Markup {
    html! {
        table.places {
            thead { tr { th { "Place" } th { "Category" } th { "Price" } } }
            tbody {
                @for seat in seats {
                    tr data-seat-id=(seat.id) { td { "Seat " (seat.id) } td { (seat.category) } td { (money(&seat.price)) } }
                }
                @for place in standing {
                    tr { td { (place.quantity) " × standing, " (place.section) } td { (place.category) }
                        td { (place.quantity) " × " (money(&place.unit_price)) } }
                }
            }
        }
    }
}

pub async fn pay(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    form: FormFields,
) -> PageResult {
    let caller = viewer.require_user(&format!("/holds/{id}"))?;
    let payment_token = form.text("payment_token");
    let key = form
        .non_blank("idempotency_key")
        .unwrap_or_else(|| format!("web-{:032x}", rand::thread_rng().gen::<u128>()));
    // The same canonical JSON the API hashes, so a key is bound to its body.
    let body = serde_json::json!({"hold_id": id, "payment_token": payment_token}).to_string();
    let idempotency = IdempotencyRequest {
        key,
        request_hash: hex::encode(Sha256::digest(body.as_bytes())),
    };
    let input = ConfirmInput {
        hold_id: id.clone(),
        payment_token,
    };
    let outcome = state
        .services
        .booking
        .confirm(&caller, input, Some(idempotency))
        .await;
    let message = match outcome {
        Ok(Replayable::Fresh(booking)) => {
            return Ok(Redirect::to(&format!("/bookings/{}", booking.id)).into_response())
        }
        // A second click of the same form: show the hold as it is now.
        Ok(Replayable::Replay(_)) => {
            return Ok(Redirect::to(&format!("/holds/{id}")).into_response())
        }
        Err(ServiceError::NotFound { .. }) => return Err(PageError::NotFound),
        Err(ServiceError::PaymentDeclined) => html! {
            div.problem role="alert" data-problem-code="payment_declined" {
                strong { "Your card was declined." }
                p { "Nothing was charged. Your seats were released and are back on sale; "
                    "choose them again to pay with another card." }
            }
        },
        Err(ServiceError::PaymentUnavailable) => html! {
            div.problem role="alert" data-problem-code="payment_unavailable" {
                strong { "The payment provider is not answering." }
                p { "Nothing was charged and your seats are still held. Try again in a moment." }
            }
        },
        Err(error) => problem_box(&problem_of_service(&error)),
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let hold = state.services.booking.get_hold(&caller, &id).await?;
    render_hold(&state, &viewer, &hold, Some(message), status).await
}

pub async fn release(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    _: SameOrigin,
) -> PageResult {
    let caller = viewer.require_user(&format!("/holds/{id}"))?;
    let hold = state.services.booking.get_hold(&caller, &id).await?;
    match state.services.booking.release(&caller, &id).await {
        Ok(()) | Err(ServiceError::HoldNotActive { .. }) => {
            Ok(Redirect::to(&format!("/shows/{}", hold.show_id)).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn bookings(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    let caller = viewer.require_user("/bookings")?;
    let page = PageRequest {
        limit: BOOKINGS_PER_PAGE,
        after: None,
    };
    let bookings = state
        .services
        .booking
        .list_bookings(&caller, None, None, &page)
        .await?;
    let mut rows = Vec::new();
    for booking in &bookings.items {
        let show = state.services.catalog.show(&booking.show_id).await.ok();
        rows.push((booking, show));
    }
    ok(Shell::new(&viewer, "My bookings").render(html! {
        h1 { "My bookings" }
        @if rows.is_empty() { p.empty { "No bookings yet. " a href="/" { "Find a show" } "." } }
        ul.cards {
            @for (booking, show) in &rows {
                li.card data-booking-id=(booking.id) {
                    h3 { a href={ "/bookings/" (booking.id) } {
                        @if let Some(show) = show { (show.event.title) } @else { "Booking " (booking.id) } } }
                    @if let Some(show) = show { p { (when(&show.starts_at)) " · " (show.venue.name) } }
                    p.meta { (booking.tickets.len()) " tickets · " (money(&booking.total)) " · "
                        span data-booking-status { (booking_status_words(booking)) } }
                    @if booking.status == "CONFIRMED" { (cancel_form(booking)) }
                }
            }
        }
    }))
}

fn booking_status_words(booking: &BookingView) -> &'static str {
    match booking.status.as_str() {
        "CONFIRMED" => "Confirmed",
        "CANCELLED" => "Cancelled and refunded",
        _ => "Unknown",
    }
}

fn cancel_form(booking: &BookingView) -> Markup {
    html! {
        form.confirm method="post" action={ "/bookings/" (booking.id) "/cancel" } data-confirm="Cancel this booking? The money is refunded and the seats go back on sale." {
            button.secondary type="submit" { "Cancel booking" }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct BookingQuery {
    notice: Option<String>,
}

pub async fn booking(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<BookingQuery>,
) -> PageResult {
    let caller = viewer.require_user(&format!("/bookings/{id}"))?;
    let booking = state.services.booking.booking(&caller, &id).await?;
    let show = state.services.catalog.show(&booking.show_id).await?;
    let cancelled_now = query.notice.as_deref() == Some("cancelled");
    ok(Shell::new(&viewer, "Your tickets").render(html! {
        h1 { @if booking.status == "CONFIRMED" { "You're going! " } (show.event.title) }
        p.meta { (when(&show.starts_at)) " · " (show.venue.name) ", " (show.venue.address) ", " (show.venue.city) }
        @if cancelled_now { (notice("Booking cancelled. The money is on its way back to your card.")) }
        p { "Booking " code { (booking.id) } " · " span data-booking-status { (booking_status_words(&booking)) }
            " · " (money(&booking.total)) }
        @if booking.status == "CONFIRMED" {
            p { "Show a ticket's code at the door; each one admits one person once." }
        }
        ul.tickets {
            @for ticket in &booking.tickets {
                li.ticket data-ticket-id=(ticket.id) data-ticket-code=(ticket.code) {
                    h3 { @if let Some(seat) = &ticket.seat_id { "Seat " (seat) } @else { "Standing · " (ticket.section) } }
                    @if booking.status == "CONFIRMED" { div.qr { (qr_svg(&ticket.code)) } }
                    p.code { code { (ticket.code) } }
                    @if let Some(at) = &ticket.checked_in_at { p.meta { "Checked in " (when(at)) } }
                }
            }
        }
        @if booking.status == "CONFIRMED" { (cancel_form(&booking)) }
        p { a href="/bookings" { "All my bookings" } }
    }))
}

pub async fn cancel(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    _: SameOrigin,
) -> PageResult {
    let caller = viewer.require_user(&format!("/bookings/{id}"))?;
    match state.services.booking.cancel(&caller, &id).await {
        Ok(_) | Err(ServiceError::BookingNotActive) => {
            Ok(Redirect::to(&format!("/bookings/{id}?notice=cancelled")).into_response())
        }
        Err(error) => Err(error.into()),
    }
}
