//! Signed ticket codes that door staff can verify offline.
//!
//! A code is `bx1.` + base64url(compact JSON claims) + `.` +
//! base64url(Ed25519 signature over `bx1.` + the claims part). The scanner
//! needs only the public key; nobody can forge or alter a code without the
//! signing key. The version prefix lets a later format coexist.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey, SIGNATURE_LENGTH};
use serde::{Deserialize, Serialize};

use crate::ids::{BookingId, ShowId, TicketId};
use crate::seat::SeatId;

/// The longest code we look at. Real codes are about 350 characters; the
/// bound keeps a scanner from decoding megabytes of junk, and keeps codes
/// small enough for a QR code.
pub const TICKET_CODE_LENGTH_MAX: usize = 1024;

/// The version and format of a code, and the start of the signed bytes.
const CODE_PREFIX: &str = "bx1.";

/// What a ticket code says. `seat_id` is null for a standing place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketClaims {
    pub ticket_id: TicketId,
    pub booking_id: BookingId,
    pub show_id: ShowId,
    pub seat_id: Option<SeatId>,
    pub section: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketCodeError {
    #[error("the ticket code is malformed")]
    Malformed,
    #[error("the ticket code's signature does not match")]
    BadSignature,
    #[error("the public key is not a valid Ed25519 key")]
    BadKey,
}

/// Signs ticket codes. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct TicketSigner {
    key: SigningKey,
}

impl std::fmt::Debug for TicketSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TicketSigner")
            .field(
                "public_key",
                &URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes()),
            )
            .finish_non_exhaustive()
    }
}

impl TicketSigner {
    /// The key from its 32-byte secret seed (the caller draws or loads it).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        TicketSigner {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The secret seed, to store it; handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn verifier(&self) -> TicketVerifier {
        TicketVerifier {
            key: self.key.verifying_key(),
        }
    }

    pub fn sign(&self, claims: &TicketClaims) -> String {
        // Serialising a struct of strings cannot fail; were it ever to, the
        // empty payload would fail verification rather than panic here.
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let mut code = format!("{CODE_PREFIX}{}", URL_SAFE_NO_PAD.encode(json));
        let signature = self.key.sign(code.as_bytes());
        code.push('.');
        code.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        code
    }
}

/// Verifies ticket codes with the public key alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketVerifier {
    key: VerifyingKey,
}

impl TicketVerifier {
    /// Rejects bytes that are not a point of the curve, and weak keys
    /// (small-order points), for which signatures prove nothing.
    pub fn from_public_key(bytes: [u8; 32]) -> Result<Self, TicketCodeError> {
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| TicketCodeError::BadKey)?;
        if key.is_weak() {
            return Err(TicketCodeError::BadKey);
        }
        Ok(TicketVerifier { key })
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The claims of a genuine code. The signature is checked before the
    /// claims are parsed, so forged input never reaches the JSON parser.
    pub fn verify(&self, code: &str) -> Result<TicketClaims, TicketCodeError> {
        if code.len() > TICKET_CODE_LENGTH_MAX || !code.starts_with(CODE_PREFIX) {
            return Err(TicketCodeError::Malformed);
        }
        let (signed, signature) = code.rsplit_once('.').ok_or(TicketCodeError::Malformed)?;
        let payload = signed
            .strip_prefix(CODE_PREFIX)
            .filter(|payload| !payload.contains('.'))
            .ok_or(TicketCodeError::Malformed)?;
        let signature = decode_signature(signature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TicketCodeError::Malformed)?;
        // Strict verification also rejects malleated signatures, so each
        // ticket has exactly one valid code.
        self.key
            .verify_strict(signed.as_bytes(), &signature)
            .map_err(|_| TicketCodeError::BadSignature)?;
        serde_json::from_slice(&json).map_err(|_| TicketCodeError::Malformed)
    }
}

