//! The SCIM page's HTML: the endpoint an identity provider calls, the instance SCIM token
//! (generated once, then only reset, as GitLab's Admin > Settings > General > SCIM token; its
//! value shown only in the answer that made it), how Okta and Microsoft Entra ID take them,
//! and the SCIM groups with the GitLab Duo purchase each one's members hold seats of.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::views::{csrf_field, flash, layout, PageContext};
use crate::domain::add_ons::product_name;
use crate::domain::licenses::timestamp_text;
use crate::services::scim::GroupSeats;
use crate::store::AddOnPurchase;

/// Where the page lives.
pub const SCIM_PATH: &str = "/admin/scim";

pub use crate::domain::scim::API_PATH as SCIM_API_PATH;

/// The members without a seat named in a group's row; the rest are counted.
const WITHOUT_SEAT_NAMED: usize = 10;

/// Everything the page shows.
pub struct ScimPage<'a> {
    /// What identity providers call the base URL or tenant URL.
    pub endpoint: &'a str,
    /// When the instance SCIM token was made, if there is one.
    pub token_created_at: Option<DateTime<Utc>>,
    /// A token made by this very request: the one time its value is on a page.
    pub new_token: Option<&'a str>,
    pub groups: &'a [GroupSeats],
    /// The active GitLab Duo purchases a group may be linked to.
    pub purchases: &'a [AddOnPurchase],
}

pub fn scim_page(page: &ScimPage<'_>, context: &PageContext<'_>) -> Markup {
    layout(
        "SCIM",
        Some((context.user, context.csrf_token)),
        html! {
            h1 { "SCIM" }
            (flash(context.flash.as_ref()))
            @if !context.can_write {
                p class="flash info" role="status" {
                    "Your token has read-only access: sign in with an " code { "api" }
                    " token to generate the SCIM token or link groups."
                }
            }
            (token_card(page, context))
            (setup_hint())
            (groups_card(page, context))
        },
    )
}

/// A stored time as a reader takes it in: `2026-06-15 10:30 UTC`.
fn moment(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(timestamp_text(at)) { (at.format("%Y-%m-%d %H:%M UTC")) } }
}

fn token_card(page: &ScimPage<'_>, context: &PageContext<'_>) -> Markup {
    html! {
        section class="card" aria-labelledby="token-heading" {
            h2 id="token-heading" { "SCIM API and token" }
            dl class="figures" {
                div class="wide" {
                    dt { "SCIM API endpoint URL" }
                    dd { code id="scim-endpoint" { (page.endpoint) } }
                }
                div class="wide" {
                    dt { "SCIM token" }
                    dd id="scim-token-state" {
                        @match page.token_created_at {
                            Some(at) => { "Created " (moment(at)) },
                            None => "None yet",
                        }
                    }
                }
            }
            @if let Some(token) = page.new_token {
                div class="banner warning new-token" role="alert" {
                    p { strong { "Copy the token now: it will not be shown again." }
                        " Only its digest is kept; if it is lost, reset it." }
                    p { code id="scim-token" { (token) } }
                }
            }
            @if context.can_write {
                @if page.token_created_at.is_none() {
                    form class="generate-token" method="post" action={ (SCIM_PATH) "/token" } {
                        (csrf_field(context.csrf_token))
                        button type="submit" { "Generate a SCIM token" }
                    }
                } @else {
                    details class="confirm" {
                        summary { "Reset the SCIM token" }
                        form class="reset-token" method="post" action={ (SCIM_PATH) "/token/reset" } {
                            (csrf_field(context.csrf_token))
                            p class="muted" {
                                "The current token stops working at once: give the new one to "
                                "your identity provider."
                            }
                            button type="submit" class="danger" { "Reset the token" }
                        }
                    }
                }
            }
        }
    }
}

fn setup_hint() -> Markup {
    html! {
        section class="card" aria-labelledby="setup-heading" {
            h2 id="setup-heading" { "Set up Okta / Microsoft Entra ID" }
            p id="scim-setup" {
                "In Okta's GitLab application (Provisioning → Configure API Integration), "
                strong { "Base URL" } " is the endpoint URL above and " strong { "API Token" }
                " the SCIM token; in Microsoft Entra ID (Enterprise application → Provisioning), "
                strong { "Tenant URL" } " and " strong { "Secret Token" } " take the same two. "
                "The SCIM API answers with a Premium or Ultimate license; "
                code { "docs/scim.md" } " has the attribute mappings."
            }
        }
    }
}

