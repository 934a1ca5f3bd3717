//! Server secrets: the JWT secret and the ticket signing key. Given by
//! configuration, or generated on first start and kept in the database so
//! that every node (and every restart) uses the same ones.

use boxoffice_domain::TicketSigner;
use boxoffice_store::Store;

use crate::error::{ServiceError, ServiceResult};
use crate::ServicesConfig;

const JWT_SECRET_SETTING: &str = "jwt_secret";
const TICKET_SEED_SETTING: &str = "ticket_signing_seed";

pub struct Secrets {
    pub jwt_secret: Vec<u8>,
    pub ticket_signer: TicketSigner,
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

pub async fn load(store: &dyn Store, config: &ServicesConfig) -> ServiceResult<Secrets> {
    let jwt_secret = match &config.jwt_secret {
        Some(secret) if secret.len() >= 16 => secret.clone(),
        Some(_) => {
            return Err(ServiceError::Internal(
                "BOXOFFICE_JWT_SECRET must be at least 16 characters".into(),
            ))
        }
        None => {
            store
                .setting_get_or_insert(JWT_SECRET_SETTING, &random_hex())
                .await?
        }
    };
    let seed_hex = match &config.ticket_signing_seed {
        Some(seed) => seed.clone(),
        None => {
            store
                .setting_get_or_insert(TICKET_SEED_SETTING, &random_hex())
                .await?
        }
    };
    let seed: [u8; 32] = hex::decode(seed_hex.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            ServiceError::Internal(
                "the ticket signing key must be 64 hex characters (32 bytes)".into(),
            )
        })?;
    Ok(Secrets {
        jwt_secret: jwt_secret.into_bytes(),
        ticket_signer: TicketSigner::from_seed(seed),
    })
}
