//! Labels and seat IDs.
//!
//! A seat ID is `{section}-{row}-{number}` (`A-3-12`). Labels are ASCII
//! letters and digits only, so the `-` separator is unambiguous, IDs are safe
//! in URLs and file names, and every ID is unique within its venue.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest section label, row label or seat number. Long enough for
/// any real signage ("BALCONY2", "ORCHESTRA"), short enough to print on a
/// ticket and to keep seat IDs small in the seat map of a large venue.
pub const LABEL_LENGTH_MAX: usize = 16;

/// The longest seat ID: three labels and two separators.
pub const SEAT_ID_LENGTH_MAX: usize = 3 * LABEL_LENGTH_MAX + 2;

/// Is `text` a valid label: 1 to [`LABEL_LENGTH_MAX`] ASCII letters or digits?
pub fn is_valid_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= LABEL_LENGTH_MAX
        && text.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

/// Why a string is not a seat ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatIdError {
    #[error("a seat ID is at most {SEAT_ID_LENGTH_MAX} characters")]
    TooLong,
    #[error("a seat ID has the form section-row-number, such as A-3-12")]
    WrongShape,
    #[error("the {part} of a seat ID must be 1 to {LABEL_LENGTH_MAX} letters or digits")]
    InvalidPart { part: &'static str },
}

/// A seat of a venue, `{section}-{row}-{number}`. Ordered by its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeatId(String);

impl SeatId {
    pub fn new(section: &str, row: &str, number: &str) -> Result<SeatId, SeatIdError> {
        for (part, label) in [("section", section), ("row", row), ("number", number)] {
            if !is_valid_label(label) {
                return Err(SeatIdError::InvalidPart { part });
            }
        }
        Ok(SeatId(format!("{section}-{row}-{number}")))
    }

    /// Checks untrusted text. Seat IDs are case-sensitive, like the labels
    /// in the layout they come from.
    pub fn parse(text: &str) -> Result<SeatId, SeatIdError> {
        if text.len() > SEAT_ID_LENGTH_MAX {
            return Err(SeatIdError::TooLong);
        }
        let mut parts = text.split('-');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(section), Some(row), Some(number), None) => SeatId::new(section, row, number),
            _ => Err(SeatIdError::WrongShape),
        }
    }

    /// Wraps a value read back from our own database.
    pub fn from_trusted(text: String) -> SeatId {
        SeatId(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn section(&self) -> &str {
        self.part(0)
    }

    pub fn row(&self) -> &str {
        self.part(1)
    }

    pub fn number(&self) -> &str {
        self.part(2)
    }

    /// The n-th `-`-separated part, or "" when a trusted value lacks it.
    fn part(&self, index: usize) -> &str {
        self.0.split('-').nth(index).unwrap_or("")
    }
}

impl fmt::Display for SeatId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl AsRef<str> for SeatId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SeatId {
    type Err = SeatIdError;

    fn from_str(text: &str) -> Result<Self, SeatIdError> {
        SeatId::parse(text)
    }
}

impl Serialize for SeatId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SeatId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        SeatId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_at_the_limit_and_one_past_it() {
        assert!(is_valid_label(&"a".repeat(16)));
        assert!(!is_valid_label(&"a".repeat(17)));
        assert!(is_valid_label("1"));
        assert!(!is_valid_label(""));
        for bad in ["A-1", "A 1", "A_1", "é", "A.1", "\u{0}"] {
            assert!(!is_valid_label(bad), "{bad}");
        }
    }

    #[test]
    fn new_and_parts() {
        let seat = SeatId::new("A", "3", "12").unwrap();
        assert_eq!(seat.as_str(), "A-3-12");
        assert_eq!(
            (seat.section(), seat.row(), seat.number()),
            ("A", "3", "12")
        );
        assert_eq!(
            SeatId::new("A", "", "1"),
            Err(SeatIdError::InvalidPart { part: "row" })
        );
        assert_eq!(
            SeatId::new("A", "1", &"9".repeat(17)),
            Err(SeatIdError::InvalidPart { part: "number" })
        );
    }

    #[test]
    fn parse_at_the_limit_and_one_past_it() {
        let longest = format!("{0}-{0}-{0}", "x".repeat(16));
        assert_eq!(longest.len(), SEAT_ID_LENGTH_MAX);
        assert_eq!(SeatId::parse(&longest).unwrap().as_str(), longest);
        let one_label_too_long = format!("{}-{}-{}", "x".repeat(17), "x".repeat(15), "x");
        assert_eq!(
            SeatId::parse(&one_label_too_long),
            Err(SeatIdError::InvalidPart { part: "section" })
        );
        let too_long = format!("{longest}1");
        assert_eq!(SeatId::parse(&too_long), Err(SeatIdError::TooLong));
    }

    #[test]
    fn parse_rejects_wrong_shapes() {
        for bad in ["", "A", "A-1", "A-1-2-3", "A--1", "-1-2", "A-1-"] {
            assert!(SeatId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(SeatId::parse("A-1-2-3"), Err(SeatIdError::WrongShape));
    }

    #[test]
    fn trusted_values_without_parts_do_not_panic() {
        let odd = SeatId::from_trusted("odd".to_owned());
        assert_eq!((odd.section(), odd.row(), odd.number()), ("odd", "", ""));
    }

    #[test]
    fn serde_is_a_validated_string() {
        let seat = SeatId::parse("FLOOR2-10-7").unwrap();
        let json = serde_json::to_string(&seat).unwrap();
        assert_eq!(json, "\"FLOOR2-10-7\"");
        assert_eq!(serde_json::from_str::<SeatId>(&json).unwrap(), seat);
        assert!(serde_json::from_str::<SeatId>("\"A-1\"").is_err());
    }

    #[test]
    fn ordered_by_text() {
        let mut seats = ["A-2-1", "A-10-1", "B-1-1"].map(|text| SeatId::parse(text).unwrap());
        seats.sort();
        let texts: Vec<&str> = seats.iter().map(SeatId::as_str).collect();
        assert_eq!(texts, ["A-10-1", "A-2-1", "B-1-1"]);
    }
}
