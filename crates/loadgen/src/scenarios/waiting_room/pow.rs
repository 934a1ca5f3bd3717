//! The client side of the waiting room's proof of work: find a decimal
//! `nonce` such that SHA-256 of `challenge + ":" + nonce` starts with at
//! least `difficulty` zero bits (API.md, "Waiting room").

use sha2::{Digest, Sha256};

/// The server's largest difficulty.
pub const DIFFICULTY_MAX: u32 = 32;

/// Zero bits at the start of `digest`.
pub fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in digest {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

/// Whether `nonce` answers `challenge` at `difficulty`.
pub fn verify(challenge: &str, nonce: &str, difficulty: u32) -> bool {
    let mut hasher = Sha256::new();
    hasher.update(challenge.as_bytes());
    hasher.update(b":");
    hasher.update(nonce.as_bytes());
    leading_zero_bits(&hasher.finalize()) >= difficulty
}

/// The first nonce from 0 up that answers the challenge, or `None` after
/// `tries_max` nonces. A difficulty of d bits takes 2^d tries on average;
/// `tries_max` bounds the CPU one unlucky challenge can take.
pub fn solve(challenge: &str, difficulty: u32, tries_max: u64) -> Option<u64> {
    // The prefix is hashed once; each try clones its state and adds digits.
    let mut prefix = Sha256::new();
    prefix.update(challenge.as_bytes());
    prefix.update(b":");
    let mut digits = [0u8; 20];
    for nonce in 0..tries_max {
        let text = decimal(nonce, &mut digits);
        let mut hasher = prefix.clone();
        hasher.update(text);
        if leading_zero_bits(&hasher.finalize()) >= difficulty {
            return Some(nonce);
        }
    }
    None
}

/// How many tries `solve` gets for `difficulty`: 2^(d+6), so that failing
/// to find a nonce has probability about e^-64 (never), yet a broken
/// challenge cannot loop for ever.
pub fn tries_for(difficulty: u32) -> u64 {
    1u64 << (difficulty.min(DIFFICULTY_MAX) + 6)
}

/// `value` in decimal, written into `buffer` (20 digits hold any u64).
fn decimal(mut value: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buffer[start..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_leading_zero_bits() {
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0x0F, 0xFF]), 4);
        assert_eq!(leading_zero_bits(&[0x00, 0x01]), 15);
        assert_eq!(leading_zero_bits(&[0x00, 0x00]), 16);
    }

    #[test]
    fn decimal_writes_every_width() {
        let mut buffer = [0u8; 20];
        assert_eq!(decimal(0, &mut buffer), b"0");
        assert_eq!(decimal(1_234_509, &mut buffer), b"1234509");
        assert_eq!(
            decimal(u64::MAX, &mut buffer),
            u64::MAX.to_string().as_bytes()
        );
    }

    #[test]
    fn solutions_verify_and_are_the_first_ones() {
        for difficulty in [0, 1, 8, 12] {
            let challenge = format!("challenge-{difficulty}");
            let nonce = solve(&challenge, difficulty, tries_for(difficulty)).expect("solved");
            assert!(verify(&challenge, &nonce.to_string(), difficulty));
            // No smaller nonce works: `solve` does not skip any.
            for smaller in 0..nonce {
                assert!(!verify(&challenge, &smaller.to_string(), difficulty));
            }
        }
        // Difficulty 0 accepts the very first nonce.
        assert_eq!(solve("x", 0, 1), Some(0));
    }

    #[test]
    fn gives_up_after_its_tries() {
        // 64 zero bits cannot be found in 1,000 tries (probability 2^-54).
        assert_eq!(solve("x", 64, 1_000), None);
    }

    #[test]
    fn agrees_with_an_independent_implementation() {
        // The first nonces found by Python's hashlib for the same rule:
        // sha256(b"abc:181") = 0036…, sha256(b"shw_01:boxoffice:659") = 000c….
        assert_eq!(solve("abc", 8, tries_for(8)), Some(181));
        assert_eq!(solve("shw_01:boxoffice", 12, tries_for(12)), Some(659));
        assert!(!verify("abc", "180", 8));
    }
}
