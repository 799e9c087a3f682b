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
    ensure_private_dir(dir)?;
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

/// Names that mark a directory as this server's data directory.
const OWN_ENTRIES: &[&str] = &["initial_root_token", "keys"];

/// Creates `dir` and its missing parents readable by the owner only (0700), whatever the
/// umask: it holds the root token, the signing key and, on SQLite, token digests and hook
/// secrets. An existing directory that others can read is tightened when it is evidently
/// ours — empty, or holding our files — and not a shared sticky directory such as `/tmp`;
/// anything else is left alone with a warning rather than changed under somebody's feet.
pub fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    let cannot = |error: std::io::Error| format!("cannot create {}: {error}", dir.display());
    if !dir.exists() {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(cannot)?;
        // The mode above is filtered by the umask only, never widened; make it exact.
        return set_private(dir);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(dir).map_err(cannot)?.permissions().mode();
        let shared = mode & 0o077 != 0;
        let sticky = mode & 0o1000 != 0;
        if shared && !sticky && looks_like_ours(dir) {
            set_private(dir)?;
        } else if shared {
            tracing::warn!(
                path = %dir.display(),
                "the data directory can be read by other users; make it private (chmod 700)"
            );
        }
    }
    Ok(())
}

fn looks_like_ours(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    let names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.is_empty()
        || names.iter().any(|name| {
            OWN_ENTRIES.contains(&name.as_str())
                || name.ends_with(".db")
                || name.ends_with(".db-wal")
        })
}

fn set_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .map_err(|error| format!("cannot make {} private: {error}", path.display()))?;
    }
    Ok(())
}

/// Makes an existing file readable and writable by its owner only (0600).
pub fn make_file_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
    }

    #[test]
    fn private_dirs_are_made_and_ours_tightened() {
        let base = std::env::temp_dir().join(format!("gls-private-{}", std::process::id()));
        let fresh = base.join("a/b");
        ensure_private_dir(&fresh).expect("create");
        assert_eq!(mode(&fresh), 0o700);
        let ours = base.join("ours");
        fs::create_dir_all(ours.join("keys")).expect("dir");
        fs::set_permissions(&ours, fs::Permissions::from_mode(0o755)).expect("chmod");
        ensure_private_dir(&ours).expect("tighten");
        assert_eq!(mode(&ours), 0o700);
        let foreign = base.join("foreign");
        fs::create_dir_all(foreign.join("something-else")).expect("dir");
        fs::set_permissions(&foreign, fs::Permissions::from_mode(0o755)).expect("chmod");
        ensure_private_dir(&foreign).expect("left alone");
        assert_eq!(mode(&foreign), 0o755);
        let shared = base.join("shared");
        fs::create_dir_all(&shared).expect("dir");
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).expect("chmod");
        ensure_private_dir(&shared).expect("left alone");
        assert_eq!(mode(&shared), 0o1777);
        let _ = fs::remove_dir_all(&base);
    }
}
