//! GitLab's offset pagination: `page` / `per_page` (20 by default, at most 100) and the
//! `X-Page`, `X-Per-Page`, `X-Next-Page`, `X-Prev-Page`, `X-Total`, `X-Total-Pages` and `Link`
//! headers, with links that repeat the request's own parameters.

use axum::extract::{FromRequest, OriginalUri, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use super::params::Params;
use crate::domain::cursors;
use crate::error::ApiError;
use crate::store::Listed;

pub const DEFAULT_PER_PAGE: i64 = 20;
pub const MAX_PER_PAGE: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: i64,
    pub per_page: i64,
}

impl Page {
    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.per_page)
    }

    /// Reads `page` and `per_page`: non-integers are `{"error":"page is invalid"}`, a zero
    /// `per_page` is not allowed, pages below 1 mean page 1, and `per_page` is capped at 100.
    pub fn from_params(params: &Params) -> Result<Self, ApiError> {
        let page = params.optional_integer("page")?.unwrap_or(1).max(1);
        let per_page = match params.optional_integer("per_page")? {
            None => DEFAULT_PER_PAGE,
            Some(0) => {
                return Err(ApiError::InvalidParameter(
                    "per_page has a value not allowed".into(),
                ))
            }
            Some(per_page) => per_page.clamp(1, MAX_PER_PAGE),
        };
        Ok(Self { page, per_page })
    }

    /// The pagination headers for this page of a list fetched at `uri`: `more` when another
    /// page follows, `total` when it was counted (GitLab leaves `X-Total`, `X-Total-Pages`
    /// and the `last` link out above 10,000).
    pub fn headers(
        &self,
        more: bool,
        total: Option<i64>,
        external_url: &str,
        uri: &Uri,
        params: &Params,
    ) -> HeaderMap {
        let total_pages = total.map(|total| ((total + self.per_page - 1) / self.per_page).max(1));
        let next = more.then(|| self.page + 1);
        let prev = (self.page > 1).then(|| {
            let previous = self.page - 1;
            total_pages.map_or(previous, |last| previous.min(last))
        });
        let link = |page: i64| {
            let paging = [
                ("page", page.to_string()),
                ("per_page", self.per_page.to_string()),
            ];
            link_to(external_url, uri, params, &paging)
        };
        let mut links = Vec::new();
        if let Some(prev) = prev {
            links.push(format!("{}; rel=\"prev\"", link(prev)));
        }
        if let Some(next) = next {
            links.push(format!("{}; rel=\"next\"", link(next)));
        }
        links.push(format!("{}; rel=\"first\"", link(1)));
        if let Some(total_pages) = total_pages {
            links.push(format!("{}; rel=\"last\"", link(total_pages)));
        }
        let mut headers = HeaderMap::new();
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        set("x-per-page", self.per_page.to_string());
        set("x-page", self.page.to_string());
        set(
            "x-next-page",
            next.map(|page| page.to_string()).unwrap_or_default(),
        );
        set(
            "x-prev-page",
            prev.map(|page| page.to_string()).unwrap_or_default(),
        );
        set("link", links.join(", "));
        if let (Some(total), Some(total_pages)) = (total, total_pages) {
            set("x-total", total.to_string());
            set("x-total-pages", total_pages.to_string());
        }
        headers
    }
}

/// `<url>` of the request's own path and parameters with `paging` in place of the request's
/// paging parameters (and never a token).
fn link_to(external_url: &str, uri: &Uri, params: &Params, paging: &[(&str, String)]) -> String {
    let mut query: Vec<(String, String)> = params
        .0
        .iter()
        .filter(|(key, _)| {
            !matches!(
                key.as_str(),
                "page" | "per_page" | "cursor" | "private_token" | "access_token"
            )
        })
        .map(|(key, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key.clone(), text)
        })
        .chain(
            paging
                .iter()
                .map(|(key, value)| (key.to_string(), value.clone())),
        )
        .collect();
    query.sort();
    let query = serde_urlencoded::to_string(&query).unwrap_or_default();
    format!("<{external_url}{}?{query}>", uri.path())
}

/// GitLab's keyset cursor for the page after the row `id` in id order: URL-safe Base64 of
/// `{"id":"<id>","_kd":"n"}` (clients pass it back as `cursor` without reading it).
pub fn id_cursor(id: i64) -> String {
    let mut fields = serde_json::Map::new();
    fields.insert("id".into(), Value::String(id.to_string()));
    fields.insert("_kd".into(), Value::String("n".into()));
    cursors::encode(fields)
}

/// The id a cursor made by [`id_cursor`] (or GitLab) names; `None` for anything else.
pub fn cursor_id(cursor: &str) -> Option<i64> {
    cursors::integer(&cursors::decode(cursor)?, "id")
}

/// A list request: its parameters, the page they ask for, and the path its links repeat.
pub struct ListRequest {
    pub params: Params,
    pub page: Page,
    uri: Uri,
}

impl ListRequest {
    /// The keyset page size (`per_page`, as offset paging reads it).
    pub fn per_page(&self) -> i64 {
        self.page.per_page
    }

    /// The `Link` header of a keyset page: `next` with the cursor after `last_id` when
    /// another page follows (GitLab's cursor paginator sends nothing else).
    pub fn keyset_headers(&self, next_after: Option<i64>, external_url: &str) -> HeaderMap {
        self.keyset_cursor_headers(next_after.map(id_cursor), external_url)
    }

    /// [`ListRequest::keyset_headers`] with any cursor (lists keyed by other than an id).
    pub fn keyset_cursor_headers(&self, cursor: Option<String>, external_url: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(cursor) = cursor {
            let paging = [
                ("cursor", cursor),
                ("per_page", self.page.per_page.to_string()),
            ];
            let next = format!(
                "{}; rel=\"next\"",
                link_to(external_url, &self.uri, &self.params, &paging)
            );
            if let Ok(value) = HeaderValue::from_str(&next) {
                headers.insert(axum::http::header::LINK, value);
            }
        }
        headers
    }

    /// The answer to this request: `listed`'s rows as `entity` makes them, with the
    /// pagination headers.
    pub fn answer<T, E: Serialize>(
        &self,
        listed: &Listed<T>,
        external_url: &str,
        entity: impl Fn(&T) -> E,
    ) -> Response {
        let body: Vec<E> = listed.rows.iter().map(entity).collect();
        (self.headers(listed, external_url), Json(body)).into_response()
    }

    /// The pagination headers for this page of `listed`.
    pub fn headers<T>(&self, listed: &Listed<T>, external_url: &str) -> HeaderMap {
        self.page.headers(
            listed.more,
            listed.total,
            external_url,
            &self.uri,
            &self.params,
        )
    }
}

impl<S: Send + Sync> FromRequest<S> for ListRequest {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let uri = match request.extensions().get::<OriginalUri>() {
            Some(OriginalUri(original)) => original.clone(),
            None => request.uri().clone(),
        };
        let params = Params::from_request(request, state).await?;
        let page = Page::from_params(&params)?;
        Ok(Self { params, page, uri })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_pages_neither_overflow_nor_link_past_the_end() {
        let page = Page {
            page: i64::MAX,
            per_page: 1,
        };
        assert_eq!(page.offset(), i64::MAX - 1);
        let uri: Uri = "/api/v4/users".parse().expect("uri");
        let headers = page.headers(false, Some(3), "http://localhost", &uri, &Params::default());
        assert_eq!(headers["x-next-page"], "");
        assert_eq!(headers["x-prev-page"], "3");
        assert_eq!(headers["x-total-pages"], "3");
    }
}
