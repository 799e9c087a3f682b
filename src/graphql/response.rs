//! Makes async-graphql's responses look like graphql-ruby's, as GitLab clients see them:
//!
//! - a request refused before execution (syntax, unknown field, bad argument or variable,
//!   global-ID coercion, limits) has no `data` key at all;
//! - a root field whose resolver failed is present as `null` next to its error (async-graphql
//!   leaves it out, and turns `data` into `null` when no field is left);
//! - fields come in the order the query selected them (async-graphql resolves siblings
//!   concurrently and records them as they finish).
//!
//! Resolver errors carry a private marker extension so that the two tiers can be told apart;
//! it is removed here and never reaches a client.

use std::collections::HashMap;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, FragmentDefinition, OperationDefinition, Selection,
    SelectionSet,
};
use async_graphql::{ErrorExtensions, Name, Positioned};
use serde_json::{Map, Value};

const EXECUTION_MARKER: &str = "x-gitlab-license-server-execution";
/// A store failure's cause (for the log, never the client).
const CAUSE_MARKER: &str = "x-gitlab-license-server-cause";
/// The store failed because the database cannot be reached (the request becomes a 503).
const UNAVAILABLE_MARKER: &str = "x-gitlab-license-server-unavailable";

/// An error raised while resolving a field (tier 2: the field is `null`, `data` stays).
pub fn execution_error(message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, extensions| {
        extensions.set(EXECUTION_MARKER, true);
    })
}

/// A field whose store read or write failed: "Internal server error" to the client, the
/// cause kept aside for the request's log line.
pub fn store_failure(error: &crate::store::StoreError) -> async_graphql::Error {
    let cause = error.to_string();
    let unavailable = error.is_unavailable();
    execution_error("Internal server error").extend_with(move |_, extensions| {
        extensions.set(CAUSE_MARKER, cause.clone());
        if unavailable {
            extensions.set(UNAVAILABLE_MARKER, true);
        }
    })
}

/// The store failures of a request's operations, for its one log line and its status.
#[derive(Debug, Default)]
pub struct Failures {
    pub count: usize,
    pub first_cause: Option<String>,
    /// A field needed the database and could not reach it.
    pub unavailable: bool,
}

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// Response keys selected by `sets`, in query order, each with its sub-selections; fields of
/// fragments are spliced in where the fragment is spread. `direct` tells whether the key was
/// selected outside any fragment (so it must be present whatever the object's type).
fn selected_keys<'a>(
    sets: &[&'a SelectionSet],
    fragments: &'a Fragments,
    depth: usize,
) -> Vec<(String, bool, Vec<&'a SelectionSet>)> {
    let mut keys: Vec<(String, bool, Vec<&'a SelectionSet>)> = Vec::new();
    let mut add = |key: String, direct: bool, sub: &'a SelectionSet| match keys
        .iter_mut()
        .find(|(existing, _, _)| *existing == key)
    {
        Some((_, was_direct, subs)) => {
            *was_direct |= direct;
            subs.push(sub);
        }
        None => keys.push((key, direct, vec![sub])),
    };
    // Fragments may not form cycles (validation refuses them); the bound is a second guard.
    if depth > 32 {
        return keys;
    }
    for set in sets {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let key = field.alias.as_ref().unwrap_or(&field.name);
                    add(key.node.to_string(), true, &field.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = fragments.get(&spread.node.fragment_name.node) {
                        for (key, _, subs) in selected_keys(
                            &[&fragment.node.selection_set.node],
                            fragments,
                            depth + 1,
                        ) {
                            for sub in subs {
                                add(key.clone(), false, sub);
                            }
                        }
                    }
                }
                Selection::InlineFragment(inline) => {
                    for (key, _, subs) in
                        selected_keys(&[&inline.node.selection_set.node], fragments, depth + 1)
                    {
                        for sub in subs {
                            add(key.clone(), false, sub);
                        }
                    }
                }
            }
        }
    }
    keys
}

/// Puts an object's keys in selection order (recursively); at the root, selected fields that
/// are missing (their resolver failed) become `null`.
fn reorder(value: Value, sets: &[&SelectionSet], fragments: &Fragments, root: bool) -> Value {
    match value {
        Value::Object(mut object) => {
            let mut ordered = Map::new();
            for (key, direct, subs) in selected_keys(sets, fragments, 0) {
                match object.remove(&key) {
                    Some(child) => {
                        ordered.insert(key, reorder(child, &subs, fragments, false));
                    }
                    None if root && direct => {
                        ordered.insert(key, Value::Null);
                    }
                    None => {}
                }
            }
            ordered.extend(object);
            Value::Object(ordered)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| reorder(item, sets, fragments, false))
                .collect(),
        ),
        other => other,
    }
}

