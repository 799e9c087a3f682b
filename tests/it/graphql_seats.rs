//! GitLab Duo seats over GraphQL: the documented operations, every outcome of the spec's
//! tables, global-ID coercion, who may do what, and the seats' lifecycle.

use gitlab_license_server::store::Write;
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{Reply, TestApp, ROOT_TOKEN};
use crate::support::licenses::{cloud_license, license};
use gitlab_license_server::store::{NewUser, User};

const NOT_AVAILABLE: &str = "The resource that you are attempting to access does not exist or you don't have permission to perform this action";

pub const PURCHASES_QUERY: &str = PURCHASES;
pub const BULK_CREATE_MUTATION: &str = BULK_CREATE;

const PURCHASES: &str = "query { addOnPurchases { id name purchasedQuantity assignedQuantity } }";

const BULK_CREATE: &str = "mutation($p: GitlabSubscriptionsAddOnPurchaseID!, $u: [UserID!]!) {
  userAddOnAssignmentBulkCreate(input: { addOnPurchaseId: $p, userIds: $u, clientMutationId: \"run-1\" }) {
    clientMutationId errors
    addOnPurchase { id name purchasedQuantity assignedQuantity }
    users { nodes { id username } }
  }
}";

const BULK_REMOVE: &str = "mutation($p: GitlabSubscriptionsAddOnPurchaseID!, $u: [UserID!]!) {
  userAddOnAssignmentBulkRemove(input: { addOnPurchaseId: $p, userIds: $u }) {
    errors
    addOnPurchase { assignedQuantity }
    users { nodes { username } }
  }
}";

const CREATE: &str = "mutation($p: GitlabSubscriptionsAddOnPurchaseID!, $u: UserID!) {
  userAddOnAssignmentCreate(input: { addOnPurchaseId: $p, userId: $u, clientMutationId: \"one\" }) {
    clientMutationId errors
    addOnPurchase { assignedQuantity }
    user { username }
  }
}";

const REMOVE: &str = "mutation($p: GitlabSubscriptionsAddOnPurchaseID!, $u: UserID!) {
  userAddOnAssignmentRemove(input: { addOnPurchaseId: $p, userId: $u }) {
    errors
    addOnPurchase { assignedQuantity }
    user { username }
  }
}";

/// A cloud license selling `seats` GitLab Duo Pro seats, current at the test clock.
pub fn duo_license(seats: u64) -> String {
    cloud_license(
        "2026-01-01",
        "2027-01-01",
        json!({
            "plan": "premium",
            "active_user_count": 100,
            "add_on_products": {"duo_pro": [{
                "quantity": seats, "started_on": "2026-01-01", "expires_on": "2027-01-01",
                "purchase_xid": "A-S00012345", "trial": false
            }]}
        }),
    )
}

fn gid(user: &User) -> String {
    format!("gid://gitlab/User/{}", user.id)
}

fn gids(users: &[&User]) -> Value {
    json!(users.iter().map(|user| gid(user)).collect::<Vec<_>>())
}

async fn user(app: &TestApp, username: &str) -> User {
    app.add_user(NewUser::human(username, false)).await
}

async fn user_of(app: &TestApp, username: &str, state: &str, user_type: &str) -> User {
    app.add_user(NewUser {
        state: gitlab_license_server::domain::users::UserState::from_name(state).expect("state"),
        user_type: gitlab_license_server::domain::users::UserType::from_name(user_type)
            .expect("a user type"),
        ..NewUser::human(username, false)
    })
    .await
}

async fn api_token(app: &TestApp, user: &User) -> String {
    app.token_for(user, &["api"], None).await.0
}

/// Uploads a Duo Pro license and returns the instance purchase's global ID.
async fn instance_purchase(app: &TestApp, seats: u64) -> String {
    assert_eq!(app.upload(&duo_license(seats)).await.status, 201);
    let reply = app.graphql(Some(ROOT_TOKEN), PURCHASES, json!({})).await;
    reply.json()["data"]["addOnPurchases"][0]["id"]
        .as_str()
        .expect("the license provisions a purchase")
        .to_string()
}

/// The payload (or null) of a mutation, after checking the reply is a plain 200.
fn payload(reply: &Reply, field: &str) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["data"][field].clone()
}

/// Asserts GitLab's top-level "resource not available" shape for `field`.
fn assert_not_available(reply: &Reply, field: &str) {
    assert_top_level_error(reply, field, NOT_AVAILABLE);
}

fn assert_top_level_error(reply: &Reply, field: &str, message: &str) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["data"][field], Value::Null, "{body}");
    assert!(body["data"]
        .as_object()
        .is_some_and(|data| data.contains_key(field)));
    assert_eq!(body["errors"][0]["message"], message, "{body}");
    assert_eq!(body["errors"][0]["path"], json!([field]), "{body}");
    assert!(body["errors"][0]["locations"].is_array(), "{body}");
}

async fn assigned(app: &TestApp) -> Value {
    app.graphql(Some(ROOT_TOKEN), PURCHASES, json!({}))
        .await
        .json()["data"]["addOnPurchases"][0]["assignedQuantity"]
        .clone()
}

/// A group with an owner and a maintainer, and its Duo Enterprise purchase (`seats`).
struct GroupSetup {
    group_id: i64,
    owner: User,
    maintainer: User,
    purchase: String,
}

