-- Users from an identity provider: GitLab's instance SCIM API (its identities and its one
-- instance token) and this server's SCIM groups, which may hold GitLab Duo seats.

-- GitLab's ScimIdentity: one per user, found by `extern_uid` case-insensitively. A
-- deprovisioned identity stays (active = false) and its user is `ldap_blocked`.
CREATE TABLE scim_identities (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER     NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    extern_uid  TEXT        NOT NULL,
    active      INTEGER     NOT NULL DEFAULT 1,
    created_at  TEXT        NOT NULL,
    updated_at  TEXT        NOT NULL
);
CREATE UNIQUE INDEX scim_identities_extern_uid ON scim_identities (lower(extern_uid));

-- The instance SCIM token (GitLab's ScimOauthAccessToken with no group): one row at most,
-- stored as a SHA-256 digest like personal access tokens.
CREATE TABLE scim_tokens (
    id            INTEGER     PRIMARY KEY CHECK (id = 1),
    token_digest  TEXT        NOT NULL UNIQUE,
    created_at    TEXT        NOT NULL
);

-- SCIM groups pushed by the identity provider (an extension). A group linked to a GitLab Duo
-- purchase gives its members seats while seats last.
CREATE TABLE scim_groups (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The SCIM `id`: a UUID this server assigns.
    scim_id             TEXT        NOT NULL UNIQUE,
    display_name        TEXT        NOT NULL,
    external_id         TEXT,
    add_on_purchase_id  INTEGER     REFERENCES add_on_purchases (id) ON DELETE SET NULL,
    created_at          TEXT        NOT NULL,
    updated_at          TEXT        NOT NULL
);
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (lower(display_name));
CREATE INDEX scim_groups_purchase ON scim_groups (add_on_purchase_id);

CREATE TABLE scim_group_members (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    scim_group_id  INTEGER     NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    user_id        INTEGER     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     TEXT        NOT NULL,
    UNIQUE (scim_group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (user_id);
