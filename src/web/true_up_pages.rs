//! The true-up's handlers: the forecast and the what-if preview on the subscription page (a
//! GET form: a preview writes nothing, so it needs no CSRF token), and the peak's page. No
//! true-up to show (no license, no seat limit, no end) is a sentence, never an error page.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::response::html;
use super::session::WebAdmin;
use super::true_up_views::{self, WhatIfForm};
use crate::services::true_up::{self, TrueUpError, WhatIfUsers, MAX_WHAT_IF_USERS};
use crate::state::AppState;

/// How many of the peak day's people a page lists.
const PEAK_PAGE_SIZE: i64 = 100;

/// A query string read leniently: anything malformed counts as absent.
fn lenient_query<T: serde::de::DeserializeOwned + Default>(query: Option<&str>) -> T {
    serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default()
}

/// A sentence for an answer that is no true-up to show, or a failure.
fn sentence(error: &TrueUpError) -> String {
    match error {
        TrueUpError::NoLicense => "No license is active: there is no true-up.".to_string(),
        TrueUpError::NoTrueUp(text) => capitalized(text),
        TrueUpError::Invalid("price_per_seat") => {
            "The price per seat must be a number such as 290 or 290.50.".to_string()
        }
        TrueUpError::Invalid("currency") => {
            "The currency must be three letters, such as EUR.".to_string()
        }
        TrueUpError::Invalid(_) | TrueUpError::Missing(_) => capitalized(&error.to_string()),
        TrueUpError::Store(error) => {
            tracing::warn!(%error, "the page could not compute the true-up");
            "The true-up could not be computed just now. Try again in a moment.".to_string()
        }
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!(
            "{}{}.",
            first.to_uppercase(),
            chars.as_str().trim_end_matches('.')
        ),
        None => String::new(),
    }
}

/// Whom the form names, or why it cannot be previewed.
fn users_of(form: &WhatIfForm) -> Result<WhatIfUsers, String> {
    let names: Vec<String> = form
        .usernames
        .split([',', ' ', '\n', '\r', '\t'])
        .map(|name| name.trim().trim_start_matches('@'))
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    let days = form.inactive_for_days.trim();
    match (names.is_empty(), days.is_empty()) {
        (false, false) => Err("Give usernames or a number of days, not both.".into()),
        (false, true) if names.len() > MAX_WHAT_IF_USERS => {
            Err(format!("Name at most {MAX_WHAT_IF_USERS} usernames."))
        }
        (false, true) => Ok(WhatIfUsers::Usernames(names)),
        (true, false) => match days.parse::<i64>() {
            Ok(days) if (0..=36_500).contains(&days) => Ok(WhatIfUsers::InactiveForDays(days)),
            _ => Err("The number of days must be a whole number from 0 to 36500.".into()),
        },
        (true, true) => Err("Name some users or a number of days.".into()),
    }
}

/// The forecast card and the what-if card of the subscription page (nothing without a
/// license). `query`: the page's query string, which carries the what-if form.
pub(super) async fn section(state: &AppState, query: Option<&str>) -> Markup {
    let form = lenient_query::<WhatIfForm>(query);
    let (price, currency) = (
        Some(form.price_per_seat.as_str()),
        Some(form.currency.as_str()),
    );
    let mut forecast = true_up::forecast(state, price, currency).await;
    // A price the form got wrong is said in the what-if card; the forecast keeps the
    // configured one.
    let price_error = match &forecast {
        Err(error @ TrueUpError::Invalid(_)) => {
            let said = sentence(error);
            forecast = true_up::forecast(state, None, None).await;
            Some(said)
        }
        _ => None,
    };
    if matches!(forecast, Err(TrueUpError::NoLicense)) {
        return html! {};
    }
    let forecast_card = match &forecast {
        Ok(forecast) => true_up_views::forecast_card(Ok(forecast)),
        Err(error) => true_up_views::forecast_card(Err(&sentence(error))),
    };
    if forecast.is_err() {
        return forecast_card;
    }
    let outcome = match (price_error, form.is_empty()) {
        (Some(said), _) => Some(Err(said)),
        (None, true) => None,
        (None, false) => Some(match users_of(&form) {
            Ok(users) => true_up::what_if(state, users, price, currency)
                .await
                .map_err(|error| sentence(&error)),
            Err(sentence) => Err(sentence),
        }),
    };
    let what_if_card = true_up_views::what_if_card(
        &form,
        outcome
            .as_ref()
            .map(|outcome| outcome.as_ref().map_err(String::as_str)),
    );
    html! { (forecast_card) (what_if_card) }
}

#[derive(serde::Deserialize, Default)]
pub struct PeakQuery {
    after: Option<i64>,
}

/// `GET /admin/subscription/peak`: the peak day's people (a page), who stopped since, the rule.
pub async fn peak(
    State(state): State<AppState>,
    admin: WebAdmin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = lenient_query::<PeakQuery>(query.as_deref());
    let answer = true_up::peak(&state, query.after.unwrap_or(0).max(0), PEAK_PAGE_SIZE).await;
    let user = admin.actor.user();
    let page = match &answer {
        Ok((peak, next)) => true_up_views::peak_page(user, &admin.csrf_token, Ok((peak, *next))),
        Err(error) => true_up_views::peak_page(user, &admin.csrf_token, Err(&sentence(error))),
    };
    html(StatusCode::OK, page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(usernames: &str, days: &str) -> WhatIfForm {
        WhatIfForm {
            usernames: usernames.into(),
            inactive_for_days: days.into(),
            ..WhatIfForm::default()
        }
    }

    #[test]
    fn the_form_names_users_or_days() {
        assert!(matches!(
            users_of(&form("alice, @bob  carol", "")),
            Ok(WhatIfUsers::Usernames(names)) if names == ["alice", "bob", "carol"]
        ));
        assert!(matches!(
            users_of(&form("", " 30 ")),
            Ok(WhatIfUsers::InactiveForDays(30))
        ));
        assert!(users_of(&form("alice", "30")).is_err());
        assert!(users_of(&form("", "-1")).is_err());
        assert!(users_of(&form("", "thirty")).is_err());
        assert_eq!(
            capitalized("the current license has no seat limit: there is no true-up"),
            "The current license has no seat limit: there is no true-up."
        );
    }
}
