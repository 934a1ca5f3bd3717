//! The virtual waiting room: holds need an admission token.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(waiting_room_admission);

async fn hold_with_admission(app: &TestApp, user: &TestUser, show_id: &str, seat: &str, admission: Option<&str>) -> Resp {
    let mut request = app.request(Method::POST, "/v1/holds").token(&user.token).json(&json!({"show_id": show_id, "seat_ids": [seat]}));
    if let Some(token) = admission {
        request = request.header("X-Admission-Token", token);
    }
    request.send().await
}

/// Joins the queue and waits until admitted; returns the admission token.
async fn admitted(app: &TestApp, user: &TestUser, show_id: &str) -> String {
    let resp = app.post(&format!("/v1/shows/{show_id}/queue"), Some(&user.token), &json!({})).await;
    let ticket = resp.expect(201, "join the waiting room").clone();
    let ticket_id = id_of(&ticket, &resp);
    assert_eq!(ticket["show_id"], show_id, "queue ticket show_id: {resp}");
    assert!(matches!(ticket["status"].as_str(), Some("WAITING" | "ADMITTED")), "queue ticket status: {resp}");
    let again = app.post(&format!("/v1/shows/{show_id}/queue"), Some(&user.token), &json!({})).await;
    assert_eq!(again.expect(200, "join again")["id"], ticket_id.as_str(), "joining twice gives the same ticket: {again}");

    let path = format!("/v1/shows/{show_id}/queue/{ticket_id}");
    let ticket: Value = poll_until("admission", Duration::from_secs(30), Duration::from_millis(250), || async {
        let resp = app.get(&path, Some(&user.token)).await;
        if resp.status() == 200 && resp.body["status"] == "ADMITTED" { Ok(resp.body.clone()) } else { Err(resp.to_string()) }
    })
    .await;
    parse_time(&ticket["admission_expires_at"]);
    ticket["admission_token"].as_str().unwrap_or_else(|| panic!("ADMITTED without admission_token: {ticket}")).to_string()
}

async fn waiting_room_admission(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, None, json!({"waiting_room": {"enabled": true, "admit_per_minute": 6000}})).await;
    let show_id = fixture.show_id.as_str();
    let alice = app.register_user().await;
    let bob = app.register_user().await;

    hold_with_admission(&app, &alice, show_id, "A-1-1", None).await.expect_problem(403, "admission_required", "hold without admission");
    let token = admitted(&app, &alice, show_id).await;
    hold_with_admission(&app, &alice, show_id, "A-1-1", Some("forged.admission.token"))
        .await
        .expect_problem(403, "admission_invalid", "a garbage admission token");
    let mut forged: Vec<char> = token.chars().collect();
    let middle = forged.len() / 2;
    forged[middle] = if forged[middle] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    hold_with_admission(&app, &alice, show_id, "A-1-1", Some(&forged)).await.expect_problem(403, "admission_invalid", "a forged admission token");
    hold_with_admission(&app, &bob, show_id, "A-1-1", Some(&token)).await.expect_problem(403, "admission_invalid", "another user's admission token");
    hold_with_admission(&app, &alice, show_id, "A-1-1", Some(&token)).await.expect(201, "hold with a valid admission token");

    // The token is for this show only.
    let other_show = app.create_show(&fixture.event_id, &fixture.venue_id, json!({"prices": prices_for(true, false), "waiting_room": {"enabled": true, "admit_per_minute": 6000}})).await;
    let other_show_id = id_of(&other_show, &other_show);
    hold_with_admission(&app, &alice, &other_show_id, "A-1-1", Some(&token))
        .await
        .expect_problem(403, "admission_invalid", "an admission token for another show");

    let map = app.seat_map(show_id).await;
    assert_eq!(summary(&map), (9, 1, 0), "only the admitted hold was written");
}
