//! The web pages without a browser: forms post and redirect, the session
//! cookie, the same-origin check, and bad input answered with a 4xx page,
//! never a 5xx. (The browser tests in `tests/browser` drive them in
//! Chromium.)

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};
use serde_json::json;

use crate::common::*;

both_backends!(
    pages_serve_and_guard,
    forms_work_without_javascript,
    the_waiting_room_through_the_pages
);

fn browser() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("an HTTP client")
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn post_form(
    client: &Client,
    url: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> Response {
    let mut request = client.post(url).form(fields);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, format!("bx_session={cookie}"));
    }
    request.send().await.expect("POST a form")
}

async fn get_page(client: &Client, url: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, format!("bx_session={cookie}"));
    }
    let response = request.send().await.expect("GET a page");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// Pages answer HTML; private pages send strangers to the login page;
/// the wrong role gets 403; unknown things 404; assets are served.
async fn pages_serve_and_guard(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = browser();
    let fixture = app.fixture(2, 5, Some(10), json!({})).await;
    let user = app.register_user().await;

    let (status, body) = get_page(&client, &app.url("/"), None).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("<!DOCTYPE html>"), "{body}");
    let (status, body) = get_page(
        &client,
        &app.url(&format!("/shows/{}", fixture.show_id)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("data-seat-map"), "the seat picker: {body}");
    for path in ["/shows/shw_nope", "/events/nonsense", "/assets/nope.js"] {
        let (status, _) = get_page(&client, &app.url(path), None).await;
        assert_eq!(status, 404, "{path}");
    }
    for (asset, kind) in [
        ("app.js", "text/javascript"),
        ("seatmap.js", "text/javascript"),
        ("app.css", "text/css"),
    ] {
        let response = client
            .get(app.url(&format!("/assets/{asset}")))
            .send()
            .await
            .expect("asset");
        assert_eq!(response.status(), 200, "{asset}");
        let content_type = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap_or("")
            .to_string();
        assert!(content_type.starts_with(kind), "{asset}: {content_type}");
    }

    for path in ["/admin", "/bookings", "/checkin", "/holds/hld_x"] {
        let response = client.get(app.url(path)).send().await.expect("GET");
        assert_eq!(response.status(), 303, "{path} without a session");
        assert_eq!(
            location(&response),
            format!("/login?next={}", encode_query(path))
        );
    }
    // A forged or expired cookie is no session at all.
    let (status, _) = get_page(&client, &app.url("/bookings"), Some("forged.token.value")).await;
    assert_eq!(status, 303);
    // A customer may not open organizer or door pages.
    for path in ["/admin", "/checkin", "/admin/venues/new"] {
        let (status, body) = get_page(&client, &app.url(path), Some(&user.token)).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    let (status, body) = get_page(&client, &app.url("/admin"), app.admin()).await;
    assert_eq!(status, 200, "{body}");
}

/// Sign in, hold, pay and cancel with plain form posts (no JavaScript);
/// refusals are pages that say what is wrong.
async fn forms_work_without_javascript(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = browser();
    let fixture = app.fixture(2, 5, Some(10), json!({})).await;
    let user = app.register_user().await;

    let response = post_form(
        &client,
        &app.url("/login"),
        None,
        &[
            ("email", &user.email),
            ("password", "wrong-password"),
            ("next", "/bookings"),
        ],
    )
    .await;
    assert_eq!(response.status(), 401);
    assert!(response
        .text()
        .await
        .unwrap_or_default()
        .contains("data-problem-code=\"invalid_credentials\""));
    let response = post_form(
        &client,
        &app.url("/login"),
        None,
        &[
            ("email", &user.email),
            ("password", &user.password),
            ("next", "//evil.example/"),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/", "no redirect to another site");
    let cookie = response.headers()[SET_COOKIE]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(
        cookie.starts_with("bx_session=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let session = cookie["bx_session=".len()..]
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();

    let hold_url = app.url(&format!("/shows/{}/hold", fixture.show_id));
    // Another site's form is refused before anything happens.
    let response = client
        .post(&hold_url)
        .header(COOKIE, format!("bx_session={session}"))
        .header(ORIGIN, "http://evil.example")
        .form(&[("mode", "best"), ("quantity", "2")])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 403);
    // Bad input of several kinds: a 4xx page, never a 5xx, nothing held.
    let bad_forms: [&[(&str, &str)]; 5] = [
        &[("mode", "seats")],
        &[("mode", "seats"), ("seat_ids", "Z-9-9")],
        &[("mode", "best"), ("quantity", "lots")],
        &[("mode", "best"), ("quantity", "-3")],
        &[("mode", "standing"), ("section", "NOPE"), ("quantity", "1")],
    ];
    for form in bad_forms {
        let response = post_form(&client, &hold_url, Some(&session), form).await;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(status.is_client_error(), "{form:?}: {status}");
        assert!(
            body.contains("class=\"problem\""),
            "{form:?} is explained: {body}"
        );
    }
    let response = client
        .post(&hold_url)
        .header(COOKIE, format!("bx_session={session}"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, 0x00, 0x80])
        .send()
        .await
        .expect("POST");
    assert!(response.status().is_client_error(), "{}", response.status());
    assert_eq!(
        app.seat_map(&fixture.show_id).await["summary"]["held"],
        0,
        "nothing held"
    );

    // Best available, pay, see tickets, cancel.
    let response = post_form(
        &client,
        &hold_url,
        Some(&session),
        &[("mode", "best"), ("quantity", "2")],
    )
    .await;
    assert_eq!(response.status(), 303);
    let hold_path = location(&response);
    assert!(hold_path.starts_with("/holds/hld_"), "{hold_path}");
    let (status, page) = get_page(&client, &app.url(&hold_path), Some(&session)).await;
    assert_eq!(status, 200);
    assert!(page.contains("data-countdown"), "{page}");
    let key = page
        .split("name=\"idempotency_key\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the pay form carries an idempotency key: {page}"))
        .to_string();
    let pay_url = app.url(&format!("{hold_path}/pay"));
    let fields = [
        ("payment_token", "tok_visa"),
        ("idempotency_key", key.as_str()),
    ];
    let response = post_form(&client, &pay_url, Some(&session), &fields).await;
    assert_eq!(response.status(), 303);
    let booking_path = location(&response);
    assert!(booking_path.starts_with("/bookings/bkg_"), "{booking_path}");
    // The same form sent twice pays once.
    let again = post_form(&client, &pay_url, Some(&session), &fields).await;
    assert_eq!(
        again.status(),
        303,
        "a double submit is answered, not refused"
    );
    let hold_id = hold_path.trim_start_matches("/holds/");
    assert_eq!(app.captured_charges(hold_id).await, 1, "one charge");
    let (status, page) = get_page(&client, &app.url(&booking_path), Some(&session)).await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("class=\"ticket\"").count(), 2, "{page}");
    assert_eq!(page.matches("<svg").count(), 2, "two QR codes: {page}");

    let response = post_form(
        &client,
        &app.url(&format!("{booking_path}/cancel")),
        Some(&session),
        &[],
    )
    .await;
    assert_eq!(response.status(), 303);
    let (_, page) = get_page(&client, &app.url(&location(&response)), Some(&session)).await;
    assert!(page.contains("Cancelled and refunded"), "{page}");
    assert_eq!(app.seat_map(&fixture.show_id).await["summary"]["booked"], 0);
}

fn hidden_value(page: &str, name: &str) -> Option<String> {
    page.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_string)
}

/// A show with a waiting room: the seat picker offers to join; once
/// admitted its forms carry the admission token and holding works.
async fn the_waiting_room_through_the_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = browser();
    let fixture = app
        .fixture(
            2,
            5,
            None,
            json!({"waiting_room": {"enabled": true, "admit_per_minute": 60000}}),
        )
        .await;
    let user = app.register_user().await;
    let show_url = app.url(&format!("/shows/{}", fixture.show_id));

    let (status, page) = get_page(&client, &show_url, Some(&user.token)).await;
    assert_eq!(status, 200);
    assert!(page.contains("data-queue-join"), "{page}");
    let hold_url = format!("{show_url}/hold");
    let response = post_form(
        &client,
        &hold_url,
        Some(&user.token),
        &[("mode", "best"), ("quantity", "1")],
    )
    .await;
    assert_eq!(response.status(), 403, "no admission, no hold");
    assert!(response
        .text()
        .await
        .unwrap_or_default()
        .contains("admission_required"));

    let response = post_form(
        &client,
        &format!("{show_url}/queue"),
        Some(&user.token),
        &[],
    )
    .await;
    assert_eq!(response.status(), 303);
    let ticket_path = location(&response);
    assert!(ticket_path.contains("?ticket=qtk_"), "{ticket_path}");
    let mut admitted_page = None;
    for _ in 0..50 {
        let (_, page) = get_page(&client, &app.url(&ticket_path), Some(&user.token)).await;
        if page.contains("data-queue-status=\"ADMITTED\"") {
            admitted_page = Some(page);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let page = admitted_page.expect("admitted within 10 s at 60,000 a minute");
    let token =
        hidden_value(&page, "admission_token").expect("the forms carry the admission token");
    let ticket = hidden_value(&page, "ticket").unwrap_or_default();
    let response = post_form(
        &client,
        &hold_url,
        Some(&user.token),
        &[
            ("mode", "best"),
            ("quantity", "2"),
            ("admission_token", &token),
            ("ticket", &ticket),
        ],
    )
    .await;
    assert_eq!(response.status(), 303, "held with the admission");
    assert!(location(&response).starts_with("/holds/hld_"));
}
