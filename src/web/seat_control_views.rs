//! The Seat controls page's HTML: GitLab's admin form for the seat controls (Admin > Settings >
//! General > Sign-up restrictions: Open access, Controlled access with the user cap, Restricted
//! access; "approve the users pending approval" when the cap is raised or removed), who waits
//! for approval, and what the dormant-user job would do next, with its exclusions.

use chrono::DateTime;
use maud::{html, Markup};

use super::views::{csrf_field, flash, layout, plural, PageContext};
use crate::domain::settings::SeatControl;
use crate::domain::text::{number_with_delimiter, titleize};
use crate::services::dormant::{DormantPreview, Exclusions};
use crate::services::settings::SeatControlStatus;

/// Where the page lives.
pub const SEAT_CONTROLS_PATH: &str = "/admin/seat_controls";
/// Where the seat-control form posts.
pub const SEAT_CONTROL_FORM_PATH: &str = "/admin/seat_controls/seat_control";
/// Where the exclusions form posts.
pub const EXCLUSIONS_FORM_PATH: &str = "/admin/seat_controls/dormant_exclusions";

/// The seat-control form's values: the stored ones, or what was posted when it was refused.
#[derive(Debug, Clone)]
pub struct SeatForm {
    /// `None`: nothing (or nothing valid) was chosen.
    pub control: Option<SeatControl>,
    pub cap: String,
    pub approve: bool,
}

impl SeatForm {
    pub fn stored(status: &SeatControlStatus) -> Self {
        Self {
            control: Some(status.settings.seat_control),
            cap: status
                .settings
                .new_user_signups_cap
                .map(|cap| cap.to_string())
                .unwrap_or_default(),
            approve: false,
        }
    }
}

/// The exclusions form's text: the stored lists, or what was posted when it was refused.
#[derive(Debug, Clone, Default)]
pub struct ExclusionsForm {
    pub users: String,
    pub groups: String,
}

impl ExclusionsForm {
    pub fn stored(exclusions: &Exclusions) -> Self {
        Self {
            users: exclusions.users.join(", "),
            groups: exclusions.groups.join(", "),
        }
    }
}

/// Everything the page shows.
pub struct SeatControlsPage<'a> {
    pub status: &'a SeatControlStatus,
    pub form: SeatForm,
    pub dormant: &'a DormantPreview,
    pub exclusions: &'a Exclusions,
    pub exclusions_form: ExclusionsForm,
}

/// How the page names a seat control (GitLab's radio labels, then what they do).
pub fn control_name(control: SeatControl) -> &'static str {
    match control {
        SeatControl::Off => "Off (open access)",
        SeatControl::UserCap => "User cap (controlled access)",
        SeatControl::BlockOverages => "Block seat overages (restricted access)",
    }
}

/// Why the seat controls cannot be set: the license's plan (`None`: no license).
pub fn unlicensed_reason(plan: Option<&str>) -> String {
    match plan {
        None => {
            "Seat controls need a Premium or Ultimate license: no license is active.".to_string()
        }
        Some(plan) => format!(
            "Seat controls need a Premium or Ultimate license: the current license is {}.",
            titleize(plan)
        ),
    }
}

pub fn seat_controls_page(page: &SeatControlsPage<'_>, context: &PageContext<'_>) -> Markup {
    layout(
        "Seat controls",
        Some((context.user, context.csrf_token)),
        html! {
            h1 { "Seat controls" }
            (flash(context.flash.as_ref()))
            @if !context.can_write {
                p class="flash info" role="status" {
                    "Your token has read-only access: sign in with an " code { "api" }
                    " token to change the seat controls or the exclusions."
                }
            }
            (seat_control_card(page, context))
            (pending_card(page.status))
            (dormant_card(page.dormant))
            (exclusions_card(page, context))
        },
    )
}

