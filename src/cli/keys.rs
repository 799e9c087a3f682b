//! `keys generate`: a new signing key pair for license keys.

use std::path::PathBuf;

use clap::Subcommand;

use super::CliResult;
use crate::keyfiles::write_key_pair;
use crate::license_key::keys::DEFAULT_KEY_BITS;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write DIR/license_key (PKCS#8 PEM, mode 0600) and DIR/license_key.pub.
    Generate {
        /// Directory to write the key pair into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// RSA modulus size, 2048 to 8192 (larger keys take minutes to generate and gain
        /// nothing a license needs).
        #[arg(
            long,
            default_value_t = DEFAULT_KEY_BITS,
            value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2048..=8192)
        )]
        bits: usize,
        /// Replace an existing key pair (licenses signed by the old key stop verifying).
        #[arg(long)]
        force: bool,
    },
}

pub fn run(command: KeysCommand) -> CliResult {
    match command {
        KeysCommand::Generate { out, bits, force } => {
            let (private_path, public_path) = write_key_pair(&out, bits, force)?;
            println!("private key: {}", private_path.display());
            println!("public key:  {}", public_path.display());
            Ok(())
        }
    }
}
