use axum::extract::{Path, State};
use axum::Json;
use boxoffice_services::auth::{LoginInput, RegisterInput, RegisteredView, TokenView, UserView};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{created, Created, ListView};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Caller, PageParams};
use crate::AppState;

/// Register a customer account.
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterInput,
    responses((status = 201, body = RegisteredView), (status = 400, description = "invalid_request"), (status = 409, description = "email_taken")))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<RegisterInput>,
) -> Result<Created<RegisteredView>, ApiError> {
    Ok(created(state.services.auth.register(input).await?))
}

/// Log in and get an access token.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginInput,
    responses((status = 200, body = TokenView), (status = 401, description = "invalid_credentials")))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<LoginInput>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(state.services.auth.login(input).await?))
}

/// The current user.
#[utoipa::path(get, path = "/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, description = "unauthorized")))]
pub async fn me(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(state.services.auth.me(&caller).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersQuery {
    email: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// List users (admin), optionally by e-mail.
#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = [])),
    params(("email" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<UserView>), (status = 403, description = "forbidden")))]
pub async fn list_users(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<UsersQuery>,
) -> Result<Json<ListView<UserView>>, ApiError> {
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page_request()?;
    let email = query.email.map(|e| e.trim().to_lowercase());
    Ok(ListView::of(
        state
            .services
            .auth
            .list_users(&caller, email.as_deref(), &page)
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatchInput {
    /// `customer`, `staff` or `admin`.
    pub role: String,
}

/// Change a user's role (admin).
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", security(("bearer" = [])), request_body = UserPatchInput,
    responses((status = 200, body = UserView), (status = 404, description = "not_found")))]
pub async fn patch_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<UserPatchInput>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(
        state
            .services
            .auth
            .set_role(&caller, &id, &input.role)
            .await?,
    ))
}
