//! Add-on purchases provisioned from the license as GitLab provisions them
//! (`ee/app/services/gitlab_subscriptions/add_on_purchases/self_managed/provision_services/*`):
//! only from cloud licenses, GitLab Duo as one exclusive purchase changed in place, entries
//! merged and read leniently.

use chrono::TimeDelta;
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{TestApp, ROOT_TOKEN};
use crate::support::licenses::{cloud_license, license};
use crate::support::read_fixture;
use gitlab_license_server::store::{AddOnPurchase, NewUser};

const PURCHASES: &str = "query { addOnPurchases { id name purchasedQuantity assignedQuantity } }";

fn duo(products: Value) -> Value {
    json!({"plan": "ultimate", "active_user_count": 100, "add_on_products": products})
}

fn entry(quantity: u64) -> Value {
    json!({"quantity": quantity, "started_on": "2026-01-01", "expires_on": "2027-01-01",
           "purchase_xid": "A-S00000001", "trial": false})
}

async fn purchases(app: &TestApp) -> Vec<Value> {
    let reply = app.graphql(Some(ROOT_TOKEN), PURCHASES, json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["data"]["addOnPurchases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Every instance purchase in the store, active or not.
async fn stored(app: &TestApp) -> Vec<AddOnPurchase> {
    app.state
        .store
        .all_add_on_purchases()
        .await
        .expect("purchases")
        .into_iter()
        .filter(|purchase| purchase.namespace_id.is_none())
        .collect()
}

async fn assign(app: &TestApp, purchase: &str, users: &[i64]) {
    let ids: Vec<String> = users
        .iter()
        .map(|id| format!("gid://gitlab/User/{id}"))
        .collect();
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            "mutation($p: GitlabSubscriptionsAddOnPurchaseID!, $u: [UserID!]!) { userAddOnAssignmentBulkCreate(input: {addOnPurchaseId: $p, userIds: $u}) { errors } }",
            json!({"p": purchase, "u": ids}),
        )
        .await;
    assert_eq!(
        reply.json()["data"]["userAddOnAssignmentBulkCreate"]["errors"],
        json!([]),
        "{}",
        reply.body
    );
}

/// Holders of a purchase, as the seat query lists them.
async fn holders(app: &TestApp, purchase: &str) -> Vec<String> {
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            "query($p: [GitlabSubscriptionsAddOnPurchaseID!]!) { selfManagedAddOnEligibleUsers(addOnType: CODE_SUGGESTIONS, addOnPurchaseIds: $p, filterByAssignedSeat: \"true\", sort: ID_ASC) { nodes { username } } }",
            json!({"p": [purchase]}),
        )
        .await;
    reply.json()["data"]["selfManagedAddOnEligibleUsers"]["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|node| node["username"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A classic license provisions nothing, however many products it lists; a cloud license does;
/// a classic one after it ends the purchase (yesterday, as GitLab's expire service does) and a
/// cloud one again brings the same purchase back with its seats.
async fn only_cloud_licenses_provision(app: TestApp) {
    let classic = license(
        "2026-01-01",
        "2027-01-01",
        duo(json!({"duo_pro": [entry(3)]})),
    );
    assert_eq!(app.upload(&classic).await.status, 201);
    assert_eq!(purchases(&app).await, Vec::<Value>::new());
    assert!(stored(&app).await.is_empty());

    let cloud = cloud_license(
        "2026-01-01",
        "2027-01-01",
        duo(json!({"duo_pro": [entry(3)]})),
    );
    assert_eq!(app.upload(&cloud).await.status, 201);
    let listed = purchases(&app).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["name"], "CODE_SUGGESTIONS");
    assert_eq!(listed[0]["purchasedQuantity"], 3);
    let id = listed[0]["id"].as_str().expect("id").to_string();
    let ada = app.add_user(NewUser::human("ada", false)).await;
    assign(&app, &id, &[ada.id]).await;

    // Another classic license, newer: the purchase ends yesterday.
    let classic = license(
        "2026-02-01",
        "2027-01-01",
        duo(json!({"duo_pro": [entry(3)]})),
    );
    assert_eq!(app.upload(&classic).await.status, 201);
    assert_eq!(purchases(&app).await, Vec::<Value>::new());
    let ended = stored(&app).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(
        ended[0].expires_on,
        app.clock_today() - TimeDelta::days(1),
        "ended yesterday"
    );

    // A cloud license again: the same purchase, its seat kept.
    let cloud = cloud_license(
        "2026-03-01",
        "2027-01-01",
        duo(json!({"duo_pro": [entry(4)]})),
    );
    assert_eq!(app.upload(&cloud).await.status, 201);
    let listed = purchases(&app).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0]["id"].as_str(),
            listed[0]["purchasedQuantity"].clone(),
            listed[0]["assignedQuantity"].clone()
        ),
        (Some(id.as_str()), json!(4), json!(1))
    );
    assert_eq!(holders(&app, &id).await, ["ada"]);
}

