//! The page shell and the words pages use for money, times and problems.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use boxoffice_domain::Role;
use boxoffice_services::views::MoneyView;
use boxoffice_services::ServiceError;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use super::session::Viewer;
use crate::error::{problem_of_service, Problem};

/// What a page handler answers when it cannot show its page.
pub enum PageError {
    /// Not signed in (or the session ran out): sign in, then come back.
    LoginRequired {
        next: String,
    },
    Forbidden,
    NotFound,
    /// Anything else the services refused, shown in words.
    Problem(Problem),
}

impl From<ServiceError> for PageError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::NotFound { .. } => PageError::NotFound,
            ServiceError::Forbidden { .. } => PageError::Forbidden,
            ServiceError::Unauthorized => PageError::LoginRequired { next: "/".into() },
            other => PageError::Problem(problem_of_service(&other)),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let viewer = Viewer::default();
        match self {
            PageError::LoginRequired { next } => {
                let query =
                    serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
                Redirect::to(&format!("/login?{query}")).into_response()
            }
            PageError::Forbidden => html_response(
                StatusCode::FORBIDDEN,
                Shell::new(&viewer, "Not allowed").render(html! {
                    h1 { "Not allowed" }
                    p { "Your account may not open this page. "
                        a href="/login" { "Sign in with another account" } "." }
                }),
            ),
            PageError::NotFound => html_response(
                StatusCode::NOT_FOUND,
                Shell::new(&viewer, "Not found").render(html! {
                    h1 { "Not found" }
                    p { "There is nothing here. " a href="/" { "Back to the events" } "." }
                }),
            ),
            PageError::Problem(problem) => html_response(
                problem.status,
                Shell::new(&viewer, problem.title).render(html! {
                    h1 { (problem.title) }
                    (problem_box(&problem))
                    p { a href="/" { "Back to the events" } }
                }),
            ),
        }
    }
}

pub type PageResult = Result<Response, PageError>;

/// A page with the security headers every page gets.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn ok(markup: Markup) -> PageResult {
    Ok(html_response(StatusCode::OK, markup))
}

/// The frame around every page: header with navigation, main, footer.
pub struct Shell<'a> {
    viewer: &'a Viewer,
    title: &'a str,
    scripts: Vec<&'static str>,
    styles: Vec<&'static str>,
    share_token: bool,
}

impl<'a> Shell<'a> {
    pub fn new(viewer: &'a Viewer, title: &'a str) -> Self {
        Shell {
            viewer,
            title,
            scripts: vec!["app.js"],
            styles: vec!["app.css"],
            share_token: false,
        }
    }

    /// The live seat map's script and style.
    pub fn with_seat_map(mut self) -> Self {
        self.scripts.push("seatmap.js");
        self.styles.push("seatmap.css");
        self
    }

    /// Puts the access token where the page's script can send it to `/v1`
    /// (live parts that need a signed-in caller).
    pub fn sharing_token(mut self) -> Self {
        self.share_token = true;
        self
    }

    pub fn render(self, body: Markup) -> Markup {
        let viewer = self.viewer;
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · boxoffice" }
                    link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
                    @for style in &self.styles {
                        link rel="stylesheet" href={ "/assets/" (style) };
                    }
                    @if self.share_token {
                        @if let Some(token) = &viewer.token {
                            meta name="bx-access-token" content=(token);
                        }
                    }
                    @for script in &self.scripts {
                        script src={ "/assets/" (script) } defer {}
                    }
                }
                body {
                    header.site {
                        a.brand href="/" { "boxoffice" }
                        nav {
                            a href="/" { "Events" }
                            @if viewer.user.is_some() {
                                a href="/bookings" { "My bookings" }
                            }
                            @if viewer.has_role(Role::Staff) {
                                a href="/checkin" { "Check-in" }
                            }
                            @if viewer.has_role(Role::Admin) {
                                a href="/admin" { "Organizer" }
                            }
                            @if viewer.user.is_some() {
                                form.inline method="post" action="/logout" {
                                    button.link type="submit" { "Sign out" }
                                }
                            } @else {
                                a href="/login" { "Sign in" }
                                a href="/signup" { "Sign up" }
                            }
                        }
                    }
                    main { (body) }
                    footer.site { "boxoffice · tickets without double bookings" }
                }
            }
        }
    }
}

/// A refusal in words: its title, its detail and the fields at fault.
pub fn problem_box(problem: &Problem) -> Markup {
    let errors: Vec<(String, String)> = problem
        .extensions
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|error| {
                    (
                        error["field"].as_str().unwrap_or("").to_string(),
                        error["message"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let unavailable: Vec<&str> = problem
        .extensions
        .get("unavailable")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    html! {
        div.problem role="alert" data-problem-code=(problem.code) {
            strong { (problem.title) }
            @if !problem.detail.is_empty() { p { (problem.detail) } }
            @if !unavailable.is_empty() {
                p { "Already taken: " (unavailable.join(", ")) }
            }
            @if !errors.is_empty() {
                ul {
                    @for (field, message) in &errors {
                        li { @if !field.is_empty() { b { (field) } ": " } (message) }
                    }
                }
            }
        }
    }
}

/// A short notice (success or information).
pub fn notice(text: &str) -> Markup {
    html! { div.notice role="status" { (text) } }
}

/// `€150.00`, `$12.50`, `CHF 20.00`: minor units in words.
pub fn money(value: &MoneyView) -> String {
    boxoffice_services::display::display_money(value.amount, &value.currency)
}

/// An RFC 3339 time in words, in UTC.
pub fn when(rfc3339: &str) -> String {
    boxoffice_services::display::display_time_rfc3339(rfc3339)
}

/// Markup the page script enhances: a countdown to `expires_at`.
pub fn countdown(expires_at: &str, seconds_left: i64) -> Markup {
    let seconds_left = seconds_left.max(0);
    html! {
        span.countdown data-countdown data-expires-at=(expires_at) {
            (format!("{}:{:02}", seconds_left / 60, seconds_left % 60))
        }
    }
}

/// Text that is inserted as is (already escaped markup, e.g. an SVG).
pub fn raw(markup: String) -> Markup {
    PreEscaped(markup)
}
