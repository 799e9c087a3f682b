#!/usr/bin/env python3
"""python-gitlab against gitlab-license-server: a group's billable members.

Uses python-gitlab's own managers unchanged — `group.billable_members.list()` with search,
sort and pagination, `member.memberships.list()`, `group.billable_members.delete(user_id)` —
on a group it sets up through the users, groups and members APIs, then removes what it made.

Environment:
  GITLAB_URL     base URL of the server (no /api/v4)
  GITLAB_TOKEN   an admin personal access token (never printed)

Prints one line per check and exits 1 if any failed.
"""

from __future__ import annotations

import os
import re
import sys
import traceback

import gitlab
import gitlab.exceptions as gexc

URL = os.environ["GITLAB_URL"].rstrip("/")
TOKEN = os.environ["GITLAB_TOKEN"]
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

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
    people = []
    group = None
    try:
        for username, name in [("bm-owner", "Olive Owner"), ("bm-dev", "Dana Dev"),
                               ("bm-guest", "Gus Guest")]:
            people.append(gl.users.create({
                "username": username, "name": name, "email": f"{username}@example.org",
                "skip_confirmation": True, "password": "a-long-enough-password",
            }))
        owner, dev, guest = people
        group = gl.groups.create({"name": "Billing Compat", "path": "billing-compat"})
        for user, level in [(owner, 50), (dev, 30), (guest, 10)]:
            group.members.create({"user_id": user.id, "access_level": level})

        members = group.billable_members.list(get_all=True)
        check("billable_members.list() returns the group's billable members",
              [m.username for m in members] == ["bm-owner", "bm-dev", "bm-guest"],
              [m.username for m in members])
        first = members[0].attributes if members else {}
        expected_keys = {"id", "username", "name", "state", "avatar_url", "web_url", "email",
                         "last_activity_on", "membership_type", "removable", "created_at",
                         "is_last_owner", "last_login_at"}
        check("each has GitLab's BillableMember fields",
              expected_keys <= set(first), sorted(expected_keys - set(first)))
        check("fields have GitLab's formats",
              first.get("membership_type") == "group_member" and first.get("removable") is True
              and first.get("is_last_owner") is True and TIME_RE.match(first.get("created_at", ""))
              is not None and first.get("email") == "bm-owner@example.org", first)

        by_name = group.billable_members.list(sort="name_desc", get_all=True)
        check("sort=name_desc", [m.name for m in by_name] == ["Olive Owner", "Gus Guest", "Dana Dev"],
              [m.name for m in by_name])
        found = group.billable_members.list(search="dana", get_all=True)
        check("search=dana", [m.username for m in found] == ["bm-dev"],
              [m.username for m in found])
        page = group.billable_members.list(per_page=2, page=2)
        check("per_page=2&page=2", [m.username for m in page] == ["bm-guest"],
              [m.username for m in page])
        listing = group.billable_members.list(per_page=2, iterator=True)
        check("pagination headers: total 3", listing.total == 3, listing.total)

        memberships = members[1].memberships.list(get_all=True)
        membership = memberships[0].attributes if memberships else {}
        check("member.memberships.list() shows the group membership",
              len(memberships) == 1 and membership.get("source_id") == group.id
              and membership.get("source_full_name") == "Billing Compat"
              and membership.get("access_level") == {
                  "string_value": "Developer", "integer_value": 30, "custom_role": None},
              membership)

        try:
            group.billable_members.delete(owner.id)
            check("deleting the last owner is refused", False, "no error")
        except gexc.GitlabDeleteError as error:
            check("deleting the last owner is refused with 400",
                  error.response_code == 400, f"{error.response_code} {error.error_message}")
        group.billable_members.delete(dev.id)
        after = group.billable_members.list(get_all=True)
        check("billable_members.delete(user_id) removes the member",
              [m.username for m in after] == ["bm-owner", "bm-guest"],
              [m.username for m in after])
        try:
            group.billable_members.delete(dev.id)
            check("deleting a non-member is refused", False, "no error")
        except gexc.GitlabDeleteError as error:
            check("deleting a non-member: 400 No member found",
                  error.response_code == 400 and "No member found" in str(error.error_message),
                  f"{error.response_code} {error.error_message}")
    finally:
        if group is not None:
            group.delete()
        for user in people:
            user.delete()


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001 - report, then fail
        failures += 1
        print("FAIL unexpected error:\n" + traceback.format_exc().replace(TOKEN, "[REDACTED]"))
    print(f"{'all checks passed' if failures == 0 else f'{failures} check(s) failed'}")
    sys.exit(1 if failures else 0)
