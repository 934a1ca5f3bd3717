//! Organizer pages: venues (form or layout JSON, with a preview), events,
//! shows, and a live sales page per show.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use boxoffice_domain::{Role, VenueInput};
use boxoffice_services::catalog::{
    EventInput, EventPatchInput, ShowInput, ShowPatchInput, ShowView,
};
use boxoffice_services::ServiceError;
use boxoffice_store::{EventFilter, PageRequest};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::form::{FormFields, PageQuery};
use super::layout::{
    html_response, money, notice, ok, problem_box, when, PageError, PageResult, Shell,
};
use super::session::Viewer;
use crate::error::{problem_of_service, Problem};
use crate::AppState;

/// Venues and events listed on the organizer's dashboard.
const DASHBOARD_ROWS_MAX: u32 = 100;

fn invalid(detail: impl Into<String>) -> Problem {
    problem_of_service(&ServiceError::invalid("form", detail.into()))
}

pub async fn dashboard(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    viewer.require_role(Role::Admin, "/admin")?;
    let page = PageRequest {
        limit: DASHBOARD_ROWS_MAX,
        after: None,
    };
    let venues = state.services.catalog.list_venues(&page).await?;
    let events = state
        .services
        .catalog
        .search_events(EventFilter::default(), &page)
        .await?;
    ok(Shell::new(&viewer, "Organizer").render(html! {
        h1 { "Organizer" }
        p { a href="/admin/webhooks" { "Outgoing webhooks" } }
        section {
            h2 { "Venues" }
            p { a.button href="/admin/venues/new" { "New venue" } }
            table {
                thead { tr { th { "Venue" } th { "City" } th { "Seats" } th { "Standing" } } }
                tbody {
                    @for venue in &venues.items {
                        tr { td { a href={ "/admin/venues/" (venue.id) } { (venue.name) } } td { (venue.city) }
                            td { (venue.seat_count) } td { (venue.standing_capacity) } }
                    }
                }
            }
        }
        section {
            h2 { "Events" }
            p { a.button href="/admin/events/new" { "New event" } }
            table {
                thead { tr { th { "Event" } th { "Performer" } th { "Genre" } } }
                tbody {
                    @for event in &events.items {
                        tr { td { a href={ "/admin/events/" (event.id) } { (event.title) } } td { (event.performer) } td { (event.genre) } }
                    }
                }
            }
        }
    }))
}

const EXAMPLE_LAYOUT: &str = r#"{
  "sections": [
    {"id": "A", "name": "Block A", "kind": "seated", "category": "premium",
     "rows": [{"label": "1", "seats": 12}, {"label": "2", "seats": 14}]},
    {"id": "FLOOR", "name": "Floor", "kind": "standing", "category": "ga", "capacity": 200}
  ]
}"#;

fn venue_form(viewer: &Viewer, form: &FormFields, problem: Option<&Problem>) -> Markup {
    let layout = form.get("layout_json").unwrap_or(EXAMPLE_LAYOUT);
    Shell::new(viewer, "New venue").with_seat_map().render(html! {
        h1 { "New venue" }
        @if let Some(problem) = problem { (problem_box(problem)) }
        form.stack method="post" action="/admin/venues/new" enctype="multipart/form-data" data-venue-form {
            label { "Name" input type="text" name="name" value=(form.text("name")); }
            label { "City" input type="text" name="city" value=(form.text("city")); }
            label { "Address" input type="text" name="address" value=(form.text("address")); }
            label { "Time zone" input type="text" name="timezone" value=(form.get("timezone").unwrap_or("Europe/Berlin")); }
            fieldset {
                legend { "Layout" }
                p.meta { "Upload a layout JSON file, or edit the layout below (API.md format: "
                    code { "sections" } " with seated rows or standing capacity). "
                    "Name, city, address and time zone above win over the file's." }
                label { "Layout file (JSON)" input type="file" name="layout_file" accept="application/json,.json"; }
                label { "Layout JSON" textarea name="layout_json" rows="12" spellcheck="false" data-layout-source { (layout) } }
            }
            h2 { "Preview" }
            div.seat-map.preview data-layout-preview { p.meta { "The preview needs JavaScript." } }
            button type="submit" { "Create venue" }
        }
    })
}

