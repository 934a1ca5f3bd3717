//! The two signed tokens of the waiting room, both HS256 JWTs checked in
//! microseconds without any lookup:
//! - the admission token: "this user may hold seats of this show until …";
//! - the proof-of-work challenge: "this user may join this show's queue with
//!   a solution of this difficulty until …" (single use, enforced by the
//!   store).
//!
//! Each has its own key derived from the server secret and its own
//! audience, so neither can pass for the other or for an access token.

use boxoffice_domain::{ShowId, UserId};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ServiceError, ServiceResult};

const ADMISSION_AUDIENCE: &str = "boxoffice:admission";
const CHALLENGE_AUDIENCE: &str = "boxoffice:pow";

#[derive(Debug, Serialize, Deserialize)]
struct AdmissionClaims {
    aud: String,
    sub: String,
    show: String,
    /// The queue ticket that was admitted (for the audit of a hold).
    qtk: String,
    iat: i64,
    exp: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct ChallengeClaims {
    aud: String,
    sub: String,
    show: String,
    /// Random: makes each challenge unique and is what the store marks spent.
    jti: String,
    /// Leading zero bits the solution needs.
    bits: u8,
    exp: i64,
}

/// A challenge that verified: what the store must mark spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChallenge {
    pub id: String,
    pub difficulty: u8,
    pub expires_at_s: i64,
}

/// `exp` is in whole seconds and means "not at or after this instant"
/// (jsonwebtoken alone would accept it until the end of that second).
fn expired(exp_s: i64, now_ms: i64) -> bool {
    now_ms >= exp_s.saturating_mul(1_000)
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    fn derived(secret: &[u8], purpose: &str) -> Keys {
        let mut hasher = Sha256::new();
        hasher.update(b"boxoffice waiting room key v1\0");
        hasher.update(purpose.as_bytes());
        hasher.update(b"\0");
        hasher.update(secret);
        let key = hasher.finalize();
        Keys {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
        }
    }

    fn validation(audience: &str) -> Validation {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        // Expiry is part of what these tokens say; no grace.
        validation.leeway = 0;
        validation
    }
}

pub struct WaitingRoomTokens {
    admission: Keys,
    challenge: Keys,
}

impl WaitingRoomTokens {
    pub fn new(server_secret: &[u8]) -> WaitingRoomTokens {
        WaitingRoomTokens {
            admission: Keys::derived(server_secret, ADMISSION_AUDIENCE),
            challenge: Keys::derived(server_secret, CHALLENGE_AUDIENCE),
        }
    }