fn seat_control_card(page: &SeatControlsPage<'_>, context: &PageContext<'_>) -> Markup {
    let status = page.status;
    let settings = &status.settings;
    let stored = settings.seat_control;
    let chosen = page.form.control;
    let writable = context.can_write;
    // Unlicensed, only "Off" may be chosen (the service refuses the others, as the API does).
    let closed = !status.licensed;
    html! {
        section class="card" aria-labelledby="seat-control-heading" id="seat-control" {
            h2 id="seat-control-heading" { "Seat control" }
            @if !status.licensed {
                p class="banner warning" id="seat-controls-unlicensed" role="alert" {
                    strong { (unlicensed_reason(status.plan.as_deref())) }
                    @if stored != SeatControl::Off {
                        " The setting is kept (" (control_name(stored)) ") but does not act until "
                        "such a license is current; it can still be turned off."
                    }
                }
            }
            dl class="figures" {
                div class="wide" { dt { "Now" } dd id="seat-control-now" { (control_name(stored)) } }
                div { dt { "User cap" } dd id="user-cap-now" {
                    @match settings.new_user_signups_cap.filter(|_| stored == SeatControl::UserCap) {
                        Some(cap) => (number_with_delimiter(cap)),
                        None => span class="muted" { "none" },
                    }
                } }
                div { dt { "Billable users" } dd id="billable-users" {
                    (number_with_delimiter(status.billable_users))
                    @if let Some(seats) = status.seats {
                        br; span class="muted" { "of " (number_with_delimiter(seats)) " "
                            (plural(seats, "seat", "seats")) " in the license" }
                    }
                } }
                div { dt { "Pending approval" } dd id="pending-approval-count" {
                    (pending_count(status.pending_approval))
                } }
            }
            form class="seat-control-form" method="post" action=(SEAT_CONTROL_FORM_PATH) {
                (csrf_field(context.csrf_token))
                fieldset disabled[!writable] {
                    legend { "Seat control" }
                    (radio(SeatControl::Off, chosen, false, "seat-control-off", "Open access",
                        "Off: users are added without a limit; seats used beyond the license are a true-up."))
                    (radio(SeatControl::UserCap, chosen, closed, "seat-control-user-cap", "Controlled access (user cap)",
                        "Once there are as many billable users as the cap, new users wait for an administrator's approval."))
                    div class="cap-field" {
                        label for="new-user-signups-cap" { "User cap" }
                        input id="new-user-signups-cap" name="new_user_signups_cap" type="number"
                            min="1" step="1" inputmode="numeric" value=(page.form.cap)
                            disabled[closed] aria-describedby="new-user-signups-cap-help";
                        p id="new-user-signups-cap-help" class="muted" {
                            "Used with Controlled access only; with the other choices it is cleared."
                        }
                    }
                    (radio(SeatControl::BlockOverages, chosen, closed, "seat-control-block-overages", "Restricted access (block seat overages)",
                        "With every licensed seat taken, no new billable user can be added."))
                    div class="checkbox" {
                        input id="auto-approve-pending-users" name="auto_approve_pending_users"
                            type="checkbox" value="true" checked[page.form.approve];
                        label for="auto-approve-pending-users" {
                            "Approve the users pending approval if this raises or removes the user cap"
                            @if status.pending_approval > 0 { " (" (pending_count(status.pending_approval)) ")" }
                        }
                    }
                    div class="form-actions" {
                        button type="submit" { "Save changes" }
                    }
                }
            }
        }
    }
}

fn radio(
    control: SeatControl,
    chosen: Option<SeatControl>,
    disabled: bool,
    id: &str,
    label: &str,
    help: &str,
) -> Markup {
    let help_id = format!("{id}-help");
    html! {
        div class="radio" {
            input id=(id) name="seat_control" type="radio" value=(control.as_str())
                checked[chosen == Some(control)] disabled[disabled] aria-describedby=(help_id);
            label for=(id) { (label) }
            p id=(help_id) class="muted" { (help) }
        }
    }
}

fn pending_count(count: i64) -> String {
    if count > crate::store::COUNT_CAP {
        format!(
            "more than {}",
            number_with_delimiter(crate::store::COUNT_CAP)
        )
    } else {
        number_with_delimiter(count)
    }
}

fn pending_card(status: &SeatControlStatus) -> Markup {
    let named = i64::try_from(status.pending_users.len()).unwrap_or(i64::MAX);
    html! {
        section class="card" aria-labelledby="pending-heading" id="pending" {
            h2 id="pending-heading" { "Users pending approval" }
            @if status.pending_approval == 0 {
                p class="pending-none" { "Nobody is waiting for approval." }
            } @else {
                p class="pending-summary" {
                    strong { (pending_count(status.pending_approval)) }
                    " " (plural(status.pending_approval, "user is", "users are")) " waiting for approval "
                    "(they hold no seat): "
                    span class="pending-usernames" {
                        (status.pending_users.iter().map(|user| format!("@{}", user.username)).collect::<Vec<_>>().join(", "))
                    }
                    @if status.pending_approval > named { " and " (pending_count(status.pending_approval - named)) " more" }
                    "."
                }
                p class="muted" {
                    "Approve or reject each one with " code { "POST /api/v4/users/:id/approve" } " or "
                    code { "/reject" } ", or all at once by raising or removing the user cap above with "
                    "the approval box ticked."
                }
            }
        }
    }
}

/// A stored time as a reader takes it in: `2026-06-16 00:21 UTC` (the text itself if it does
/// not read as a time).
fn moment(text: &str) -> Markup {
    let shown = DateTime::parse_from_rfc3339(text)
        .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| text.to_string());
    html! { time datetime=(text) { (shown) } }
}

fn capped(count: i64, capped: bool) -> String {
    if capped {
        format!("more than {}", number_with_delimiter(count))
    } else {
        number_with_delimiter(count)
    }
}

