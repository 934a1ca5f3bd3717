//! A hold whose charge is being refunded (`refund_started_at` set while it
//! is still `ACTIVE`: reconciliation gave the payment up and put the hold
//! back, then the gateway captured after all and the orphan charge went
//! back) must never start a payment again — the gateway would replay the
//! refunded charge under the hold's key and the hold would be booked on
//! money given back. Through the API that state is only reached by a race
//! of reconciliation with a slow gateway, so the store sets it directly
//! here; on SQLite and on PostgreSQL (`TEST_POSTGRES_URL`).

mod common;

use boxoffice_domain::{HoldId, HoldRequestInput, Role};
use boxoffice_services::booking::{ConfirmInput, IdempotencyRequest, Replayable};
use boxoffice_services::ServiceError;
use boxoffice_store::{InventoryStore, PaymentWebhookStore};
use serde_json::json;

const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

async fn a_refunded_active_hold_is_not_paid_again(database_url: String) {
    let (store, services) = common::services_on(database_url).await;
    let shows = common::shows_in_a_small_hall(&services, &store, 1, json!({})).await;
    let buyer =
        common::user_with_role(&services, &store, "buyer@refunded.test", Role::Customer).await;
    let hold = match services
        .booking
        .hold(
            &buyer,
            HoldRequestInput {
                show_id: shows[0].to_string(),
                seat_ids: Some(vec!["A-1-1".into()]),
                quantity: None,
                category: None,
                section: None,
            },
            None,
            None,
        )
        .await
        .expect("hold")
    {
        Replayable::Fresh(hold) => hold,
        Replayable::Replay(stored) => panic!("a fresh hold, not a replay: {stored:?}"),
    };
    let hold_id = HoldId::parse(&hold.id).expect("hold id");
    assert!(
        store
            .claim_refund(&hold_id, chrono::Utc::now())
            .await
            .expect("claim the refund"),
        "the ACTIVE hold's refund is claimed"
    );

    let confirmed = services
        .booking
        .confirm(
            &buyer,
            ConfirmInput {
                hold_id: hold.id.clone(),
                payment_token: "tok_visa".into(),
            },
            Some(IdempotencyRequest {
                key: "refunded-hold-confirm".into(),
                request_hash: "refunded-hold-confirm".into(),
            }),
        )
        .await;
    assert!(
        matches!(confirmed, Err(ServiceError::HoldNotActive { .. })),
        "a hold whose charge is being refunded is not paid again: {confirmed:?}"
    );
    assert!(
        store
            .booking_of_hold(&hold_id)
            .await
            .expect("read the booking")
            .is_none(),
        "no booking"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_refunded_active_hold_is_not_paid_again() {
    let path = std::env::temp_dir().join(format!("bx-refunded-{}.db", rand::random::<u64>()));
    a_refunded_active_hold_is_not_paid_again(format!("sqlite://{}", path.display())).await;
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_refunded_active_hold_is_not_paid_again() {
    let admin_url = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_string());
    let name = format!("bx_refunded_{}", rand::random::<u32>());
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .expect("PostgreSQL at TEST_POSTGRES_URL");
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the test database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(&admin_url);
    a_refunded_active_hold_is_not_paid_again(format!("{base}/{name}")).await;
    let _ = sqlx::Executor::execute(
        &mut admin,
        format!("DROP DATABASE {name} WITH (FORCE)").as_str(),
    )
    .await;
}
