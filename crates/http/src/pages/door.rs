//! Door staff: type or scan a ticket's code; the answer in big words.

use axum::extract::State;
use axum::http::StatusCode;
use boxoffice_domain::Role;
use boxoffice_services::booking::CheckinInput;
use boxoffice_services::ServiceError;
use maud::{html, Markup};

use super::form::FormFields;
use super::layout::{html_response, problem_box, when, PageResult, Shell};
use super::session::Viewer;
use crate::error::problem_of_service;
use crate::AppState;

fn checkin_form() -> Markup {
    html! {
        form.stack.checkin method="post" action="/checkin" data-checkin-form {
            label { "Ticket code"
                input type="text" name="code" required autofocus autocomplete="off"
                    autocapitalize="off" spellcheck="false" placeholder="Scan or type the code";
            }
            button type="submit" { "Check in" }
        }
    }
}

fn checkin_screen(viewer: &Viewer, result: Option<Markup>) -> maud::Markup {
    Shell::new(viewer, "Check-in").render(html! {
        h1 { "Check-in" }
        @if let Some(result) = result { (result) }
        (checkin_form())
    })
}

pub async fn checkin_page(viewer: Viewer) -> PageResult {
    viewer.require_role(Role::Staff, "/checkin")?;
    Ok(html_response(StatusCode::OK, checkin_screen(&viewer, None)))
}

pub async fn checkin(
    State(state): State<AppState>,
    viewer: Viewer,
    form: FormFields,
) -> PageResult {
    let caller = viewer.require_role(Role::Staff, "/checkin")?;
    let input = CheckinInput {
        code: form.text("code"),
    };
    let (status, result) = match state.services.booking.check_in(&caller, input).await {
        Ok(admitted) => (
            StatusCode::OK,
            html! {
                div.verdict.admitted role="status" data-verdict="admitted" {
                    strong { "Admitted" }
                    p { @if let Some(seat) = &admitted.seat_id { "Seat " (seat) } @else { "Standing · " (admitted.section) } }
                }
            },
        ),
        Err(ServiceError::AlreadyCheckedIn { at }) => (
            StatusCode::CONFLICT,
            html! {
                div.verdict.repeat role="alert" data-verdict="already_checked_in" {
                    strong { "Already checked in" }
                    p { "at " (when(&boxoffice_services::views::rfc3339(at))) ". Do not admit again." }
                }
            },
        ),
        Err(ServiceError::TicketCancelled) => (
            StatusCode::CONFLICT,
            html! {
                div.verdict.invalid role="alert" data-verdict="ticket_cancelled" {
                    strong { "Cancelled ticket" }
                    p { "This booking was cancelled. Do not admit." }
                }
            },
        ),
        Err(ServiceError::InvalidTicket) | Err(ServiceError::InvalidRequest { .. }) => (
            StatusCode::BAD_REQUEST,
            html! {
                div.verdict.invalid role="alert" data-verdict="invalid" {
                    strong { "Invalid" }
                    p { "This is not a boxoffice ticket (unknown, damaged or forged). Do not admit." }
                }
            },
        ),
        Err(error) => {
            let problem = problem_of_service(&error);
            (problem.status, problem_box(&problem))
        }
    };
    Ok(html_response(status, checkin_screen(&viewer, Some(result))))
}
