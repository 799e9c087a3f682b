-- Sessions of the subscription web page. A session acts with the personal access token it
-- was opened with (revoking the token ends it); only the cookie's digest is stored.
CREATE TABLE web_sessions (
    id              BIGSERIAL PRIMARY KEY,
    session_digest  TEXT        NOT NULL UNIQUE,
    token_id        BIGINT      NOT NULL REFERENCES personal_access_tokens (id) ON DELETE CASCADE,
    csrf_token      TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX web_sessions_expires_at ON web_sessions (expires_at);
