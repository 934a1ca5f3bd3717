//! The rules a venue layout must follow, and their limits.
//!
//! Validation never stops at the first mistake: it walks the whole input
//! and reports each error under the path of its field, so an organizer can
//! fix a large layout in one round trip.

use std::collections::HashSet;

use super::input::{RowInput, SeatInput, SeatsInput, SectionInput, VenueInput};
use super::model::{Row, Seat, Section, SectionKind, Venue, VenueLayout};
use crate::field_error::{FieldError, FieldErrors};
use crate::seat::{is_valid_label, SeatId, LABEL_LENGTH_MAX};
use crate::text::{checked_text, is_valid_category, CATEGORY_LENGTH_MAX};

/// A venue's display name; long names are truncated in every UI anyway.
pub const VENUE_NAME_LENGTH_MAX: usize = 200;
/// Long enough for "Llanfairpwllgwyngyll" and its friends.
pub const CITY_LENGTH_MAX: usize = 100;
/// One postal address line set, as printed on a ticket.
pub const ADDRESS_LENGTH_MAX: usize = 300;
/// IANA zone names are at most about 30 characters; 64 leaves room.
pub const TIMEZONE_LENGTH_MAX: usize = 64;
/// A section's display name, shown on seat maps and tickets.
pub const SECTION_NAME_LENGTH_MAX: usize = 100;
/// The largest stadiums have fewer than 200 blocks.
pub const SECTIONS_MAX: usize = 200;
/// Rows in one seated section; real blocks have far fewer.
pub const ROWS_PER_SECTION_MAX: usize = 500;
/// Seats in one row; also bounds the work of one best-available scan per row.
pub const SEATS_PER_ROW_MAX: usize = 1_000;
/// Places in one standing section (the largest festival fields).
pub const STANDING_CAPACITY_MAX: u32 = 1_000_000;
/// Seats in one venue: above the largest stadium, and small enough that a
/// show's whole seat inventory fits comfortably in memory and in one seat map.
pub const SEATS_PER_VENUE_MAX: usize = 200_000;
/// Seat coordinates are drawing units for the seat map; this bound keeps
/// them meaningful and rules out absurd values.
pub const SEAT_COORDINATE_ABSOLUTE_MAX: f64 = 1_000_000.0;

const KIND_SEATED: &str = "seated";
const KIND_STANDING: &str = "standing";

impl VenueInput {
    /// Checks every rule and returns the venue, or every error found.
    pub fn validate(self) -> Result<Venue, Vec<FieldError>> {
        let mut errors = FieldErrors::new();
        let name = checked_text(&mut errors, "name", &self.name, 1, VENUE_NAME_LENGTH_MAX);
        let city = checked_text(&mut errors, "city", &self.city, 1, CITY_LENGTH_MAX);
        let address = checked_text(&mut errors, "address", &self.address, 0, ADDRESS_LENGTH_MAX);
        let timezone = checked_timezone(&mut errors, &self.timezone);
        let layout = validate_sections(&self.sections, &mut errors);
        errors.finish(Venue {
            name,
            city,
            address,
            timezone,
            layout,
        })
    }
}

/// IANA names use only letters, digits and `/ _ + -` ("America/Port-au-Prince",
/// "Etc/GMT+1"). Whether the zone exists is for a layer with a zone database.
fn checked_timezone(errors: &mut FieldErrors, timezone: &str) -> String {
    let timezone = checked_text(errors, "timezone", timezone, 1, TIMEZONE_LENGTH_MAX);
    let allowed = |character: char| character.is_ascii_alphanumeric() || "/_+-".contains(character);
    if !timezone.chars().all(allowed) {
        errors.add(
            "timezone",
            "must be an IANA time zone name such as Europe/Berlin",
        );
    }
    timezone
}

