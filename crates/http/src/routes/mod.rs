pub mod auth;
pub mod booking;
pub mod catalog;
pub mod payments;
pub mod queue;
pub mod seat_stream;
pub mod system;
pub mod webhooks_out;

use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// `{"items": [...], "next_cursor": ...}` as every list of API.md.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListView<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> ListView<T> {
    pub fn of(page: boxoffice_store::Page<T>) -> Json<ListView<T>> {
        Json(ListView {
            items: page.items,
            next_cursor: crate::extract::encode_cursor(page.next_cursor),
        })
    }
}

pub type Created<T> = (StatusCode, Json<T>);

pub fn created<T>(value: T) -> Created<T> {
    (StatusCode::CREATED, Json(value))
}
