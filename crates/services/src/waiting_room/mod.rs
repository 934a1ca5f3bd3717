//! The virtual waiting room of a show (API.md "Waiting room"): join, poll,
//! admission tokens, and the optional proof of work on joining.
//!
//! The rules are `boxoffice_domain::waiting_room`; the shared state lives
//! behind the [`QueueStore`] port — the database in embedded mode, Redis
//! ([`RedisQueueStore`]) when `REDIS_URL` is set — so every node gives the
//! same answer for the same ticket. Admission tokens are signed and checked
//! without a lookup (see [`tokens`]).

pub mod pow;
pub mod redis;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use boxoffice_domain::waiting_room::{pre_queue_key, ticket_status, RoomConfig, TicketStatus};
use boxoffice_domain::{QueueTicketId, Role, ShowId, ShowStatus};
use boxoffice_store::{QueueJoin, QueueJoinOutcome, QueueSnapshot, QueueStore, ShowRecord};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use self::redis::RedisQueueStore;
pub use tokens::WaitingRoomTokens;

use crate::auth::AuthUser;
use crate::catalog::CatalogService;
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::views::rfc3339;

/// How long an admission lasts unless configured.
pub const ADMISSION_TTL_DEFAULT: Duration = Duration::from_secs(15 * 60);
/// How long a proof-of-work challenge may be worked on.
const CHALLENGE_TTL_SECONDS: i64 = 300;

#[derive(Debug, Clone)]
pub struct WaitingRoomConfig {
    pub admission_ttl: Duration,
}

impl Default for WaitingRoomConfig {
    fn default() -> Self {
        WaitingRoomConfig {
            admission_ttl: ADMISSION_TTL_DEFAULT,
        }
    }
}

/// `POST /v1/shows/{id}/queue` body (may be empty).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinQueueInput {
    /// Required when the show's waiting room asks for a proof of work.
    pub pow: Option<PowSolution>,
}

/// A solved challenge of `GET /v1/shows/{id}/queue/challenge`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PowSolution {
    pub challenge: String,
    /// Decimal digits: SHA-256(challenge ":" nonce) must start with
    /// `difficulty` zero bits.
    pub nonce: String,
}

/// A place in a show's waiting room (API.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct QueueTicketView {
    pub id: String,
    pub show_id: String,
    /// `WAITING`, `ADMITTED` or `EXPIRED`.
    pub status: &'static str,
    /// While waiting: 1 = next in. Before sales open: the size of the
    /// pre-queue (its order is drawn at the opening). 0 once admitted.
    pub position: u64,
    pub estimated_wait_seconds: u64,
    /// Send as `X-Admission-Token` with `POST /v1/holds` for this show.
    pub admission_token: Option<String>,
    pub admission_expires_at: Option<String>,
}

impl QueueTicketView {
    pub fn is_final(&self) -> bool {
        self.status != "WAITING"
    }
}

/// A proof-of-work challenge for joining a queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PowChallengeView {
    pub challenge: String,
    /// Leading zero bits the solution's hash needs (0: any nonce will do).
    pub difficulty: u8,
    /// Always `sha256`: SHA-256 over the UTF-8 of `challenge + ":" + nonce`.
    pub algorithm: &'static str,
    pub expires_at: String,
}

pub struct WaitingRoomService {
    queue: Arc<dyn QueueStore>,
    catalog: Arc<CatalogService>,
    clock: Arc<dyn Clock>,
    tokens: Arc<WaitingRoomTokens>,
    admission_ttl_ms: i64,
}

