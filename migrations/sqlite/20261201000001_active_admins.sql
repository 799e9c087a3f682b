-- The active administrators, found without a scan: every change that could remove the last
-- one (block, ban, deactivate, demote, delete) counts them in its own transaction.
CREATE INDEX users_active_admins ON users (id) WHERE admin AND state = 'active';