async fn group_purchase(app: &TestApp, path: &str, seats: i64) -> GroupSetup {
    let group = app.add_group(path).await;
    let owner = user(app, &format!("{path}-owner")).await;
    let maintainer = user(app, &format!("{path}-maintainer")).await;
    for (member, level) in [(&owner, 50), (&maintainer, 40)] {
        app.state
            .store
            .add_membership(
                member.id,
                "Namespace",
                group.id,
                level,
                Write::unaudited(crate::support::app::test_now()),
            )
            .await
            .expect("member");
    }
    let reply = app
        .send_with(
            app.client
                .post(app.url(&format!(
                    "/api/v4/namespaces/{}/subscription_add_on_purchase/duo_enterprise",
                    group.id
                )))
                .json(&json!({"quantity": seats, "started_on": "2026-01-01",
                              "expires_on": "2027-01-01", "purchase_xid": "S-1"})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    // GitLab's REST entity has no id: the purchase's global ID comes from GraphQL.
    let listed = app
        .graphql(
            Some(ROOT_TOKEN),
            "query($n: NamespaceID) { addOnPurchases(namespaceId: $n) { id name } }",
            json!({"n": format!("gid://gitlab/Group/{}", group.id)}),
        )
        .await
        .json();
    let purchase = listed["data"]["addOnPurchases"]
        .as_array()
        .and_then(|purchases| {
            purchases
                .iter()
                .find(|purchase| purchase["name"] == "DUO_ENTERPRISE")
        })
        .and_then(|purchase| purchase["id"].as_str())
        .unwrap_or_else(|| panic!("{listed}"))
        .to_string();
    GroupSetup {
        group_id: group.id,
        owner,
        maintainer,
        purchase,
    }
}

async fn add_member(app: &TestApp, user: &User, group_id: i64, level: i32) {
    app.state
        .store
        .add_membership(
            user.id,
            "Namespace",
            group_id,
            level,
            Write::unaudited(crate::support::app::test_now()),
        )
        .await
        .expect("member");
}

on_both_backends!(
    the_documented_operations_work_verbatim,
    bulk_create_outcomes,
    single_create_and_remove_outcomes,
    bulk_remove_outcomes,
    global_id_coercion_errors,
    owners_maintainers_admins_and_anonymous,
    eligible_user_lists,
    seats_follow_users_groups_and_purchases,
    transport_and_token_handling,
    limits_accounts_and_admin_mode,
    group_purchase_provisioning_api,
);

/// The two operations of GitLab's "Assign GitLab Duo seats by using GraphQL" page, pasted
/// unchanged except for the placeholders the page asks readers to replace.
async fn the_documented_operations_work_verbatim(app: TestApp) {
    let self_managed_query = "query {
 addOnPurchases
 {
  name
  purchasedQuantity
  assignedQuantity
  id
 }
}";
    let gitlab_com_query = "query {
 addOnPurchases (namespaceId: \"gid://gitlab/Group/YOUR_NAMESPACE_ID\")
 {
  name
  purchasedQuantity
  assignedQuantity
  id
 }
}";
    let mutation = "mutation {
  userAddOnAssignmentBulkCreate(input: {
    addOnPurchaseId: \"gid://gitlab/GitlabSubscriptions::AddOnPurchase/YOUR_ADDON_PURCHASE_ID\",
    userIds: [
      \"gid://gitlab/User/USER_ID_1\",
      \"gid://gitlab/User/USER_ID_2\",
      \"gid://gitlab/User/USER_ID_3\"
    ]
  }) {
    addOnPurchase {
      id
      name
      assignedQuantity
      purchasedQuantity
    }
    users {
      nodes {
        id
        username
        }
      }
    errors
  }
}";
    let purchase = instance_purchase(&app, 5).await;
    let reply = app
        .graphql(Some(ROOT_TOKEN), self_managed_query, json!({}))
        .await;
    assert_eq!(
        reply.json(),
        json!({"data": {"addOnPurchases": [{
            "name": "CODE_SUGGESTIONS", "purchasedQuantity": 5, "assignedQuantity": 0, "id": purchase
        }]}})
    );
    let (ada, grace, linus) = (
        user(&app, "ada").await,
        user(&app, "grace").await,
        user(&app, "linus").await,
    );
    let purchase_number = purchase.rsplit('/').next().expect("id");
    let filled = mutation
        .replace("YOUR_ADDON_PURCHASE_ID", purchase_number)
        .replace("USER_ID_1", &ada.id.to_string())
        .replace("USER_ID_2", &grace.id.to_string())
        .replace("USER_ID_3", &linus.id.to_string());
    let reply = app.graphql(Some(ROOT_TOKEN), &filled, json!({})).await;
    assert_eq!(
        reply.json(),
        json!({"data": {"userAddOnAssignmentBulkCreate": {
            "addOnPurchase": {"id": purchase, "name": "CODE_SUGGESTIONS", "assignedQuantity": 3, "purchasedQuantity": 5},
            // GitLab's keyset order: id descending.
            "users": {"nodes": [
                {"id": gid(&linus), "username": "linus"},
                {"id": gid(&grace), "username": "grace"},
                {"id": gid(&ada), "username": "ada"}
            ]},
            "errors": []
        }}})
    );

    // GitLab.com style: a group Owner, with the group's ID.
    let group = group_purchase(&app, "acme", 2).await;
    let owner_token = api_token(&app, &group.owner).await;
    let query = gitlab_com_query.replace("YOUR_NAMESPACE_ID", &group.group_id.to_string());
    let reply = app.graphql(Some(&owner_token), &query, json!({})).await;
    assert_eq!(
        reply.json(),
        json!({"data": {"addOnPurchases": [{
            "name": "DUO_ENTERPRISE", "purchasedQuantity": 2, "assignedQuantity": 0, "id": group.purchase
        }]}})
    );
    let member = user(&app, "member").await;
    add_member(&app, &member, group.group_id, 30).await;
    let filled = mutation
        .replace(
            "YOUR_ADDON_PURCHASE_ID",
            group.purchase.rsplit('/').next().expect("id"),
        )
        .replace("USER_ID_1", &member.id.to_string())
        .replace("USER_ID_2", &group.owner.id.to_string())
        .replace("USER_ID_3", &ada.id.to_string());
    let reply = app.graphql(Some(&owner_token), &filled, json!({})).await;
    let result = payload(&reply, "userAddOnAssignmentBulkCreate");
    assert_eq!(result["errors"], json!([]), "{result}");
    assert_eq!(result["addOnPurchase"]["assignedQuantity"], 2);
    // Ada is not a member of the group: skipped, not an error (GitLab 18's partial success).
    assert_eq!(
        result["users"]["nodes"],
        json!([{"id": gid(&member), "username": "member"}, {"id": gid(&group.owner), "username": "acme-owner"}])
    );
}

