-- Groups (namespaces) for memberships; top-level only for now.
CREATE TABLE groups (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT        NOT NULL,
    path         TEXT        NOT NULL,
    description  TEXT        NOT NULL DEFAULT '',
    visibility   TEXT        NOT NULL DEFAULT 'private',
    created_at   TEXT        NOT NULL
);
CREATE UNIQUE INDEX groups_path_unique ON groups (lower(path));

-- When the user was last active (GitLab's deactivation rule reads it).
ALTER TABLE users ADD COLUMN last_activity_on TEXT;

-- Durable background work. A job row is claimed by one worker at a time; its effect and its
-- completion are committed in one transaction, so it takes effect exactly once even when
-- several replicas share the database. `unique_key` makes scheduled runs idempotent.
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT        NOT NULL,
    unique_key    TEXT        UNIQUE,
    run_at        TEXT        NOT NULL,
    state         TEXT        NOT NULL DEFAULT 'pending',
    attempts      INTEGER     NOT NULL DEFAULT 0,
    locked_until  TEXT       ,
    last_error    TEXT,
    created_at    TEXT        NOT NULL,
    finished_at   TEXT       
);
CREATE INDEX jobs_due ON jobs (state, run_at);

-- Who did what, when (GitLab's audit events).
CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id    INTEGER     NOT NULL,
    entity_type  TEXT        NOT NULL,
    entity_id    INTEGER     NOT NULL,
    event_name   TEXT        NOT NULL,
    details      TEXT        NOT NULL,
    created_at   TEXT        NOT NULL
);
CREATE INDEX audit_events_created_at ON audit_events (created_at);
CREATE INDEX audit_events_entity ON audit_events (entity_type, entity_id);
