//! Times and money in words, the same on pages, in e-mails, text messages
//! and ticket PDFs: `Sat 1 Mar 2031, 19:30 UTC` and `€150.00`.

use chrono::{DateTime, Utc};

/// The one way a time reads in words (always UTC: a buyer's own time zone
/// is not known, and the venue's is on the page where it matters).
const TIME_IN_WORDS: &str = "%a %-d %b %Y, %H:%M UTC";
/// Minor units per major unit: every currency the service sells in has
/// two decimals.
const MINOR_UNITS: u64 = 100;

/// `time` in words, in UTC.
pub fn display_time(time: DateTime<Utc>) -> String {
    time.format(TIME_IN_WORDS).to_string()
}

/// An RFC 3339 time (as the views carry them) in words; text that is not
/// one is shown as it is rather than lost.
pub fn display_time_rfc3339(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|time| display_time(time.with_timezone(&Utc)))
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// `amount` minor units of `currency` (an ISO 4217 code): `€1.50`, `£2.00`,
/// `$3.25` for the currencies with a well-known symbol, `CHF 20.00` for the
/// others.
pub fn display_money(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let units = amount.unsigned_abs();
    let number = format!("{}.{:02}", units / MINOR_UNITS, units % MINOR_UNITS);
    match currency {
        "EUR" => format!("{sign}€{number}"),
        "GBP" => format!("{sign}£{number}"),
        "USD" => format!("{sign}${number}"),
        other => format!("{sign}{other} {number}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn money_has_a_symbol_for_eur_gbp_usd_and_the_code_otherwise() {
        assert_eq!(display_money(100, "EUR"), "€1.00");
        assert_eq!(display_money(15_000, "EUR"), "€150.00");
        assert_eq!(display_money(1_205, "GBP"), "£12.05");
        assert_eq!(display_money(7, "USD"), "$0.07");
        assert_eq!(display_money(2_000, "CHF"), "CHF 20.00");
        assert_eq!(display_money(0, "EUR"), "€0.00");
        assert_eq!(display_money(-250, "EUR"), "-€2.50");
        assert_eq!(display_money(i64::MIN, "JPY"), "-JPY 92233720368547758.08");
    }

    #[test]
    fn times_read_in_words_in_utc() {
        let time = Utc.with_ymd_and_hms(2031, 3, 1, 19, 30, 59).unwrap();
        assert_eq!(display_time(time), "Sat 1 Mar 2031, 19:30 UTC");
        assert_eq!(
            display_time_rfc3339("2031-03-01T20:30:00+01:00"),
            "Sat 1 Mar 2031, 19:30 UTC"
        );
        assert_eq!(
            display_time_rfc3339("2030-12-24T09:05:00.000Z"),
            "Tue 24 Dec 2030, 09:05 UTC"
        );
        assert_eq!(display_time_rfc3339("not a time"), "not a time");
    }
}