async fn bulk_create_outcomes(app: TestApp) {
    let purchase = instance_purchase(&app, 2).await;
    let (ada, grace, linus) = (
        user(&app, "ada").await,
        user(&app, "grace").await,
        user(&app, "linus").await,
    );
    let blocked = user_of(&app, "blocked", "blocked", "human").await;
    let bot = user_of(&app, "bot", "active", "project_bot").await;
    let field = "userAddOnAssignmentBulkCreate";
    let run = |token: Option<String>, purchase: String, users: Value| {
        let app = &app;
        async move {
            app.graphql(
                token.as_deref(),
                BULK_CREATE,
                json!({"p": purchase, "u": users}),
            )
            .await
        }
    };
    let root = || Some(ROOT_TOKEN.to_string());

    // Callers who are not administrators, unknown purchases, empty lists: one error.
    let regular = api_token(&app, &ada).await;
    assert_not_available(
        &run(Some(regular), purchase.clone(), gids(&[&ada])).await,
        field,
    );
    assert_not_available(&run(None, purchase.clone(), gids(&[&ada])).await, field);
    let read_only = app
        .token_for(&user(&app, "reader").await, &["read_api"], None)
        .await
        .0;
    assert_not_available(
        &run(Some(read_only), purchase.clone(), gids(&[&ada])).await,
        field,
    );
    assert_not_available(
        &run(
            root(),
            "gid://gitlab/GitlabSubscriptions::AddOnPurchase/999".into(),
            gids(&[&ada]),
        )
        .await,
        field,
    );
    assert_not_available(&run(root(), purchase.clone(), json!([])).await, field);

    // The limit: 100 IDs pass the check (and meet the eligibility rule), 101 do not.
    let hundred: Vec<String> = (0..100)
        .map(|n| format!("gid://gitlab/User/{}", 5000 + n))
        .collect();
    let reply = run(root(), purchase.clone(), json!(hundred)).await;
    assert_eq!(
        payload(&reply, field)["errors"],
        json!(["INVALID_USER_ID_PRESENT"])
    );
    let mut too_many = hundred.clone();
    too_many.push(gid(&ada));
    assert_top_level_error(
        &run(root(), purchase.clone(), json!(too_many)).await,
        field,
        "The number of users to be assigned in a single API call should be less than 100.",
    );

    // Nobody eligible: unknown, non-numeric, blocked, bot.
    let reply = run(
        root(),
        purchase.clone(),
        json!([
            "gid://gitlab/User/424242",
            "gid://gitlab/User/abc",
            gid(&blocked),
            gid(&bot)
        ]),
    )
    .await;
    assert_eq!(
        payload(&reply, field),
        json!({"clientMutationId": "run-1", "errors": ["INVALID_USER_ID_PRESENT"], "addOnPurchase": null, "users": null})
    );

    // Some eligible: they are assigned; the others are dropped.
    let reply = run(
        root(),
        purchase.clone(),
        json!([gid(&ada), gid(&blocked), gid(&ada)]),
    )
    .await;
    let result = payload(&reply, field);
    assert_eq!(result["errors"], json!([]));
    assert_eq!(result["addOnPurchase"]["assignedQuantity"], 1);
    assert_eq!(
        result["users"]["nodes"],
        json!([{"id": gid(&ada), "username": "ada"}])
    );

    // Not enough seats for the users who need one: nothing is assigned.
    let reply = run(root(), purchase.clone(), gids(&[&grace, &linus])).await;
    assert_eq!(
        payload(&reply, field),
        json!({"clientMutationId": "run-1", "errors": ["NOT_ENOUGH_SEATS"], "addOnPurchase": null, "users": null})
    );
    assert_eq!(assigned(&app).await, 1);

    // Already-assigned users need no seat: one new + one existing fits in two seats.
    let reply = run(root(), purchase.clone(), gids(&[&ada, &grace])).await;
    let result = payload(&reply, field);
    assert_eq!(result["errors"], json!([]));
    assert_eq!(result["addOnPurchase"]["assignedQuantity"], 2);
    assert_eq!(result["users"]["nodes"].as_array().map(Vec::len), Some(2));
    // All assigned already, no free seat: still success (idempotent).
    let reply = run(root(), purchase.clone(), gids(&[&ada, &grace])).await;
    assert_eq!(payload(&reply, field)["errors"], json!([]));
    assert_eq!(assigned(&app).await, 2);

    // Expired purchase: the license ran out.
    app.set_now(crate::support::app::test_now() + chrono::TimeDelta::days(400));
    assert_not_available(&run(root(), purchase.clone(), gids(&[&linus])).await, field);
}

async fn single_create_and_remove_outcomes(app: TestApp) {
    let purchase = instance_purchase(&app, 1).await;
    let (ada, grace) = (user(&app, "ada").await, user(&app, "grace").await);
    let blocked = user_of(&app, "blocked", "blocked", "human").await;
    let create = |user: String| {
        let (app, purchase) = (&app, purchase.clone());
        async move {
            app.graphql(Some(ROOT_TOKEN), CREATE, json!({"p": purchase, "u": user}))
                .await
        }
    };
    let remove = |user: String| {
        let (app, purchase) = (&app, purchase.clone());
        async move {
            app.graphql(Some(ROOT_TOKEN), REMOVE, json!({"p": purchase, "u": user}))
                .await
        }
    };
    let field = "userAddOnAssignmentCreate";

    // The seat check comes before eligibility; a free seat and an ineligible user: refused.
    let reply = create(gid(&blocked)).await;
    assert_eq!(
        payload(&reply, field),
        json!({"clientMutationId": "one", "errors": ["INVALID_USER_MEMBERSHIP"], "addOnPurchase": null, "user": null})
    );
    let reply = create(gid(&ada)).await;
    assert_eq!(
        payload(&reply, field),
        json!({"clientMutationId": "one", "errors": [], "addOnPurchase": {"assignedQuantity": 1}, "user": {"username": "ada"}})
    );
    // Full: another user gets NO_SEATS_AVAILABLE (not the bulk code) ...
    let reply = create(gid(&grace)).await;
    assert_eq!(
        payload(&reply, field)["errors"],
        json!(["NO_SEATS_AVAILABLE"])
    );
    // ... and an ineligible one too, since seats are checked first.
    assert_eq!(
        payload(&create(gid(&blocked)).await, field)["errors"],
        json!(["NO_SEATS_AVAILABLE"])
    );
    // Ada again: success without a seat check.
    assert_eq!(
        payload(&create(gid(&ada)).await, field)["errors"],
        json!([])
    );
    // Unknown users are "not available".
    assert_not_available(&create("gid://gitlab/User/424242".into()).await, field);
    assert_not_available(&create("gid://gitlab/User/abc".into()).await, field);

    // Remove: someone without a seat gives null data and no error.
    let reply = remove(gid(&grace)).await;
    assert_eq!(
        reply.json(),
        json!({"data": {"userAddOnAssignmentRemove": null}})
    );
    let reply = remove(gid(&ada)).await;
    assert_eq!(
        payload(&reply, "userAddOnAssignmentRemove"),
        json!({"errors": [], "addOnPurchase": {"assignedQuantity": 0}, "user": {"username": "ada"}})
    );
    assert_not_available(
        &remove("gid://gitlab/User/424242".into()).await,
        "userAddOnAssignmentRemove",
    );
    // An expired purchase cannot be changed, not even to remove a seat.
    assert_eq!(
        payload(&create(gid(&ada)).await, field)["errors"],
        json!([])
    );
    app.set_now(crate::support::app::test_now() + chrono::TimeDelta::days(400));
    assert_not_available(&remove(gid(&ada)).await, "userAddOnAssignmentRemove");
}

async fn bulk_remove_outcomes(app: TestApp) {
    let purchase = instance_purchase(&app, 3).await;
    let (ada, grace, linus) = (
        user(&app, "ada").await,
        user(&app, "grace").await,
        user(&app, "linus").await,
    );
    let field = "userAddOnAssignmentBulkRemove";
    let remove = |users: Value| {
        let (app, purchase) = (&app, purchase.clone());
        async move {
            app.graphql(
                Some(ROOT_TOKEN),
                BULK_REMOVE,
                json!({"p": purchase, "u": users}),
            )
            .await
        }
    };
    let reply = remove(gids(&[&ada])).await;
    assert_eq!(
        payload(&reply, field),
        json!({"errors": ["NO_ASSIGNMENTS_FOUND"], "addOnPurchase": null, "users": null})
    );
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            BULK_CREATE,
            json!({"p": purchase, "u": gids(&[&ada, &grace])}),
        )
        .await;
    assert_eq!(
        payload(&reply, "userAddOnAssignmentBulkCreate")["errors"],
        json!([])
    );
    // Partial matches succeed; `users` lists every requested user that exists.
    let reply = remove(json!([gid(&ada), gid(&linus), "gid://gitlab/User/424242"])).await;
    assert_eq!(
        payload(&reply, field),
        json!({"errors": [], "addOnPurchase": {"assignedQuantity": 1},
               "users": {"nodes": [{"username": "linus"}, {"username": "ada"}]}})
    );
    let too_many: Vec<String> = (0..101).map(|n| format!("gid://gitlab/User/{n}")).collect();
    assert_top_level_error(
        &remove(json!(too_many)).await,
        field,
        "The number of users to be unassigned in a single API call should be less than 100.",
    );
    assert_not_available(&remove(json!([])).await, field);
}

