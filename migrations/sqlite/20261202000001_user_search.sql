-- User search without a scan of `users` (GitLab's rules: terms of three characters or more
-- match part of a username or name, shorter ones match exactly, e-mail addresses exactly).
-- Partial matches: a trigram index (FTS5's trigram tokenizer, case-insensitive) over
-- usernames and names, kept in step with `users` by triggers; exact names: an index.
CREATE VIRTUAL TABLE users_search USING fts5(
    username, name, content = 'users', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO users_search (users_search) VALUES ('rebuild');

CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_search (rowid, username, name) VALUES (new.id, new.username, new.name);
END;

CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_search (users_search, rowid, username, name)
    VALUES ('delete', old.id, old.username, old.name);
END;

CREATE TRIGGER users_search_update AFTER UPDATE OF username, name ON users BEGIN
    INSERT INTO users_search (users_search, rowid, username, name)
    VALUES ('delete', old.id, old.username, old.name);
    INSERT INTO users_search (rowid, username, name) VALUES (new.id, new.username, new.name);
END;

CREATE INDEX users_name_lower ON users (lower(name));