/// The issue's acceptance case: Duo Pro (3), then Pro (3) + Enterprise (4) leaves exactly one
/// purchase, DUO_ENTERPRISE with 4 seats, the same id, the seats assigned before still
/// assigned. Then the shared reference vectors (made by the gem), and a downgrade below the
/// seats in use (the newest assignments go, as GitLab's overage reconciliation removes them).
async fn a_duo_upgrade_changes_the_purchase_in_place(app: TestApp) {
    let pro = cloud_license(
        "2026-01-01",
        "2027-01-01",
        duo(json!({"duo_pro": [entry(3)]})),
    );
    assert_eq!(app.upload(&pro).await.status, 201);
    let id = purchases(&app).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let ada = app.add_user(NewUser::human("ada", false)).await;
    let bob = app.add_user(NewUser::human("bob", false)).await;
    let cy = app.add_user(NewUser::human("cy", false)).await;
    assign(&app, &id, &[ada.id, bob.id]).await;

    let both = cloud_license(
        "2026-02-01",
        "2027-01-01",
        duo(json!({"duo_pro": [entry(3)], "duo_enterprise": [entry(4)]})),
    );
    assert_eq!(app.upload(&both).await.status, 201);
    let listed = purchases(&app).await;
    assert_eq!(
        listed,
        vec![
            json!({"id": id, "name": "DUO_ENTERPRISE", "purchasedQuantity": 4, "assignedQuantity": 2})
        ]
    );
    assert_eq!(stored(&app).await.len(), 1, "exactly one instance purchase");
    assert_eq!(holders(&app, &id).await, ["ada", "bob"]);

    // The gem-made vectors: Pro ×4, then Pro ×4 with Enterprise ×6 in one key.
    let vectors: Value = serde_json::from_str(&read_fixture("vectors.json")).expect("vectors");
    let key = |name: &str| {
        vectors
            .as_array()
            .and_then(|all| all.iter().find(|vector| vector["name"] == name))
            .and_then(|vector| vector["license"].as_str())
            .expect("vector")
            .to_string()
    };
    assert_eq!(app.upload(&key("cloud_duo_pro_4")).await.status, 201);
    let listed = purchases(&app).await;
    assert_eq!(
        (
            listed.len(),
            listed[0]["id"].as_str(),
            listed[0]["name"].clone(),
            listed[0]["purchasedQuantity"].clone()
        ),
        (1, Some(id.as_str()), json!("CODE_SUGGESTIONS"), json!(4))
    );
    assert_eq!(
        app.upload(&key("cloud_duo_pro_then_enterprise_6"))
            .await
            .status,
        201
    );
    let listed = purchases(&app).await;
    assert_eq!(
        (
            listed.len(),
            listed[0]["id"].as_str(),
            listed[0]["name"].clone(),
            listed[0]["purchasedQuantity"].clone(),
            listed[0]["assignedQuantity"].clone()
        ),
        (
            1,
            Some(id.as_str()),
            json!("DUO_ENTERPRISE"),
            json!(6),
            json!(2)
        )
    );

    // Down to one seat with three assigned: the two assigned last lose theirs.
    assign(&app, &id, &[cy.id]).await;
    let one = cloud_license(
        "2026-04-01",
        "2027-01-01",
        duo(json!({"duo_pro": [entry(1)]})),
    );
    assert_eq!(app.upload(&one).await.status, 201);
    let listed = purchases(&app).await;
    assert_eq!(
        (
            listed[0]["name"].clone(),
            listed[0]["purchasedQuantity"].clone(),
            listed[0]["assignedQuantity"].clone()
        ),
        (json!("CODE_SUGGESTIONS"), json!(1), json!(1))
    );
    assert_eq!(holders(&app, &id).await, ["ada"]);
}

