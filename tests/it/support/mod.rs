//! Shared helpers for the integration tests.

use std::path::PathBuf;

use gitlab_license_server::license_key::keys::{parse_private_key, parse_public_keys};
use gitlab_license_server::license_key::{RsaPrivateKey, RsaPublicKey};
use serde_json::Value;

/// The project's copy of the reference vectors (kept equal to `../shared/license-vectors` by
/// `vectors::fixtures_match_the_shared_vectors`).
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/license-vectors")
}

pub fn read_fixture(name: &str) -> String {
    let path = vectors_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

pub fn fixture_json(name: &str) -> Vec<Value> {
    match serde_json::from_str(&read_fixture(name)) {
        Ok(Value::Array(entries)) => entries,
        other => panic!("{name} is not a JSON array: {other:?}"),
    }
}

pub fn test_public_key() -> RsaPublicKey {
    parse_public_keys(&read_fixture("public_key.pem"))
        .expect("test public key parses")
        .remove(0)
}

pub fn test_private_key() -> RsaPrivateKey {
    parse_private_key(&read_fixture("private_key.pem")).expect("test private key parses")
}

/// A second, unrelated key pair (generated once per test binary; 1024 bits keeps it quick).
pub fn other_key_pair() -> &'static (RsaPrivateKey, RsaPublicKey) {
    static PAIR: std::sync::OnceLock<(RsaPrivateKey, RsaPublicKey)> = std::sync::OnceLock::new();
    PAIR.get_or_init(|| {
        let (private_pem, public_pem) =
            gitlab_license_server::license_key::keys::generate_pem_pair(1024).expect("keygen");
        let private = parse_private_key(&private_pem).expect("own private key parses");
        let public = parse_public_keys(&public_pem)
            .expect("own public key parses")
            .remove(0);
        (private, public)
    })
}

/// Today's date in UTC, as the codec's callers pass it.
pub fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// How many cases a property or fuzz test runs: `FUZZ_CASES` in CI, a quick default locally.
pub fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

pub mod app;
pub mod browser;
pub mod fault_proxy;
pub mod licenses;
pub mod process;
pub mod server;

/// The CSRF token a page's forms carry (`authenticity_token`, GitLab's field name).
pub fn csrf_of(body: &str) -> String {
    let marker = "name=\"authenticity_token\" value=\"";
    let start = body.find(marker).expect("a CSRF field") + marker.len();
    body[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}