pub async fn new_venue_page(viewer: Viewer) -> PageResult {
    viewer.require_role(Role::Admin, "/admin/venues/new")?;
    ok(venue_form(&viewer, &FormFields::default(), None))
}

/// The venue a form describes: the uploaded file, else the text area, with
/// the form's own fields on top.
fn venue_input(form: &FormFields) -> Result<VenueInput, Problem> {
    let source = form
        .non_blank("layout_file")
        .or_else(|| form.non_blank("layout_json"))
        .ok_or_else(|| invalid("upload a layout file or fill in the layout JSON"))?;
    let mut layout: Map<String, Value> = match serde_json::from_str(&source) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(invalid(
                "the layout must be a JSON object with \"sections\"",
            ))
        }
        Err(error) => return Err(invalid(format!("the layout is not valid JSON: {error}"))),
    };
    for field in ["name", "city", "address", "timezone"] {
        if let Some(value) = form.non_blank(field) {
            layout.insert(field.to_string(), Value::String(value));
        }
    }
    serde_json::from_value(Value::Object(layout)).map_err(|error| {
        invalid(format!(
            "the layout does not match the venue format: {error}"
        ))
    })
}

pub async fn create_venue(
    State(state): State<AppState>,
    viewer: Viewer,
    form: FormFields,
) -> PageResult {
    let caller = viewer.require_role(Role::Admin, "/admin/venues/new")?;
    let result = match venue_input(&form) {
        Ok(input) => state
            .services
            .catalog
            .create_venue(&caller, input)
            .await
            .map_err(|error| problem_of_service(&error)),
        Err(problem) => Err(problem),
    };
    match result {
        Ok(venue) => Ok(Redirect::to(&format!("/admin/venues/{}", venue.id)).into_response()),
        Err(problem) => Ok(html_response(
            problem.status,
            venue_form(&viewer, &form, Some(&problem)),
        )),
    }
}

