-- The GitLab instances this server watches (the fleet), the users each one's latest complete
-- sync found, and the summary computed when a snapshot changes.

-- A job may be about one thing (a fleet sync names its instance).
ALTER TABLE jobs ADD COLUMN subject_id BIGINT;

CREATE TABLE fleet_instances (
    id                      BIGSERIAL PRIMARY KEY,
    name                    TEXT        NOT NULL,
    -- NULL for an offline (air-gapped) instance whose data is imported from a file.
    url                     TEXT,
    -- The personal access token, AES-256-GCM encrypted with the secrets key (never the
    -- database's): "v1:" + base64(nonce ‖ ciphertext).
    token_ciphertext        TEXT,
    gitlab_version          TEXT,
    license_plan            TEXT,
    license_seats           BIGINT,
    license_starts_on       DATE,
    license_expires_on      DATE,
    license_billable_users  BIGINT,
    users_count             BIGINT,
    billable_users          BIGINT,
    billability_source      TEXT,
    sync_status             TEXT        NOT NULL DEFAULT 'never',
    sync_started_at         TIMESTAMPTZ,
    sync_finished_at        TIMESTAMPTZ,
    sync_error              TEXT,
    last_success_at         TIMESTAMPTZ,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX fleet_instances_name ON fleet_instances (lower(name));

-- The users of each instance's latest complete snapshot. `person_key` joins the accounts of
-- one person across instances (a shared identity, then a shared e-mail address); the two
-- flags after it are the person's, copied onto each account so that every filter of the
-- people list is served by an index.
CREATE TABLE fleet_users (
    id                      BIGSERIAL PRIMARY KEY,
    instance_id             BIGINT      NOT NULL REFERENCES fleet_instances (id) ON DELETE CASCADE,
    upstream_id             BIGINT      NOT NULL,
    username                TEXT        NOT NULL,
    name                    TEXT        NOT NULL,
    email                   TEXT        NOT NULL,
    state                   TEXT        NOT NULL,
    bot                     BOOLEAN     NOT NULL,
    is_admin                BOOLEAN     NOT NULL,
    billable                BOOLEAN     NOT NULL,
    -- "provider<TAB>extern_uid" per line.
    identities              TEXT        NOT NULL,
    last_activity_on        DATE,
    created_at              TIMESTAMPTZ,
    person_key              TEXT        NOT NULL,
    person_billable         BOOLEAN     NOT NULL,
    person_outside_largest  BOOLEAN     NOT NULL,
    UNIQUE (instance_id, upstream_id)
);
CREATE INDEX fleet_users_person ON fleet_users (person_key, instance_id);
CREATE INDEX fleet_users_instance_person ON fleet_users (instance_id, person_key);
CREATE INDEX fleet_users_billable_person ON fleet_users (person_billable, person_key);
CREATE INDEX fleet_users_outside_person ON fleet_users (person_outside_largest, person_key);

-- Pages of a sync in progress, swapped into fleet_users in one transaction when the sync is
-- complete (and dropped when it is not). `stage` names the sync (job and attempt).
CREATE TABLE fleet_staged_users (
    id                      BIGSERIAL PRIMARY KEY,
    instance_id             BIGINT      NOT NULL REFERENCES fleet_instances (id) ON DELETE CASCADE,
    stage                   TEXT        NOT NULL,
    upstream_id             BIGINT      NOT NULL,
    username                TEXT        NOT NULL,
    name                    TEXT        NOT NULL,
    email                   TEXT        NOT NULL,
    state                   TEXT        NOT NULL,
    bot                     BOOLEAN     NOT NULL,
    is_admin                BOOLEAN     NOT NULL,
    billable                BOOLEAN     NOT NULL,
    identities              TEXT        NOT NULL,
    last_activity_on        DATE,
    created_at              TIMESTAMPTZ,
    staged_at               TIMESTAMPTZ NOT NULL
);
-- Each user once per stage: one listed again on a later page replaces its earlier copy.
CREATE UNIQUE INDEX fleet_staged_users_stage ON fleet_staged_users (instance_id, stage, upstream_id);

-- The fleet's figures as of the last snapshot change (one row, name 'fleet'): JSON.
CREATE TABLE fleet_summaries (
    name                    TEXT        PRIMARY KEY,
    summary                 TEXT        NOT NULL,
    subset_holds            BOOLEAN     NOT NULL,
    computed_at             TIMESTAMPTZ NOT NULL
);
