//! What the Stripe tests (`payments`, `webhooks`, `stripe_crash`) share: a
//! server on a fake Stripe with one show, and the check that the money at
//! Stripe agrees with the bookings.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fake_stripe::{FakeStripe, Fault, WebhookDelivery};
use serde_json::Value;

use crate::common::*;

const SEATS_PER_ROW: u32 = 10;
/// The secret the fake signs its webhooks with.
pub const WEBHOOK_SECRET: &str = "whsec_boxoffice_e2e";
pub const WEBHOOK_PATH: &str = "/v1/payments/webhooks/stripe";
/// One attempt's timeout in the webhook tests: short, so that an outage
/// ends a confirmation quickly.
const WEBHOOK_TESTS_PAYMENT_TIMEOUT_MS: &str = "1000";
/// Three failed attempts (one confirmation's worth) open the breaker.
const WEBHOOK_TESTS_BREAKER_FAILURES: &str = "3";
pub const BREAKER_COOL_DOWN_MS: u64 = 1_500;
/// The shortest hold a show allows, for the expiry tests.
pub const SHORT_HOLD_TTL_SECONDS: u64 = 1;
/// How long a test waits for the sweeper to expire a hold (DESIGN.md: 5 s).
const EXPIRY_WAIT: Duration = Duration::from_secs(10);

/// A server on the fake Stripe, a show and a buyer.
pub struct StripeSetup {
    pub app: TestApp,
    pub fake: FakeStripe,
    pub show_id: String,
    pub user: TestUser,
}

/// How the ledger check came out, for a test's summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerSummary {
    pub charges: usize,
    pub bookings: usize,
    pub refunds: usize,
}

impl StripeSetup {
    /// Starts a fake Stripe with `secret_key`, then a server on it with
    /// `env` (the Stripe variables are added here), and a show of `rows`
    /// rows of ten seats with `show_overrides`.
    pub async fn start(
        backend: Backend,
        secret_key: &str,
        env: &[(&str, &str)],
        rows: u32,
        show_overrides: Value,
    ) -> StripeSetup {
        let fake = FakeStripe::start(secret_key).await;
        let mut all_env = vec![
            ("BOXOFFICE_STRIPE_SECRET_KEY", secret_key),
            ("BOXOFFICE_STRIPE_API_BASE", fake.url()),
        ];
        all_env.extend_from_slice(env);
        let app = TestApp::spawn_with(backend, &all_env).await;
        let fixture = app.fixture(rows, SEATS_PER_ROW, None, show_overrides).await;
        let user = app.register_user().await;
        StripeSetup {
            app,
            fake,
            show_id: fixture.show_id,
            user,
        }
    }

    /// [`StripeSetup::start`] with incoming webhooks (the fake sends them
    /// to the server, signed with [`WEBHOOK_SECRET`]), a short payment
    /// timeout and a breaker that opens after one confirmation's failures,
    /// and one row of seats.
    pub async fn start_with_webhooks(
        backend: Backend,
        secret_key: &str,
        extra_env: &[(&str, &str)],
        show_overrides: Value,
    ) -> StripeSetup {
        let cool_down = BREAKER_COOL_DOWN_MS.to_string();
        let mut env = vec![
            ("BOXOFFICE_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            (
                "BOXOFFICE_PAYMENT_TIMEOUT_MS",
                WEBHOOK_TESTS_PAYMENT_TIMEOUT_MS,
            ),
            (
                "BOXOFFICE_PAYMENT_BREAKER_FAILURES",
                WEBHOOK_TESTS_BREAKER_FAILURES,
            ),
            ("BOXOFFICE_PAYMENT_BREAKER_COOL_DOWN_MS", cool_down.as_str()),
        ];
        env.extend_from_slice(extra_env);
        let setup = StripeSetup::start(backend, secret_key, &env, 1, show_overrides).await;
        setup.point_webhooks_at_the_server();
        setup
    }