async fn global_id_coercion_errors(app: TestApp) {
    let purchase = instance_purchase(&app, 3).await;
    let cases = [
        ("42", "\"42\" is not a valid Global ID"),
        (
            "gid://gitlab/User",
            "\"gid://gitlab/User\" is not a valid Global ID",
        ),
        (
            "gid://other/User/1",
            "\"gid://other/User/1\" is not a Gitlab Global ID",
        ),
        (
            "gid://gitlab/Project/1",
            "\"gid://gitlab/Project/1\" does not represent an instance of User",
        ),
    ];
    for (value, explanation) in cases {
        // Through a variable.
        let reply = app
            .graphql(
                Some(ROOT_TOKEN),
                BULK_CREATE,
                json!({"p": purchase, "u": [value]}),
            )
            .await;
        let body = reply.json();
        assert_eq!(reply.status, 200);
        assert!(
            body.get("data").is_none(),
            "validation errors carry no data: {body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(explanation), "{message}");
        // As a literal.
        let literal = format!(
            "mutation {{ userAddOnAssignmentBulkCreate(input: {{ addOnPurchaseId: \"{purchase}\", userIds: [\"{value}\"] }}) {{ errors }} }}"
        );
        let body = app
            .graphql(Some(ROOT_TOKEN), &literal, json!({}))
            .await
            .json();
        assert!(body.get("data").is_none(), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(explanation), "{message}");
    }
    // A group is a namespace; a user is not.
    let group = group_purchase(&app, "acme", 1).await;
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            "query($n: NamespaceID) { addOnPurchases(namespaceId: $n) { name } }",
            json!({"n": format!("gid://gitlab/Group/{}", group.group_id)}),
        )
        .await;
    assert_eq!(
        reply.json()["data"]["addOnPurchases"],
        json!([{"name": "DUO_ENTERPRISE"}])
    );
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            "query($n: NamespaceID) { addOnPurchases(namespaceId: $n) { name } }",
            json!({"n": "gid://gitlab/User/1"}),
        )
        .await;
    let message = reply.json()["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("\"gid://gitlab/User/1\" does not represent an instance of Namespace"),
        "{message}"
    );
    // The purchase scalar has its own class.
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            BULK_CREATE,
            json!({"p": "gid://gitlab/User/1", "u": []}),
        )
        .await;
    let message = reply.json()["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("does not represent an instance of GitlabSubscriptions::AddOnPurchase"),
        "{message}"
    );
}

async fn owners_maintainers_admins_and_anonymous(app: TestApp) {
    let instance = instance_purchase(&app, 3).await;
    let acme = group_purchase(&app, "acme", 2).await;
    let other = group_purchase(&app, "other", 2).await;
    let member = user(&app, "member").await;
    add_member(&app, &member, acme.group_id, 30).await;
    let by_group = "query($n: NamespaceID) { addOnPurchases(namespaceId: $n) { id } }";
    let acme_gid = format!("gid://gitlab/Group/{}", acme.group_id);
    let visible = |token: Option<String>, namespace: Option<String>| {
        let app = &app;
        async move {
            app.graphql(token.as_deref(), by_group, json!({"n": namespace}))
                .await
                .json()["data"]["addOnPurchases"]
                .clone()
        }
    };
    let owner = api_token(&app, &acme.owner).await;
    let maintainer = api_token(&app, &acme.maintainer).await;
    let other_owner = api_token(&app, &other.owner).await;
    assert_eq!(
        visible(Some(owner.clone()), Some(acme_gid.clone())).await,
        json!([{"id": acme.purchase}])
    );
    assert_eq!(
        visible(Some(ROOT_TOKEN.into()), Some(acme_gid.clone())).await,
        json!([{"id": acme.purchase}])
    );
    assert_eq!(
        visible(Some(maintainer.clone()), Some(acme_gid.clone())).await,
        json!([])
    );
    assert_eq!(
        visible(Some(other_owner.clone()), Some(acme_gid.clone())).await,
        json!([])
    );
    assert_eq!(visible(None, Some(acme_gid.clone())).await, json!([]));
    // The instance's purchases: administrators only.
    assert_eq!(
        visible(Some(ROOT_TOKEN.into()), None).await,
        json!([{"id": instance}])
    );
    assert_eq!(visible(Some(owner.clone()), None).await, json!([]));
    assert_eq!(visible(None, None).await, json!([]));
    // Unknown namespaces: an empty list, not an error.
    assert_eq!(
        visible(
            Some(ROOT_TOKEN.into()),
            Some("gid://gitlab/Group/999999".into())
        )
        .await,
        json!([])
    );

    // The deprecated singular query follows the same rule, returning null.
    let singular = "query($n: NamespaceID) { addOnPurchase(addOnType: DUO_ENTERPRISE, namespaceId: $n) { id } }";
    let reply = app
        .graphql(Some(&owner), singular, json!({"n": acme_gid}))
        .await;
    assert_eq!(
        reply.json()["data"]["addOnPurchase"],
        json!({"id": acme.purchase})
    );
    let reply = app
        .graphql(Some(&maintainer), singular, json!({"n": acme_gid}))
        .await;
    assert_eq!(reply.json(), json!({"data": {"addOnPurchase": null}}));

    // Mutations: the Owner may, the maintainer and other groups' owners may not.
    let run = |token: String| {
        let (app, purchase, users) = (&app, acme.purchase.clone(), gids(&[&member]));
        async move {
            app.graphql(
                Some(&token),
                BULK_CREATE,
                json!({"p": purchase, "u": users}),
            )
            .await
        }
    };
    let field = "userAddOnAssignmentBulkCreate";
    assert_not_available(&run(maintainer.clone()).await, field);
    assert_not_available(&run(other_owner.clone()).await, field);
    assert_eq!(
        payload(&run(owner.clone()).await, field)["errors"],
        json!([])
    );
    let reply = app
        .graphql(
            Some(&owner),
            BULK_CREATE,
            json!({"p": instance, "u": gids(&[&member])}),
        )
        .await;
    assert_not_available(&reply, field);

    // Eligible-user lists: the group's Owner, and administrators for the instance.
    let group_list = "query($path: ID!, $p: GitlabSubscriptionsAddOnPurchaseID!) {
        namespace(fullPath: $path) { addOnEligibleUsers(addOnType: DUO_ENTERPRISE, addOnPurchaseIds: [$p]) { nodes { username } } } }";
    let reply = app
        .graphql(
            Some(&owner),
            group_list,
            json!({"path": "acme", "p": acme.purchase}),
        )
        .await;
    assert_eq!(
        // GitLab's default order: id descending.
        reply.json()["data"]["namespace"]["addOnEligibleUsers"]["nodes"],
        json!([{"username": "member"}, {"username": "acme-maintainer"}, {"username": "acme-owner"}])
    );
    let reply = app
        .graphql(
            Some(&maintainer),
            group_list,
            json!({"path": "acme", "p": acme.purchase}),
        )
        .await;
    let body = reply.json();
    assert_eq!(body["errors"][0]["message"], NOT_AVAILABLE);
    assert_eq!(
        body["errors"][0]["path"],
        json!(["namespace", "addOnEligibleUsers"])
    );
    assert_eq!(
        body["data"],
        json!({"namespace": {"addOnEligibleUsers": null}}),
        "the failed field is null inside its parent, as graphql-ruby answers"
    );
    let reply = app
        .graphql(
            Some(&other_owner),
            group_list,
            json!({"path": "acme", "p": acme.purchase}),
        )
        .await;
    assert_eq!(
        reply.json(),
        json!({"data": {"namespace": null}}),
        "a private group is invisible to outsiders"
    );
    let instance_list = "query($p: GitlabSubscriptionsAddOnPurchaseID!) {
        selfManagedAddOnEligibleUsers(addOnType: CODE_SUGGESTIONS, addOnPurchaseIds: [$p]) { nodes { username } } }";
    let reply = app
        .graphql(Some(&owner), instance_list, json!({"p": instance}))
        .await;
    assert_top_level_error(&reply, "selfManagedAddOnEligibleUsers", NOT_AVAILABLE);
    let reply = app
        .graphql(None, instance_list, json!({"p": instance}))
        .await;
    assert_top_level_error(&reply, "selfManagedAddOnEligibleUsers", NOT_AVAILABLE);
}

