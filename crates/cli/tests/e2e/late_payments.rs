//! Payments that arrive by webhook after their hold expired (ADR 0018): the
//! buyer's ticket limit is checked again before the hold is revived, and
//! the buyer is told by e-mail which way it went — the usual confirmation
//! when booked, a refund e-mail (amount and seats) when refunded. E-mails go
//! through a real SMTP server (aiosmtpd).

use std::sync::Arc;

use mail_parser::MessageParser;
use serde_json::json;

use crate::common::*;
use crate::mail::{read_files, SmtpServer};
use crate::sms::{start_fake_twilio, wait_for_messages, FakeTwilio, ACCOUNT_SID, AUTH_TOKEN};
use crate::stripe_support::{StripeSetup, BREAKER_COOL_DOWN_MS, SHORT_HOLD_TTL_SECONDS};

both_backends!(
    late_payment_over_the_ticket_limit_is_refunded,
    late_payments_are_mailed_as_refund_or_confirmation,
);

const SECRET_KEY: &str = "sk_test_boxoffice_late_payments";

/// Lets the breaker opened by `charge_lost_in_an_outage` close again.
async fn breaker_cool_down() {
    tokio::time::sleep(std::time::Duration::from_millis(BREAKER_COOL_DOWN_MS + 200)).await;
}

/// The buyer holds 2 of at most 2 tickets, the payment is lost and the hold
/// expires; the buyer then holds and books 2 others. When the first payment
/// arrives late, its seats are still free but the buyer would have 4: it is
/// refunded, not booked.
async fn late_payment_over_the_ticket_limit_is_refunded(backend: Backend) {
    let setup = StripeSetup::start_with_webhooks(
        backend,
        SECRET_KEY,
        &[],
        json!({"hold_ttl_seconds": SHORT_HOLD_TTL_SECONDS, "max_tickets_per_user": 2}),
    )
    .await;
    let first_hold = setup.hold(&["A-1-1", "A-1-2"]).await;
    setup.charge_lost_in_an_outage(&first_hold).await;
    setup.wait_until_expired(&first_hold).await;
    breaker_cool_down().await;
    let second_hold = setup.hold(&["A-1-3", "A-1-4"]).await;
    setup
        .book(&second_hold, &unique_key(), "tok_visa")
        .await
        .expect(201, "the buyer books two other seats");

    assert_eq!(setup.deliver_succeeded(&first_hold).await, "refunded");
    assert_eq!(setup.hold_status(&first_hold).await, "EXPIRED");
    assert!(setup.bookings_of_hold(&first_hold).await.is_empty());
    let map = setup.app.seat_map(&setup.show_id).await;
    assert!(
        seats_with_status(&map, "AVAILABLE").is_superset(&set_of(&["A-1-1", "A-1-2"])),
        "the seats were free: the limit, not the seats, refused it: {map}"
    );
    let refunds = setup.fake.refunds();
    assert_eq!(refunds.len(), 1, "{refunds:#?}");
    let mine = setup
        .app
        .list_all("/v1/bookings", Some(&setup.user.token))
        .await;
    assert_eq!(mine.len(), 1, "only the second booking: {mine:#?}");
    assert_eq!(seat_ids_of(&mine[0]), set_of(&["A-1-3", "A-1-4"]));
    // The buyer is still at the limit: one more ticket is refused.
    let resp = setup
        .app
        .hold_seats(&setup.user.token, &setup.show_id, &["A-1-5"])
        .await;
    resp.expect_problem(422, "ticket_limit_exceeded", "the buyer is at the limit");
    setup.assert_ledger().await;

    // The buyer is told why: the limit, not the seats (the e-mail goes to
    // the mailbox folder: this server has no SMTP).
    let text = poll_until(
        "the refund e-mail in the mailbox folder",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(100),
        || async {
            read_files(&setup.app.mailbox)
                .iter()
                .filter_map(|raw| MessageParser::default().parse(raw))
                .find(|mail| mail.subject().unwrap_or("").starts_with("Payment refunded"))
                .map(|mail| mail.body_text(0).unwrap_or_default().to_string())
                .ok_or_else(|| "no refund e-mail yet".to_string())
        },
    )
    .await;
    assert!(text.contains("limit per buyer"), "{text}");
    assert!(!text.contains("no longer free"), "{text}");
}

