//! Parsing a hold request (API.md "Holds") into what it asks for.
//!
//! Three forms, exactly one per request: chosen seats, best available
//! (a quantity and an optional category), or standing places in a section.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::field_error::{FieldError, FieldErrors};
use crate::seat::{is_valid_label, SeatId};
use crate::text::{is_valid_category, CATEGORY_LENGTH_MAX};

/// Places in one hold. A party rarely needs more than 20 adjacent seats;
/// the bound caps the rows one request locks and the work of one
/// all-or-nothing decision, so no single request can slow a flash sale.
/// A show's `max_tickets_per_user` is the business limit, usually lower.
pub const SEATS_PER_HOLD_MAX: u32 = 20;

/// Has a hold that ends at `expires_at` expired at `now`? A hold is live up
/// to and including its `expires_at` and expired once that has passed
/// (DESIGN.md: a place is available when `held_until < now`). Every layer
/// uses this one definition so that they agree to the microsecond.
pub fn is_hold_expired(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    expires_at < now
}

/// The body of `POST /v1/holds`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldRequestInput {
    pub show_id: String,
    pub seat_ids: Option<Vec<String>>,
    pub quantity: Option<i64>,
    pub category: Option<String>,
    pub section: Option<String>,
}

/// What a valid hold request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldSelection {
    /// These seats, all of them or none.
    Seats(Vec<SeatId>),
    /// Adjacent seats in one row chosen by the server.
    BestAvailable {
        quantity: u32,
        category: Option<String>,
    },
    /// Places in a standing section.
    Standing { section: String, quantity: u32 },
}

impl HoldSelection {
    /// How many places the selection asks for.
    pub fn place_count(&self) -> u32 {
        match self {
            HoldSelection::Seats(seats) => u32::try_from(seats.len()).unwrap_or(u32::MAX),
            HoldSelection::BestAvailable { quantity, .. } => *quantity,
            HoldSelection::Standing { quantity, .. } => *quantity,
        }
    }
}

impl HoldRequestInput {
    /// The selection, or every problem with the request. `show_id` is the
    /// caller's to parse: an unknown show is a 404, not a field error.
    pub fn selection(&self) -> Result<HoldSelection, Vec<FieldError>> {
        let mut errors = FieldErrors::new();
        let best_or_standing =
            self.quantity.is_some() || self.category.is_some() || self.section.is_some();
        let selection = match &self.seat_ids {
            Some(_) if best_or_standing => {
                errors.add(
                    "seat_ids",
                    "give either seat_ids, or quantity (with an optional category or a section), not both",
                );
                None
            }
            Some(seat_ids) => parse_seat_ids(seat_ids, &mut errors).map(HoldSelection::Seats),
            None => self.parse_quantity_form(&mut errors),
        };
        match (errors.finish(()), selection) {
            (Ok(()), Some(selection)) => Ok(selection),
            (Err(errors), _) => Err(errors),
            // Every path that gives no selection records an error; this
            // arm only keeps that promise checked by the compiler.
            (Ok(()), None) => Err(vec![FieldError::new("", "the hold request is invalid")]),
        }
    }

    /// Best available or standing: both need a quantity.
    fn parse_quantity_form(&self, errors: &mut FieldErrors) -> Option<HoldSelection> {
        let Some(quantity) = self.quantity else {
            let message = if self.section.is_some() || self.category.is_some() {
                "is required"
            } else {
                "give seat_ids, or quantity (with an optional category), or section and quantity"
            };
            errors.add("quantity", message);
            return None;
        };
        let quantity = parse_quantity(quantity, errors);
        if let Some(section) = &self.section {
            if !is_valid_label(section) {
                errors.add(
                    "section",
                    "must be a section id of 1 to 16 letters or digits",
                );
            }
            if self.category.is_some() {
                errors.add(
                    "category",
                    "applies to best-available holds, not to a standing section",
                );
            }
            return Some(HoldSelection::Standing {
                section: section.clone(),
                quantity: quantity?,
            });
        }
        if let Some(category) = &self.category {
            if !is_valid_category(category) {
                errors.add(
                    "category",
                    format!(
                        "must be 1 to {CATEGORY_LENGTH_MAX} characters of A-Z, a-z, 0-9, _ and -"
                    ),
                );
            }
        }
        Some(HoldSelection::BestAvailable {
            quantity: quantity?,
            category: self.category.clone(),
        })
    }
}

fn parse_quantity(quantity: i64, errors: &mut FieldErrors) -> Option<u32> {
    if quantity < 1 {
        errors.add("quantity", "must be at least 1");
        return None;
    }
    match u32::try_from(quantity) {
        Ok(quantity) if quantity <= SEATS_PER_HOLD_MAX => Some(quantity),
        _ => {
            errors.add("quantity", format!("must be at most {SEATS_PER_HOLD_MAX}"));
            None
        }
    }
}

fn parse_seat_ids(texts: &[String], errors: &mut FieldErrors) -> Option<Vec<SeatId>> {
    if texts.is_empty() {
        errors.add("seat_ids", "must list at least one seat");
        return None;
    }
    if texts.len() > SEATS_PER_HOLD_MAX as usize {
        errors.add(
            "seat_ids",
            format!("a hold has at most {SEATS_PER_HOLD_MAX} seats"),
        );
        return None;
    }
    let mut seats: Vec<SeatId> = Vec::with_capacity(texts.len());
    for (index, text) in texts.iter().enumerate() {
        let field = format!("seat_ids[{index}]");
        match SeatId::parse(text) {
            Ok(seat) if seats.contains(&seat) => {
                errors.add(field, format!("seat `{seat}` is listed twice"));
            }
            Ok(seat) => seats.push(seat),
            Err(error) => errors.add(field, error.to_string()),
        }
    }
    Some(seats)
}

#[cfg(test)]
mod tests;
