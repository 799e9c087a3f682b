-- SQLite twin of migrations/postgres: timestamps are RFC 3339 text in UTC (as sqlx writes
-- them), dates are YYYY-MM-DD text, booleans 0/1.
-- Users: the directory that billable counts come from.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    username    TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    email       TEXT        NOT NULL,
    -- active | blocked | deactivated | banned | blocked_pending_approval | ldap_blocked
    state       TEXT        NOT NULL DEFAULT 'active',
    -- human | service_user | project_bot | service_account | ghost | … (GitLab's user types)
    user_type   TEXT        NOT NULL DEFAULT 'human',
    admin       INTEGER     NOT NULL DEFAULT 0,
    created_at  TEXT        NOT NULL,
    updated_at  TEXT        NOT NULL
);
CREATE UNIQUE INDEX users_username_unique ON users (lower(username));
CREATE UNIQUE INDEX users_email_unique ON users (lower(email));
CREATE INDEX users_state_type ON users (state, user_type);

-- Group and project memberships; the Ultimate billable rule needs "above Guest" access.
CREATE TABLE members (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source_type   TEXT        NOT NULL,
    source_id     INTEGER     NOT NULL,
    access_level  INTEGER     NOT NULL,
    created_at    TEXT        NOT NULL,
    UNIQUE (source_type, source_id, user_id)
);
CREATE INDEX members_user_access ON members (user_id, access_level);

-- Personal access tokens, stored only as SHA-256 digests.
CREATE TABLE personal_access_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT        NOT NULL,
    token_digest  TEXT        NOT NULL UNIQUE,
    -- Space-separated scope names, as GitLab lists them.
    scopes        TEXT        NOT NULL,
    expires_at    TEXT,
    revoked       INTEGER     NOT NULL DEFAULT 0,
    created_at    TEXT        NOT NULL,
    last_used_at  TEXT       
);
CREATE INDEX personal_access_tokens_user ON personal_access_tokens (user_id);

-- Licenses exactly as uploaded; everything shown is derived by decoding `data`.
CREATE TABLE licenses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    data        TEXT        NOT NULL,
    created_at  TEXT        NOT NULL,
    updated_at  TEXT        NOT NULL
);

-- Usage-trends measurements (GitLab's identifier 11 = billable users).
CREATE TABLE usage_trends_measurements (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    identifier   INTEGER     NOT NULL,
    count        INTEGER     NOT NULL,
    recorded_at  TEXT        NOT NULL,
    UNIQUE (identifier, recorded_at)
);

-- The daily billable-user snapshot that historical_max and the usage CSV read.
CREATE TABLE historical_data (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at        TEXT        NOT NULL,
    active_user_count  INTEGER     NOT NULL
);
CREATE INDEX historical_data_recorded_at ON historical_data (recorded_at);

-- Instance settings GitLab keeps in application_settings (e.g. license_trial_ends_on).
CREATE TABLE application_settings (
    name        TEXT PRIMARY KEY,
    value       TEXT        NOT NULL,
    updated_at  TEXT        NOT NULL
);
