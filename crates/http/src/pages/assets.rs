//! The pages' CSS and JavaScript, compiled into the binary so that one file
//! is the whole product (no CDN, no build step).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::layout::PageError;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../../assets/favicon.svg"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/app.js"),
    },
    Asset {
        name: "seatmap.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../assets/seatmap.css"),
    },
    Asset {
        name: "seatmap.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/seatmap.js"),
    },
];

/// Assets may change with every release; five minutes of caching spares
/// the server without keeping an old script long after an upgrade.
const CACHE_CONTROL: &str = "public, max-age=300";

pub async fn asset(Path(name): Path<String>) -> Result<Response, PageError> {
    let asset = ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .ok_or(PageError::NotFound)?;
    let mut response = (StatusCode::OK, asset.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// Browsers ask for `/favicon.ico` on pages without an icon link (the API
/// docs page, a JSON answer opened in a tab).
pub async fn favicon() -> Result<Response, PageError> {
    asset(Path("favicon.svg".to_string())).await
}
