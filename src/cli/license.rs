//! `license issue` and `license inspect`.

use std::io::Read as _;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::{read_text, CliResult};
use crate::license_key::{self, date_text, keys, License, NewLicense};

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Sign a new license key and print it on standard output.
    Issue(Box<IssueArgs>),
    /// Decode a license key and print what it contains as JSON.
    Inspect(InspectArgs),
    /// Check a license key against the configured database before uploading it: prints, as
    /// JSON, whether the upload would be accepted (or GitLab's refusal), the seats, overage
    /// and user_limit it would show, and the add-on purchases and seat holders it would
    /// change. Writes nothing. Exits 1 when the upload would be refused.
    Check {
        /// The license key file (`.gitlab-license`), or `-` for standard input.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The issuer's private key (PEM: PKCS#8 or PKCS#1).
    #[arg(long, value_name = "FILE")]
    private_key: PathBuf,
    /// Licensee name.
    #[arg(long)]
    name: String,
    /// Licensee email.
    #[arg(long)]
    email: String,
    /// Licensee company.
    #[arg(long)]
    company: String,
    /// Plan: starter, premium or ultimate.
    #[arg(long)]
    plan: String,
    /// Licensed seats (`active_user_count`).
    #[arg(long)]
    seats: u64,
    /// First day of the license (YYYY-MM-DD).
    #[arg(long, value_parser = parse_day)]
    starts: NaiveDate,
    /// Day the license expires (YYYY-MM-DD); it is already expired on that day.
    #[arg(long, value_parser = parse_day)]
    expires: NaiveDate,
    /// A legacy add-on count, e.g. GitLab_FileLocks=1 (repeatable).
    #[arg(long = "add-on", value_name = "NAME=COUNT", value_parser = parse_add_on)]
    add_ons: Vec<(String, u64)>,
    /// An add-on product purchase such as GitLab Duo, e.g. duo_pro=5 or
    /// duo_enterprise=10:2025-01-01:2026-01-01 (repeatable; dates default to the license's).
    #[arg(
        long = "add-on-product",
        value_name = "NAME=QTY[:STARTED_ON:EXPIRES_ON]",
        value_parser = parse_add_on_product
    )]
    add_on_products: Vec<AddOnProductArg>,
    /// Mark the license (and its add-on products) as a trial.
    #[arg(long)]
    trial: bool,
    /// Issue an offline cloud license (`cloud_licensing_enabled` and
    /// `offline_cloud_licensing_enabled`). GitLab provisions add-on products only from cloud
    /// licenses, so this is the default when --add-on-product is given.
    #[arg(long, conflicts_with = "no_cloud")]
    cloud: bool,
    /// Issue a classic license even with --add-on-product (its products then provision no
    /// purchase, as in GitLab).
    #[arg(long)]
    no_cloud: bool,
    /// Billable users of the previous license term (`previous_user_count`).
    #[arg(long)]
    previous_user_count: Option<u64>,
    /// Seats paid for by a true-up.
    #[arg(long, requires_all = ["trueup_from", "trueup_to"])]
    trueup_quantity: Option<u64>,
    /// Start of the true-up period (YYYY-MM-DD).
    #[arg(long, value_parser = parse_day, requires = "trueup_quantity")]
    trueup_from: Option<NaiveDate>,
    /// End of the true-up period (YYYY-MM-DD).
    #[arg(long, value_parser = parse_day, requires = "trueup_quantity")]
    trueup_to: Option<NaiveDate>,
    /// Wrap the key in BEGIN/END lines naming this product, e.g. "GitLab Enterprise Edition".
    #[arg(long, value_name = "PRODUCT")]
    armor: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The issuer's public key(s) (PEM; repeat the flag or put several keys in one file).
    #[arg(long, value_name = "FILE", required = true)]
    public_key: Vec<PathBuf>,
    /// The license key file, or `-` (the default) for standard input.
    #[arg(value_name = "FILE|-", default_value = "-")]
    license: String,
}

