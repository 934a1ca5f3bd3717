//! The validated venue and the questions other layers ask of a layout.
//!
//! Every value here passed `VenueInput::validate` (or the re-validation in
//! `Deserialize`), so labels are valid, IDs unique and counts in range.

use std::collections::BTreeSet;

use crate::seat::SeatId;

#[derive(Debug, Clone, PartialEq)]
pub struct Venue {
    pub name: String,
    pub city: String,
    pub address: String,
    pub timezone: String,
    pub layout: VenueLayout,
}

/// Sections in the organizer's order, which is also the best-available
/// preference order (the first section is the best).
#[derive(Debug, Clone, PartialEq)]
pub struct VenueLayout {
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub id: String,
    /// Display name; the ID when the organizer gave none.
    pub name: String,
    /// The price category of the section (a seat may override it).
    pub category: String,
    pub kind: SectionKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SectionKind {
    Seated { rows: Vec<Row> },
    Standing { capacity: u32 },
}

/// Seats in order across the row: neighbours in the list sit side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub label: String,
    pub seats: Vec<Seat>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Seat {
    pub id: SeatId,
    pub number: String,
    pub x: Option<f64>,
    pub y: Option<f64>,
    /// The effective category: the seat's own, else its section's.
    pub category: String,
    pub accessible: bool,
}

impl Section {
    /// The rows of a seated section; none for a standing one.
    pub fn rows(&self) -> &[Row] {
        match &self.kind {
            SectionKind::Seated { rows } => rows,
            SectionKind::Standing { .. } => &[],
        }
    }

    /// The capacity of a standing section.
    pub fn standing_capacity(&self) -> Option<u32> {
        match self.kind {
            SectionKind::Seated { .. } => None,
            SectionKind::Standing { capacity } => Some(capacity),
        }
    }
}

impl VenueLayout {
    pub fn seat_count(&self) -> usize {
        self.sections
            .iter()
            .flat_map(Section::rows)
            .map(|row| row.seats.len())
            .sum()
    }

    /// Standing places over all standing sections.
    pub fn standing_capacity(&self) -> u64 {
        self.standing_sections()
            .map(|(_, capacity)| u64::from(capacity))
            .sum()
    }

    /// Every category in use: each seat's effective category and each
    /// standing section's. Each needs a price when a show is created.
    pub fn categories(&self) -> BTreeSet<String> {
        let mut categories = BTreeSet::new();
        for section in &self.sections {
            match &section.kind {
                SectionKind::Standing { .. } => {
                    categories.insert(section.category.clone());
                }
                SectionKind::Seated { rows } => {
                    for seat in rows.iter().flat_map(|row| &row.seats) {
                        if !categories.contains(&seat.category) {
                            categories.insert(seat.category.clone());
                        }
                    }
                }
            }
        }
        categories
    }

    /// Every seat with its section and row, in layout order.
    pub fn seats(&self) -> impl Iterator<Item = (&Section, &Row, &Seat)> {
        self.sections.iter().flat_map(|section| {
            section
                .rows()
                .iter()
                .flat_map(move |row| row.seats.iter().map(move |seat| (section, row, seat)))
        })
    }

    /// Looks a seat up by the parts of its ID: sections, then rows, then
    /// seats, so at most a few thousand comparisons even in a large venue.
    pub fn find_seat(&self, id: &SeatId) -> Option<(&Section, &Row, &Seat)> {
        let section = self
            .sections
            .iter()
            .find(|section| section.id == id.section())?;
        let row = section.rows().iter().find(|row| row.label == id.row())?;
        let seat = row.seats.iter().find(|seat| seat.number == id.number())?;
        Some((section, row, seat))
    }

    /// Standing sections with their capacities, in layout order.
    pub fn standing_sections(&self) -> impl Iterator<Item = (&Section, u32)> {
        self.sections
            .iter()
            .filter_map(|section| Some((section, section.standing_capacity()?)))
    }

    pub fn find_standing(&self, section_id: &str) -> Option<(&Section, u32)> {
        self.standing_sections()
            .find(|(section, _)| section.id == section_id)
    }
}
