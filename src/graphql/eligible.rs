//! `addOnEligibleUsers` and `selfManagedAddOnEligibleUsers`: who may hold a seat, one keyset
//! page at a time. A cursor holds the sort values of its row (GitLab's keyset cursors), so
//! the page after any cursor is an index range, whatever its depth; nothing is counted.

use async_graphql::connection::{self, Connection, Edge};
use async_graphql::{Context, Result};
use serde_json::{Map, Value};

use super::gid::AddOnPurchaseId;
use super::types::{AddOnUser, AddOnUserConnection, MAX_PAGE_SIZE};
use super::values::{AddOnType, UserSort};
use super::{internal, request, response::execution_error};
use crate::domain::cursors;
use crate::store::{
    EligibleKey, EligibleOrder, EligiblePage, EligibleQuery, EligibleUser, EligibleUserFilter,
    User, UserSearch,
};

/// Whose seats both eligible-user lists are about: `addOnType`, `addOnPurchaseIds`.
pub type EligiblePurchases = (AddOnType, Vec<AddOnPurchaseId>);

/// How both eligible-user lists narrow and order: `search`, `sort`, `filterByAssignedSeat`.
pub type EligibleUsersFilter = (Option<String>, Option<UserSort>, Option<String>);

/// A connection's paging arguments: `after`, `before`, `first`, `last`.
pub type ConnectionArgs = (Option<String>, Option<String>, Option<i32>, Option<i32>);

/// GitLab's answer to a cursor it cannot read.
const INVALID_CURSOR: &str = "Please provide a valid cursor";

/// Which of a row's sort values an order's cursors carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CursorFields {
    search_rank: bool,
    name: bool,
    last_activity_on: bool,
}

impl CursorFields {
    fn of(order: EligibleOrder, searching: bool) -> Self {
        let by_name = matches!(order, EligibleOrder::NameAsc | EligibleOrder::NameDesc);
        let by_activity = matches!(
            order,
            EligibleOrder::LastActivityAsc | EligibleOrder::LastActivityDesc
        );
        Self {
            search_rank: searching,
            name: searching || by_name,
            last_activity_on: !searching && by_activity,
        }
    }

    /// `{"search_rank":"3","name":"Ada","id":"42"}`: the order's values, as GitLab writes
    /// them (strings, `null` for no date).
    fn encode(self, key: &EligibleKey) -> String {
        let mut fields = Map::new();
        if self.search_rank {
            fields.insert("search_rank".into(), key.search_rank.to_string().into());
        }
        if self.name {
            fields.insert("name".into(), key.name.clone().into());
        }
        if self.last_activity_on {
            let date = key.last_activity_on.map(|date| date.to_string());
            fields.insert(
                "last_activity_on".into(),
                date.map_or(Value::Null, Value::from),
            );
        }
        fields.insert("id".into(), key.id.to_string().into());
        cursors::encode(fields)
    }

    /// The key a cursor names, if it carries every value this order needs.
    fn decode(self, cursor: &str) -> Option<EligibleKey> {
        let fields = cursors::decode(cursor)?;
        let name = match fields.get("name") {
            Some(Value::String(name)) => name.clone(),
            _ if self.name => return None,
            _ => String::new(),
        };
        let last_activity_on = match fields.get("last_activity_on") {
            Some(Value::String(date)) => Some(date.parse().ok()?),
            Some(Value::Null) => None,
            _ if self.last_activity_on => return None,
            _ => None,
        };
        let search_rank = match cursors::integer(&fields, "search_rank") {
            Some(rank) => rank,
            None if self.search_rank => return None,
            None => 0,
        };
        Some(EligibleKey {
            id: cursors::integer(&fields, "id")?,
            name,
            last_activity_on,
            search_rank,
        })
    }
}

