//! Door check-in with signed ticket codes.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::common::*;

both_backends!(checkin_rules, concurrent_scans, codes_verify_offline);

/// Books `seats` for a fresh user and returns (booking body, user).
async fn booking_with(app: &TestApp, show_id: &str, seats: &[&str]) -> (Value, TestUser) {
    let user = app.register_user().await;
    let resp = app.hold_seats(&user.token, show_id, seats).await;
    let hold_id = id_of(resp.expect(201, "hold"), &resp);
    let resp = app
        .book(&user.token, &hold_id, &unique_key(), "tok_visa")
        .await;
    (resp.expect(201, "book").clone(), user)
}

fn ticket(booking: &Value, index: usize) -> (String, String, Value) {
    let ticket = &booking["tickets"][index];
    (
        ticket["id"]
            .as_str()
            .unwrap_or_else(|| panic!("ticket id: {booking}"))
            .to_string(),
        ticket["code"]
            .as_str()
            .unwrap_or_else(|| panic!("ticket code: {booking}"))
            .to_string(),
        ticket["seat_id"].clone(),
    )
}

async fn checkin(app: &Api, token: Option<&str>, code: &str) -> Resp {
    app.post("/v1/checkin", token, &json!({"code": code})).await
}

/// Flips one character in the middle of a code to another of the same kind,
/// so that the result still looks like a code but its signature is wrong.
fn forge(code: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    let middle = chars.len() / 2;
    let index = (middle..chars.len())
        .chain(0..middle)
        .find(|&i| chars[i].is_ascii_alphanumeric())
        .expect("a code with an alphanumeric character");
    chars[index] = match chars[index] {
        'z' => 'a',
        'Z' => 'A',
        '9' => '0',
        c => (c as u8 + 1) as char,
    };
    chars.into_iter().collect()
}

async fn checkin_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, Some(10), json!({})).await;
    let show_id = fixture.show_id.as_str();
    let staff = app.staff_user().await;
    let resp = app.get("/v1/me", Some(&staff.token)).await;
    assert_eq!(
        resp.expect(200, "staff me")["role"],
        "staff",
        "the promoted user is staff: {resp}"
    );

    let (booking, customer) = booking_with(&app, show_id, &["A-1-1", "A-1-2"]).await;
    let booking_id = id_of(&booking, &booking);
    let (ticket_id, code, seat_id) = ticket(&booking, 0);

    // Who may scan.
    checkin(&app, None, &code).await.expect_problem(
        401,
        "unauthorized",
        "check-in without a token",
    );
    checkin(&app, Some(&customer.token), &code)
        .await
        .expect_problem(403, "forbidden", "a customer checks in");

    let resp = checkin(&app, Some(&staff.token), &code).await;
    let first = resp.expect(200, "first scan").clone();
    assert_eq!(first["ticket_id"], ticket_id.as_str(), "ticket_id: {resp}");
    assert_eq!(
        first["booking_id"],
        booking_id.as_str(),
        "booking_id: {resp}"
    );
    assert_eq!(first["show_id"], show_id, "show_id: {resp}");
    assert_eq!(first["seat_id"], seat_id, "seat_id: {resp}");
    let checked_in_at = parse_time(&first["checked_in_at"]);

    let resp = checkin(&app, Some(&staff.token), &code).await;
    let again = resp.expect_problem(409, "already_checked_in", "second scan");
    assert_eq!(
        parse_time(&again["checked_in_at"]),
        checked_in_at,
        "the second scan tells when the first was: {resp}"
    );

    // An admin may scan too.
    let (_, second_code, _) = ticket(&booking, 1);
    checkin(&app, app.admin(), &second_code)
        .await
        .expect(200, "admin scans");

    // Forged and garbage codes.
    let forged = forge(&second_code);
    assert_ne!(forged, second_code);
    let (fresh_booking, _) = booking_with(&app, show_id, &["A-1-5"]).await;
    let (_, fresh_code, _) = ticket(&fresh_booking, 0);
    for bad in [
        forge(&fresh_code),
        "garbage".to_string(),
        "x".repeat(500),
        format!("{fresh_code}x"),
        fresh_code[..fresh_code.len() / 2].to_string(),
        String::new(),
    ] {
        let resp = checkin(&app, Some(&staff.token), &bad).await;
        if bad.is_empty() {
            // An empty code may be reported as a missing field instead.
            let violations = problem_violations(&resp, &[400], None, None);
            assert!(
                violations.is_empty()
                    && matches!(resp.code(), "invalid_ticket" | "invalid_request"),
                "empty code: {violations:?} {resp}"
            );
        } else {
            resp.expect_problem(
                400,
                "invalid_ticket",
                &format!("bad code {:?}", bad.chars().take(40).collect::<String>()),
            );
        }
    }
    // The forged attempt did not check the real ticket in.
    checkin(&app, Some(&staff.token), &fresh_code)
        .await
        .expect(200, "the real code after forgeries");

    // A cancelled booking's ticket.
    let (cancelled, owner) = booking_with(&app, show_id, &["A-1-8"]).await;
    let cancelled_id = id_of(&cancelled, &cancelled);
    app.request(Method::POST, &format!("/v1/bookings/{cancelled_id}/cancel"))
        .token(&owner.token)
        .send()
        .await
        .expect(200, "cancel");
    let (_, cancelled_code, _) = ticket(&cancelled, 0);
    checkin(&app, Some(&staff.token), &cancelled_code)
        .await
        .expect_problem(409, "ticket_cancelled", "a cancelled booking's ticket");

    // A standing ticket.
    let standing_user = app.register_user().await;
    let resp = app
        .hold(
            &standing_user.token,
            &json!({"show_id": show_id, "section": STANDING_SECTION, "quantity": 1}),
        )
        .await;
    let hold_id = id_of(resp.expect(201, "standing hold"), &resp);
    let resp = app
        .book(&standing_user.token, &hold_id, &unique_key(), "tok_visa")
        .await;
    let standing = resp.expect(201, "book standing").clone();
    let (_, standing_code, _) = ticket(&standing, 0);
    let resp = checkin(&app, Some(&staff.token), &standing_code).await;
    assert!(
        resp.expect(200, "standing ticket")["seat_id"].is_null(),
        "a standing ticket has no seat: {resp}"
    );

    let audit = app
        .list_all(&format!("/v1/audit?booking_id={booking_id}"), app.admin())
        .await;
    assert!(
        audit.iter().any(|e| e["action"] == "ticket.checked_in"),
        "ticket.checked_in audited: {audit:?}"
    );
}

