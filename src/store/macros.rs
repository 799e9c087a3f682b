//! The statements every write shares, as macros so that each expands inside the caller's own
//! transaction on either backend: reachability, the transaction and its announcement, the
//! last-administrator guard, tokens, hook events and audit events.

/// Runs the same block against whichever pool the store holds; the block is compiled once
/// per driver, so a statement that one backend cannot type fails the build. While the
/// database is known to be unreachable it fails at once with
/// [`crate::store::StoreError::Unavailable`] instead of waiting for a connection that will
/// not come.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {{
        $store.ensure_reachable()?;
        on_pool!($store, $pool => $body)
    }};
}

/// [`with_pool!`] without the reachability check (the probe, the pool figures, closing).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

/// Announces a committed change to other replicas (PostgreSQL only; SQLite has one process).
macro_rules! announce_change {
    (sqlite, $tx:expr) => {};
    (postgres, $tx:expr) => {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind($crate::store::CHANGE_CHANNEL)
            .execute(&mut *$tx)
            .await?;
    };
}

/// Runs `$body` in one write transaction on either backend, then commits, announces the change
/// to other replicas (PostgreSQL `NOTIFY`, delivered on commit) and bumps the local change
/// counter — the steps every write needs, in the only order that keeps caches honest.
macro_rules! in_write_tx {
    ($store:expr, $tx:ident => $body:expr) => {{
        $store.ensure_reachable()?;
        let value = match &$store.db {
            Db::Sqlite(pool) => {
                // IMMEDIATE: the write lock is taken (waiting out other writers) before the
                // first read, so the transaction can never be refused "database is locked"
                // when a read snapshot it already holds could not be upgraded.
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let value = $body;
                $tx.commit().await?;
                value
            }
            Db::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let value = $body;
                announce_change!(postgres, $tx);
                $tx.commit().await?;
                value
            }
        };
        $store.changed();
        value
    }};
}

/// Inside an open transaction whose change removed an active administrator (blocked,
/// banned, deactivated, demoted or deleted one): refuses the change, with
/// [`crate::store::StoreError::LastAdministrator`], if no active administrator is left. Such
/// changes first take one shared row lock (an upsert both backends have), so two
/// administrators demoting each other at the same moment are counted one after the other,
/// never both against the state before either.
macro_rules! keep_an_active_admin {
    ($tx:expr, $now:expr) => {{
        sqlx::query(
            "INSERT INTO application_settings (name, value, updated_at)
             VALUES ('active_admins_guard', '', $1)
             ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at",
        )
        .bind($now)
        .execute(&mut *$tx)
        .await?;
        let remaining: Option<i64> =
            sqlx::query_scalar("SELECT id FROM users WHERE admin AND state = 'active' LIMIT 1")
                .fetch_optional(&mut *$tx)
                .await?;
        if remaining.is_none() {
            return Err(StoreError::LastAdministrator);
        }
    }};
}

/// Inserts a token inside an open transaction and evaluates to its id.
macro_rules! insert_token {
    ($tx:expr, $user_id:expr, $token:expr, $now:expr) => {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO personal_access_tokens
                 (user_id, name, token_digest, scopes, expires_at, revoked, created_at, previous_token_id)
             VALUES ($1, $2, $3, $4, $5, FALSE, $6, $7) RETURNING id",
        )
        .bind($user_id)
        .bind(&$token.name)
        .bind(&$token.digest)
        .bind($token.scopes.join(" "))
        .bind($token.expires_at)
        .bind($now)
        .bind($token.previous_token_id)
        .fetch_one(&mut *$tx)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("a token with this value already exists".into())
            }
            _ => StoreError::Database(error),
        })?
    };
}

