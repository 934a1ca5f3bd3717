//! The proof of work asked on joining a queue (hashcash-style): find a
//! decimal `nonce` such that SHA-256(`challenge` ":" `nonce`) starts with
//! `difficulty` zero bits. A client needs about 2^difficulty hashes; the
//! server checks one. It costs a bot farm CPU for every queue place without a
//! third-party CAPTCHA.

use sha2::{Digest, Sha256};

/// The hardest difficulty a show may ask (2^32 hashes is minutes of a
/// browser's time: beyond that it stops being a speed bump).
pub const DIFFICULTY_MAX: u8 = 32;
/// Nonces are decimal numbers; anything longer than a u64 is not one.
const NONCE_LENGTH_MAX: usize = 20;

fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in hash {
        if *byte == 0 {
            bits += 8;
        } else {
            bits += byte.leading_zeros();
            break;
        }
    }
    bits
}

fn digest(challenge: &str, nonce: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(challenge.as_bytes());
    hasher.update(b":");
    hasher.update(nonce.as_bytes());
    hasher.finalize().into()
}

/// Whether `nonce` solves `challenge` at `difficulty`.
pub fn solves(challenge: &str, nonce: &str, difficulty: u8) -> bool {
    if nonce.is_empty()
        || nonce.len() > NONCE_LENGTH_MAX
        || !nonce.bytes().all(|b| b.is_ascii_digit())
    {
        return false;
    }
    leading_zero_bits(&digest(challenge, nonce)) >= u32::from(difficulty)
}

/// Finds a solution (what a client does; used by tests and the load
/// generator's reference). Bounded: gives up after `attempts_max` hashes.
pub fn solve(challenge: &str, difficulty: u8, attempts_max: u64) -> Option<String> {
    (0..attempts_max)
        .map(|n| n.to_string())
        .find(|nonce| leading_zero_bits(&digest(challenge, nonce)) >= u32::from(difficulty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_leading_zero_bits() {
        assert_eq!(leading_zero_bits(&[0xff]), 0);
        assert_eq!(leading_zero_bits(&[0x00, 0x80]), 8);
        assert_eq!(leading_zero_bits(&[0x00, 0x00, 0x01]), 23);
        assert_eq!(leading_zero_bits(&[0x0f, 0x00]), 4);
    }

    #[test]
    fn a_solution_verifies_and_a_wrong_one_does_not() {
        let challenge = "some.challenge.text";
        let nonce = solve(challenge, 12, 1 << 22).expect("12 bits are found quickly");
        assert!(solves(challenge, &nonce, 12));
        assert!(
            !solves("another.challenge", &nonce, 12),
            "bound to its challenge"
        );
        // Some nonce fails 12 bits: the check is not vacuous.
        assert!((0..64u32).any(|n| !solves(challenge, &n.to_string(), 12)));
        assert!(!solves(challenge, "", 0));
        assert!(!solves(challenge, "12a", 0));
        assert!(!solves(challenge, &"9".repeat(21), 0));
        assert!(
            solves(challenge, "7", 0),
            "difficulty 0 accepts any well-formed nonce"
        );
    }
}
