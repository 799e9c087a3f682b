//! The Fleet page's HTML: unique billable people across the watched GitLab instances, the
//! largest instance and whether the others are subsets of it, each instance and its last
//! sync, the overlap of each pair, the people outside the largest instance, and the forms to
//! add, sync, remove and import instances. A token is never written into the page.

use maud::{html, Markup};

use super::views::{csrf_field, flash, layout, PageContext};
use crate::services::fleet::{FleetSummary, InstanceEntity, PeoplePage};

/// Where the page lives.
pub const FLEET_PATH: &str = "/admin/fleet";

/// What the add form shows again after a refusal: never the token.
#[derive(Debug, Clone, Default)]
pub struct AddForm {
    pub name: String,
    pub url: String,
}

/// What the import form shows again after a refusal (the text box, not a chosen file).
#[derive(Debug, Clone, Default)]
pub struct ImportForm {
    pub name: String,
    pub data: String,
}

/// Everything the page shows.
pub struct FleetPage<'a> {
    pub summary: &'a FleetSummary,
    pub instances: &'a [InstanceEntity],
    /// The people outside the largest instance, one page of them.
    pub outside: &'a PeoplePage,
    /// The page's start (a person key), when it is not the first.
    pub after: Option<&'a str>,
    pub add_form: AddForm,
    pub import_form: ImportForm,
}

fn plural(count: i64, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 {
        one
    } else {
        many
    }
}

fn or_dash(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "—".to_string(), |value| value.to_string())
}

/// A page link with `after` as its start, the value escaped for a query string.
pub fn after_link(path: &str, after: &str) -> String {
    format!(
        "{path}?{}",
        serde_urlencoded::to_string([("after", after)]).unwrap_or_default()
    )
}

pub fn fleet_page(page: &FleetPage<'_>, context: &PageContext<'_>) -> Markup {
    layout(
        "Fleet",
        Some((context.user, context.csrf_token)),
        html! {
            h1 { "Fleet" }
            (flash(context.flash.as_ref()))
            @if !context.can_write {
                p class="flash info" role="status" {
                    "Your token has read-only access: sign in with an " code { "api" }
                    " token to add, sync or remove instances."
                }
            }
            (figures(page.summary))
            (instances_table(page.instances, context))
            (overlaps(page.summary))
            (outside_people(page))
            @if context.can_write {
                (add_form(&page.add_form, context))
                (import_form(&page.import_form, context))
            }
        },
    )
}

/// The subset assumption as a sentence, and whether it holds.
fn subset_sentence(summary: &FleetSummary) -> (bool, String) {
    match &summary.largest_instance {
        None => (
            true,
            "No instance has been synced or imported yet: sync one to see its people.".into(),
        ),
        Some(largest) if summary.subset_holds => (
            true,
            format!("Every billable person is billable on {largest}, the largest instance."),
        ),
        Some(largest) => {
            let outside = summary.people_outside_largest;
            (
                false,
                format!(
                    "{outside} billable {} not billable on the largest instance ({largest}) — \
                     GitLab bills from the largest instance assuming the others are subsets.",
                    plural(outside, "person is", "people are")
                ),
            )
        }
    }
}

fn figures(summary: &FleetSummary) -> Markup {
    let (holds, sentence) = subset_sentence(summary);
    html! {
        section class="card" aria-labelledby="fleet-heading" {
            h2 id="fleet-heading" { "Billable people across the fleet" }
            dl class="figures" {
                div class="wide" {
                    dt { "Unique billable people" }
                    dd class="big-number" id="unique-billable" { (summary.unique_billable_users) }
                }
                div { dt { "Largest instance" } dd id="largest-instance" { (or_dash(summary.largest_instance.as_deref())) } }
                div { dt { "Billable accounts, summed" } dd id="billable-accounts" { (summary.billable_accounts) } }
                div { dt { "People with an account" } dd id="people" { (summary.people) } }
                div { dt { "Outside the largest" } dd id="people-outside" class=(if holds { "" } else { "over" }) { (summary.people_outside_largest) } }
            }
            p class=(if holds { "verdict within" } else { "verdict over" }) id="subset-verdict" { (sentence) }
            p class="muted" {
                "Accounts are matched to one person by a shared identity, then by e-mail address. "
                @match &summary.computed_at {
                    Some(at) => { "Computed " (moment(at)) "." },
                    None => "Nothing computed yet.",
                }
            }
        }
    }
}

