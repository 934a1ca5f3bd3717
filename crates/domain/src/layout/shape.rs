//! `VenueLayout` as JSON, in the same shape clients send (API.md "Venue
//! layout"). Serializing writes that shape; deserializing re-validates it,
//! so a stored layout can never come back subtly different or invalid.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use super::input::{RowInput, SeatInput, SeatNumberInput, SeatsInput, SectionInput};
use super::model::{Row, Section, SectionKind, VenueLayout};
use super::validate::validate_sections;
use crate::field_error::FieldErrors;

/// How many validation errors a failed deserialization quotes.
const QUOTED_ERRORS_MAX: usize = 3;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutShape {
    sections: Vec<SectionInput>,
}

impl VenueLayout {
    /// The layout in the input shape, such that validating it gives back an
    /// equal layout.
    pub fn to_input(&self) -> Vec<SectionInput> {
        self.sections.iter().map(section_input).collect()
    }
}

fn section_input(section: &Section) -> SectionInput {
    let (kind, rows, capacity) = match &section.kind {
        SectionKind::Seated { rows } => {
            let rows = rows.iter().map(|row| row_input(section, row)).collect();
            ("seated", Some(rows), None)
        }
        SectionKind::Standing { capacity } => ("standing", None, Some(i64::from(*capacity))),
    };
    SectionInput {
        id: section.id.clone(),
        name: Some(section.name.clone()),
        kind: kind.to_owned(),
        category: section.category.clone(),
        rows,
        capacity,
    }
}

/// A row is written as a plain count when the count alone describes it.
fn row_input(section: &Section, row: &Row) -> RowInput {
    let seats = if is_plain_numbered(section, row) {
        SeatsInput::Count(i64::try_from(row.seats.len()).unwrap_or(i64::MAX))
    } else {
        let seats = row
            .seats
            .iter()
            .map(|seat| SeatInput {
                number: SeatNumberInput::Text(seat.number.clone()),
                x: seat.x,
                y: seat.y,
                category: (seat.category != section.category).then(|| seat.category.clone()),
                accessible: Some(seat.accessible),
            })
            .collect();
        SeatsInput::List(seats)
    };
    RowInput {
        label: row.label.clone(),
        seats,
    }
}

/// Seats numbered exactly 1..N with nothing but their number.
fn is_plain_numbered(section: &Section, row: &Row) -> bool {
    row.seats.iter().enumerate().all(|(index, seat)| {
        seat.number == (index + 1).to_string()
            && seat.x.is_none()
            && seat.y.is_none()
            && seat.category == section.category
            && !seat.accessible
    })
}

impl Serialize for VenueLayout {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        LayoutShape {
            sections: self.to_input(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for VenueLayout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let shape = LayoutShape::deserialize(deserializer)?;
        let mut errors = FieldErrors::new();
        let layout = validate_sections(&shape.sections, &mut errors);
        errors.finish(layout).map_err(|errors| {
            let quoted: Vec<String> = errors
                .iter()
                .take(QUOTED_ERRORS_MAX)
                .map(ToString::to_string)
                .collect();
            de::Error::custom(format!("invalid venue layout: {}", quoted.join("; ")))
        })
    }
}
