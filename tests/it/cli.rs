//! The operator's command line, run as a real process.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use chrono::{Duration, NaiveDate};
use gitlab_license_server::license_key;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::support::{cases, test_public_key, vectors_dir};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gitlab-license-server"))
}

fn run(args: &[&str]) -> Output {
    binary().args(args).output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch directory under the target dir, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn private_key_path() -> String {
    vectors_dir().join("private_key.pem").display().to_string()
}

fn public_key_path() -> String {
    vectors_dir().join("public_key.pem").display().to_string()
}

const ISSUE: &[&str] = &[
    "license",
    "issue",
    "--name",
    "Ada Admin",
    "--email",
    "ada@example.org",
    "--company",
    "Example Org",
    "--plan",
    "ultimate",
    "--seats",
    "100",
    "--starts",
    "2025-01-01",
    "--expires",
    "2035-01-01",
];

/// Runs `license issue` with the test key; `extra` options replace the defaults of the same name.
fn issue(extra: &[&str]) -> Output {
    let key = private_key_path();
    let mut args: Vec<&str> = Vec::new();
    let mut defaults = ISSUE.iter();
    while let Some(arg) = defaults.next() {
        if arg.starts_with("--") && extra.contains(arg) {
            defaults.next();
        } else {
            args.push(arg);
        }
    }
    args.extend(["--private-key", &key]);
    args.extend(extra);
    run(&args)
}

/// A failure the operator can read: non-zero exit, one line on stderr, no panic, no stdout.
/// `license inspect` of `key` written to a file in `dir`: its JSON report.
fn inspect_file(dir: &std::path::Path, key: &[u8]) -> Value {
    let file = dir.join("license.txt");
    std::fs::write(&file, key).expect("write");
    let inspected = run(&[
        "license",
        "inspect",
        "--public-key",
        &public_key_path(),
        &file.display().to_string(),
    ]);
    assert!(inspected.status.success(), "{}", text(&inspected.stderr));
    serde_json::from_slice(&inspected.stdout).expect("JSON report")
}

fn assert_clean_failure(output: &Output, needle: &str) {
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "expected failure, got success: {stderr}"
    );
    assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.stdout.is_empty(), "stdout: {}", text(&output.stdout));
}