fn dormant_card(preview: &DormantPreview) -> Markup {
    let listed = i64::try_from(preview.users.len()).unwrap_or(i64::MAX);
    html! {
        section class="card" aria-labelledby="dormant-heading" id="dormant" {
            h2 id="dormant-heading" { "Dormant users" }
            p class="muted" {
                "GitLab's job deactivates active users and service users inactive for the period "
                "(and those never active, created at least 7 days ago), never bots, at most "
                (number_with_delimiter(preview.per_run)) " a run, ten runs a day (" code { "21,42 0-4 * * *" }
                " UTC). This is who it would take now; nothing here changes anyone."
            }
            dl class="figures" {
                div { dt { "Deactivation" } dd id="dormant-enabled" {
                    @if preview.enabled { "On" } @else { "Off" }
                } }
                div { dt { "Period" } dd id="dormant-period" {
                    (number_with_delimiter(preview.period_days)) " " (plural(preview.period_days, "day", "days"))
                } }
                div { dt { "Next run" } dd id="dormant-next-run" { (moment(&preview.next_run_at)) } }
                div { dt { "Would deactivate" } dd id="dormant-count" {
                    (capped(preview.dormant_users, preview.counts_capped))
                } }
                div { dt { "Seats freed" } dd id="dormant-seats-freed" {
                    (capped(preview.seats_freed, preview.counts_capped))
                } }
            }
            @if !preview.enabled {
                p class="banner warning" id="dormant-off" role="status" {
                    "The job is off: nobody is deactivated until " code { "deactivate_dormant_users" }
                    " is turned on (" code { "PUT /api/v4/application/settings" } "). The figures say "
                    "what it would do."
                }
            }
            @if preview.users.is_empty() {
                p class="dormant-none" { "Nobody is dormant." }
            } @else {
                div class="table-scroll" tabindex="0" role="region" aria-label="Dormant users" {
                    table class="dormant-users" {
                        caption class="visually-hidden" { "The users the next run would deactivate, in the order it takes them" }
                        thead { tr {
                            th scope="col" { "Username" }
                            th scope="col" { "Name" }
                            th scope="col" { "Last activity" }
                            th scope="col" { "Created" }
                        } }
                        tbody {
                            @for user in &preview.users {
                                tr data-username=(user.username) {
                                    td class="wrap" { "@" (user.username) }
                                    td class="wrap" { (user.name) }
                                    td { @match &user.last_activity_on {
                                        Some(day) => (day),
                                        None => span class="muted" { "never" },
                                    } }
                                    td { (user.created_at.get(..10).unwrap_or(&user.created_at)) }
                                }
                            }
                        }
                    }
                }
                @if preview.dormant_users > listed {
                    p class="muted dormant-more" {
                        "Showing the first " (listed) " of " (capped(preview.dormant_users, preview.counts_capped))
                        ", in the order the job takes them."
                    }
                }
            }
        }
    }
}

fn name_list(names: &[String], prefix: &str) -> Markup {
    html! {
        @if names.is_empty() {
            span class="muted" { "none" }
        } @else {
            (names.iter().map(|name| format!("{prefix}{name}")).collect::<Vec<_>>().join(", "))
        }
    }
}

fn exclusions_card(page: &SeatControlsPage<'_>, context: &PageContext<'_>) -> Markup {
    html! {
        section class="card" aria-labelledby="exclusions-heading" id="exclusions" {
            h2 id="exclusions-heading" { "Never deactivated" }
            p class="muted" {
                "Users, and the members of groups, that the dormant-user job never deactivates."
            }
            dl class="figures" {
                div class="wide" { dt { "Users" } dd id="excluded-users" { (name_list(&page.exclusions.users, "@")) } }
                div class="wide" { dt { "Groups" } dd id="excluded-groups" { (name_list(&page.exclusions.groups, "")) } }
            }
            @if context.can_write {
                form class="exclusions-form" method="post" action=(EXCLUSIONS_FORM_PATH) {
                    (csrf_field(context.csrf_token))
                    label for="excluded-users-field" { "Users (usernames or IDs)" }
                    input id="excluded-users-field" name="users" type="text" autocomplete="off"
                        spellcheck="false" value=(page.exclusions_form.users)
                        aria-describedby="exclusions-help";
                    label for="excluded-groups-field" { "Groups (paths or IDs)" }
                    input id="excluded-groups-field" name="groups" type="text" autocomplete="off"
                        spellcheck="false" value=(page.exclusions_form.groups)
                        aria-describedby="exclusions-help";
                    p id="exclusions-help" class="muted" {
                        "Separated by spaces or commas. Saving replaces the lists; a name that "
                        "matches nothing changes nothing."
                    }
                    div class="form-actions" {
                        button type="submit" { "Save exclusions" }
                    }
                }
            }
        }
    }
}
