-- GitLab Duo and other add-on purchases. `namespace_id` is NULL for instance-wide
-- (self-managed) purchases provisioned from the license, and a top-level group for
-- GitLab.com-style purchases. One purchase per add-on and namespace.
CREATE TABLE add_on_purchases (
    id                                INTEGER PRIMARY KEY AUTOINCREMENT,
    add_on_name                       TEXT        NOT NULL,
    namespace_id                      INTEGER     REFERENCES groups (id) ON DELETE CASCADE,
    quantity                          INTEGER     NOT NULL CHECK (quantity >= 0),
    started_on                        TEXT        NOT NULL,
    expires_on                        TEXT        NOT NULL,
    purchase_xid                      TEXT,
    trial                             INTEGER     NOT NULL DEFAULT 0,
    last_assigned_users_refreshed_at  TEXT,
    created_at                        TEXT        NOT NULL,
    updated_at                        TEXT        NOT NULL
);
-- NULLs are distinct in a plain unique index; the expression makes "instance" one value.
CREATE UNIQUE INDEX add_on_purchases_unique ON add_on_purchases (add_on_name, COALESCE(namespace_id, 0));

-- One seat: a user assigned to a purchase. Deleting the user (or the purchase) frees it.
CREATE TABLE user_add_on_assignments (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    add_on_purchase_id  INTEGER     NOT NULL REFERENCES add_on_purchases (id) ON DELETE CASCADE,
    user_id             INTEGER     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at          TEXT        NOT NULL,
    UNIQUE (add_on_purchase_id, user_id)
);
CREATE INDEX user_add_on_assignments_user ON user_add_on_assignments (user_id);
