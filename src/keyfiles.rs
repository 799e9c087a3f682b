//! Files the server and the tools write: key pairs and secrets, never half-written and never
//! readable by others when they hold a secret.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::license_key::keys::generate_pem_pair;

pub const PRIVATE_KEY_FILE: &str = "license_key";
pub const PUBLIC_KEY_FILE: &str = "license_key.pub";

/// Generates a key pair into `dir`, never leaving a half-written or world-readable key behind.
pub fn write_key_pair(dir: &Path, bits: usize, force: bool) -> Result<(PathBuf, PathBuf), String> {
    let private_path = dir.join(PRIVATE_KEY_FILE);
    let public_path = dir.join(PUBLIC_KEY_FILE);
    if !force {
        for path in [&private_path, &public_path] {
            if path.exists() {
                return Err(format!(
                    "{} already exists; pass --force to replace the key pair",
                    path.display()
                ));
            }
        }
    }
    let (private_pem, public_pem) = generate_pem_pair(bits).map_err(|error| error.to_string())?;
    write_pem_pair(dir, &private_pem, &public_pem)
}

/// Writes a generated pair into `dir` (private key 0600, public key 0644), each file whole.
pub fn write_pem_pair(
    dir: &Path,
    private_pem: &str,
    public_pem: &str,
) -> Result<(PathBuf, PathBuf), String> {
    let private_path = dir.join(PRIVATE_KEY_FILE);
    let public_path = dir.join(PUBLIC_KEY_FILE);
    fs::create_dir_all(dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    write_atomically(&private_path, private_pem.as_bytes(), 0o600)?;
    write_atomically(&public_path, public_pem.as_bytes(), 0o644)?;
    Ok((private_path, public_path))
}

/// Writes to a sibling temporary file created with `mode`, then renames it into place, so a
/// reader sees either the old file or the whole new one.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        let mut file = options.open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    result.map_err(|error| {
        let _ = fs::remove_file(&temporary);
        format!("cannot write {}: {error}", path.display())
    })
}