/// Validates the sections of a layout; the result is meaningful only when
/// no error was added.
pub(crate) fn validate_sections(
    sections: &[SectionInput],
    errors: &mut FieldErrors,
) -> VenueLayout {
    if sections.is_empty() {
        errors.add("sections", "a venue needs at least one section");
    } else if sections.len() > SECTIONS_MAX {
        errors.add(
            "sections",
            format!("a venue has at most {SECTIONS_MAX} sections"),
        );
    }
    // Counted before any seat is built: a few bytes of `"seats": 1000`
    // repeated must not make us allocate millions of seats.
    let declared_seats = declared_seat_count(sections);
    let build_seats = declared_seats <= SEATS_PER_VENUE_MAX;
    if !build_seats {
        errors.add(
            "sections",
            format!(
                "a venue has at most {SEATS_PER_VENUE_MAX} seats; this one has {declared_seats}"
            ),
        );
    }
    let mut seen_ids = HashSet::new();
    let mut validated = Vec::with_capacity(sections.len().min(SECTIONS_MAX));
    for (index, section) in sections.iter().enumerate() {
        let path = format!("sections[{index}]");
        if is_valid_label(&section.id) && !seen_ids.insert(section.id.as_str()) {
            errors.add(
                format!("{path}.id"),
                format!("duplicate section id `{}`", section.id),
            );
        }
        if let Some(section) = validate_section(&path, section, build_seats, errors) {
            validated.push(section);
        }
    }
    VenueLayout {
        sections: validated,
    }
}

/// Seats the input asks for, with each row's count capped at the per-row
/// limit (a row past it is an error of its own).
fn declared_seat_count(sections: &[SectionInput]) -> usize {
    sections
        .iter()
        .filter(|section| section.kind == KIND_SEATED)
        .flat_map(|section| section.rows.iter().flatten())
        .map(|row| match &row.seats {
            SeatsInput::Count(count) => usize::try_from(*count).unwrap_or(0).min(SEATS_PER_ROW_MAX),
            SeatsInput::List(seats) => seats.len(),
        })
        .fold(0, usize::saturating_add)
}

fn validate_section(
    path: &str,
    input: &SectionInput,
    build_seats: bool,
    errors: &mut FieldErrors,
) -> Option<Section> {
    if !is_valid_label(&input.id) {
        errors.add(format!("{path}.id"), label_message());
    }
    if !is_valid_category(&input.category) {
        errors.add(format!("{path}.category"), category_message());
    }
    let name = match &input.name {
        Some(name) => checked_text(
            errors,
            &format!("{path}.name"),
            name,
            1,
            SECTION_NAME_LENGTH_MAX,
        ),
        None => input.id.clone(),
    };
    let kind = match input.kind.as_str() {
        KIND_SEATED => validate_seated(path, input, build_seats, errors)?,
        KIND_STANDING => validate_standing(path, input, errors)?,
        _ => {
            errors.add(format!("{path}.kind"), "must be \"seated\" or \"standing\"");
            return None;
        }
    };
    Some(Section {
        id: input.id.clone(),
        name,
        category: input.category.clone(),
        kind,
    })
}

fn validate_standing(
    path: &str,
    input: &SectionInput,
    errors: &mut FieldErrors,
) -> Option<SectionKind> {
    if input.rows.is_some() {
        errors.add(format!("{path}.rows"), "only seated sections have rows");
    }
    let Some(capacity) = input.capacity else {
        errors.add(
            format!("{path}.capacity"),
            "a standing section needs a capacity",
        );
        return None;
    };
    match u32::try_from(capacity) {
        Ok(capacity) if (1..=STANDING_CAPACITY_MAX).contains(&capacity) => {
            Some(SectionKind::Standing { capacity })
        }
        _ => {
            errors.add(
                format!("{path}.capacity"),
                format!("must be between 1 and {STANDING_CAPACITY_MAX}"),
            );
            None
        }
    }
}

fn validate_seated(
    path: &str,
    input: &SectionInput,
    build_seats: bool,
    errors: &mut FieldErrors,
) -> Option<SectionKind> {
    if input.capacity.is_some() {
        errors.add(
            format!("{path}.capacity"),
            "only standing sections have a capacity",
        );
    }
    let Some(rows) = &input.rows else {
        errors.add(format!("{path}.rows"), "a seated section needs rows");
        return None;
    };
    if rows.is_empty() || rows.len() > ROWS_PER_SECTION_MAX {
        errors.add(
            format!("{path}.rows"),
            format!("a seated section needs 1 to {ROWS_PER_SECTION_MAX} rows"),
        );
    }
    let mut seen_labels = HashSet::new();
    let mut validated = Vec::with_capacity(rows.len().min(ROWS_PER_SECTION_MAX));
    for (index, row) in rows.iter().enumerate() {
        let row_path = format!("{path}.rows[{index}]");
        if is_valid_label(&row.label) && !seen_labels.insert(row.label.as_str()) {
            errors.add(
                format!("{row_path}.label"),
                format!("duplicate row label `{}` in this section", row.label),
            );
        }
        let context = RowContext {
            path: &row_path,
            section_id: &input.id,
            section_category: &input.category,
            build_seats,
        };
        if let Some(row) = validate_row(&context, row, errors) {
            validated.push(row);
        }
    }
    Some(SectionKind::Seated { rows: validated })
}