/// 20 staff devices scan one fresh code at once: exactly one 200.
async fn concurrent_scans(backend: Backend) {
    const SCANS: usize = 20;
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, None, json!({})).await;
    let staff = app.staff_user().await;
    let (booking, _) = booking_with(&app, &fixture.show_id, &["A-1-3"]).await;
    let (ticket_id, code, _) = ticket(&booking, 0);

    let barrier = Arc::new(Barrier::new(SCANS));
    let tasks: Vec<_> = (0..SCANS)
        .map(|_| {
            let (api, barrier, token, code) = (
                app.api.clone(),
                Arc::clone(&barrier),
                staff.token.clone(),
                code.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                checkin(&api, Some(&token), &code).await
            })
        })
        .collect();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let resp = task.await.expect("scan task");
        match resp.status() {
            200 => admitted.push(resp),
            _ => {
                resp.expect_problem(409, "already_checked_in", "a concurrent duplicate scan");
                refused += 1;
            }
        }
    }
    assert_eq!(
        admitted.len(),
        1,
        "exactly one scan admits the ticket: {admitted:?}"
    );
    assert_eq!(refused, SCANS - 1);
    assert_eq!(admitted[0].body["ticket_id"], ticket_id.as_str());
}

/// A door scanner without network access verifies a code with the public key
/// alone: here with an independent Ed25519 implementation, not the server's.
async fn codes_verify_offline(backend: Backend) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, Some(10), json!({})).await;
    let (booking, _customer) = booking_with(&app, &fixture.show_id, &["A-1-3"]).await;
    let (ticket_id, code, _seat) = ticket(&booking, 0);

    let resp = app.get("/v1/tickets/public-key", None).await;
    let key = resp.expect(200, "public key");
    assert_eq!(key["algorithm"], "Ed25519", "{resp}");
    let key_bytes: [u8; 32] = URL_SAFE_NO_PAD
        .decode(key["public_key"].as_str().unwrap_or_default())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .unwrap_or_else(|| panic!("a 32-byte base64url key: {resp}"));
    let verifying_key = VerifyingKey::from_bytes(&key_bytes).expect("a valid Ed25519 key");

    let verify = |code: &str| -> Option<Value> {
        let (signed, signature) = code.rsplit_once('.')?;
        let signature: [u8; 64] = URL_SAFE_NO_PAD.decode(signature).ok()?.try_into().ok()?;
        verifying_key
            .verify(signed.as_bytes(), &Signature::from_bytes(&signature))
            .ok()?;
        let payload = signed.rsplit_once('.')?.1;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    };
    let claims =
        verify(&code).unwrap_or_else(|| panic!("the issued code verifies offline: {code}"));
    assert_eq!(
        claims["ticket_id"],
        ticket_id.as_str(),
        "the claims name the ticket: {claims}"
    );
    assert_eq!(
        claims["show_id"],
        fixture.show_id.as_str(),
        "the claims name the show: {claims}"
    );
    assert_eq!(
        claims["seat_id"], "A-1-3",
        "the claims name the seat: {claims}"
    );
    assert!(
        verify(&forge(&code)).is_none(),
        "a forged code does not verify offline"
    );
}
