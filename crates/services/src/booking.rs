//! The buy flow: hold, release, confirm (pay), cancel, check-in; plus the
//! background work that keeps it honest (expiry, payment reconciliation).

use std::sync::Arc;
use std::time::Duration;

use boxoffice_domain::{
    BookingId, BookingStatus, HoldId, HoldRequestInput, HoldSelection, HoldStatus, Money,
    PaymentId, Role, SeatId, ShowId, ShowStatus, TicketClaims, TicketId, TicketSigner,
    TicketVerifier, UserId, TICKET_CODE_LENGTH_MAX,
};
use boxoffice_store::{
    AuditFilter, AuditRecord, BookingFilter, BookingRecord, BookingRejection, CancelRejection,
    CheckinRejection, HeldSeat, HeldStanding, HoldItems, HoldRecord, HoldRejection,
    HoldStateRejection, IdempotencyClaim, IdempotencyCompletion, IdempotencyScope, NewBooking,
    NewHold, Page, PageRequest, PaymentAbort, PaymentRecord, PaymentStartRejection, Store,
    StoredResponse, TicketRecord, TicketStatus,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::batcher::{BatchLimits, HoldBatcher, HoldStrategy};
use crate::catalog::{parse_show_id, CatalogService};
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::expiry::HoldExpiryQueue;
use crate::payments::{
    gateway_key_of_hold, ChargeOutcome, ChargeRequest, GatewayCharge, GuardPolicy, PaymentGateway,
};
use crate::seat_locks::{GuardedSeatLocks, LockAttempt, LockOutcome, SeatLocks};
use crate::views::{rfc3339, BookingView, CheckinView, HoldView, MoneyView};
use crate::waiting_room::{check_admission, WaitingRoomTokens};

mod webhooks;

pub use webhooks::{WebhookOutcome, WEBHOOK_GATEWAY_STRIPE};

/// Expired holds released per sweeper transaction.
const EXPIRY_BATCH_MAX: u32 = 500;
/// Stuck payments reconciled per pass.
const RECONCILE_BATCH_MAX: u32 = 100;
/// A payment is only reconciled once it is older than one gateway attempt
/// timeout plus this margin. A confirmation still retrying (the guard allows
/// up to two call budgets, charge and look-up) may be second-guessed; that
/// is safe — a charge it makes afterwards finds the hold no longer `PAYING`
/// and is refunded (`BookingService::book`) — and it keeps the promise that
/// a crashed payment's seats are back on sale within 5 s of `expires_at`.
const RECONCILE_GRACE: Duration = Duration::from_secs(1);
/// The guard in front of the gateway ends a call at its budget; this outer
/// deadline only catches a gateway that is not guarded (tests), a little
/// later so that the guard's own verdict (and its metrics) come first.
const GATEWAY_DEADLINE_SLACK: Duration = Duration::from_millis(100);

pub const ROUTE_HOLDS: &str = "POST /v1/holds";
pub const ROUTE_BOOKINGS: &str = "POST /v1/bookings";

/// Renders an error the way the http crate answers it, for stored replays.
pub type ErrorRenderer = fn(&ServiceError) -> StoredResponse;

#[derive(Debug, Clone)]
pub struct BookingConfig {
    /// How long one attempt at a gateway call may take before it counts as
    /// a failure; a call with its retries takes at most
    /// [`BookingConfig::payment_call_budget`].
    pub payment_timeout: Duration,
    /// An `Idempotency-Key` claim older than this belongs to a request that
    /// died with its server and may be taken over.
    pub idempotency_stale_after: Duration,
    /// One transaction per hold, or the per-show group commit.
    pub hold_strategy: HoldStrategy,
    pub batch_limits: BatchLimits,
}

impl Default for BookingConfig {
    fn default() -> Self {
        BookingConfig {
            payment_timeout: Duration::from_secs(5),
            idempotency_stale_after: Duration::from_secs(10),
            hold_strategy: HoldStrategy::Batched,
            batch_limits: BatchLimits::default(),
        }
    }
}

impl BookingConfig {
    /// The longest one guarded gateway call takes, retries included.
    pub fn payment_call_budget(&self) -> Duration {
        GuardPolicy::new(self.payment_timeout).call_budget()
    }

    fn gateway_deadline(&self) -> Duration {
        self.payment_call_budget() + GATEWAY_DEADLINE_SLACK
    }
}

/// An `Idempotency-Key` with the hash of the request body it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyRequest {
    pub key: String,
    pub request_hash: String,
}