pub async fn venue(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> PageResult {
    viewer.require_role(Role::Admin, &format!("/admin/venues/{id}"))?;
    let venue = state.services.catalog.venue(&id).await?;
    let layout = json!({"sections": venue.sections.clone().unwrap_or(Value::Null)}).to_string();
    ok(Shell::new(&viewer, &venue.name).with_seat_map().render(html! {
        h1 { (venue.name) }
        p.meta { (venue.address) ", " (venue.city) " · " (venue.timezone) }
        p { (venue.seat_count) " seats, " (venue.standing_capacity) " standing places · " code { (venue.id) } }
        div.seat-map.preview data-layout-preview {}
        script type="application/json" data-layout-data { (layout) }
        p { a href="/admin" { "Back" } }
    }))
}

fn event_fields(form: &FormFields) -> Markup {
    html! {
        label { "Title" input type="text" name="title" value=(form.text("title")) required; }
        label { "Performer" input type="text" name="performer" value=(form.text("performer")); }
        label { "Genre" input type="text" name="genre" value=(form.text("genre")); }
        label { "Tags (comma separated)" input type="text" name="tags" value=(form.text("tags")); }
        label { "Description" textarea name="description" rows="4" { (form.text("description")) } }
    }
}

fn tags_of(form: &FormFields) -> Vec<String> {
    form.text("tags")
        .split(',')
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(str::to_string)
        .collect()
}

fn new_event_form(viewer: &Viewer, form: &FormFields, problem: Option<&Problem>) -> Markup {
    Shell::new(viewer, "New event").render(html! {
        h1 { "New event" }
        @if let Some(problem) = problem { (problem_box(problem)) }
        form.stack method="post" action="/admin/events/new" data-event-form {
            (event_fields(form))
            button type="submit" { "Create event" }
        }
    })
}

pub async fn new_event_page(viewer: Viewer) -> PageResult {
    viewer.require_role(Role::Admin, "/admin/events/new")?;
    ok(new_event_form(&viewer, &FormFields::default(), None))
}

pub async fn create_event(
    State(state): State<AppState>,
    viewer: Viewer,
    form: FormFields,
) -> PageResult {
    let caller = viewer.require_role(Role::Admin, "/admin/events/new")?;
    let input = EventInput {
        title: form.text("title"),
        description: form.text("description"),
        performer: form.text("performer"),
        genre: form.text("genre"),
        tags: tags_of(&form),
    };
    match state.services.catalog.create_event(&caller, input).await {
        Ok(event) => Ok(Redirect::to(&format!("/admin/events/{}", event.id)).into_response()),
        Err(error) => {
            let problem = problem_of_service(&error);
            Ok(html_response(
                problem.status,
                new_event_form(&viewer, &form, Some(&problem)),
            ))
        }
    }
}

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn event(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<NoticeQuery>,
) -> PageResult {
    viewer.require_role(Role::Admin, &format!("/admin/events/{id}"))?;
    let saved = query.notice.is_some();
    event_page(&state, &viewer, &id, None, saved).await
}

async fn event_page(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    problem: Option<Problem>,
    saved: bool,
) -> PageResult {
    let event = state.services.catalog.event(id).await?;
    let venues = state
        .services
        .catalog
        .list_venues(&PageRequest {
            limit: DASHBOARD_ROWS_MAX,
            after: None,
        })
        .await?;
    let fields = FormFields::from_pairs(vec![
        ("title", event.title.clone()),
        ("performer", event.performer.clone()),
        ("genre", event.genre.clone()),
        ("tags", event.tags.join(", ")),
        ("description", event.description.clone()),
    ]);
    let status = problem.as_ref().map(|p| p.status).unwrap_or(StatusCode::OK);
    let markup = Shell::new(viewer, &event.title).render(html! {
        h1 { (event.title) }
        @if saved { (notice("Saved.")) }
        @if let Some(problem) = &problem { (problem_box(problem)) }
        p.meta { code { (event.id) } " · " a href={ "/events/" (event.id) } { "Buyer's page" } }
        h2 { "Shows" }
        table {
            thead { tr { th { "Starts" } th { "Venue" } th { "Status" } th { "Available" } th {} } }
            tbody {
                @for show in event.shows.as_deref().unwrap_or_default() {
                    tr data-show-id=(show.id) {
                        td { a href={ "/admin/shows/" (show.id) } { (when(&show.starts_at)) } }
                        td { (show.venue.name) } td { (show.status) } td { (show.availability.available) }
                        td { a href={ "/admin/shows/" (show.id) "/sales" } { "Sales" } }
                    }
                }
            }
        }
        form.inline-form method="get" action={ "/admin/events/" (event.id) "/shows" } {
            label { "New show at"
                select name="venue_id" {
                    @for venue in &venues.items { option value=(venue.id) { (venue.name) ", " (venue.city) } }
                }
            }
            button type="submit" { "Add a show" }
        }
        h2 { "Edit" }
        form.stack method="post" action={ "/admin/events/" (event.id) } data-event-form {
            (event_fields(&fields))
            button type="submit" { "Save" }
        }
    });
    Ok(html_response(status, markup))
}

pub async fn update_event(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    form: FormFields,
) -> PageResult {
    let caller = viewer.require_role(Role::Admin, &format!("/admin/events/{id}"))?;
    let patch = EventPatchInput {
        title: Some(form.text("title")),
        description: Some(form.text("description")),
        performer: Some(form.text("performer")),
        genre: Some(form.text("genre")),
        tags: Some(tags_of(&form)),
    };
    match state
        .services
        .catalog
        .update_event(&caller, &id, patch)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/admin/events/{id}?notice=saved")).into_response()),
        Err(ServiceError::NotFound { .. }) => Err(PageError::NotFound),
        Err(error) => {
            event_page(
                &state,
                &viewer,
                &id,
                Some(problem_of_service(&error)),
                false,
            )
            .await
        }
    }
}

