//! The page's HTML (maud: checked at compile time, every value escaped). No scripts: every
//! action is a plain form, so the page works without JavaScript and under a strict CSP.

use maud::{html, Markup, DOCTYPE};

use super::chart;
use crate::domain::add_ons::PurchaseAction;
use crate::domain::subscription::{expiry_warning, ExpiryWarning};
use crate::domain::text::titleize;
use crate::services::license_check::LicenseCheck;
use crate::services::seat_alerts::SeatUsage;
use crate::services::subscription::{CurrentLicense, LicenseSummary, Overview, PurchaseSeats};
use crate::store::User;

/// GitLab's name for the CSRF field of every form.
pub const CSRF_FIELD: &str = "authenticity_token";

/// A message at the top of the page.
pub enum Flash {
    Notice(String),
    Alert(String),
}

/// The admin pages the top bar links to: (path, name).
const NAVIGATION: [(&str, &str); 6] = [
    ("/admin/subscription", "Subscription"),
    ("/admin/seats", "Seats"),
    ("/admin/seat_controls", "Seat controls"),
    ("/admin/fleet", "Fleet"),
    ("/admin/scim", "SCIM"),
    ("/-/graphql-explorer", "GraphQL explorer"),
];

pub(super) fn layout(title: &str, signed_in_as: Option<(&User, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · gitlab-license-server" }
                link rel="stylesheet" href="/admin/assets/subscription.css";
            }
            body {
                a class="skip-link" href="#main" { "Skip to main content" }
                header class="top-bar" {
                    span class="brand" { "gitlab-license-server" }
                    @if let Some((user, csrf_token)) = signed_in_as {
                        nav aria-label="Admin" {
                            @for (path, name) in NAVIGATION {
                                @if name == title {
                                    a href=(path) aria-current="page" { (name) }
                                } @else {
                                    a href=(path) { (name) }
                                }
                            }
                        }
                        form class="sign-out" method="post" action="/admin/sign_out" {
                            (csrf_field(csrf_token))
                            span class="who" { "Signed in as " strong { "@" (user.username) } }
                            button type="submit" class="secondary" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" { (body) }
            }
        }
    }
}

pub(super) fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

pub(super) fn flash(message: Option<&Flash>) -> Markup {
    html! {
        @match message {
            Some(Flash::Notice(text)) => p class="flash notice" role="status" { (text) },
            Some(Flash::Alert(text)) => p class="flash alert" role="alert" { (text) },
            None => {},
        }
    }
}

pub fn sign_in(csrf_token: &str, message: Option<&Flash>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            section class="card narrow" aria-labelledby="sign-in-heading" {
                h1 id="sign-in-heading" { "Sign in" }
                (flash(message))
                p { "Sign in with an administrator's personal access token (scope "
                    code { "api" } ", or " code { "read_api" } " to look without changing anything)." }
                form method="post" action="/admin/sign_in" {
                    (csrf_field(csrf_token))
                    label for="token" { "Personal access token" }
                    input id="token" name="token" type="password" autocomplete="off" required
                        spellcheck="false" autofocus;
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

pub fn error(message: &str) -> Markup {
    layout(
        "Error",
        None,
        html! {
            section class="card narrow" {
                h1 { "Something is not right" }
                p role="alert" { (message) }
                p { a href="/admin/subscription" { "Back to the subscription page" } }
            }
        },
    )
}

pub struct PageContext<'a> {
    pub user: &'a User,
    pub csrf_token: &'a str,
    pub can_write: bool,
    pub flash: Option<Flash>,
}

pub fn subscription(
    overview: &Overview,
    context: &PageContext<'_>,
    license_check: Option<&LicenseCheck>,
    first_count_at: chrono::DateTime<chrono::Utc>,
    true_up: Markup,
) -> Markup {
    layout(
        "Subscription",
        Some((context.user, context.csrf_token)),
        html! {
            h1 { "Subscription" }
            (flash(context.flash.as_ref()))
            @if !context.can_write {
                p class="flash info" role="status" {
                    "Your token has read-only access: sign in with an " code { "api" }
                    " token to change licenses or seats."
                }
            }
            @if overview.unverifiable_licenses > 0 {
                @let hidden = i64::try_from(overview.unverifiable_licenses).unwrap_or(i64::MAX);
                p class="banner danger" role="alert" {
                    strong {
                        (hidden) " stored " (plural(hidden, "license is", "licenses are"))
                        " hidden: no configured public key verifies "
                        (plural(hidden, "it", "them")) "."
                    }
                    " To show " (plural(hidden, "it", "them")) " again, "
                    (crate::services::licenses::UNVERIFIABLE_FIX) "."
                }
            }
            @if let Some(check) = license_check {
                (license_check_card(check))
            }
            (seat_alert_banners(&overview.seat_usage))
            @match &overview.current {
                Some(current) => {
                    (banners(current))
                    (license_details(current, context))
                    (chart::section(current, overview.today, first_count_at))
                    (true_up)
                },
                None => section class="card" aria-labelledby="license-heading" {
                    h2 id="license-heading" { "Current license" }
                    p { "No license is active. Add one below." }
                },
            }
            (licenses_table(&overview.licenses, context))
            (add_ons(overview, context))
        },
    )
}

/// What uploading the checked key would do (nothing has been written).
fn license_check_card(check: &LicenseCheck) -> Markup {
    html! {
        section class="card license-check" aria-labelledby="check-heading" id="license-check" {
            h2 id="check-heading" { "License check" }
            @if check.accepted {
                p class="flash notice check-verdict" role="status" {
                    "The upload would be accepted. Nothing has been changed yet."
                }
            } @else {
                p class="flash alert check-verdict" role="alert" {
                    "The upload would be refused: " (check.message.as_deref().unwrap_or_default())
                }
            }
            @if let Some(license) = &check.license {
                dl class="figures" {
                    div { dt { "Plan" } dd { (titleize(&license.plan)) } }
                    div { dt { "Term" } dd { (license.starts_at) " to " (license.expires_at.as_deref().unwrap_or("no end")) } }
                    div { dt { "Seats (user_limit)" } dd class="check-seats" { (seats_text(&license.user_limit)) } }
                    div { dt { "Billable users" } dd { (license.active_users.unwrap_or_default()) } }
                    div { dt { "Users over license" } dd class="check-overage" { (license.overage) } }
                    div { dt { "Becomes current" } dd class="check-current" { (if check.becomes_current { "Yes" } else { "No" }) } }
                }
                @if check.add_on_purchases.is_empty() {
                    p class="muted check-purchases" { "No add-on purchase would change." }
                } @else {
                    ul class="check-purchases" {
                        @for change in &check.add_on_purchases {
                            li data-action=(format!("{:?}", change.action).to_lowercase()) {
                                @match change.action {
                                    PurchaseAction::Create => { "New " (change.product) " purchase: " (change.quantity_after.unwrap_or_default()) " seats." },
                                    PurchaseAction::Change => { (change.product) ": " (change.quantity_before.unwrap_or_default()) " → " (change.quantity_after.unwrap_or_default()) " seats." },
                                    PurchaseAction::Expire => { (change.product) " purchase would end." },
                                }
                                @if change.seats_lost > 0 {
                                    " " strong { (change.seats_lost) " of " (change.assigned) " assigned seats would be taken back" }
                                    @if !change.users_losing_seats.is_empty() {
                                        ": " (change.users_losing_seats.iter().map(|name| format!("@{name}")).collect::<Vec<_>>().join(", "))
                                    }
                                    "."
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One banner per set of seats past a seat-alert threshold: the highest reached, and the
/// figures.
pub(super) fn seat_alert_banners(usages: &[SeatUsage]) -> Markup {
    html! {
        @for usage in usages {
            @if let Some(threshold) = usage.reached.iter().max() {
                @let percent = (usage.utilization * 100.0).floor();
                p class={ "banner seat-alert " (if *threshold >= 100 { "danger" } else { "warning" }) }
                    role="alert" data-subject=(usage.subject) data-threshold=(threshold) {
                    strong { (usage.label) " are " (percent) " % used" }
                    " (" (usage.used) " of " (usage.capacity) "): past the " (threshold)
                    " % seat alert."
                }
            }
        }
    }
}

fn banners(current: &CurrentLicense) -> Markup {
    let entity = &current.entity;
    html! {
        @match expiry_warning(current.days_left) {
            Some(ExpiryWarning::Expired) => p class="banner danger" role="alert" {
                strong { "Your license has expired." }
                " It ended on " (entity.expires_at.as_deref().unwrap_or_default())
                ". Add a renewed license to keep your subscription features."
            },
            Some(ExpiryWarning::ExpiresSoon(days)) => p class="banner warning" role="alert" {
                strong { "Your license expires in " (days) " " (plural(days, "day", "days")) "." }
                " It ends on " (entity.expires_at.as_deref().unwrap_or_default())
                ". Add the renewed license before then."
            },
            None => {},
        }
        @if entity.overage > 0 {
            p class="banner warning" role="alert" {
                strong { "Your instance has " (entity.overage) " more billable "
                    (plural(entity.overage, "user", "users")) " than the license allows." }
                " Add seats with a true-up, or block or remove users."
            }
        }
    }
}

pub(super) fn plural(count: i64, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 {
        one
    } else {
        many
    }
}

fn seats_text(user_limit: &serde_json::Value) -> String {
    match user_limit.as_i64() {
        Some(0) | None => "Unlimited".into(),
        Some(seats) => seats.to_string(),
    }
}

fn license_details(current: &CurrentLicense, context: &PageContext<'_>) -> Markup {
    let entity = &current.entity;
    let license = &current.license;
    html! {
        section class="card" aria-labelledby="license-heading" {
            h2 id="license-heading" { "Current license" }
            dl class="figures" {
                div { dt { "Plan" } dd class="plan" { (titleize(&entity.plan)) } }
                div { dt { "Licensed to" } dd {
                    (license.licensee_field("Name"))
                    @let company = license.licensee_field("Company");
                    @if !company.is_empty() { ", " (company) }
                    @let email = license.licensee_field("Email");
                    @if !email.is_empty() { br; span class="muted" { (email) } }
                } }
                div { dt { "Started" } dd { (license.starts_at) } }
                div { dt { "Expires" } dd {
                    @match (license.expires_at, current.days_left) {
                        (Some(day), Some(left)) if left > 0 => {
                            (day) br; span class="muted" { (left) " " (plural(left, "day", "days")) " left" }
                        },
                        (Some(day), _) => { (day) br; span class="muted" { "expired" } },
                        _ => "Never",
                    }
                } }
                div { dt { "Seats in license" } dd id="seats-in-license" { (seats_text(&entity.user_limit)) } }
                div { dt { "Billable users" } dd id="billable-users" { (entity.active_users.unwrap_or_default()) } }
                div { dt { "Maximum users" } dd id="maximum-users" { (entity.maximum_user_count) } }
                div { dt { "Users over license" } dd id="users-over-license" class=(if entity.overage > 0 { "over" } else { "" }) {
                    (entity.overage)
                } }
            }
            div class="actions" {
                form method="post" action="/admin/subscription/refresh_billable_users" {
                    (csrf_field(context.csrf_token))
                    button type="submit" class="secondary" disabled[!context.can_write] {
                        "Refresh billable users"
                    }
                }
                a class="button secondary" href="/admin/subscription/usage_export.csv" download {
                    "Download usage CSV"
                }
            }
        }
    }
}

fn licenses_table(licenses: &[LicenseSummary], context: &PageContext<'_>) -> Markup {
    html! {
        section class="card" aria-labelledby="licenses-heading" {
            h2 id="licenses-heading" { "Licenses" }
            @if licenses.is_empty() {
                p { "No licenses yet." }
            } @else {
                div class="table-scroll" tabindex="0" role="group" aria-label="Licenses table" {
                    table class="licenses" {
                        caption class="visually-hidden" { "Every license, newest first" }
                        thead { tr {
                            th scope="col" { "ID" } th scope="col" { "Plan" } th scope="col" { "Licensee" }
                            th scope="col" { "Starts" } th scope="col" { "Expires" }
                            th scope="col" class="number" { "Seats" } th scope="col" { "Status" }
                            th scope="col" { span class="visually-hidden" { "Actions" } }
                        } }
                        tbody {
                            @for summary in licenses {
                                tr data-license-id=(summary.id) {
                                    td { (summary.id) }
                                    td { (titleize(summary.license.plan())) }
                                    td { (summary.license.licensee_field("Name")) }
                                    td { (summary.license.starts_at) }
                                    td { @match summary.license.expires_at { Some(day) => (day), None => "Never" } }
                                    td class="number" { (seats_text(&summary.license.restrictions.user_limit())) }
                                    td { span class=(format!("status {}", summary.standing.label().to_lowercase())) {
                                        (summary.standing.label())
                                    } }
                                    td {
                                        @if context.can_write {
                                            details class="confirm" {
                                                summary { "Delete" span class="visually-hidden" { " license " (summary.id) } }
                                                form method="post" action=(format!("/admin/subscription/licenses/{}/delete", summary.id)) {
                                                    (csrf_field(context.csrf_token))
                                                    button type="submit" class="danger" {
                                                        "Delete license " (summary.id)
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if context.can_write {
                h3 { "Add a license" }
                form class="upload" method="post" action="/admin/subscription/licenses" enctype="multipart/form-data" {
                    (csrf_field(context.csrf_token))
                    label for="license-key" { "License key" }
                    textarea id="license-key" name="license" rows="5" spellcheck="false"
                        aria-describedby="license-key-help" {}
                    p id="license-key-help" class="muted" {
                        "Paste the key, or choose the " code { ".gitlab-license" } " file instead."
                    }
                    label for="license-file" { "License file" }
                    input id="license-file" name="license_file" type="file" accept=".gitlab-license,.txt,text/plain";
                    div class="actions" {
                        button type="submit" { "Add license" }
                        button type="submit" class="secondary check-license" formaction="/admin/subscription/licenses/check" { "Check first" }
                    }
                }
            }
        }
    }
}

/// A product name an administrator recognises (GraphQL shows the internal name upper-cased).
fn add_ons(overview: &Overview, context: &PageContext<'_>) -> Markup {
    html! {
        section class="card" aria-labelledby="add-ons-heading" {
            h2 id="add-ons-heading" { "Add-ons and GitLab Duo seats" }
            p class="muted" {
                "The same seats as GraphQL's " code { "addOnPurchases" } "; try the API in the "
                a href="/-/graphql-explorer" { "GraphQL explorer" } "."
            }
            @if overview.purchases.is_empty() {
                p { "No add-on purchases. A license with Duo add-on products provides them." }
            }
            datalist id="eligible-users" {
                @for user in &overview.eligible_users {
                    option value=(user.username) { (user.name) }
                }
            }
            @for seats in &overview.purchases {
                (purchase(seats, context))
            }
            @if context.can_write {
                (group_purchase_form(overview, context))
            }
        }
    }
}

/// Creates or changes a group's purchase (instance purchases come from the license).
fn group_purchase_form(overview: &Overview, context: &PageContext<'_>) -> Markup {
    html! {
        details class="group-purchase" {
            summary { "Add or change a group's add-on purchase" }
            p class="muted" {
                "Instance purchases come from the license. For a group, enter its path or ID; "
                "saving an add-on the group already has changes that purchase."
            }
            form method="post" action="/admin/subscription/add_on_purchases" {
                (csrf_field(context.csrf_token))
                label for="purchase-group" { "Group (path or ID)" }
                input id="purchase-group" name="group" type="text" required autocomplete="off" spellcheck="false";
                label for="purchase-add-on" { "Add-on" }
                select id="purchase-add-on" name="add_on" {
                    @for add_on in crate::domain::add_ons::CATALOGUE {
                        option value=(add_on.name) { (crate::domain::add_ons::product_name(add_on.name)) " (" (add_on.name) ")" }
                    }
                }
                label for="purchase-quantity" { "Seats" }
                input id="purchase-quantity" name="quantity" type="number" min="1" required;
                label for="purchase-starts" { "Starts on" }
                input id="purchase-starts" name="started_on" type="date" required value=(overview.today);
                label for="purchase-expires" { "Expires on" }
                input id="purchase-expires" name="expires_on" type="date" required;
                label for="purchase-xid" { "Purchase reference (optional)" }
                input id="purchase-xid" name="purchase_xid" type="text" maxlength="255" autocomplete="off";
                div class="checkbox" {
                    input id="purchase-trial" name="trial" type="checkbox" value="1";
                    label for="purchase-trial" { "Trial" }
                }
                button type="submit" { "Save purchase" }
            }
        }
    }
}

fn purchase(seats: &PurchaseSeats, context: &PageContext<'_>) -> Markup {
    let purchase = &seats.purchase;
    let heading_id = format!("add-on-{}", purchase.id);
    let action = |verb: &str| format!("/admin/subscription/add_ons/{}/{verb}", purchase.id);
    let writable = context.can_write && seats.active;
    html! {
        article class="add-on" aria-labelledby=(heading_id) data-purchase-id=(purchase.id) {
            h3 id=(heading_id) {
                (crate::domain::add_ons::product_name(&purchase.add_on_name))
                " " span class="muted" { "(" (crate::domain::add_ons::display_name(&purchase.add_on_name)) ", "
                    @match &purchase.namespace_path { Some(path) => { "group " (path) }, None => "instance" } ")" }
            }
            p class="seat-count" {
                span class="seats-used" { (purchase.assigned_quantity) } " of "
                span class="seats-purchased" { (purchase.quantity) } " seats used"
                @if !seats.active { " · " strong { "not active" } }
                " · " (purchase.started_on) " to " (purchase.expires_on)
                @if purchase.trial { " · trial" }
            }
            meter min="0" max=(purchase.quantity.max(1)) value=(purchase.assigned_quantity)
                aria-label=(format!("{} of {} seats used", purchase.assigned_quantity, purchase.quantity)) {}
            @if writable {
                form class="assign" method="post" action=(action("assign")) {
                    (csrf_field(context.csrf_token))
                    label for=(format!("usernames-{}", purchase.id)) { "Usernames" }
                    input id=(format!("usernames-{}", purchase.id)) name="usernames" type="text"
                        list="eligible-users" autocomplete="off" spellcheck="false"
                        aria-describedby=(format!("usernames-help-{}", purchase.id));
                    p id=(format!("usernames-help-{}", purchase.id)) class="muted" {
                        "One or more usernames, separated by spaces or commas (up to 100)."
                    }
                    div class="actions" {
                        button type="submit" { "Assign seats" }
                        button type="submit" class="secondary" formaction=(action("unassign")) { "Remove seats" }
                    }
                }
            }
            @if seats.holders.is_empty() {
                p class="muted" { "Nobody holds a seat." }
            } @else {
                div class="table-scroll" tabindex="0" role="group" aria-label="Seat holders table" {
                    table class="seat-holders" {
                        caption class="visually-hidden" { "Seat holders" }
                        thead { tr {
                            th scope="col" { "Username" } th scope="col" { "Name" }
                            th scope="col" { span class="visually-hidden" { "Actions" } }
                        } }
                        tbody {
                            @for user in &seats.holders {
                                tr data-username=(user.username) {
                                    td { "@" (user.username) }
                                    td { (user.name) }
                                    td {
                                        @if writable {
                                            form method="post" action=(action("unassign")) {
                                                (csrf_field(context.csrf_token))
                                                input type="hidden" name="user_id" value=(user.id);
                                                button type="submit" class="secondary small" {
                                                    "Unassign" span class="visually-hidden" { " @" (user.username) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if purchase.assigned_quantity > i64::try_from(seats.holders.len()).unwrap_or(i64::MAX) {
                    p class="muted" { "Showing the first " (seats.holders.len()) " holders by username; "
                        "remove others by username above." }
                }
            }
        }
    }
}

/// The stylesheet, embedded in the binary.
pub const STYLESHEET: &str = include_str!("../../assets/web/subscription.css");
