//! Prefixed, time-ordered identifiers: `usr_01j…`, `shw_01j…`.
//!
//! Each kind of ID is its own type so that a `ShowId` can never be passed
//! where a `HoldId` is expected. The prefix makes an ID self-describing in
//! logs and support tickets; the ULID after it sorts by creation time, which
//! gives stable pagination cursors and index locality for free.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ulid::{self, UlidError, ULID_LENGTH};

/// Why a string is not an ID of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("expected an ID starting with `{expected}_`")]
    WrongPrefix { expected: &'static str },
    #[error("expected {expected} characters after `{prefix}_`, found {actual}")]
    WrongLength {
        prefix: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("`{character}` is not a Crockford base32 character (0-9 and a-z without i, l, o, u)")]
    InvalidCharacter { character: char },
    #[error("the ID is out of range (its first character after the prefix must be 0-7)")]
    OutOfRange,
}

/// Checks `text` as `{prefix}_{ulid}` and returns it in lower case.
fn parse_prefixed(prefix: &'static str, text: &str) -> Result<String, IdError> {
    let rest = text
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .ok_or(IdError::WrongPrefix { expected: prefix })?;
    let ulid = ulid::normalise(rest).map_err(|error| match error {
        UlidError::WrongLength { actual } => IdError::WrongLength {
            prefix,
            expected: ULID_LENGTH,
            actual,
        },
        UlidError::InvalidCharacter { character } => IdError::InvalidCharacter { character },
        UlidError::OutOfRange => IdError::OutOfRange,
    })?;
    Ok(format!("{prefix}_{ulid}"))
}

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The text before the `_` of every ID of this kind.
            pub const PREFIX: &'static str = $prefix;

            /// A new ID from the creation time and 80 bits of the caller's
            /// entropy (the bits above 80 are ignored).
            pub fn generate(unix_ms: u64, entropy: u128) -> Self {
                Self(format!("{}_{}", Self::PREFIX, ulid::encode(unix_ms, entropy)))
            }

            /// Checks untrusted text (a URL segment, a JSON field).
            pub fn parse(text: &str) -> Result<Self, IdError> {
                parse_prefixed(Self::PREFIX, text).map(Self)
            }

            /// Wraps a value read back from our own database, which was
            /// validated when it was written.
            pub fn from_trusted(text: String) -> Self {
                Self(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::parse(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(
    /// A registered user (customer, staff or admin).
    UserId,
    "usr"
);
define_id!(
    /// A venue with its seat layout.
    VenueId,
    "ven"
);
define_id!(
    /// An event (a concert, a play) that has one or more shows.
    EventId,
    "evt"
);
define_id!(
    /// One performance of an event at a venue and time.
    ShowId,
    "shw"
);
define_id!(
    /// A temporary hold on places of a show.
    HoldId,
    "hld"
);
define_id!(
    /// A paid, confirmed booking.
    BookingId,
    "bkg"
);
define_id!(
    /// One ticket of a booking: one seat or one standing place.
    TicketId,
    "tkt"
);
define_id!(
    /// A payment attempt with the gateway.
    PaymentId,
    "pay"
);
define_id!(
    /// One record of the audit trail.
    AuditId,
    "aud"
);
define_id!(
    /// A place in a show's virtual waiting room.
    QueueTicketId,
    "qtk"
);
define_id!(
    /// Something that happened that other systems hear about (a booking
    /// confirmed, cancelled…); consumers deduplicate on it.
    DomainEventId,
    "dom"
);
define_id!(
    /// One delivery of a domain event to one channel (e-mail, SMS, NATS…),
    /// a row of the transactional outbox.
    OutboxMessageId,
    "obx"
);
define_id!(
    /// An outgoing-webhook subscription: a URL that hears about domain events.
    WebhookSubscriptionId,
    "whk"
);
define_id!(
    /// One domain event to deliver to one webhook subscription.
    WebhookDeliveryId,
    "whd"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_then_parse_round_trips() {
        let id = ShowId::generate(1_767_225_600_000, 0x0123_4567_89ab_cdef_0123);
        assert!(id.as_str().starts_with("shw_"));
        assert_eq!(id.as_str().len(), 4 + 26);
        assert_eq!(ShowId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(id.to_string(), id.as_str());
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let first = HoldId::generate(1_000, u128::MAX);
        let second = HoldId::generate(1_001, 0);
        assert!(first < second);
    }

    #[test]
    fn parse_normalises_upper_case() {
        let id = UserId::generate(42, 42);
        let shouted = format!("usr_{}", id.as_str()[4..].to_uppercase());
        assert_eq!(UserId::parse(&shouted), Ok(id));
    }

    #[test]
    fn parse_rejects_wrong_prefix_and_separator() {
        let show = ShowId::generate(1, 1);
        assert_eq!(
            HoldId::parse(show.as_str()),
            Err(IdError::WrongPrefix { expected: "hld" })
        );
        let dash = show.as_str().replacen('_', "-", 1);
        assert!(matches!(
            ShowId::parse(&dash),
            Err(IdError::WrongPrefix { .. })
        ));
        assert!(matches!(
            ShowId::parse(&show.as_str().to_uppercase()),
            Err(IdError::WrongPrefix { .. })
        ));
        assert!(matches!(
            ShowId::parse(""),
            Err(IdError::WrongPrefix { .. })
        ));
    }

    #[test]
    fn parse_checks_length_at_the_limit_and_one_past_it() {
        let id = EventId::generate(7, 7);
        let too_long = format!("{}0", id.as_str());
        let too_short = &id.as_str()[..id.as_str().len() - 1];
        assert!(EventId::parse(id.as_str()).is_ok());
        assert_eq!(
            EventId::parse(&too_long),
            Err(IdError::WrongLength {
                prefix: "evt",
                expected: 26,
                actual: 27
            })
        );
        assert!(matches!(
            EventId::parse(too_short),
            Err(IdError::WrongLength { actual: 25, .. })
        ));
    }

    #[test]
    fn parse_rejects_non_crockford_characters() {
        let id = BookingId::generate(7, 7);
        for bad in ['i', 'l', 'o', 'u', '-', 'é'] {
            let text = format!("{}{bad}", &id.as_str()[..id.as_str().len() - 1]);
            assert_eq!(
                BookingId::parse(&text),
                Err(IdError::InvalidCharacter { character: bad }),
                "{text}"
            );
        }
    }

    #[test]
    fn serde_is_a_plain_string_and_validates() {
        let id = TicketId::generate(5, 5);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<TicketId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<TicketId>("\"tkt_nope\"").is_err());
        assert!(serde_json::from_str::<TicketId>("12").is_err());
    }

    #[test]
    fn every_kind_has_its_prefix() {
        let prefixes = [
            UserId::PREFIX,
            VenueId::PREFIX,
            EventId::PREFIX,
            ShowId::PREFIX,
            HoldId::PREFIX,
            BookingId::PREFIX,
            TicketId::PREFIX,
            PaymentId::PREFIX,
            AuditId::PREFIX,
            QueueTicketId::PREFIX,
            DomainEventId::PREFIX,
            OutboxMessageId::PREFIX,
            WebhookSubscriptionId::PREFIX,
            WebhookDeliveryId::PREFIX,
        ];
        assert_eq!(
            prefixes,
            [
                "usr", "ven", "evt", "shw", "hld", "bkg", "tkt", "pay", "aud", "qtk", "dom", "obx",
                "whk", "whd"
            ]
        );
        assert!(AuditId::parse(AuditId::generate(1, 2).as_str()).is_ok());
        assert!(PaymentId::parse(PaymentId::generate(1, 2).as_str()).is_ok());
        assert!(QueueTicketId::parse(QueueTicketId::generate(1, 2).as_str()).is_ok());
        assert!(VenueId::parse(VenueId::generate(1, 2).as_str()).is_ok());
    }
}