/// Either a fresh answer or the stored answer of an earlier request.
#[derive(Debug)]
pub enum Replayable<T> {
    Fresh(T),
    Replay(StoredResponse),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmInput {
    pub hold_id: String,
    pub payment_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckinInput {
    pub code: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SandboxChargeView {
    pub id: String,
    pub hold_id: String,
    pub idempotency_key: String,
    pub amount: MoneyView,
    /// `CAPTURED` or `REFUNDED`.
    pub status: &'static str,
    pub created_at: String,
}

pub struct BookingService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    gateway: Arc<dyn PaymentGateway>,
    catalog: Arc<CatalogService>,
    signer: Arc<TicketSigner>,
    verifier: TicketVerifier,
    config: BookingConfig,
    render_error: ErrorRenderer,
    /// Present with the `batched` hold strategy.
    batcher: Option<Arc<HoldBatcher>>,
    /// This node's holds by deadline (see [`crate::expiry`]).
    expiry: Arc<HoldExpiryQueue>,
    /// Present when Redis is configured.
    seat_locks: Option<GuardedSeatLocks>,
    /// Checks `X-Admission-Token` on shows with a waiting room; without
    /// it, such shows cannot be held at all.
    admission: Option<Arc<WaitingRoomTokens>>,
    /// The Stripe webhook signing secret; without it there is no webhook
    /// endpoint.
    webhook_secret: Option<String>,
}

fn stored_json<T: Serialize>(status: u16, value: &T) -> StoredResponse {
    StoredResponse {
        status,
        body: serde_json::to_string(value).unwrap_or_else(|_| "{}".into()),
    }
}

fn parse_hold_id(id: &str) -> ServiceResult<HoldId> {
    HoldId::parse(id).map_err(|_| ServiceError::NotFound { what: "hold" })
}

impl BookingService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        gateway: Arc<dyn PaymentGateway>,
        catalog: Arc<CatalogService>,
        signer: Arc<TicketSigner>,
        config: BookingConfig,
        render_error: ErrorRenderer,
    ) -> Self {
        let verifier = signer.verifier();
        let batcher = (config.hold_strategy == HoldStrategy::Batched)
            .then(|| HoldBatcher::new(store.clone(), config.batch_limits));
        BookingService {
            batcher,
            expiry: HoldExpiryQueue::new(),
            seat_locks: None,
            admission: None,
            webhook_secret: None,
            store,
            clock,
            gateway,
            catalog,
            signer,
            verifier,
            config,
            render_error,
        }
    }

    /// Soft-locks every hold's seats across nodes before the database
    /// decides, so that nodes turn away each other's winners cheaply.
    pub fn with_admission_tokens(mut self, tokens: Arc<WaitingRoomTokens>) -> Self {
        self.admission = Some(tokens);
        self
    }

    /// Accepts the gateway's webhooks signed with `secret`.
    pub fn with_webhook_secret(mut self, secret: Option<String>) -> Self {
        self.webhook_secret = secret;
        self
    }

    pub fn with_seat_locks(mut self, locks: Arc<dyn SeatLocks>) -> Self {
        self.seat_locks = Some(GuardedSeatLocks::new(locks));
        self
    }

    pub fn ticket_public_key(&self) -> [u8; 32] {
        self.verifier.public_key()
    }

    // ----- idempotency -------------------------------------------------

    async fn claim(
        &self,
        caller: &AuthUser,
        route: &str,
        request: Option<IdempotencyRequest>,
    ) -> ServiceResult<Result<Option<IdempotencyScope>, StoredResponse>> {
        Ok(self
            .claim_with_takeover(caller, route, request)
            .await?
            .map(|claimed| claimed.map(|(scope, _)| scope)))
    }

    /// As `claim`, also saying whether a dead request's claim was taken over.
    async fn claim_with_takeover(
        &self,
        caller: &AuthUser,
        route: &str,
        request: Option<IdempotencyRequest>,
    ) -> ServiceResult<Result<Option<(IdempotencyScope, bool)>, StoredResponse>> {
        let Some(request) = request else {
            return Ok(Ok(None));
        };
        let scope = IdempotencyScope {
            user_id: caller.id.clone(),
            route: route.to_string(),
            key: request.key,
        };
        let now = self.clock.now();
        let stale_before = now
            - chrono::Duration::from_std(self.config.idempotency_stale_after).unwrap_or_default();
        match self
            .store
            .claim_idempotency_key(&scope, &request.request_hash, now, stale_before)
            .await?
        {
            IdempotencyClaim::Claimed => Ok(Ok(Some((scope, false)))),
            IdempotencyClaim::TakenOver => Ok(Ok(Some((scope, true)))),
            IdempotencyClaim::Replay(response) => Ok(Err(response)),
            IdempotencyClaim::Mismatch => Err(ServiceError::IdempotencyKeyReused),
            IdempotencyClaim::InProgress => Err(ServiceError::RequestInProgress),
        }
    }

    /// Stores 4xx answers for replay and forgets the claim after a 5xx one.
    /// (Successes were stored in the transaction of their effect.)
    async fn settle<T>(
        &self,
        scope: Option<IdempotencyScope>,
        result: ServiceResult<T>,
    ) -> ServiceResult<Replayable<T>> {
        let Some(scope) = scope else {
            return result.map(Replayable::Fresh);
        };
        if let Err(error) = &result {
            let outcome = if error.is_server_error() {
                self.store.abandon_idempotency_key(&scope).await
            } else {
                let completion = IdempotencyCompletion {
                    scope,
                    response: (self.render_error)(error),
                };
                self.store.complete_idempotency_key(&completion).await
            };
            if let Err(store_error) = outcome {
                tracing::warn!(error = %store_error, "could not settle an idempotency key");
            }
        }
        result.map(Replayable::Fresh)
    }

    // ----- holds -------------------------------------------------------

