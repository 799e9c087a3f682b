//! The billable-users chart: daily counts over the license term with the seat limit as a
//! line, drawn as inline SVG on the server so that it needs no JavaScript. Points above the
//! limit and the band above it are styled apart, so the chart shows at a glance whether the
//! instance is within its license.

use chrono::{DateTime, NaiveDate, Utc};
use maud::{html, Markup};

use crate::services::subscription::CurrentLicense;

/// Where the peak's explanation is.
pub const PEAK_PATH: &str = "/admin/subscription/peak";

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;
const Y_TICKS: i64 = 4;

/// One day's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub day: NaiveDate,
    pub count: i64,
}

pub struct Chart<'a> {
    pub points: &'a [Point],
    /// The seats the license pays for; `None` for a license without a limit.
    pub seat_limit: Option<i64>,
    /// The first and last day of the term.
    pub term: (NaiveDate, NaiveDate),
    pub today: NaiveDate,
    /// Today's count (`GET /license`'s billable users), drawn as today's point when no daily
    /// count has been recorded for today yet.
    pub today_count: Option<i64>,
    /// Where the peak links to (its explanation), if anywhere.
    pub peak_href: Option<&'a str>,
}

/// The peak day of `points` (the highest count, its first day), as GitLab's historical
/// maximum takes it.
pub fn peak_of(points: &[Point]) -> Option<Point> {
    points.iter().copied().fold(None, |best, point| match best {
        Some(best)
            if best.count > point.count || (best.count == point.count && best.day <= point.day) =>
        {
            Some(best)
        }
        _ => Some(point),
    })
}

/// The peak and whether it fits the license, for the sentence above the chart.
pub fn verdict(points: &[Point], seat_limit: Option<i64>) -> String {
    let peak = points.iter().map(|point| point.count).max().unwrap_or(0);
    match seat_limit {
        None => format!("No seat limit: the peak was {peak} billable users."),
        Some(limit) if peak > limit => format!(
            "Over the license: the peak was {peak} billable users for {limit} seats ({} over).",
            peak - limit
        ),
        Some(limit) => {
            format!("Within the license: the peak was {peak} billable users for {limit} seats.")
        }
    }
}

/// A round step (1, 2, 2.5 or 5 times a power of ten) so that at most `Y_TICKS` steps cover
/// `top`.
fn tick_step(top: i64) -> i64 {
    let raw = (top.max(1) + Y_TICKS - 1) / Y_TICKS;
    let mut magnitude = 1i64;
    while magnitude.saturating_mul(10) <= raw {
        magnitude = magnitude.saturating_mul(10);
    }
    [10, 20, 25, 50, 100]
        .into_iter()
        .filter_map(|tenths| (tenths * magnitude % 10 == 0).then_some(tenths * magnitude / 10))
        .find(|step| *step >= raw)
        .unwrap_or(raw)
}

/// The top of the y axis: the first multiple of `step` at or above `top`.
fn axis_top(top: i64, step: i64) -> i64 {
    ((top.max(1) + step - 1) / step) * step
}

