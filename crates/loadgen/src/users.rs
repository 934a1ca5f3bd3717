//! Minted users: access tokens signed here with the server's JWT secret,
//! for crowds far too large to register.
//!
//! Registering a user hashes a password with Argon2 (tens of milliseconds
//! and 19 MiB each), so a million registered users would take hours on this
//! machine. The server's access tokens are HS256 JWTs whose claims are
//! `sub` (a `usr_…` ID), `role`, `iat` and `exp`, and the server trusts any
//! token it can verify without looking the user up. Given the secret (the
//! load generator chooses it for a server it spawns), we sign tokens for
//! synthetic users that exist in no `users` table. Such users can queue but
//! not hold seats: holds refer to the `users` table.

use std::time::{SystemTime, UNIX_EPOCH};

use boxoffice_domain::UserId;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::LoadtestError;

/// The server refuses shorter secrets (`BOXOFFICE_JWT_SECRET`).
pub const JWT_SECRET_LENGTH_MIN: usize = 16;
/// A minted token is good for as long as the server's own ones (an hour):
/// tokens are minted per request, so this only has to outlast one request.
const TOKEN_TTL_SECONDS: i64 = 3_600;
/// The low bits of a ULID's 80 bits of entropy that carry the user's index:
/// 2^40 users, far more than any crowd.
const INDEX_BITS: u32 = 40;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;

/// Which group of a run a minted user belongs to, so that the users of two
/// phases never collide (each phase numbers its users from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Population {
    /// The join-throughput phase.
    JoinThroughput = 1,
    /// The crowd simulation.
    Crowd = 2,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    role: &'static str,
    iat: i64,
    exp: i64,
}

/// Signs tokens for synthetic customers: user `index` of a population is
/// always the same user ID within one run, and different in another run.
pub struct UserMinter {
    key: EncodingKey,
    header: Header,
    /// The ULID time of every minted ID: the run's start.
    created_unix_ms: u64,
    /// 32 random bits per run, so that two runs never share a user.
    run_bits: u64,
}

impl UserMinter {
    pub fn new(secret: &str, run_id: u64) -> Result<UserMinter, LoadtestError> {
        if secret.len() < JWT_SECRET_LENGTH_MIN {
            return Err(LoadtestError::Config(format!(
                "the JWT secret must be at least {JWT_SECRET_LENGTH_MIN} characters"
            )));
        }
        let created_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Ok(UserMinter {
            key: EncodingKey::from_secret(secret.as_bytes()),
            header: Header::new(Algorithm::HS256),
            created_unix_ms,
            run_bits: run_id & 0xFFFF_FFFF,
        })
    }

    /// `usr_` + a ULID whose entropy is (run, population, index).
    pub fn user_id(&self, population: Population, index: u64) -> UserId {
        let entropy = (u128::from(self.run_bits) << 48)
            | (u128::from(population as u64) << INDEX_BITS)
            | u128::from(index & INDEX_MASK);
        UserId::generate(self.created_unix_ms, entropy)
    }

    /// A customer's access token for user `index` of `population`.
    pub fn token(&self, population: Population, index: u64) -> Result<String, String> {
        let user_id = self.user_id(population, index);
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.as_str(),
            role: "customer",
            iat: now,
            exp: now + TOKEN_TTL_SECONDS,
        };
        encode(&self.header, &claims, &self.key).map_err(|error| format!("minting: {error}"))
    }
}

/// A fresh secret for a server that the load generator spawns.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use jsonwebtoken::{decode, DecodingKey, Validation};
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Decoded {
        sub: String,
        role: String,
        iat: i64,
        exp: i64,
    }

    #[test]
    fn minted_tokens_verify_like_the_servers_own() {
        let secret = random_secret();
        let minter = UserMinter::new(&secret, 42).expect("a long secret");
        let token = minter.token(Population::Crowd, 7).expect("mint");
        // The same check as the server's `authenticate`.
        let data = decode::<Decoded>(
            &token,
            &DecodingKey::from_secret(secret.as_bytes()),
            &Validation::new(Algorithm::HS256),
        )
        .expect("the server's validation accepts it");
        assert!(
            UserId::parse(&data.claims.sub).is_ok(),
            "{}",
            data.claims.sub
        );
        assert_eq!(data.claims.role, "customer");
        assert!(data.claims.exp > data.claims.iat);
        assert_eq!(
            data.claims.sub,
            minter.user_id(Population::Crowd, 7).as_str()
        );
        // Another secret does not verify it.
        assert!(decode::<Decoded>(
            &token,
            &DecodingKey::from_secret(b"another-secret-of-length"),
            &Validation::new(Algorithm::HS256),
        )
        .is_err());
    }

    #[test]
    fn users_are_distinct_across_indices_populations_and_runs() {
        let secret = random_secret();
        let first = UserMinter::new(&secret, 1).expect("minter");
        let second = UserMinter::new(&secret, 2).expect("minter");
        let mut seen = HashSet::new();
        for index in [0, 1, 2, 999_999, INDEX_MASK] {
            for population in [Population::JoinThroughput, Population::Crowd] {
                for minter in [&first, &second] {
                    let id = minter.user_id(population, index);
                    assert!(UserId::parse(id.as_str()).is_ok(), "{id}");
                    assert!(seen.insert(id.to_string()), "{id} twice");
                }
            }
        }
        assert_eq!(
            first.user_id(Population::Crowd, 5),
            first.user_id(Population::Crowd, 5)
        );
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(UserMinter::new("fifteen-chars!!", 1).is_err());
        assert!(UserMinter::new("sixteen-chars!!!", 1).is_ok());
    }
}