    #[tracing::instrument(skip_all, fields(show_id = %input.show_id, user_id = %caller.id), err(level = "debug"))]
    pub async fn hold(
        &self,
        caller: &AuthUser,
        input: HoldRequestInput,
        admission_token: Option<&str>,
        idempotency: Option<IdempotencyRequest>,
    ) -> ServiceResult<Replayable<HoldView>> {
        let selection = input
            .selection()
            .map_err(|errors| ServiceError::InvalidRequest { errors })?;
        let show = self.catalog.show_record(&input.show_id).await?;
        let now = self.clock.now();
        if show.status != ShowStatus::OnSale {
            return Err(ServiceError::ShowNotOnSale {
                reason: format!("the show is {}", show.status.as_str()),
            });
        }
        if now < show.sales_start {
            return Err(ServiceError::ShowNotOnSale {
                reason: format!("sales start at {}", rfc3339(show.sales_start)),
            });
        }
        if show.waiting_room.enabled {
            let tokens = self
                .admission
                .as_ref()
                .ok_or(ServiceError::AdmissionRequired)?;
            check_admission(
                tokens,
                caller,
                &show.id,
                admission_token,
                now.timestamp_millis(),
            )?;
        }
        let layout = self.catalog.layout(&show.venue_id).await?;
        let scope = match self.claim(caller, ROUTE_HOLDS, idempotency).await? {
            Ok(scope) => scope,
            Err(replay) => return Ok(Replayable::Replay(replay)),
        };
        let mut result = self
            .try_hold(caller, &show, &layout, &selection, scope.as_ref())
            .await;
        if matches!(selection, HoldSelection::BestAvailable { .. })
            && matches!(result, Err(ServiceError::SeatsUnavailable { .. }))
        {
            // Best-available lost a race for the seats it picked: pick again
            // once from fresh state.
            result = self
                .try_hold(caller, &show, &layout, &selection, scope.as_ref())
                .await;
        }
        match &result {
            Ok(_) => {
                metrics::counter!("boxoffice_holds_total", "outcome" => "created").increment(1)
            }
            Err(_) => {
                metrics::counter!("boxoffice_holds_total", "outcome" => "rejected").increment(1)
            }
        }
        self.settle(scope, result).await
    }

    async fn try_hold(
        &self,
        caller: &AuthUser,
        show: &boxoffice_store::ShowRecord,
        layout: &boxoffice_domain::VenueLayout,
        selection: &HoldSelection,
        scope: Option<&IdempotencyScope>,
    ) -> ServiceResult<HoldView> {
        let now = self.clock.now();
        let (items, _picked) = self.resolve_selection(show, layout, selection).await?;
        if scope.is_none() {
            // Fast reject: seats this node already knows are taken, and
            // standing places it knows are gone, lose without a database
            // round trip. (With an Idempotency-Key the answer must be
            // stored, so such requests take the full path.)
            let inventory = self.catalog.inventory(show).await?;
            let seat_ids: Vec<SeatId> = items
                .seats
                .iter()
                .map(|seat| seat.seat_id.clone())
                .collect();
            let taken = inventory.known_taken(&seat_ids, now);
            let short: Vec<String> = if taken.is_empty() {
                items
                    .standing
                    .iter()
                    .filter(|place| {
                        inventory
                            .standing_available(&place.section, now)
                            .is_some_and(|available| available < place.quantity)
                    })
                    .map(|place| place.section.clone())
                    .collect()
            } else {
                Vec::new()
            };
            if !taken.is_empty() || !short.is_empty() {
                metrics::counter!("boxoffice_holds_fast_rejected_total").increment(1);
                return Err(ServiceError::SeatsUnavailable {
                    seat_ids: taken.iter().map(|id| id.to_string()).collect(),
                    sections: short,
                });
            }
        }
        let currency = show
            .prices
            .values()
            .next()
            .map(|m| m.currency)
            .ok_or_else(|| ServiceError::Internal("show without prices".into()))?;
        let mut total = Money::zero(currency);
        for seat in &items.seats {
            total = total
                .checked_add(&seat.price)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
        }
        for place in &items.standing {
            let line = place
                .unit_price
                .checked_mul(place.quantity)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            total = total
                .checked_add(&line)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
        }
        let hold = NewHold {
            id: crate::new_id!(HoldId, now),
            show_id: show.id.clone(),
            user_id: caller.id.clone(),
            items,
            total,
            created_at: now,
            expires_at: now + chrono::Duration::seconds(i64::from(show.hold_ttl_seconds)),
            max_tickets_per_user: show.max_tickets_per_user,
        };
        let would_be = HoldRecord {
            id: hold.id.clone(),
            show_id: hold.show_id.clone(),
            user_id: hold.user_id.clone(),
            status: HoldStatus::Active,
            items: hold.items.clone(),
            total: hold.total.clone(),
            created_at: now,
            expires_at: hold.expires_at,
            payment_started_at: None,
            booking_id: None,
            ended_at: None,
        };
        let view = HoldView::of(&would_be, now);
        let completion = scope.map(|scope| IdempotencyCompletion {
            scope: scope.clone(),
            response: stored_json(201, &view),
        });
        let seat_ids: Vec<SeatId> = hold
            .items
            .seats
            .iter()
            .map(|seat| seat.seat_id.clone())
            .collect();
        // Like the fast reject, only without an Idempotency-Key: a refusal
        // here would leave such a request's answer unstored.
        // True when this request may own locks (a failed call may have run).
        let maybe_locked = match &self.seat_locks {
            Some(locks) if scope.is_none() && !seat_ids.is_empty() => {
                let ttl = (hold.expires_at - self.clock.now())
                    .to_std()
                    .unwrap_or_default();
                // The lock must never outlive the hold: a lapsed hold may not
                // block anyone, even before the sweeper runs.
                match locks.lock(&show.id, &seat_ids, &hold.id, ttl).await {
                    LockAttempt::Done(LockOutcome::Locked) | LockAttempt::Failed => true,
                    LockAttempt::Done(LockOutcome::Taken { seat_ids }) => {
                        metrics::counter!("boxoffice_holds_redis_rejected_total").increment(1);
                        return Err(ServiceError::SeatsUnavailable {
                            seat_ids: seat_ids.iter().map(|id| id.to_string()).collect(),
                            sections: Vec::new(),
                        });
                    }
                    LockAttempt::Skipped => false,
                }
            }
            _ => false,
        };
        let (hold_id, expires_at) = (hold.id.clone(), hold.expires_at);
        let outcome = match &self.batcher {
            Some(batcher) => batcher.submit(hold, completion).await,
            None => self.store.create_hold(&hold, completion.as_ref()).await,
        };
        if maybe_locked && !matches!(outcome, Ok(Ok(_))) {
            // Refused or failed: free the seats for the other requests now
            // rather than at the TTL. (Should a failed commit have gone
            // through after all, the hold merely lacks its filter.)
            if let Some(locks) = &self.seat_locks {
                locks.unlock(&show.id, &seat_ids, &hold_id).await;
            }
        }
        match outcome? {
            Ok(_) => {
                self.expiry.schedule(hold_id, expires_at);
                Ok(view)
            }
            Err(HoldRejection::SeatsUnavailable { seat_ids }) => {
                Err(ServiceError::SeatsUnavailable {
                    seat_ids: seat_ids.iter().map(|id| id.to_string()).collect(),
                    sections: Vec::new(),
                })
            }
            Err(HoldRejection::StandingUnavailable { section, .. }) => {
                Err(ServiceError::SeatsUnavailable {
                    seat_ids: Vec::new(),
                    sections: vec![section],
                })
            }
            Err(HoldRejection::TicketLimitExceeded {
                limit,
                already,
                requested,
            }) => Err(ServiceError::TicketLimitExceeded {
                limit,
                already,
                requested,
            }),
        }
    }