#[derive(Debug, Clone)]
pub struct AddOnProductArg {
    name: String,
    quantity: u64,
    dates: Option<(NaiveDate, NaiveDate)>,
}

fn parse_day(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not a date of the form YYYY-MM-DD"))
}

fn split_name<'a>(text: &'a str, shape: &str) -> Result<(&'a str, &'a str), String> {
    match text.split_once('=') {
        Some((name, rest)) if !name.trim().is_empty() => Ok((name.trim(), rest)),
        _ => Err(format!("`{text}` is not of the form {shape}")),
    }
}

fn parse_count(text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number"))
}

fn parse_add_on(text: &str) -> Result<(String, u64), String> {
    let (name, count) = split_name(text, "NAME=COUNT")?;
    Ok((name.to_string(), parse_count(count)?))
}

fn parse_add_on_product(text: &str) -> Result<AddOnProductArg, String> {
    let (name, rest) = split_name(text, "NAME=QTY[:STARTED_ON:EXPIRES_ON]")?;
    let parts: Vec<&str> = rest.split(':').collect();
    let dates = match parts.as_slice() {
        [_] => None,
        [_, started_on, expires_on] => {
            let (started_on, expires_on) = (parse_day(started_on)?, parse_day(expires_on)?);
            if expires_on <= started_on {
                return Err(format!("in `{text}` the expiry must come after the start"));
            }
            Some((started_on, expires_on))
        }
        _ => {
            return Err(format!(
                "`{text}` is not of the form NAME=QTY[:STARTED_ON:EXPIRES_ON]"
            ))
        }
    };
    Ok(AddOnProductArg {
        name: name.to_string(),
        quantity: parse_count(parts[0])?,
        dates,
    })
}

pub fn run(command: LicenseCommand) -> CliResult {
    match command {
        LicenseCommand::Issue(args) => issue(*args),
        LicenseCommand::Inspect(args) => inspect(args),
        LicenseCommand::Check { file } => check(&file),
    }
}

fn check(file: &std::path::Path) -> CliResult {
    let data = super::read_text_or_stdin(file)?;
    let config = crate::config::Config::from_env()?;
    let checked = super::ops::runtime()?.block_on(async {
        let state =
            crate::server::command_state(config, std::sync::Arc::new(crate::clock::SystemClock))
                .await?;
        let checked = crate::services::license_check::check(&state, data.trim())
            .await
            .map_err(|error| format!("cannot check the license: {error}"));
        state.store.close().await;
        checked
    })?;
    let json = serde_json::to_string_pretty(&checked)
        .map_err(|error| format!("cannot print the result: {error}"))?;
    println!("{json}");
    match checked.message {
        Some(message) if !checked.accepted => {
            Err(format!("the upload would be refused: {message}"))
        }
        _ => Ok(()),
    }
}

fn issue(args: IssueArgs) -> CliResult {
    if args.expires <= args.starts {
        return Err(format!(
            "--expires ({}) must be after --starts ({})",
            args.expires, args.starts
        ));
    }
    if let (Some(from), Some(to)) = (args.trueup_from, args.trueup_to) {
        if to < from {
            return Err(format!(
                "--trueup-to ({to}) must not be before --trueup-from ({from})"
            ));
        }
    }
    let private_key = keys::parse_private_key(&read_text(&args.private_key)?)
        .map_err(|error| format!("{}: {error}", args.private_key.display()))?;
    let new_license = new_license(&args);
    let license = license_key::encode(
        &new_license.to_payload_json(),
        &private_key,
        args.armor.as_deref(),
    )
    .map_err(|error| error.to_string())?;
    print!("{license}");
    if !license.ends_with('\n') {
        println!();
    }
    Ok(())
}

