//! The true-up: what a self-managed renewal will charge for users over the license, as GitLab
//! computes it (docs/true-up.md). Pure: the license term and seats, the daily billable-user
//! counts of the term, today's count and a price in.
//!
//! - **Users over license so far** (GitLab's `overage_with_historical_max`): the term's peak
//!   daily count above the seats. It never falls within a term, whoever leaves.
//! - `GET /license`'s `overage` while the license runs is today's count above the seats —
//!   not what the renewal charges; after expiry it is the peak's.
//! - **Projection** to the term's end: at today's count, and at the trend (least squares) of
//!   the last 30 and 90 days; the projected peak is the larger of the peak so far and the
//!   projected count at the end (a straight line peaks at an end).
//! - **Quarterly reconciliation** (GitLab's QSR): each quarter's new users over the highest
//!   count already reconciled, charged for the part of the term left after the quarter
//!   (¾, ½, ¼; the fourth quarter's at renewal).

use chrono::{Months, NaiveDate};
use serde::Serialize;

/// A license term and its seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub starts_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub seats: i64,
}

/// A price per seat in hundredths of the currency (exact arithmetic; shown with two decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub cents: i64,
}

impl Price {
    /// `12`, `12.5`, `12.50`; nothing negative, at most two decimals, at most a billion.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || fraction.len() > 2
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || whole.len() > 10
        {
            return None;
        }
        let whole: i64 = whole.parse().ok()?;
        let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
        let cents = whole.checked_mul(100)?.checked_add(fraction)?;
        (cents <= 100_000_000_000).then_some(Self { cents })
    }
}

/// An amount of money as JSON shows it: a number with two decimals.
pub fn money(cents: i64) -> f64 {
    // Exact below 2^53 cents; the price and seat bounds keep amounts far below.
    cents as f64 / 100.0
}

/// A projection of the term's peak.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Projection {
    /// `current_count`, `trend_30_days` or `trend_90_days`.
    pub basis: &'static str,
    /// Users a day the trend adds (0 for the current count).
    pub users_per_day: f64,
    /// The count the projection reaches on the term's last day.
    pub projected_count_at_end: i64,
    pub projected_peak: i64,
    pub projected_overage: i64,
    pub amount: Option<f64>,
}

/// One quarter of a quarterly reconciliation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Quarter {
    pub quarter: u32,
    pub starts_on: String,
    pub ends_on: String,
    /// The quarter's highest daily count so far (`None`: no count recorded in it yet).
    pub max_count: Option<i64>,
    /// Users over the highest count already reconciled (the seats at first).
    pub new_overage: i64,
    /// The part of the term left after the quarter, which its overage is charged for.
    pub prorated_fraction: f64,
    pub amount: Option<f64>,
}

/// Everything the forecast answers.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Forecast {
    pub seats: i64,
    pub starts_on: String,
    pub expires_on: String,
    pub days_left: i64,
    pub billable_today: i64,
    pub historical_max: i64,
    pub peak_on: Option<String>,
    /// GitLab's `overage_with_historical_max`: what the renewal charges if nobody else joins.
    pub overage_so_far: i64,
    /// `GET /license`'s `overage` while the license runs (today's count above the seats).
    pub overage_today: i64,
    /// The headline: at today's count to the end of the term.
    pub projected_overage: i64,
    pub amount: Option<f64>,
    pub currency: Option<String>,
    pub price_per_seat: Option<f64>,
    pub projections: Vec<Projection>,
    pub quarters: Vec<Quarter>,
    /// Why `overage_so_far` and `overage_today` differ, in a sentence.
    pub explanation: String,
}