    /// The same claims give the same token, so every node hands out the
    /// same admission token for one admitted ticket.
    pub fn admission_token(
        &self,
        user: &UserId,
        show: &ShowId,
        ticket: &str,
        admitted_at_s: i64,
        expires_at_s: i64,
    ) -> ServiceResult<String> {
        let claims = AdmissionClaims {
            aud: ADMISSION_AUDIENCE.into(),
            sub: user.to_string(),
            show: show.to_string(),
            qtk: ticket.to_string(),
            iat: admitted_at_s,
            exp: expires_at_s,
        };
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.admission.encoding,
        )
        .map_err(|error| ServiceError::Internal(format!("admission token signing: {error}")))
    }

    /// Checks an `X-Admission-Token` for this user and show at `now_ms`.
    pub fn verify_admission(
        &self,
        token: &str,
        user: &UserId,
        show: &ShowId,
        now_ms: i64,
    ) -> ServiceResult<()> {
        let claims = decode::<AdmissionClaims>(
            token,
            &self.admission.decoding,
            &Keys::validation(ADMISSION_AUDIENCE),
        )
        .map_err(|_| ServiceError::AdmissionInvalid)?
        .claims;
        if claims.sub != user.as_str()
            || claims.show != show.as_str()
            || expired(claims.exp, now_ms)
        {
            return Err(ServiceError::AdmissionInvalid);
        }
        Ok(())
    }

    pub fn challenge(
        &self,
        user: &UserId,
        show: &ShowId,
        difficulty: u8,
        id: String,
        expires_at_s: i64,
    ) -> ServiceResult<String> {
        let claims = ChallengeClaims {
            aud: CHALLENGE_AUDIENCE.into(),
            sub: user.to_string(),
            show: show.to_string(),
            jti: id,
            bits: difficulty,
            exp: expires_at_s,
        };
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.challenge.encoding,
        )
        .map_err(|error| ServiceError::Internal(format!("challenge signing: {error}")))
    }

    /// Checks that a challenge is ours, unexpired, and for this user and show.
    pub fn verify_challenge(
        &self,
        challenge: &str,
        user: &UserId,
        show: &ShowId,
        now_ms: i64,
    ) -> ServiceResult<VerifiedChallenge> {
        let claims = decode::<ChallengeClaims>(
            challenge,
            &self.challenge.decoding,
            &Keys::validation(CHALLENGE_AUDIENCE),
        )
        .map_err(|error| ServiceError::PowInvalid {
            reason: match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the challenge has expired",
                _ => "the challenge is not one of ours",
            },
        })?
        .claims;
        if claims.sub != user.as_str() || claims.show != show.as_str() {
            return Err(ServiceError::PowInvalid {
                reason: "the challenge was issued for another user or show",
            });
        }
        if expired(claims.exp, now_ms) {
            return Err(ServiceError::PowInvalid {
                reason: "the challenge has expired",
            });
        }
        Ok(VerifiedChallenge {
            id: claims.jti,
            difficulty: claims.bits,
            expires_at_s: claims.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (UserId, UserId, ShowId, ShowId) {
        (
            UserId::generate(1, 1),
            UserId::generate(1, 2),
            ShowId::generate(1, 3),
            ShowId::generate(1, 4),
        )
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn now_ms() -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    #[test]
    fn admission_tokens_bind_user_show_and_time() {
        let tokens = WaitingRoomTokens::new(b"a server secret of some length");
        let (alice, bob, show, other_show) = ids();
        let at = now();
        let token = tokens
            .admission_token(&alice, &show, "qtk_x", at, at + 60)
            .expect("sign");
        assert!(tokens
            .verify_admission(&token, &alice, &show, now_ms())
            .is_ok());
        assert!(matches!(
            tokens.verify_admission(&token, &bob, &show, now_ms()),
            Err(ServiceError::AdmissionInvalid)
        ));
        assert!(matches!(
            tokens.verify_admission(&token, &alice, &other_show, now_ms()),
            Err(ServiceError::AdmissionInvalid)
        ));
        let expired = tokens
            .admission_token(&alice, &show, "qtk_x", now() - 120, now() - 1)
            .expect("sign");
        assert!(matches!(
            tokens.verify_admission(&expired, &alice, &show, now_ms()),
            Err(ServiceError::AdmissionInvalid)
        ));
        let other_server = WaitingRoomTokens::new(b"another server secret entirely");
        assert!(matches!(
            other_server.verify_admission(&token, &alice, &show, now_ms()),
            Err(ServiceError::AdmissionInvalid)
        ));
        // Same claims, same token: every node answers alike.
        let again = tokens
            .admission_token(&alice, &show, "qtk_x", at, at + 60)
            .expect("sign");
        assert_eq!(again, token);
    }

    #[test]
    fn an_admission_ends_at_its_expiry_instant_exactly() {
        let tokens = WaitingRoomTokens::new(b"a server secret of some length");
        let (alice, _, show, _) = ids();
        let exp = now() + 30;
        let token = tokens
            .admission_token(&alice, &show, "qtk_x", exp - 60, exp)
            .expect("sign");
        assert!(tokens
            .verify_admission(&token, &alice, &show, exp * 1_000 - 1)
            .is_ok());
        assert!(tokens
            .verify_admission(&token, &alice, &show, exp * 1_000)
            .is_err());
    }

    #[test]
    fn a_challenge_is_not_an_admission_token_and_vice_versa() {
        let tokens = WaitingRoomTokens::new(b"a server secret of some length");
        let (alice, _, show, _) = ids();
        let challenge = tokens
            .challenge(&alice, &show, 8, "c1".into(), now() + 60)
            .expect("sign");
        assert!(matches!(
            tokens.verify_admission(&challenge, &alice, &show, now_ms()),
            Err(ServiceError::AdmissionInvalid)
        ));
        let admission = tokens
            .admission_token(&alice, &show, "qtk_x", now(), now() + 60)
            .expect("sign");
        assert!(matches!(
            tokens.verify_challenge(&admission, &alice, &show, now_ms()),
            Err(ServiceError::PowInvalid { .. })
        ));
        let verified = tokens
            .verify_challenge(&challenge, &alice, &show, now_ms())
            .expect("valid");
        assert_eq!(verified.id, "c1");
        assert_eq!(verified.difficulty, 8);
    }
}
