-- Users: the directory that billable counts come from.
CREATE TABLE users (
    id          BIGSERIAL PRIMARY KEY,
    username    TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    email       TEXT        NOT NULL,
    -- active | blocked | deactivated | banned | blocked_pending_approval | ldap_blocked
    state       TEXT        NOT NULL DEFAULT 'active',
    -- human | service_user | project_bot | service_account | ghost | … (GitLab's user types)
    user_type   TEXT        NOT NULL DEFAULT 'human',
    admin       BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX users_username_unique ON users (lower(username));
CREATE UNIQUE INDEX users_email_unique ON users (lower(email));
CREATE INDEX users_state_type ON users (state, user_type);

-- Group and project memberships; the Ultimate billable rule needs "above Guest" access.
CREATE TABLE members (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source_type   TEXT        NOT NULL,
    source_id     BIGINT      NOT NULL,
    access_level  INTEGER     NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (source_type, source_id, user_id)
);
CREATE INDEX members_user_access ON members (user_id, access_level);

-- Personal access tokens, stored only as SHA-256 digests.
CREATE TABLE personal_access_tokens (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT        NOT NULL,
    token_digest  TEXT        NOT NULL UNIQUE,
    -- Space-separated scope names, as GitLab lists them.
    scopes        TEXT        NOT NULL,
    expires_at    DATE,
    revoked       BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ
);
CREATE INDEX personal_access_tokens_user ON personal_access_tokens (user_id);

-- Licenses exactly as uploaded; everything shown is derived by decoding `data`.
CREATE TABLE licenses (
    id          BIGSERIAL PRIMARY KEY,
    data        TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- Usage-trends measurements (GitLab's identifier 11 = billable users).
CREATE TABLE usage_trends_measurements (
    id           BIGSERIAL PRIMARY KEY,
    identifier   SMALLINT    NOT NULL,
    count        BIGINT      NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (identifier, recorded_at)
);

-- The daily billable-user snapshot that historical_max and the usage CSV read.
CREATE TABLE historical_data (
    id                 BIGSERIAL PRIMARY KEY,
    recorded_at        TIMESTAMPTZ NOT NULL,
    active_user_count  BIGINT      NOT NULL
);
CREATE INDEX historical_data_recorded_at ON historical_data (recorded_at);

-- Instance settings GitLab keeps in application_settings (e.g. license_trial_ends_on).
CREATE TABLE application_settings (
    name        TEXT PRIMARY KEY,
    value       TEXT        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
