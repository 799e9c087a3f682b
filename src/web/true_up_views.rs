//! The true-up on the page (docs/true-up.md): the forecast card and the what-if preview on
//! the subscription page, and the peak's explanation on its own page.

use maud::{html, Markup};

use super::chart::PEAK_PATH;
use super::views::{layout, plural};
use crate::domain::true_up::Forecast;
use crate::services::true_up::{PeakExplanation, WhatIf};
use crate::store::User;

/// What the what-if form was given (kept as typed, to show it again).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct WhatIfForm {
    #[serde(default)]
    pub usernames: String,
    #[serde(default)]
    pub inactive_for_days: String,
    /// A price per seat for this preview and the forecast beside it (else the configured one).
    #[serde(default)]
    pub price_per_seat: String,
    #[serde(default)]
    pub currency: String,
}

impl WhatIfForm {
    /// Whether the form names nobody (a price alone only prices the forecast).
    pub fn is_empty(&self) -> bool {
        self.usernames.trim().is_empty() && self.inactive_for_days.trim().is_empty()
    }
}

/// What a projection's basis is called on the page.
fn basis_label(basis: &str) -> &'static str {
    match basis {
        "current_count" => "At today's count",
        "trend_30_days" => "At the last 30 days' trend",
        "trend_90_days" => "At the last 90 days' trend",
        _ => "Projection",
    }
}

/// A fraction of the term as a percentage: `75 %`.
fn percent(fraction: f64) -> String {
    format!("{:.0} %", fraction * 100.0)
}

