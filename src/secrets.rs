//! Secrets for other systems (a fleet instance's access token), sealed at rest with AES-256-GCM
//! under a key that never lives in the database: `SECRETS_KEY`, the file `SECRETS_KEY_FILE`,
//! or `DATA_DIR/keys/secrets.key`, generated (mode 0600) the first time a secret is sealed. A
//! stolen database dump or backup file holds only ciphertext.
//!
//! Sealed values read `v1:` + base64(nonce ‖ ciphertext ‖ tag); each is bound to its purpose
//! (associated data), so a ciphertext copied into another column does not open there.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::config::{Config, Secret};

/// The key file's name under `DATA_DIR/keys/`.
pub const KEY_FILE: &str = "secrets.key";
const VERSION_PREFIX: &str = "v1:";
const NONCE_BYTES: usize = 12;

/// Why a secret could not be sealed or opened. Never carries the secret or the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("the secrets key is not usable: {0}")]
    Key(String),
    #[error("the stored secret cannot be opened with this server's secrets key (SECRETS_KEY / SECRETS_KEY_FILE / DATA_DIR/keys/secrets.key): set the key it was stored with, or store the secret again")]
    WrongKey,
}

/// Where the key comes from, and the key once read.
pub struct Secrets {
    configured: Option<Secret>,
    file: PathBuf,
    /// The file was named by the operator: it is read, never generated.
    file_configured: bool,
    cipher: RwLock<Option<Aes256Gcm>>,
}

/// Reads a base64 key of 32 bytes.
fn parse_key(text: &str, source: &str) -> Result<Aes256Gcm, SecretsError> {
    let bytes = STANDARD.decode(text.trim()).map_err(|_| {
        SecretsError::Key(format!(
            "{source} is not base64 (make one with `openssl rand -base64 32`)"
        ))
    })?;
    Aes256Gcm::new_from_slice(&bytes).map_err(|_| {
        SecretsError::Key(format!(
            "{source} must hold 32 bytes, base64-encoded (it holds {})",
            bytes.len()
        ))
    })
}

impl Secrets {
    pub fn from_config(config: &Config) -> Self {
        Self {
            configured: config.secrets_key.clone(),
            file: config
                .secrets_key_file
                .clone()
                .unwrap_or_else(|| config.data_dir.join("keys").join(KEY_FILE)),
            file_configured: config.secrets_key_file.is_some(),
            cipher: RwLock::new(None),
        }
    }

    /// Checks a configured key (`SECRETS_KEY`, or a named `SECRETS_KEY_FILE`) at start, so a
    /// bad or missing one stops the server at once rather than failing the first sync.
    pub fn validate(&self) -> Result<(), SecretsError> {
        if self.configured.is_some() || self.file_configured {
            self.key(false)?;
        }
        Ok(())
    }

    fn cached(&self) -> Option<Aes256Gcm> {
        match self.cipher.read() {
            Ok(cipher) => cipher.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn remember(&self, cipher: &Aes256Gcm) {
        match self.cipher.write() {
            Ok(mut slot) => *slot = Some(cipher.clone()),
            Err(poisoned) => *poisoned.into_inner() = Some(cipher.clone()),
        }
    }

    /// The key; with `create`, a missing default key file is generated first.
    fn key(&self, create: bool) -> Result<Aes256Gcm, SecretsError> {
        if let Some(cipher) = self.cached() {
            return Ok(cipher);
        }
        let cipher = if let Some(key) = &self.configured {
            parse_key(key.expose(), "SECRETS_KEY")?
        } else {
            if create && !self.file_configured && !self.file.exists() {
                generate_key_file(&self.file)?;
            }
            let text = std::fs::read_to_string(&self.file).map_err(|error| {
                SecretsError::Key(format!("cannot read {}: {error}", self.file.display()))
            })?;
            parse_key(&text, &self.file.display().to_string())?
        };
        self.remember(&cipher);
        Ok(cipher)
    }

    /// Seals `plaintext` for `purpose`.
    pub fn seal(&self, plaintext: &str, purpose: &str) -> Result<String, SecretsError> {
        let cipher = self.key(true)?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Key("encryption failed".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{VERSION_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// Opens a value [`Secrets::seal`] made for the same `purpose`.
    pub fn open(&self, stored: &str, purpose: &str) -> Result<Secret, SecretsError> {
        let cipher = self.key(false)?;
        let bytes = stored
            .strip_prefix(VERSION_PREFIX)
            .and_then(|text| STANDARD.decode(text).ok())
            .filter(|bytes| bytes.len() > NONCE_BYTES)
            .ok_or(SecretsError::WrongKey)?;
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let plain = cipher
            .decrypt(
                aes_gcm::Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::WrongKey)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| SecretsError::WrongKey)
    }
}

/// Writes a new random key to `path` (0600, in a private directory) unless another process
/// got there first: the file is linked into place only if absent, so two replicas starting
/// together on one data directory end up with one key.
fn generate_key_file(path: &Path) -> Result<(), SecretsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::keyfiles::ensure_private_dir(dir).map_err(SecretsError::Key)?;
    let key = Aes256Gcm::generate_key(&mut OsRng);
    let text = format!("{}\n", STANDARD.encode(key));
    let temporary = dir.join(format!(".{KEY_FILE}.{}.new", std::process::id()));
    crate::keyfiles::write_atomically(&temporary, text.as_bytes(), 0o600)
        .map_err(SecretsError::Key)?;
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated the secrets key (back it up apart from the database)");
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(SecretsError::Key(format!(
            "cannot write {}: {error}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets_in(dir: &Path, key: Option<&str>) -> Secrets {
        Secrets {
            configured: key.map(Secret::new),
            file: dir.join("keys").join(KEY_FILE),
            file_configured: false,
            cipher: RwLock::new(None),
        }
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_purpose() {
        let dir = std::env::temp_dir().join(format!("gls-secrets-{}", std::process::id()));
        let secrets = secrets_in(&dir, None);
        assert!(matches!(
            secrets.open("v1:AAAA", "token"),
            Err(SecretsError::Key(_))
        ));
        let sealed = secrets.seal("glpat-very-secret", "token").expect("seal");
        assert!(sealed.starts_with("v1:") && !sealed.contains("very-secret"));
        assert_ne!(
            sealed,
            secrets.seal("glpat-very-secret", "token").expect("seal")
        );
        assert_eq!(
            secrets.open(&sealed, "token").expect("open").expose(),
            "glpat-very-secret"
        );
        assert_eq!(
            secrets.open(&sealed, "other").map(|_| ()),
            Err(SecretsError::WrongKey)
        );
        // A second process on the same data directory reads the same key file.
        let again = secrets_in(&dir, None);
        assert!(again.open(&sealed, "token").is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join("keys").join(KEY_FILE))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Another key cannot open it.
        let other = secrets_in(&dir, Some(&STANDARD.encode([7u8; 32])));
        assert_eq!(
            other.open(&sealed, "token").map(|_| ()),
            Err(SecretsError::WrongKey)
        );
        let short = secrets_in(&dir, Some("c2hvcnQ="));
        assert!(short.validate().is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
