//! Request parameters the way Grape reads them: from the query string, a form (urlencoded or
//! multipart) or a JSON body, with the body winning over the query — and every failure in
//! GitLab's `{"error": "<param> is missing|invalid"}` shape instead of axum's plain text.

use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde_json::{Map, Value};

use crate::body::{read_body, BodyTimedOut};
use crate::error::ApiError;

/// All parameters of a request, merged. Values that are not strings are kept as JSON.
#[derive(Debug, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// A required string parameter (`requires :name, type: String`). Grape only checks that
    /// the key is present, so an explicit JSON `null` passes as an empty value and meets the
    /// model's own validation.
    pub fn required_string(&self, name: &str) -> Result<String, ApiError> {
        match self.0.get(name) {
            None => Err(ApiError::missing(name)),
            Some(Value::Null) => Ok(String::new()),
            // No database column can hold a NUL character (PostgreSQL refuses it outright).
            Some(Value::String(text)) if text.contains('\0') => Err(ApiError::invalid(name)),
            Some(Value::String(text)) => Ok(text.clone()),
            // Grape coerces scalars to String; arrays and hashes do not coerce.
            Some(Value::Number(number)) => Ok(number.to_string()),
            Some(Value::Bool(flag)) => Ok(flag.to_string()),
            Some(_) => Err(ApiError::invalid(name)),
        }
    }
}

impl Params {
    /// Fails with `"a is missing, b is missing"` (Grape's wording and order) when any of
    /// `names` is absent.
    pub fn require(&self, names: &[&str]) -> Result<(), ApiError> {
        let missing: Vec<String> = names
            .iter()
            .filter(|name| !self.0.contains_key(**name))
            .map(|name| format!("{name} is missing"))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidParameter(missing.join(", ")))
        }
    }

    /// An optional string; scalars coerce to text, arrays and objects are invalid.
    pub fn optional_string(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.required_string(name).map(Some),
        }
    }

    /// An optional integer from a JSON number or a decimal string.
    pub fn optional_integer(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => number
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::invalid(name)),
            Some(Value::String(text)) if text.is_empty() => Ok(None),
            Some(Value::String(text)) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid(name)),
            Some(_) => Err(ApiError::invalid(name)),
        }
    }

    /// An integer the request must give (`requires :name, type: Integer`, checked for
    /// presence by [`Params::require`] first): a `null` or empty one is invalid.
    pub fn required_integer(&self, name: &str) -> Result<i64, ApiError> {
        self.optional_integer(name)?
            .ok_or_else(|| ApiError::invalid(name))
    }

    /// An optional boolean as Grape coerces one (`true`/`false`, `1`/`0`, `t`/`f`, `yes`/`no`).
    pub fn optional_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(Value::Number(number)) if number.as_i64() == Some(1) => Ok(Some(true)),
            Some(Value::Number(number)) if number.as_i64() == Some(0) => Ok(Some(false)),
            Some(Value::String(text)) => match text.to_ascii_lowercase().as_str() {
                "true" | "t" | "1" | "yes" | "y" => Ok(Some(true)),
                "false" | "f" | "0" | "no" | "n" => Ok(Some(false)),
                "" => Ok(None),
                _ => Err(ApiError::invalid(name)),
            },
            Some(_) => Err(ApiError::invalid(name)),
        }
    }

    /// An optional list of texts: a JSON array of strings, or one text of items separated by
    /// commas, spaces or line breaks (as a form or query string carries it).
    pub fn optional_list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text.trim().to_string()),
                    _ => Err(ApiError::invalid(name)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(Value::String(text)) => Ok(Some(
                text.split([',', ' ', '\n', '\r', '\t'])
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_string)
                    .collect(),
            )),
            Some(_) => Err(ApiError::invalid(name)),
        }
    }

    /// An optional value that must be one of `allowed`.
    pub fn optional_choice(
        &self,
        name: &str,
        allowed: &[&str],
    ) -> Result<Option<String>, ApiError> {
        match self.optional_string(name)? {
            Some(value) if !allowed.contains(&value.as_str()) => Err(ApiError::InvalidParameter(
                format!("{name} does not have a valid value"),
            )),
            other => Ok(other),
        }
    }
}

fn query_params(parts: &Parts) -> Map<String, Value> {
    let query = parts.uri.query().unwrap_or_default();
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, Value::String(value)))
        .collect()
}

