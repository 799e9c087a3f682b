//! Base64 as Ruby's `Base64.encode64` / `Base64.decode64` (RFC 2045 "MIME" flavour) handle it.
//!
//! The reference implementation wraps its output at 60 characters and decodes leniently, so the
//! same rules apply here: the `base64` crate does the arithmetic, this module only decides which
//! characters take part.

use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

const LINE_WIDTH: usize = 60;

const PADDED: GeneralPurpose = base64::engine::general_purpose::STANDARD;
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// `Base64.encode64`: padded standard base64, a `\n` after every 60 characters and at the end.
pub fn encode(bytes: &[u8]) -> String {
    let flat = PADDED.encode(bytes);
    let mut wrapped = String::with_capacity(flat.len() + flat.len() / LINE_WIDTH + 1);
    for line in flat.as_bytes().chunks(LINE_WIDTH) {
        // The chunks of an ASCII string are ASCII.
        wrapped.extend(line.iter().map(|&byte| byte as char));
        wrapped.push('\n');
    }
    wrapped
}

/// `Base64.decode64`: characters outside the alphabet are skipped, `=` in the third or fourth
/// place of a quantum ends the data, and a dangling single character is dropped. Never fails.
pub fn decode_lenient(text: &[u8]) -> Vec<u8> {
    let mut symbols = Vec::with_capacity(text.len());
    for &byte in text {
        if byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/' {
            symbols.push(byte);
        } else if byte == b'=' && symbols.len() % 4 >= 2 {
            break;
        }
    }
    if symbols.len() % 4 == 1 {
        symbols.pop();
    }
    // Only alphabet characters remain and the length is never 1 mod 4, so this cannot fail;
    // an empty result is still the safe answer should it ever do so.
    LENIENT.decode(&symbols).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_wraps_at_sixty_columns() {
        let encoded = encode(&[0u8; 49]);
        let lines: Vec<&str> = encoded.split_terminator('\n').collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), 60);
        assert!(encoded.ends_with("==\n"));
        assert_eq!(encode(b""), "");
    }

    #[test]
    fn decode_ignores_line_breaks_and_noise() {
        assert_eq!(decode_lenient(b"aGVs\nbG8g d29y\r\nbGQ=\n"), b"hello world");
        assert_eq!(decode_lenient(b"aGVsbG8*gd29ybGQ"), b"hello world");
    }

    #[test]
    fn decode_stops_at_padding_and_drops_a_dangling_symbol() {
        assert_eq!(decode_lenient(b"aGk=aGVsbG8="), b"hi");
        assert_eq!(decode_lenient(b"aGVsbG8gd"), b"hello ");
        assert_eq!(decode_lenient(b"foo"), vec![0x7e, 0x8a]);
        assert!(decode_lenient(b"").is_empty());
    }
}