/// The price categories a venue's layout uses (sections and single seats).
fn venue_categories(sections: Option<&Value>) -> BTreeSet<String> {
    let mut categories = BTreeSet::new();
    for section in sections.and_then(Value::as_array).into_iter().flatten() {
        if let Some(category) = section["category"].as_str() {
            categories.insert(category.to_string());
        }
        for row in section["rows"].as_array().into_iter().flatten() {
            for seat in row["seats"].as_array().into_iter().flatten() {
                if let Some(category) = seat["category"].as_str() {
                    categories.insert(category.to_string());
                }
            }
        }
    }
    categories
}

#[derive(Deserialize, Default)]
pub struct NewShowQuery {
    venue_id: Option<String>,
}

pub async fn new_show_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<NewShowQuery>,
) -> PageResult {
    viewer.require_role(Role::Admin, &format!("/admin/events/{id}"))?;
    let venue_id = query.venue_id.unwrap_or_default();
    let form = FormFields::from_pairs(vec![("venue_id", venue_id)]);
    new_show_form(&state, &viewer, &id, &form, None).await
}

async fn new_show_form(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    form: &FormFields,
    problem: Option<Problem>,
) -> PageResult {
    let event = state.services.catalog.event(event_id).await?;
    let venue = state.services.catalog.venue(&form.text("venue_id")).await?;
    let categories = venue_categories(venue.sections.as_ref());
    let status = problem.as_ref().map(|p| p.status).unwrap_or(StatusCode::OK);
    let markup = Shell::new(viewer, "New show").render(html! {
        h1 { "New show of " (event.title) }
        p.meta { "at " (venue.name) ", " (venue.city) }
        @if let Some(problem) = &problem { (problem_box(problem)) }
        form.stack method="post" action={ "/admin/events/" (event.id) "/shows" } data-show-form {
            input type="hidden" name="venue_id" value=(venue.id);
            label { "Starts at (UTC)" input type="datetime-local" name="starts_at" value=(form.text("starts_at")) required; }
            label { "Sales start (UTC, empty: now)" input type="datetime-local" name="sales_start" value=(form.text("sales_start")); }
            (show_settings_fields(form, &categories))
            button type="submit" { "Create show" }
        }
    });
    Ok(html_response(status, markup))
}

fn show_settings_fields(form: &FormFields, categories: &BTreeSet<String>) -> Markup {
    html! {
        label { "Currency" input type="text" name="currency" value=(form.get("currency").unwrap_or("EUR")) maxlength="3" required; }
        fieldset {
            legend { "Prices" }
            @for category in categories {
                label { (category)
                    input type="text" inputmode="decimal" name={ "price_" (category) }
                        value=(form.text(&format!("price_{category}"))) placeholder="e.g. 49.90" required; }
            }
        }
        label { "Hold time (seconds, 1–3600)" input type="number" name="hold_ttl_seconds" value=(form.get("hold_ttl_seconds").unwrap_or("600")) min="1" max="3600"; }
        label { "Tickets per buyer" input type="number" name="max_tickets_per_user" value=(form.get("max_tickets_per_user").unwrap_or("4")) min="1"; }
    }
}