/// The least-squares slope (users a day) of the counts on or after `since`; 0 with fewer than
/// two days.
fn slope(counts: &[(NaiveDate, i64)], since: NaiveDate) -> f64 {
    let points: Vec<(f64, f64)> = counts
        .iter()
        .filter(|(day, _)| *day >= since)
        .map(|(day, count)| ((*day - since).num_days() as f64, *count as f64))
        .collect();
    if points.len() < 2 {
        return 0.0;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n;
    let spread: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    if spread == 0.0 {
        return 0.0;
    }
    points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum::<f64>()
        / spread
}

/// The forecast for `term` from its daily `counts` (day, count; any order), today's count and
/// an optional price.
pub fn forecast(
    term: Term,
    counts: &[(NaiveDate, i64)],
    today: NaiveDate,
    billable_today: i64,
    price: Option<(Price, String)>,
) -> Forecast {
    let in_term: Vec<(NaiveDate, i64)> = counts
        .iter()
        .copied()
        .filter(|(day, _)| *day >= term.starts_on && *day <= term.expires_on)
        .collect();
    let (historical_max, peak_on) =
        in_term
            .iter()
            .fold((0, None), |(best, on), (day, count)| match on {
                _ if *count > best => (*count, Some(*day)),
                Some(existing) if *count == best && *day < existing => (best, Some(*day)),
                _ => (best, on),
            });
    let over = |users: i64| (users - term.seats).max(0);
    let days_left = (term.expires_on - today).num_days().max(0);
    let amount_of = |seats: i64| price.as_ref().map(|(price, _)| money(price.cents * seats));
    let project = |basis: &'static str, users_per_day: f64| {
        let at_end = (billable_today as f64 + users_per_day * days_left as f64).round() as i64;
        let projected_peak = historical_max.max(billable_today).max(at_end);
        Projection {
            basis,
            users_per_day: (users_per_day * 1000.0).round() / 1000.0,
            projected_count_at_end: at_end.max(0),
            projected_peak,
            projected_overage: over(projected_peak),
            amount: amount_of(over(projected_peak)),
        }
    };
    let projections = vec![
        project("current_count", 0.0),
        project(
            "trend_30_days",
            slope(&in_term, today - chrono::TimeDelta::days(30)),
        ),
        project(
            "trend_90_days",
            slope(&in_term, today - chrono::TimeDelta::days(90)),
        ),
    ];
    let quarters = quarters(
        term,
        &in_term,
        today,
        price.as_ref().map(|(price, _)| *price),
    );
    let projected_overage = projections[0].projected_overage;
    let explanation = format!(
        "The renewal charges the term's peak above the seats ({} on {}, {} over); GET /license shows today's count above the seats ({} today, {} over) while the license runs, and the peak's once it has expired. The peak does not fall when users are blocked or removed.",
        historical_max,
        peak_on.map_or_else(|| "no day yet".to_string(), |day| day.to_string()),
        over(historical_max),
        billable_today,
        over(billable_today)
    );
    Forecast {
        seats: term.seats,
        starts_on: term.starts_on.to_string(),
        expires_on: term.expires_on.to_string(),
        days_left,
        billable_today,
        historical_max,
        peak_on: peak_on.map(|day| day.to_string()),
        overage_so_far: over(historical_max),
        overage_today: over(billable_today),
        projected_overage,
        amount: amount_of(projected_overage),
        currency: price.as_ref().map(|(_, currency)| currency.clone()),
        price_per_seat: price.as_ref().map(|(price, _)| money(price.cents)),
        projections,
        quarters,
        explanation,
    }
}