/// Records a system-hook event and one pending delivery per hook inside an open transaction;
/// evaluates to whether it was new (a `dedupe_key` already used records nothing).
macro_rules! insert_hook_event {
    ($tx:expr, $name:expr, $payload:expr, $dedupe:expr, $now:expr) => {{
        let event_id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO hook_events (event_name, payload, dedupe_key, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        )
        .bind($name)
        .bind($payload.to_string())
        .bind($dedupe)
        .bind($now)
        .fetch_optional(&mut *$tx)
        .await?;
        if let Some(event_id) = event_id {
            sqlx::query(
                "INSERT INTO hook_deliveries (hook_id, event_id, state, attempts, next_attempt_at, created_at)
                 SELECT id, $1, 'pending', 0, $2, $2 FROM system_hooks",
            )
            .bind(event_id)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
        event_id.is_some()
    }};
}

/// Records an audit event inside an open transaction (and the hook event it raises).
macro_rules! insert_audit {
    ($tx:expr, $audit:expr, $now:expr) => {
        if let Some(audit) = $audit {
            if let Some(hook) = &audit.hook {
                let mut payload = hook.payload.clone();
                if let Some(field) = hook.id_field {
                    payload[field] = serde_json::json!(audit.entity_id);
                }
                let _recorded = insert_hook_event!($tx, hook.event_name, payload, None::<String>, $now);
            }
            sqlx::query(
                "INSERT INTO audit_events (author_id, entity_type, entity_id, event_name, details, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(audit.author_id)
            .bind(audit.entity_type)
            .bind(audit.entity_id)
            .bind(audit.event_name)
            .bind(audit.details.to_string())
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
    };
}

/// Runs `$statement` (a bound query) inside an open transaction and, if it changed a row,
/// records `$audit` with it; evaluates to whether it changed one. The tail of every
/// "delete/update, then audit what actually changed" write.
macro_rules! execute_audited {
    ($tx:expr, $statement:expr, $write:expr) => {{
        let changed = $statement.execute(&mut *$tx).await?.rows_affected() > 0;
        if changed {
            insert_audit!($tx, $write.audit, $write.at);
        }
        changed
    }};
}

/// One page of `$row`s, whether more follow, and the count: `(rows, more, count)`, for a list
/// whose page statement (`$page_sql`, ending in `LIMIT $n OFFSET $n+1`) and count statement
/// (`$count_sql`; REST lists make it with [`crate::store::capped_count`]) share one WHERE
/// clause, and so one set of binds: `|$query| $binds` is applied to both.
macro_rules! page_and_total {
    ($pool:expr, $row:ty, $page_sql:expr, $count_sql:expr, $limit:expr, $offset:expr,
     |$query:ident| $binds:expr) => {{
        // One row past the page says whether another follows without counting them all.
        let mut rows = {
            let $query = sqlx::query_as::<_, $row>($page_sql);
            $binds
        }
        .bind($limit.saturating_add(1))
        .bind($offset)
        .fetch_all($pool)
        .await?;
        let more = rows.len() as i64 > $limit;
        rows.truncate(usize::try_from($limit).unwrap_or(usize::MAX));
        let counted = {
            let $query = sqlx::query_scalar::<_, i64>($count_sql);
            $binds
        }
        .fetch_one($pool)
        .await?;
        (rows, more, counted)
    }};
}

/// Takes the seat ledger's writer lock inside an open transaction: one ledger writer at a
/// time across replicas (a row lock held until commit; SQLite's writer is alone anyway), so
/// two recounts finishing together, or two replicas continuing a scan, never both record.
macro_rules! lock_seat_ledger {
    ($tx:expr, $at:expr) => {
        sqlx::query(
            "INSERT INTO application_settings (name, value, updated_at)
             VALUES ('seat_ledger_lock', '', $1)
             ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at",
        )
        .bind($at)
        .execute(&mut *$tx)
        .await?
    };
}

/// Reads (`$scan` absent) or writes the seat ledger's scan in progress — the comparison of
/// every user that the baseline and a plan change need, done in batches of their own
/// transactions by [`crate::store::Store::continue_ledger_scan`].
macro_rules! ledger_scan_state {
    ($tx:expr) => {{
        let text: Option<String> = sqlx::query_scalar(
            "SELECT value FROM application_settings WHERE name = 'seat_ledger_scan'",
        )
        .fetch_optional(&mut *$tx)
        .await?;
        text.and_then(|text| serde_json::from_str::<$crate::store::ledger::LedgerScan>(&text).ok())
    }};
    ($tx:expr, $scan:expr, $at:expr) => {
        match $scan {
            Some(scan) => sqlx::query(
                "INSERT INTO application_settings (name, value, updated_at)
                 VALUES ('seat_ledger_scan', $1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(serde_json::to_string(scan).unwrap_or_default())
            .bind($at)
            .execute(&mut *$tx)
            .await?,
            None => sqlx::query("DELETE FROM application_settings WHERE name = 'seat_ledger_scan'")
                .execute(&mut *$tx)
                .await?,
        }
    };
}

/// The seat ledger's part of a recount, in its transaction: who started and who stopped being
/// billable since the previous recount (the users the triggers marked), by the rules of
/// `domain::ledger`. The first recount (the baseline) and a change of the license's plan
/// compare every user instead: that starts a scan, which the recount's caller continues in
/// batches of their own transactions ([`crate::store::Store::continue_ledger_scan`]) — at a
/// million users it takes tens of seconds, and SQLite's writers must not wait that long.
macro_rules! write_seat_ledger {
    ($tx:expr, $plan:expr, $at:expr) => {{
        lock_seat_ledger!($tx, $at);
        let plan_now: &str = $plan.unwrap_or($crate::store::ledger::NO_PLAN);
        let before: Option<String> = sqlx::query_scalar(
            "SELECT value FROM application_settings WHERE name = 'seat_ledger_plan'",
        )
        .fetch_optional(&mut *$tx)
        .await?;
        let mut scan = ledger_scan_state!($tx);
        let empty = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM (SELECT 1 FROM seat_ledger LIMIT 1) AS any_entry",
        )
        .fetch_one(&mut *$tx)
        .await?
            == 0;
        // Taken first: a change committed while this runs marks its user again.
        let pending: Vec<i64> = sqlx::query_scalar("DELETE FROM seat_ledger_pending RETURNING user_id")
            .fetch_all(&mut *$tx)
            .await?;
        // A scan too when more users changed than a recount should hold its transaction for
        // (an import, a restore: every user marked).
        let many = scan.is_none() && pending.len() > $crate::store::ledger::PENDING_IN_RECOUNT;
        if (empty && scan.is_none()) || before.as_deref() != Some(plan_now) || many {
            // From the first user again; a baseline still under way stays one.
            scan = Some($crate::store::ledger::LedgerScan {
                baseline: (empty && scan.is_none())
                    || scan.as_ref().is_some_and(|scan| scan.baseline),
                after: 0,
                at: $crate::store::ledger::moment(&$at),
                plan_before: before.clone().or_else(|| Some(plan_now.to_string())),
                plan: plan_now.to_string(),
            });
            ledger_scan_state!($tx, scan.as_ref(), $at);
        }
        // Users a scan has yet to reach are compared when it does.
        let reached = scan.as_ref().map_or(i64::MAX, |scan| scan.after);
        let mut pending: Vec<i64> = pending.into_iter().filter(|id| *id <= reached).collect();
        pending.sort_unstable();
        let plans = $crate::domain::ledger::Plans {
            now: plan_now,
            before: Some(plan_now),
        };
        for chunk in pending.chunks($crate::store::ledger::BATCH as usize) {
            ledger_batch!($tx, chunk, plans, false, $at);
        }
        sqlx::query(
            "INSERT INTO application_settings (name, value, updated_at)
             VALUES ('seat_ledger_plan', $1, $2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(plan_now)
        .bind($at)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// One batch of the seat ledger's scan in progress, in its own transaction: the next
/// [`crate::store::ledger::BATCH`] users compared, or — past the last user — the holders whose
/// user is gone, and the scan ends. Evaluates to whether the scan goes on.
macro_rules! ledger_scan_batch {
    ($tx:expr, $now:expr) => {{
        lock_seat_ledger!($tx, $now);
        match ledger_scan_state!($tx) {
            None => false,
            Some(mut scan) => {
                let plans = $crate::domain::ledger::Plans {
                    now: &scan.plan,
                    before: scan.plan_before.as_deref(),
                };
                let ids: Vec<i64> =
                    sqlx::query_scalar("SELECT id FROM users WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(scan.after)
                        .bind($crate::store::ledger::BATCH)
                        .fetch_all(&mut *$tx)
                        .await?;
                match ids.last() {
                    Some(last) => {
                        let last = *last;
                        ledger_batch!($tx, &ids, plans, scan.baseline, scan.at);
                        scan.after = last;
                        ledger_scan_state!($tx, Some(&scan), $now);
                        true
                    }
                    None => {
                        let gone: Vec<i64> =
                            sqlx::query_scalar($crate::store::ledger::GONE_HOLDERS)
                                .fetch_all(&mut *$tx)
                                .await?;
                        for chunk in gone.chunks($crate::store::ledger::BATCH as usize) {
                            ledger_batch!($tx, chunk, plans, false, scan.at);
                        }
                        ledger_scan_state!($tx, None::<&$crate::store::ledger::LedgerScan>, $now);
                        false
                    }
                }
            }
        }
    }};
}

/// Appends `changes` to the ledger, a few hundred rows a statement. The ledger is its own
/// running set: whoever's latest entry is not a stop counts.
macro_rules! write_ledger_changes {
    ($tx:expr, $changes:expr, $plan:expr, $at:expr) => {{
        let changes: &[$crate::domain::ledger::Change] = $changes;
        if !changes.is_empty() {
            // The whole batch as one JSON parameter: binding a thousand rows' values one by
            // one cost SQLite more than writing them.
            let rows = $crate::store::ledger::changes_json(changes);
            sqlx::query($crate::store::ledger::insert_changes_sql(
                $crate::store::ledger::dialect_of(&$tx),
            ))
            .bind($at)
            .bind($plan)
            .bind(rows)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

/// One batch of the ledger: the candidates' facts and previous standing, the domain's
/// verdict, and the entries and running set written in a few multi-row statements.
macro_rules! ledger_batch {
    ($tx:expr, $ids:expr, $plans:expr, $baseline:expr, $at:expr) => {{
        let ids: &[i64] = $ids;
        let dialect = $crate::store::ledger::dialect_of(&$tx);
        // Each candidate's facts now and its latest entry, read together (whether it counted
        // at the previous recount is in the index its new entry then goes to), the ids in
        // and the rows out as one JSON value each: row by row, SQLite's driver cost more than
        // the reads.
        let facts: String = sqlx::query_scalar($crate::store::ledger::facts_sql(dialect))
            .bind($crate::store::ledger::ids_json(ids))
            .fetch_one(&mut *$tx)
            .await?;
        let rows = $crate::store::ledger::parse_facts(&facts)?;
        let mut held: std::collections::HashMap<i64, String> = rows
            .iter()
            .filter(|row| $crate::store::ledger::counts(row.5.as_deref()))
            .map(|row| (row.0, row.1.clone()))
            .collect();
        // Users deleted since: their latest entry says whether they counted.
        let found: std::collections::HashSet<i64> = rows.iter().map(|row| row.0).collect();
        let gone: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !found.contains(id))
            .collect();
        if !gone.is_empty() {
            let sql = $crate::store::ledger::holders_sql(gone.len());
            let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
            for id in &gone {
                query = query.bind(*id);
            }
            held.extend(query.fetch_all(&mut *$tx).await?);
        }
        let facts = rows
            .into_iter()
            .map(|(id, username, state, user_type, level, _)| {
                (id, username, state, user_type, level)
            })
            .collect();
        let candidates = $crate::store::ledger::candidates(ids, facts, &held);
        let changes = $crate::domain::ledger::changes(&candidates, $plans, $baseline);
        write_ledger_changes!($tx, &changes, $plans.now, $at);
    }};
}

/// Writes what a job produced (a billable-users measurement or a daily snapshot) in the
/// caller's transaction: the job's completion and direct writes share these statements.
macro_rules! write_job_effect {
    ($tx:expr, $effect:expr) => {
        match $effect {
            $crate::store::JobEffect::Nothing => {}
            $crate::store::JobEffect::Measurement {
                count,
                recorded_at,
                plan,
            } => {
                sqlx::query($crate::store::history::INSERT_MEASUREMENT)
                    .bind($crate::store::BILLABLE_USERS_MEASUREMENT)
                    .bind(count)
                    .bind(recorded_at)
                    .execute(&mut *$tx)
                    .await?;
                write_seat_ledger!($tx, plan.as_deref(), recorded_at);
            }
            $crate::store::JobEffect::History(row) => {
                sqlx::query($crate::store::history::INSERT_HISTORY)
                    .bind(row.recorded_at)
                    .bind(row.active_user_count)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    };
}

/// Inserts a user inside an open transaction and returns the row ([`super::USER_COLUMNS`]); a
/// taken username or e-mail is a [`crate::store::StoreError::Conflict`] in GitLab's words.
macro_rules! insert_user {
    ($tx:expr, $user:expr, $at:expr) => {
        sqlx::query_as::<_, User>(&format!(
            "INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             RETURNING {USER_COLUMNS}"
        ))
        .bind(&$user.username)
        .bind(&$user.name)
        .bind(&$user.email)
        .bind($user.state.as_str())
        .bind($user.user_type.as_str())
        .bind($user.admin)
        .bind($at)
        .fetch_one(&mut *$tx)
        .await
        .map_err(|error| {
            unique_violation(
                error,
                &[
                    ("users_username_unique", "Username has already been taken"),
                    ("users_email_unique", "Email has already been taken"),
                ],
            )
        })?
    };
}
