//! The object types: add-on purchases, users (as `UserCore` and `AddOnUser`), seats, and
//! their connections (groups and namespaces are in `namespaces`).

use async_graphql::connection::{self, Connection, ConnectionNameType, EdgeNameType, EmptyFields};
use async_graphql::{Context, Object, OutputType, Result};

use super::gid::{AddOnPurchaseId, UserId};
use super::memo::MemoKey;
use super::values::{Date, Time, UserState};
use super::{internal, request};
use crate::domain::add_ons::display_name;
use crate::services::add_ons as seats;
use crate::store::{AddOnPurchase, User};

/// GitLab's largest (and default) page of a connection.
pub const MAX_PAGE_SIZE: usize = 100;

/// An add-on purchase (`AddOnPurchase`): seats bought and seats in use.
pub struct AddOnPurchaseObject(pub AddOnPurchase);

#[Object(name = "AddOnPurchase")]
impl AddOnPurchaseObject {
    /// ID of the add-on purchase.
    async fn id(&self) -> AddOnPurchaseId {
        AddOnPurchaseId::of(self.0.id)
    }

    /// Name of the add-on.
    async fn name(&self) -> String {
        display_name(&self.0.add_on_name)
    }

    /// Number of seats purchased.
    async fn purchased_quantity(&self) -> i64 {
        self.0.quantity
    }

    /// Number of seats assigned.
    async fn assigned_quantity(&self) -> i64 {
        self.0.assigned_quantity
    }
}

pub(super) fn web_url(ctx: &Context<'_>, path: &str) -> String {
    format!(
        "{}/{path}",
        request(ctx).state.config.external_url.trim_end_matches('/')
    )
}

/// A user's fields, shared by `UserCore` and `AddOnUser` (the same user under two names, as
/// in GitLab's schema); `$extra` adds a type's own fields.
macro_rules! user_object {
    ($rust:ident, $graphql:literal, $description:literal, { $($extra:tt)* }) => {
        #[doc = $description]
        pub struct $rust(pub User);

        #[Object(name = $graphql)]
        impl $rust {
            /// Global ID of the user.
            async fn id(&self) -> UserId {
                UserId::of(self.0.id)
            }

            /// Username of the user.
            async fn username(&self) -> &str {
                &self.0.username
            }

            /// Human-readable name of the user.
            async fn name(&self) -> &str {
                &self.0.name
            }

            /// State of the user.
            async fn state(&self) -> UserState {
                UserState::of(self.0.state)
            }

            /// Indicates if the user is a bot.
            async fn bot(&self) -> bool {
                self.0.user_type.is_bot()
            }

            /// Indicates if the user is a regular human user.
            async fn human(&self) -> bool {
                self.0.user_type == crate::domain::users::UserType::Human
            }

            /// Indicates if the user is active.
            async fn active(&self) -> bool {
                self.0.state == crate::domain::users::UserState::Active
            }

            /// User's public email (not kept by this server).
            async fn public_email(&self) -> Option<String> {
                None
            }

            /// URL of the user's avatar (not kept by this server).
            async fn avatar_url(&self) -> Option<String> {
                None
            }

            /// Web URL of the user.
            async fn web_url(&self, ctx: &Context<'_>) -> String {
                web_url(ctx, &self.0.username)
            }

            /// Web path of the user.
            async fn web_path(&self) -> String {
                format!("/{}", self.0.username)
            }

            /// Timestamp of when the user was created.
            async fn created_at(&self) -> Time {
                Time(self.0.created_at)
            }

            /// Date the user was last active.
            async fn last_activity_on(&self) -> Option<Date> {
                self.0.last_activity_on.map(Date)
            }

            /// Timestamp of the last sign-in (sign-ins are not tracked here).
            async fn last_login_at(&self) -> Option<Time> {
                None
            }

            /// Date of the user's last GitLab Duo activity (not tracked here).
            async fn last_duo_activity_on(&self) -> Option<Date> {
                None
            }

            $($extra)*
        }
    };
}

user_object!(
    UserCore,
    "UserCore",
    "Core representation of a GitLab user.",
    {}
);

user_object!(AddOnUser, "AddOnUser", "A user with add-on data.", {
    /// Add-on purchase assignments for the user.
    async fn add_on_assignments(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(max_items = 100))] add_on_purchase_ids: Vec<AddOnPurchaseId>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Option<AssignmentConnection>> {
        let context = request(ctx);
        let ids: Vec<i64> = add_on_purchase_ids
            .iter()
            .map(AddOnPurchaseId::number)
            .collect();
        let store = &context.state.store;
        let seats = context
            .memo
            .get(MemoKey::UserSeats(self.0.id, ids.clone()), || {
                store.user_add_on_seats(self.0.id, &ids, context.state.clock.today())
            })
            .await
            .map_err(internal)?;
        let mut visible = Vec::new();
        for purchase in seats.iter() {
            let administers = match purchase.namespace_id {
                None => seats::administers_instance(&context.caller),
                Some(group_id) => super::owns_group(ctx, group_id).await.map_err(internal)?,
            };
            if administers {
                visible.push(UserAddOnAssignment(purchase.clone()));
            }
        }
        paginate_list(visible, after, before, first, last)
            .await
            .map(Some)
    }
});

