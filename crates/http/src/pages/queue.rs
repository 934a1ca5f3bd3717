//! The waiting room on the seat picker: join, wait (the page reloads
//! itself every few seconds; without JavaScript, a link does), and once
//! admitted, hold with the admission token the forms carry.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use boxoffice_services::catalog::ShowView;
use boxoffice_services::waiting_room::JoinQueueInput;
use boxoffice_services::ServiceError;
use maud::{html, Markup};

use super::layout::{notice, problem_box, when, PageError, PageResult};
use super::session::{SameOrigin, Viewer};
use crate::error::problem_of_service;
use crate::AppState;

/// What the seat picker shows for a show with a waiting room.
pub struct RoomPanel {
    pub markup: Markup,
    /// Set once the viewer's ticket is admitted: the forms send it along.
    pub admission_token: Option<String>,
}

pub async fn room_panel(
    state: &AppState,
    viewer: &Viewer,
    show: &ShowView,
    ticket_id: Option<&str>,
) -> RoomPanel {
    let join_form = html! {
        form.inline-form method="post" action={ "/shows/" (show.id) "/queue" } data-queue-join {
            button type="submit" { "Join the waiting room" }
        }
    };
    let (Some(user), Some(ticket_id)) = (&viewer.user, ticket_id) else {
        return RoomPanel {
            markup: html! {
                (notice("This show sells through a waiting room: join it, and you can choose seats when it is your turn."))
                (join_form)
            },
            admission_token: None,
        };
    };
    match state
        .services
        .waiting_room
        .ticket(user, &show.id, ticket_id)
        .await
    {
        Ok(ticket) if ticket.status == "ADMITTED" => RoomPanel {
            markup: html! {
                div.notice role="status" data-queue-status="ADMITTED" {
                    strong { "It's your turn." }
                    @if let Some(until) = &ticket.admission_expires_at {
                        " Choose your seats before " (when(until)) "."
                    }
                }
            },
            admission_token: ticket.admission_token,
        },
        Ok(ticket) if ticket.status == "WAITING" => RoomPanel {
            markup: html! {
                div.notice role="status" data-queue-status="WAITING" data-queue-waiting {
                    strong { "You are in the waiting room." }
                    " Position " span data-queue-position { (ticket.position) }
                    ", about " (ticket.estimated_wait_seconds.div_ceil(60).max(1)) " min. "
                    "Keep this page open; it updates itself. "
                    a href={ "/shows/" (show.id) "?ticket=" (ticket.id) } { "Refresh" }
                }
            },
            admission_token: None,
        },
        Ok(_) => RoomPanel {
            markup: html! {
                (notice("Your turn in the waiting room has run out. Join again to get a new place."))
                (join_form)
            },
            admission_token: None,
        },
        Err(error) => RoomPanel {
            markup: html! { (problem_box(&problem_of_service(&error))) (join_form) },
            admission_token: None,
        },
    }
}

pub async fn join(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    _: SameOrigin,
) -> PageResult {
    let caller = viewer.require_user(&format!("/shows/{id}"))?;
    match state
        .services
        .waiting_room
        .join(&caller, &id, JoinQueueInput::default())
        .await
    {
        Ok((ticket, _)) => Ok(Redirect::to(&format!("/shows/{id}?ticket={}", ticket.id)).into_response()),
        Err(ServiceError::NotFound { .. }) => Err(PageError::NotFound),
        Err(ServiceError::PowRequired) => Err(PageError::Problem(problem_of_service(
            &ServiceError::invalid(
                "waiting_room",
                "this show's waiting room asks for a proof of work, which these pages cannot do yet; use the app",
            ),
        ))),
        Err(error) => Err(PageError::Problem(problem_of_service(&error))),
    }
}