    async fn resolve_selection(
        &self,
        show: &boxoffice_store::ShowRecord,
        layout: &boxoffice_domain::VenueLayout,
        selection: &HoldSelection,
    ) -> ServiceResult<(HoldItems, Option<crate::inventory::TentativePick>)> {
        let price_of = |category: &str| -> ServiceResult<Money> {
            show.prices
                .get(category)
                .cloned()
                .ok_or_else(|| ServiceError::Internal(format!("no price for category {category}")))
        };
        let mut items = HoldItems::default();
        let mut tentative = None;
        match selection {
            HoldSelection::Seats(seat_ids) => {
                let mut unknown = Vec::new();
                for seat_id in seat_ids {
                    match layout.find_seat(seat_id) {
                        Some((section, _row, seat)) => items.seats.push(HeldSeat {
                            seat_id: seat_id.clone(),
                            section: section.id.clone(),
                            category: seat.category.clone(),
                            price: price_of(&seat.category)?,
                        }),
                        None => unknown.push(boxoffice_domain::FieldError {
                            field: "seat_ids".into(),
                            message: format!("the venue has no seat {seat_id}"),
                        }),
                    }
                }
                if !unknown.is_empty() {
                    return Err(ServiceError::InvalidRequest { errors: unknown });
                }
            }
            HoldSelection::Standing { section, quantity } => {
                let Some((standing, _capacity)) = layout.find_standing(section) else {
                    return Err(ServiceError::invalid(
                        "section",
                        format!("the venue has no standing section {section}"),
                    ));
                };
                items.standing.push(HeldStanding {
                    section: standing.id.clone(),
                    category: standing.category.clone(),
                    quantity: *quantity,
                    unit_price: price_of(&standing.category)?,
                });
            }
            HoldSelection::BestAvailable { quantity, category } => {
                if let Some(category) = category {
                    if !layout.categories().contains(category) {
                        return Err(ServiceError::invalid(
                            "category",
                            format!("the venue has no category {category}"),
                        ));
                    }
                }
                let inventory = self.catalog.inventory(show).await?;
                let Some((picked, guard)) =
                    inventory.pick_best_available(*quantity, category.as_deref(), self.clock.now())
                else {
                    return Err(ServiceError::SeatsUnavailable {
                        seat_ids: Vec::new(),
                        sections: Vec::new(),
                    });
                };
                tentative = Some(guard);
                for seat_id in picked {
                    if let Some((section, _row, seat)) = layout.find_seat(&seat_id) {
                        items.seats.push(HeldSeat {
                            seat_id: seat_id.clone(),
                            section: section.id.clone(),
                            category: seat.category.clone(),
                            price: price_of(&seat.category)?,
                        });
                    }
                }
            }
        }
        Ok((items, tentative))
    }

    async fn owned_hold(&self, caller: &AuthUser, id: &str) -> ServiceResult<HoldRecord> {
        let id = parse_hold_id(id)?;
        let hold = self
            .store
            .hold(&id)
            .await?
            .ok_or(ServiceError::NotFound { what: "hold" })?;
        if hold.user_id != caller.id && !caller.is_admin() {
            return Err(ServiceError::NotFound { what: "hold" });
        }
        Ok(hold)
    }

    pub async fn get_hold(&self, caller: &AuthUser, id: &str) -> ServiceResult<HoldView> {
        let hold = self.owned_hold(caller, id).await?;
        Ok(HoldView::of(&hold, self.clock.now()))
    }

    #[tracing::instrument(skip_all, fields(hold_id = %id, user_id = %caller.id), err(level = "debug"))]
    pub async fn release(&self, caller: &AuthUser, id: &str) -> ServiceResult<()> {
        let hold_id = parse_hold_id(id)?;
        match self
            .store
            .release_hold(&hold_id, Some(&caller.id), self.clock.now())
            .await?
        {
            Ok(released) => {
                self.unlock_seats_of(&released).await;
                Ok(())
            }
            Err(HoldStateRejection::NotFound) => Err(ServiceError::NotFound { what: "hold" }),
            Err(HoldStateRejection::NotActive) => {
                let status = self
                    .store
                    .hold(&hold_id)
                    .await?
                    .map(|h| h.status.as_str().to_string())
                    .unwrap_or_default();
                Err(ServiceError::HoldNotActive { status })
            }
        }
    }

