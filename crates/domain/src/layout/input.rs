//! The venue layout as clients send it (API.md "Venue layout").
//!
//! Kinds and numbers are kept loose here (`kind` is a string, counts are
//! `i64`) so that a wrong value becomes a clear per-field message from
//! validation rather than an opaque deserialization error. Unknown fields
//! are rejected: a typo such as `"capcity"` must not be silently ignored.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueInput {
    pub name: String,
    pub city: String,
    #[serde(default)]
    pub address: String,
    pub timezone: String,
    pub sections: Vec<SectionInput>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionInput {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `"seated"` or `"standing"`.
    pub kind: String,
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<RowInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowInput {
    pub label: String,
    pub seats: SeatsInput,
}

/// A row's seats: a count (numbered 1..N in order across the row) or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SeatsInput {
    Count(i64),
    List(Vec<SeatInput>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatInput {
    pub number: SeatNumberInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<f64>,
    /// Overrides the section's category for this seat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessible: Option<bool>,
}

/// Seat numbers are often written as JSON numbers (`12`); labels such as
/// `"12A"` need a string. Both become the label text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SeatNumberInput {
    Integer(i64),
    Text(String),
}

impl SeatNumberInput {
    /// The number as label text (`12` → `"12"`); validity is checked later.
    pub fn to_label(&self) -> String {
        match self {
            SeatNumberInput::Integer(number) => number.to_string(),
            SeatNumberInput::Text(text) => text.clone(),
        }
    }
}
