-- Request counts of the rate limits (GitLab's throttles and the GET /users/:id limit), one
-- row per key and fixed window, shared by every replica on this database. Each process counts
-- in memory and adds its counts here every half second; rows are deleted once their window
-- has ended.
CREATE TABLE rate_limit_counters (
    key           TEXT    NOT NULL,
    window_start  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    count         INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_limit_counters_expires_at ON rate_limit_counters (expires_at);
