//! A calendar entry (RFC 5545) for a booked show, attached to the e-mail.

use chrono::{DateTime, Utc};

/// Shows rarely say how long they last; three hours is a calendar's guess.
const DEFAULT_DURATION: &str = "PT3H";

pub struct CalendarEntry<'a> {
    pub uid: &'a str,
    pub starts_at: DateTime<Utc>,
    pub summary: &'a str,
    pub location: &'a str,
    pub description: &'a str,
}

/// Escapes TEXT values (RFC 5545 §3.3.11).
fn text(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace("\r\n", "\\n")
        .replace(['\n', '\r'], "\\n")
}

fn stamp(time: DateTime<Utc>) -> String {
    time.format("%Y%m%dT%H%M%SZ").to_string()
}

pub fn calendar(entry: &CalendarEntry<'_>, now: DateTime<Utc>) -> String {
    [
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//boxoffice//tickets//EN".to_string(),
        "METHOD:PUBLISH".to_string(),
        "BEGIN:VEVENT".to_string(),
        format!("UID:{}", text(entry.uid)),
        format!("DTSTAMP:{}", stamp(now)),
        format!("DTSTART:{}", stamp(entry.starts_at)),
        format!("DURATION:{DEFAULT_DURATION}"),
        format!("SUMMARY:{}", text(entry.summary)),
        format!("LOCATION:{}", text(entry.location)),
        format!("DESCRIPTION:{}", text(entry.description)),
        "END:VEVENT".to_string(),
        "END:VCALENDAR".to_string(),
        String::new(),
    ]
    .join("\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_times_are_utc() {
        let starts_at = DateTime::parse_from_rfc3339("2026-12-01T20:00:00Z")
            .expect("a time")
            .with_timezone(&Utc);
        let ics = calendar(
            &CalendarEntry {
                uid: "bkg_1@boxoffice",
                starts_at,
                summary: "Rock, Paper; Scissors",
                location: "Hall\nBerlin",
                description: "2 tickets",
            },
            starts_at,
        );
        assert!(ics.contains("DTSTART:20261201T200000Z\r\n"), "{ics}");
        assert!(
            ics.contains("SUMMARY:Rock\\, Paper\\; Scissors\r\n"),
            "{ics}"
        );
        assert!(ics.contains("LOCATION:Hall\\nBerlin\r\n"), "{ics}");
    }
}
