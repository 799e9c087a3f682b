-- SQLite twin of the PostgreSQL migration: the seat ledger.

CREATE TABLE billable_seats (
    user_id     INTEGER     PRIMARY KEY,
    username    TEXT        NOT NULL,
    since       TEXT        NOT NULL,
    reason      TEXT        NOT NULL
);

CREATE TABLE seat_ledger (
    id           INTEGER     PRIMARY KEY AUTOINCREMENT,
    recorded_at  TEXT        NOT NULL,
    user_id      INTEGER     NOT NULL,
    username     TEXT        NOT NULL,
    direction    TEXT        NOT NULL,
    reason       TEXT        NOT NULL,
    plan         TEXT
);
CREATE INDEX seat_ledger_user ON seat_ledger (user_id, id);
CREATE INDEX seat_ledger_recorded ON seat_ledger (recorded_at, id);

CREATE TABLE seat_ledger_pending (
    user_id  INTEGER PRIMARY KEY
);

CREATE TRIGGER users_seat_ledger_insert AFTER INSERT ON users BEGIN
    INSERT INTO seat_ledger_pending (user_id) VALUES (new.id) ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER users_seat_ledger_delete AFTER DELETE ON users BEGIN
    INSERT INTO seat_ledger_pending (user_id) VALUES (old.id) ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER users_seat_ledger_update AFTER UPDATE OF state, user_type ON users BEGIN
    INSERT INTO seat_ledger_pending (user_id) VALUES (new.id) ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER members_seat_ledger_insert AFTER INSERT ON members BEGIN
    INSERT INTO seat_ledger_pending (user_id) VALUES (new.user_id) ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER members_seat_ledger_delete AFTER DELETE ON members BEGIN
    INSERT INTO seat_ledger_pending (user_id) VALUES (old.user_id) ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER members_seat_ledger_update AFTER UPDATE OF access_level, user_id ON members BEGIN
    INSERT INTO seat_ledger_pending (user_id) VALUES (new.user_id) ON CONFLICT DO NOTHING;
    INSERT INTO seat_ledger_pending (user_id) VALUES (old.user_id) ON CONFLICT DO NOTHING;
END;
