//! Text encodings both APIs accept: base64 (Judge0's `base64_encoded=true`, Piston's
//! `encoding: "base64"`) and hex (Piston's `encoding: "hex"`).
//!
//! Decoding is lenient where the originals are: Judge0 decodes with Ruby's `Base64.decode64`,
//! which skips line breaks (`Base64.encode64` inserts one every 60 characters), so ASCII
//! whitespace is ignored and padding is optional. Encoding is strict RFC 4648 without line
//! breaks, which every decoder reads.

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

/// A base64 engine that accepts input with or without `=` padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Text that is not valid in the encoding it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not base64.
    #[error("is not valid base64")]
    Base64,
    /// Not hex (odd length, or a character outside `0-9a-fA-F`).
    #[error("is not valid hex")]
    Hex,
}

/// Decodes base64, ignoring ASCII whitespace (line breaks included).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, DecodeError> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    LENIENT.decode(compact).map_err(|_| DecodeError::Base64)
}

/// Encodes bytes as standard, padded base64 without line breaks.
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes hex (either case; ASCII whitespace ignored).
pub fn decode_hex(text: &str) -> Result<Vec<u8>, DecodeError> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| {
            (b as char)
                .to_digit(16)
                .map(|d| d as u8)
                .ok_or(DecodeError::Hex)
        })
        .collect::<Result<_, _>>()?;
    if !digits.len().is_multiple_of(2) {
        return Err(DecodeError::Hex);
    }
    Ok(digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_tolerates_ruby_line_breaks() {
        let bytes: Vec<u8> = (0..=255).collect();
        let text = encode_base64(&bytes);
        assert!(!text.contains('\n'));
        assert_eq!(decode_base64(&text).unwrap(), bytes);
        // Ruby's Base64.encode64 breaks lines every 60 characters.
        let broken: String = text
            .as_bytes()
            .chunks(60)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert_eq!(decode_base64(&broken).unwrap(), bytes);
        assert_eq!(decode_base64("aGk").unwrap(), b"hi");
        assert_eq!(decode_base64("a*b="), Err(DecodeError::Base64));
    }

    #[test]
    fn hex_decodes_both_cases_and_rejects_odd_or_bad_input() {
        assert_eq!(decode_hex("48656C6c6f").unwrap(), b"Hello");
        assert_eq!(decode_hex("abc"), Err(DecodeError::Hex));
        assert_eq!(decode_hex("zz"), Err(DecodeError::Hex));
    }
}