async fn eligible_user_lists(app: TestApp) {
    let purchase = instance_purchase(&app, 10).await;
    for name in ["carol", "alice", "bob", "dave"] {
        user(&app, name).await;
    }
    user_of(&app, "blocked", "blocked", "human").await;
    user_of(&app, "bot", "active", "project_bot").await;
    user_of(&app, "ghost", "active", "ghost").await;
    user_of(&app, "svc", "active", "service_user").await;
    let alice = app
        .state
        .store
        .find_user_by_username("alice")
        .await
        .expect("db")
        .expect("alice");
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            BULK_CREATE,
            json!({"p": purchase, "u": gids(&[&alice])}),
        )
        .await;
    assert_eq!(
        payload(&reply, "userAddOnAssignmentBulkCreate")["errors"],
        json!([])
    );
    let list = "query($p: GitlabSubscriptionsAddOnPurchaseID!, $search: String, $sort: GitlabSubscriptionsUserSort,
                      $seat: String, $first: Int, $after: String, $type: GitlabSubscriptionsAddOnType!) {
        selfManagedAddOnEligibleUsers(addOnType: $type, addOnPurchaseIds: [$p], search: $search, sort: $sort,
                                      filterByAssignedSeat: $seat, first: $first, after: $after) {
          pageInfo { hasNextPage endCursor }
          nodes { username addOnAssignments(addOnPurchaseIds: [$p]) { nodes { addOnPurchase { name } } } }
        } }";
    let names = |variables: Value| {
        let app = &app;
        let mut variables = variables;
        variables["p"] = json!(purchase);
        if variables.get("type").is_none() {
            variables["type"] = json!("CODE_SUGGESTIONS");
        }
        async move {
            let body = app.graphql(Some(ROOT_TOKEN), list, variables).await.json();
            let connection = body["data"]["selfManagedAddOnEligibleUsers"].clone();
            let names: Vec<String> = connection["nodes"]
                .as_array()
                .unwrap_or_else(|| panic!("{body}"))
                .iter()
                .map(|node| node["username"].as_str().unwrap_or_default().to_string())
                .collect();
            (names, connection)
        }
    };
    let (all, _) = names(json!({"sort": "NAME_ASC"})).await;
    // root is "Administrator".
    assert_eq!(all, ["root", "alice", "bob", "carol", "dave", "svc"]);
    // A search ignores the sort and matches name and username partly from three characters
    // on, exactly below.
    let (found, _) = names(json!({"sort": "NAME_DESC", "search": "dav"})).await;
    assert_eq!(found, ["dave"]);
    let (short, _) = names(json!({"search": "D"})).await;
    assert_eq!(short, Vec::<String>::new());
    let (holders, connection) = names(json!({"seat": "true"})).await;
    assert_eq!(holders, ["alice"]);
    assert_eq!(
        connection["nodes"][0]["addOnAssignments"]["nodes"],
        json!([{"addOnPurchase": {"name": "CODE_SUGGESTIONS"}}])
    );
    let (others, _) = names(json!({"seat": "false", "sort": "NAME_ASC"})).await;
    assert_eq!(others, ["root", "bob", "carol", "dave", "svc"]);
    let (unfiltered, _) = names(json!({"seat": "maybe"})).await;
    assert_eq!(unfiltered.len(), 6);
    // Pages of two, following the cursors to the end.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let (page, connection) =
            names(json!({"sort": "NAME_ASC", "first": 2, "after": after})).await;
        assert!(page.len() <= 2);
        seen.extend(page);
        if connection["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, all);
    // Backwards from the end.
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            "query($p: GitlabSubscriptionsAddOnPurchaseID!) { selfManagedAddOnEligibleUsers(addOnType: CODE_SUGGESTIONS,
                addOnPurchaseIds: [$p], sort: NAME_ASC, last: 2) {
                  nodes { username } pageInfo { hasPreviousPage hasNextPage } } }",
            json!({"p": purchase}),
        )
        .await;
    assert_eq!(
        reply.json()["data"]["selfManagedAddOnEligibleUsers"],
        json!({"nodes": [{"username": "dave"}, {"username": "svc"}],
               "pageInfo": {"hasPreviousPage": true, "hasNextPage": false}})
    );
    // Every add-on type GraphQL can name is a Duo add-on; Duo Core lists the same users.
    let (core, _) = names(json!({"type": "DUO_CORE", "sort": "NAME_ASC"})).await;
    assert_eq!(core, all);

    // A group's list: its members from Guest up, not minimal access, not outsiders.
    let group = group_purchase(&app, "acme", 5).await;
    let guest = user(&app, "guest").await;
    let minimal = user(&app, "minimal").await;
    add_member(&app, &guest, group.group_id, 10).await;
    add_member(&app, &minimal, group.group_id, 5).await;
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            "query($p: GitlabSubscriptionsAddOnPurchaseID!) { group(fullPath: \"acme\") {
                addOnEligibleUsers(addOnType: DUO_ENTERPRISE, addOnPurchaseIds: [$p], sort: NAME_ASC) { nodes { username } } } }",
            json!({"p": group.purchase}),
        )
        .await;
    assert_eq!(
        reply.json()["data"]["group"]["addOnEligibleUsers"]["nodes"],
        json!([{"username": "acme-maintainer"}, {"username": "acme-owner"}, {"username": "guest"}])
    );
}

