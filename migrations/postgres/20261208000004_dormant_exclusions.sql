-- Users, and members of groups, that the dormant-user job never deactivates (an extension:
-- GitLab's job has no exclusions; people asked for them in its tracker).
CREATE TABLE dormant_exclusions (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT        NOT NULL CHECK (kind IN ('user', 'group')),
    subject_id  BIGINT      NOT NULL,
    created_at  TIMESTAMPTZ        NOT NULL,
    UNIQUE (kind, subject_id)
);
