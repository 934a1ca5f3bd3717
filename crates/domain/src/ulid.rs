//! ULID text encoding: 48 bits of Unix milliseconds followed by 80 bits of
//! entropy, written as 26 Crockford base32 characters. Because the time comes
//! first and the alphabet is in ASCII order, IDs sort by creation time.
//!
//! We write lower case (IDs appear in URLs, where lower case reads better)
//! and accept either case on input.

/// Characters in a ULID: 26 × 5 bits = 130 bits, enough for 128.
pub const ULID_LENGTH: usize = 26;

/// The Crockford base32 alphabet (no I, L, O, U), lower case.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// The largest time a ULID can carry (48 bits, about the year 10889).
const TIME_MS_MAX: u64 = (1 << 48) - 1;

/// The 80 low bits that carry entropy.
const ENTROPY_MASK: u128 = (1 << 80) - 1;

/// The first character carries only the top 3 bits of 128 (130 − 128 = 2
/// bits spare), so its value is at most 7.
const FIRST_DIGIT_MAX: u8 = 7;

/// Why a string is not a ULID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UlidError {
    WrongLength { actual: usize },
    InvalidCharacter { character: char },
    OutOfRange,
}

/// Encodes a time and entropy as 26 lower-case characters. A time past the
/// 48-bit range saturates rather than wrapping, so order is never inverted.
pub fn encode(unix_ms: u64, entropy: u128) -> String {
    let value = (u128::from(unix_ms.min(TIME_MS_MAX)) << 80) | (entropy & ENTROPY_MASK);
    (0..ULID_LENGTH)
        .rev()
        .map(|position| {
            let digit = (value >> (position * 5)) & 0x1f;
            // `digit` is below 32 by the mask, so the index is in range.
            char::from(ALPHABET[digit as usize])
        })
        .collect()
}

/// Checks a ULID in either case and returns it in lower case.
pub fn normalise(text: &str) -> Result<String, UlidError> {
    let actual = text.chars().count();
    if actual != ULID_LENGTH {
        return Err(UlidError::WrongLength { actual });
    }
    let mut normalised = String::with_capacity(ULID_LENGTH);
    for (position, character) in text.chars().enumerate() {
        let Some(value) = digit_value(character) else {
            return Err(UlidError::InvalidCharacter { character });
        };
        if position == 0 && value > FIRST_DIGIT_MAX {
            return Err(UlidError::OutOfRange);
        }
        normalised.push(character.to_ascii_lowercase());
    }
    Ok(normalised)
}

fn digit_value(character: char) -> Option<u8> {
    let lower = u8::try_from(character.to_ascii_lowercase()).ok()?;
    let position = ALPHABET.iter().position(|&letter| letter == lower)?;
    u8::try_from(position).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_zero_and_maximum() {
        assert_eq!(encode(0, 0), "0".repeat(26));
        assert_eq!(encode(u64::MAX, u128::MAX), format!("7{}", "z".repeat(25)));
    }

    #[test]
    fn time_comes_first_so_text_sorts_by_time() {
        let earlier = encode(1_000, u128::MAX);
        let later = encode(1_001, 0);
        assert!(earlier < later);
    }

    #[test]
    fn normalise_accepts_upper_case_and_rejects_the_rest() {
        let id = encode(1_700_000_000_000, 0xdead_beef);
        assert_eq!(normalise(&id.to_uppercase()), Ok(id.clone()));
        assert_eq!(
            normalise(&id[1..]),
            Err(UlidError::WrongLength { actual: 25 })
        );
        let with_u = format!("{}u", &id[..25]);
        assert_eq!(
            normalise(&with_u),
            Err(UlidError::InvalidCharacter { character: 'u' })
        );
        let too_big = format!("8{}", &id[1..]);
        assert_eq!(normalise(&too_big), Err(UlidError::OutOfRange));
    }
}
