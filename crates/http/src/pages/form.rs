//! Form fields of a page's POST, urlencoded or multipart (file uploads),
//! after the same-origin check.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;

use super::layout::PageError;
use super::session::check_same_origin;
use crate::error::Problem;
use crate::AppState;

/// A posted form: its fields in order (a name may repeat, e.g. `seat_ids`).
#[derive(Debug, Default)]
pub struct FormFields {
    fields: Vec<(String, String)>,
}

/// Uploaded files are read as text (venue layouts); larger ones are refused
/// by the body limit before they get here.
impl FormFields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// The field's value, trimmed, or `""`.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_string()
    }

    /// The field trimmed, `None` when absent or blank.
    pub fn non_blank(&self, name: &str) -> Option<String> {
        Some(self.text(name)).filter(|value| !value.is_empty())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(field, value)| field == name && !value.trim().is_empty())
            .map(|(_, value)| value.trim().to_string())
            .collect()
    }
}

fn bad_form(detail: impl Into<String>) -> PageError {
    PageError::Problem(Problem {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_request",
        title: "The form could not be read",
        detail: detail.into(),
        extensions: Default::default(),
    })
}

impl FromRequest<AppState> for FormFields {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        check_same_origin(request.headers())?;
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            let mut multipart = Multipart::from_request(request, state)
                .await
                .map_err(|rejection| bad_form(rejection.body_text()))?;
            let mut fields = Vec::new();
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|error| bad_form(error.body_text()))?
            {
                let name = field.name().unwrap_or("").to_string();
                let text = field
                    .text()
                    .await
                    .map_err(|error| bad_form(error.body_text()))?;
                fields.push((name, text));
            }
            return Ok(FormFields { fields });
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| bad_form(rejection.body_text()))?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|error| bad_form(format!("not a form: {error}")))?;
        Ok(FormFields { fields })
    }
}

impl FormFields {
    /// A form filled in by the server (an edit form's current values).
    pub fn from_pairs(pairs: Vec<(&str, String)>) -> Self {
        FormFields {
            fields: pairs
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect(),
        }
    }

    pub fn extend(&mut self, pairs: Vec<(String, String)>) {
        self.fields.extend(pairs);
    }
}

/// A page's query string. A malformed one is taken as empty: the page
/// still shows, without the filters it could not read.
pub struct PageQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned + Default, S: Send + Sync> axum::extract::FromRequestParts<S>
    for PageQuery<T>
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(PageQuery(
            serde_urlencoded::from_str(query).unwrap_or_default(),
        ))
    }
}