fn decode_signature(text: &str) -> Result<Signature, TicketCodeError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| TicketCodeError::Malformed)?;
    let bytes: [u8; SIGNATURE_LENGTH] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| TicketCodeError::Malformed)?;
    Ok(Signature::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(seat: Option<&str>) -> TicketClaims {
        TicketClaims {
            ticket_id: TicketId::generate(1_767_225_600_000, 1),
            booking_id: BookingId::generate(1_767_225_600_000, 2),
            show_id: ShowId::generate(1_767_225_600_000, 3),
            seat_id: seat.map(|seat| SeatId::parse(seat).unwrap()),
            section: "A".to_owned(),
        }
    }

    fn signer() -> TicketSigner {
        TicketSigner::from_seed([7; 32])
    }

    #[test]
    fn sign_then_verify() {
        let signer = signer();
        for claims in [claims(Some("A-3-12")), claims(None)] {
            let code = signer.sign(&claims);
            assert!(code.starts_with("bx1."));
            assert!(code.len() <= TICKET_CODE_LENGTH_MAX);
            assert_eq!(signer.verifier().verify(&code), Ok(claims));
        }
    }

    #[test]
    fn verifies_with_the_public_key_alone() {
        let signer = signer();
        let code = signer.sign(&claims(Some("A-1-1")));
        let verifier = TicketVerifier::from_public_key(signer.verifier().public_key()).unwrap();
        assert!(verifier.verify(&code).is_ok());
        assert_eq!(
            TicketSigner::from_seed(signer.seed()).sign(&claims(Some("A-1-1"))),
            code
        );
    }

    #[test]
    fn tampered_codes_are_rejected() {
        let signer = signer();
        let verifier = signer.verifier();
        let code = signer.sign(&claims(Some("A-1-1")));
        let (payload, signature) = code.rsplit_once('.').unwrap();
        // Another seat's claims with the first code's signature.
        let other = signer.sign(&claims(Some("A-1-2")));
        let (other_payload, _) = other.rsplit_once('.').unwrap();
        assert_eq!(
            verifier.verify(&format!("{other_payload}.{signature}")),
            Err(TicketCodeError::BadSignature)
        );
        // One flipped character in the signature.
        let mut flipped = signature.to_owned().into_bytes();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            verifier.verify(&format!("{payload}.{flipped}")),
            Err(TicketCodeError::BadSignature)
        );
    }

    #[test]
    fn a_different_key_is_rejected() {
        let code = signer().sign(&claims(None));
        let stranger = TicketSigner::from_seed([8; 32]).verifier();
        assert_eq!(stranger.verify(&code), Err(TicketCodeError::BadSignature));
    }

    #[test]
    fn malformed_codes_are_rejected() {
        let signer = signer();
        let verifier = signer.verifier();
        let code = signer.sign(&claims(None));
        let (payload, signature) = code.rsplit_once('.').unwrap();
        let cases = [
            String::new(),
            "bx1.".to_owned(),
            code.replacen("bx1.", "bx2.", 1),
            code.replacen("bx1.", "", 1),
            format!("{payload}.{signature}="),
            format!("{payload}.{}", &signature[..signature.len() - 2]),
            format!("{payload}!.{signature}"),
            format!("{payload}.x.{signature}"),
            format!("{code}.{signature}"),
            "bx1.e30.e30".to_owned(),
        ];
        for case in cases {
            assert_eq!(
                verifier.verify(&case),
                Err(TicketCodeError::Malformed),
                "{case}"
            );
        }
    }

    #[test]
    fn a_validly_signed_code_with_bad_claims_is_malformed() {
        let signer = signer();
        let signed = format!("bx1.{}", URL_SAFE_NO_PAD.encode(b"{\"ticket_id\":1}"));
        let signature = URL_SAFE_NO_PAD.encode(signer.key.sign(signed.as_bytes()).to_bytes());
        assert_eq!(
            signer.verifier().verify(&format!("{signed}.{signature}")),
            Err(TicketCodeError::Malformed)
        );
    }

    #[test]
    fn length_at_the_limit_and_one_past_it() {
        let verifier = signer().verifier();
        let at_limit = format!("bx1.{}", "A".repeat(TICKET_CODE_LENGTH_MAX - 4));
        let past = format!("{at_limit}A");
        // Both are junk; the point is that the longer one is refused before
        // any decoding, and neither panics.
        assert_eq!(verifier.verify(&at_limit), Err(TicketCodeError::Malformed));
        assert_eq!(verifier.verify(&past), Err(TicketCodeError::Malformed));
        let mut long_section = claims(None);
        long_section.section = "S".repeat(16);
        let code = signer().sign(&long_section);
        assert!(code.len() < TICKET_CODE_LENGTH_MAX, "{}", code.len());
    }

    #[test]
    fn bad_public_keys_are_rejected() {
        // The identity point (a weak key) and a y-coordinate off the curve.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            TicketVerifier::from_public_key(identity),
            Err(TicketCodeError::BadKey)
        );
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert_eq!(
            TicketVerifier::from_public_key(off_curve),
            Err(TicketCodeError::BadKey)
        );
    }

    #[test]
    fn debug_does_not_show_the_seed() {
        let text = format!("{:?}", TicketSigner::from_seed([0xab; 32]));
        assert!(
            !text.contains(&URL_SAFE_NO_PAD.encode([0xab; 32])),
            "{text}"
        );
        assert!(!text.contains("171"), "{text}");
    }
}
