//! The Seats page's HTML: who holds a seat and why (filters, a page of holders, the CSV),
//! with the seat alerts, the license check and GitLab Duo seats in bulk beside it.

use maud::{html, Markup};

use super::views::{flash, layout, seat_alert_banners, PageContext};
use crate::domain::members::AccessLevel;
use crate::domain::seats::SeatHolderEntry;
use crate::services::seat_alerts::SeatUsage;

/// The filters as the form shows them again (text as typed).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct HolderFilters {
    pub group: Option<String>,
    pub access_level: Option<String>,
    pub inactive_for_days: Option<String>,
    pub after: Option<String>,
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

pub fn seats_page(
    filters: &HolderFilters,
    table: Option<&HolderTable>,
    seat_usage: &[SeatUsage],
    context: &PageContext<'_>,
) -> Markup {
    layout(
        "Seats",
        Some((context.user, context.csrf_token)),
        html! {
            h1 { "Seats" }
            (flash(context.flash.as_ref()))
            (seat_alert_banners(seat_usage))
            (holders(filters, table))
        },
    )
}

fn holders(filters: &HolderFilters, table: Option<&HolderTable>) -> Markup {
    let query = filters.query();
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
                                    td { (entry.billable_because) }
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
