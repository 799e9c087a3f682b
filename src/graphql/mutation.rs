//! The four seat mutations, Relay-style: one `input` argument, a payload with `errors` and
//! the echoed `clientMutationId`.

use async_graphql::{Context, InputObject, Object, Result};

use super::gid::{AddOnPurchaseId, UserId};
use super::types::{AddOnPurchaseObject, AddOnUser, AddOnUserConnection};
use super::{internal, request};
use crate::services::add_ons::{self as seats, BulkChange, SeatChange, SeatError, SeatResult};

pub struct MutationRoot;

#[derive(InputObject)]
#[graphql(name = "UserAddOnAssignmentBulkCreateInput")]
pub struct BulkCreateInput {
    /// A unique identifier for the client performing the mutation.
    client_mutation_id: Option<String>,
    /// Global ID of AddOnPurchase to be assigned to.
    add_on_purchase_id: AddOnPurchaseId,
    /// Global IDs of user to be assigned.
    user_ids: Vec<UserId>,
}

#[derive(InputObject)]
#[graphql(name = "UserAddOnAssignmentBulkRemoveInput")]
pub struct BulkRemoveInput {
    /// A unique identifier for the client performing the mutation.
    client_mutation_id: Option<String>,
    /// Global ID of AddOnPurchase to be unassigned from.
    add_on_purchase_id: AddOnPurchaseId,
    /// Global IDs of user to be unassigned.
    user_ids: Vec<UserId>,
}

#[derive(InputObject)]
#[graphql(name = "UserAddOnAssignmentCreateInput")]
pub struct CreateInput {
    /// A unique identifier for the client performing the mutation.
    client_mutation_id: Option<String>,
    /// Global ID of AddOnPurchase to be assigned to.
    add_on_purchase_id: AddOnPurchaseId,
    /// Global ID of user to be assigned.
    user_id: UserId,
}

#[derive(InputObject)]
#[graphql(name = "UserAddOnAssignmentRemoveInput")]
pub struct RemoveInput {
    /// A unique identifier for the client performing the mutation.
    client_mutation_id: Option<String>,
    /// Global ID of AddOnPurchase assignment belongs to.
    add_on_purchase_id: AddOnPurchaseId,
    /// Global ID of user whose assignment will be removed.
    user_id: UserId,
}

/// What every payload carries: the change (on success), the codes (on refusal), the echo.
#[derive(Default)]
struct Outcome {
    change: Option<SeatChange>,
    errors: Vec<String>,
    client_mutation_id: Option<String>,
}

/// Splits a seat operation's result into GitLab's tiers: a change or a refusal code go in the
/// payload; "resource not available" and the limits are top-level errors (the field is null).
fn outcome(
    result: Result<SeatChange, SeatError>,
    client_mutation_id: Option<String>,
) -> Result<Outcome> {
    match result {
        Ok(change) => Ok(Outcome {
            change: Some(change),
            errors: Vec::new(),
            client_mutation_id,
        }),
        Err(SeatError::Refused(code)) => Ok(Outcome {
            change: None,
            errors: vec![code.to_string()],
            client_mutation_id,
        }),
        Err(SeatError::Store(error)) => Err(internal(error)),
        Err(error) => Err(super::response::execution_error(error.to_string())),
    }
}

/// A payload type: the fields every payload has, plus the users it reports (a connection for
/// the bulk mutations, one user for the others). The extra field is spliced in as tokens, so
/// that `#[Object]` sees it as one of its own methods.
macro_rules! payload {
    ($rust:ident, $graphql:literal, users) => {
        payload!($rust, $graphql, {
            /// Users affected by the mutation.
            async fn users(
                &self,
                after: Option<String>,
                before: Option<String>,
                first: Option<i32>,
                last: Option<i32>,
            ) -> Result<Option<AddOnUserConnection>> {
                let Some(change) = &self.0.change else {
                    return Ok(None);
                };
                let users = change.users.clone();
                let page = (after, before, first, last);
                super::eligible::users_by_id_desc(users, page).await.map(Some)
            }
        });
    };
    ($rust:ident, $graphql:literal, user) => {
        payload!($rust, $graphql, {
            /// User that the add-on was (un)assigned to.
            async fn user(&self) -> Option<AddOnUser> {
                self.0
                    .change
                    .as_ref()
                    .and_then(|change| change.users.first().cloned())
                    .map(AddOnUser)
            }
        });
    };
    ($rust:ident, $graphql:literal, { $($extra:tt)* }) => {
        pub struct $rust(Outcome);

        #[Object(name = $graphql)]
        impl $rust {
            /// A unique identifier for the client performing the mutation.
            async fn client_mutation_id(&self) -> Option<&str> {
                self.0.client_mutation_id.as_deref()
            }

            /// Errors encountered during the mutation.
            async fn errors(&self) -> &[String] {
                &self.0.errors
            }

            /// AddOnPurchase state after the mutation.
            async fn add_on_purchase(&self) -> Option<AddOnPurchaseObject> {
                self.0
                    .change
                    .as_ref()
                    .map(|change| AddOnPurchaseObject(change.purchase.clone()))
            }

            $($extra)*
        }
    };
}