/// A purchase as the page names it: product, owner and seats used.
fn purchase_label(purchase: &AddOnPurchase) -> String {
    format!(
        "{} ({}, {} of {} seats used)",
        product_name(&purchase.add_on_name),
        purchase.namespace_path.as_deref().unwrap_or("instance"),
        purchase.assigned_quantity,
        purchase.quantity
    )
}

fn groups_card(page: &ScimPage<'_>, context: &PageContext<'_>) -> Markup {
    html! {
        section class="card" aria-labelledby="groups-heading" id="groups" {
            h2 id="groups-heading" { "SCIM groups and GitLab Duo seats" }
            p class="muted" {
                "Groups pushed by the identity provider. Linked to a GitLab Duo purchase, a "
                "group's members hold its seats while seats last, and lose them when they leave "
                "the group or are deprovisioned; unlinking frees the seats the group gave."
            }
            @if page.groups.is_empty() {
                p class="groups-none" { "No SCIM groups yet: the identity provider pushes them." }
            } @else {
                div class="table-scroll" tabindex="0" role="region" aria-label="SCIM groups" {
                    table class="scim-groups" {
                        thead { tr {
                            th scope="col" { "Group" }
                            th scope="col" class="number" { "Members" }
                            th scope="col" { "Seats from" }
                            th scope="col" { "Members without a seat" }
                            @if context.can_write { th scope="col" { "Link" } }
                        } }
                        tbody {
                            @for (index, group) in page.groups.iter().enumerate() {
                                tr data-group=(group.id) {
                                    td class="wrap group-name" { (group.display_name) }
                                    td class="number members" { (group.members) }
                                    td class="wrap linked-purchase" { (linked_purchase(group, page.purchases)) }
                                    td class="wrap without-seat" { (without_seat(group)) }
                                    @if context.can_write {
                                        td class="wrap" { (link_form(index, group, page.purchases, context)) }
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

fn linked_purchase(group: &GroupSeats, purchases: &[AddOnPurchase]) -> Markup {
    html! {
        @match group.add_on_purchase_id {
            None => span class="muted" { "not linked" },
            Some(id) => @match purchases.iter().find(|purchase| purchase.id == id) {
                Some(purchase) => (purchase_label(purchase)),
                // Expired, or no longer a Duo purchase: the link stays until it is changed.
                None => { "add-on purchase " (id) " " span class="muted" { "(not active)" } },
            },
        }
    }
}

fn without_seat(group: &GroupSeats) -> Markup {
    let named = group
        .without_seat_usernames
        .iter()
        .take(WITHOUT_SEAT_NAMED)
        .map(|username| format!("@{username}"))
        .collect::<Vec<_>>();
    let unnamed = group.without_seat - i64::try_from(named.len()).unwrap_or(i64::MAX);
    html! {
        @if group.without_seat == 0 {
            span class="muted" { "none" }
        } @else {
            strong class="without-seat-count" { (group.without_seat) }
            ": " span class="without-seat-usernames" { (named.join(", ")) }
            @if unnamed > 0 { " and " (unnamed) " more" }
        }
    }
}

/// Link the group to a purchase (or to another one), or unlink it.
fn link_form(
    index: usize,
    group: &GroupSeats,
    purchases: &[AddOnPurchase],
    context: &PageContext<'_>,
) -> Markup {
    let action = |verb: &str| format!("{SCIM_PATH}/groups/{}/{verb}", group.id);
    let select_id = format!("group-purchase-{index}");
    html! {
        @if purchases.is_empty() && group.add_on_purchase_id.is_none() {
            span class="muted" { "No active GitLab Duo purchase." }
        } @else {
            form class="link-group" method="post" action=(action("link")) {
                (csrf_field(context.csrf_token))
                @if !purchases.is_empty() {
                    label for=(select_id) class="visually-hidden" {
                        "GitLab Duo purchase for " (group.display_name)
                    }
                    select id=(select_id) name="add_on_purchase_id" {
                        @for purchase in purchases {
                            option value=(purchase.id) selected[group.add_on_purchase_id == Some(purchase.id)] {
                                (purchase_label(purchase))
                            }
                        }
                    }
                }
                div class="actions form-actions" {
                    @if !purchases.is_empty() {
                        button type="submit" class="small" {
                            "Link" span class="visually-hidden" { " " (group.display_name) }
                        }
                    }
                    @if group.add_on_purchase_id.is_some() {
                        button type="submit" class="secondary small unlink" formaction=(action("unlink")) {
                            "Unlink" span class="visually-hidden" { " " (group.display_name) }
                        }
                    }
                }
            }
        }
    }
}