/// `"49.90"` in minor units; anything else is left for the service to
/// refuse in words (a string where a number belongs).
fn amount_value(text: &str) -> Value {
    let text = text.trim();
    let (whole, fraction) = text.split_once(['.', ',']).unwrap_or((text, ""));
    let cents = match fraction.len() {
        0 => Some(0),
        1 => fraction.parse::<i64>().ok().map(|f| f * 10),
        2 => fraction.parse::<i64>().ok(),
        _ => None,
    };
    match (whole.parse::<i64>(), cents) {
        (Ok(whole), Some(cents)) if !text.starts_with('-') => whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .map(Value::from)
            .unwrap_or_else(|| Value::String(text.to_string())),
        _ => Value::String(text.to_string()),
    }
}

fn prices_of(form: &FormFields, categories: &BTreeSet<String>) -> Value {
    let currency = form.text("currency").to_uppercase();
    let mut prices = Map::new();
    for category in categories {
        let amount = amount_value(&form.text(&format!("price_{category}")));
        prices.insert(
            category.clone(),
            json!({"amount": amount, "currency": currency}),
        );
    }
    Value::Object(prices)
}

/// `datetime-local` gives `2026-12-01T20:00`; the API wants RFC 3339.
fn utc_time(text: &str) -> Value {
    let text = text.trim();
    match text.len() {
        16 => Value::String(format!("{text}:00Z")),
        19 => Value::String(format!("{text}Z")),
        _ => Value::String(text.to_string()),
    }
}

fn number_or_text(text: &str) -> Value {
    text.trim()
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(text.to_string()))
}

fn parse_input<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Problem> {
    serde_json::from_value(value).map_err(|error| invalid(format!("{error}")))
}

pub async fn create_show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    form: FormFields,
) -> PageResult {
    let caller = viewer.require_role(Role::Admin, &format!("/admin/events/{id}"))?;
    let venue = state.services.catalog.venue(&form.text("venue_id")).await?;
    let categories = venue_categories(venue.sections.as_ref());
    let mut body = json!({
        "venue_id": venue.id,
        "starts_at": utc_time(&form.text("starts_at")),
        "prices": prices_of(&form, &categories),
        "hold_ttl_seconds": number_or_text(&form.text("hold_ttl_seconds")),
        "max_tickets_per_user": number_or_text(&form.text("max_tickets_per_user")),
    });
    if let Some(start) = form.non_blank("sales_start") {
        body["sales_start"] = utc_time(&start);
    }
    let created = match parse_input::<ShowInput>(body) {
        Ok(input) => state
            .services
            .catalog
            .create_show(&caller, &id, input)
            .await
            .map_err(|error| problem_of_service(&error)),
        Err(problem) => Err(problem),
    };
    match created {
        Ok(show) => Ok(Redirect::to(&format!("/admin/shows/{}", show.id)).into_response()),
        Err(problem) => new_show_form(&state, &viewer, &id, &form, Some(problem)).await,
    }
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<NoticeQuery>,
) -> PageResult {
    viewer.require_role(Role::Admin, &format!("/admin/shows/{id}"))?;
    let show = state.services.catalog.show(&id).await?;
    let saved = query.notice.is_some();
    show_settings_page(&state, &viewer, &show, None, saved).await
}

