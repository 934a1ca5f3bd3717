//! Venue layouts: the JSON an organizer sends ([`VenueInput`]), its
//! validation, and the validated [`VenueLayout`] that shows are built from.
//!
//! - `input`: the wire shapes, as permissive as serde allows, so that
//!   validation (not a serde error) explains what is wrong, per field.
//! - `validate`: the rules and their limits; collects every error.
//! - `model`: the validated types and the queries the rest of the system
//!   asks (seats in layout order, find a seat, categories).
//! - `shape`: `VenueLayout` to and from the input shape, so the stored JSON
//!   and `GET /v1/venues/{id}` look like what was sent.

mod input;
mod model;
mod shape;
mod validate;

#[cfg(test)]
mod tests;

pub use crate::field_error::FieldError;
pub use input::*;
pub use model::*;
pub use validate::*;
