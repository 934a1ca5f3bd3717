//! Organizer pages of outgoing webhooks: the subscriptions with a form to
//! add one (its secret shown once, on the answer), and each one's delivery
//! log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use boxoffice_domain::Role;
use boxoffice_services::outgoing_webhooks::{
    CreatedWebhookSubscriptionView, WebhookSubscriptionInput, EVENT_TYPES,
};
use boxoffice_store::PageRequest;
use maud::{html, Markup};

use super::form::FormFields;
use super::layout::{html_response, ok, problem_box, when, PageResult, Shell};
use super::session::Viewer;
use crate::error::{problem_of_service, Problem};
use crate::AppState;

/// Rows of the subscription list and of a delivery log.
const ROWS_MAX: u32 = 100;

const PAGE: &str = "/admin/webhooks";

async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    form: &FormFields,
    problem: Option<&Problem>,
    created: Option<&CreatedWebhookSubscriptionView>,
) -> Result<Markup, super::layout::PageError> {
    let caller = viewer.require_role(Role::Admin, PAGE)?;
    let page = PageRequest {
        limit: ROWS_MAX,
        after: None,
    };
    let subscriptions = state
        .services
        .outgoing_webhooks
        .list(&caller, &page)
        .await?;
    let chosen = form.all("event_types");
    Ok(Shell::new(viewer, "Webhooks").render(html! {
        h1 { "Outgoing webhooks" }
        @if let Some(created) = created {
            div.notice role="status" data-webhook-secret {
                "Subscription " (created.id) " created. Its signing secret is shown only now: "
                code { (created.secret) }
            }
        }
        table {
            thead { tr { th { "URL" } th { "Events" } th { "Description" } th { "Active" } } }
            tbody {
                @for subscription in &subscriptions.items {
                    tr {
                        td { a href={ (PAGE) "/" (subscription.id) } { (subscription.url) } }
                        td { @if subscription.event_types.is_empty() { "all" } @else { (subscription.event_types.join(", ")) } }
                        td { (subscription.description) }
                        td { @if subscription.active { "yes" } @else { "paused" } }
                    }
                }
            }
        }
        section {
            h2 { "New subscription" }
            @if let Some(problem) = problem { (problem_box(problem)) }
            form.stack method="post" action=(PAGE) {
                label { "URL" input type="url" name="url" required value=(form.text("url")); }
                fieldset {
                    legend { "Events (none checked: all)" }
                    @for event_type in EVENT_TYPES {
                        label {
                            input type="checkbox" name="event_types" value=(event_type)
                                checked[chosen.iter().any(|c| c == event_type)];
                            " " (event_type)
                        }
                    }
                }
                label { "Description" input type="text" name="description" value=(form.text("description")); }
                button type="submit" { "Subscribe" }
            }
        }
    }))
}

pub async fn subscriptions(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    ok(list_page(&state, &viewer, &FormFields::default(), None, None).await?)
}

pub async fn create_subscription(
    State(state): State<AppState>,
    viewer: Viewer,
    form: FormFields,
) -> PageResult {
    let caller = viewer.require_role(Role::Admin, PAGE)?;
    let input = WebhookSubscriptionInput {
        url: form.text("url"),
        event_types: Some(form.all("event_types")),
        description: form.non_blank("description"),
    };
    // The secret is in this answer only: no redirect after the POST.
    match state
        .services
        .outgoing_webhooks
        .create(&caller, input)
        .await
    {
        Ok(created) => Ok(html_response(
            StatusCode::CREATED,
            list_page(
                &state,
                &viewer,
                &FormFields::default(),
                None,
                Some(&created),
            )
            .await?,
        )),
        Err(error) => {
            let problem = problem_of_service(&error);
            Ok(html_response(
                problem.status,
                list_page(&state, &viewer, &form, Some(&problem), None).await?,
            ))
        }
    }
}

pub async fn deliveries(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> PageResult {
    let caller = viewer.require_role(Role::Admin, &format!("{PAGE}/{id}"))?;
    let webhooks = &state.services.outgoing_webhooks;
    let subscription = webhooks.get(&caller, &id).await?;
    let page = PageRequest {
        limit: ROWS_MAX,
        after: None,
    };
    let log = webhooks.deliveries(&caller, &id, None, &page).await?;
    ok(Shell::new(&viewer, "Webhook deliveries").render(html! {
        h1 { "Deliveries to " (subscription.url) }
        p { a href=(PAGE) { "All subscriptions" } }
        table data-deliveries {
            thead { tr { th { "Created" } th { "Event" } th { "Status" } th { "Attempts" } th { "Last answer" } th { "Last error" } } }
            tbody {
                @for delivery in &log.items {
                    tr {
                        td { (when(&delivery.created_at)) }
                        td { (delivery.event_type) " " small { (delivery.event_id) } }
                        td { (delivery.status) }
                        td { (delivery.attempts) }
                        td { @if let Some(code) = delivery.last_status_code { (code) } }
                        td { @if let Some(error) = &delivery.last_error { (error) } }
                    }
                }
            }
        }
    }))
}