/// Every e-mail the SMTP server received for `address`: (subject, text).
fn mails_to(smtp: &SmtpServer, address: &str) -> Vec<(String, String)> {
    smtp.messages()
        .iter()
        .filter_map(|raw| MessageParser::default().parse(raw))
        .filter(|mail| {
            mail.to()
                .and_then(|to| to.first())
                .and_then(|to| to.address())
                .is_some_and(|to| to == address)
        })
        .map(|mail| {
            (
                mail.subject().unwrap_or_default().to_string(),
                mail.body_text(0).unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn wait_for_mails_to(
    smtp: &SmtpServer,
    address: &str,
    count: usize,
) -> Vec<(String, String)> {
    poll_until(
        &format!("{count} e-mails to {address}"),
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(100),
        || async {
            let mails = mails_to(smtp, address);
            if mails.len() >= count {
                Ok(mails)
            } else {
                Err(format!("{mails:?}"))
            }
        },
    )
    .await
}

/// A buyer who gave a phone number (texts go to buyers with one only).
async fn buyer_with_phone(app: &TestApp, phone: &str) -> TestUser {
    let email = unique_email();
    let resp = app
        .post(
            "/v1/auth/register",
            None,
            &json!({"email": email, "password": USER_PASSWORD, "name": "Texted Buyer", "phone": phone}),
        )
        .await;
    let body = resp.expect(201, "register with a phone");
    TestUser {
        id: body["user"]["id"].as_str().unwrap_or_default().to_string(),
        email,
        password: USER_PASSWORD.to_string(),
        token: body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// Two late payments: one whose seat was sold meanwhile (refunded: the
/// buyer gets one refund e-mail with the amount and the seats, and one
/// text) and one whose seats are still free (booked: the buyer gets the
/// usual confirmation).
async fn late_payments_are_mailed_as_refund_or_confirmation(backend: Backend) {
    let mut smtp = SmtpServer::new();
    smtp.start().await;
    let smtp_url = smtp.url();
    let twilio = Arc::new(FakeTwilio::default());
    let twilio_url = start_fake_twilio(twilio.clone()).await;
    let setup = StripeSetup::start_with_webhooks(
        backend,
        SECRET_KEY,
        &[
            ("BOXOFFICE_SMTP_URL", smtp_url.as_str()),
            ("BOXOFFICE_TWILIO_ACCOUNT_SID", ACCOUNT_SID),
            ("BOXOFFICE_TWILIO_AUTH_TOKEN", AUTH_TOKEN),
            ("BOXOFFICE_TWILIO_API_BASE", twilio_url.as_str()),
            ("BOXOFFICE_OUTBOX_POLL_MS", "50"),
        ],
        json!({"hold_ttl_seconds": SHORT_HOLD_TTL_SECONDS}),
    )
    .await;
    let phone = "+4915112345678";
    let refunded_buyer = buyer_with_phone(&setup.app, phone).await;
    let refunded_hold = setup.hold_as(&refunded_buyer, &["A-1-8", "A-1-9"]).await;
    setup
        .charge_lost_in_an_outage_as(&refunded_buyer, &refunded_hold)
        .await;
    let booked_buyer = setup.app.register_user().await;
    // Holds last a second: each is paid right after it is made.
    breaker_cool_down().await;
    let booked_hold = setup.hold_as(&booked_buyer, &["A-1-1"]).await;
    let resp = setup
        .app
        .book(&booked_buyer.token, &booked_hold, &unique_key(), "tok_visa")
        .await;
    resp.expect(201, "an ordinary booking first");
    let late_hold = setup.hold_as(&booked_buyer, &["A-1-2"]).await;
    setup
        .charge_lost_in_an_outage_as(&booked_buyer, &late_hold)
        .await;
    setup.wait_until_expired(&refunded_hold).await;
    setup.wait_until_expired(&late_hold).await;
    breaker_cool_down().await;
    let other = setup.app.register_user().await;
    let other_hold = setup.hold_as(&other, &["A-1-9"]).await;
    setup
        .app
        .book(&other.token, &other_hold, &unique_key(), "tok_visa")
        .await
        .expect(201, "another buyer books one of the seats");

    for (hold_id, outcome) in [(&refunded_hold, "refunded"), (&late_hold, "booked")] {
        assert_eq!(setup.deliver_succeeded(hold_id).await, outcome, "{hold_id}");
    }

    let mails = wait_for_mails_to(&smtp, &refunded_buyer.email, 1).await;
    let (subject, text) = &mails[0];
    assert!(
        subject.starts_with("Payment refunded: Fixture Night"),
        "{subject}"
    );
    let amount = format!(
        "€{}.{:02}",
        2 * SEAT_PRICE_CENTS / 100,
        2 * SEAT_PRICE_CENTS % 100
    );
    let refunded_amount = format!("refunded {amount}");
    for expected in [
        "arrived after your hold expired",
        "the seats were no longer free",
        refunded_amount.as_str(),
        "nothing was booked",
        "seat A-1-8",
        "seat A-1-9",
        refunded_hold.as_str(),
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    // The ordinary booking and the late one: two confirmations.
    let mails = wait_for_mails_to(&smtp, &booked_buyer.email, 2).await;
    assert!(
        mails
            .iter()
            .all(|(subject, _)| subject.starts_with("Your tickets: Fixture Night")),
        "{mails:?}"
    );
    assert!(
        mails.iter().any(|(_, text)| text.contains("Seat A-1-2")),
        "the late booking's confirmation: {mails:?}"
    );
    // Long enough for a duplicate to show up if one were on its way.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        mails_to(&smtp, &refunded_buyer.email).len(),
        1,
        "the refund e-mail arrives once"
    );
    assert_eq!(mails_to(&smtp, &booked_buyer.email).len(), 2);
    let texts = wait_for_messages(&twilio, 1).await;
    assert_eq!(
        texts.len(),
        1,
        "one text, to the only buyer with a phone: {texts:?}"
    );
    assert_eq!(texts[0].to, phone);
    assert!(
        texts[0].body.contains("refunded") && texts[0].body.contains(&amount),
        "the text says refunded and how much: {texts:?}"
    );
    let summary = setup.assert_ledger().await;
    assert_eq!((summary.bookings, summary.refunds), (3, 1), "{summary:?}");
}
