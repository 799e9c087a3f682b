//! Request parameters the way Grape reads them: from the query string, a form (urlencoded or
//! multipart) or a JSON body, with the body winning over the query — and every failure in
//! GitLab's `{"error": "<param> is missing|invalid"}` shape instead of axum's plain text.

use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Bodies are read up to this size (the limit layer refuses larger ones first).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

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
            Some(Value::String(text)) => Ok(text.clone()),
            // Grape coerces scalars to String; arrays and hashes do not coerce.
            Some(Value::Number(number)) => Ok(number.to_string()),
            Some(Value::Bool(flag)) => Ok(flag.to_string()),
            Some(_) => Err(ApiError::invalid(name)),
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

fn body_too_large_or_unreadable(error: axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return ApiError::PayloadTooLarge;
        }
        source = current.source();
    }
    ApiError::InvalidParameter("the request body could not be read".into())
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let mut params = query_params(&parts);
        let body_params: Map<String, Value> = match media_type(&parts).as_str() {
            "application/json" => {
                let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
                    .await
                    .map_err(body_too_large_or_unreadable)?;
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
                let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
                    .await
                    .map_err(body_too_large_or_unreadable)?;
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