/// An assignment of an AddOnPurchase to a User.
pub struct UserAddOnAssignment(pub AddOnPurchase);

#[Object(name = "UserAddOnAssignment")]
impl UserAddOnAssignment {
    /// Add-on purchase the user is assigned to.
    async fn add_on_purchase(&self) -> AddOnPurchaseObject {
        AddOnPurchaseObject(self.0.clone())
    }
}

macro_rules! connection_names {
    ($connection:ident, $edge:ident, $connection_name:literal, $edge_name:literal) => {
        pub struct $connection;
        impl ConnectionNameType for $connection {
            fn type_name<T: OutputType>() -> String {
                $connection_name.into()
            }
        }
        pub struct $edge;
        impl EdgeNameType for $edge {
            fn type_name<T: OutputType>() -> String {
                $edge_name.into()
            }
        }
    };
}

connection_names!(
    AddOnUserConnectionName,
    AddOnUserEdgeName,
    "AddOnUserConnection",
    "AddOnUserEdge"
);
connection_names!(
    AssignmentConnectionName,
    AssignmentEdgeName,
    "UserAddOnAssignmentConnection",
    "UserAddOnAssignmentEdge"
);

/// Keyset cursors ([`crate::domain::cursors`]): a page costs the same at any depth.
pub type AddOnUserConnection = Connection<
    String,
    AddOnUser,
    EmptyFields,
    EmptyFields,
    AddOnUserConnectionName,
    AddOnUserEdgeName,
>;
pub type AssignmentConnection = Connection<
    usize,
    UserAddOnAssignment,
    EmptyFields,
    EmptyFields,
    AssignmentConnectionName,
    AssignmentEdgeName,
>;

/// The offset window `first/last/after/before` select from `total` items (offset cursors,
/// as GitLab's offset-paginated lists; at most [`MAX_PAGE_SIZE`] per page).
pub fn window(
    after: Option<usize>,
    before: Option<usize>,
    first: Option<usize>,
    last: Option<usize>,
    total: usize,
) -> (usize, usize) {
    let mut start = after.map_or(0, |after| after + 1).min(total);
    let mut end = before.unwrap_or(total).min(total).max(start);
    if let Some(first) = first {
        end = end.min(start + first.min(MAX_PAGE_SIZE));
    }
    if let Some(last) = last {
        start = start.max(end.saturating_sub(last.min(MAX_PAGE_SIZE)));
    }
    if first.is_none() && last.is_none() {
        end = end.min(start + MAX_PAGE_SIZE);
    }
    (start, end)
}

/// A connection over a list already in memory (mutation payloads, a user's seats).
pub async fn paginate_list<Node, Name, EdgeName>(
    items: Vec<Node>,
    after: Option<String>,
    before: Option<String>,
    first: Option<i32>,
    last: Option<i32>,
) -> Result<Connection<usize, Node, EmptyFields, EmptyFields, Name, EdgeName>>
where
    Node: OutputType,
    Name: ConnectionNameType,
    EdgeName: EdgeNameType,
{
    connection::query(
        after,
        before,
        first,
        last,
        |after, before, first, last| async move {
            let total = items.len();
            let (start, end) = window(after, before, first, last, total);
            let mut connection = Connection::new(start > 0, end < total);
            connection.edges.extend(
                items
                    .into_iter()
                    .enumerate()
                    .skip(start)
                    .take(end - start)
                    .map(|(index, node)| connection::Edge::new(index, node)),
            );
            Ok::<_, async_graphql::Error>(connection)
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::{window, MAX_PAGE_SIZE};

    #[test]
    fn offset_windows_like_relay() {
        assert_eq!(window(None, None, Some(2), None, 6), (0, 2));
        assert_eq!(window(Some(1), None, Some(2), None, 6), (2, 4));
        assert_eq!(window(Some(4), None, Some(2), None, 6), (5, 6));
        assert_eq!(window(None, None, None, Some(2), 6), (4, 6));
        assert_eq!(window(None, Some(4), None, Some(2), 6), (2, 4));
        assert_eq!(window(Some(9), None, Some(2), None, 6), (6, 6));
        assert_eq!(window(None, None, None, None, 500), (0, MAX_PAGE_SIZE));
        assert_eq!(
            window(None, None, Some(1000), None, 500),
            (0, MAX_PAGE_SIZE)
        );
        // Forward windows do not depend on the total.
        assert_eq!(window(Some(1), None, Some(2), None, usize::MAX), (2, 4));
    }
}
