-- A rotated token points at the one it replaced (GitLab's previous_personal_access_token_id):
-- the chain is the token's family, revoked whole when a revoked member is used to rotate.
ALTER TABLE personal_access_tokens
    ADD COLUMN previous_token_id INTEGER REFERENCES personal_access_tokens (id) ON DELETE SET NULL;
CREATE INDEX personal_access_tokens_previous ON personal_access_tokens (previous_token_id)
    WHERE previous_token_id IS NOT NULL;