pub(crate) fn room_config(show: &ShowRecord) -> RoomConfig {
    RoomConfig {
        admit_per_minute: show.waiting_room.admit_per_minute,
        paused: show.waiting_room.paused,
        sales_start_ms: show.sales_start.timestamp_millis(),
        version: show.updated_at.timestamp_millis(),
    }
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl WaitingRoomService {
    pub fn new(
        queue: Arc<dyn QueueStore>,
        catalog: Arc<CatalogService>,
        clock: Arc<dyn Clock>,
        tokens: Arc<WaitingRoomTokens>,
        config: &WaitingRoomConfig,
    ) -> WaitingRoomService {
        WaitingRoomService {
            queue,
            catalog,
            clock,
            tokens,
            admission_ttl_ms: i64::try_from(config.admission_ttl.as_millis())
                .unwrap_or(i64::MAX)
                .max(1_000),
        }
    }

    /// A show whose waiting room can be joined or read.
    async fn show_with_room(&self, show_id: &str) -> ServiceResult<ShowRecord> {
        let show = self.catalog.show_record(show_id).await?;
        if !show.waiting_room.enabled {
            return Err(ServiceError::WaitingRoomDisabled);
        }
        Ok(show)
    }

    #[tracing::instrument(skip_all, fields(show_id = %show_id, user_id = %caller.id), err(level = "debug"))]
    pub async fn join(
        &self,
        caller: &AuthUser,
        show_id: &str,
        input: JoinQueueInput,
    ) -> ServiceResult<(QueueTicketView, bool)> {
        let show = self.show_with_room(show_id).await?;
        if show.status == ShowStatus::Cancelled {
            return Err(ServiceError::ShowNotOnSale {
                reason: "the show is CANCELLED".into(),
            });
        }
        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        if show.waiting_room.pow_difficulty > 0 {
            self.check_proof_of_work(caller, &show, input.pow.as_ref(), now_ms)
                .await?;
        }
        let ticket_id =
            QueueTicketId::generate(u64::try_from(now_ms).unwrap_or(0), rand::random::<u128>());
        let join = QueueJoin {
            show_id: &show.id,
            user_id: &caller.id,
            new_ticket_id: &ticket_id,
            config: room_config(&show),
            pre_queue_key: pre_queue_key(rand::random::<u64>()),
            now_ms,
            admission_ttl_ms: self.admission_ttl_ms,
        };
        let (snapshot, created) = match self.queue.join_queue(&join).await? {
            QueueJoinOutcome::Joined(snapshot) => (snapshot, true),
            QueueJoinOutcome::Existing(snapshot) => (snapshot, false),
        };
        metrics::counter!("boxoffice_queue_joins_total", "outcome" => if created { "joined" } else { "existing" })
            .increment(1);
        Ok((self.view(&snapshot, now_ms)?, created))
    }

    /// A ticket of the caller (admins may read any).
    pub async fn ticket(
        &self,
        caller: &AuthUser,
        show_id: &str,
        ticket_id: &str,
    ) -> ServiceResult<QueueTicketView> {
        let show = self.show_with_room(show_id).await?;
        let ticket_id = QueueTicketId::parse(ticket_id).map_err(|_| ServiceError::NotFound {
            what: "queue ticket",
        })?;
        let now_ms = self.clock.now().timestamp_millis();
        let snapshot = self
            .queue
            .queue_ticket(&show.id, &ticket_id, &room_config(&show), now_ms)
            .await?
            .filter(|snapshot| snapshot.ticket.user_id == caller.id || caller.role == Role::Admin)
            .ok_or(ServiceError::NotFound {
                what: "queue ticket",
            })?;
        metrics::counter!("boxoffice_queue_polls_total").increment(1);
        self.view(&snapshot, now_ms)
    }

    /// A fresh proof-of-work challenge for the caller and show.
    pub async fn challenge(
        &self,
        caller: &AuthUser,
        show_id: &str,
    ) -> ServiceResult<PowChallengeView> {
        let show = self.show_with_room(show_id).await?;
        let expires_at_s = self.clock.now().timestamp() + CHALLENGE_TTL_SECONDS;
        let difficulty = show.waiting_room.pow_difficulty;
        let id = hex::encode(rand::random::<[u8; 16]>());
        Ok(PowChallengeView {
            challenge: self
                .tokens
                .challenge(&caller.id, &show.id, difficulty, id, expires_at_s)?,
            difficulty,
            algorithm: "sha256",
            expires_at: rfc3339(from_millis(expires_at_s * 1_000)),
        })
    }

    async fn check_proof_of_work(
        &self,
        caller: &AuthUser,
        show: &ShowRecord,
        solution: Option<&PowSolution>,
        now_ms: i64,
    ) -> ServiceResult<()> {
        let solution = solution.ok_or(ServiceError::PowRequired)?;
        let challenge =
            self.tokens
                .verify_challenge(&solution.challenge, &caller.id, &show.id, now_ms)?;
        if challenge.difficulty < show.waiting_room.pow_difficulty {
            return Err(ServiceError::PowInvalid {
                reason: "the challenge is easier than this show now asks: get a new one",
            });
        }
        if !pow::solves(&solution.challenge, &solution.nonce, challenge.difficulty) {
            metrics::counter!("boxoffice_queue_pow_total", "outcome" => "wrong").increment(1);
            return Err(ServiceError::PowInvalid {
                reason: "the nonce does not solve the challenge",
            });
        }
        // Spent only once it verified, so a typo does not burn a solution.
        let expires_at_ms = challenge.expires_at_s.saturating_mul(1_000);
        if !self
            .queue
            .spend_challenge(&challenge.id, expires_at_ms, now_ms)
            .await?
        {
            metrics::counter!("boxoffice_queue_pow_total", "outcome" => "replayed").increment(1);
            return Err(ServiceError::PowInvalid {
                reason: "this challenge has been used already: get a new one",
            });
        }
        metrics::counter!("boxoffice_queue_pow_total", "outcome" => "accepted").increment(1);
        Ok(())
    }

    fn view(&self, snapshot: &QueueSnapshot, now_ms: i64) -> ServiceResult<QueueTicketView> {
        let ticket = &snapshot.ticket;
        let status = ticket_status(
            &snapshot.room,
            ticket.place,
            ticket.admitted_at_ms,
            now_ms,
            self.admission_ttl_ms,
        );
        let mut view = QueueTicketView {
            id: ticket.id.to_string(),
            show_id: ticket.show_id.to_string(),
            status: "WAITING",
            position: 0,
            estimated_wait_seconds: 0,
            admission_token: None,
            admission_expires_at: None,
        };
        match status {
            TicketStatus::Waiting {
                position,
                estimated_wait_seconds,
            } => {
                view.position = position;
                view.estimated_wait_seconds = estimated_wait_seconds;
            }
            TicketStatus::Admitted {
                admitted_at_ms,
                expires_at_ms,
            } => {
                // Whole seconds, as in the token, so both say the same.
                let expires_at_s = expires_at_ms.div_euclid(1_000);
                view.status = "ADMITTED";
                view.admission_token = Some(self.tokens.admission_token(
                    &ticket.user_id,
                    &ticket.show_id,
                    ticket.id.as_str(),
                    admitted_at_ms.div_euclid(1_000),
                    expires_at_s,
                )?);
                view.admission_expires_at = Some(rfc3339(from_millis(expires_at_s * 1_000)));
            }
            TicketStatus::Expired => view.status = "EXPIRED",
        }
        Ok(view)
    }
}

/// The gate of `POST /v1/holds`: on a show with a waiting room, a valid
/// admission token of this user for this show.
pub fn check_admission(
    tokens: &WaitingRoomTokens,
    caller: &AuthUser,
    show_id: &ShowId,
    token: Option<&str>,
    now_ms: i64,
) -> ServiceResult<()> {
    match token {
        None => Err(ServiceError::AdmissionRequired),
        Some(token) => tokens.verify_admission(token, &caller.id, show_id, now_ms),
    }
}