#[test]
fn keys_generate_writes_a_private_key_only_its_owner_can_read() {
    let dir = scratch("keys");
    let out = dir.join("keys");
    let output = run(&["keys", "generate", "--out", &out.display().to_string()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let private = std::fs::read_to_string(out.join("license_key")).expect("private key");
    assert!(
        private.starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8 PEM"
    );
    let public = std::fs::read_to_string(out.join("license_key.pub")).expect("public key");
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(out.join("license_key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "no temporary files left: {leftovers:?}");

    // Refuses to overwrite, and the existing key is untouched.
    let again = run(&["keys", "generate", "--out", &out.display().to_string()]);
    assert_clean_failure(&again, "already exists");
    assert_eq!(
        std::fs::read_to_string(out.join("license_key")).expect("key"),
        private
    );

    // The new pair issues and verifies licenses.
    let key = out.join("license_key").display().to_string();
    let mut args: Vec<&str> = ISSUE.to_vec();
    args.extend(["--private-key", &key]);
    let issued = run(&args);
    assert!(issued.status.success(), "{}", text(&issued.stderr));
    let keys = license_key::keys::parse_public_keys(&public).expect("pub");
    assert!(license_key::decode(&issued.stdout, &keys).is_ok());
}

#[test]
fn issue_and_inspect_round_trip_with_every_option() {
    let output = issue(&[
        "--add-on",
        "GitLab_FileLocks=1",
        "--add-on",
        "GitLab_Geo=2",
        "--add-on-product",
        "duo_pro=5",
        "--add-on-product",
        "duo_enterprise=10:2025-06-01:2026-06-01",
        "--previous-user-count",
        "80",
        "--trueup-quantity",
        "12",
        "--trueup-from",
        "2024-01-01",
        "--trueup-to",
        "2024-12-31",
        "--armor",
        "GitLab Enterprise Edition",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let license_text = text(&output.stdout);
    assert!(license_text.starts_with("-----------BEGIN GITLAB ENTERPRISE EDITION LICENSE"));

    let report = inspect_file(&scratch("inspect"), license_text.as_bytes());
    assert_eq!(report["valid"], json!(true));
    assert_eq!(report["expired"], json!(false));
    assert_eq!(report["plan"], json!("ultimate"));
    assert_eq!(report["user_limit"], json!(100));
    assert_eq!(
        report["licensee"],
        json!({"Name": "Ada Admin", "Email": "ada@example.org", "Company": "Example Org"})
    );
    assert_eq!(
        report["add_ons"],
        json!({"GitLab_FileLocks": 1, "GitLab_Geo": 2})
    );
    let restrictions = &report["payload"]["restrictions"];
    assert_eq!(restrictions["previous_user_count"], json!(80));
    assert_eq!(restrictions["trueup_quantity"], json!(12));
    assert_eq!(restrictions["trueup_from"], json!("2024-01-01"));
    assert_eq!(restrictions["trueup_to"], json!("2024-12-31"));
    let duo_pro = &report["add_on_products"]["duo_pro"][0];
    assert_eq!(duo_pro["quantity"], json!(5));
    assert_eq!(duo_pro["started_on"], json!("2025-01-01"));
    assert_eq!(duo_pro["expires_on"], json!("2035-01-01"));
    assert!(duo_pro["purchase_xid"]
        .as_str()
        .is_some_and(|xid| xid.starts_with("A-S")));
    let duo_enterprise = &report["add_on_products"]["duo_enterprise"][0];
    assert_eq!(duo_enterprise["quantity"], json!(10));
    assert_eq!(duo_enterprise["started_on"], json!("2025-06-01"));
    assert_eq!(duo_enterprise["expires_on"], json!("2026-06-01"));
}

/// Keys with add-on products are offline cloud licenses (GitLab provisions add-ons only from
/// cloud licenses); `--no-cloud` and `--cloud` choose otherwise; `inspect` shows both flags.
#[test]
fn add_on_products_make_an_offline_cloud_license() {
    let dir = scratch("cloud-flags");
    let flags = |extra: &[&str]| {
        let issued = issue(extra);
        assert!(issued.status.success(), "{}", text(&issued.stderr));
        let report = inspect_file(&dir, &issued.stdout);
        assert_eq!(
            report["cloud_licensing_enabled"],
            report["payload"]["cloud_licensing_enabled"]
        );
        (
            report["cloud_licensing_enabled"].clone(),
            report["offline_cloud_licensing_enabled"].clone(),
        )
    };
    assert_eq!(
        flags(&["--add-on-product", "duo_pro=5"]),
        (json!(true), json!(true))
    );
    assert_eq!(flags(&[]), (json!(false), json!(false)));
    assert_eq!(
        flags(&["--add-on-product", "duo_pro=5", "--no-cloud"]),
        (json!(false), json!(false))
    );
    assert_eq!(flags(&["--cloud"]), (json!(true), json!(true)));
    let both = issue(&["--cloud", "--no-cloud"]);
    assert!(!both.status.success());
}

#[test]
fn inspect_reads_standard_input_and_reports_expiry() {
    let expired = crate::support::fixture_json("vectors.json")
        .into_iter()
        .find(|vector| vector["name"] == "expired_premium")
        .expect("vector");
    let mut child = binary()
        .args(["license", "inspect", "--public-key", &public_key_path()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(expired["license"].as_str().expect("text").as_bytes())
            .expect("write");
    }
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["expired"], json!(true));
    assert_eq!(report["plan"], json!("premium"));
}

#[test]
fn inspect_refuses_a_bad_key_with_one_line() {
    let dir = scratch("inspect-bad");
    let file = dir.join("bad.txt");
    std::fs::write(&file, "foo").expect("write");
    let output = run(&[
        "license",
        "inspect",
        "--public-key",
        &public_key_path(),
        &file.display().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr).lines().count(),
        1,
        "{}",
        text(&output.stderr)
    );
    assert_clean_failure(&output, "envelope");
}

#[test]
fn bad_arguments_fail_cleanly_without_output() {
    let empty = scratch("no-token");
    let output = binary()
        .args(["token", "initial"])
        .env("DATA_DIR", &empty)
        .output()
        .expect("token initial");
    assert_clean_failure(&output, "admin rescue");
    assert_clean_failure(&issue(&["--starts", "2025-13-01"]), "not a date");
    assert_clean_failure(&issue(&["--expires", "2024-01-01"]), "--expires");
    assert_clean_failure(&issue(&["--expires", "2025-01-01"]), "--expires");
    assert_clean_failure(&issue(&["--add-on", "=3"]), "NAME=COUNT");
    assert_clean_failure(
        &issue(&["--add-on-product", "duo_pro=5:2025-01-01"]),
        "NAME=QTY",
    );
    assert_clean_failure(&issue(&["--trueup-quantity", "5"]), "--trueup-from");
    assert_clean_failure(&issue(&["--seats", "-4"]), "-4");

    let mut args: Vec<&str> = ISSUE.to_vec();
    args.extend(["--private-key", "/nonexistent/license_key"]);
    assert_clean_failure(&run(&args), "cannot read /nonexistent/license_key");

    let dir = scratch("not-rsa");
    let ec = dir.join("ec.pem");
    std::fs::write(
        &ec,
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgevZzL1gdAFr88hb2\nOF/2NxApJCzGCEDdfSp6VQO30hyhRANCAAQRWz+jn65BtOMvdyHKcvjBeBSDZH2r\n1RTwjmYSi9R/zpBnuQ4EiMnCqfMPWiZqB4QdbAd0E7oH50VpuZ1P087G\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let ec = ec.display().to_string();
    let mut args: Vec<&str> = ISSUE.to_vec();
    args.extend(["--private-key", &ec]);
    assert_clean_failure(&run(&args), "not an RSA key");

    let mut args: Vec<&str> = ISSUE.to_vec();
    let public = public_key_path();
    args.extend(["--private-key", &public]);
    assert_clean_failure(&run(&args), "private signing key");

    assert_clean_failure(
        &run(&["license", "inspect", "--public-key", &ec, "-"]),
        "where a public key belongs",
    );
    let ec_public = dir.join("ec.pub");
    std::fs::write(
        &ec_public,
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\nq9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n-----END PUBLIC KEY-----\n",
    )
    .expect("write");
    assert_clean_failure(
        &run(&[
            "license",
            "inspect",
            "--public-key",
            &ec_public.display().to_string(),
            "-",
        ]),
        "not an RSA key",
    );
}

fn cli_args(
    name: &str,
    seats: u64,
    starts: NaiveDate,
    expires: NaiveDate,
    add_ons: &[(String, u64)],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "license",
        "issue",
        "--private-key",
        &private_key_path(),
        "--name",
        name,
        "--email",
        "e@example.org",
        "--company",
        "C",
        "--plan",
        "premium",
        "--seats",
        &seats.to_string(),
        "--starts",
        &starts.to_string(),
        "--expires",
        &expires.to_string(),
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    for (add_on, count) in add_ons {
        args.push("--add-on".into());
        args.push(format!("{add_on}={count}"));
    }
    args
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(12).min(48), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn keys_issued_by_the_cli_decode_to_what_was_asked(
        name in "[A-Za-z][A-Za-z äöü'.-]{0,30}",
        seats in 0u64..100_000,
        offset in 0i64..30_000,
        length in 1i64..3_000,
        add_ons in proptest::collection::btree_map("[A-Z][A-Za-z_]{0,12}", 0u64..50, 0..3),
    ) {
        let starts = NaiveDate::from_ymd_opt(2000, 1, 1).expect("date") + Duration::days(offset);
        let expires = starts + Duration::days(length);
        let add_ons: Vec<(String, u64)> = add_ons.into_iter().collect();
        let args = cli_args(&name, seats, starts, expires, &add_ons);
        let output = binary().args(&args).output().expect("run");
        prop_assert!(output.status.success(), "{}", text(&output.stderr));
        let license = license_key::decode(&output.stdout, &[test_public_key()]).expect("decodes");
        prop_assert_eq!(license.licensee["Name"].as_str(), Some(name.as_str()));
        prop_assert_eq!(license.starts_at, starts);
        prop_assert_eq!(license.expires_at, Some(expires));
        prop_assert_eq!(license.restrictions.active_user_count, Some(seats));
        let expected: serde_json::Map<String, Value> = add_ons.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        prop_assert_eq!(&license.restrictions.add_ons, &expected);
    }
}

/// Compose files pass settings through as `${VAR:- }` (podman-compose 1.0 cannot substitute
/// an empty default), so a blank value must count as unset, as an empty one does.
#[test]
fn blank_settings_count_as_unset() {
    let dir = scratch("blank-settings");
    let database_url = format!("sqlite://{}/blank.db", dir.display());
    let mut command = binary();
    command
        .arg("migrate")
        .env("DATA_DIR", &dir)
        .env("DATABASE_URL", &database_url);
    for name in [
        "DATABASE_POOL_SIZE",
        "EXTERNAL_URL",
        "LICENSE_PUBLIC_KEY_FILE",
        "INITIAL_ROOT_TOKEN",
        "INITIAL_ROOT_TOKEN_FILE",
        "ADMIN_MODE",
        "METRICS_ADDR",
        "METRICS_ALLOWED_CIDRS",
        "LOG_FORMAT",
    ] {
        command.env(name, " ");
    }
    let output = command.output().expect("the binary runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
}
