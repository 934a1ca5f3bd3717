//! Sign up, sign in, sign out.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use boxoffice_services::auth::{LoginInput, RegisterInput};
use maud::{html, Markup};
use serde::Deserialize;

use super::form::{FormFields, PageQuery};
use super::layout::{html_response, problem_box, PageError, PageResult, Shell};
use super::session::{clear_session_cookie, safe_next, session_cookie, SameOrigin, Viewer};
use crate::error::{problem_of_service, Problem};
use crate::AppState;

#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

fn signed_in(token: &str, next: &str) -> Response {
    let mut response = Redirect::to(next).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(token));
    response
}

fn login_form(viewer: &Viewer, next: &str, email: &str, problem: Option<&Problem>) -> Markup {
    Shell::new(viewer, "Sign in").render(html! {
        h1 { "Sign in" }
        @if let Some(problem) = problem { (problem_box(problem)) }
        form.stack method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            label { "E-mail" input type="email" name="email" value=(email) required autocomplete="email"; }
            label { "Password" input type="password" name="password" required autocomplete="current-password"; }
            button type="submit" { "Sign in" }
        }
        p { "New here? " a href={ "/signup?next=" (next) } { "Create an account" } "." }
    })
}

pub async fn login_page(viewer: Viewer, PageQuery(query): PageQuery<NextQuery>) -> PageResult {
    let next = safe_next(query.next.as_deref());
    Ok(html_response(
        StatusCode::OK,
        login_form(&viewer, &next, "", None),
    ))
}

pub async fn login(State(state): State<AppState>, viewer: Viewer, form: FormFields) -> PageResult {
    let next = safe_next(form.get("next"));
    let email = form.text("email");
    let input = LoginInput {
        email: email.clone(),
        password: form.get("password").unwrap_or("").to_string(),
    };
    match state.services.auth.login(input).await {
        Ok(token) => Ok(signed_in(&token.access_token, &next)),
        Err(error) => {
            let problem = problem_of_service(&error);
            Ok(html_response(
                problem.status,
                login_form(&viewer, &next, &email, Some(&problem)),
            ))
        }
    }
}

fn signup_form(
    viewer: &Viewer,
    next: &str,
    form: &FormFields,
    problem: Option<&Problem>,
) -> Markup {
    Shell::new(viewer, "Create an account").render(html! {
        h1 { "Create an account" }
        @if let Some(problem) = problem { (problem_box(problem)) }
        form.stack method="post" action="/signup" {
            input type="hidden" name="next" value=(next);
            label { "Name" input type="text" name="name" value=(form.text("name")) required autocomplete="name"; }
            label { "E-mail" input type="email" name="email" value=(form.text("email")) required autocomplete="email"; }
            label { "Password (at least 8 characters)"
                input type="password" name="password" required minlength="8" autocomplete="new-password"; }
            label { "Phone (optional)" input type="tel" name="phone" value=(form.text("phone")) autocomplete="tel"; }
            button type="submit" { "Create account" }
        }
        p { "Have an account? " a href={ "/login?next=" (next) } { "Sign in" } "." }
    })
}

pub async fn signup_page(viewer: Viewer, PageQuery(query): PageQuery<NextQuery>) -> PageResult {
    let next = safe_next(query.next.as_deref());
    Ok(html_response(
        StatusCode::OK,
        signup_form(&viewer, &next, &FormFields::default(), None),
    ))
}

pub async fn signup(State(state): State<AppState>, viewer: Viewer, form: FormFields) -> PageResult {
    let next = safe_next(form.get("next"));
    let input = RegisterInput {
        email: form.text("email"),
        password: form.get("password").unwrap_or("").to_string(),
        name: form.text("name"),
        phone: form.non_blank("phone"),
    };
    match state.services.auth.register(input).await {
        Ok(registered) => Ok(signed_in(&registered.access_token, &next)),
        Err(error) => {
            let problem = problem_of_service(&error);
            Ok(html_response(
                problem.status,
                signup_form(&viewer, &next, &form, Some(&problem)),
            ))
        }
    }
}

pub async fn logout(_: SameOrigin) -> Result<Response, PageError> {
    let mut response = Redirect::to("/").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_session_cookie());
    Ok(response)
}