impl Chart<'_> {
    fn plot_width() -> f64 {
        WIDTH - LEFT - RIGHT
    }

    fn plot_height() -> f64 {
        HEIGHT - TOP - BOTTOM
    }

    fn days(&self) -> f64 {
        ((self.term.1 - self.term.0).num_days().max(1)) as f64
    }

    fn x(&self, day: NaiveDate) -> f64 {
        let offset = ((day - self.term.0).num_days() as f64).clamp(0.0, self.days());
        LEFT + offset / self.days() * Self::plot_width()
    }

    fn y(value: i64, y_max: i64) -> f64 {
        TOP + Self::plot_height() - (value as f64 / y_max as f64) * Self::plot_height()
    }

    /// Today's point, when today is in the term and has no daily count yet.
    fn today_point(&self) -> Option<Point> {
        let count = self.today_count?;
        let in_term = self.today >= self.term.0 && self.today <= self.term.1;
        let counted = self.points.iter().any(|point| point.day == self.today);
        (in_term && !counted).then_some(Point {
            day: self.today,
            count,
        })
    }

    pub fn render(&self) -> Markup {
        let today_point = self.today_point();
        let peak_point = peak_of(self.points);
        let peak = self
            .points
            .iter()
            .chain(today_point.iter())
            .map(|point| point.count)
            .max()
            .unwrap_or(0);
        // Headroom above the higher of the peak and the limit, so the limit line never sits on
        // the top edge.
        let top = peak.max(self.seat_limit.unwrap_or(0)) * 11 / 10 + 1;
        let step = tick_step(top);
        let y_max = axis_top(top, step);
        let ticks = y_max / step;
        let over = |count: i64| self.seat_limit.is_some_and(|limit| count > limit);
        let trend = self
            .points
            .iter()
            .map(|point| {
                format!(
                    "{:.1},{:.1}",
                    self.x(point.day),
                    Self::y(point.count, y_max)
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        let bottom = TOP + Self::plot_height();
        let right = LEFT + Self::plot_width();
        html! {
            svg class="chart" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img"
                aria-labelledby="chart-title chart-description" preserveAspectRatio="xMidYMid meet" {
                title id="chart-title" { "Billable users over the license term" }
                desc id="chart-description" {
                    @if self.points.is_empty() { "No daily counts yet." } @else { (verdict(self.points, self.seat_limit)) }
                }
                @if let Some(limit) = self.seat_limit {
                    rect class="over-zone" x=(LEFT) y=(TOP) width=(Self::plot_width())
                        height=(format!("{:.1}", (Self::y(limit, y_max) - TOP).max(0.0))) {}
                }
                @for tick in 0..=ticks {
                    @let y = Self::y(tick * step, y_max);
                    line class="grid" x1=(LEFT) x2=(right) y1=(format!("{y:.1}")) y2=(format!("{y:.1}")) {}
                    text class="axis-label" x=(LEFT - 6.0) y=(format!("{:.1}", y + 4.0)) text-anchor="end" {
                        (tick * step)
                    }
                }
                line class="axis" x1=(LEFT) x2=(right) y1=(bottom) y2=(bottom) {}
                text class="axis-label" x=(LEFT) y=(bottom + 18.0) text-anchor="start" { (self.term.0) }
                text class="axis-label" x=(right) y=(bottom + 18.0) text-anchor="end" { (self.term.1) }
                @if self.today > self.term.0 && self.today < self.term.1 {
                    @let x = format!("{:.1}", self.x(self.today));
                    line class="today" x1=(x) x2=(x) y1=(TOP) y2=(bottom) {}
                    text class="axis-label" x=(x) y=(bottom + 32.0) text-anchor="middle" { "today" }
                }
                @if let Some(limit) = self.seat_limit {
                    @let y = format!("{:.1}", Self::y(limit, y_max));
                    line class="limit" x1=(LEFT) x2=(right) y1=(y) y2=(y) {}
                    text class="limit-label" x=(right - 4.0) y=(format!("{:.1}", Self::y(limit, y_max) - 6.0))
                        text-anchor="end" { (limit) " seats" }
                }
                @if self.points.len() > 1 {
                    polyline class="trend" points=(trend) {}
                }
                @for point in self.points {
                    circle class=(if over(point.count) { "point over" } else { "point" })
                        cx=(format!("{:.1}", self.x(point.day)))
                        cy=(format!("{:.1}", Self::y(point.count, y_max))) r="3" {
                        title { (point.day) ": " (point.count) " billable users" }
                    }
                }
                @if let Some(point) = today_point {
                    circle class=(if over(point.count) { "today-point over" } else { "today-point" })
                        cx=(format!("{:.1}", self.x(point.day)))
                        cy=(format!("{:.1}", Self::y(point.count, y_max))) r="4" {
                        title { "Today (" (point.day) ", not yet a daily count): " (point.count) " billable users" }
                    }
                }
                @if let Some(point) = peak_point {
                    @let (x, y) = (self.x(point.day), Self::y(point.count, y_max));
                    @let anchor = if x > LEFT + Self::plot_width() * 0.8 { "end" } else { "start" };
                    @let label_x = if anchor == "end" { x - 9.0 } else { x + 9.0 };
                    @let mark = html! {
                        circle class="peak-ring" cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="7" {}
                        text class="peak-label" x=(format!("{label_x:.1}")) y=(format!("{:.1}", (y - 8.0).max(TOP + 10.0)))
                            text-anchor=(anchor) { "peak " (point.count) }
                    };
                    @if let Some(href) = self.peak_href {
                        a class="peak-mark" href=(href) {
                            title { "The peak: " (point.count) " billable users on " (point.day) ". Who counted that day" }
                            (mark)
                        }
                    } @else {
                        g class="peak-mark" { (mark) }
                    }
                }
            }
        }
    }
}

/// The chart's card on the subscription page: the verdict, the chart (with today's point and
/// the peak linked to its explanation) and the counts as a table. `first_count_at`: when the
/// first daily count will be recorded, for a term without any yet.
pub fn section(
    current: &CurrentLicense,
    today: NaiveDate,
    first_count_at: DateTime<Utc>,
) -> Markup {
    let points: Vec<Point> = current
        .history
        .iter()
        .map(|row| Point {
            day: row.recorded_at.date_naive(),
            count: row.active_user_count,
        })
        .collect();
    let seat_limit = current
        .license
        .restrictions
        .active_user_count
        .and_then(|seats| i64::try_from(seats).ok())
        .filter(|seats| *seats > 0);
    let today_count = current.entity.active_users.unwrap_or_default();
    let peak = peak_of(&points);
    let over = match peak {
        Some(_) => seat_limit.is_some_and(|limit| points.iter().any(|point| point.count > limit)),
        None => seat_limit.is_some_and(|limit| today_count > limit),
    };
    let chart = Chart {
        points: &points,
        seat_limit,
        term: current.term,
        today,
        today_count: Some(today_count),
        peak_href: Some(PEAK_PATH),
    };
    html! {
        section class="card" aria-labelledby="usage-heading" {
            h2 id="usage-heading" { "Billable users over the license term" }
            p class=(if over { "verdict over" } else { "verdict within" }) id="chart-verdict" {
                @if peak.is_some() {
                    (verdict(&points, seat_limit))
                } @else {
                    "No daily counts yet: the first is recorded at "
                    (first_count_at.format("%Y-%m-%d %H:%M UTC")) ". Today: " (today_count)
                    " billable " (if today_count == 1 { "user" } else { "users" })
                    @match seat_limit {
                        Some(limit) => { " for " (limit) " seats." },
                        None => { " (no seat limit)." },
                    }
                }
            }
            @if let Some(peak) = peak {
                p class="peak-line" {
                    "The peak (GitLab's historical maximum): " (peak.count) " billable users on "
                    (peak.day) ". "
                    a class="peak-link" href=(PEAK_PATH) { "Who counted that day, and why the peak stays" }
                }
            }
            figure class="chart-frame" {
                div class="chart-scroll" tabindex="0" role="group" aria-label="Chart (scrolls sideways on narrow screens)" {
                    (chart.render())
                }
                figcaption class="muted" {
                    "One point per daily count; the open point is today's count ("
                    (today_count) "), not yet a daily count; the dashed line is the seats in the license."
                }
            }
            details {
                summary { "Daily counts as a table (" (points.len()) ")" }
                table {
                    caption class="visually-hidden" { "Billable users per day" }
                    thead { tr { th scope="col" { "Day" } th scope="col" class="number" { "Billable users" } } }
                    tbody {
                        @for point in &points {
                            tr { td { (point.day) } td class="number" { (point.count) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn ticks_are_round_and_cover_the_values() {
        assert_eq!(tick_step(1), 1);
        assert_eq!(tick_step(5), 2);
        assert_eq!(tick_step(11), 5);
        assert_eq!(tick_step(51), 20);
        assert_eq!(tick_step(111), 50);
        assert_eq!(tick_step(91), 25);
        assert_eq!(tick_step(1001), 500);
        assert_eq!(axis_top(111, 50), 150);
        assert_eq!(axis_top(91, 25), 100);
        for top in [1, 3, 7, 19, 99, 250, 12_345] {
            let step = tick_step(top);
            assert!(step * Y_TICKS >= top, "{top}");
            assert!(axis_top(top, step) / step <= Y_TICKS, "{top}");
        }
    }

    #[test]
    fn one_circle_per_day_and_points_over_the_limit_stand_out() {
        let points = [
            Point {
                day: day("2026-01-02"),
                count: 3,
            },
            Point {
                day: day("2026-01-03"),
                count: 6,
            },
            Point {
                day: day("2026-01-04"),
                count: 4,
            },
        ];
        let chart = Chart {
            points: &points,
            seat_limit: Some(5),
            term: (day("2026-01-01"), day("2026-12-31")),
            today: day("2026-01-04"),
            today_count: None,
            peak_href: Some(PEAK_PATH),
        };
        let svg = chart.render().into_string();
        assert_eq!(svg.matches("<circle class=\"point").count(), 3);
        // The peak (6 on 2026-01-03) is ringed and links to its explanation.
        assert_eq!(svg.matches("class=\"peak-ring\"").count(), 1);
        assert!(svg.contains("href=\"/admin/subscription/peak\""));
        assert!(svg.contains("peak 6"));
        assert_eq!(svg.matches("class=\"point over\"").count(), 1);
        assert_eq!(svg.matches("class=\"limit\"").count(), 1);
        assert!(svg.contains("2026-01-03: 6 billable users"));
        assert_eq!(
            verdict(&points, Some(5)),
            "Over the license: the peak was 6 billable users for 5 seats (1 over)."
        );
        assert_eq!(
            verdict(&points, Some(6)),
            "Within the license: the peak was 6 billable users for 6 seats."
        );
    }

    #[test]
    fn a_license_without_limit_or_history_still_draws() {
        let chart = Chart {
            points: &[],
            seat_limit: None,
            term: (day("2026-01-01"), day("2026-01-01")),
            today: day("2026-01-01"),
            today_count: None,
            peak_href: None,
        };
        let svg = chart.render().into_string();
        assert!(!svg.contains("<circle"));
        assert!(!svg.contains("class=\"limit\""));
        assert!(svg.contains("No daily counts yet."));
        assert!(!svg.contains("the peak was 0"));
    }
}