payload!(
    BulkCreatePayload,
    "UserAddOnAssignmentBulkCreatePayload",
    users
);
payload!(
    BulkRemovePayload,
    "UserAddOnAssignmentBulkRemovePayload",
    users
);
payload!(CreatePayload, "UserAddOnAssignmentCreatePayload", user);
payload!(RemovePayload, "UserAddOnAssignmentRemovePayload", user);

fn numbers(ids: &[UserId]) -> Vec<i64> {
    ids.iter().map(UserId::number).collect()
}

/// A bulk seat change by the request's caller.
async fn bulk(
    ctx: &Context<'_>,
    purchase: &AddOnPurchaseId,
    user_ids: &[i64],
    change: BulkChange,
) -> SeatResult<SeatChange> {
    let context = request(ctx);
    seats::change_bulk(
        &context.state,
        &context.caller,
        purchase.number(),
        user_ids,
        change,
    )
    .await
}

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Assigns an add-on seat to several users (at most 100); users who may not hold one
    /// are skipped.
    async fn user_add_on_assignment_bulk_create(
        &self,
        ctx: &Context<'_>,
        input: BulkCreateInput,
    ) -> Result<Option<BulkCreatePayload>> {
        let users = numbers(&input.user_ids);
        let result = bulk(ctx, &input.add_on_purchase_id, &users, BulkChange::Assign).await;
        outcome(result, input.client_mutation_id).map(|outcome| Some(BulkCreatePayload(outcome)))
    }

    /// Removes the add-on seats of several users (at most 100).
    async fn user_add_on_assignment_bulk_remove(
        &self,
        ctx: &Context<'_>,
        input: BulkRemoveInput,
    ) -> Result<Option<BulkRemovePayload>> {
        let users = numbers(&input.user_ids);
        let result = bulk(ctx, &input.add_on_purchase_id, &users, BulkChange::Remove).await;
        outcome(result, input.client_mutation_id).map(|outcome| Some(BulkRemovePayload(outcome)))
    }

    /// Assigns an add-on seat to one user.
    async fn user_add_on_assignment_create(
        &self,
        ctx: &Context<'_>,
        input: CreateInput,
    ) -> Result<Option<CreatePayload>> {
        let context = request(ctx);
        let result = seats::assign_one(
            &context.state,
            &context.caller,
            input.add_on_purchase_id.number(),
            input.user_id.number(),
        )
        .await;
        outcome(result, input.client_mutation_id).map(|outcome| Some(CreatePayload(outcome)))
    }

    /// Removes one user's add-on seat; `null` (and no error) when they held none.
    async fn user_add_on_assignment_remove(
        &self,
        ctx: &Context<'_>,
        input: RemoveInput,
    ) -> Result<Option<RemovePayload>> {
        let context = request(ctx);
        match seats::remove_one(
            &context.state,
            &context.caller,
            input.add_on_purchase_id.number(),
            input.user_id.number(),
        )
        .await
        {
            Ok(None) => Ok(None),
            Ok(Some(change)) => outcome(Ok(change), input.client_mutation_id)
                .map(|outcome| Some(RemovePayload(outcome))),
            Err(error) => outcome(Err(error), input.client_mutation_id)
                .map(|outcome| Some(RemovePayload(outcome))),
        }
    }
}
