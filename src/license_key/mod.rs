//! The license-key codec, compatible with the gitlab-license gem.
//!
//! Layers, outside in: optional armor → MIME base64 → envelope JSON `{data, key, iv}` → AES key
//! recovered with the issuer's RSA public key → AES-128-CBC → payload JSON → the gem's payload
//! rules. Pure: no files, no clock (callers pass `today`), no global state, and no panics for any
//! input — every failure is a [`DecodeError`] naming the stage that failed.

mod armor;
pub mod dates;
mod envelope;
pub mod keys;
mod mime_base64;
pub(crate) mod payload;

pub use envelope::{Secrets, AES_KEY_LEN, IV_LEN};
pub use payload::{AddOnProduct, License, Restrictions, ValidationError, DEFAULT_PLAN};
pub use rsa::{RsaPrivateKey, RsaPublicKey};

use serde_json::{Map, Value};

/// Real keys are a few kilobytes; anything this large is refused before any work is done.
pub const MAX_LICENSE_BYTES: usize = 1024 * 1024;

/// Why a license string was refused, by stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the license is larger than {MAX_LICENSE_BYTES} bytes")]
    TooLarge,
    #[error("the license is empty, or its armor holds nothing")]
    Armor,
    #[error("the license holds no base64 data")]
    Base64,
    #[error("the license envelope is not a JSON object")]
    EnvelopeJson,
    #[error("the license envelope has no `{0}` string")]
    MissingField(&'static str),
    #[error("the license's AES key could not be recovered with any configured public key")]
    KeyUnwrap,
    #[error("the license data could not be decrypted")]
    Cipher,
    #[error("the decrypted license is not a JSON object")]
    PayloadJson,
    #[error("license version {0} is not supported (only version 1 is)")]
    UnsupportedVersion(String),
    #[error("the license is not valid: {0}")]
    Validation(ValidationError),
}

impl DecodeError {
    /// A short machine-friendly name of the stage, for logs and metrics.
    pub fn stage(&self) -> &'static str {
        match self {
            Self::TooLarge => "size",
            Self::Armor => "armor",
            Self::Base64 => "base64",
            Self::EnvelopeJson => "envelope_json",
            Self::MissingField(_) => "missing_field",
            Self::KeyUnwrap => "key_unwrap",
            Self::Cipher => "cipher",
            Self::PayloadJson => "payload_json",
            Self::UnsupportedVersion(_) => "version",
            Self::Validation(_) => "validation",
        }
    }
}

/// Decodes a license string with the first of `public_keys` that opens it (key rotation: the
/// gem tries its main key, then its fallback keys).
pub fn decode(
    text: impl AsRef<[u8]>,
    public_keys: &[RsaPublicKey],
) -> Result<License, DecodeError> {
    let payload = decrypt(text.as_ref(), public_keys)?;
    payload::parse(&payload)
}

/// Decodes the layers down to the payload bytes.
fn decrypt(text: &[u8], public_keys: &[RsaPublicKey]) -> Result<Vec<u8>, DecodeError> {
    if text.len() > MAX_LICENSE_BYTES {
        return Err(DecodeError::TooLarge);
    }
    // Armor lines are ASCII; undecodable bytes cannot be part of them and the base64 decoder
    // skips them anyway, so a lossy view is exact for every byte that matters.
    let text = String::from_utf8_lossy(text);
    let body = armor::strip(&text).ok_or(DecodeError::Armor)?;
    let body = body.strip_suffix('\n').unwrap_or(body);
    let body = body.strip_suffix('\r').unwrap_or(body);
    let envelope_json = mime_base64::decode_lenient(body.as_bytes());
    if envelope_json.is_empty() {
        return Err(DecodeError::Base64);
    }
    let envelope = envelope::Envelope::parse(&envelope_json)?;
    let mut deepest = DecodeError::KeyUnwrap;
    for public_key in public_keys {
        match envelope.open(public_key) {
            Ok(payload) => return Ok(payload),
            // A key that unwrapped but whose cipher then failed says more than one that did not.
            Err(error @ DecodeError::Cipher) => deepest = error,
            Err(_) => {}
        }
    }
    Err(deepest)
}

/// Encrypts an exact payload text as a license string with fresh randomness.
pub fn encode(
    payload_json: &str,
    private_key: &RsaPrivateKey,
    armor_product: Option<&str>,
) -> Result<String, EncodeError> {
    encode_with(payload_json, private_key, armor_product, &Secrets::random())
}

/// [`encode`] with the AES key and IV chosen by the caller (tests pin them to reproduce the
/// reference implementation byte for byte; production always goes through [`encode`]).
pub fn encode_with(
    payload_json: &str,
    private_key: &RsaPrivateKey,
    armor_product: Option<&str>,
    secrets: &Secrets,
) -> Result<String, EncodeError> {
    // Like the gem's `export`, never emit a license its own decoder would refuse.
    payload::parse(payload_json.as_bytes()).map_err(EncodeError::InvalidPayload)?;
    let envelope = envelope::seal(payload_json.as_bytes(), private_key, secrets)
        .map_err(|error| EncodeError::Rsa(error.to_string()))?;
    let body = mime_base64::encode(envelope.as_bytes());
    Ok(match armor_product {
        Some(product) => armor::wrap(&body, product),
        None => body,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("refusing to issue an invalid license: {0}")]
    InvalidPayload(DecodeError),
    #[error("RSA signing failed: {0}")]
    Rsa(String),
}

/// The contents of a license to issue, serialised in the gem's attribute order.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLicense {
    pub licensee: Map<String, Value>,
    pub starts_at: chrono::NaiveDate,
    pub expires_at: Option<chrono::NaiveDate>,
    /// Written as given, in order; empty means no `restrictions` key (as the gem does).
    pub restrictions: Map<String, Value>,
    /// A cloud license: GitLab provisions add-on purchases (GitLab Duo) only from these.
    pub cloud_licensing_enabled: bool,
    /// An offline cloud license (needs `cloud_licensing_enabled` too): no sync with GitLab's
    /// portal, which a self-hosted issuer cannot offer anyway.
    pub offline_cloud_licensing_enabled: bool,
}

impl NewLicense {
    /// The payload JSON the gem's `to_json` would write for these attributes.
    pub fn to_payload_json(&self) -> String {
        let mut payload = Map::new();
        payload.insert("version".into(), Value::from(1));
        payload.insert("licensee".into(), Value::Object(self.licensee.clone()));
        payload.insert("issued_at".into(), Value::from(date_text(self.starts_at)));
        if let Some(expires_at) = self.expires_at {
            payload.insert("expires_at".into(), Value::from(date_text(expires_at)));
        }
        payload.insert(
            "cloud_licensing_enabled".into(),
            Value::Bool(self.cloud_licensing_enabled),
        );
        payload.insert(
            "offline_cloud_licensing_enabled".into(),
            Value::Bool(self.offline_cloud_licensing_enabled),
        );
        for flag in [
            "auto_renew_enabled",
            "seat_reconciliation_enabled",
            "operational_metrics_enabled",
            "generated_from_customers_dot",
            "generated_from_cancellation",
        ] {
            payload.insert(flag.into(), Value::Bool(false));
        }
        if !self.restrictions.is_empty() {
            payload.insert(
                "restrictions".into(),
                Value::Object(self.restrictions.clone()),
            );
        }
        Value::Object(payload).to_string()
    }
}

/// Dates in payloads are always `YYYY-MM-DD`.
pub fn date_text(date: chrono::NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}
