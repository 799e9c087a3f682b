//! The Seat controls page's handlers: the same services as the seat-control and dormant-user
//! extensions (`api/settings.rs`), so the same rules and GitLab's messages, each change a
//! form checked by [`may_change`]. GitLab takes the seat controls only on its admin form; this
//! is that form.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::pages::{lenient_query, may_change};
use super::response::{error_page_for, html, Failure, Fields};
use super::seat_control_views::{
    self, unlicensed_reason, ExclusionsForm, SeatControlsPage, SeatForm, SEAT_CONTROLS_PATH,
};
use super::session::WebAdmin;
use super::views::{Flash, PageContext};
use crate::domain::settings::SeatControl;
use crate::services::dormant::{self, ExclusionError};
use crate::services::settings::{self, SettingsError};
use crate::state::AppState;

/// The page's query: a fixed notice after a change (the query string cannot put words on the
/// page).
#[derive(Debug, Default, serde::Deserialize)]
pub struct SeatControlsQuery {
    notice: Option<String>,
}

impl SeatControlsQuery {
    fn flash(&self) -> Option<Flash> {
        let text = match self.notice.as_deref()? {
            "seat_control_saved" => "The seat controls were saved.",
            "exclusions_saved" => "The exclusions were saved.",
            _ => return None,
        };
        Some(Flash::Notice(text.to_string()))
    }
}

/// Rails' `humanize` of an attribute: `new_user_signups_cap` → `New user signups cap`.
fn humanized(key: &str) -> String {
    let text = key.replace('_', " ");
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// GitLab's message for `key` as a sentence: `New user signups cap must be greater than 0.`
fn sentence(key: &str, message: &str) -> String {
    format!("{} {}.", humanized(key), message.trim_end_matches('.'))
}

fn settings_failure(error: SettingsError, plan: Option<&str>) -> Failure {
    match error {
        SettingsError::Invalid(errors) => Failure::new(
            StatusCode::BAD_REQUEST,
            errors
                .iter()
                .flat_map(|(key, messages)| messages.iter().map(|message| sentence(key, message)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        SettingsError::Unlicensed => Failure::new(StatusCode::FORBIDDEN, unlicensed_reason(plan)),
        SettingsError::Store(error) => error.into(),
    }
}

fn exclusion_failure(error: ExclusionError) -> Failure {
    match error {
        ExclusionError::NotFound(names) => {
            Failure::new(StatusCode::NOT_FOUND, format!("Not found: {names}."))
        }
        ExclusionError::TooMany(max) => Failure::new(
            StatusCode::BAD_REQUEST,
            format!("Name at most {max} users and groups."),
        ),
        ExclusionError::Store(error) => error.into(),
    }
}

pub async fn show(
    State(state): State<AppState>,
    admin: WebAdmin,
    RawQuery(query): RawQuery,
) -> Response {
    let flash = lenient_query::<SeatControlsQuery>(query.as_deref()).flash();
    render(&state, &admin, Ok(flash), None, None).await
}

/// The page; `outcome` is a notice, or a refusal shown with its status; `seat_form` and
/// `exclusions_form` what a refused form posted, shown again.
async fn render(
    state: &AppState,
    admin: &WebAdmin,
    outcome: Result<Option<Flash>, Failure>,
    seat_form: Option<SeatForm>,
    exclusions_form: Option<ExclusionsForm>,
) -> Response {
    let (status, flash) = match outcome {
        Ok(flash) => (StatusCode::OK, flash),
        Err(failure) if failure.status.is_server_error() => return error_page_for(failure),
        Err(failure) => (failure.status, Some(Flash::Alert(failure.message))),
    };
    let read = async {
        let seat_status = settings::seat_control_status(state).await?;
        let preview = dormant::preview(state).await?;
        let exclusions = dormant::exclusions(state).await?;
        Ok::<_, Failure>((seat_status, preview, exclusions))
    }
    .await;
    let (seat_status, preview, exclusions) = match read {
        Ok(read) => read,
        Err(failure) => return error_page_for(failure),
    };
    let context = PageContext {
        user: admin.actor.user(),
        csrf_token: &admin.csrf_token,
        can_write: admin.can_write(),
        flash,
    };
    let page = SeatControlsPage {
        form: seat_form.unwrap_or_else(|| SeatForm::stored(&seat_status)),
        exclusions_form: exclusions_form.unwrap_or_else(|| ExclusionsForm::stored(&exclusions)),
        status: &seat_status,
        dormant: &preview,
        exclusions: &exclusions,
    };
    html(
        status,
        seat_control_views::seat_controls_page(&page, &context),
    )
}

/// The seat control a form chose, as the API reads `seat_control` (a name or GitLab's number).
fn chosen_control(fields: &Fields) -> Result<SeatControl, Failure> {
    let text = fields
        .get("seat_control")
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .ok_or_else(|| Failure::new(StatusCode::BAD_REQUEST, "Seat control is missing."))?;
    SeatControl::from_name(text)
        .or_else(|| text.parse::<i64>().ok().and_then(SeatControl::from_number))
        .ok_or_else(|| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "Seat control does not have a valid value.",
            )
        })
}

/// The cap a form gave: blank is none (the model then names it), text that is not a whole
/// number is the API's `new_user_signups_cap is invalid`.
fn given_cap(text: &str) -> Result<Option<i64>, Failure> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>().map(Some).map_err(|_| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            sentence("new_user_signups_cap", "is invalid"),
        )
    })
}