/// Entries merge as GitLab merges them and odd values are read leniently: a quantity as text,
/// an unparseable date, a missing reference — the key is accepted and provisions what GitLab
/// would.
async fn license_entries_merge_leniently(app: TestApp) {
    let products = json!({"duo_pro": [
        {"quantity": "2", "started_on": "2026-01-01", "expires_on": "2027-01-01", "purchase_xid": null, "trial": true},
        {"quantity": 3, "started_on": "not a date", "expires_on": "2027-06-01", "purchase_xid": "A-S00000002", "trial": true},
        {"quantity": 0, "started_on": "2020-01-01", "expires_on": "2040-01-01", "purchase_xid": "A-S00000003", "trial": false},
        {"quantity": "many", "started_on": "2020-01-01", "expires_on": "2040-01-01"}
    ]});
    let key = cloud_license("2026-01-01", "2027-01-01", duo(products));
    let reply = app.upload(&key).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let listed = purchases(&app).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["purchasedQuantity"], 5);
    let purchase = &stored(&app).await[0];
    assert_eq!(purchase.started_on.to_string(), "2026-01-01");
    assert_eq!(purchase.expires_on.to_string(), "2027-06-01");
    assert_eq!(purchase.purchase_xid.as_deref(), Some("A-S00000002"));
    assert!(purchase.trial, "every counted entry is a trial");
}

/// `license issue --add-on-product` keeps provisioning as before (its keys are offline cloud
/// licenses); with `--no-cloud` the same products provision nothing.
async fn keys_issued_with_add_on_products_provision(app: TestApp) {
    let issue = |extra: &[&str]| {
        let output = crate::support::process::binary()
            .args([
                "license",
                "issue",
                "--name",
                "Ada",
                "--email",
                "ada@example.org",
                "--company",
                "Ex",
                "--plan",
                "ultimate",
                "--seats",
                "50",
                "--starts",
                "2026-01-01",
                "--expires",
                "2027-01-01",
                "--add-on-product",
                "duo_pro=7",
            ])
            .arg("--private-key")
            .arg(crate::support::vectors_dir().join("private_key.pem"))
            .args(extra)
            .output()
            .expect("cli");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    };
    assert_eq!(app.upload(&issue(&["--no-cloud"])).await.status, 201);
    assert_eq!(purchases(&app).await, Vec::<Value>::new());
    assert_eq!(app.upload(&issue(&[])).await.status, 201);
    let listed = purchases(&app).await;
    assert_eq!(
        (
            listed.len(),
            listed[0]["name"].clone(),
            listed[0]["purchasedQuantity"].clone()
        ),
        (1, json!("CODE_SUGGESTIONS"), json!(7))
    );
}

on_both_backends!(
    keys_issued_with_add_on_products_provision,
    only_cloud_licenses_provision,
    a_duo_upgrade_changes_the_purchase_in_place,
    license_entries_merge_leniently,
);