/// What a row's seats inherit from their section.
struct RowContext<'a> {
    path: &'a str,
    section_id: &'a str,
    section_category: &'a str,
    build_seats: bool,
}

fn validate_row(
    context: &RowContext<'_>,
    input: &RowInput,
    errors: &mut FieldErrors,
) -> Option<Row> {
    let path = context.path;
    if !is_valid_label(&input.label) {
        errors.add(format!("{path}.label"), label_message());
    }
    let seats_field = format!("{path}.seats");
    let seat_count = match &input.seats {
        SeatsInput::Count(count) => usize::try_from(*count).unwrap_or(0),
        SeatsInput::List(seats) => seats.len(),
    };
    if seat_count == 0 || seat_count > SEATS_PER_ROW_MAX {
        errors.add(
            seats_field,
            format!("a row needs 1 to {SEATS_PER_ROW_MAX} seats"),
        );
        return None;
    }
    let seats = match &input.seats {
        SeatsInput::Count(_) => counted_seats(context, &input.label, seat_count),
        SeatsInput::List(seats) => listed_seats(context, &input.label, seats, errors),
    };
    Some(Row {
        label: input.label.clone(),
        seats,
    })
}

/// Seats numbered 1..=count, in the section's category.
fn counted_seats(context: &RowContext<'_>, row_label: &str, count: usize) -> Vec<Seat> {
    if !context.build_seats {
        return Vec::new();
    }
    (1..=count)
        .filter_map(|number| {
            let number = number.to_string();
            // Fails only when the section or row label is invalid, which
            // is already reported.
            let id = SeatId::new(context.section_id, row_label, &number).ok()?;
            Some(Seat {
                id,
                number,
                x: None,
                y: None,
                category: context.section_category.to_owned(),
                accessible: false,
            })
        })
        .collect()
}

fn listed_seats(
    context: &RowContext<'_>,
    row_label: &str,
    inputs: &[SeatInput],
    errors: &mut FieldErrors,
) -> Vec<Seat> {
    let mut seen_numbers = HashSet::new();
    let mut seats = Vec::with_capacity(if context.build_seats { inputs.len() } else { 0 });
    for (index, input) in inputs.iter().enumerate() {
        let path = format!("{}.seats[{index}]", context.path);
        let number = input.number.to_label();
        if !is_valid_label(&number) {
            errors.add(format!("{path}.number"), label_message());
        } else if !seen_numbers.insert(number.clone()) {
            errors.add(
                format!("{path}.number"),
                format!("duplicate seat number `{number}` in this row"),
            );
        }
        check_coordinate(errors, &path, "x", input.x);
        check_coordinate(errors, &path, "y", input.y);
        let category = match &input.category {
            Some(category) if !is_valid_category(category) => {
                errors.add(format!("{path}.category"), category_message());
                continue;
            }
            Some(category) => category.clone(),
            None => context.section_category.to_owned(),
        };
        if !context.build_seats {
            continue;
        }
        let Ok(id) = SeatId::new(context.section_id, row_label, &number) else {
            continue;
        };
        seats.push(Seat {
            id,
            number,
            x: input.x,
            y: input.y,
            category,
            accessible: input.accessible.unwrap_or(false),
        });
    }
    seats
}

fn check_coordinate(errors: &mut FieldErrors, path: &str, axis: &str, value: Option<f64>) {
    if let Some(value) = value {
        if !value.is_finite() || value.abs() > SEAT_COORDINATE_ABSOLUTE_MAX {
            errors.add(
                format!("{path}.{axis}"),
                format!("must be a number between -{SEAT_COORDINATE_ABSOLUTE_MAX} and {SEAT_COORDINATE_ABSOLUTE_MAX}"),
            );
        }
    }
}

fn label_message() -> String {
    format!("must be 1 to {LABEL_LENGTH_MAX} letters or digits (A-Z, a-z, 0-9)")
}

fn category_message() -> String {
    format!("must be 1 to {CATEGORY_LENGTH_MAX} characters of A-Z, a-z, 0-9, _ and -")
}