async fn seats_follow_users_groups_and_purchases(app: TestApp) {
    let purchase = instance_purchase(&app, 3).await;
    let (ada, grace, linus) = (
        user(&app, "ada").await,
        user(&app, "grace").await,
        user(&app, "linus").await,
    );
    let assign = |users: Value| {
        let (app, purchase) = (&app, purchase.clone());
        async move {
            let reply = app
                .graphql(
                    Some(ROOT_TOKEN),
                    BULK_CREATE,
                    json!({"p": purchase, "u": users}),
                )
                .await;
            payload(&reply, "userAddOnAssignmentBulkCreate")
        }
    };
    assert_eq!(
        assign(gids(&[&ada, &grace, &linus])).await["errors"],
        json!([])
    );

    // Deleting a user frees their seat at once.
    assert_eq!(
        app.delete(&format!("/api/v4/users/{}", linus.id))
            .await
            .status,
        204
    );
    assert_eq!(assigned(&app).await, 2);

    // Blocking keeps the seat until the scheduled refresh frees it.
    let reply = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v4/users/{}/block", grace.id),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(assigned(&app).await, 2);
    // The four-hourly refresh is a durable job like the others.
    gitlab_license_server::jobs::schedule_due(&app.state)
        .await
        .expect("schedule");
    assert!(app.run_jobs().await >= 1);
    assert_eq!(assigned(&app).await, 1);
    let refreshes: Vec<_> = app
        .state
        .store
        .jobs()
        .await
        .expect("jobs")
        .into_iter()
        .filter(|job| {
            job.kind == gitlab_license_server::domain::jobs::JobKind::SeatRefresh.as_str()
        })
        .collect();
    assert!(
        refreshes.len() == 1
            && refreshes[0].state == gitlab_license_server::domain::jobs::JobState::Done,
        "{refreshes:?}"
    );

    // A lower quantity in a new license trims the newest seats first.
    let (bob, eve) = (user(&app, "bob").await, user(&app, "eve").await);
    app.set_now(crate::support::app::test_now() + chrono::TimeDelta::minutes(1));
    assert_eq!(assign(gids(&[&bob])).await["errors"], json!([]));
    app.set_now(crate::support::app::test_now() + chrono::TimeDelta::minutes(2));
    assert_eq!(assign(gids(&[&eve])).await["errors"], json!([]));
    assert_eq!(assigned(&app).await, 3);
    assert_eq!(app.upload(&duo_license(2)).await.status, 201);
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            "query($p: GitlabSubscriptionsAddOnPurchaseID!) { selfManagedAddOnEligibleUsers(addOnType: CODE_SUGGESTIONS,
                addOnPurchaseIds: [$p], filterByAssignedSeat: \"true\", sort: NAME_ASC) { nodes { username } } }",
            json!({"p": purchase}),
        )
        .await;
    assert_eq!(
        reply.json()["data"]["selfManagedAddOnEligibleUsers"]["nodes"],
        json!([{"username": "ada"}, {"username": "bob"}]),
        "the newest assignment (eve) went first"
    );
    let purchases = app
        .graphql(Some(ROOT_TOKEN), PURCHASES, json!({}))
        .await
        .json();
    assert_eq!(
        purchases["data"]["addOnPurchases"][0]["id"], purchase,
        "the same purchase, re-provisioned"
    );
    assert_eq!(
        purchases["data"]["addOnPurchases"][0]["purchasedQuantity"],
        2
    );

    // A license without Duo ends the purchase; its seats wait for a renewal.
    let plain = license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "premium", "active_user_count": 100}),
    );
    assert_eq!(app.upload(&plain).await.status, 201);
    assert_eq!(
        app.graphql(Some(ROOT_TOKEN), PURCHASES, json!({}))
            .await
            .json(),
        json!({"data": {"addOnPurchases": []}})
    );
    let licenses = app.get("/api/v4/licenses").await.json();
    let newest = licenses[0]["id"].as_i64().expect("id");
    assert_eq!(
        app.delete(&format!("/api/v4/license/{newest}"))
            .await
            .status,
        204
    );
    assert_eq!(assigned(&app).await, 2, "renewed: the seats are back");

    // Group purchases: a member who leaves loses the seat at the next refresh; a lower
    // quantity through the API trims at once.
    let group = group_purchase(&app, "acme", 3).await;
    let (m1, m2) = (user(&app, "m1").await, user(&app, "m2").await);
    add_member(&app, &m1, group.group_id, 30).await;
    add_member(&app, &m2, group.group_id, 30).await;
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            BULK_CREATE,
            json!({"p": group.purchase, "u": gids(&[&m1, &m2, &group.owner])}),
        )
        .await;
    assert_eq!(
        payload(&reply, "userAddOnAssignmentBulkCreate")["addOnPurchase"]["assignedQuantity"],
        3
    );
    app.state
        .store
        .remove_member(
            group.group_id,
            m1.id,
            Write::unaudited(crate::support::app::test_now()),
        )
        .await
        .expect("leave");
    // The next four-hour slot's refresh frees the seat of the member who left.
    app.set_now(crate::support::app::test_now() + chrono::TimeDelta::hours(5));
    gitlab_license_server::jobs::schedule_due(&app.state)
        .await
        .expect("schedule");
    app.run_jobs().await;
    let group_assigned = || {
        let app = &app;
        let namespace = format!("gid://gitlab/Group/{}", group.group_id);
        async move {
            app.graphql(
                Some(ROOT_TOKEN),
                "query($n: NamespaceID) { addOnPurchases(namespaceId: $n) { assignedQuantity } }",
                json!({"n": namespace}),
            )
            .await
            .json()["data"]["addOnPurchases"][0]["assignedQuantity"]
                .clone()
        }
    };
    assert_eq!(group_assigned().await, 2);
    let reply = app
        .send_with(
            app.client
                .put(app.url(&format!(
                    "/api/v4/namespaces/{}/subscription_add_on_purchase/duo_enterprise",
                    group.group_id
                )))
                .json(
                    &json!({"quantity": 1, "started_on": "2026-01-01", "expires_on": "2027-01-01"}),
                ),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["quantity"], 1);
    assert_eq!(group_assigned().await, 1);
    // A deleted group takes its purchase with it.
    assert_eq!(
        app.delete(&format!("/api/v4/groups/{}", group.group_id))
            .await
            .status,
        202
    );
    assert_eq!(group_assigned().await, Value::Null);
}

