//! The Fleet page's handlers: the same services as the fleet API (`api/fleet.rs`), each
//! change a form checked by [`may_change`], then a redirect with a fixed notice, or the page
//! again with the refusal and its status.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::fleet_views::{self, AddForm, FleetPage, ImportForm, FLEET_PATH};
use super::pages::{lenient_query, may_change, multipart_fields};
use super::response::{error_page_for, html, Failure, Fields};
use super::session::WebAdmin;
use super::views::{Flash, PageContext};
use crate::config::Secret;
use crate::services::fleet::{self, FleetError, PeopleQuery};
use crate::state::AppState;

/// People outside the largest instance shown per page.
const PEOPLE_PER_PAGE: i64 = 50;

/// The page's query: where the people list starts, and a fixed notice after a change (the
/// query string cannot put words on the page).
#[derive(Debug, Default, serde::Deserialize)]
pub struct FleetQuery {
    after: Option<String>,
    notice: Option<String>,
    count: Option<u32>,
}

impl FleetQuery {
    fn flash(&self) -> Option<Flash> {
        let text = match self.notice.as_deref()? {
            "instance_added" => {
                "The instance was added. Sync it now to read its users and license.".to_string()
            }
            "sync_queued" => {
                "The sync is queued; the figures update when it has finished.".to_string()
            }
            "instance_removed" => {
                "The instance was removed, with its users; the figures were recomputed.".to_string()
            }
            "imported" => {
                let count = self.count.unwrap_or_default();
                format!(
                    "The offline instance was imported: {count} {} read.",
                    if count == 1 { "user" } else { "users" }
                )
            }
            _ => return None,
        };
        Some(Flash::Notice(text))
    }
}

