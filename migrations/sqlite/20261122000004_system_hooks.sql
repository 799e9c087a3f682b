-- GitLab's system hooks: where to send instance events.
CREATE TABLE system_hooks (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    url                       TEXT        NOT NULL,
    token                     TEXT,
    name                      TEXT,
    description               TEXT,
    push_events               INTEGER     NOT NULL DEFAULT 1,
    tag_push_events           INTEGER     NOT NULL DEFAULT 0,
    merge_requests_events     INTEGER     NOT NULL DEFAULT 0,
    repository_update_events  INTEGER     NOT NULL DEFAULT 0,
    enable_ssl_verification   INTEGER     NOT NULL DEFAULT 1,
    created_at                TEXT        NOT NULL
);

-- The outbox: an event is recorded in the transaction of the change it reports (or once per
-- `dedupe_key` for scheduled alerts), with one delivery per hook that existed then.
CREATE TABLE hook_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_name  TEXT        NOT NULL,
    payload     TEXT        NOT NULL,
    dedupe_key  TEXT        UNIQUE,
    created_at  TEXT        NOT NULL
);

CREATE TABLE hook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    hook_id          INTEGER     NOT NULL REFERENCES system_hooks (id) ON DELETE CASCADE,
    event_id         INTEGER     NOT NULL REFERENCES hook_events (id) ON DELETE CASCADE,
    state            TEXT        NOT NULL DEFAULT 'pending',
    attempts         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  TEXT        NOT NULL,
    locked_until     TEXT,
    response_status  INTEGER,
    last_error       TEXT,
    created_at       TEXT        NOT NULL,
    delivered_at     TEXT,
    UNIQUE (hook_id, event_id)
);
CREATE INDEX hook_deliveries_due ON hook_deliveries (state, next_attempt_at);