/// Users who may hold seats of a namespace's (or the instance's) purchases, one keyset page
/// at a time.
pub async fn eligible_users(
    ctx: &Context<'_>,
    namespace_id: Option<i64>,
    (add_on_type, add_on_purchase_ids): EligiblePurchases,
    (search, sort, filter_by_assigned_seat): EligibleUsersFilter,
    (after, before, first, last): ConnectionArgs,
) -> Result<Option<AddOnUserConnection>> {
    let context = request(ctx);
    let duo = crate::domain::add_ons::add_on(add_on_type.internal_name())
        .is_some_and(|add_on| add_on.duo);
    // GitLab reads the filter with `Gitlab::Utils.to_boolean`; anything else means no filter.
    let holders = filter_by_assigned_seat
        .as_deref()
        .and_then(crate::domain::text::to_boolean);
    let purchases: Vec<i64> = add_on_purchase_ids
        .iter()
        .map(AddOnPurchaseId::number)
        .collect();
    // A search that is present but blank finds nobody (`User.search`).
    let blank_search = search
        .as_deref()
        .is_some_and(|text| UserSearch::new(text).is_none());
    let filter = EligibleUserFilter {
        search: search.as_deref().and_then(UserSearch::new),
        seat_holders: holders.map(|holders| (purchases, holders)),
    };
    // GitLab's finder sorts by id, newest first, unless told otherwise.
    let order = sort.unwrap_or(UserSort::IdDesc).order();
    let fields = CursorFields::of(order, filter.search.is_some());
    let today = context.state.clock.today();
    let state = context.state.clone();
    let args = (after, before, first, last);
    keyset_connection(fields, args, |after, before, first, last| async move {
        if !duo || blank_search {
            return Ok(Connection::new(false, false));
        }
        // `last` alone reads from the end; with `first`, it trims the first page.
        let backward = last.is_some() && first.is_none();
        let size = first.or(last).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE);
        let (has_after, has_before) = (after.is_some(), before.is_some());
        let page = EligiblePage {
            after,
            before,
            backward,
            limit: i64::try_from(size).unwrap_or(0),
        };
        let query = EligibleQuery {
            namespace_id,
            filter: &filter,
            order,
            today,
            page: &page,
        };
        let (mut rows, more) = state.store.eligible_users(&query).await.map_err(internal)?;
        let mut trimmed = false;
        if let (Some(first), Some(last)) = (first, last) {
            let keep = last.min(first.min(MAX_PAGE_SIZE));
            trimmed = rows.len() > keep;
            rows.drain(..rows.len().saturating_sub(keep));
        }
        // GitLab's keyset connection: a cursor given means rows lie beyond it.
        let (has_previous, has_next) = if backward {
            (more, has_before)
        } else {
            (has_after || trimmed, more)
        };
        let mut connection = Connection::new(has_previous, has_next);
        connection
            .edges
            .extend(rows.into_iter().map(|row: EligibleUser| {
                Edge::new(fields.encode(&row.key()), AddOnUser(row.user))
            }));
        Ok(connection)
    })
    .await
    .map(Some)
}

/// Runs `page` with the connection's arguments read: the keys the `after` and `before`
/// cursors name (GitLab's error for a cursor that names none of this order), `first` and
/// `last`.
async fn keyset_connection<Page, Paged>(
    fields: CursorFields,
    (after, before, first, last): ConnectionArgs,
    page: Page,
) -> Result<AddOnUserConnection>
where
    Page: FnOnce(Option<EligibleKey>, Option<EligibleKey>, Option<usize>, Option<usize>) -> Paged,
    Paged: std::future::Future<Output = Result<AddOnUserConnection>>,
{
    connection::query(
        after,
        before,
        first,
        last,
        |after: Option<String>, before: Option<String>, first, last| async move {
            let key = |cursor: Option<String>| {
                cursor
                    .map(|cursor| {
                        fields
                            .decode(&cursor)
                            .ok_or_else(|| execution_error(INVALID_CURSOR))
                    })
                    .transpose()
            };
            page(key(after)?, key(before)?, first, last).await
        },
    )
    .await
}

/// A mutation payload's `users` (already in memory, newest id first, as GitLab's keyset
/// connection over `User.id_in(ids)`), with the same cursors as the lists' `ID_DESC` order.
pub async fn users_by_id_desc(
    users: Vec<User>,
    args: ConnectionArgs,
) -> Result<AddOnUserConnection> {
    let fields = CursorFields::of(EligibleOrder::IdDesc, false);
    keyset_connection(fields, args, |after, before, first, last| async move {
        let (after, before) = (after.map(|key| key.id), before.map(|key| key.id));
        let in_range: Vec<User> = users
            .into_iter()
            .filter(|user| after.is_none_or(|after| user.id < after))
            .filter(|user| before.is_none_or(|before| user.id > before))
            .collect();
        let (start, end) = super::types::window(None, None, first, last, in_range.len());
        let has_previous = after.is_some() || start > 0;
        let has_next = before.is_some() || end < in_range.len();
        let mut connection = Connection::new(has_previous, has_next);
        connection.edges.extend(
            in_range
                .into_iter()
                .skip(start)
                .take(end - start)
                .map(|user| Edge::new(fields.encode(&id_key(user.id)), AddOnUser(user))),
        );
        Ok(connection)
    })
    .await
}

/// The key of a row in id order (the other values are not part of its cursor).
fn id_key(id: i64) -> EligibleKey {
    EligibleKey {
        id,
        name: String::new(),
        last_activity_on: None,
        search_rank: 0,
    }
}