/// Puts `null` where a field failed (the end of an error's `path`), re-creating the objects
/// on the way that async-graphql turned into `null` because their only fields failed — so
/// `{"namespace": {"addOnEligibleUsers": null}}` rather than `{"namespace": null}`.
fn fill_failed_fields(data: &mut Value, path: &[Value]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = data;
    for segment in parents {
        if current.is_null() && segment.is_string() {
            *current = Value::Object(Map::new());
        }
        current = match (segment, current) {
            (Value::String(key), Value::Object(map)) => {
                map.entry(key.clone()).or_insert(Value::Null)
            }
            (Value::Number(index), Value::Array(items)) => {
                let position = index.as_u64().and_then(|index| usize::try_from(index).ok());
                match position.and_then(|position| items.get_mut(position)) {
                    Some(item) => item,
                    None => return,
                }
            }
            _ => return,
        };
    }
    if current.is_null() {
        *current = Value::Object(Map::new());
    }
    if let (Value::String(key), Value::Object(map)) = (last, current) {
        map.entry(key.clone()).or_insert(Value::Null);
    }
}

fn operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(&operation.node),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.get(name).map(|operation| &operation.node)
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next().map(|operation| &operation.node)
        }
        _ => None,
    }
}

/// One response in GitLab's shape (see the module documentation); store failures are
/// counted into `failures` and their causes removed.
pub fn shape(
    response: &async_graphql::Response,
    document: Option<&ExecutableDocument>,
    operation_name: Option<&str>,
    failures: &mut Failures,
) -> Value {
    let mut body = serde_json::to_value(response).unwrap_or_else(|_| Value::Object(Map::new()));
    let Some(object) = body.as_object_mut() else {
        return body;
    };
    let mut refused = false;
    if let Some(Value::Array(errors)) = object.get_mut("errors") {
        for error in errors.iter_mut() {
            let Some(extensions) = error.get_mut("extensions").and_then(Value::as_object_mut)
            else {
                refused = true;
                continue;
            };
            refused |= extensions.remove(EXECUTION_MARKER).is_none();
            if let Some(Value::String(cause)) = extensions.remove(CAUSE_MARKER) {
                failures.count += 1;
                failures.first_cause.get_or_insert(cause);
            }
            failures.unavailable |= extensions.remove(UNAVAILABLE_MARKER).is_some();
            if extensions.is_empty() {
                if let Some(error) = error.as_object_mut() {
                    error.remove("extensions");
                }
            }
        }
    }
    if refused {
        object.remove("data");
        return body;
    }
    let Some(document) = document else {
        return body;
    };
    if let Some(operation) = operation(document, operation_name) {
        let mut data = object
            .remove("data")
            .map_or(Value::Null, |data| match data {
                Value::Null => Value::Object(Map::new()),
                other => other,
            });
        if let Some(Value::Array(errors)) = object.get("errors") {
            for error in errors {
                if let Some(Value::Array(path)) = error.get("path") {
                    fill_failed_fields(&mut data, path);
                }
            }
        }
        let data = reorder(
            data,
            &[&operation.selection_set.node],
            &document.fragments,
            true,
        );
        // `data` first, as graphql-ruby writes it.
        let mut ordered = Map::new();
        ordered.insert("data".into(), data);
        ordered.extend(std::mem::take(object));
        *object = ordered;
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(value: &Value) -> String {
        serde_json::to_string(value).expect("json")
    }

    #[test]
    fn selection_order_with_fragments_and_aliases() {
        let query = "query { b: second { y x } first ...F } fragment F on Query { third { z } }";
        let document = async_graphql::parser::parse_query(query).expect("query");
        let operation = operation(&document, None).expect("operation");
        let data = json!({"third": {"z": 1}, "first": 2, "b": {"x": 1, "y": 2}});
        let ordered = reorder(
            data,
            &[&operation.selection_set.node],
            &document.fragments,
            true,
        );
        assert_eq!(
            text(&ordered),
            r#"{"b":{"y":2,"x":1},"first":2,"third":{"z":1}}"#
        );
    }

    #[test]
    fn failed_fields_are_null_inside_their_parents() {
        let mut data = json!({"namespace": null, "list": [{"a": 1}]});
        fill_failed_fields(
            &mut data,
            &[json!("namespace"), json!("addOnEligibleUsers")],
        );
        fill_failed_fields(&mut data, &[json!("list"), json!(0), json!("b")]);
        fill_failed_fields(&mut data, &[json!("list"), json!(5), json!("b")]);
        assert_eq!(
            text(&data),
            r#"{"namespace":{"addOnEligibleUsers":null},"list":[{"a":1,"b":null}]}"#
        );
    }

    #[test]
    fn missing_root_fields_become_null_and_nested_ones_stay_absent() {
        let query = "{ a { x y } b }";
        let document = async_graphql::parser::parse_query(query).expect("query");
        let operation = operation(&document, None).expect("operation");
        let ordered = reorder(
            json!({"a": {"y": 1}}),
            &[&operation.selection_set.node],
            &document.fragments,
            true,
        );
        assert_eq!(text(&ordered), r#"{"a":{"y":1},"b":null}"#);
    }
}
