//! Who is looking at a page: the access token in the session cookie.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use boxoffice_domain::Role;
use boxoffice_services::auth::{AuthUser, ACCESS_TOKEN_TTL_SECONDS};

use super::layout::PageError;
use crate::AppState;

/// The cookie that holds the access token of a signed-in browser.
pub const SESSION_COOKIE: &str = "bx_session";

/// The signed-in user of a page, if any, with the token that proves it (the
/// live parts of a page send it to `/v1` as a bearer token).
#[derive(Clone, Default)]
pub struct Viewer {
    pub user: Option<AuthUser>,
    pub token: Option<String>,
}

impl Viewer {
    /// The signed-in user, or a redirect to the login page that comes back
    /// to `here` afterwards.
    pub fn require_user(&self, here: &str) -> Result<AuthUser, PageError> {
        self.user.clone().ok_or_else(|| PageError::LoginRequired {
            next: here.to_string(),
        })
    }

    /// The signed-in user if they have at least `role`.
    pub fn require_role(&self, role: Role, here: &str) -> Result<AuthUser, PageError> {
        let user = self.require_user(here)?;
        user.require(role).map_err(|_| PageError::Forbidden)?;
        Ok(user)
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.user
            .as_ref()
            .is_some_and(|user| user.require(role).is_ok())
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = session_token(&parts.headers) else {
            return Ok(Viewer::default());
        };
        // An expired or forged token is the same as none: the pages ask to
        // sign in again.
        Ok(match state.services.auth.authenticate(&token) {
            Ok(user) => Viewer {
                user: Some(user),
                token: Some(token),
            },
            Err(_) => Viewer::default(),
        })
    }
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|value| !value.is_empty())
}

/// `Set-Cookie` for a new session. `SameSite=Lax` keeps other sites' forms
/// from posting with it; `HttpOnly` keeps scripts from reading it.
pub fn session_cookie(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={ACCESS_TOKEN_TTL_SECONDS}; HttpOnly; SameSite=Lax"
    ))
    .unwrap_or_else(|_| clear_session_cookie())
}

pub fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static("bx_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
}

/// Page forms change things with the session cookie, so a request sent by
/// another site's page is refused: a browser always sends `Origin` on a
/// cross-site POST, and it must name this host.
pub fn check_same_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    if origin == "null" || origin_host != host {
        return Err(PageError::Forbidden);
    }
    Ok(())
}

/// A page POST whose only input is its URL (log out, release, cancel,
/// join): it needs the same-origin check and no form fields.
pub struct SameOrigin;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for SameOrigin {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        check_same_origin(&parts.headers).map(|()| SameOrigin)
    }
}

/// A local path to go back to after signing in; anything else (another
/// site, `//host`) goes home, so the login page cannot be used to redirect
/// elsewhere.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}