/// The license the arguments describe; restriction keys in the order GitLab's tooling writes.
fn new_license(args: &IssueArgs) -> NewLicense {
    let mut licensee = Map::new();
    licensee.insert("Name".into(), Value::from(args.name.clone()));
    licensee.insert("Email".into(), Value::from(args.email.clone()));
    licensee.insert("Company".into(), Value::from(args.company.clone()));

    let mut restrictions = Map::new();
    restrictions.insert("active_user_count".into(), Value::from(args.seats));
    restrictions.insert("plan".into(), Value::from(args.plan.clone()));
    if !args.add_ons.is_empty() {
        let add_ons: Map<String, Value> = args
            .add_ons
            .iter()
            .map(|(name, count)| (name.clone(), Value::from(*count)))
            .collect();
        restrictions.insert("add_ons".into(), Value::Object(add_ons));
    }
    if !args.add_on_products.is_empty() {
        let mut products: Map<String, Value> = Map::new();
        for product in &args.add_on_products {
            let (started_on, expires_on) = product.dates.unwrap_or((args.starts, args.expires));
            let purchase = json!({
                "quantity": product.quantity,
                "started_on": date_text(started_on),
                "expires_on": date_text(expires_on),
                "purchase_xid": purchase_xid(),
                "trial": args.trial,
            });
            if let Some(Value::Array(purchases)) = products.get_mut(&product.name) {
                purchases.push(purchase);
            } else {
                products.insert(product.name.clone(), Value::Array(vec![purchase]));
            }
        }
        restrictions.insert("add_on_products".into(), Value::Object(products));
    }
    if args.trial {
        restrictions.insert("trial".into(), Value::Bool(true));
    }
    if let Some(count) = args.previous_user_count {
        restrictions.insert("previous_user_count".into(), Value::from(count));
    }
    if let (Some(quantity), Some(from), Some(to)) =
        (args.trueup_quantity, args.trueup_from, args.trueup_to)
    {
        restrictions.insert("trueup_quantity".into(), Value::from(quantity));
        restrictions.insert("trueup_from".into(), Value::from(date_text(from)));
        restrictions.insert("trueup_to".into(), Value::from(date_text(to)));
    }
    let cloud = args.cloud || (!args.no_cloud && !args.add_on_products.is_empty());
    NewLicense {
        licensee,
        starts_at: args.starts,
        expires_at: Some(args.expires),
        restrictions,
        cloud_licensing_enabled: cloud,
        offline_cloud_licensing_enabled: cloud,
    }
}

/// A purchase reference in the customers portal's `A-S` + 8 digits shape.
fn purchase_xid() -> String {
    use rand_core::RngCore as _;
    format!("A-S{:08}", rand_core::OsRng.next_u32() % 100_000_000)
}

fn inspect(args: InspectArgs) -> CliResult {
    let mut public_keys = Vec::new();
    for path in &args.public_key {
        let keys = keys::parse_public_keys(&read_text(path)?)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        public_keys.extend(keys);
    }
    let text = if args.license == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(license_key::MAX_LICENSE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| format!("cannot read standard input: {error}"))?;
        bytes
    } else {
        std::fs::read(&args.license)
            .map_err(|error| format!("cannot read {}: {error}", args.license))?
    };
    let license = license_key::decode(&text, &public_keys).map_err(|error| error.to_string())?;
    let today = chrono::Utc::now().date_naive();
    let report = inspection(&license, today);
    let pretty = serde_json::to_string_pretty(&report).map_err(|error| error.to_string())?;
    println!("{pretty}");
    Ok(())
}

/// What `inspect` prints: the verdict, the fields the API derives, and the payload verbatim.
pub fn inspection(license: &License, today: NaiveDate) -> Value {
    json!({
        "valid": true,
        "expired": license.expired(today),
        "plan": license.plan(),
        "starts_at": date_text(license.starts_at),
        "expires_at": license.expires_at.map(date_text),
        "user_limit": license.restrictions.user_limit(),
        "licensee": license.licensee,
        "add_ons": license.restrictions.add_ons,
        "add_on_products": license.restrictions.add_on_products,
        "trial": license.restrictions.trial,
        "cloud_licensing_enabled": license.cloud_licensing_enabled,
        "offline_cloud_licensing_enabled": license.offline_cloud_licensing_enabled,
        "payload": license.payload,
    })
}
