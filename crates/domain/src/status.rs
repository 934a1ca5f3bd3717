//! Status enums shared by every layer, with one text form each for the
//! database (`as_str`/`parse`) and one for JSON (serde).

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$variant_meta:meta])* $variant:ident => $text:literal),+ $(,)? }
    ) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        $(#[$meta])*
        pub enum $name {
            $($(#[$variant_meta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text form stored in the database.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value whose `as_str` is `text`.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Where a hold is in its life. `Paying` is internal (a payment is in
    /// flight) but is shown as it is rather than disguised.
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    HoldStatus {
        Active => "ACTIVE",
        Paying => "PAYING",
        Confirmed => "CONFIRMED",
        Released => "RELEASED",
        Expired => "EXPIRED",
    }
);

impl HoldStatus {
    /// Does a hold in this status still own its places (before `expires_at`)?
    pub fn is_live(&self) -> bool {
        matches!(self, HoldStatus::Active | HoldStatus::Paying)
    }
}

text_enum!(
    /// A place on a seat map. An expired hold's places are `Available`.
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    SeatStatus {
        Available => "AVAILABLE",
        Held => "HELD",
        Booked => "BOOKED",
    }
);

text_enum!(
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    BookingStatus {
        Confirmed => "CONFIRMED",
        Cancelled => "CANCELLED",
    }
);

text_enum!(
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    ShowStatus {
        OnSale => "ON_SALE",
        Paused => "PAUSED",
        Cancelled => "CANCELLED",
    }
);

text_enum!(
    /// What a user may do: buy, scan tickets at the door, or organize.
    #[serde(rename_all = "lowercase")]
    Role {
        Customer => "customer",
        Staff => "staff",
        Admin => "admin",
    }
);

text_enum!(
    /// Why places went back on sale. The short text form is what the
    /// database and audit records store.
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    ReleaseReason {
        UserReleased => "released",
        PaymentDeclined => "declined",
        Expired => "expired",
        BookingCancelled => "cancelled",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms() {
        assert_eq!(HoldStatus::Paying.as_str(), "PAYING");
        assert_eq!(ShowStatus::OnSale.as_str(), "ON_SALE");
        assert_eq!(Role::Admin.to_string(), "admin");
        assert_eq!(ReleaseReason::PaymentDeclined.as_str(), "declined");
        assert_eq!(ShowStatus::parse("ON_SALE"), Some(ShowStatus::OnSale));
        assert_eq!(ShowStatus::parse("on_sale"), None);
        assert_eq!(
            BookingStatus::parse("CANCELLED"),
            Some(BookingStatus::Cancelled)
        );
    }

    #[test]
    fn every_value_parses_back() {
        for value in HoldStatus::ALL {
            assert_eq!(HoldStatus::parse(value.as_str()), Some(*value));
        }
        for value in BookingStatus::ALL {
            assert_eq!(BookingStatus::parse(value.as_str()), Some(*value));
        }
        for value in ShowStatus::ALL {
            assert_eq!(ShowStatus::parse(value.as_str()), Some(*value));
        }
        for value in Role::ALL {
            assert_eq!(Role::parse(value.as_str()), Some(*value));
        }
        for value in ReleaseReason::ALL {
            assert_eq!(ReleaseReason::parse(value.as_str()), Some(*value));
        }
    }

    #[test]
    fn serde_forms() {
        let json = |value: &dyn erased::ToJson| value.to_json();
        assert_eq!(json(&HoldStatus::Paying), "\"PAYING\"");
        assert_eq!(json(&ShowStatus::OnSale), "\"ON_SALE\"");
        assert_eq!(json(&BookingStatus::Cancelled), "\"CANCELLED\"");
        assert_eq!(json(&Role::Staff), "\"staff\"");
        assert_eq!(
            json(&ReleaseReason::PaymentDeclined),
            "\"PAYMENT_DECLINED\""
        );
        assert_eq!(
            serde_json::from_str::<ShowStatus>("\"PAUSED\"").unwrap(),
            ShowStatus::Paused
        );
        assert!(serde_json::from_str::<Role>("\"Admin\"").is_err());
        for value in HoldStatus::ALL {
            let text = serde_json::to_string(value).unwrap();
            assert_eq!(text, format!("\"{}\"", value.as_str()));
        }
    }

    mod erased {
        pub trait ToJson {
            fn to_json(&self) -> String;
        }

        impl<T: serde::Serialize> ToJson for T {
            fn to_json(&self) -> String {
                serde_json::to_string(self).unwrap()
            }
        }
    }
}