    /// Removes the soft-locks of a hold that ended (released, expired,
    /// declined), so that its seats can be held again at once on any node.
    async fn unlock_seats_of(&self, hold: &HoldRecord) {
        self.unlock_seats(&hold.show_id, &hold.items, &hold.id)
            .await;
    }

    async fn unlock_seats(&self, show_id: &ShowId, items: &HoldItems, owner: &HoldId) {
        let Some(locks) = &self.seat_locks else {
            return;
        };
        let seat_ids: Vec<SeatId> = items
            .seats
            .iter()
            .map(|seat| seat.seat_id.clone())
            .collect();
        locks.unlock(show_id, &seat_ids, owner).await;
    }

    /// `abort_payment` answers the hold as it left it; only an ended one frees its seats.
    async fn unlock_if_ended(&self, hold: Option<&HoldRecord>) {
        if let Some(hold) = hold {
            if matches!(hold.status, HoldStatus::Released | HoldStatus::Expired) {
                self.unlock_seats_of(hold).await;
            }
        }
    }

    // ----- confirm (pay) ------------------------------------------------

    #[tracing::instrument(skip_all, fields(hold_id = %input.hold_id, user_id = %caller.id), err(level = "debug"))]
    pub async fn confirm(
        &self,
        caller: &AuthUser,
        input: ConfirmInput,
        idempotency: Option<IdempotencyRequest>,
    ) -> ServiceResult<Replayable<BookingView>> {
        let Some(idempotency) = idempotency else {
            return Err(ServiceError::IdempotencyKeyRequired);
        };
        if !input.payment_token.starts_with("tok_") || input.payment_token.len() > 255 {
            return Err(ServiceError::invalid(
                "payment_token",
                "must be a payment token starting with tok_",
            ));
        }
        let (scope, taken_over) = match self
            .claim_with_takeover(caller, ROUTE_BOOKINGS, Some(idempotency))
            .await?
        {
            Ok(Some((scope, taken_over))) => (Some(scope), taken_over),
            Ok(None) => (None, false),
            Err(replay) => return Ok(Replayable::Replay(replay)),
        };
        let result = self.pay_and_book(caller, &input, scope.as_ref()).await;
        if taken_over && matches!(result, Err(ServiceError::HoldNotActive { .. })) {
            // The request that first used this key died mid-payment and
            // reconciliation booked the hold since: that booking is the answer
            // the first request would have stored.
            if let Some(booking) = self.booking_of_own_hold(caller, &input.hold_id).await? {
                let view = BookingView::of(&booking);
                if let Some(scope) = &scope {
                    self.store
                        .complete_idempotency_key(&IdempotencyCompletion {
                            scope: scope.clone(),
                            response: stored_json(201, &view),
                        })
                        .await?;
                }
                return Ok(Replayable::Fresh(view));
            }
        }
        let outcome = match &result {
            Ok(_) => "confirmed",
            Err(ServiceError::PaymentDeclined) => "declined",
            Err(ServiceError::PaymentUnavailable) => "unavailable",
            Err(_) => "rejected",
        };
        metrics::counter!("boxoffice_confirmations_total", "outcome" => outcome).increment(1);
        self.settle(scope, result).await
    }