/// An amount with thousands separators and cents: `8,700.00 USD`.
pub fn money_text(amount: f64, currency: Option<&str>) -> String {
    let cents = (amount * 100.0).round() as i64;
    let (whole, fraction) = (cents.abs() / 100, cents.abs() % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if cents < 0 { "-" } else { "" };
    match currency {
        Some(currency) => format!("{sign}{grouped}.{fraction:02} {currency}"),
        None => format!("{sign}{grouped}.{fraction:02}"),
    }
}

/// The forecast card, or a sentence when there is no true-up to forecast.
pub fn forecast_card(forecast: Result<&Forecast, &str>) -> Markup {
    html! {
        section class="card true-up" aria-labelledby="forecast-heading" id="forecast" {
            h2 id="forecast-heading" { "True-up forecast" }
            @match forecast {
                Err(sentence) => p class="muted forecast-none" { (sentence) },
                Ok(forecast) => {
                    dl class="figures forecast-figures" {
                        div { dt { "Users over license so far" }
                            dd id="forecast-so-far" class=(if forecast.overage_so_far > 0 { "over" } else { "" }) {
                                (forecast.overage_so_far)
                                br; span class="muted" { "peak " (forecast.historical_max) " for " (forecast.seats) " seats" }
                            } }
                        div { dt { "Over license today (GET /license's overage)" }
                            dd id="forecast-today" { (forecast.overage_today)
                                br; span class="muted" { (forecast.billable_today) " billable today" }
                            } }
                        div { dt { "Projected overage at renewal" }
                            dd id="forecast-projected" class=(if forecast.projected_overage > 0 { "over" } else { "" }) {
                                (forecast.projected_overage)
                                br; span class="muted" { "on " (forecast.expires_on) }
                            } }
                        @if let Some(amount) = forecast.amount {
                            div { dt { "Amount at renewal" }
                                dd id="forecast-amount" { (money_text(amount, forecast.currency.as_deref())) } }
                        }
                    }
                    p class="forecast-explanation" { (forecast.explanation) }
                    @if forecast.amount.is_none() {
                        p class="muted" { "Set " code { "TRUE_UP_PRICE_PER_SEAT" } ", or give a price in the what-if form below, to see the amounts." }
                    }
                    h3 { "Projections to " (forecast.expires_on) }
                    div class="table-scroll" tabindex="0" role="region" aria-label="Projections" {
                        table class="forecast-projections" {
                            thead { tr {
                                th scope="col" { "Basis" }
                                th scope="col" class="number" { "Users a day" }
                                th scope="col" class="number" { "Count at the end" }
                                th scope="col" class="number" { "Peak" }
                                th scope="col" class="number" { "Over" }
                                @if forecast.amount.is_some() { th scope="col" class="number" { "Amount" } }
                            } }
                            tbody {
                                @for projection in &forecast.projections {
                                    tr data-basis=(projection.basis) {
                                        th scope="row" { (basis_label(projection.basis)) }
                                        td class="number" { (format!("{:+.2}", projection.users_per_day)) }
                                        td class="number" { (projection.projected_count_at_end) }
                                        td class="number" { (projection.projected_peak) }
                                        td class="number" { (projection.projected_overage) }
                                        @if let Some(amount) = projection.amount {
                                            td class="number" { (money_text(amount, forecast.currency.as_deref())) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    h3 { "Quarterly reconciliation" }
                    @if forecast.quarters.is_empty() {
                        p class="muted" { "The term has not begun." }
                    } @else {
                        div class="table-scroll" tabindex="0" role="region" aria-label="Quarterly reconciliation" {
                            table class="forecast-quarters" {
                                thead { tr {
                                    th scope="col" { "Quarter" }
                                    th scope="col" { "Dates" }
                                    th scope="col" class="number" { "Highest count" }
                                    th scope="col" class="number" { "New over" }
                                    th scope="col" class="number" { "Charged for" }
                                    @if forecast.amount.is_some() { th scope="col" class="number" { "Amount" } }
                                } }
                                tbody {
                                    @for quarter in &forecast.quarters {
                                        tr data-quarter=(quarter.quarter) {
                                            th scope="row" { "Q" (quarter.quarter) }
                                            td { (quarter.starts_on) " – " (quarter.ends_on) }
                                            td class="number" {
                                                @match quarter.max_count { Some(max) => (max), None => span class="muted" { "no count" } }
                                            }
                                            td class="number" { (quarter.new_overage) }
                                            td class="number" { (percent(quarter.prorated_fraction)) " of the term" }
                                            @if let Some(amount) = quarter.amount {
                                                td class="number" { (money_text(amount, forecast.currency.as_deref())) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        p class="muted" { "With quarterly reconciliation each quarter's new users over the highest count already reconciled are charged for the rest of the term; the quarters so far are shown." }
                    }
                },
            }
        }
    }
}

/// The what-if form, and its preview when it was submitted.
pub fn what_if_card(form: &WhatIfForm, outcome: Option<Result<&WhatIf, &str>>) -> Markup {
    html! {
        section class="card what-if" aria-labelledby="what-if-heading" id="what-if" {
            h2 id="what-if-heading" { "What if these users went?" }
            p class="muted" {
                "A preview: nothing is changed. Name users, or take those inactive for a number of days."
            }
            form class="what-if-form" method="get" action="/admin/subscription#what-if" {
                label for="what-if-usernames" { "Usernames" }
                input id="what-if-usernames" name="usernames" type="text" value=(form.usernames)
                    autocomplete="off" spellcheck="false" aria-describedby="what-if-help";
                p id="what-if-help" class="muted" { "Separated by spaces or commas." }
                label for="what-if-days" { "Or: inactive for at least (days)" }
                input id="what-if-days" name="inactive_for_days" type="number" min="0"
                    value=(form.inactive_for_days);
                div class="what-if-price" {
                    div {
                        label for="what-if-price" { "Price per seat a year (optional)" }
                        input id="what-if-price" name="price_per_seat" type="text" inputmode="decimal"
                            value=(form.price_per_seat) autocomplete="off" placeholder="290.00";
                    }
                    div {
                        label for="what-if-currency" { "Currency" }
                        input id="what-if-currency" name="currency" type="text" maxlength="3" size="3"
                            value=(form.currency) autocomplete="off" placeholder="USD";
                    }
                }
                div class="form-actions" { button type="submit" class="secondary" { "Preview" } }
            }
            @match outcome {
                None => {},
                Some(Err(sentence)) => p class="flash alert what-if-error" role="alert" { (sentence) },
                Some(Ok(what_if)) => {
                    div class="what-if-result" role="status" {
                        p class="what-if-summary" {
                            strong { (what_if.billable_removed) } " of them "
                            (plural(what_if.billable_removed, "counts", "count")) " now."
                            @if !what_if.usernames_not_found.is_empty() {
                                " Not found: " (what_if.usernames_not_found.iter().map(|name| format!("@{name}")).collect::<Vec<_>>().join(", ")) "."
                            }
                        }
                        div class="table-scroll" tabindex="0" role="region" aria-label="What-if preview" {
                            table class="what-if-table" {
                                thead { tr { th scope="col" { "" } th scope="col" class="number" { "Now" } th scope="col" class="number" { "After" } } }
                                tbody {
                                    tr class="what-if-today" { th scope="row" { "Billable today" }
                                        td class="number" { (what_if.billable_today) } td class="number" { (what_if.billable_today_after) } }
                                    tr class="what-if-projected" { th scope="row" { "Projected overage at renewal" }
                                        td class="number" { (what_if.projected_overage) } td class="number" { (what_if.projected_overage_after) } }
                                    @if let (Some(before), Some(after)) = (what_if.amount, what_if.amount_after) {
                                        tr class="what-if-amount" { th scope="row" { "Amount at renewal" }
                                            td class="number" { (money_text(before, what_if.currency.as_deref())) }
                                            td class="number" { (money_text(after, what_if.currency.as_deref())) } }
                                    }
                                    tr class="what-if-peak" { th scope="row" { "The peak (unchanged)" }
                                        td class="number" { (what_if.historical_max) } td class="number" { (what_if.historical_max) } }
                                }
                            }
                        }
                        p class="muted" {
                            "Nothing was changed. The peak already reached this term stays; removing users lowers only what is still to come. To act, use the bulk tools on the "
                            a class="seats-link" href="/admin/seats" { "Seats page" } "."
                        }
                    }
                },
            }
        }
    }
}

/// The peak's page: its day, who counted then and why, who has stopped since, GitLab's rule.
pub fn peak_page(
    user: &User,
    csrf_token: &str,
    peak: Result<(&PeakExplanation, Option<i64>), &str>,
) -> Markup {
    layout(
        "The peak",
        Some((user, csrf_token)),
        html! {
            p { a href="/admin/subscription" { "← Subscription" } }
            h1 { "The peak of the term" }
            section class="card peak" aria-labelledby="peak-heading" {
                h2 id="peak-heading" { "Who counted on the peak day" }
                @match peak {
                    Err(sentence) => p class="peak-none" { (sentence) },
                    Ok((peak, next)) => {
                        @match &peak.peak_on {
                            None => p class="peak-summary" { "No daily counts yet this term: there is no peak." },
                            Some(day) => p class="peak-summary" {
                                "The peak: " strong { (peak.historical_max) " billable users on " (day) }
                                " for " (peak.seats) " seats"
                                @if peak.overage_so_far > 0 { " (" (peak.overage_so_far) " over)" }
                                "."
                            },
                        }
                        p class="peak-rule" { (peak.rule) }
                        @if peak.peak_on.is_some() && !peak.names_known {
                            p class="muted" { "The seat ledger began after that day: the names are not known." }
                        }
                        @if !peak.people.is_empty() {
                            p class="peak-stopped" {
                                (peak.stopped_since) " of these " (peak.people.len()) " "
                                (plural(i64::try_from(peak.people.len()).unwrap_or(i64::MAX), "person has", "people have"))
                                " stopped counting since."
                            }
                            div class="table-scroll" tabindex="0" role="region" aria-label="People on the peak day" {
                                table class="peak-people" {
                                    thead { tr {
                                        th scope="col" { "User" }
                                        th scope="col" { "Why they counted" }
                                        th scope="col" { "Now" }
                                    } }
                                    tbody {
                                        @for person in &peak.people {
                                            tr data-username=(person.username) class=(if person.still_billable { "still" } else { "stopped" }) {
                                                td { "@" (person.username) }
                                                td class="why" { (person.reason) }
                                                td class="why" {
                                                    @if person.still_billable {
                                                        "Still billable"
                                                    } @else {
                                                        "Stopped"
                                                        @if let Some(at) = &person.stopped_at { " on " (at.get(..10).unwrap_or(at)) }
                                                        @if let Some(because) = &person.stopped_because { ": " (because) }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                            @if let Some(after) = next {
                                p { a class="peak-next" href={ (PEAK_PATH) "?after=" (after) } { "Next page" } }
                            }
                        }
                    },
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::money_text;

    #[test]
    fn amounts_are_grouped_with_cents() {
        assert_eq!(money_text(8700.0, Some("USD")), "8,700.00 USD");
        assert_eq!(money_text(100.0, Some("EUR")), "100.00 EUR");
        assert_eq!(money_text(1_234_567.5, None), "1,234,567.50");
        assert_eq!(money_text(0.0, None), "0.00");
    }
}
