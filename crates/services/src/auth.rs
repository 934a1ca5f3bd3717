//! Accounts and access tokens: register, login, JWT, roles.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use boxoffice_domain::{FieldError, Role, UserId};
use boxoffice_store::{Page, PageRequest, Store, StoreError, UserRecord};
use chrono::Duration;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::rate_limit::{RateLimitConfig, RateLimits};
use crate::views::rfc3339;

pub const PASSWORD_LENGTH_MIN: usize = 8;
/// Argon2 cost grows with input; a bound keeps hashing time bounded.
pub const PASSWORD_LENGTH_MAX: usize = 128;
pub const EMAIL_LENGTH_MAX: usize = 254;
pub const NAME_LENGTH_MAX: usize = 100;
pub const PHONE_LENGTH_MAX: usize = 32;
/// Access tokens live an hour; clients log in again after that.
pub const ACCESS_TOKEN_TTL_SECONDS: i64 = 3600;

/// The authenticated caller, taken from the token, never from the body.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: UserId,
    pub role: Role,
}

impl AuthUser {
    pub fn require(&self, role: Role) -> ServiceResult<()> {
        let allowed = match role {
            Role::Customer => true,
            Role::Staff => matches!(self.role, Role::Staff | Role::Admin),
            Role::Admin => self.role == Role::Admin,
        };
        if allowed {
            Ok(())
        } else {
            Err(ServiceError::Forbidden {
                required: role.as_str(),
            })
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    iat: i64,
    exp: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub name: String,
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    /// `customer`, `staff` or `admin`.
    pub role: String,
    pub created_at: String,
}

impl From<&UserRecord> for UserView {
    fn from(user: &UserRecord) -> Self {
        UserView {
            id: user.id.to_string(),
            email: user.email.clone(),
            name: user.name.clone(),
            phone: user.phone.clone(),
            role: user.role.as_str().to_string(),
            created_at: rfc3339(user.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegisteredView {
    pub user: UserView,
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

pub struct AuthService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
    /// Slows down password guessing per account (ADR 0013).
    login_throttle: Arc<RateLimits>,
}

fn has_control_characters(value: &str) -> bool {
    value.chars().any(|c| c.is_control())
}

fn normalize_email(email: &str, errors: &mut Vec<FieldError>) -> String {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= EMAIL_LENGTH_MAX
        && !has_control_characters(&email)
        && !email.contains(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@'));
    if !valid {
        errors.push(FieldError {
            field: "email".into(),
            message: "must be an e-mail address like name@example.com".into(),
        });
    }
    email
}

/// Argon2 takes ~19 MiB and a core per hash: more at once than there are
/// cores only queues work and grows memory (each blocking thread keeps its
/// buffers), so hashing and verifying share this many permits.
const PASSWORD_HASHES_IN_PARALLEL_MAX: usize = 2;

static PASSWORD_HASHING: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(PASSWORD_HASHES_IN_PARALLEL_MAX);

async fn hash_password(password: String) -> ServiceResult<String> {
    let _permit = PASSWORD_HASHING
        .acquire()
        .await
        .map_err(|error| ServiceError::Internal(error.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| ServiceError::Internal(format!("hashing failed: {error}")))
    })
    .await
    .map_err(|error| ServiceError::Internal(error.to_string()))?
}

async fn verify_password(password: String, hash: String) -> bool {
    let Ok(_permit) = PASSWORD_HASHING.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

impl AuthService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, jwt_secret: &[u8]) -> Self {
        AuthService {
            store,
            clock,
            encoding_key: EncodingKey::from_secret(jwt_secret),
            decoding_key: DecodingKey::from_secret(jwt_secret),
            login_throttle: Arc::new(RateLimits::in_process(RateLimitConfig::default())),
        }
    }

    /// Counts failed logins per account in `limits` (their
    /// `login_failures`); without it, failed logins are not limited.
    pub fn with_login_throttle(mut self, limits: Arc<RateLimits>) -> Self {
        self.login_throttle = limits;
        self
    }

    fn issue_token(&self, user: &UserRecord) -> ServiceResult<String> {
        let now = self.clock.now();
        let claims = Claims {
            sub: user.id.to_string(),
            role: user.role.as_str().to_string(),
            iat: now.timestamp(),
            exp: (now + Duration::seconds(ACCESS_TOKEN_TTL_SECONDS)).timestamp(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding_key)
            .map_err(|error| ServiceError::Internal(format!("token signing failed: {error}")))
    }

    /// Checks a bearer token: signature, expiry, and well-formed claims.
    pub fn authenticate(&self, token: &str) -> ServiceResult<AuthUser> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        let data = decode::<Claims>(token, &self.decoding_key, &validation)
            .map_err(|_| ServiceError::Unauthorized)?;
        let id = UserId::parse(&data.claims.sub).map_err(|_| ServiceError::Unauthorized)?;
        let role = Role::parse(&data.claims.role).ok_or(ServiceError::Unauthorized)?;
        Ok(AuthUser { id, role })
    }

    async fn create_user(&self, input: RegisterInput, role: Role) -> ServiceResult<UserRecord> {
        let mut errors = Vec::new();
        let email = normalize_email(&input.email, &mut errors);
        let password_length = input.password.chars().count();
        if !(PASSWORD_LENGTH_MIN..=PASSWORD_LENGTH_MAX).contains(&password_length) {
            errors.push(FieldError {
                field: "password".into(),
                message: format!(
                    "must be {PASSWORD_LENGTH_MIN} to {PASSWORD_LENGTH_MAX} characters"
                ),
            });
        }
        let name = input.name.trim().to_string();
        if name.is_empty()
            || name.chars().count() > NAME_LENGTH_MAX
            || has_control_characters(&name)
        {
            errors.push(FieldError {
                field: "name".into(),
                message: format!("must be 1 to {NAME_LENGTH_MAX} printable characters"),
            });
        }
        let phone = input
            .phone
            .map(|phone| phone.trim().to_string())
            .filter(|phone| !phone.is_empty());
        if let Some(phone) = &phone {
            let valid = phone.len() <= PHONE_LENGTH_MAX
                && phone
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')'))
                && phone.chars().filter(|c| c.is_ascii_digit()).count() >= 5;
            if !valid {
                errors.push(FieldError {
                    field: "phone".into(),
                    message: "must be a phone number like +49 30 1234567".into(),
                });
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::InvalidRequest { errors });
        }
        if self.store.user_by_email(&email).await?.is_some() {
            return Err(ServiceError::EmailTaken);
        }
        let now = self.clock.now();
        let user = UserRecord {
            id: crate::new_id!(UserId, now),
            email,
            name,
            phone,
            role,
            password_hash: hash_password(input.password).await?,
            created_at: now,
        };
        match self.store.insert_user(&user).await {
            Ok(()) => Ok(user),
            // Two registrations raced for one address: the unique index decides.
            Err(StoreError::Conflict(_)) => Err(ServiceError::EmailTaken),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn register(&self, input: RegisterInput) -> ServiceResult<RegisteredView> {
        let user = self.create_user(input, Role::Customer).await?;
        Ok(RegisteredView {
            user: UserView::from(&user),
            access_token: self.issue_token(&user)?,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_TTL_SECONDS,
        })
    }

    /// Checks the password only while the account has login attempts left:
    /// once its failures use them up, even the right password gets 429
    /// until the limit lets another attempt through, and no Argon2 work is
    /// spent on it. A login that is not a wrong password gives its attempt
    /// back.
    pub async fn login(&self, input: LoginInput) -> ServiceResult<TokenView> {
        let email = input.email.trim().to_lowercase();
        if email.len() > EMAIL_LENGTH_MAX || input.password.len() > PASSWORD_LENGTH_MAX * 4 {
            return Err(ServiceError::InvalidCredentials);
        }
        self.login_throttle.login_attempt(&email).await?;
        let result = self.check_credentials(&email, input.password).await;
        if !matches!(result, Err(ServiceError::InvalidCredentials)) {
            self.login_throttle.login_succeeded(&email).await;
        }
        let user = result?;
        Ok(TokenView {
            access_token: self.issue_token(&user)?,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_TTL_SECONDS,
        })
    }

    async fn check_credentials(&self, email: &str, password: String) -> ServiceResult<UserRecord> {
        let Some(user) = self.store.user_by_email(email).await? else {
            return Err(ServiceError::InvalidCredentials);
        };
        if !verify_password(password, user.password_hash.clone()).await {
            return Err(ServiceError::InvalidCredentials);
        }
        Ok(user)
    }

    pub async fn me(&self, caller: &AuthUser) -> ServiceResult<UserView> {
        let user = self
            .store
            .user_by_id(&caller.id)
            .await?
            .ok_or(ServiceError::Unauthorized)?;
        Ok(UserView::from(&user))
    }

    /// Creates a user with any role (admin CLI, first admin at start).
    /// Returns false when the e-mail exists already.
    pub async fn create_user_with_role(
        &self,
        email: &str,
        password: &str,
        name: &str,
        role: Role,
    ) -> ServiceResult<bool> {
        let input = RegisterInput {
            email: email.into(),
            password: password.into(),
            name: name.into(),
            phone: None,
        };
        match self.create_user(input, role).await {
            Ok(_) => Ok(true),
            Err(ServiceError::EmailTaken) => Ok(false),
            Err(error) => Err(error),
        }
    }

    pub async fn list_users(
        &self,
        caller: &AuthUser,
        email: Option<&str>,
        page: &PageRequest,
    ) -> ServiceResult<Page<UserView>> {
        caller.require(Role::Admin)?;
        let users = self.store.list_users(email, page).await?;
        Ok(Page {
            items: users.items.iter().map(UserView::from).collect(),
            next_cursor: users.next_cursor,
        })
    }

    pub async fn set_role(
        &self,
        caller: &AuthUser,
        id: &str,
        role: &str,
    ) -> ServiceResult<UserView> {
        caller.require(Role::Admin)?;
        let role = Role::parse(role)
            .ok_or_else(|| ServiceError::invalid("role", "must be customer, staff or admin"))?;
        let id = UserId::parse(id).map_err(|_| ServiceError::NotFound { what: "user" })?;
        let user = self
            .store
            .update_user_role(&id, role)
            .await?
            .ok_or(ServiceError::NotFound { what: "user" })?;
        Ok(UserView::from(&user))
    }
}
