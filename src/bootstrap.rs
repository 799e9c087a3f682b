//! First-run setup: the root administrator with its token, and the license verification keys.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::auth::{generate_token, SCOPE_ADMIN_MODE, SCOPE_API};
use crate::config::Config;
use crate::keyfiles::{write_atomically, write_key_pair, PUBLIC_KEY_FILE};
use crate::license_key::keys::{parse_public_keys, DEFAULT_KEY_BITS};
use crate::license_key::RsaPublicKey;
use crate::services::tokens::new_token;
use crate::store::Store;

pub const ROOT_TOKEN_FILE: &str = "initial_root_token";

/// What first-run setup did, for the start-up log (never the token itself).
#[derive(Debug, PartialEq, Eq)]
pub enum RootSetup {
    /// Users existed already.
    Existing,
    /// Root was created with the token from `INITIAL_ROOT_TOKEN(_FILE)`.
    FromConfig,
    /// Root was created and its generated token written to this file.
    Generated(PathBuf),
}

/// Creates `root` (admin, id 1) with a token when the directory is empty.
pub async fn ensure_root(
    store: &Store,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<RootSetup, String> {
    let (value, generated) = match &config.initial_root_token {
        Some(token) => (token.expose().to_string(), false),
        None => (generate_token(), true),
    };
    let scopes = vec![SCOPE_API.to_string(), SCOPE_ADMIN_MODE.to_string()];
    let token = new_token(
        &value,
        "initial root token",
        &scopes,
        None,
        now.date_naive(),
    )?;
    let created = store
        .bootstrap_root(&token, now)
        .await
        .map_err(|error| format!("creating the root user: {error}"))?;
    if !created {
        return Ok(RootSetup::Existing);
    }
    if !generated {
        return Ok(RootSetup::FromConfig);
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|error| format!("cannot create {}: {error}", config.data_dir.display()))?;
    let path = config.data_dir.join(ROOT_TOKEN_FILE);
    write_atomically(&path, format!("{value}\n").as_bytes(), 0o600).map_err(|error| {
        format!("{error}; create a new root token with `gitlab-license-server token create --username root --name admin --scopes api,admin_mode`")
    })?;
    Ok(RootSetup::Generated(path))
}

/// Where the verification keys came from.
#[derive(Debug, PartialEq, Eq)]
pub enum KeySource {
    Configured(PathBuf),
    DataDir(PathBuf),
    /// A pair was generated; the private key sits beside this public key.
    Generated(PathBuf),
}

/// Loads `LICENSE_PUBLIC_KEY_FILE`, or the data dir's key, generating a pair there on first run.
pub fn license_keys(config: &Config) -> Result<(Vec<RsaPublicKey>, KeySource), String> {
    let read = |path: &Path| -> Result<Vec<RsaPublicKey>, String> {
        let pem = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        parse_public_keys(&pem).map_err(|error| format!("{}: {error}", path.display()))
    };
    if let Some(path) = &config.license_public_key_file {
        return Ok((read(path)?, KeySource::Configured(path.clone())));
    }
    let key_dir = config.data_dir.join("keys");
    let public_path = key_dir.join(PUBLIC_KEY_FILE);
    if public_path.exists() {
        return Ok((read(&public_path)?, KeySource::DataDir(public_path)));
    }
    let (_, public_path) = write_key_pair(&key_dir, DEFAULT_KEY_BITS, false)?;
    Ok((read(&public_path)?, KeySource::Generated(public_path)))
}
