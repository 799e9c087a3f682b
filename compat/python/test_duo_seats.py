#!/usr/bin/env python3
"""python-gitlab's GraphQL client against gitlab-license-server: GitLab Duo seats.

Runs the two operations of GitLab's "Assign GitLab Duo seats by using GraphQL" page unchanged
(only the placeholders the page asks readers to fill in are replaced), then the refusals a
script must be able to tell apart.

Environment:
  GITLAB_URL              base URL of the server (no /api/v4)
  GITLAB_TOKEN            an admin personal access token (never printed)
  GLS_DUO_LICENSE_FILE    a current license selling 2 GitLab Duo Pro seats (see run.sh)

Prints one line per check and exits 1 if any failed.
"""

from __future__ import annotations

import os
import sys
import traceback

import gitlab
from gql.transport.exceptions import TransportQueryError

URL = os.environ["GITLAB_URL"].rstrip("/")
TOKEN = os.environ["GITLAB_TOKEN"]

# Verbatim from the GitLab documentation page.
DOCS_QUERY = """query {
 addOnPurchases
 {
  name
  purchasedQuantity
  assignedQuantity
  id
 }
}"""

DOCS_MUTATION = """mutation {
  userAddOnAssignmentBulkCreate(input: {
    addOnPurchaseId: "gid://gitlab/GitlabSubscriptions::AddOnPurchase/YOUR_ADDON_PURCHASE_ID",
    userIds: [
      "gid://gitlab/User/USER_ID_1",
      "gid://gitlab/User/USER_ID_2",
      "gid://gitlab/User/USER_ID_3"
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
}"""

failures = 0


def check(name: str, condition: bool, detail: object = "") -> None:
    global failures
    if condition:
        print(f"PASS {name}")
    else:
        failures += 1
        print(f"FAIL {name}: {detail}".replace(TOKEN, "[REDACTED]"))


def main() -> None:
    gl = gitlab.Gitlab(URL, private_token=TOKEN, timeout=30)
    with open(os.environ["GLS_DUO_LICENSE_FILE"], encoding="utf-8") as handle:
        uploaded = gl.set_license(handle.read().strip())
    license_id = uploaded["id"]

    users = [
        gl.users.create({"username": f"duo{n}", "name": f"Duo User {n}",
                         "email": f"duo{n}@example.org", "skip_confirmation": True})
        for n in range(1, 4)
    ]
    gq = gitlab.GraphQL(URL, token=TOKEN, timeout=30)

    result = gq.execute(DOCS_QUERY)
    purchases = result["addOnPurchases"]
    check("docs query lists the Duo Pro purchase",
          len(purchases) == 1 and purchases[0]["name"] == "CODE_SUGGESTIONS"
          and purchases[0]["purchasedQuantity"] == 2 and purchases[0]["assignedQuantity"] == 0,
          purchases)
    purchase_id = purchases[0]["id"]
    check("purchase ids are GitLab global ids",
          purchase_id.startswith("gid://gitlab/GitlabSubscriptions::AddOnPurchase/"), purchase_id)

    def mutation(*user_ids: int) -> str:
        text = DOCS_MUTATION.replace("YOUR_ADDON_PURCHASE_ID", purchase_id.rsplit("/", 1)[1])
        for index, user_id in enumerate(user_ids, start=1):
            text = text.replace(f"USER_ID_{index}", str(user_id))
        return text

    # Three users, two seats: all or nothing.
    result = gq.execute(mutation(users[0].id, users[1].id, users[2].id))
    payload = result["userAddOnAssignmentBulkCreate"]
    check("docs mutation refuses more users than seats",
          payload["errors"] == ["NOT_ENOUGH_SEATS"] and payload["addOnPurchase"] is None
          and payload["users"] is None, payload)

    # Two real users and one that does not exist: the eligible ones are assigned.
    result = gq.execute(mutation(users[0].id, users[1].id, 999999))
    payload = result["userAddOnAssignmentBulkCreate"]
    check("docs mutation assigns the eligible users", payload["errors"] == [], payload)
    check("the payload shows the purchase after the change",
          payload["addOnPurchase"] == {"id": purchase_id, "name": "CODE_SUGGESTIONS",
                                       "assignedQuantity": 2, "purchasedQuantity": 2},
          payload["addOnPurchase"])
    # In GitLab's keyset order for these payloads: id descending.
    check("the payload lists the users now holding a seat, newest id first",
          [node["username"] for node in payload["users"]["nodes"]] == ["duo2", "duo1"],
          payload["users"])
    result = gq.execute(DOCS_QUERY)
    check("the docs query shows the seats in use",
          result["addOnPurchases"][0]["assignedQuantity"] == 2, result)

    # Variables, as scripts pass them.
    remove = """mutation($p: GitlabSubscriptionsAddOnPurchaseID!, $u: [UserID!]!) {
      userAddOnAssignmentBulkRemove(input: {addOnPurchaseId: $p, userIds: $u}) {
        errors addOnPurchase { assignedQuantity } } }"""
    result = gq.execute(remove, variable_values={"p": purchase_id,
                                                 "u": [f"gid://gitlab/User/{users[0].id}"]})
    payload = result["userAddOnAssignmentBulkRemove"]
    check("bulk remove with variables frees a seat",
          payload["errors"] == [] and payload["addOnPurchase"]["assignedQuantity"] == 1, payload)

    try:
        gq.execute(remove, variable_values={"p": purchase_id, "u": ["gid://gitlab/Project/1"]})
        check("a wrong global id is refused", False, "no error raised")
    except TransportQueryError as error:
        check("a wrong global id is refused",
              "does not represent an instance of User" in str(error), error)

    # GitLab answers a bad token with HTTP 401 and {"errors":[{"message":"Invalid token"}]};
    # gql reads the GraphQL error body before the status, so scripts see a query error.
    try:
        gitlab.GraphQL(URL, token="glpat-not-a-real-token-000000", timeout=30).execute(DOCS_QUERY)
        check("a bad token is refused", False, "no error raised")
    except TransportQueryError as error:
        check("a bad token is refused", "Invalid token" in str(error), error)

    # Leave the instance as the other clients expect it.
    for user in users:
        user.delete()
    gl.http_delete(f"/license/{license_id}")


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001 - report, then fail
        failures += 1
        print("FAIL unexpected error:\n" + traceback.format_exc().replace(TOKEN, "[REDACTED]"))
    print(f"{'all checks passed' if failures == 0 else f'{failures} check(s) failed'}")
    sys.exit(1 if failures else 0)