    async fn pay_and_book(
        &self,
        caller: &AuthUser,
        input: &ConfirmInput,
        scope: Option<&IdempotencyScope>,
    ) -> ServiceResult<BookingView> {
        let hold_id = parse_hold_id(&input.hold_id)?;
        let now = self.clock.now();
        let hold = match self.store.begin_payment(&hold_id, &caller.id, now).await? {
            Ok(hold) => hold,
            Err(PaymentStartRejection::NotFound) => {
                return Err(ServiceError::NotFound { what: "hold" })
            }
            Err(PaymentStartRejection::Expired) => return Err(ServiceError::HoldExpired),
            Err(PaymentStartRejection::NotActive) => {
                let status = self
                    .store
                    .hold(&hold_id)
                    .await?
                    .map(|h| h.status.as_str().to_string())
                    .unwrap_or_default();
                return Err(ServiceError::HoldNotActive { status });
            }
        };
        let request = ChargeRequest {
            idempotency_key: gateway_key_of_hold(&hold.id),
            hold_id: hold.id.clone(),
            amount: hold.total.clone(),
            payment_token: input.payment_token.clone(),
        };
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(
            self.config.gateway_deadline(),
            self.gateway.charge(&request),
        )
        .await;
        metrics::histogram!("boxoffice_gateway_seconds").record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(Ok(ChargeOutcome::Captured { reference })) => {
                let charge = GatewayCharge {
                    reference,
                    amount: hold.total.clone(),
                    refunded: false,
                };
                self.book(&hold, &charge, scope).await
            }
            Ok(Ok(ChargeOutcome::Declined { reason })) => {
                tracing::info!(hold_id = %hold.id, %reason, "payment declined");
                let completion = scope.map(|scope| IdempotencyCompletion {
                    scope: scope.clone(),
                    response: (self.render_error)(&ServiceError::PaymentDeclined),
                });
                let aborted = self
                    .store
                    .abort_payment(
                        &hold.id,
                        PaymentAbort::Declined,
                        self.clock.now(),
                        completion.as_ref(),
                    )
                    .await?;
                self.unlock_if_ended(aborted.as_ref()).await;
                Err(ServiceError::PaymentDeclined)
            }
            Ok(Err(error)) => {
                tracing::warn!(hold_id = %hold.id, %error, "payment gateway failed");
                self.after_gateway_failure(&hold, scope).await
            }
            Err(_elapsed) => {
                tracing::warn!(hold_id = %hold.id, "payment gateway timed out");
                self.after_gateway_failure(&hold, scope).await
            }
        }
    }

    /// The gateway failed or timed out: it may still have captured. Ask it
    /// once; book if it did, else put the hold back to `ACTIVE`.
    async fn after_gateway_failure(
        &self,
        hold: &HoldRecord,
        scope: Option<&IdempotencyScope>,
    ) -> ServiceResult<BookingView> {
        let key = gateway_key_of_hold(&hold.id);
        if let Ok(Ok(Some(charge))) =
            tokio::time::timeout(self.config.gateway_deadline(), self.gateway.lookup(&key)).await
        {
            if !charge.refunded {
                return self.book(hold, &charge, scope).await;
            }
        }
        let aborted = self
            .store
            .abort_payment(&hold.id, PaymentAbort::Unavailable, self.clock.now(), None)
            .await?;
        if aborted.is_none() {
            // No longer PAYING: the gateway's webhook (or reconciliation)
            // booked it meanwhile. That booking is this request's answer.
            if let Some(booking) = self.store.booking_of_hold(&hold.id).await? {
                let view = BookingView::of(&booking);
                if let Some(scope) = scope {
                    self.store
                        .complete_idempotency_key(&IdempotencyCompletion {
                            scope: scope.clone(),
                            response: stored_json(201, &view),
                        })
                        .await?;
                }
                return Ok(view);
            }
        }
        self.unlock_if_ended(aborted.as_ref()).await;
        Err(ServiceError::PaymentUnavailable)
    }

    fn new_booking(
        &self,
        hold: &HoldRecord,
        charge: &GatewayCharge,
        now: DateTime<Utc>,
    ) -> NewBooking {
        let booking_id = crate::new_id!(BookingId, now);
        let mut tickets = Vec::with_capacity(hold.items.ticket_count() as usize);
        let mut ticket = |seat_id: Option<SeatId>, section: &str| {
            let id = crate::new_id!(TicketId, now);
            let claims = TicketClaims {
                ticket_id: id.clone(),
                booking_id: booking_id.clone(),
                show_id: hold.show_id.clone(),
                seat_id: seat_id.clone(),
                section: section.to_string(),
            };
            tickets.push(TicketRecord {
                id,
                booking_id: booking_id.clone(),
                show_id: hold.show_id.clone(),
                seat_id,
                section: section.to_string(),
                code: self.signer.sign(&claims),
                status: TicketStatus::Valid,
                checked_in_at: None,
            });
        };
        for seat in &hold.items.seats {
            ticket(Some(seat.seat_id.clone()), &seat.section);
        }
        for place in &hold.items.standing {
            for _ in 0..place.quantity {
                ticket(None, &place.section);
            }
        }
        let payment = PaymentRecord {
            id: crate::new_id!(PaymentId, now),
            hold_id: hold.id.clone(),
            gateway: self.gateway.name().to_string(),
            gateway_reference: charge.reference.clone(),
            amount: charge.amount.clone(),
            refunded: false,
            created_at: now,
        };
        NewBooking {
            booking: BookingRecord {
                id: booking_id,
                hold_id: hold.id.clone(),
                show_id: hold.show_id.clone(),
                user_id: hold.user_id.clone(),
                status: BookingStatus::Confirmed,
                items: hold.items.clone(),
                total: hold.total.clone(),
                payment_id: payment.id.clone(),
                created_at: now,
                cancelled_at: None,
                tickets,
            },
            payment,
        }
    }

    /// Writes the booking of a captured payment.
    async fn book(
        &self,
        hold: &HoldRecord,
        charge: &GatewayCharge,
        scope: Option<&IdempotencyScope>,
    ) -> ServiceResult<BookingView> {
        let now = self.clock.now();
        let new = self.new_booking(hold, charge, now);
        let view = BookingView::of(&new.booking);
        let completion = scope.map(|scope| IdempotencyCompletion {
            scope: scope.clone(),
            response: stored_json(201, &view),
        });
        match self
            .store
            .complete_booking(&new, now, completion.as_ref())
            .await?
        {
            Ok(_) => Ok(view),
            Err(BookingRejection::HoldNotPaying) => {
                // Someone else (reconciliation) finished this hold.
                match self.store.booking_of_hold(&hold.id).await? {
                    Some(existing) => Ok(BookingView::of(&existing)),
                    None => {
                        self.refund_orphan_charge(&hold.id).await;
                        Err(ServiceError::HoldNotActive {
                            status: "RELEASED".into(),
                        })
                    }
                }
            }
        }
    }

    async fn refund_orphan_charge(&self, hold_id: &HoldId) {
        // Claimed first, so that a late webhook never books the hold after
        // its money went back (invariant 3).
        match self.store.claim_refund(hold_id, self.clock.now()).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::error!(%hold_id, %error, "could not claim the refund of a charge without a booking");
                return;
            }
        }
        let key = gateway_key_of_hold(hold_id);
        if let Err(error) = self.gateway.refund(&key).await {
            tracing::error!(%hold_id, %error, "could not refund a charge without a booking; reconciliation will retry");
        } else {
            tracing::warn!(%hold_id, "refunded a charge whose hold ended without a booking");
        }
    }

    // ----- bookings ------------------------------------------------------

    async fn booking_of_own_hold(
        &self,
        caller: &AuthUser,
        hold_id: &str,
    ) -> ServiceResult<Option<BookingRecord>> {
        let Ok(hold_id) = HoldId::parse(hold_id) else {
            return Ok(None);
        };
        Ok(self
            .store
            .booking_of_hold(&hold_id)
            .await?
            .filter(|booking| booking.user_id == caller.id))
    }

    async fn owned_booking(&self, caller: &AuthUser, id: &str) -> ServiceResult<BookingRecord> {
        let id = BookingId::parse(id).map_err(|_| ServiceError::NotFound { what: "booking" })?;
        let booking = self
            .store
            .booking(&id)
            .await?
            .ok_or(ServiceError::NotFound { what: "booking" })?;
        if booking.user_id != caller.id && !caller.is_admin() {
            return Err(ServiceError::NotFound { what: "booking" });
        }
        Ok(booking)
    }

    /// A booking as stored, for its owner or an admin.
    pub async fn owned_booking_record(
        &self,
        caller: &AuthUser,
        id: &str,
    ) -> ServiceResult<BookingRecord> {
        self.owned_booking(caller, id).await
    }

    /// The booking a ticket belongs to, for its owner or an admin.
    pub async fn booking_of_ticket(
        &self,
        caller: &AuthUser,
        ticket_id: &boxoffice_domain::TicketId,
    ) -> ServiceResult<BookingRecord> {
        let booking = self
            .store
            .booking_of_ticket(ticket_id)
            .await?
            .ok_or(ServiceError::NotFound { what: "ticket" })?;
        if booking.user_id != caller.id && !caller.is_admin() {
            return Err(ServiceError::NotFound { what: "ticket" });
        }
        Ok(booking)
    }

    pub async fn booking(&self, caller: &AuthUser, id: &str) -> ServiceResult<BookingView> {
        Ok(BookingView::of(&self.owned_booking(caller, id).await?))
    }

    pub async fn list_bookings(
        &self,
        caller: &AuthUser,
        show_id: Option<&str>,
        user_id: Option<&str>,
        page: &PageRequest,
    ) -> ServiceResult<Page<BookingView>> {
        let mut filter = BookingFilter::default();
        if caller.is_admin() {
            if let Some(show_id) = show_id {
                filter.show_id = Some(
                    parse_show_id(show_id)
                        .map_err(|_| ServiceError::invalid("show_id", "not a show ID"))?,
                );
            }
            if let Some(user_id) = user_id {
                filter.user_id = Some(
                    UserId::parse(user_id)
                        .map_err(|_| ServiceError::invalid("user_id", "not a user ID"))?,
                );
            }
        } else {
            filter.user_id = Some(caller.id.clone());
            if let Some(show_id) = show_id {
                filter.show_id = Some(
                    parse_show_id(show_id)
                        .map_err(|_| ServiceError::invalid("show_id", "not a show ID"))?,
                );
            }
        }
        let page = self.store.list_bookings(&filter, page).await?;
        Ok(Page {
            items: page.items.iter().map(BookingView::of).collect(),
            next_cursor: page.next_cursor,
        })
    }

    #[tracing::instrument(skip_all, fields(booking_id = %id, user_id = %caller.id), err(level = "debug"))]
    pub async fn cancel(&self, caller: &AuthUser, id: &str) -> ServiceResult<BookingView> {
        let booking = self.owned_booking(caller, id).await?;
        if booking.status != BookingStatus::Confirmed {
            return Err(ServiceError::BookingNotActive);
        }
        // Money first: refunding is idempotent, so a crash after it only
        // means the cancellation is repeated.
        let key = gateway_key_of_hold(&booking.hold_id);
        match tokio::time::timeout(self.config.gateway_deadline(), self.gateway.refund(&key)).await
        {
            Ok(Ok(())) => {}
            _ => return Err(ServiceError::PaymentUnavailable),
        }
        match self
            .store
            .cancel_booking(&booking.id, &caller.id, self.clock.now())
            .await?
        {
            Ok(cancelled) => {
                metrics::counter!("boxoffice_cancellations_total").increment(1);
                // A lock of the booking's hold may still run when the booking
                // is cancelled soon after: the seats are on sale again now.
                self.unlock_seats(&cancelled.show_id, &cancelled.items, &cancelled.hold_id)
                    .await;
                let refreshed = self
                    .store
                    .booking(&cancelled.id)
                    .await?
                    .unwrap_or(cancelled);
                Ok(BookingView::of(&refreshed))
            }
            Err(CancelRejection::NotFound) => Err(ServiceError::NotFound { what: "booking" }),
            Err(CancelRejection::NotActive) => Err(ServiceError::BookingNotActive),
        }
    }

    // ----- check-in ------------------------------------------------------

    #[tracing::instrument(skip_all, fields(user_id = %caller.id), err(level = "debug"))]
    pub async fn check_in(
        &self,
        caller: &AuthUser,
        input: CheckinInput,
    ) -> ServiceResult<CheckinView> {
        caller.require(Role::Staff)?;
        if input.code.len() > TICKET_CODE_LENGTH_MAX {
            return Err(ServiceError::InvalidTicket);
        }
        let claims = self
            .verifier
            .verify(input.code.trim())
            .map_err(|_| ServiceError::InvalidTicket)?;
        let outcome = self
            .store
            .check_in(&claims.ticket_id, &caller.id, self.clock.now())
            .await?;
        let outcome_label = match &outcome {
            Ok(_) => "admitted",
            Err(CheckinRejection::AlreadyCheckedIn { .. }) => "already_checked_in",
            Err(CheckinRejection::Cancelled) => "cancelled",
            Err(CheckinRejection::UnknownTicket) => "invalid",
        };
        metrics::counter!("boxoffice_checkins_total", "outcome" => outcome_label).increment(1);
        match outcome {
            Ok(ticket) => Ok(CheckinView {
                ticket_id: ticket.id.to_string(),
                booking_id: ticket.booking_id.to_string(),
                show_id: ticket.show_id.to_string(),
                seat_id: ticket.seat_id.map(|id| id.to_string()),
                section: ticket.section,
                checked_in_at: rfc3339(ticket.checked_in_at.unwrap_or_else(|| self.clock.now())),
            }),
            Err(CheckinRejection::AlreadyCheckedIn { at }) => {
                Err(ServiceError::AlreadyCheckedIn { at })
            }
            Err(CheckinRejection::Cancelled) => Err(ServiceError::TicketCancelled),
            Err(CheckinRejection::UnknownTicket) => Err(ServiceError::InvalidTicket),
        }
    }

    // ----- admin reads -----------------------------------------------------

    pub async fn audit(
        &self,
        caller: &AuthUser,
        filter: AuditFilter,
        page: &PageRequest,
    ) -> ServiceResult<Page<AuditRecord>> {
        caller.require(Role::Admin)?;
        Ok(self.store.list_audit(&filter, page).await?)
    }

    pub async fn sandbox_charges(
        &self,
        caller: &AuthUser,
        hold_id: &str,
    ) -> ServiceResult<Vec<SandboxChargeView>> {
        caller.require(Role::Admin)?;
        let charges = self.store.sandbox_charges_of_hold(hold_id).await?;
        Ok(charges
            .into_iter()
            .map(|charge| SandboxChargeView {
                id: charge.id,
                hold_id: charge.hold_id,
                idempotency_key: charge.idempotency_key,
                amount: MoneyView::from(&charge.amount),
                status: if charge.refunded {
                    "REFUNDED"
                } else {
                    "CAPTURED"
                },
                created_at: rfc3339(charge.created_at),
            })
            .collect())
    }

    // ----- background work -------------------------------------------------

    pub(crate) fn expiry_queue(&self) -> &Arc<HoldExpiryQueue> {
        &self.expiry
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Puts every `ACTIVE` hold of the store into this node's expiry queue.
    pub(crate) async fn schedule_active_holds(&self) -> ServiceResult<usize> {
        let deadlines = self.store.active_hold_deadlines().await?;
        let count = deadlines.len();
        for (hold_id, expires_at) in deadlines {
            self.expiry.schedule(hold_id, expires_at);
        }
        Ok(count)
    }

    /// Expires those of `hold_ids` that are still active and due (the
    /// expiry timer's work); returns how many.
    pub(crate) async fn expire_holds(&self, hold_ids: &[HoldId]) -> ServiceResult<usize> {
        let expired = self.store.expire_holds(hold_ids, self.clock.now()).await?;
        for hold in &expired {
            self.unlock_seats_of(hold).await;
        }
        if !expired.is_empty() {
            metrics::counter!("boxoffice_holds_expired_total").increment(expired.len() as u64);
            tracing::debug!(expired = expired.len(), "expired holds at their deadline");
        }
        Ok(expired.len())
    }

    /// Expires every due hold; returns how many. The safety net behind the
    /// expiry timer, for holds whose node died.
    pub async fn expire_due_holds(&self) -> ServiceResult<usize> {
        let mut expired = 0;
        loop {
            let batch = self
                .store
                .expire_due_holds(self.clock.now(), EXPIRY_BATCH_MAX)
                .await?;
            expired += batch.len();
            for hold in &batch {
                self.unlock_seats_of(hold).await;
            }
            if batch.len() < EXPIRY_BATCH_MAX as usize {
                break;
            }
        }
        if let Some(locks) = &self.seat_locks {
            locks.retry_deferred_unlocks().await;
        }
        if expired > 0 {
            metrics::counter!("boxoffice_holds_expired_total").increment(expired as u64);
            tracing::debug!(expired, "expired due holds");
        }
        Ok(expired)
    }

    /// Finishes holds stuck in `PAYING` (their confirming request died): book
    /// them if the gateway captured, else put them back. Returns how many.
    pub async fn reconcile_payments(&self) -> ServiceResult<usize> {
        let grace = chrono::Duration::from_std(self.config.payment_timeout + RECONCILE_GRACE)
            .unwrap_or_default();
        let stuck = self
            .store
            .holds_in_payment(self.clock.now() - grace, RECONCILE_BATCH_MAX)
            .await?;
        let mut finished = 0;
        for hold in stuck {
            let key = gateway_key_of_hold(&hold.id);
            let lookup =
                tokio::time::timeout(self.config.gateway_deadline(), self.gateway.lookup(&key))
                    .await;
            match lookup {
                Ok(Ok(Some(charge))) if !charge.refunded => {
                    tracing::info!(hold_id = %hold.id, "reconciliation: captured payment found, booking");
                    self.book(&hold, &charge, None).await?;
                }
                Ok(Ok(_)) => {
                    tracing::info!(hold_id = %hold.id, "reconciliation: no payment captured, hold back on sale path");
                    let aborted = self
                        .store
                        .abort_payment(&hold.id, PaymentAbort::Unavailable, self.clock.now(), None)
                        .await?;
                    self.unlock_if_ended(aborted.as_ref()).await;
                }
                _ => {
                    tracing::warn!(hold_id = %hold.id, "reconciliation: gateway unreachable, will retry");
                    continue;
                }
            }
            finished += 1;
        }
        if finished > 0 {
            metrics::counter!("boxoffice_payments_reconciled_total").increment(finished as u64);
        }
        Ok(finished)
    }
}