    /// Sends the fake's webhooks to the server (again after a restart,
    /// which moves it to another port).
    pub fn point_webhooks_at_the_server(&self) {
        self.fake
            .set_webhook_endpoint(&self.app.url(WEBHOOK_PATH), WEBHOOK_SECRET);
    }

    /// A charge captured whose answer the server never learns: Stripe
    /// captures, drops the answer, then fails everything for the request.
    /// The request answers 503 and the hold stays ACTIVE, with money taken.
    pub async fn charge_lost_in_an_outage(&self, hold_id: &str) {
        self.charge_lost_in_an_outage_as(&self.user, hold_id).await;
    }

    /// [`Self::charge_lost_in_an_outage`] of `buyer`'s hold.
    pub async fn charge_lost_in_an_outage_as(&self, buyer: &TestUser, hold_id: &str) {
        let charges_before = self.fake.charges().len();
        self.fake.push_fault(Fault::DropResponse, 1);
        self.fake.set_standing_fault(Some(Fault::ServerError));
        let resp = self
            .app
            .book(&buyer.token, hold_id, &unique_key(), "tok_visa")
            .await;
        self.fake.set_standing_fault(None);
        resp.expect_problem(
            503,
            "payment_unavailable",
            "captured, answer lost, then 500s",
        );
        assert_eq!(
            self.fake.charges().len(),
            charges_before + 1,
            "Stripe did capture"
        );
    }

    /// Stripe sends `payment_intent.succeeded` (a fresh event) for the
    /// captured charge of `hold_id`; asserts the server took it (200) and
    /// returns its outcome (`booked`, `refunded`, …).
    pub async fn deliver_succeeded(&self, hold_id: &str) -> String {
        let delivery = self
            .fake
            .send_succeeded_for_hold(hold_id)
            .await
            .unwrap_or_else(|| panic!("no captured charge for {hold_id}"));
        assert_eq!(delivery.status, Some(200), "{delivery:?}");
        outcome_of(&delivery)
    }

    pub async fn wait_until_expired(&self, hold_id: &str) {
        poll_until(
            "the hold to expire",
            EXPIRY_WAIT,
            Duration::from_millis(200),
            || async {
                let status = self.hold_status(hold_id).await;
                if status == "EXPIRED" {
                    Ok(())
                } else {
                    Err(status)
                }
            },
        )
        .await;
    }

    /// Holds `seats` as the setup's buyer.
    pub async fn hold(&self, seats: &[&str]) -> String {
        self.hold_as(&self.user, seats).await
    }

    /// Confirms (pays) `hold_id` as the setup's buyer.
    pub async fn book(&self, hold_id: &str, key: &str, payment_token: &str) -> Resp {
        self.app
            .book(&self.user.token, hold_id, key, payment_token)
            .await
    }

    pub async fn hold_as(&self, user: &TestUser, seats: &[&str]) -> String {
        let resp = self.app.hold_seats(&user.token, &self.show_id, seats).await;
        id_of(resp.expect(201, "hold"), &resp)
    }