/// A stored time (`2026-06-15T10:30:00.000Z`) as a reader takes it in: `2026-06-15 10:30 UTC`.
fn moment(at: &str) -> Markup {
    let short = match (at.get(..10), at.get(11..16)) {
        (Some(day), Some(minute)) if at.get(10..11) == Some("T") => format!("{day} {minute} UTC"),
        _ => at.to_string(),
    };
    html! { time class="muted" datetime=(at) { (short) } }
}

fn sync_cell(instance: &InstanceEntity) -> Markup {
    let sync = &instance.last_sync;
    html! {
        span class={ "status " (sync.status) } { (sync.status) }
        @if let Some(at) = &sync.finished_at {
            br; (moment(at))
        }
        @if let Some(error) = &sync.error {
            br; span class="sync-error" { (error) }
        }
    }
}

fn instances_table(instances: &[InstanceEntity], context: &PageContext<'_>) -> Markup {
    html! {
        section class="card" aria-labelledby="instances-heading" {
            h2 id="instances-heading" { "Instances" }
            @if instances.is_empty() {
                p { "No instances yet. Add one below, or import an offline instance's files." }
            } @else {
                div class="table-scroll" tabindex="0" role="region" aria-label="Instances" {
                    table class="instances" {
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "URL" }
                            th scope="col" { "GitLab" } th scope="col" { "License" }
                            th scope="col" class="number" { "Users" }
                            th scope="col" class="number" { "Billable" }
                            th scope="col" { "Billability from" } th scope="col" { "Last sync" }
                            th scope="col" { span class="visually-hidden" { "Actions" } }
                        } }
                        tbody {
                            @for instance in instances {
                                @let license = instance.license.as_ref();
                                tr data-instance=(instance.name) data-status=(instance.last_sync.status) {
                                    th scope="row" { (instance.name) }
                                    td class="url" { @match &instance.url { Some(url) => (url), None => span class="muted" { "offline" } } }
                                    td { (or_dash(instance.gitlab_version.as_deref())) }
                                    td class="license" {
                                        @match license {
                                            Some(license) => {
                                                (or_dash(license.plan.as_deref()))
                                                @match license.seats { Some(seats) => { ", " (seats) " seats" }, None => ", no seat limit" }
                                                @if let Some(day) = &license.expires_at { br; span class="muted" { "expires " (day) } }
                                            },
                                            None => span class="muted" { "none reported" },
                                        }
                                    }
                                    td class="number users" { (or_dash(instance.users)) }
                                    td class="number billable" { (or_dash(instance.billable_users)) }
                                    td { (or_dash(instance.billability_source.as_deref())) }
                                    td class="wrap last-sync" { (sync_cell(instance)) }
                                    td { @if context.can_write { (instance_actions(instance, context)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn instance_actions(instance: &InstanceEntity, context: &PageContext<'_>) -> Markup {
    let action = |verb: &str| format!("{FLEET_PATH}/instances/{}/{verb}", instance.id);
    html! {
        div class="actions" {
            @if !instance.offline {
                form class="sync" method="post" action=(action("sync")) {
                    (csrf_field(context.csrf_token))
                    button type="submit" class="secondary small" {
                        "Sync now" span class="visually-hidden" { " " (instance.name) }
                    }
                }
            }
            details class="confirm" {
                summary { "Remove" span class="visually-hidden" { " " (instance.name) } }
                form class="remove" method="post" action=(action("remove")) {
                    (csrf_field(context.csrf_token))
                    button type="submit" class="danger small" { "Remove " (instance.name) " and its users" }
                }
            }
        }
    }
}

fn overlaps(summary: &FleetSummary) -> Markup {
    html! {
        section class="card" aria-labelledby="overlaps-heading" {
            h2 id="overlaps-heading" { "Overlap between instances" }
            @if summary.overlaps.is_empty() {
                p class="muted" { "No two instances share a billable person." }
            } @else {
                div class="table-scroll" tabindex="0" role="region" aria-label="Overlap between instances" {
                    table class="overlaps" {
                        thead { tr {
                            th scope="col" { "Instances" }
                            th scope="col" class="number" { "Shared billable people" }
                        } }
                        tbody {
                            @for overlap in &summary.overlaps {
                                tr data-pair=(overlap.instances.join("+")) {
                                    td { (overlap.instances[0]) " and " (overlap.instances[1]) }
                                    td class="number" { (overlap.shared_billable_people) }
                                }
                            }
                        }
                    }
                }
                p class="muted" { "Pairs that share nobody are left out." }
            }
        }
    }
}

fn outside_people(page: &FleetPage<'_>) -> Markup {
    let people = &page.outside.people;
    html! {
        section class="card" aria-labelledby="outside-heading" id="outside" {
            h2 id="outside-heading" { "People outside the largest instance" }
            p class="muted" {
                "Billable somewhere, but absent from or not billable on the largest instance. "
                a class="outside-csv" href={ (FLEET_PATH) "/people.csv?outside_largest=true" } { "Download CSV" }
                " · "
                a class="people-csv" href={ (FLEET_PATH) "/people.csv" } { "Everyone as CSV" }
            }
            @if people.is_empty() {
                p class="outside-none" {
                    @if page.after.is_some() { "No more people." } @else { "Nobody." }
                }
            } @else {
                div class="table-scroll" tabindex="0" role="region" aria-label="People outside the largest instance" {
                    table class="outside-people" {
                        thead { tr {
                            th scope="col" { "Person" } th scope="col" { "Username" }
                            th scope="col" { "Name" } th scope="col" { "Billable on" }
                            th scope="col" { "Has an account on" }
                        } }
                        tbody {
                            @for person in people {
                                @let first = person.accounts.first();
                                tr data-person=(person.person) {
                                    td { (person.person) }
                                    td { @if let Some(account) = first { "@" (account.username) } }
                                    td { @if let Some(account) = first { (account.name) } }
                                    td class="billable-on" { (person.billable_on.join(", ")) }
                                    td { (person.present_on.join(", ")) }
                                }
                            }
                        }
                    }
                }
            }
            @if page.after.is_some() || page.outside.next_after.is_some() {
                p class="actions" {
                    @if page.after.is_some() { a class="people-first" href={ (FLEET_PATH) "#outside" } { "First page" } }
                    @if let Some(next) = &page.outside.next_after {
                        a class="people-next" href={ (after_link(FLEET_PATH, next)) "#outside" } { "Next page" }
                    }
                }
            }
        }
    }
}

fn add_form(form: &AddForm, context: &PageContext<'_>) -> Markup {
    html! {
        section class="card" aria-labelledby="add-heading" {
            h2 id="add-heading" { "Add an instance" }
            p class="muted" {
                "Its users and license are read through GitLab's REST API with an administrator's "
                "personal access token (" code { "read_api" } " is enough). The token is stored "
                "encrypted and never shown again. Instances are synced hourly; " em { "Sync now" }
                " reads one at once."
            }
            form class="add-instance" method="post" action={ (FLEET_PATH) "/instances" } {
                (csrf_field(context.csrf_token))
                label for="instance-name" { "Name" }
                input id="instance-name" name="name" type="text" required maxlength="100"
                    autocomplete="off" spellcheck="false" aria-describedby="instance-name-help"
                    value=(form.name);
                p id="instance-name-help" class="muted" { "Letters, digits, '.', '_' or '-', e.g. prod." }
                label for="instance-url" { "URL" }
                input id="instance-url" name="url" type="text" inputmode="url" required
                    autocomplete="off" spellcheck="false" placeholder="https://gitlab.example.com"
                    value=(form.url);
                label for="instance-token" { "Personal access token" }
                // Never given a value: a token typed in is not written back into the page.
                input id="instance-token" name="token" type="password" required
                    autocomplete="new-password" spellcheck="false";
                div class="actions form-actions" { button type="submit" { "Add instance" } }
            }
        }
    }
}

fn import_form(form: &ImportForm, context: &PageContext<'_>) -> Markup {
    html! {
        section class="card" aria-labelledby="import-heading" {
            h2 id="import-heading" { "Import an offline instance" }
            p class="muted" {
                "For an instance this server cannot reach: save what " code { "GET /api/v4/users" }
                " (as an administrator, every page) and " code { "GET /api/v4/license" }
                " return, concatenated or one JSON document per line. A new name creates the "
                "instance; importing again replaces its users. Up to 1 MiB here; "
                code { "gitlab-license-server fleet import NAME FILE" } " takes any size."
            }
            form class="import" method="post" action={ (FLEET_PATH) "/imports" } enctype="multipart/form-data" {
                (csrf_field(context.csrf_token))
                label for="import-name" { "Name" }
                input id="import-name" name="name" type="text" required maxlength="100"
                    autocomplete="off" spellcheck="false" value=(form.name);
                label for="import-data" { "Exported JSON" }
                textarea id="import-data" name="data" rows="6" spellcheck="false" { (form.data) }
                label for="import-file" { "Or a file" }
                input id="import-file" name="data_file" type="file" accept=".json,.jsonl,.txt,application/json,text/plain";
                div class="actions form-actions" { button type="submit" { "Import" } }
            }
        }
    }
}
