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
    #[error("{statement}: {source}")]
    Sql {
        statement: String,
        #[source]
        source: mysql::Error,
    },
    #[error("{statement}: {what}; the repair was rolled back")]
    Unexpected { statement: String, what: String },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("the repair would change more than --max-rows {limit} rows (at least {rows})")]
    TooManyRows { limit: u64, rows: u64 },
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
}

fn run(conn: &mut Conn, statement: &str) -> Result<(), ApplyError> {
    conn.query_drop(statement)
        .map_err(|source| ApplyError::Sql {
            statement: statement.to_string(),
            source,
        })
}

fn warnings_text(conn: &mut Conn) -> String {
    conn.query::<(String, u32, String), _>("SHOW WARNINGS")
        .map(|w| {
            w.into_iter()
                .map(|(level, code, msg)| format!("{level} {code}: {msg}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// Applies `plan` in one transaction that never reaches the replica's binlog.
/// Where the audit trail of a repair goes and what its lines say about their source.
pub struct AuditTo<'a> {
    pub path: &'a std::path::Path,
    pub source: &'a Source,
}

pub fn apply(
    conn: &mut Conn,
    plan: &RepairPlan,
    journal: &mut JournalFile,
    max_rows: Option<u64>,
    audit_to: AuditTo<'_>,
) -> Result<Applied, ApplyError> {
    let mut audit = Audit::default();
    for s in [
        format!("SET SESSION sql_log_bin = 0 {TAG}"),
        format!("SET SESSION time_zone = '+00:00' {TAG}"),
        format!("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO' {TAG}"),
        // A fix must remove exactly the rows it journalled: no cascades.
        format!("SET SESSION foreign_key_checks = 0 {TAG}"),
        format!("START TRANSACTION {TAG}"),
    ] {
        run(conn, &s)?;
    }
    match apply_steps(conn, plan, journal, max_rows, &mut audit, audit_to.source) {
        Ok(applied) => {
            run(conn, &format!("COMMIT {TAG}"))?;
            journal.finish("committed")?;
            audit.commit(audit_to.path)?;
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
                let values: Vec<Vec<mysql::Value>> = rows.into_iter().map(|r| r.unwrap()).collect();
                // Journal first, durably; only then delete.
                let maps = journal.record_deleted(table, &values)?;
                pause_for_tests();
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
                let probe = sql::exists_each(table, steps.iter().map(|s| s.identity.as_str()));
                let found: Option<mysql::Row> =
                    conn.query_first(&probe).map_err(|source| ApplyError::Sql {
                        statement: probe.clone(),
                        source,
                    })?;
                let found: Vec<bool> =
                    found
                        .map(|r| {
                            r.unwrap()
                            .into_iter()
                            .map(|v| matches!(v, mysql::Value::Int(1) | mysql::Value::UInt(1))
                                || matches!(&v, mysql::Value::Bytes(b) if b.as_slice() == b"1"))
                            .collect()
                        })
                        .unwrap_or_default();
                let missing: Vec<&InsertStep> = steps
                    .iter()
                    .zip(found.iter().chain(std::iter::repeat(&false)))
                    .filter(|(_, f)| !**f)
                    .map(|(s, _)| *s)
                    .collect();
                if missing.is_empty() {
                    continue;
                }
                check(&applied, missing.len() as u64)?;
                journal.record_inserted(table, missing.iter().map(|s| s.identity.as_str()))?;
                let insert = sql::insert_ignore_rows(
                    table,
                    &missing[0].columns,
                    missing.iter().map(|s| s.values.as_slice()),
                );
                run(conn, &insert)?;
                let (n, w) = (conn.affected_rows(), conn.warnings());
                if n != missing.len() as u64 || w != 0 {
                    let warnings = warnings_text(conn);
                    return Err(ApplyError::Unexpected {
                        statement: insert,
                        what: format!(
                            "inserted {n} of {} rows with {w} warnings ({warnings})",
                            missing.len()
                        ),
                    });
                }
                applied.inserted += n;
                for step in &missing {
                    let after = json_row(
                        table,
                        step.row.iter().enumerate().filter_map(|(i, v)| {
                            let v = v.as_ref()?;
                            let c = table.columns.get(i)?;
                            (!c.generated).then(|| (i, crate::record::json_binlog_value(v, c)))
                        }),
                    );
                    audit.row(source, "repair-insert", table, None, Some(after));
                }
                applied.keyless_inserts += missing.iter().filter(|s| s.keyless).count() as u64;
                applied.statements.push(insert);
            }
        }
    }
    Ok(applied)
}

/// Test hook: `REPL_REPAIR_TEST_PAUSE_AFTER_JOURNAL_MS` holds the repair between its
/// journal write and its COMMIT, so a test can kill -9 the agent exactly there.
fn pause_for_tests() {
    if let Some(ms) = std::env::var("REPL_REPAIR_TEST_PAUSE_AFTER_JOURNAL_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

pub fn restart_sql_thread(
    conn: &mut Conn,
    flavor: &Flavor,
    connection: &str,
) -> Result<(), ApplyError> {
    run(
        conn,
        &format!("{} {TAG}", flavor.start_sql_thread_sql(connection)),
    )
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
pub fn verify(
    conn: &mut Conn,
    flavor: &Flavor,
    incident: &Incident,
    timeout: Duration,
) -> Result<Verification, ApplyError> {
    let start = Instant::now();
    loop {
        let st = crate::status::read(conn, flavor, &incident.connection).map_err(|source| {
            ApplyError::Sql {
                statement: flavor.show_status_sql().to_string(),
                source,
            }
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
            return Ok(Verification::StillApplying);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
