-- The seat ledger: who started and who stopped being billable at each recount, and why.

-- Who counted at the last recount, since when and why: the ledger's running state, which
-- the next recount compares with. No foreign key: a deleted user is recorded as stopped.
CREATE TABLE billable_seats (
    user_id     BIGINT      PRIMARY KEY,
    username    TEXT        NOT NULL,
    since       TIMESTAMPTZ NOT NULL,
    reason      TEXT        NOT NULL
);

-- Append-only: one row per user and change, written in the recount's transaction.
-- direction: baseline (the set at the first recount after the upgrade) | started | stopped.
CREATE TABLE seat_ledger (
    id           BIGSERIAL   PRIMARY KEY,
    recorded_at  TIMESTAMPTZ NOT NULL,
    user_id      BIGINT      NOT NULL,
    username     TEXT        NOT NULL,
    direction    TEXT        NOT NULL,
    reason       TEXT        NOT NULL,
    plan         TEXT
);
CREATE INDEX seat_ledger_user ON seat_ledger (user_id, id);
CREATE INDEX seat_ledger_recorded ON seat_ledger (recorded_at, id);

-- Users whose billability may have changed since the last recount, kept by triggers on
-- users and members, so that a recount compares only them (a plan change compares all).
CREATE TABLE seat_ledger_pending (
    user_id  BIGINT PRIMARY KEY
);

CREATE FUNCTION seat_ledger_mark() RETURNS trigger AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        INSERT INTO seat_ledger_pending (user_id)
        VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO seat_ledger_pending (user_id)
        VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER users_seat_ledger AFTER INSERT OR DELETE OR UPDATE OF state, user_type ON users
    FOR EACH ROW EXECUTE FUNCTION seat_ledger_mark();
CREATE TRIGGER members_seat_ledger AFTER INSERT OR DELETE OR UPDATE OF access_level, user_id ON members
    FOR EACH ROW EXECUTE FUNCTION seat_ledger_mark();
