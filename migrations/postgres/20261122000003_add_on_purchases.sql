-- GitLab Duo and other add-on purchases. `namespace_id` is NULL for instance-wide
-- (self-managed) purchases provisioned from the license, and a top-level group for
-- GitLab.com-style purchases. One purchase per add-on and namespace.
CREATE TABLE add_on_purchases (
    id                                BIGSERIAL PRIMARY KEY,
    add_on_name                       TEXT        NOT NULL,
    namespace_id                      BIGINT      REFERENCES groups (id) ON DELETE CASCADE,
    quantity                          BIGINT      NOT NULL CHECK (quantity >= 0),
    started_on                        DATE        NOT NULL,
    expires_on                        DATE        NOT NULL,
    purchase_xid                      TEXT,
    trial                             BOOLEAN     NOT NULL DEFAULT FALSE,
    last_assigned_users_refreshed_at  TIMESTAMPTZ,
    created_at                        TIMESTAMPTZ NOT NULL,
    updated_at                        TIMESTAMPTZ NOT NULL
);
-- NULLs are distinct in a plain unique index; the expression makes "instance" one value.
CREATE UNIQUE INDEX add_on_purchases_unique ON add_on_purchases (add_on_name, COALESCE(namespace_id, 0));

-- One seat: a user assigned to a purchase. Deleting the user (or the purchase) frees it.
CREATE TABLE user_add_on_assignments (
    id                  BIGSERIAL PRIMARY KEY,
    add_on_purchase_id  BIGINT      NOT NULL REFERENCES add_on_purchases (id) ON DELETE CASCADE,
    user_id             BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (add_on_purchase_id, user_id)
);
CREATE INDEX user_add_on_assignments_user ON user_add_on_assignments (user_id);