/// A service's message as a sentence: with a full stop, and capitalised when it starts with
/// an ordinary word ("an instance with this name…"), not with an instance's name ("prod is
/// synced…").
fn sentence(text: &str) -> String {
    let text = text.trim();
    let first_word = text.split_whitespace().next().unwrap_or_default();
    let mut out = if matches!(first_word, "a" | "an" | "another" | "the" | "no") {
        let mut chars = text.chars();
        chars
            .next()
            .map(|first| first.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    } else {
        text.to_string()
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// A fleet refusal as the page shows it, with the API's status.
fn fleet_failure(error: FleetError) -> Failure {
    match error {
        FleetError::NotFound => Failure::new(StatusCode::NOT_FOUND, "404 Fleet instance Not Found"),
        FleetError::Invalid(field, message) => {
            let field = match field {
                "name" => "The name",
                "url" => "The URL",
                "token" => "The token",
                "file" => "The file",
                "instance" => "The instance",
                other => other,
            };
            Failure::new(
                StatusCode::BAD_REQUEST,
                sentence(&format!("{field} {message}")),
            )
        }
        FleetError::Conflict(message) => Failure::new(StatusCode::CONFLICT, sentence(&message)),
        // The secrets key's configuration: the operator's to fix, and no secret in it.
        FleetError::Secrets(message) => {
            tracing::error!(%message, "the fleet page could not seal or open a token");
            Failure::new(StatusCode::INTERNAL_SERVER_ERROR, sentence(&message))
        }
        FleetError::Store(error) => error.into(),
    }
}

pub async fn show(
    State(state): State<AppState>,
    admin: WebAdmin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = lenient_query::<FleetQuery>(query.as_deref());
    let flash = query.flash();
    let after = query.after.as_deref().filter(|after| !after.is_empty());
    render(
        &state,
        &admin,
        Ok(flash),
        after,
        AddForm::default(),
        ImportForm::default(),
    )
    .await
}

/// The page: the summary, the instances, one page of the people outside the largest
/// instance, the forms (`add_form` and `import_form` as they were sent, after a refusal);
/// `outcome` is a notice, or a refusal shown with its status.
async fn render(
    state: &AppState,
    admin: &WebAdmin,
    outcome: Result<Option<Flash>, Failure>,
    after: Option<&str>,
    add_form: AddForm,
    import_form: ImportForm,
) -> Response {
    let (status, flash) = match outcome {
        Ok(flash) => (StatusCode::OK, flash),
        Err(failure) if failure.status.is_server_error() => return error_page_for(failure),
        Err(failure) => (failure.status, Some(Flash::Alert(failure.message))),
    };
    let read = async {
        let summary = fleet::summary(state).await?;
        // As the API's list: each instance as its entity (no token, `token_set` at most).
        let instances = fleet::instances(state).await?;
        let prepared = fleet::prepare_people(
            state,
            &PeopleQuery {
                outside_largest: Some(true),
                ..PeopleQuery::default()
            },
        )
        .await
        .map_err(fleet_failure)?;
        let outside = prepared
            .page(state, after.unwrap_or_default(), PEOPLE_PER_PAGE)
            .await?;
        Ok::<_, Failure>((summary, instances, outside))
    }
    .await;
    let (summary, instances, outside) = match read {
        Ok(read) => read,
        Err(failure) => return error_page_for(failure),
    };
    let context = PageContext {
        user: admin.actor.user(),
        csrf_token: &admin.csrf_token,
        can_write: admin.can_write(),
        flash,
    };
    let page = FleetPage {
        summary: &summary,
        instances: &instances,
        outside: &outside,
        after,
        add_form,
        import_form,
    };
    html(status, fleet_views::fleet_page(&page, &context))
}

/// After a change: the page with a notice (a redirect, so that reloading does not repeat
/// it); after a refusal: the page again, with the refusal and the forms as sent.
async fn after_change(
    state: &AppState,
    admin: &WebAdmin,
    outcome: Result<String, Failure>,
    add_form: AddForm,
    import_form: ImportForm,
) -> Response {
    match outcome {
        Ok(query) => Redirect::to(&format!("{FLEET_PATH}?{query}")).into_response(),
        Err(failure) => render(state, admin, Err(failure), None, add_form, import_form).await,
    }
}

/// "Add instance": name, URL and token. The token is never shown again, not even after a
/// refusal.
pub async fn add_instance(State(state): State<AppState>, admin: WebAdmin, body: Bytes) -> Response {
    let fields = Fields::parse(&body);
    let text = |name: &str| fields.get(name).unwrap_or_default().trim().to_string();
    let form = AddForm {
        name: text("name"),
        url: text("url"),
    };
    let outcome = async {
        may_change(&admin, &fields)?;
        let token = Secret::new(fields.get("token").unwrap_or_default().to_string());
        fleet::create(&state, &admin.actor, &form.name, &form.url, &token)
            .await
            .map_err(fleet_failure)?;
        Ok("notice=instance_added".to_string())
    }
    .await;
    after_change(&state, &admin, outcome, form, ImportForm::default()).await
}

/// What a button on an instance's row does.
#[derive(Debug, Clone, Copy)]
enum InstanceAction {
    /// "Sync now": queues its sync job.
    Sync,
    /// "Remove": the instance, its token and its users go; the figures are recomputed.
    Remove,
}

/// An instance row's button: the CSRF check, the service, then the page.
async fn on_instance(
    state: AppState,
    admin: WebAdmin,
    id: String,
    body: Bytes,
    action: InstanceAction,
) -> Response {
    let fields = Fields::parse(&body);
    let outcome = async {
        may_change(&admin, &fields)?;
        let instance = fleet::find(&state, &id).await.map_err(fleet_failure)?;
        match action {
            InstanceAction::Sync => {
                fleet::request_sync(&state, &admin.actor, &instance)
                    .await
                    .map_err(fleet_failure)?;
                Ok("notice=sync_queued".to_string())
            }
            InstanceAction::Remove => {
                fleet::remove(&state, &admin.actor, &instance)
                    .await
                    .map_err(fleet_failure)?;
                Ok("notice=instance_removed".to_string())
            }
        }
    }
    .await;
    after_change(
        &state,
        &admin,
        outcome,
        AddForm::default(),
        ImportForm::default(),
    )
    .await
}

/// "Sync now" on an online instance.
pub async fn sync_instance(
    State(state): State<AppState>,
    admin: WebAdmin,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    on_instance(state, admin, id, body, InstanceAction::Sync).await
}

/// "Remove" an instance.
pub async fn remove_instance(
    State(state): State<AppState>,
    admin: WebAdmin,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    on_instance(state, admin, id, body, InstanceAction::Remove).await
}

/// "Import": an offline instance's exported JSON, from the text box or a file (a chosen
/// file wins, as on the other forms).
pub async fn import(State(state): State<AppState>, admin: WebAdmin, request: Request) -> Response {
    let mut form = ImportForm::default();
    let outcome = async {
        let fields = multipart_fields(&state, &admin, request).await?;
        form.name = fields.get("name").unwrap_or_default().trim().to_string();
        form.data = fields.get("data").unwrap_or_default().to_string();
        let file = fields.get("data_file").unwrap_or_default();
        let data = if file.trim().is_empty() {
            form.data.as_str()
        } else {
            file
        };
        if data.trim().is_empty() {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "Paste the exported JSON or choose a file.",
            ));
        }
        let report = fleet::import(&state, &admin.actor, &form.name, data)
            .await
            .map_err(fleet_failure)?;
        Ok(format!(
            "notice=imported&count={}",
            u32::try_from(report.users_read).unwrap_or(u32::MAX)
        ))
    }
    .await;
    after_change(&state, &admin, outcome, AddForm::default(), form).await
}

/// The people CSV filters the page links to.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CsvQuery {
    outside_largest: Option<bool>,
}

/// Everyone (or, with `outside_largest=true`, the people outside the largest instance) as
/// CSV, written as it is read.
pub async fn people_csv(
    State(state): State<AppState>,
    _: WebAdmin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = lenient_query::<CsvQuery>(query.as_deref());
    let people = PeopleQuery {
        outside_largest: query.outside_largest,
        ..PeopleQuery::default()
    };
    match fleet::prepare_people(&state, &people).await {
        Ok(prepared) => crate::body::csv_download(
            "fleet_people.csv",
            Body::from_stream(prepared.csv(state.clone())),
        ),
        Err(error) => error_page_for(fleet_failure(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn messages_read_as_sentences_without_changing_names() {
        assert_eq!(
            sentence("an instance with this name already exists"),
            "An instance with this name already exists."
        );
        assert_eq!(
            sentence("prod is synced through its API; imports are for offline instances"),
            "prod is synced through its API; imports are for offline instances."
        );
        assert_eq!(sentence("The URL is not a URL"), "The URL is not a URL.");
        assert_eq!(sentence("Done."), "Done.");
    }
}
