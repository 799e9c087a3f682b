//! Keys issued by our CLI, decoded by Ruby: `scripts/gem_compat_decode.rb` follows the
//! gitlab-license gem's import path with Ruby's own Base64, JSON, OpenSSL and Date. The script
//! is first held to the reference vectors (made by the gem itself), then given our keys.
//!
//! Needs `ruby`; skipped with a loud note when it is missing, unless `REQUIRE_RUBY=1` (CI).

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::{fixture_json, vectors_dir};

fn ruby_available() -> bool {
    let found = Command::new("ruby")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var("REQUIRE_RUBY").as_deref() != Ok("1"),
            "REQUIRE_RUBY=1 but `ruby` is not installed"
        );
        eprintln!("SKIPPED: ruby is not installed; the gem cross-check did not run");
    }
    found
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/gem_compat_decode.rb")
}

/// Runs the Ruby decoder over license texts; returns one report per text.
fn ruby_decode(name: &str, licenses: &[String]) -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ruby-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let files: Vec<String> = licenses
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let path = dir.join(format!("{index}.license"));
            std::fs::write(&path, text).expect("write");
            path.display().to_string()
        })
        .collect();
    let output = Command::new("ruby")
        .arg(script())
        .arg(vectors_dir().join("public_key.pem"))
        .args(&files)
        .output()
        .expect("ruby runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reports: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(
        reports.len(),
        licenses.len(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    reports
}

#[test]
fn the_ruby_decoder_agrees_with_the_reference_vectors() {
    if !ruby_available() {
        return;
    }
    let vectors = fixture_json("vectors.json");
    let texts: Vec<String> = vectors
        .iter()
        .map(|vector| vector["license"].as_str().expect("text").to_string())
        .collect();
    for (vector, report) in vectors.iter().zip(ruby_decode("vectors", &texts)) {
        let name = &vector["name"];
        let expect = &vector["expect"];
        assert_eq!(report["valid"], expect["valid"], "{name}: {report}");
        if expect["valid"] == json!(true) {
            assert_eq!(report["starts_at"], expect["starts_at"], "{name}");
            assert_eq!(report["expires_at"], expect["expires_at"], "{name}");
            assert_eq!(report["licensee"], expect["licensee"], "{name}");
        }
    }
}

#[test]
fn ruby_decodes_what_our_cli_issues() {
    if !ruby_available() {
        return;
    }
    let key = vectors_dir().join("private_key.pem").display().to_string();
    let variants: [&[&str]; 4] = [
        &[],
        &["--armor", "GitLab Enterprise Edition"],
        &[
            "--add-on",
            "GitLab_FileLocks=1",
            "--add-on-product",
            "duo_pro=5",
            "--trial",
        ],
        &[
            "--name",
            "Zoë \"Ünïcode\" Ørsted",
            "--previous-user-count",
            "7",
            "--trueup-quantity",
            "3",
            "--trueup-from",
            "2024-01-01",
            "--trueup-to",
            "2024-12-31",
        ],
    ];
    let mut issued = Vec::new();
    for extra in variants {
        let mut args = vec![
            "license",
            "issue",
            "--private-key",
            &key,
            "--email",
            "ada@example.org",
            "--company",
            "Example Org",
            "--plan",
            "premium",
            "--seats",
            "42",
            "--starts",
            "2025-02-03",
            "--expires",
            "2027-02-03",
        ];
        if !extra.contains(&"--name") {
            args.extend(["--name", "Ada Admin"]);
        }
        args.extend(extra);
        let output = Command::new(env!("CARGO_BIN_EXE_gitlab-license-server"))
            .args(&args)
            .output()
            .expect("cli runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        issued.push(String::from_utf8(output.stdout).expect("utf-8 license"));
    }
    let reports = ruby_decode("issued", &issued);
    for (index, report) in reports.iter().enumerate() {
        assert_eq!(report["valid"], json!(true), "variant {index}: {report}");
        assert_eq!(report["starts_at"], json!("2025-02-03"));
        assert_eq!(report["expires_at"], json!("2027-02-03"));
        assert_eq!(report["restrictions"]["active_user_count"], json!(42));
        assert_eq!(report["restrictions"]["plan"], json!("premium"));
        assert_eq!(report["licensee"]["Email"], json!("ada@example.org"));
    }
    assert_eq!(
        reports[3]["licensee"]["Name"],
        json!("Zoë \"Ünïcode\" Ørsted")
    );
    assert_eq!(
        reports[2]["restrictions"]["add_on_products"]["duo_pro"][0]["quantity"],
        json!(5)
    );
    assert_eq!(reports[2]["restrictions"]["trial"], json!(true));
    assert_eq!(reports[3]["restrictions"]["trueup_quantity"], json!(3));
}
