//! First-run setup: the root administrator with its token, and the license verification keys.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::auth::{generate_token, Scope};
use crate::config::Config;
use crate::keyfiles::{write_atomically, write_pem_pair, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE};
use crate::license_key::keys::{generate_pem_pair, parse_public_keys, DEFAULT_KEY_BITS};
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
    let scopes = vec![Scope::Api.to_string(), Scope::AdminMode.to_string()];
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
    crate::keyfiles::ensure_private_dir(&config.data_dir)?;
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
}

/// The verification keys: `LICENSE_PUBLIC_KEY_FILE`, or the data dir's key; `Ok(None)` on a
/// first run, when a pair is to be generated in the data dir (see [`generate_license_keys`]).
pub fn license_keys(config: &Config) -> Result<Option<(Vec<RsaPublicKey>, KeySource)>, String> {
    let read = |path: &Path| -> Result<Vec<RsaPublicKey>, String> {
        let pem = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        parse_public_keys(&pem).map_err(|error| format!("{}: {error}", path.display()))
    };
    if let Some(path) = &config.license_public_key_file {
        return Ok(Some((read(path)?, KeySource::Configured(path.clone()))));
    }
    let public_path = config.data_dir.join("keys").join(PUBLIC_KEY_FILE);
    if public_path.exists() {
        return Ok(Some((read(&public_path)?, KeySource::DataDir(public_path))));
    }
    // Never replace a private key that lost its public half: it may have signed licenses.
    let private_path = config.data_dir.join("keys").join(PRIVATE_KEY_FILE);
    if private_path.exists() {
        return Err(format!(
            "{} exists without {}; restore the public key, or move the private key away to generate a new pair",
            private_path.display(),
            public_path.display()
        ));
    }
    Ok(None)
}

/// A first run's key pair: generated (a few hundred milliseconds of prime search, so the
/// server calls this off its start-up path), handed to `use_keys` for verification, then
/// written into the data dir. In that order, so that whoever finds the private key file can
/// already upload what it signs; until then no license can be signed by it, so verifying
/// with no key at all is exact. Returns the public key's path.
pub fn generate_license_keys(
    config: &Config,
    use_keys: impl FnOnce(Vec<RsaPublicKey>),
) -> Result<PathBuf, String> {
    let key_dir = config.data_dir.join("keys");
    let (private_pem, public_pem) =
        generate_pem_pair(DEFAULT_KEY_BITS).map_err(|error| error.to_string())?;
    use_keys(parse_public_keys(&public_pem).map_err(|error| error.to_string())?);
    let (_, public_path) = write_pem_pair(&key_dir, &private_pem, &public_pem)?;
    Ok(public_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_in(dir: &Path) -> Config {
        let data_dir = dir.display().to_string();
        Config::from_source(&[("DATA_DIR", data_dir.as_str())]).expect("config")
    }

    #[test]
    fn a_first_run_generates_and_a_lone_private_key_is_never_replaced() {
        let dir = std::env::temp_dir().join(format!("gls-bootstrap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = config_in(&dir);
        assert_eq!(license_keys(&config), Ok(None), "nothing yet: generate");
        let mut handed_over = 0;
        let public_path =
            generate_license_keys(&config, |keys| handed_over = keys.len()).expect("generated");
        assert_eq!(handed_over, 1);
        assert!(matches!(
            license_keys(&config),
            Ok(Some((keys, KeySource::DataDir(path)))) if keys.len() == 1 && path == public_path
        ));
        std::fs::remove_file(&public_path).expect("public key removed");
        let refused = license_keys(&config).expect_err("a lone private key");
        assert!(refused.contains("exists without"), "{refused}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
