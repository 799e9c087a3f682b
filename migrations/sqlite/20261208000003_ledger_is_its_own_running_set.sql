-- The seat ledger is its own running set: whoever's latest entry (by seat_ledger_user) is not a
-- stop counted at the last recount. A second table kept beside it cost every recount a random
-- read and write per changed user (a third of the ledger's work at a million users).
DROP TABLE billable_seats;

-- Each user's latest entry is read by every recount for every changed user: with the
-- direction in the index that read is the index alone, not a random read of the table too.
DROP INDEX seat_ledger_user;
CREATE INDEX seat_ledger_user ON seat_ledger (user_id, id, direction);
