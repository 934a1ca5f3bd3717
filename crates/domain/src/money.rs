//! Money as integer minor units (cents) and an ISO 4217 currency code.
//!
//! Never floats: every price, total and refund is exact. Amounts are never
//! negative and never above [`MONEY_AMOUNT_MAX`], so sums of a few thousand
//! of them cannot overflow `i64` and every value fits in a JSON number that
//! any client parses exactly (below 2^53).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest amount in minor units: ten billion of a two-decimal currency.
/// Far above any real ticket price or show revenue, and low enough that a
/// JavaScript client (exact only below 2^53) reads every total exactly.
pub const MONEY_AMOUNT_MAX: i64 = 1_000_000_000_000;

/// Letters in an ISO 4217 currency code.
pub const CURRENCY_CODE_LENGTH: usize = 3;

/// Why money could not be built or computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency must be a 3-letter ISO 4217 code in upper case, such as EUR")]
    InvalidCurrency,
    #[error("amount must be between 0 and {MONEY_AMOUNT_MAX} minor units")]
    AmountOutOfRange { amount: i64 },
    #[error("cannot combine {left} with {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("the result would exceed {MONEY_AMOUNT_MAX} minor units")]
    Overflow,
}

/// An ISO 4217 code: three upper-case ASCII letters (not checked against
/// the list of codes in use, which changes over time).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; CURRENCY_CODE_LENGTH]);

impl Currency {
    pub fn parse(text: &str) -> Result<Currency, MoneyError> {
        let bytes: [u8; CURRENCY_CODE_LENGTH] = text
            .as_bytes()
            .try_into()
            .map_err(|_| MoneyError::InvalidCurrency)?;
        if bytes.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency(bytes))
        } else {
            Err(MoneyError::InvalidCurrency)
        }
    }

    pub fn as_str(&self) -> &str {
        // The bytes are ASCII letters by construction, so this never falls
        // back; the fallback only avoids a panic path.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Currency({})", self.as_str())
    }
}

impl std::str::FromStr for Currency {
    type Err = MoneyError;

    fn from_str(text: &str) -> Result<Self, MoneyError> {
        Currency::parse(text)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Currency::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An amount of money: `{"amount": 15000, "currency": "EUR"}` is 150.00 EUR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "MoneyInput")]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

/// The wire shape, checked by `Money::new` on the way in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyInput {
    amount: i64,
    currency: Currency,
}

impl TryFrom<MoneyInput> for Money {
    type Error = MoneyError;

    fn try_from(input: MoneyInput) -> Result<Money, MoneyError> {
        Money::new(input.amount, input.currency)
    }
}

impl Money {
    /// Money with an amount in `0..=MONEY_AMOUNT_MAX`.
    pub fn new(amount: i64, currency: Currency) -> Result<Money, MoneyError> {
        if (0..=MONEY_AMOUNT_MAX).contains(&amount) {
            Ok(Money { amount, currency })
        } else {
            Err(MoneyError::AmountOutOfRange { amount })
        }
    }

    pub fn zero(currency: Currency) -> Money {
        Money {
            amount: 0,
            currency,
        }
    }

    /// The sum, in the same currency and within `MONEY_AMOUNT_MAX`.
    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            });
        }
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Money::within_limit(amount, self.currency)
    }

    /// The price of `quantity` items at this price.
    pub fn checked_mul(&self, quantity: u32) -> Result<Money, MoneyError> {
        let amount = self
            .amount
            .checked_mul(i64::from(quantity))
            .ok_or(MoneyError::Overflow)?;
        Money::within_limit(amount, self.currency)
    }

    fn within_limit(amount: i64, currency: Currency) -> Result<Money, MoneyError> {
        if amount > MONEY_AMOUNT_MAX {
            return Err(MoneyError::Overflow);
        }
        Money::new(amount, currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn currency_is_three_upper_case_letters() {
        assert_eq!(eur().as_str(), "EUR");
        for bad in ["", "EU", "EURO", "eur", "Eur", "E1R", "€UR", "EU "] {
            assert_eq!(
                Currency::parse(bad),
                Err(MoneyError::InvalidCurrency),
                "{bad}"
            );
        }
    }

    #[test]
    fn new_accepts_the_limit_and_rejects_one_past_it() {
        assert!(Money::new(MONEY_AMOUNT_MAX, eur()).is_ok());
        assert!(Money::new(0, eur()).is_ok());
        assert_eq!(
            Money::new(MONEY_AMOUNT_MAX + 1, eur()),
            Err(MoneyError::AmountOutOfRange {
                amount: MONEY_AMOUNT_MAX + 1
            })
        );
        assert!(Money::new(-1, eur()).is_err());
    }

    #[test]
    fn add_and_multiply() {
        let price = Money::new(15_000, eur()).unwrap();
        assert_eq!(price.checked_mul(3).unwrap().amount, 45_000);
        assert_eq!(price.checked_add(&price).unwrap().amount, 30_000);
        assert_eq!(Money::zero(eur()).checked_add(&price).unwrap(), price);
        assert_eq!(price.checked_mul(0).unwrap(), Money::zero(eur()));
    }

    #[test]
    fn overflow_past_the_limit_is_an_error() {
        let top = Money::new(MONEY_AMOUNT_MAX, eur()).unwrap();
        let cent = Money::new(1, eur()).unwrap();
        assert_eq!(top.checked_add(&Money::zero(eur())), Ok(top.clone()));
        assert_eq!(top.checked_add(&cent), Err(MoneyError::Overflow));
        assert_eq!(top.checked_mul(1), Ok(top.clone()));
        assert_eq!(top.checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(top.checked_mul(u32::MAX), Err(MoneyError::Overflow));
        let huge = Money {
            amount: i64::MAX,
            currency: eur(),
        };
        assert_eq!(huge.checked_add(&huge), Err(MoneyError::Overflow));
        assert_eq!(huge.checked_mul(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn currency_mismatch_is_an_error() {
        let euros = Money::new(100, eur()).unwrap();
        let dollars = Money::new(100, Currency::parse("USD").unwrap()).unwrap();
        assert!(matches!(
            euros.checked_add(&dollars),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn serde_shape_and_validation() {
        let money = Money::new(15_000, eur()).unwrap();
        let json = serde_json::to_string(&money).unwrap();
        assert_eq!(json, r#"{"amount":15000,"currency":"EUR"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
        for bad in [
            r#"{"amount":-1,"currency":"EUR"}"#,
            r#"{"amount":1000000000001,"currency":"EUR"}"#,
            r#"{"amount":1.5,"currency":"EUR"}"#,
            r#"{"amount":1,"currency":"eur"}"#,
            r#"{"amount":1,"currency":"EUR","extra":1}"#,
            r#"{"amount":1}"#,
        ] {
            assert!(serde_json::from_str::<Money>(bad).is_err(), "{bad}");
        }
        let top = format!(r#"{{"amount":{MONEY_AMOUNT_MAX},"currency":"EUR"}}"#);
        assert!(serde_json::from_str::<Money>(&top).is_ok());
    }
}
