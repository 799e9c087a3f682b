//! The query root: add-on purchases, eligible users, and the users and groups the explorer
//! needs.

use async_graphql::{Context, Object, Result, ID};

use super::gid::{AddOnPurchaseId, NamespaceId, UserId};
use super::memo::MemoKey;
use super::namespaces::{GroupObject, NamespaceObject};
use super::response::execution_error;
use super::types::{AddOnPurchaseObject, AddOnUserConnection, UserCore};
use super::values::{AddOnType, UserSort};
use super::{internal, request, visible_purchases};
use crate::domain::groups::Visibility;
use crate::services::add_ons::SeatError;
use crate::store::Group;

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// Retrieve all active add-on purchases. This query can be used in GitLab.com and
    /// self-managed environments.
    async fn add_on_purchases(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "ID of namespace that the add-ons were purchased for.")]
        namespace_id: Option<NamespaceId>,
    ) -> Result<Option<Vec<AddOnPurchaseObject>>> {
        let purchases = visible_purchases(ctx, namespace_id.as_ref().map(NamespaceId::number))
            .await
            .map_err(internal)?;
        Ok(Some(
            purchases.iter().cloned().map(AddOnPurchaseObject).collect(),
        ))
    }

    /// Retrieve the active add-on purchase of one type.
    #[graphql(deprecation = "Use addOnPurchases. Deprecated in GitLab 17.4.")]
    async fn add_on_purchase(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Type of add-on for the add-on purchase.")] add_on_type: AddOnType,
        #[graphql(desc = "ID of namespace that the add-on was purchased for.")]
        namespace_id: Option<NamespaceId>,
    ) -> Result<Option<AddOnPurchaseObject>> {
        let purchases = visible_purchases(ctx, namespace_id.as_ref().map(NamespaceId::number))
            .await
            .map_err(internal)?;
        Ok(purchases
            .iter()
            .find(|purchase| purchase.add_on_name == add_on_type.internal_name())
            .cloned()
            .map(AddOnPurchaseObject))
    }

    /// Users within the self-managed instance who are eligible for add-ons.
    #[allow(clippy::too_many_arguments)]
    async fn self_managed_add_on_eligible_users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Type of add on to filter the eligible users by.")] add_on_type: AddOnType,
        #[graphql(
            desc = "Global IDs of the add on purchases to find assignments for.",
            validator(max_items = 100)
        )]
        add_on_purchase_ids: Vec<AddOnPurchaseId>,
        #[graphql(desc = "Search the user list.")] search: Option<String>,
        #[graphql(desc = "Sort the user list.")] sort: Option<UserSort>,
        #[graphql(desc = "Filter users list by assigned seat.")] filter_by_assigned_seat: Option<
            String,
        >,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Option<AddOnUserConnection>> {
        if !request(ctx).caller.admin() {
            return Err(execution_error(SeatError::NotAvailable.to_string()));
        }
        let purchases = (add_on_type, add_on_purchase_ids);
        let filter = (search, sort, filter_by_assigned_seat);
        let page = (after, before, first, last);
        super::eligible::eligible_users(ctx, None, purchases, filter, page).await
    }

    /// Get information about current user.
    async fn current_user(&self, ctx: &Context<'_>) -> Option<UserCore> {
        request(ctx).caller.user().cloned().map(UserCore)
    }

    /// Find a user by ID or username (signed-in callers only).
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "ID of the User.")] id: Option<UserId>,
        #[graphql(desc = "Username of the User.")] username: Option<String>,
    ) -> Result<Option<UserCore>> {
        let context = request(ctx);
        if context.caller.user().is_none() {
            return Ok(None);
        }
        let store = &context.state.store;
        let user = match (id, username) {
            (Some(id), _) => {
                let id = id.number();
                context
                    .memo
                    .get(MemoKey::User(id), || store.find_user(id))
                    .await
            }
            (None, Some(username)) => {
                context
                    .memo
                    .get(MemoKey::Username(username.clone()), || {
                        store.find_user_by_username(&username)
                    })
                    .await
            }
            (None, None) => {
                return Err(execution_error("Provide either a single username or id"));
            }
        };
        Ok(user.map_err(internal)?.as_ref().clone().map(UserCore))
    }

    /// Find a group.
    async fn group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Full path of the group. For example, `gitlab-org/gitlab-foss`.")]
        full_path: ID,
    ) -> Result<Option<GroupObject>> {
        Ok(visible_group(ctx, &full_path).await?.map(GroupObject))
    }

    /// Find a namespace.
    async fn namespace(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Full path of the namespace. For example, `gitlab-org/gitlab-foss`.")]
        full_path: ID,
    ) -> Result<Option<NamespaceObject>> {
        Ok(visible_group(ctx, &full_path).await?.map(NamespaceObject))
    }
}

/// A group the caller may see: public ones, internal ones to signed-in users, private ones to
/// members and administrators. Anything else reads as absent.
async fn visible_group(ctx: &Context<'_>, full_path: &str) -> Result<Option<Group>> {
    let context = request(ctx);
    let group = context
        .memo
        .get(MemoKey::VisibleGroup(full_path.to_string()), || {
            load_visible_group(ctx, full_path)
        })
        .await
        .map_err(internal)?;
    Ok(group.as_ref().clone())
}

async fn load_visible_group(
    ctx: &Context<'_>,
    full_path: &str,
) -> Result<Option<Group>, crate::store::StoreError> {
    let context = request(ctx);
    let store = &context.state.store;
    let Some(group) = store.find_group(full_path).await? else {
        return Ok(None);
    };
    let visible = match (context.caller.user(), group.visibility) {
        (_, Visibility::Public) => true,
        (None, _) => false,
        (Some(_), Visibility::Internal) => true,
        (Some(_), _) if context.caller.admin() => true,
        (Some(user), _) => store.group_member(group.id, user.id).await?.is_some(),
    };
    Ok(visible.then_some(group))
}
