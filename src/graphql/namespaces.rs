//! `Group` and `Namespace`: the same group under GitLab's two names, with its eligible-user
//! list.

use async_graphql::{Context, Object, Result, ID};

use super::eligible::eligible_users;
use super::gid::AddOnPurchaseId;
use super::internal;
use super::types::{web_url, AddOnUserConnection};
use super::values::{AddOnType, UserSort};
use crate::services::add_ons as seats;
use crate::store::Group;

/// A group's fields, shared by `Group` and `Namespace` (a group is a namespace).
macro_rules! namespace_object {
    ($rust:ident, $graphql:literal, $description:literal) => {
        #[doc = $description]
        pub struct $rust(pub Group);

        #[Object(name = $graphql)]
        impl $rust {
            /// ID of the namespace.
            async fn id(&self) -> ID {
                ID(format!("gid://gitlab/Group/{}", self.0.id))
            }

            /// Name of the namespace.
            async fn name(&self) -> &str {
                &self.0.name
            }

            /// Path of the namespace.
            async fn path(&self) -> &str {
                &self.0.path
            }

            /// Full path of the namespace.
            async fn full_path(&self) -> ID {
                ID(self.0.path.clone())
            }

            /// Full name of the namespace.
            async fn full_name(&self) -> &str {
                &self.0.name
            }

            /// Visibility of the namespace.
            async fn visibility(&self) -> &str {
                self.0.visibility.as_str()
            }

            /// Web URL of the namespace.
            async fn web_url(&self, ctx: &Context<'_>) -> String {
                web_url(ctx, &self.0.path)
            }

            /// Users in the namespace hierarchy that add-ons are applicable for. Only
            /// available for root namespaces (every group here is one).
            #[allow(clippy::too_many_arguments)]
            async fn add_on_eligible_users(
                &self,
                ctx: &Context<'_>,
                add_on_type: AddOnType,
                #[graphql(validator(max_items = 100))] add_on_purchase_ids: Vec<AddOnPurchaseId>,
                search: Option<String>,
                sort: Option<UserSort>,
                filter_by_assigned_seat: Option<String>,
                after: Option<String>,
                before: Option<String>,
                first: Option<i32>,
                last: Option<i32>,
            ) -> Result<Option<AddOnUserConnection>> {
                if !super::owns_group(ctx, self.0.id).await.map_err(internal)? {
                    return Err(super::response::execution_error(
                        seats::SeatError::NotAvailable.to_string(),
                    ));
                }
                let purchases = (add_on_type, add_on_purchase_ids);
                let filter = (search, sort, filter_by_assigned_seat);
                let page = (after, before, first, last);
                eligible_users(ctx, Some(self.0.id), purchases, filter, page).await
            }
        }
    };
}

namespace_object!(GroupObject, "Group", "A group (a top-level namespace).");
namespace_object!(NamespaceObject, "Namespace", "A namespace.");