    pub async fn hold_status(&self, hold_id: &str) -> String {
        let resp = self.app.get_hold(&self.app.admin_token, hold_id).await;
        resp.expect(200, "the hold")["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn confirmed_bookings(&self) -> Vec<Value> {
        self.app
            .list_all(
                &format!("/v1/bookings?show_id={}", self.show_id),
                self.app.admin(),
            )
            .await
            .into_iter()
            .filter(|booking| booking["status"] == "CONFIRMED")
            .collect()
    }

    pub async fn bookings_of_hold(&self, hold_id: &str) -> Vec<Value> {
        self.confirmed_bookings()
            .await
            .into_iter()
            .filter(|booking| booking["hold_id"] == hold_id)
            .collect()
    }

    /// The audit actions of the show, by hold.
    pub async fn audit_actions_by_hold(&self) -> BTreeMap<String, Vec<String>> {
        let mut actions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in self
            .app
            .list_all(
                &format!("/v1/audit?show_id={}", self.show_id),
                self.app.admin(),
            )
            .await
        {
            if let (Some(hold_id), Some(action)) =
                (entry["hold_id"].as_str(), entry["action"].as_str())
            {
                actions
                    .entry(hold_id.to_string())
                    .or_default()
                    .push(action.to_string());
            }
        }
        actions
    }

    pub async fn audit_actions_of(&self, hold_id: &str) -> Vec<String> {
        self.audit_actions_by_hold()
            .await
            .remove(hold_id)
            .unwrap_or_default()
    }

    /// Money and seats agree: every charge at Stripe has exactly one
    /// CONFIRMED booking of its hold for its amount, or was refunded (never
    /// both); no hold was charged twice; no seat is in two bookings and the
    /// map's BOOKED seats are exactly the bookings' seats; the audit says
    /// `payment.captured` and `booking.confirmed` once for each booking.
    pub async fn assert_ledger(&self) -> LedgerSummary {
        let bookings = self.confirmed_bookings().await;
        let charges = self.fake.charges();
        let refunds = self.fake.refunds();
        let audit = self.audit_actions_by_hold().await;
        assert_eq!(
            charges.len(),
            bookings.len() + refunds.len(),
            "charges at Stripe = bookings + refunds; charges {charges:#?}, refunds {refunds:#?}, bookings {bookings:#?}"
        );
        let charged_holds: BTreeSet<_> = charges.iter().map(|c| c.hold_id.clone()).collect();
        assert_eq!(
            charged_holds.len(),
            charges.len(),
            "one charge per hold at most: {charges:#?}"
        );
        for charge in &charges {
            let hold_id = charge.hold_id.as_deref().unwrap_or_default();
            let booked: Vec<&Value> = bookings
                .iter()
                .filter(|booking| booking["hold_id"] == hold_id)
                .collect();
            let refunded = refunds
                .iter()
                .filter(|refund| refund.payment_intent == charge.payment_intent)
                .count();
            match (booked.as_slice(), refunded) {
                ([booking], 0) => {
                    assert_eq!(
                        booking["total"]["amount"].as_i64(),
                        Some(charge.amount),
                        "the booking is for the amount charged: {booking} vs {charge:?}"
                    );
                    assert!(
                        booking["total"]["currency"]
                            .as_str()
                            .is_some_and(|currency| currency.eq_ignore_ascii_case(&charge.currency)),
                        "the booking is in the currency charged: {booking} vs {charge:?}"
                    );
                    let actions = audit.get(hold_id).cloned().unwrap_or_default();
                    for action in ["payment.captured", "booking.confirmed"] {
                        assert_eq!(
                            actions.iter().filter(|a| *a == action).count(),
                            1,
                            "{action} once in the audit of {hold_id}: {actions:?}"
                        );
                    }
                }
                ([], 1) => assert!(charge.refunded, "{charge:?}"),
                _ => panic!(
                    "the charge {charge:?} has {} bookings and {refunded} refunds (exactly one of either expected): {booked:#?}",
                    booked.len()
                ),
            }
        }
        let mut booked_seats = BTreeSet::new();
        for booking in &bookings {
            for seat in seat_ids_of(booking) {
                assert!(
                    booked_seats.insert(seat.clone()),
                    "{seat} is in two bookings"
                );
            }
        }
        let map = self.app.seat_map(&self.show_id).await;
        assert_eq!(
            seats_with_status(&map, "BOOKED"),
            booked_seats,
            "the seat map's BOOKED seats are the bookings' seats"
        );
        LedgerSummary {
            charges: charges.len(),
            bookings: bookings.len(),
            refunds: refunds.len(),
        }
    }
}

/// What the server answered a webhook delivery (`booked`, `refunded`, …).
pub fn outcome_of(delivery: &WebhookDelivery) -> String {
    serde_json::from_str::<Value>(&delivery.body)
        .ok()
        .and_then(|body| body["outcome"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("(no outcome in {delivery:?})"))
}