fn media_type(parts: &Parts) -> String {
    parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let mut params = query_params(&parts);
        let body_params: Map<String, Value> = match media_type(&parts).as_str() {
            "application/json" => {
                let bytes = read_body(body).await?;
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    Map::new()
                } else {
                    match serde_json::from_slice::<Value>(&bytes) {
                        Ok(Value::Object(object)) => object,
                        // Grape accepts any JSON; only objects carry named parameters.
                        Ok(_) => Map::new(),
                        Err(_) => {
                            return Err(ApiError::InvalidParameter(
                                "message body does not match declared format".into(),
                            ))
                        }
                    }
                }
            }
            "application/x-www-form-urlencoded" => {
                let bytes = read_body(body).await?;
                serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
                    .map_err(|_| {
                        ApiError::InvalidParameter("the form body could not be parsed".into())
                    })?
                    .into_iter()
                    .map(|(key, value)| (key, Value::String(value)))
                    .collect()
            }
            "multipart/form-data" => {
                let request = Request::from_parts(parts, body);
                let mut multipart =
                    Multipart::from_request(request, state).await.map_err(|_| {
                        ApiError::InvalidParameter("the multipart body could not be parsed".into())
                    })?;
                let mut fields = Map::new();
                loop {
                    match multipart.next_field().await {
                        Ok(Some(field)) => {
                            let name = field.name().unwrap_or_default().to_string();
                            let text = field.text().await.map_err(multipart_error)?;
                            fields.insert(name, Value::String(text));
                        }
                        Ok(None) => break,
                        Err(error) => return Err(multipart_error(error)),
                    }
                }
                fields
            }
            // Other bodies (text/plain, none) carry no named parameters, as in Grape.
            _ => Map::new(),
        };
        params.extend(body_params);
        Ok(Self(params))
    }
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = source {
        if current.is::<BodyTimedOut>() {
            return ApiError::RequestTimeout;
        }
        source = current.source();
    }
    if error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::InvalidParameter("the multipart body could not be parsed".into())
    }
}

/// An `:id` path segment declared `Integer`. `Some(None)`-like overflow is kept as `None`: a
/// well-formed integer too large to be an id exists nowhere, so routes answer their 404.
#[derive(Debug, Clone, Copy)]
pub struct IdParam(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IdParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::invalid("id"))?;
        parse_integer(&text)
            .map(Self)
            .ok_or_else(|| ApiError::invalid("id"))
    }
}

/// Ruby `Integer()` on a path segment: optional sign, then digits (underscores between digits
/// allowed). `Some(None)` for a valid integer outside i64.
fn parse_integer(text: &str) -> Option<Option<i64>> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let well_formed = !unsigned.is_empty()
        && unsigned
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b'_')
        && !unsigned.starts_with('_')
        && !unsigned.ends_with('_')
        && !unsigned.contains("__");
    if !well_formed {
        return None;
    }
    Some(text.replace('_', "").parse::<i64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_as_ruby_reads_them() {
        assert_eq!(parse_integer("12"), Some(Some(12)));
        assert_eq!(parse_integer("+12"), Some(Some(12)));
        assert_eq!(parse_integer("-3"), Some(Some(-3)));
        assert_eq!(parse_integer("1_000"), Some(Some(1000)));
        assert_eq!(parse_integer("99999999999999999999"), Some(None));
        for bad in ["", "abc", "1.5", "1e3", "_1", "1__0", " 1", "0x10", "-"] {
            assert_eq!(parse_integer(bad), None, "{bad:?}");
        }
    }
}

/// A numeric `:id` segment on routes GitLab declares with a `[0-9]*` requirement: anything else
/// matches no route (`404 {"error":"404 Not Found"}`); an integer too large to be an id is kept
/// as `None` so the route can answer its own 404.
#[derive(Debug, Clone, Copy)]
pub struct NumericId(pub Option<i64>);

impl NumericId {
    /// The id, or `404 {message}` for one too large to be any row's.
    pub fn or_not_found(self, message: &'static str) -> Result<i64, ApiError> {
        self.0.ok_or(ApiError::NotFound(message))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for NumericId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(segments) =
            axum::extract::Path::<Vec<String>>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::RouteNotFound)?;
        let text = segments.first().ok_or(ApiError::RouteNotFound)?;
        if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(ApiError::RouteNotFound);
        }
        Ok(Self(text.parse().ok()))
    }
}
