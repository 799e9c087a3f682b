//! Reading and writing the issuer's RSA keys as PEM text.
//!
//! Verification keys may come several to a file (key rotation): each `PUBLIC KEY` (SPKI) or
//! `RSA PUBLIC KEY` (PKCS#1) block is one key, tried in file order. Signing keys are one
//! `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1) block, which is what Ruby's OpenSSL writes.

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};

/// The smallest modulus that can carry a PKCS#1 type-1 padded AES-128 key with room to spare.
pub const MIN_KEY_BITS: usize = 1024;
/// What `keys generate` makes unless told otherwise.
pub const DEFAULT_KEY_BITS: usize = 2048;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("no PEM key block was found")]
    NoPemBlock,
    #[error("a PEM block is not terminated by its END line")]
    UnterminatedPemBlock,
    #[error("the {0} block is not an RSA key")]
    NotRsa(String),
    #[error("the {0} block could not be read: {1}")]
    Malformed(String, String),
    #[error("a {0} block was given where a public key belongs; give the issuer's public key")]
    PrivateWherePublicExpected(String),
    #[error("a {0} block was given where the private signing key belongs")]
    PublicWherePrivateExpected(String),
    #[error("encrypted private keys are not supported; decrypt it first (openssl pkey -in KEY)")]
    EncryptedPrivateKey,
    #[error("the RSA key has {0} bits; at least {MIN_KEY_BITS} are needed")]
    TooSmall(usize),
    #[error("more than one private key was given; the signing key file must hold exactly one")]
    SeveralPrivateKeys,
    #[error("could not generate an RSA key: {0}")]
    Generation(String),
}

/// One `-----BEGIN LABEL-----` … `-----END LABEL-----` block, kept as text.
struct PemBlock<'a> {
    label: &'a str,
    text: &'a str,
}

fn pem_blocks(text: &str) -> Result<Vec<PemBlock<'_>>, KeyError> {
    let mut blocks = Vec::new();
    let mut rest = text;
    let mut consumed = 0;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let label_start = begin + "-----BEGIN ".len();
        let label_len = rest[label_start..]
            .find("-----")
            .ok_or(KeyError::UnterminatedPemBlock)?;
        let label = &rest[label_start..label_start + label_len];
        let end_marker = format!("-----END {label}-----");
        let end = rest[label_start..]
            .find(&end_marker)
            .ok_or(KeyError::UnterminatedPemBlock)?
            + label_start
            + end_marker.len();
        blocks.push(PemBlock {
            label,
            text: &text[consumed + begin..consumed + end],
        });
        consumed += end;
        rest = &rest[end..];
    }
    if blocks.is_empty() {
        return Err(KeyError::NoPemBlock);
    }
    Ok(blocks)
}

fn check_size(bits: usize) -> Result<(), KeyError> {
    if bits < MIN_KEY_BITS {
        return Err(KeyError::TooSmall(bits));
    }
    Ok(())
}

/// Every public key in `pem`, in order.
pub fn parse_public_keys(pem: &str) -> Result<Vec<RsaPublicKey>, KeyError> {
    let mut keys = Vec::new();
    for block in pem_blocks(pem)? {
        let key = match block.label {
            "PUBLIC KEY" => RsaPublicKey::from_public_key_pem(block.text)
                .map_err(|error| spki_error(block.label, &error.to_string()))?,
            "RSA PUBLIC KEY" => RsaPublicKey::from_pkcs1_pem(block.text)
                .map_err(|error| KeyError::Malformed(block.label.into(), error.to_string()))?,
            label if label.ends_with("PRIVATE KEY") => {
                return Err(KeyError::PrivateWherePublicExpected(label.into()))
            }
            label => return Err(KeyError::NotRsa(label.into())),
        };
        check_size(key.size() * 8)?;
        keys.push(key);
    }
    Ok(keys)
}

/// The one private key in `pem`.
pub fn parse_private_key(pem: &str) -> Result<RsaPrivateKey, KeyError> {
    let blocks = pem_blocks(pem)?;
    let private_blocks: Vec<&PemBlock> = blocks
        .iter()
        .filter(|block| block.label.ends_with("PRIVATE KEY"))
        .collect();
    let block = match private_blocks.as_slice() {
        [] => return Err(KeyError::PublicWherePrivateExpected(blocks[0].label.into())),
        [one] => *one,
        _ => return Err(KeyError::SeveralPrivateKeys),
    };
    let key = match block.label {
        "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_pem(block.text)
            .map_err(|error| spki_error(block.label, &error.to_string()))?,
        "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_pem(block.text)
            .map_err(|error| KeyError::Malformed(block.label.into(), error.to_string()))?,
        "ENCRYPTED PRIVATE KEY" => return Err(KeyError::EncryptedPrivateKey),
        label => return Err(KeyError::NotRsa(label.into())),
    };
    check_size(key.size() * 8)?;
    Ok(key)
}

/// PKCS#8 and SPKI blocks name their algorithm; a well-formed block of another algorithm
/// (EC, Ed25519, …) deserves "not an RSA key" rather than a parser message.
fn spki_error(label: &str, message: &str) -> KeyError {
    if message.contains("OID") || message.contains("algorithm") {
        KeyError::NotRsa(label.into())
    } else {
        KeyError::Malformed(label.into(), message.into())
    }
}

/// A new key pair as (PKCS#8 private PEM, SPKI public PEM).
pub fn generate_pem_pair(bits: usize) -> Result<(String, String), KeyError> {
    check_size(bits)?;
    let private = RsaPrivateKey::new(&mut rand_core::OsRng, bits)
        .map_err(|error| KeyError::Generation(error.to_string()))?;
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|error| KeyError::Generation(error.to_string()))?;
    let public_pem = public_pem(&private.to_public_key())?;
    Ok((private_pem.to_string(), public_pem))
}

/// The SPKI (`BEGIN PUBLIC KEY`) PEM of a public key.
pub fn public_pem(key: &RsaPublicKey) -> Result<String, KeyError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|error| KeyError::Generation(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9
q9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==
-----END PUBLIC KEY-----
";

    #[test]
    fn rejects_text_without_pem() {
        assert_eq!(parse_public_keys("hello").err(), Some(KeyError::NoPemBlock));
    }

    #[test]
    fn rejects_an_elliptic_curve_key() {
        assert!(matches!(
            parse_public_keys(EC_PUBLIC),
            Err(KeyError::NotRsa(_))
        ));
    }

    #[test]
    fn rejects_an_unterminated_block() {
        assert_eq!(
            parse_public_keys("-----BEGIN PUBLIC KEY-----\nAAAA\n").err(),
            Some(KeyError::UnterminatedPemBlock)
        );
    }
}