/// A posted field as the form shows it again (a null byte, refused, is not written back).
fn shown_again(value: Option<&str>) -> String {
    value.unwrap_or_default().replace('\0', "")
}

/// "Save changes" on the seat-control form. As on GitLab's form, the cap is sent with
/// Controlled access only (GitLab disables the field otherwise, and clears the cap).
pub async fn save_seat_control(
    State(state): State<AppState>,
    admin: WebAdmin,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let mut form = SeatForm {
        control: None,
        cap: shown_again(fields.get("new_user_signups_cap")),
        approve: fields
            .get("auto_approve_pending_users")
            .and_then(crate::domain::text::to_boolean)
            .unwrap_or(false),
    };
    let outcome = async {
        may_change(&admin, &fields)?;
        let control = chosen_control(&fields)?;
        form.control = Some(control);
        let cap = match control {
            SeatControl::UserCap => given_cap(&form.cap)?,
            SeatControl::Off | SeatControl::BlockOverages => None,
        };
        let plan = crate::services::licenses::current(&state, state.clock.today())
            .await?
            .map(|(_, license)| license.plan().to_string());
        let licensed = plan
            .as_deref()
            .is_some_and(crate::domain::settings::seat_controls_licensed);
        settings::set_seat_control(&state, &admin.actor, licensed, control, cap, form.approve)
            .await
            .map_err(|error| settings_failure(error, plan.as_deref()))
    }
    .await;
    match outcome {
        Ok(_) => Redirect::to(&format!(
            "{SEAT_CONTROLS_PATH}?notice=seat_control_saved#seat-control"
        ))
        .into_response(),
        Err(failure) => render(&state, &admin, Err(failure), Some(form), None).await,
    }
}

/// Usernames, ids or group paths as typed: separated by spaces or commas, a leading `@` dropped.
fn names(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\r', '\t'])
        .map(|name| name.trim().trim_start_matches('@'))
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

/// "Save exclusions": replaces the users and groups the dormant-user job never deactivates.
pub async fn save_exclusions(
    State(state): State<AppState>,
    admin: WebAdmin,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let form = ExclusionsForm {
        users: shown_again(fields.get("users")),
        groups: shown_again(fields.get("groups")),
    };
    let outcome = async {
        may_change(&admin, &fields)?;
        dormant::set_exclusions(
            &state,
            &admin.actor,
            &names(&form.users),
            &names(&form.groups),
        )
        .await
        .map_err(exclusion_failure)
    }
    .await;
    match outcome {
        Ok(_) => Redirect::to(&format!(
            "{SEAT_CONTROLS_PATH}?notice=exclusions_saved#exclusions"
        ))
        .into_response(),
        Err(failure) => render(&state, &admin, Err(failure), None, Some(form)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_messages_become_sentences() {
        assert_eq!(
            sentence("new_user_signups_cap", "must be greater than 0"),
            "New user signups cap must be greater than 0."
        );
        assert_eq!(
            given_cap(" 12 ").map_err(|failure| failure.message).ok(),
            Some(Some(12))
        );
        assert_eq!(given_cap("").map_err(|f| f.message).ok(), Some(None));
        assert_eq!(
            given_cap("1.5").err().map(|failure| failure.message),
            Some("New user signups cap is invalid.".to_string())
        );
        assert_eq!(names(" @ada, bob\n7 "), ["ada", "bob", "7"]);
    }
}