/// GitLab's quarterly reconciliation over the term's quarters up to today.
fn quarters(
    term: Term,
    counts: &[(NaiveDate, i64)],
    today: NaiveDate,
    price: Option<Price>,
) -> Vec<Quarter> {
    let mut reconciled = term.seats;
    let mut result = Vec::new();
    for index in 0..4u32 {
        let starts_on = term
            .starts_on
            .checked_add_months(Months::new(3 * index))
            .unwrap_or(term.expires_on);
        let next = term
            .starts_on
            .checked_add_months(Months::new(3 * (index + 1)))
            .unwrap_or(term.expires_on);
        let ends_on = (next - chrono::TimeDelta::days(1)).min(term.expires_on);
        if starts_on > today {
            break;
        }
        let max_count = counts
            .iter()
            .filter(|(day, _)| *day >= starts_on && *day <= ends_on)
            .map(|(_, count)| *count)
            .max();
        let new_overage = max_count.map_or(0, |max| (max - reconciled).max(0));
        reconciled = reconciled.max(max_count.unwrap_or(0));
        let fraction = f64::from(3 - index.min(3)) / 4.0;
        result.push(Quarter {
            quarter: index + 1,
            starts_on: starts_on.to_string(),
            ends_on: ends_on.to_string(),
            max_count,
            new_overage,
            prorated_fraction: fraction,
            amount: price.map(|price| {
                // Hundredths of a cent are dropped, as a bill rounds down.
                let cents = (price.cents * new_overage * i64::from(3 - index.min(3))) / 4;
                money(cents)
            }),
        });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn prices() {
        assert_eq!(Price::parse("12"), Some(Price { cents: 1200 }));
        assert_eq!(Price::parse("12.5"), Some(Price { cents: 1250 }));
        assert_eq!(Price::parse("0.07"), Some(Price { cents: 7 }));
        for bad in ["", "-1", "1.234", "abc", "1e3", ".5", "99999999999"] {
            assert_eq!(Price::parse(bad), None, "{bad}");
        }
    }

    /// The hand calculation of docs/true-up.md: 100 seats from 2026-01-01; the peak (130) on
    /// 2026-03-10; 120 today (2026-06-01, 214 days left); 30 days of +1 a day before it.
    #[test]
    fn the_worked_example() {
        let term = Term {
            starts_on: day("2026-01-01"),
            expires_on: day("2027-01-01"),
            seats: 100,
        };
        let mut counts = vec![
            (day("2026-02-01"), 110),
            (day("2026-03-10"), 130),
            (day("2026-04-15"), 105),
        ];
        for n in 0..=30 {
            counts.push((day("2026-05-02") + chrono::TimeDelta::days(n), 90 + n));
        }
        let price = Price::parse("290").map(|price| (price, "USD".to_string()));
        let forecast = forecast(term, &counts, day("2026-06-01"), 120, price);
        assert_eq!(
            (forecast.historical_max, forecast.peak_on.as_deref()),
            (130, Some("2026-03-10"))
        );
        assert_eq!((forecast.overage_so_far, forecast.overage_today), (30, 20));
        assert_eq!(forecast.days_left, 214);
        // At today's count the peak stays 130: 30 over, 30 × 290 = 8,700.
        assert_eq!(forecast.projected_overage, 30);
        assert_eq!(forecast.amount, Some(8700.0));
        // The 30-day trend is +1 a day: 120 + 214 = 334 at the end, 234 over.
        let trend = &forecast.projections[1];
        assert_eq!(
            (
                trend.users_per_day,
                trend.projected_count_at_end,
                trend.projected_overage
            ),
            (1.0, 334, 234)
        );
        assert_eq!(trend.amount, Some(67_860.0));
        // Quarters: Q1 (peak 130): 30 new at ¾ = 6,525; Q2 (max 120, under 130): 0; Q3 starts
        // after today: not yet.
        let quarters: Vec<(u32, Option<i64>, i64, Option<f64>)> = forecast
            .quarters
            .iter()
            .map(|q| (q.quarter, q.max_count, q.new_overage, q.amount))
            .collect();
        assert_eq!(
            quarters,
            [
                (1, Some(130), 30, Some(6525.0)),
                (2, Some(120), 0, Some(0.0))
            ]
        );
    }

    #[test]
    fn no_history_no_peak() {
        let term = Term {
            starts_on: day("2026-01-01"),
            expires_on: day("2027-01-01"),
            seats: 10,
        };
        let forecast = forecast(term, &[], day("2026-06-15"), 12, None);
        assert_eq!((forecast.historical_max, forecast.peak_on), (0, None));
        assert_eq!(
            (forecast.overage_so_far, forecast.projected_overage),
            (0, 2)
        );
        assert_eq!(forecast.amount, None);
    }
}