async fn transport_and_token_handling(app: TestApp) {
    let purchase = instance_purchase(&app, 3).await;
    let ada = user(&app, "ada").await;
    // Unknown, revoked, expired and wrong-scope tokens: 401 "Invalid token".
    let (expired, _) = app
        .token_for(
            &ada,
            &["api"],
            Some(crate::support::licenses::day("2026-06-01")),
        )
        .await;
    let (read_user, _) = app.token_for(&ada, &["read_user"], None).await;
    for token in [
        "glpat-unknown-token-000000",
        expired.as_str(),
        read_user.as_str(),
    ] {
        let reply = app.graphql(Some(token), PURCHASES, json!({})).await;
        assert_eq!(reply.status, 401, "{token}");
        assert_eq!(
            reply.json(),
            json!({"errors": [{"message": "Invalid token"}]})
        );
    }
    // Every token place the REST API accepts works here too.
    let expected = json!({"data": {"currentUser": {"username": "root"}}});
    let current = json!({"query": "{ currentUser { username } }"});
    let header = app
        .send_with(
            app.client.post(app.url("/api/graphql")).json(&current),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(header.json(), expected);
    let parameter = app
        .send_with(
            app.client
                .post(app.url(&format!("/api/graphql?private_token={ROOT_TOKEN}")))
                .json(&current),
            None,
        )
        .await;
    assert_eq!(parameter.json(), expected);
    let anonymous = app
        .graphql(None, "{ currentUser { username } }", json!({}))
        .await;
    assert_eq!(anonymous.json(), json!({"data": {"currentUser": null}}));
    // GET runs queries, never mutations.
    let get = app
        .send_with(
            app.client
                .get(app.url("/api/graphql"))
                .query(&[("query", "{ addOnPurchases { name } }")]),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(
        get.json(),
        json!({"data": {"addOnPurchases": [{"name": "CODE_SUGGESTIONS"}]}})
    );
    let mutation = format!(
        "mutation {{ userAddOnAssignmentBulkCreate(input: {{ addOnPurchaseId: \"{purchase}\", userIds: [\"{}\"] }}) {{ errors }} }}",
        gid(&ada)
    );
    let get = app
        .send_with(
            app.client
                .get(app.url("/api/graphql"))
                .query(&[("query", mutation.as_str())]),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(
        get.json(),
        json!({"errors": [{"message": "Mutations are forbidden in GET requests"}]})
    );
    assert_eq!(assigned(&app).await, 0);
    // Multiplexed: an array in, an array out, in order.
    let batch = app
        .send_with(
            app.client.post(app.url("/api/graphql")).json(&json!([
                {"query": "{ currentUser { username } }"},
                {"query": "{ addOnPurchases { purchasedQuantity } }"}
            ])),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(
        batch.json(),
        json!([
            {"data": {"currentUser": {"username": "root"}}},
            {"data": {"addOnPurchases": [{"purchasedQuantity": 3}]}}
        ])
    );
    // Bad bodies: clear errors, never a 500.
    let bad = app
        .send_with(
            app.client.post(app.url("/api/graphql")).body("{not json"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["errors"][0]["message"].is_string());
    let syntax = app
        .graphql(Some(ROOT_TOKEN), "{ addOnPurchases { ", json!({}))
        .await;
    assert_eq!(syntax.status, 200);
    assert!(syntax.json().get("data").is_none());
    let unknown = app
        .graphql(Some(ROOT_TOKEN), "{ nosuchField }", json!({}))
        .await;
    assert!(unknown.json()["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("nosuchField"));
    let huge = format!("{{ currentUser {{ username }} }} #{}", "x".repeat(10_001));
    let reply = app.graphql(Some(ROOT_TOKEN), &huge, json!({})).await;
    // GitLab's controller raises an argument error: 422.
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.json(),
        json!({"errors": [{"message": "Query too large"}]})
    );
    // user(id:) for signed-in callers.
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            "query($id: UserID) { user(id: $id) { username state bot webPath } }",
            json!({"id": gid(&ada)}),
        )
        .await;
    assert_eq!(
        reply.json(),
        json!({"data": {"user": {"username": "ada", "state": "active", "bot": false, "webPath": "/ada"}}})
    );
}

/// The remaining transport rules: GitLab's complexity limit, accounts that may not use the
/// API, and Admin Mode.
async fn limits_accounts_and_admin_mode(app: TestApp) {
    instance_purchase(&app, 3).await;
    // 160 aliased fields with a sub-field each: over an administrator's limit of 300.
    let wide: String = (0..160)
        .map(|n| format!("u{n}: currentUser {{ username }} "))
        .collect();
    let reply = app
        .graphql(Some(ROOT_TOKEN), &format!("{{ {wide} }}"), json!({}))
        .await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert!(body.get("data").is_none(), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("complex"),
        "{body}"
    );

    let blocked = user_of(&app, "blocked", "blocked", "human").await;
    let token = api_token(&app, &blocked).await;
    let reply = app.graphql(Some(&token), PURCHASES, json!({})).await;
    // GitLab's GraphQL controller: such a token does not authenticate.
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json(),
        json!({"errors": [{"message": "Invalid token"}]})
    );

    // With Admin Mode on, an administrator's token needs `admin_mode` to act as one.
    let strict = TestApp::start(app.backend, &[("ADMIN_MODE", "true")]).await;
    instance_purchase_with_admin_mode(&strict).await;
    let admin = strict.add_user(NewUser::human("boss", true)).await;
    let (plain, _) = strict.token_for(&admin, &["api"], None).await;
    let (elevated, _) = strict.token_for(&admin, &["api", "admin_mode"], None).await;
    let listed = |token: String| {
        let strict = &strict;
        async move {
            strict
                .graphql(Some(&token), PURCHASES, json!({}))
                .await
                .json()["data"]["addOnPurchases"]
                .as_array()
                .map_or(0, Vec::len)
        }
    };
    assert_eq!(listed(plain).await, 0);
    assert_eq!(listed(elevated).await, 1);
}

/// Uploads the Duo license with an `admin_mode` token (the root token has none).
async fn instance_purchase_with_admin_mode(app: &TestApp) {
    let root = app
        .state
        .store
        .find_user_by_username("root")
        .await
        .expect("db")
        .expect("root");
    let (token, _) = app.token_for(&root, &["api", "admin_mode"], None).await;
    let request = app
        .client
        .post(app.url("/api/v4/license"))
        .json(&json!({ "license": duo_license(2) }));
    assert_eq!(app.send_with(request, Some(&token)).await.status, 201);
}

async fn group_purchase_provisioning_api(app: TestApp) {
    let group = group_purchase(&app, "acme", 4).await;
    let path = |add_on: &str| {
        format!(
            "/api/v4/namespaces/{}/subscription_add_on_purchase/{add_on}",
            group.group_id
        )
    };
    let reply = app.get(&path("duo_enterprise")).await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["namespace_id"], group.group_id);
    assert_eq!(body["add_on"], "Duo Enterprise");
    assert_eq!(body["quantity"], 4);
    assert_eq!(body["started_on"], "2026-01-01");
    assert_eq!(body["expires_on"], "2027-01-01");
    assert_eq!(body["purchase_xid"], "S-1");
    assert_eq!(body["trial"], false);
    let app_ref = &app;
    let post = |add_on: &str, body: Value, token: &str| {
        let request = app_ref.client.post(app_ref.url(&path(add_on))).json(&body);
        let token = token.to_string();
        async move { app_ref.send_with(request, Some(&token)).await }
    };
    let terms = json!({"quantity": 1, "started_on": "2026-01-01", "expires_on": "2027-01-01", "purchase_xid": "S-2"});
    // A second purchase of the same add-on is refused.
    assert_eq!(
        post("duo_enterprise", terms.clone(), ROOT_TOKEN)
            .await
            .status,
        400
    );
    // Unknown add-ons and namespaces are 404s; bad values 400s; non-admins 403.
    assert_eq!(
        post("duo_nano", terms.clone(), ROOT_TOKEN).await.status,
        404
    );
    let reply = app
        .get("/api/v4/namespaces/999999/subscription_add_on_purchase/duo_enterprise")
        .await;
    assert_eq!(
        (reply.status.as_u16(), reply.json()),
        (404, json!({"message": "404 Namespace Not Found"}))
    );
    assert_eq!(app.get(&path("code_suggestions")).await.status, 404);
    for bad in [
        json!({"quantity": 0, "started_on": "2026-01-01", "expires_on": "2027-01-01", "purchase_xid": "S-3"}),
        json!({"quantity": 1, "started_on": "2026-13-01", "expires_on": "2027-01-01", "purchase_xid": "S-3"}),
        json!({"quantity": 1, "started_on": "2026-01-01", "purchase_xid": "S-3"}),
        json!({"quantity": 1, "started_on": "2026-01-01", "expires_on": "2027-01-01"}),
    ] {
        let reply = post("code_suggestions", bad.clone(), ROOT_TOKEN).await;
        assert_eq!(reply.status, 400, "{bad} → {}", reply.body);
    }
    assert_eq!(
        app.get(&path("code_suggestions")).await.status,
        404,
        "nothing half-written"
    );
    let owner_token = api_token(&app, &group.owner).await;
    assert_eq!(
        post("code_suggestions", terms.clone(), &owner_token)
            .await
            .status,
        403
    );
    // A purchase of a non-Duo add-on is listed but cannot take seats.
    assert_eq!(
        post("product_analytics", terms, ROOT_TOKEN).await.status,
        201
    );
    let analytics = app
        .graphql(
            Some(ROOT_TOKEN),
            "query($n: NamespaceID) { addOnPurchases(namespaceId: $n) { id name } }",
            json!({"n": format!("gid://gitlab/Group/{}", group.group_id)}),
        )
        .await
        .json();
    assert_eq!(
        analytics["data"]["addOnPurchases"][1]["name"],
        "PRODUCT_ANALYTICS"
    );
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            BULK_CREATE,
            json!({"p": analytics["data"]["addOnPurchases"][1]["id"], "u": gids(&[&group.owner])}),
        )
        .await;
    assert_eq!(
        payload(&reply, "userAddOnAssignmentBulkCreate")["errors"],
        json!(["INCOMPATIBLE_ADD_ON"])
    );
    // A purchase that has not started yet is not listed and takes no seats.
    let future = json!({"quantity": 5, "started_on": "2026-09-01", "expires_on": "2027-09-01", "purchase_xid": "S-4"});
    let reply = post("code_suggestions", future, ROOT_TOKEN).await;
    assert_eq!(reply.status, 201);
    let future_id = app
        .state
        .store
        .find_add_on_purchase_by_name(Some(group.group_id), "code_suggestions")
        .await
        .expect("db")
        .expect("the future purchase")
        .id;
    let future_gid = format!("gid://gitlab/GitlabSubscriptions::AddOnPurchase/{future_id}");
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            BULK_CREATE,
            json!({"p": future_gid, "u": gids(&[&group.owner])}),
        )
        .await;
    assert_not_available(&reply, "userAddOnAssignmentBulkCreate");
    // Audit events record who provisioned what.
    let events = app
        .get("/api/v4/audit_events?entity_type=Group")
        .await
        .json();
    assert!(events.as_array().is_some_and(|events| events
        .iter()
        .any(|event| event["details"]["event_name"] == "add_on_purchase_created")));
}

#[test]
fn the_committed_schema_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql is committed");
    let current = gitlab_license_server::graphql::sdl();
    assert!(
        committed == current,
        "schema.graphql is out of date: run `cargo run -- graphql-schema > schema.graphql`"
    );
}

