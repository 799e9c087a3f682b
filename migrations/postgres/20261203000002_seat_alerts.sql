-- Seat alerts fired and not yet re-armed: one row per subject ("license:<id>" or
-- "add_on_purchase:<id>") and threshold (a percentage). The unique key makes a crossing fire
-- once across replicas: whoever inserts the row records the hook event in the same
-- transaction; a recount below the threshold deletes the row, re-arming it.
CREATE TABLE seat_alerts (
    id          BIGSERIAL PRIMARY KEY,
    subject     TEXT        NOT NULL,
    threshold   INTEGER     NOT NULL,
    fired_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (subject, threshold)
);