async fn show_settings_page(
    state: &AppState,
    viewer: &Viewer,
    show: &ShowView,
    problem: Option<Problem>,
    saved: bool,
) -> PageResult {
    let venue = state.services.catalog.venue(&show.venue_id).await?;
    let categories = venue_categories(venue.sections.as_ref());
    let currency = show
        .prices
        .values()
        .next()
        .map(|p| p.currency.clone())
        .unwrap_or_else(|| "EUR".into());
    let mut pairs = vec![
        ("currency", currency),
        ("hold_ttl_seconds", show.hold_ttl_seconds.to_string()),
        (
            "max_tickets_per_user",
            show.max_tickets_per_user.to_string(),
        ),
    ];
    let price_fields: Vec<(String, String)> = show
        .prices
        .iter()
        .map(|(category, price)| {
            (
                format!("price_{category}"),
                format!("{}.{:02}", price.amount / 100, price.amount % 100),
            )
        })
        .collect();
    let mut fields = FormFields::from_pairs(std::mem::take(&mut pairs));
    fields.extend(price_fields);
    let status = problem.as_ref().map(|p| p.status).unwrap_or(StatusCode::OK);
    let markup = Shell::new(viewer, &show.event.title).render(html! {
        h1 { (show.event.title) }
        p.meta { (when(&show.starts_at)) " · " (show.venue.name) ", " (show.venue.city) " · " code { (show.id) } }
        @if saved { (notice("Saved.")) }
        @if let Some(problem) = &problem { (problem_box(problem)) }
        p { a.button href={ "/admin/shows/" (show.id) "/sales" } { "Live sales" } " "
            a href={ "/shows/" (show.id) } { "Buyer's seat map" } " "
            a href={ "/admin/events/" (show.event_id) } { "The event" } }
        form.stack method="post" action={ "/admin/shows/" (show.id) } data-show-settings {
            label { "Status"
                select name="status" {
                    @for status in ["ON_SALE", "PAUSED", "CANCELLED"] {
                        option value=(status) selected[show.status == status] { (status) }
                    }
                }
            }
            (show_settings_fields(&fields, &categories))
            button type="submit" { "Save" }
        }
    });
    Ok(html_response(status, markup))
}

pub async fn update_show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    form: FormFields,
) -> PageResult {
    let caller = viewer.require_role(Role::Admin, &format!("/admin/shows/{id}"))?;
    let show = state.services.catalog.show(&id).await?;
    let venue = state.services.catalog.venue(&show.venue_id).await?;
    let categories = venue_categories(venue.sections.as_ref());
    let body = json!({
        "status": form.text("status"),
        "prices": prices_of(&form, &categories),
        "hold_ttl_seconds": number_or_text(&form.text("hold_ttl_seconds")),
        "max_tickets_per_user": number_or_text(&form.text("max_tickets_per_user")),
    });
    let updated = match parse_input::<ShowPatchInput>(body) {
        Ok(input) => state
            .services
            .catalog
            .update_show(&caller, &id, input)
            .await
            .map_err(|error| problem_of_service(&error)),
        Err(problem) => Err(problem),
    };
    match updated {
        Ok(_) => Ok(Redirect::to(&format!("/admin/shows/{id}?notice=saved")).into_response()),
        Err(problem) => show_settings_page(&state, &viewer, &show, Some(problem), false).await,
    }
}

/// Sales by section and revenue; the page script keeps it current from the
/// show's seat stream.
pub async fn sales(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> PageResult {
    let caller = viewer.require_role(Role::Admin, &format!("/admin/shows/{id}/sales"))?;
    let show = state.services.catalog.show(&id).await?;
    let sales = state.services.catalog.sales(&caller, &id).await?;
    ok(Shell::new(&viewer, "Sales").sharing_token().render(html! {
        h1 { "Sales · " (show.event.title) }
        p.meta { (when(&show.starts_at)) " · " (show.venue.name) " · " span data-live-status { "updates live" } }
        div.sales data-sales data-show-id=(show.id) {
            div.figures {
                div.figure { span.label { "Revenue" } strong data-revenue { (money(&sales.revenue)) } }
                div.figure { span.label { "Tickets sold" } strong data-tickets-sold { (sales.tickets_sold) } }
            }
            table {
                thead { tr { th { "Section" } th { "Available" } th { "Held" } th { "Booked" } } }
                tbody data-sales-rows {
                    @for section in &sales.sections {
                        tr data-section=(section.section) {
                            td { (section.section) }
                            td data-field="available" { (section.available) }
                            td data-field="held" { (section.held) }
                            td data-field="booked" { (section.booked) }
                        }
                    }
                }
            }
        }
        p { a href={ "/admin/shows/" (show.id) } { "Show settings" } " · " a href={ "/admin/shows/" (show.id) "/sales" } { "Reload" } }
    }))
}
