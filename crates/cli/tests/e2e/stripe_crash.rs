//! `kill -9` of the server between charge and commit, twenty times in a row
//! on the same database, with the `stripe` gateway on the fake Stripe: the
//! fake captures each charge and never answers, the test waits until the
//! capture is in the fake's ledger and kills the server, then restarts it.
//! Each killed payment is left `PAYING` with money taken; after the restart
//! either the late webhook books it, or (no webhook) the reconciler finds the
//! charge by its key. Afterwards every charge has its booking or a refund.

use std::collections::BTreeSet;
use std::time::Duration;

use fake_stripe::{Fault, WebhookMode};
use serde_json::json;

use crate::common::*;
use crate::stripe_support::{StripeSetup, WEBHOOK_SECRET};

both_backends!(stripe_kill_between_charge_and_commit_in_a_loop);

const ITERATIONS: usize = 20;
const SEATS_PER_HOLD: usize = 2;
/// Ten seats a row: enough rows for every iteration's distinct seats.
const ROWS: u32 = 4;
const SECRET_KEY: &str = "sk_test_boxoffice_kill_loop";
/// Long enough that the guard never gives up on the hanging charge (and
/// retries it, which the fake would answer) before the kill, which comes
/// within milliseconds of the capture.
const PAYMENT_TIMEOUT_MS: &str = "3000";
/// Short, so that the reconciler looks at stuck payments soon after each
/// restart (it also runs once at start).
const RECONCILE_INTERVAL_SECONDS: &str = "1";
const CAPTURE_WAIT: Duration = Duration::from_secs(30);
const SETTLE_WAIT: Duration = Duration::from_secs(90);
const POLL_PAUSE: Duration = Duration::from_millis(10);

/// How a killed payment is to be finished after the restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// Stripe sends no webhook: only the reconciler can find the charge.
    Reconciler,
    /// Stripe's webhook arrives after the restart.
    LateWebhook,
    /// Stripe's webhook is sent at the capture, racing the kill.
    WebhookAtCapture,
}

impl Recovery {
    fn of_iteration(iteration: usize) -> Recovery {
        match iteration % 3 {
            0 => Recovery::Reconciler,
            1 => Recovery::LateWebhook,
            _ => Recovery::WebhookAtCapture,
        }
    }
}

fn seats_of_iteration(iteration: usize) -> Vec<String> {
    (0..SEATS_PER_HOLD)
        .map(|n| {
            let index = iteration * SEATS_PER_HOLD + n;
            format!("A-{}-{}", index / 10 + 1, index % 10 + 1)
        })
        .collect()
}

async fn stripe_kill_between_charge_and_commit_in_a_loop(backend: Backend) {
    let mut setup = StripeSetup::start(
        backend,
        SECRET_KEY,
        &[
            ("BOXOFFICE_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("BOXOFFICE_PAYMENT_TIMEOUT_MS", PAYMENT_TIMEOUT_MS),
            (
                "BOXOFFICE_RECONCILE_INTERVAL_SECONDS",
                RECONCILE_INTERVAL_SECONDS,
            ),
            // The settle loop polls every hold several times a second.
            ("BOXOFFICE_RATE_LIMITS", "off"),
        ],
        ROWS,
        json!({}),
    )
    .await;
    let users = setup.app.register_users(ITERATIONS).await;
    let mut hold_ids = Vec::new();
    for (iteration, user) in users.iter().enumerate() {
        let recovery = Recovery::of_iteration(iteration);
        setup.point_webhooks_at_the_server();
        setup.fake.set_webhook_mode(match recovery {
            Recovery::WebhookAtCapture => WebhookMode::Immediately,
            Recovery::Reconciler | Recovery::LateWebhook => WebhookMode::Never,
        });
        let seats = seats_of_iteration(iteration);
        let seat_refs: Vec<&str> = seats.iter().map(String::as_str).collect();
        let hold_id = setup.hold_as(user, &seat_refs).await;
        setup.fake.push_fault(Fault::CaptureThenHang, 1);
        let confirm = {
            let (api, token, hold_id) =
                (setup.app.api.clone(), user.token.clone(), hold_id.clone());
            tokio::spawn(async move {
                api.request(reqwest::Method::POST, "/v1/bookings")
                    .token(&token)
                    .header("Idempotency-Key", &unique_key())
                    .json(&json!({"hold_id": hold_id, "payment_token": "tok_visa"}))
                    .try_send()
                    .await
            })
        };
        poll_until(
            "the fake Stripe to capture the charge",
            CAPTURE_WAIT,
            POLL_PAUSE,
            || async {
                if setup.fake.intent_of_hold(&hold_id).is_some() {
                    Ok(())
                } else {
                    Err(format!("no capture for {hold_id} yet"))
                }
            },
        )
        .await;
        setup.app.kill().await;
        let answer = confirm.await.expect("the confirm task");
        assert!(
            answer.is_err(),
            "the confirm must die with the server, not answer: {answer:?}"
        );
        setup.app.restart().await;
        if recovery != Recovery::WebhookAtCapture {
            // Nothing has finished it yet (reconciliation waits for one
            // payment timeout and a second): the kill came between charge
            // and commit, with the money taken.
            assert_eq!(
                setup.hold_status(&hold_id).await,
                "PAYING",
                "iteration {iteration}: the killed payment is still open after the restart"
            );
        }
        if recovery == Recovery::LateWebhook {
            setup.point_webhooks_at_the_server();
            let outcome = setup.deliver_succeeded(&hold_id).await;
            assert!(
                matches!(outcome.as_str(), "booked" | "already_confirmed"),
                "the late webhook of a paid PAYING hold books it (or finds it booked): {outcome}"
            );
        }
        hold_ids.push(hold_id);
    }

    let statuses = poll_until(
        "every killed payment to settle",
        SETTLE_WAIT,
        Duration::from_millis(200),
        || async {
            let mut statuses = Vec::new();
            for hold_id in &hold_ids {
                statuses.push(setup.hold_status(hold_id).await);
            }
            if statuses
                .iter()
                .all(|status| matches!(status.as_str(), "CONFIRMED" | "EXPIRED" | "RELEASED"))
            {
                Ok(statuses)
            } else {
                Err(format!("{statuses:?}"))
            }
        },
    )
    .await;

    let charges = setup.fake.charges();
    assert_eq!(
        charges.len(),
        ITERATIONS,
        "one capture per killed payment: {charges:#?}"
    );
    let charged: BTreeSet<_> = charges.iter().filter_map(|c| c.hold_id.clone()).collect();
    assert_eq!(
        charged,
        hold_ids.iter().cloned().collect::<BTreeSet<_>>(),
        "every hold was charged, once"
    );
    let summary = setup.assert_ledger().await;
    let confirmed = statuses.iter().filter(|s| *s == "CONFIRMED").count();
    assert_eq!(
        summary.bookings, confirmed,
        "the CONFIRMED holds are the bookings: {statuses:?}"
    );
    let map = setup.app.seat_map(&setup.show_id).await;
    assert_eq!(
        seats_with_status(&map, "BOOKED").len(),
        summary.bookings * SEATS_PER_HOLD,
        "the booked seats count"
    );
    eprintln!(
        "stripe kill loop ({backend:?}): {ITERATIONS} kills between charge and commit; {} charges, {} bookings, {} refunds",
        summary.charges, summary.bookings, summary.refunds
    );
}
