//! The only writer. On one held connection: session settings (sql_log_bin=0 before the
//! transaction begins, since it cannot change inside one), `START TRANSACTION`, each fix
//! preceded by its journal write, checks of affected rows and warnings, `COMMIT`; then
//! the SQL thread is restarted and watched until it has moved past the failing
//! transaction. Any surprise rolls the whole repair back: never half-applied.

use crate::plan::{Batch, BatchLimits, InsertStep, RepairPlan};
use crate::record::{Audit, JournalError, JournalFile, Source, json_row};
use crate::sql::{self, TAG};
use crate::status::{Flavor, Incident};
use mysql::Conn;
use mysql::prelude::Queryable;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{}: {source}", crate::record::preview(statement, 300))]
    Sql {
        statement: String,
        #[source]
        source: mysql::Error,
    },
    #[error(
        "{}: {what}; the repair was rolled back",
        crate::record::preview(statement, 300)
    )]
    Unexpected { statement: String, what: String },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("the repair would change more than --max-rows {limit} rows (at least {rows})")]
    TooManyRows { limit: u64, rows: u64 },
    /// A fix would fire a trigger on the replica: its side effects would be changes
    /// nobody journalled and the primary never made.
    #[error(
        "{table} has {trigger_kind} trigger {trigger}: a fix's {trigger_kind} would fire it and change rows the primary never changed (the SQL thread does not run triggers for row events); repair this table by hand"
    )]
    Trigger {
        table: String,
        trigger: String,
        trigger_kind: String,
    },
}

/// What a committed repair changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub deleted: u64,
    pub inserted: u64,
    /// Rows inserted into tables without any unique key: the replica may now hold a
    /// stale near-duplicate of such a row, which no key lets us find.
    pub keyless_inserts: u64,
    /// Each changing statement as it ran, for the record.
    pub statements: Vec<String>,
    /// The fix is committed but its record is not complete (the journal's outcome line
    /// or the audit trail could not be written): the rows changed all the same, so this
    /// is not a rollback; it is said, counted and alerted on.
    pub record_error: Option<String>,
}

fn run(conn: &mut Conn, statement: &str) -> Result<(), ApplyError> {
    conn.query_drop(statement)
        .map_err(|source| ApplyError::Sql {
            statement: statement.to_string(),
            source,
        })
}

