//! The Seats page's HTML: who holds a seat and why (filters, a page of holders, the CSV),
//! with the seat alerts, the license check and GitLab Duo seats in bulk beside it.

use maud::{html, Markup};

use super::views::{csrf_field, flash, layout, seat_alert_banners, PageContext};
use crate::domain::add_ons::product_name;
use crate::domain::members::AccessLevel;
use crate::domain::seats::{SeatHolderEntry, SeatOutcome};
use crate::services::duo_bulk::{AssignReport, ReclaimReport};
use crate::services::seat_alerts::SeatUsage;
use crate::store::AddOnPurchase;

/// The filters as the form shows them again (text as typed).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct HolderFilters {
    pub group: Option<String>,
    pub access_level: Option<String>,
    pub inactive_for_days: Option<String>,
    pub after: Option<String>,
    /// A fixed notice after a change (`member_removed`).
    pub notice: Option<String>,
}

impl HolderFilters {
    /// The query string of these filters (without the page), for the CSV and next links.
    pub fn query(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("group", &self.group),
            ("access_level", &self.access_level),
            ("inactive_for_days", &self.inactive_for_days),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            value
                .as_deref()
                .filter(|text| !text.is_empty())
                .map(|text| (name, text))
        })
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// One page of holders as the page shows it.
pub struct HolderTable {
    pub entries: Vec<SeatHolderEntry>,
    pub total: Option<i64>,
    pub next_after: Option<i64>,
}

/// What the bulk forms asked, as they show it again (and a confirmation repeats it).
#[derive(Debug, Clone, Default)]
pub struct BulkForm {
    pub purchase_id: String,
    pub group: String,
    pub min_access_level: String,
    pub entries: String,
    pub inactive_for_days: String,
}

/// The answer of a bulk form.
pub enum BulkResult {
    Assign(AssignReport),
    Reclaim(ReclaimReport),
    /// A change elsewhere on the page went through (a fixed text).
    Notice(String),
}

/// What the Seats page shows besides the holders.
pub struct SeatsExtras<'a> {
    pub seat_usage: &'a [SeatUsage],
    pub purchases: &'a [AddOnPurchase],
    pub bulk_form: BulkForm,
    pub bulk_result: Option<BulkResult>,
}

pub fn seats_page(
    filters: &HolderFilters,
    table: Option<&HolderTable>,
    extras: &SeatsExtras<'_>,
    context: &PageContext<'_>,
) -> Markup {
    layout(
        "Seats",
        Some((context.user, context.csrf_token)),
        html! {
            h1 { "Seats" }
            (flash(context.flash.as_ref()))
            (seat_alert_banners(extras.seat_usage))
            @match &extras.bulk_result {
                Some(BulkResult::Notice(text)) => p class="flash notice" role="status" { (text) },
                Some(result) => (bulk_result(result, &extras.bulk_form, context)),
                None => {},
            }
            (holders(filters, table, context))
            @if context.can_write && !extras.purchases.is_empty() {
                (bulk_forms(extras.purchases, &extras.bulk_form, context))
            }
        },
    )
}

