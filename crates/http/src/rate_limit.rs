//! Rate limits in front of the routes (ADR 0013): which class a request
//! belongs to, who the client is, and the 429 before any work of the route
//! (body parsing, database, Argon2).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use boxoffice_services::{AuthUser, RateLimitClass, ServiceError};

use crate::error::ApiError;
use crate::AppState;

/// The limited class of a route, by method and route pattern (axum's
/// `MatchedPath`, or a path of the OpenAPI document). Matching by segments
/// rather than by exact pattern keeps the waiting-room routes covered
/// whatever their parameters end up being called.
pub fn rate_limit_class(method: &Method, route: &str) -> Option<RateLimitClass> {
    let segments: Vec<&str> = route.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["v1", "auth", "register" | "login"]) => Some(RateLimitClass::Auth),
        (&Method::POST, ["v1", "holds"]) => Some(RateLimitClass::Holds),
        (&Method::POST, ["v1", "bookings"] | ["v1", "bookings", _, "cancel"]) => {
            Some(RateLimitClass::Bookings)
        }
        (&Method::POST, ["v1", "shows", _, "queue"])
        | (
            &Method::GET,
            ["v1", "shows", _, "queue", _] | ["v1", "shows", _, "queue", _, "stream"],
        ) => Some(RateLimitClass::Queue),
        _ => None,
    }
}

/// The caller as the rate limiter authenticated it, so that the `Caller`
/// extractor does not check the same token twice.
#[derive(Clone)]
pub(crate) struct Authenticated(pub(crate) AuthUser);

/// Middleware on every route: counts a request of a limited class against
/// its user's and its address's limits, or answers 429 `rate_limited`.
pub async fn limit_requests(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let class = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|route| rate_limit_class(request.method(), route.as_str()));
    let Some(class) = class else {
        return next.run(request).await;
    };
    let limits = &state.services.rate_limits;
    let ip = client_ip(&request, state.client_ip_header.as_ref());
    // A missing or bad token is no reason to refuse here: the route answers
    // 401 itself, and such a request is limited by its address only.
    let user = limits
        .limits_users(class)
        .then(|| bearer_token(request.headers()))
        .flatten()
        .and_then(|token| state.services.auth.authenticate(token).ok());
    if let Err(limited) = limits
        .check(class, ip, user.as_ref().map(|user| &user.id))
        .await
    {
        // Unparsed: only so that the client reads the 429, not a broken pipe.
        crate::drain_body(request, crate::BODY_SIZE_MAX_BYTES).await;
        return ApiError::Service(ServiceError::from(limited)).into_response();
    }
    if let Some(user) = user {
        request.extensions_mut().insert(Authenticated(user));
    }
    next.run(request).await
}

/// `Authorization: Bearer <token>`, if present and well formed.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// The client's address: from `client_ip_header` when the operator named
/// one (behind a proxy), else the socket peer. The header's rightmost
/// address is taken, because a proxy appends the address it saw to what the
/// client sent, and everything left of it is the client's to invent. A
/// request without connect info (a router driven in tests) has no address.
fn client_ip(request: &Request, header: Option<&HeaderName>) -> Option<IpAddr> {
    let forwarded = header
        .and_then(|name| request.headers().get(name))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .and_then(parse_address);
    forwarded.or_else(|| {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip())
    })
}

/// `192.0.2.1`, `2001:db8::1`, `192.0.2.1:4711` or `[2001:db8::1]:4711`.
fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|address| address.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_classified_by_method_and_pattern() {
        let class = |method: Method, route: &str| rate_limit_class(&method, route);
        assert_eq!(
            class(Method::POST, "/v1/auth/login"),
            Some(RateLimitClass::Auth)
        );
        assert_eq!(
            class(Method::POST, "/v1/auth/register"),
            Some(RateLimitClass::Auth)
        );
        assert_eq!(
            class(Method::POST, "/v1/holds"),
            Some(RateLimitClass::Holds)
        );
        assert_eq!(class(Method::GET, "/v1/holds"), None);
        assert_eq!(class(Method::DELETE, "/v1/holds/{id}"), None);
        assert_eq!(
            class(Method::POST, "/v1/bookings"),
            Some(RateLimitClass::Bookings)
        );
        assert_eq!(class(Method::GET, "/v1/bookings"), None);
        assert_eq!(
            class(Method::POST, "/v1/bookings/{id}/cancel"),
            Some(RateLimitClass::Bookings)
        );
        assert_eq!(
            class(Method::POST, "/v1/shows/{id}/queue"),
            Some(RateLimitClass::Queue)
        );
        assert_eq!(
            class(Method::GET, "/v1/shows/{id}/queue/{ticket_id}"),
            Some(RateLimitClass::Queue)
        );
        assert_eq!(
            class(Method::GET, "/v1/shows/{show_id}/queue/{ticket}/stream"),
            Some(RateLimitClass::Queue)
        );
        assert_eq!(class(Method::GET, "/v1/shows/{id}/seats"), None);
        assert_eq!(class(Method::GET, "/v1/me"), None);
        assert_eq!(class(Method::POST, "/v1/checkin"), None);
    }

    #[test]
    fn addresses_parse_with_or_without_ports() {
        assert_eq!(parse_address(" 192.0.2.1"), "192.0.2.1".parse().ok());
        assert_eq!(parse_address("192.0.2.1:4711"), "192.0.2.1".parse().ok());
        assert_eq!(
            parse_address("[2001:db8::1]:4711"),
            "2001:db8::1".parse().ok()
        );
        assert_eq!(parse_address("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(parse_address("unknown"), None);
        assert_eq!(parse_address(""), None);
    }

    #[test]
    fn the_rightmost_forwarded_address_is_the_client() {
        let name = HeaderName::from_static("x-forwarded-for");
        let request = |value: &str| {
            Request::builder()
                .header("x-forwarded-for", value)
                .body(axum::body::Body::empty())
                .expect("request")
        };
        let mut with_peer = request("203.0.113.9, 198.51.100.7");
        with_peer
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 1234))));
        assert_eq!(
            client_ip(&with_peer, Some(&name)),
            "198.51.100.7".parse().ok()
        );
        assert_eq!(client_ip(&with_peer, None), "10.0.0.1".parse().ok());
        let mut garbage = request("not an address");
        garbage
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 1234))));
        assert_eq!(
            client_ip(&garbage, Some(&name)),
            "10.0.0.1".parse().ok(),
            "an unreadable header falls back to the peer"
        );
        assert_eq!(client_ip(&request("198.51.100.7"), None), None);
    }
}
