-- GitLab's system hooks: where to send instance events.
CREATE TABLE system_hooks (
    id                        BIGSERIAL PRIMARY KEY,
    url                       TEXT        NOT NULL,
    token                     TEXT,
    name                      TEXT,
    description               TEXT,
    push_events               BOOLEAN     NOT NULL DEFAULT TRUE,
    tag_push_events           BOOLEAN     NOT NULL DEFAULT FALSE,
    merge_requests_events     BOOLEAN     NOT NULL DEFAULT FALSE,
    repository_update_events  BOOLEAN     NOT NULL DEFAULT FALSE,
    enable_ssl_verification   BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at                TIMESTAMPTZ NOT NULL
);

-- The outbox: an event is recorded in the transaction of the change it reports (or once per
-- `dedupe_key` for scheduled alerts), with one delivery per hook that existed then.
CREATE TABLE hook_events (
    id          BIGSERIAL PRIMARY KEY,
    event_name  TEXT        NOT NULL,
    payload     TEXT        NOT NULL,
    dedupe_key  TEXT        UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE hook_deliveries (
    id               BIGSERIAL PRIMARY KEY,
    hook_id          BIGINT      NOT NULL REFERENCES system_hooks (id) ON DELETE CASCADE,
    event_id         BIGINT      NOT NULL REFERENCES hook_events (id) ON DELETE CASCADE,
    state            TEXT        NOT NULL DEFAULT 'pending',
    attempts         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    locked_until     TIMESTAMPTZ,
    response_status  INTEGER,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    delivered_at     TIMESTAMPTZ,
    UNIQUE (hook_id, event_id)
);
CREATE INDEX hook_deliveries_due ON hook_deliveries (state, next_attempt_at);
