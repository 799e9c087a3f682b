//! The encrypted envelope: `{"data", "key", "iv"}`, each value MIME base64.
//!
//! `data` is the payload under AES-128-CBC with PKCS#7 padding; `key` is the AES key run through
//! the issuer's RSA *private* key with PKCS#1 v1.5 type-1 padding (OpenSSL's `private_encrypt`),
//! which anybody holding the public key can undo (`public_decrypt`). The only hand-written piece
//! is that type-1 unpadding; the RSA arithmetic and the cipher come from RustCrypto.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use serde_json::Value;

use super::{mime_base64, DecodeError};

pub const AES_KEY_LEN: usize = 16;
pub const IV_LEN: usize = 16;
/// PKCS#1 v1.5 asks for at least eight bytes of padding.
const MIN_TYPE1_PADDING: usize = 8;

type Aes128CbcEncryptor = cbc::Encryptor<aes::Aes128>;
type Aes128CbcDecryptor = cbc::Decryptor<aes::Aes128>;

/// The envelope's fields after base64 decoding.
pub struct Envelope {
    pub data: Vec<u8>,
    pub wrapped_key: Vec<u8>,
    pub iv: Vec<u8>,
}

impl Envelope {
    /// Parses the envelope JSON (already out of its outer base64).
    pub fn parse(json: &[u8]) -> Result<Self, DecodeError> {
        let value: Value = serde_json::from_slice(json).map_err(|_| DecodeError::EnvelopeJson)?;
        let Value::Object(fields) = value else {
            return Err(DecodeError::EnvelopeJson);
        };
        let field = |name: &'static str| match fields.get(name) {
            Some(Value::String(text)) => Ok(mime_base64::decode_lenient(text.as_bytes())),
            _ => Err(DecodeError::MissingField(name)),
        };
        Ok(Self {
            data: field("data")?,
            wrapped_key: field("key")?,
            iv: field("iv")?,
        })
    }

    /// Recovers the AES key with one public key and decrypts the payload.
    pub fn open(&self, public_key: &RsaPublicKey) -> Result<Vec<u8>, DecodeError> {
        let aes_key = unwrap_key(public_key, &self.wrapped_key)?;
        if self.iv.len() != IV_LEN {
            return Err(DecodeError::Cipher);
        }
        Aes128CbcDecryptor::new(aes_key.as_slice().into(), self.iv.as_slice().into())
            .decrypt_padded_vec_mut::<Pkcs7>(&self.data)
            .map_err(|_| DecodeError::Cipher)
    }
}

/// `public_decrypt` with PKCS#1 type-1 padding: `m = s^e mod n`, then strip `00 01 FF… 00`.
fn unwrap_key(public_key: &RsaPublicKey, wrapped: &[u8]) -> Result<[u8; AES_KEY_LEN], DecodeError> {
    let modulus_len = public_key.size();
    if wrapped.is_empty() || wrapped.len() > modulus_len {
        return Err(DecodeError::KeyUnwrap);
    }
    let signature = BigUint::from_bytes_be(wrapped);
    if &signature >= public_key.n() {
        return Err(DecodeError::KeyUnwrap);
    }
    let message = rsa::hazmat::rsa_encrypt(public_key, &signature)
        .map_err(|_| DecodeError::KeyUnwrap)?
        .to_bytes_be();
    if message.len() >= modulus_len {
        // The encoded block starts with a zero byte, so it is always shorter than the modulus.
        return Err(DecodeError::KeyUnwrap);
    }
    // `to_bytes_be` drops the leading zero byte: what is left must be `01 FF… 00 key`.
    let Some((&0x01, padded)) = message.split_first() else {
        return Err(DecodeError::KeyUnwrap);
    };
    let padding_len = padded.iter().take_while(|&&byte| byte == 0xFF).count();
    if message.len() != modulus_len - 1 || padding_len < MIN_TYPE1_PADDING {
        return Err(DecodeError::KeyUnwrap);
    }
    let Some((&0x00, key)) = padded[padding_len..].split_first() else {
        return Err(DecodeError::KeyUnwrap);
    };
    key.try_into().map_err(|_| DecodeError::KeyUnwrap)
}

/// The parts of one license that the encoder may not choose at random in tests.
pub struct Secrets {
    pub aes_key: [u8; AES_KEY_LEN],
    pub iv: [u8; IV_LEN],
}

impl Secrets {
    /// A fresh key and IV from the operating system's generator, as every real license gets.
    pub fn random() -> Self {
        use rand_core::RngCore as _;
        let mut secrets = Self {
            aes_key: [0; AES_KEY_LEN],
            iv: [0; IV_LEN],
        };
        rand_core::OsRng.fill_bytes(&mut secrets.aes_key);
        rand_core::OsRng.fill_bytes(&mut secrets.iv);
        secrets
    }
}

/// Encrypts `payload` and returns the envelope JSON text (before the outer base64).
pub fn seal(
    payload: &[u8],
    private_key: &RsaPrivateKey,
    secrets: &Secrets,
) -> Result<String, rsa::Error> {
    let data = Aes128CbcEncryptor::new(&secrets.aes_key.into(), &secrets.iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(payload);
    let wrapped_key = private_key.sign(Pkcs1v15Sign::new_unprefixed(), &secrets.aes_key)?;
    // Field order matters for byte compatibility: the gem writes `data`, `key`, `iv`
    // (serde_json keeps insertion order with its `preserve_order` feature).
    let envelope = serde_json::json!({
        "data": mime_base64::encode(&data),
        "key": mime_base64::encode(&wrapped_key),
        "iv": mime_base64::encode(&secrets.iv),
    });
    Ok(envelope.to_string())
}