fn holders(
    filters: &HolderFilters,
    table: Option<&HolderTable>,
    context: &PageContext<'_>,
) -> Markup {
    let query = filters.query();
    // Filtered by a group, each holder can be removed from it (GitLab's "remove billable
    // member").
    let group = filters
        .group
        .as_deref()
        .map(str::trim)
        .filter(|group| !group.is_empty() && context.can_write);
    let joiner = if query.is_empty() { "" } else { "&" };
    html! {
        section class="card" aria-labelledby="holders-heading" {
            h2 id="holders-heading" { "Who holds a seat" }
            p class="muted" {
                "Every billable user and why they occupy a seat. Filter by group, by highest "
                "role, or by inactivity (billable, but not active for that many days)."
            }
            form class="holder-filters" method="get" action="/admin/seats" {
                label for="filter-group" { "Group (path or ID)" }
                input id="filter-group" name="group" type="text" autocomplete="off"
                    spellcheck="false" value=(filters.group.clone().unwrap_or_default());
                label for="filter-role" { "Highest role" }
                select id="filter-role" name="access_level" {
                    option value="" { "Any" }
                    @for level in AccessLevel::ALL {
                        @let number = level.number().to_string();
                        @if filters.access_level.as_deref() == Some(number.as_str()) {
                            option value=(number) selected { (level.name()) }
                        } @else {
                            option value=(number) { (level.name()) }
                        }
                    }
                }
                label for="filter-inactive" { "Not active for at least (days)" }
                input id="filter-inactive" name="inactive_for_days" type="number" min="0"
                    value=(filters.inactive_for_days.clone().unwrap_or_default());
                button type="submit" { "Show" }
            }
            @if let Some(table) = table {
                p class="holder-count" {
                    @match table.total {
                        Some(total) => { (total) " billable " (if total == 1 { "user" } else { "users" }) " match." },
                        None => { "More than 10,000 billable users match." },
                    }
                    " "
                    a class="holders-csv" href={ "/admin/seats/billable_users.csv" @if !query.is_empty() { "?" (query) } } { "Download CSV" }
                }
                div class="table-scroll" tabindex="0" role="region" aria-label="Seat holders" {
                    table class="holders" {
                        thead { tr {
                            th scope="col" { "User" }
                            th scope="col" { "Highest role" }
                            th scope="col" { "Groups" }
                            th scope="col" { "Type" }
                            th scope="col" { "Last activity" }
                            th scope="col" { "Why billable" }
                            @if group.is_some() { th scope="col" { span class="visually-hidden" { "Actions" } } }
                        } }
                        tbody {
                            @for entry in &table.entries {
                                tr data-username=(entry.username) {
                                    td { strong { (entry.name) } " " span class="muted" { "@" (entry.username) } }
                                    td { (entry.highest_access_level.as_ref().map_or("None", |level| level.string_value)) }
                                    td { (entry.group_count) }
                                    td { (entry.user_type) }
                                    td {
                                        @match (&entry.last_activity_on, entry.inactive_days) {
                                            (Some(day), Some(days)) => { (day) " (" (days) " days ago)" },
                                            _ => "Never",
                                        }
                                    }
                                    td class="why" { (entry.billable_because) }
                                    @if let Some(group) = group {
                                        td {
                                            form class="remove-member" method="post" action={ "/admin/seats/groups/" (group) "/billable_members/" (entry.id) "/remove" } {
                                                (csrf_field(context.csrf_token))
                                                button type="submit" class="secondary small" { "Remove from group" span class="visually-hidden" { " @" (entry.username) } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(after) = table.next_after {
                    p { a class="holders-next" href={ "/admin/seats?" (query) (joiner) "after=" (after) } { "Next page" } }
                }
            }
        }
    }
}

fn outcome_text(outcome: SeatOutcome, dry_run: bool) -> &'static str {
    match (outcome, dry_run) {
        (SeatOutcome::Assign, true) => "Gets a seat",
        (SeatOutcome::Assign, false) => "Seat assigned",
        (SeatOutcome::NotFound, _) => "Skipped: no such user",
        (SeatOutcome::NotEligible, _) => "Skipped: not eligible",
        (SeatOutcome::AlreadySeated, _) => "Skipped: already has a seat",
        (SeatOutcome::NotEnoughSeats, _) => "Skipped: not enough seats",
    }
}

fn purchase_select(id: &str, purchases: &[AddOnPurchase], chosen: &str) -> Markup {
    html! {
        select id=(id) name="purchase_id" {
            @for purchase in purchases {
                @let value = purchase.id.to_string();
                @let label = format!(
                    "{} ({}, {} of {} seats used)",
                    product_name(&purchase.add_on_name),
                    purchase.namespace_path.as_deref().unwrap_or("instance"),
                    purchase.assigned_quantity,
                    purchase.quantity
                );
                @if value == chosen {
                    option value=(value) selected { (label) }
                } @else {
                    option value=(value) { (label) }
                }
            }
        }
    }
}

fn bulk_forms(purchases: &[AddOnPurchase], form: &BulkForm, context: &PageContext<'_>) -> Markup {
    html! {
        section class="card" aria-labelledby="bulk-heading" {
            h2 id="bulk-heading" { "GitLab Duo seats in bulk" }
            p class="muted" {
                "Preview first: nothing is written until you confirm. Seats go in the order listed "
                "(a group's members by ID) while they last."
            }
            form class="bulk-assign" method="post" action="/admin/seats/duo/assign" enctype="multipart/form-data" {
                (csrf_field(context.csrf_token))
                label for="bulk-purchase" { "Add-on purchase" }
                (purchase_select("bulk-purchase", purchases, &form.purchase_id))
                label for="bulk-group" { "A group's members (path or ID)" }
                input id="bulk-group" name="group" type="text" autocomplete="off" spellcheck="false" value=(form.group);
                label for="bulk-role" { "From role" }
                select id="bulk-role" name="min_access_level" {
                    @for level in AccessLevel::ALL.into_iter().filter(|level| *level >= AccessLevel::GUEST) {
                        @let number = level.number().to_string();
                        @if form.min_access_level == number {
                            option value=(number) selected { (level.name()) " and up" }
                        } @else {
                            option value=(number) { (level.name()) " and up" }
                        }
                    }
                }
                label for="bulk-entries" { "Or usernames / e-mail addresses (one per line, or a CSV's first column)" }
                textarea id="bulk-entries" name="entries" rows="4" spellcheck="false" { (form.entries) }
                label for="bulk-file" { "Or a CSV file" }
                input id="bulk-file" name="entries_file" type="file" accept=".csv,.txt,text/csv,text/plain";
                button type="submit" class="bulk-preview" { "Preview" }
            }
            h3 { "Reclaim seats from inactive holders" }
            form class="bulk-reclaim" method="post" action="/admin/seats/duo/reclaim" enctype="multipart/form-data" {
                (csrf_field(context.csrf_token))
                label for="reclaim-purchase" { "Add-on purchase" }
                (purchase_select("reclaim-purchase", purchases, &form.purchase_id))
                label for="reclaim-days" { "Not active for at least (days)" }
                input id="reclaim-days" name="inactive_for_days" type="number" min="1" required
                    value=(if form.inactive_for_days.is_empty() { "90" } else { form.inactive_for_days.as_str() });
                button type="submit" class="reclaim-preview" { "Preview" }
            }
        }
    }
}

/// The confirmation form: the same request again, applied.
fn confirm(action: &str, label: String, form: &BulkForm, context: &PageContext<'_>) -> Markup {
    html! {
        form class="bulk-confirm" method="post" action=(action) enctype="multipart/form-data" {
            (csrf_field(context.csrf_token))
            input type="hidden" name="purchase_id" value=(form.purchase_id);
            input type="hidden" name="group" value=(form.group);
            input type="hidden" name="min_access_level" value=(form.min_access_level);
            input type="hidden" name="entries" value=(form.entries);
            input type="hidden" name="inactive_for_days" value=(form.inactive_for_days);
            input type="hidden" name="apply" value="1";
            button type="submit" { (label) }
        }
    }
}

fn bulk_result(result: &BulkResult, form: &BulkForm, context: &PageContext<'_>) -> Markup {
    html! {
        section class="card bulk-result" aria-labelledby="bulk-result-heading" {
            @match result {
                BulkResult::Assign(report) => {
                    h2 id="bulk-result-heading" {
                        @if report.dry_run { "Preview: " } @else { "Done: " }
                        (report.purchase.product) " seats"
                    }
                    p class="bulk-summary" {
                        (report.counts.assign) (if report.dry_run { " would get a seat" } else { " got a seat" })
                        "; skipped: " (report.counts.already_seated) " already seated, "
                        (report.counts.not_eligible) " not eligible, "
                        (report.counts.not_enough_seats) " for lack of seats, "
                        (report.counts.not_found) " not found. "
                        span class="muted" { (report.purchase.assigned_quantity) " of " (report.purchase.purchased_quantity) " seats used." }
                    }
                    @if report.dry_run && report.counts.assign > 0 {
                        (confirm("/admin/seats/duo/assign", format!("Assign {} seats", report.counts.assign), form, context))
                    }
                    div class="table-scroll" tabindex="0" role="region" aria-label="Bulk assignment" {
                        table class="bulk-users" {
                            thead { tr { th scope="col" { "Listed as" } th scope="col" { "User" } th scope="col" { "Outcome" } } }
                            tbody {
                                @for line in &report.users {
                                    tr data-entry=(line.entry) data-outcome=(line.outcome.as_str()) {
                                        td { (line.entry) }
                                        td { @if let Some(username) = &line.username { "@" (username) } }
                                        td { (outcome_text(line.outcome, report.dry_run)) }
                                    }
                                }
                            }
                        }
                    }
                },
                BulkResult::Notice(_) => {},
                BulkResult::Reclaim(report) => {
                    h2 id="bulk-result-heading" {
                        @if report.dry_run { "Preview: " } @else { "Done: " }
                        "reclaim " (report.purchase.product) " seats"
                    }
                    p class="bulk-summary" {
                        @if report.dry_run {
                            (report.users.len()) " seat holders have not been active for " (report.inactive_for_days) " days."
                        } @else {
                            (report.reclaimed) " seats reclaimed."
                        }
                    }
                    @if report.dry_run && !report.users.is_empty() {
                        (confirm("/admin/seats/duo/reclaim", format!("Reclaim {} seats", report.users.len()), form, context))
                    }
                    ul class="reclaim-users" {
                        @for user in &report.users {
                            li data-username=(user.username) {
                                "@" (user.username) " — last active " (user.last_activity_on.as_deref().unwrap_or("never"))
                            }
                        }
                    }
                },
            }
        }
    }
}