fn warnings_text(conn: &mut Conn) -> String {
    conn.query::<(Vec<u8>, u32, Vec<u8>), _>("SHOW WARNINGS")
        .map(|w| {
            w.into_iter()
                .map(|(level, code, msg)| {
                    format!(
                        "{} {code}: {}",
                        String::from_utf8_lossy(&level),
                        String::from_utf8_lossy(&msg)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// Where the audit trail of a repair goes and what its lines say about their source.
pub struct AuditTo<'a> {
    pub path: &'a std::path::Path,
    pub source: &'a Source,
}

/// Refuses, before any row is touched, a plan whose fixes would fire a trigger: a
/// DELETE fires the table's DELETE triggers, an INSERT IGNORE its INSERT triggers. There
/// is no session switch that turns triggers off, so the only exact answer short of
/// replaying row events is not to run the statement.
///
/// MariaDB lists a table's triggers in information_schema.TRIGGERS to any user with a
/// privilege on the table (a fix needs DELETE/INSERT there anyway); MySQL 8 only with
/// the TRIGGER privilege, which the README asks for.
pub fn check_triggers(reader: &mut impl Queryable, plan: &RepairPlan) -> Result<(), ApplyError> {
    let mut wanted: Vec<(String, String, &str)> = Vec::new();
    for d in &plan.deletes {
        wanted.push((d.table.schema.clone(), d.table.name.clone(), "DELETE"));
    }
    for i in &plan.inserts {
        wanted.push((i.table.schema.clone(), i.table.name.clone(), "INSERT"));
    }
    wanted.sort();
    wanted.dedup();
    for chunk in wanted.chunks(200) {
        let q = sql::triggers_for(chunk);
        let found: Option<(String, String, String, String)> =
            reader.query_first(&q).map_err(|source| ApplyError::Sql {
                statement: q.clone(),
                source,
            })?;
        if let Some((schema, table, kind, trigger)) = found {
            return Err(ApplyError::Trigger {
                table: format!("{}.{}", sql::ident(&schema), sql::ident(&table)),
                trigger: sql::ident(&trigger),
                trigger_kind: kind,
            });
        }
    }
    Ok(())
}

/// The session settings a repair changes, as they were, so the connection (which the
/// worker goes on using to read the status) is handed back as it was found.
struct SavedSession(String);

impl SavedSession {
    fn save(conn: &mut Conn) -> Result<Self, ApplyError> {
        let q = sql::SESSION_READ;
        let row: Option<(u8, String, String, u8, Option<String>)> =
            conn.query_first(q).map_err(|source| ApplyError::Sql {
                statement: q.into(),
                source,
            })?;
        let (log_bin, tz, mode, fk, results) =
            row.unwrap_or((1, "SYSTEM".into(), String::new(), 1, None));
        Ok(SavedSession(sql::session_restore(
            log_bin,
            &tz,
            &mode,
            fk,
            results.as_deref(),
        )))
    }

    fn restore(&self, conn: &mut Conn) {
        if let Err(e) = conn.query_drop(&self.0) {
            tracing::warn!("cannot restore the session settings after a repair: {e}");
        }
    }
}

/// The only writer: handed out by `RepairSession::applier` while the repair lock is
/// held; nothing else in the agent can run a changing statement on a replica.
pub struct Applier<'a> {
    conn: &'a mut Conn,
    flavor: &'a Flavor,
}

impl<'a> Applier<'a> {
    pub(crate) fn new(conn: &'a mut Conn, flavor: &'a Flavor) -> Self {
        Applier { conn, flavor }
    }

    /// Applies `plan` in one transaction that never reaches the replica's binlog; the
    /// session variables it sets are put back afterwards, whatever happened.
    pub fn apply(
        &mut self,
        plan: &RepairPlan,
        journal: &mut JournalFile,
        max_rows: Option<u64>,
        audit_to: AuditTo<'_>,
    ) -> Result<Applied, ApplyError> {
        let saved = SavedSession::save(self.conn)?;
        let result = apply_in_session(self.conn, plan, journal, max_rows, audit_to);
        saved.restore(self.conn);
        result
    }

    pub fn restart_sql_thread(&mut self, connection: &str) -> Result<(), ApplyError> {
        run(
            self.conn,
            &format!("{} {TAG}", self.flavor.start_sql_thread_sql(connection)),
        )
    }
}

fn apply_in_session(
    conn: &mut Conn,
    plan: &RepairPlan,
    journal: &mut JournalFile,
    max_rows: Option<u64>,
    audit_to: AuditTo<'_>,
) -> Result<Applied, ApplyError> {
    let mut audit = Audit::default();
    for s in sql::SESSION_SETTINGS {
        run(conn, &format!("{s} {TAG}"))?;
    }
    // Rows read back for the journal arrive as stored, whatever their charset: over a
    // utf8mb4 connection a latin1 'café' would come back converted, and the journal
    // would restore it double-encoded.
    run(
        conn,
        &format!("SET SESSION character_set_results = binary {TAG}"),
    )?;
    run(conn, &format!("START TRANSACTION {TAG}"))?;
    match apply_steps(conn, plan, journal, max_rows, &mut audit, audit_to.source) {
        Ok(mut applied) => {
            run(conn, &format!("COMMIT {TAG}"))?;
            // Committed: from here on nothing is rolled back. A record that cannot be
            // completed is reported as exactly that.
            let mut problems = Vec::new();
            if let Err(e) = journal.finish("committed") {
                problems.push(e.to_string());
            }
            if let Err(e) = audit.commit(audit_to.path) {
                problems.push(e.to_string());
            }
            if !problems.is_empty() {
                applied.record_error = Some(problems.join("; "));
            }
            pause_for_tests("REPL_REPAIR_TEST_PAUSE_AFTER_COMMIT_MS");
            Ok(applied)
        }
        Err(e) => {
            let _ = conn.query_drop(format!("ROLLBACK {TAG}"));
            let _ = journal.finish(&format!("rolled back, nothing above was applied: {e}"));
            Err(e)
        }
    }
}

fn apply_steps(
    conn: &mut Conn,
    plan: &RepairPlan,
    journal: &mut JournalFile,
    max_rows: Option<u64>,
    audit: &mut Audit,
    source: &Source,
) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    // --max-rows caps every row the fix changes, deleted or inserted, and is checked
    // before the rows are journalled or touched.
    let check = |applied: &Applied, more: u64| match max_rows {
        Some(limit) if applied.deleted + applied.inserted + more > limit => {
            Err(ApplyError::TooManyRows {
                limit,
                rows: applied.deleted + applied.inserted + more,
            })
        }
        _ => Ok(()),
    };
    for batch in plan.batches(BatchLimits::default()) {
        match batch {
            Batch::Delete {
                table, condition, ..
            } => {
                let select = sql::select_for_update(table, &condition);
                let rows: Vec<mysql::Row> =
                    conn.exec(&select, ()).map_err(|source| ApplyError::Sql {
                        statement: select.clone(),
                        source,
                    })?;
                if rows.is_empty() {
                    continue;
                }
                check(&applied, rows.len() as u64)?;
                let values: Vec<Vec<mysql::Value>> = rows.into_iter().map(|r| r.unwrap()).collect();
                // Journal first, durably; only then delete.
                let maps = journal.record_deleted(table, &values)?;
                pause_for_tests("REPL_REPAIR_TEST_PAUSE_AFTER_JOURNAL_MS");
                for before in maps {
                    audit.row(source, "repair-delete", table, Some(before), None);
                }
                let delete = sql::delete(table, &condition);
                run(conn, &delete)?;
                let n = conn.affected_rows();
                if n != values.len() as u64 {
                    return Err(ApplyError::Unexpected {
                        statement: delete,
                        what: format!(
                            "deleted {n} rows, {} were read and journalled",
                            values.len()
                        ),
                    });
                }
                applied.deleted += n;
                applied.statements.push(delete);
            }
            Batch::Insert { table, steps } => {
                // How many rows of each identity the replica holds (a keyless table is a
                // multiset; a keyed identity holds 0 or 1).
                let probe = sql::count_each(table, steps.iter().map(|s| s.identity.as_str()));
                let found: Option<mysql::Row> =
                    conn.query_first(&probe).map_err(|source| ApplyError::Sql {
                        statement: probe.clone(),
                        source,
                    })?;
                let held: Vec<u64> = found
                    .map(|r| {
                        r.unwrap()
                            .into_iter()
                            .map(|v| match v {
                                mysql::Value::Int(i) => i.max(0) as u64,
                                mysql::Value::UInt(u) => u,
                                mysql::Value::Bytes(b) => std::str::from_utf8(&b)
                                    .ok()
                                    .and_then(|t| t.parse().ok())
                                    .unwrap_or(0),
                                _ => 0,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let missing: Vec<(&InsertStep, u64)> = steps
                    .iter()
                    .zip(held.iter().chain(std::iter::repeat(&0)))
                    .filter(|(s, h)| s.copies.max(1) > **h)
                    .map(|(s, h)| (*s, s.copies.max(1) - h))
                    .collect();
                if missing.is_empty() {
                    continue;
                }
                let rows: u64 = missing.iter().map(|(_, n)| n).sum();
                check(&applied, rows)?;
                journal.record_inserted(
                    table,
                    missing
                        .iter()
                        .flat_map(|(s, n)| std::iter::repeat_n(s.identity.as_str(), *n as usize)),
                )?;
                for (step, _) in &missing {
                    for set in step.variable_statements() {
                        run(conn, &set)?;
                    }
                }
                let insert = sql::insert_ignore_rows(
                    table,
                    &missing[0].0.columns,
                    missing
                        .iter()
                        .flat_map(|(s, n)| std::iter::repeat_n(s.values.as_slice(), *n as usize)),
                );
                run(conn, &insert)?;
                let (n, w) = (conn.affected_rows(), conn.warnings());
                if n != rows || w != 0 {
                    let warnings = warnings_text(conn);
                    return Err(ApplyError::Unexpected {
                        statement: insert,
                        what: format!("inserted {n} of {rows} rows with {w} warnings ({warnings})"),
                    });
                }
                applied.inserted += n;
                for (step, copies) in &missing {
                    let after = json_row(
                        table,
                        step.row.iter().enumerate().filter_map(|(i, v)| {
                            let v = v.as_ref()?;
                            let c = table.columns.get(i)?;
                            (!c.generated).then(|| (i, crate::record::json_binlog_value(v, c)))
                        }),
                    );
                    for _ in 0..*copies {
                        audit.row(source, "repair-insert", table, None, Some(after.clone()));
                    }
                }
                // Free the server-side copies of large values.
                for (step, _) in &missing {
                    for (_, var) in &step.big {
                        run(conn, &format!("SET @{var} = NULL {TAG}"))?;
                    }
                }
                applied.keyless_inserts += missing
                    .iter()
                    .filter(|(s, _)| s.keyless)
                    .map(|(_, n)| n)
                    .sum::<u64>();
                applied.statements.push(insert);
            }
        }
    }
    Ok(applied)
}

/// Test hooks: `REPL_REPAIR_TEST_PAUSE_AFTER_JOURNAL_MS` holds the repair between its
/// journal write and its COMMIT, `REPL_REPAIR_TEST_PAUSE_AFTER_COMMIT_MS` between its
/// COMMIT and the SQL thread's restart, so a test can kill -9 the agent exactly there.
fn pause_for_tests(var: &str) {
    if let Some(ms) = std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Whether the repair user may restart the SQL thread, read from its grants (`SHOW
/// GRANTS` lists the user's and its active role's): checked before any row is touched.
pub fn check_restart_privilege(reader: &mut impl Queryable) -> Result<(), String> {
    if crate::grants::read(reader)?.global_any(crate::grants::RESTART) {
        Ok(())
    } else {
        Err("the repair user may not restart the SQL thread: grant it REPLICATION SLAVE ADMIN (MariaDB 10.5+), REPLICATION_SLAVE_ADMIN (MySQL 8) or SUPER on *.*".into())
    }
}

/// How the SQL thread behaved after the restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// It executed past the failing transaction.
    MovedOn { exec_file: String, exec_pos: u64 },
    /// It stopped again on the same transaction.
    StillFailing { errno: u32, message: String },
    /// Still running the transaction when the wait ended (a huge transaction).
    StillApplying,
}

/// Polls the status until the SQL thread has left the failing transaction behind, has
/// stopped on it again, or `timeout` passes.
/// `status` reads the incident's connection status (`status_sql` names it in errors).
pub fn verify(
    mut status: impl FnMut() -> Result<Option<crate::status::ReplicaStatus>, mysql::Error>,
    status_sql: &str,
    incident: &Incident,
    timeout: Duration,
) -> Result<Verification, ApplyError> {
    let start = Instant::now();
    for attempt in 0.. {
        let st = status().map_err(|source| ApplyError::Sql {
            statement: status_sql.to_string(),
            source,
        })?;
        if let Some(st) = st {
            let moved = st.exec_master_log_file != incident.exec_master_log_file
                || st.exec_master_log_pos != incident.exec_master_log_pos;
            if moved {
                return Ok(Verification::MovedOn {
                    exec_file: st.exec_master_log_file,
                    exec_pos: st.exec_master_log_pos,
                });
            }
            if !st.sql_running && st.last_sql_errno != 0 {
                return Ok(Verification::StillFailing {
                    errno: st.last_sql_errno,
                    message: st.last_sql_error,
                });
            }
        }
        if start.elapsed() >= timeout {
            break;
        }
        std::thread::sleep(crate::clock::poll_pause(attempt));
    }
    Ok(Verification::StillApplying)
}

#[cfg(test)]
mod tests {
    fn grants_allow_restart(lines: &[String]) -> bool {
        crate::grants::Grants::parse(lines).global_any(crate::grants::RESTART)
    }

    #[test]
    fn restart_privilege_from_grants() {
        let g =
            |l: &[&str]| grants_allow_restart(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(g(&[
            "GRANT ALL PRIVILEGES ON *.* TO `repair`@`localhost` WITH GRANT OPTION"
        ]));
        assert!(g(&[
            "GRANT `rr` TO `np`@`localhost`",
            "GRANT SELECT, INSERT, DELETE, BINLOG ADMIN, SLAVE MONITOR ON *.* TO `np`@`localhost`",
            "GRANT REPLICATION SLAVE ADMIN ON *.* TO `rr`",
        ]));
        assert!(g(&[
            "GRANT SELECT,REPLICATION_SLAVE_ADMIN ON *.* TO `u`@`%`"
        ]));
        assert!(!g(&[
            "GRANT SELECT, INSERT, DELETE, BINLOG ADMIN, SLAVE MONITOR ON *.* TO `np`@`localhost`",
            "GRANT ALL PRIVILEGES ON `lab`.* TO `np`@`localhost`",
        ]));
        assert!(!g(&[
            "GRANT USAGE ON *.* TO `x`@`%` IDENTIFIED BY PASSWORD 'SUPER'"
        ]));
    }
}