on_both_backends!(concurrent_assignments_across_two_replicas_never_oversell);

/// Many bulk assignments at once, over more users than seats, split between two server
/// processes sharing one database: the seats never exceed the purchase, and every answer
/// agrees with the final state.
async fn concurrent_assignments_across_two_replicas_never_oversell(app: TestApp) {
    use crate::support::process::{free_port, start_server};
    const SEATS: usize = 7;
    let purchase = instance_purchase(&app, SEATS as u64).await;
    let mut users = Vec::new();
    for n in 0..24 {
        users.push(user(&app, &format!("racer{n:02}")).await);
    }
    let ports = [free_port(), free_port()];
    let _servers = [
        start_server(&app.database_url, &app.data_dir.join("a"), ports[0], &[]).await,
        start_server(&app.database_url, &app.data_dir.join("b"), ports[1], &[]).await,
    ];
    let client = reqwest::Client::new();
    let requests = (0..32).map(|round: usize| {
        // Overlapping groups of one to four users, so requests compete for the same seats
        // and for different ones.
        let size = 1 + round % 4;
        let chosen: Vec<String> = (0..size)
            .map(|k| gid(&users[(round * 5 + k * 7) % users.len()]))
            .collect();
        let url = format!("http://127.0.0.1:{}/api/graphql", ports[round % 2]);
        let body = json!({"query": BULK_CREATE, "variables": {"p": purchase, "u": chosen}});
        let client = client.clone();
        async move {
            let reply = client
                .post(url)
                .bearer_auth(ROOT_TOKEN)
                .json(&body)
                .send()
                .await
                .expect("request");
            assert_eq!(reply.status(), 200);
            reply.json::<Value>().await.expect("json")
        }
    });
    let answers = futures_join_all(requests).await;

    let final_state = app
        .graphql(
            Some(ROOT_TOKEN),
            "query($p: GitlabSubscriptionsAddOnPurchaseID!) {
               addOnPurchases { assignedQuantity purchasedQuantity }
               selfManagedAddOnEligibleUsers(addOnType: CODE_SUGGESTIONS, addOnPurchaseIds: [$p],
                                             filterByAssignedSeat: \"true\") { nodes { username } } }",
            json!({"p": purchase}),
        )
        .await
        .json();
    let assigned = final_state["data"]["addOnPurchases"][0]["assignedQuantity"]
        .as_u64()
        .expect("count") as usize;
    let holders: std::collections::BTreeSet<String> = final_state["data"]
        ["selfManagedAddOnEligibleUsers"]["nodes"]
        .as_array()
        .expect("holders")
        .iter()
        .map(|node| node["username"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(assigned <= SEATS, "oversold: {assigned} of {SEATS}");
    assert_eq!(assigned, holders.len());
    let mut granted = std::collections::BTreeSet::new();
    let mut refusals = 0;
    for answer in &answers {
        let result = &answer["data"]["userAddOnAssignmentBulkCreate"];
        match result["errors"].as_array().map(Vec::as_slice) {
            Some([]) => {
                let count = result["addOnPurchase"]["assignedQuantity"]
                    .as_u64()
                    .expect("count") as usize;
                assert!(count <= SEATS, "{answer}");
                for node in result["users"]["nodes"].as_array().expect("users") {
                    let name = node["username"].as_str().unwrap_or_default().to_string();
                    assert!(
                        holders.contains(&name),
                        "{name} was told they hold a seat: {answer}"
                    );
                    granted.insert(name);
                }
            }
            Some([code]) if code == "NOT_ENOUGH_SEATS" => refusals += 1,
            _ => panic!("unexpected answer {answer}"),
        }
    }
    assert_eq!(
        granted, holders,
        "every seat holder was granted by some answer"
    );
    assert_eq!(
        assigned, SEATS,
        "demand exceeded the seats, so all were taken"
    );
    assert!(
        refusals > 0,
        "with more users than seats some requests must be refused"
    );
}

/// Runs futures concurrently (a join over spawned tasks, so they really overlap).
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<Value>
where
    F: std::future::Future<Output = Value> + Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut answers = Vec::new();
    for handle in handles {
        answers.push(handle.await.expect("task"));
    }
    answers
}
