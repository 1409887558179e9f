//! One incident, through the whole pipeline: locate and decode the failing transaction,
//! plan it against the replica's schema, apply the plan (or print it with `--dry-run`),
//! restart the SQL thread and verify. Returns an [`Outcome`]; refusals are outcomes, not
//! errors.

use crate::apply::{self, Applied, Verification};
use crate::locate::{self, RelayLogs, Target};
use crate::plan::{Planner, Refusal, RepairPlan};
use crate::record::Journal;
use crate::schema::{SchemaError, TableInfo};
use crate::status::{Flavor, Incident};
use mysql::Conn;
use mysql::prelude::Queryable;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RepairOptions {
    pub dry_run: bool,
    pub journal: Journal,
    /// How long to watch the restarted SQL thread for it to move past the transaction.
    pub verify_timeout: Duration,
    /// How long to wait for the IO thread to finish writing the failing transaction.
    pub tail_wait: Duration,
    /// Plan/apply rounds before a transaction is declared unrepairable.
    pub max_rounds: u32,
    /// `--tables` / `--ignore-tables`.
    pub filter: Arc<crate::limits::TableFilter>,
    /// `--max-rows`: refuse a repair that would change more rows.
    pub max_rows: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Fixed, SQL thread restarted and past the transaction.
    Repaired {
        deleted: u64,
        inserted: u64,
        /// Each fix as it ran, for the record.
        statements: Vec<String>,
        /// Rows inserted into tables without any unique key (see `Applied`).
        keyless_inserts: u64,
        /// Undo journals written, one per round.
        journals: Vec<PathBuf>,
        elapsed: Duration,
        /// From the start of the repair to the SQL thread's restart.
        to_restart: Duration,
        /// Plan → apply → restart rounds it took.
        rounds: u32,
        still_applying: bool,
        /// Committed, but the journal or audit trail is incomplete (disk full, …): the
        /// rows changed; a human must know the record of it is partial.
        record_error: Option<String>,
    },
    /// `--dry-run`: the statements a repair would run.
    DryRun { statements: Vec<String> },
    /// Not repaired, on purpose: the reason says why. Replication stays stopped.
    Refused { reason: String },
    /// Another agent holds the replica's repair lock and is on it.
    Busy { reason: String },
    /// The repair was attempted and did not work, or the agent could not do its job.
    Failed { reason: String },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Repaired { .. } => "repaired",
            Outcome::DryRun { .. } => "dry-run",
            Outcome::Refused { .. } => "refused",
            Outcome::Busy { .. } => "busy",
            Outcome::Failed { .. } => "failed",
        }
    }
}

/// A connected replica and what the pipeline needs to know about it.
pub struct Replica {
    pub name: String,
    pub conn: Conn,
    pub flavor: Flavor,
    pub relay: RelayLogs,
}

impl Replica {
    /// Reads version, datadir and relay-log index from the server.
    pub fn new(name: String, mut conn: Conn) -> Result<Self, mysql::Error> {
        let (version, datadir, index): (String, String, Option<String>) = conn
            .query_first("SELECT /* repl-repair */ VERSION(), @@datadir, @@relay_log_index")?
            .unwrap_or_default();
        Ok(Replica {
            name,
            flavor: Flavor::from_version(&version),
            relay: RelayLogs {
                index: PathBuf::from(index.unwrap_or_default()),
                datadir: PathBuf::from(datadir),
            },
            conn,
        })
    }

    /// Where the incident's transaction is: the relay logs and the walk's target.
    fn locate(&self, incident: &Incident, tail_wait: Duration) -> (RelayLogs, Target) {
        let logs = self.relay_logs(&incident.relay_log_file, &incident.connection);
        let target = Target {
            relay_file: logs.resolve(&incident.relay_log_file),
            relay_pos: incident.relay_log_pos,
            master_server_id: incident.master_server_id,
            end_log_pos: incident.end_log_pos,
            tail_wait,
        };
        (logs, target)
    }

    /// The relay-log index, from `@@relay_log_index` or, when that is empty, the default
    /// `<relay log base name>.index` beside the current relay file.
    fn relay_logs(&self, relay_file: &str, connection: &str) -> RelayLogs {
        let mut logs = self.relay.clone();
        // A named MariaDB connection has its own index, `<base>-<name>.index`, named
        // like its relay files; @@relay_log_index is the default connection's.
        if logs.index.as_os_str().is_empty() || !connection.is_empty() {
            let current = logs.resolve(relay_file);
            logs.index = current.with_extension("index");
        } else {
            logs.index = logs.resolve(&logs.index.to_string_lossy());
        }
        logs
    }
}

/// The replica's schema of a mapped table, loaded once per repair and checked against
/// the TABLE_MAP.
fn table_info(
    conn: &mut Conn,
    tables: &mut HashMap<(String, String), Arc<TableInfo>>,
    map: &crate::binlog::TableMap,
    filter: &crate::limits::TableFilter,
) -> Result<Arc<TableInfo>, RowsError> {
    let key = (map.schema.clone(), map.table.clone());
    if let Some(t) = tables.get(&key) {
        return Ok(t.clone());
    }
    if !filter.allows(&map.schema, &map.table) {
        return Err(RowsError::Refused(Refusal(format!(
            "the transaction changes {}.{}, which --tables/--ignore-tables keep the agent off",
            map.schema, map.table
        ))));
    }
    let mut t = TableInfo::load(conn, &map.schema, &map.table).map_err(RowsError::Schema)?;
    t.map_to(map).map_err(|r| RowsError::Refused(Refusal(r)))?;
    let t = Arc::new(t);
    tables.insert(key, t.clone());
    Ok(t)
}

/// The audit/dead-letter description of where an incident's transaction is.
fn source_of(replica: &Replica, incident: &Incident, gtid: Option<&str>) -> crate::record::Source {
    crate::record::Source {
        instance: replica.name.clone(),
        connection: incident.connection.clone(),
        relay_file: incident.relay_log_file.clone(),
        relay_pos: incident.relay_log_pos,
        primary_file: incident.master_log_file.clone().unwrap_or_default(),
        end_log_pos: incident.end_log_pos.unwrap_or(0),
        gtid: gtid.unwrap_or_default().to_string(),
        server_id: incident.master_server_id,
        errno: incident.errno,
        plan_id: format!(
            "{}-{}-{}",
            replica.name,
            incident.relay_log_pos,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_micros()
        ),
    }
}

/// Parks a transaction the agent will not repair in `dir`: the incident, the reason and
/// its decoded rows (up to `MAX_DEAD_LETTER_ROWS`; beyond that the relay position says
/// where the rest is). Replication stays stopped.
pub fn dead_letter(
    replica: &mut Replica,
    incident: &Incident,
    reason: &str,
    dir: &std::path::Path,
) -> Result<PathBuf, String> {
    const MAX_DEAD_LETTER_ROWS: usize = 100_000;
    let (logs, target) = replica.locate(incident, Duration::from_secs(1));
    let mut rows: Vec<Box<serde_json::value::RawValue>> = Vec::new();
    let mut truncated = false;
    let mut tables: HashMap<(String, String), Option<TableInfo>> = HashMap::new();
    let conn = &mut replica.conn;
    let read = locate::read_transaction::<()>(&logs, &target, |map, ev, at| {
        let live = tables
            .entry((map.schema.clone(), map.table.clone()))
            .or_insert_with(|| TableInfo::load(conn, &map.schema, &map.table).ok());
        // The rows as `decode` prints them: the replica's column names when its table
        // still matches the table map, else the map's own metadata or `@1`…
        let cols = crate::event::Column::all(&crate::dump::columns(map, live.as_ref()));
        let file = at.file.display().to_string();
        let frame = crate::event::EventFrame::new(&crate::event::ChangeEvent {
            op: ev.op.as_str(),
            schema: &map.schema,
            table: &map.table,
            before: None,
            after: None,
            source: crate::event::EventSource {
                file: Some(&file),
                pos: Some(at.offset),
                ..Default::default()
            },
            errno: None,
            plan_id: None,
            ts: None,
        });
        for change in &ev.rows {
            if rows.len() >= MAX_DEAD_LETTER_ROWS {
                truncated = true;
                return Ok(());
            }
            let mut line = frame.head().to_vec();
            for (k, image) in [&change.before, &change.after].into_iter().enumerate() {
                if k == 1 {
                    line.extend_from_slice(frame.middle());
                }
                match image {
                    Some(r) => crate::event::write_owned_image(&mut line, r, &cols, true),
                    None => line.extend_from_slice(b"null"),
                }
            }
            line.extend_from_slice(frame.tail().trim_ascii_end());
            rows.push(crate::event::raw(line));
        }
        Ok(())
    });
    let (gtid, note) = match read {
        Ok(Ok(l)) => (l.gtid, None),
        Ok(Err(())) => (None, None),
        Err(e) => (
            None,
            Some(format!("the transaction could not be read: {e}")),
        ),
    };
    let note = note.or_else(|| {
        truncated.then(|| format!(
            "only the first {MAX_DEAD_LETTER_ROWS} rows are listed; the rest is in the relay log from {}:{}",
            incident.relay_log_file, incident.relay_log_pos
        ))
    });
    let source = source_of(replica, incident, gtid.as_deref());
    crate::record::write_dead_letter(
        dir,
        &source,
        reason,
        &incident.message,
        &rows,
        note.as_deref(),
    )
    .map_err(|e| e.to_string())
}

enum RowsError {
    Refused(Refusal),
    Schema(SchemaError),
}

/// Runs the pipeline for one incident. When the restarted SQL thread stops again on the
/// same transaction (the plan did not cover everything, or the replica changed under
/// us), the transaction is planned again from the new status, at most
/// `opts.max_rounds` times; then it is reported unrepairable and left stopped.
pub fn repair(replica: &mut Replica, incident: &Incident, opts: &RepairOptions) -> Outcome {
    // One repairer per replica across hosts: a named lock held by this connection.
    let lock = crate::sql::string_literal(&format!("repl-repair:{}", incident.connection));
    if !opts.dry_run {
        let got: Option<Option<i64>> = replica
            .conn
            .query_first(format!("SELECT /* repl-repair */ GET_LOCK({lock}, 0)"))
            .unwrap_or(None);
        if got.flatten() != Some(1) {
            return Outcome::Busy {
                reason: format!(
                    "another agent holds the lock {lock} on this replica and is repairing it"
                ),
            };
        }
    }
    let outcome = repair_locked(replica, incident, opts);
    if !opts.dry_run {
        let _ = replica
            .conn
            .query_drop(format!("DO /* repl-repair */ RELEASE_LOCK({lock})"));
    }
    outcome
}

fn repair_locked(replica: &mut Replica, incident: &Incident, opts: &RepairOptions) -> Outcome {
    let started = Instant::now();
    let mut incident = incident.clone();
    let (mut deleted, mut inserted, mut keyless) = (0, 0, 0);
    let mut statements = Vec::new();
    let mut journals = Vec::new();
    let mut record_errors: Vec<String> = Vec::new();
    // Time from the start of the repair to the first START SLAVE: our own share of the
    // outage; what follows is the server re-applying the transaction.
    let mut to_restart = None;
    for round in 1..=opts.max_rounds.max(1) {
        match repair_round(replica, &incident, opts, &journals) {
            Round::Done(outcome) => return outcome,
            Round::Applied(applied, journal, verification, restarted_at) => {
                to_restart.get_or_insert(restarted_at.duration_since(started));
                deleted += applied.deleted;
                inserted += applied.inserted;
                keyless += applied.keyless_inserts;
                // Logs and summaries carry a bounded preview, never a multi-MB statement.
                statements.extend(
                    applied
                        .statements
                        .iter()
                        .map(|s| crate::record::preview(s, 1000)),
                );
                journals.extend(journal);
                record_errors.extend(applied.record_error);
                let still_applying = match verification {
                    Verification::MovedOn { .. } => false,
                    Verification::StillApplying => true,
                    Verification::StillFailing { errno, message } => {
                        tracing::warn!(
                            instance = %replica.name,
                            "round {round}: the SQL thread stopped again on the same transaction: {errno} {message}"
                        );
                        let again = crate::status::read(
                            &mut replica.conn,
                            &replica.flavor,
                            &incident.connection,
                        )
                        .ok()
                        .flatten()
                        .and_then(|st| st.incident());
                        match again {
                            Some(next)
                                if next.relay_log_file == incident.relay_log_file
                                    && next.relay_log_pos == incident.relay_log_pos =>
                            {
                                incident = next;
                                continue;
                            }
                            _ => {
                                return Outcome::Failed {
                                    reason: format!(
                                        "fixes committed ({deleted} deleted, {inserted} inserted), but the SQL thread stopped again: {errno} {message}"
                                    ),
                                };
                            }
                        }
                    }
                };
                return Outcome::Repaired {
                    deleted,
                    inserted,
                    keyless_inserts: keyless,
                    statements,
                    journals,
                    elapsed: started.elapsed(),
                    to_restart: to_restart.unwrap_or_default(),
                    rounds: round,
                    still_applying,
                    record_error: (!record_errors.is_empty()).then(|| record_errors.join("; ")),
                };
            }
        }
    }
    Outcome::Failed {
        reason: format!(
            "unrepairable: the transaction at {}:{} still fails after {} rounds ({deleted} rows deleted, {inserted} inserted, journals kept); replication left stopped",
            incident.relay_log_file, incident.relay_log_pos, opts.max_rounds
        ),
    }
}

enum Round {
    /// The round ended the repair (refusal, failure, dry run).
    Done(Outcome),
    /// Fixes committed, SQL thread restarted; how it went.
    Applied(Applied, Option<PathBuf>, Verification, Instant),
}

/// `own_journals`: the journals earlier rounds of this run wrote, which do not count as
/// an earlier committed repair (see [`crate::record::Journal::committed_at`]).
fn repair_round(
    replica: &mut Replica,
    incident: &Incident,
    opts: &RepairOptions,
    own_journals: &[PathBuf],
) -> Round {
    let (logs, target) = replica.locate(incident, opts.tail_wait);
    let mut tables: HashMap<(String, String), Arc<TableInfo>> = HashMap::new();
    let mut planner = Planner::new();
    let conn = &mut replica.conn;
    let mut transaction = 0;
    let located = locate::read_transaction(&logs, &target, |map, rows, at| {
        if at.transaction != transaction {
            // The earlier transaction was not the failing one (MTS low-water mark).
            transaction = at.transaction;
            planner = Planner::new();
        }
        let table = table_info(conn, &mut tables, map, &opts.filter)?;
        for change in &rows.rows {
            if at.before_failing {
                planner.feed_applied(&table, change);
            } else {
                planner.feed(&table, change).map_err(RowsError::Refused)?;
            }
        }
        Ok(())
    });
    let located = match located {
        Ok(Ok(l)) => l,
        Ok(Err(RowsError::Refused(r))) => return Round::Done(Outcome::Refused { reason: r.0 }),
        Ok(Err(RowsError::Schema(e))) => {
            return Round::Done(Outcome::Refused {
                reason: e.to_string(),
            });
        }
        Err(e) => {
            return Round::Done(Outcome::Failed {
                reason: format!("cannot read the failing transaction: {e}"),
            });
        }
    };
    // Settle the steps the Bloom filter could not: an exact pass over the events before
    // the failing one, looking only for the pending key hashes.
    let mut touched_before = std::collections::HashSet::new();
    if !planner.pending().is_empty() {
        let pending = planner.pending().clone();
        let pass = locate::read_transaction(&logs, &target, |map, rows, at| {
            if at.transaction != located.skipped_transactions || !at.before_failing {
                return Ok(());
            }
            let table = table_info(conn, &mut tables, map, &opts.filter)?;
            for change in &rows.rows {
                touched_before.extend(
                    crate::plan::change_hashes(&table, change)
                        .into_iter()
                        .filter(|h| pending.contains(h)),
                );
            }
            Ok(())
        });
        let failed = match pass {
            Ok(Ok(_)) => None,
            Ok(Err(RowsError::Schema(e))) => Some(e.to_string()),
            Ok(Err(RowsError::Refused(r))) => Some(r.0),
            Err(e) => Some(e.to_string()),
        };
        if let Some(e) = failed {
            return Round::Done(Outcome::Failed {
                reason: format!("cannot re-read the failing transaction: {e}"),
            });
        }
    }
    let mut plan: RepairPlan = planner.finish(&touched_before);
    // No row image for the error: a 1062 raised by a statement-format event.
    if plan.is_empty() && incident.errno == 1062 {
        match crate::statement::plan(
            &mut replica.conn,
            &incident.message,
            &logs,
            &target,
            &opts.filter,
        ) {
            Ok(Some(p)) => plan = p,
            Ok(None) => {}
            Err(r) => return Round::Done(Outcome::Refused { reason: r.0 }),
        }
    }
    tracing::debug!(
        instance = %replica.name,
        gtid = located.gtid.as_deref().unwrap_or("-"),
        rows = plan.rows_seen,
        rows_events = located.rows_events,
        relay_files = located.files,
        deletes = plan.deletes.len(),
        inserts = plan.inserts.len(),
        "planned repair of the transaction at {}:{}",
        incident.relay_log_file,
        incident.relay_log_pos
    );
    if opts.dry_run {
        return Round::Done(Outcome::DryRun {
            statements: plan
                .batches(crate::plan::BatchLimits::default())
                .iter()
                .flat_map(|b| b.script())
                .collect(),
        });
    }
    let about = format!(
        "error {} at relay log {}:{} (primary {}:{}): {}",
        incident.errno,
        incident.relay_log_file,
        incident.relay_log_pos,
        incident.master_log_file.as_deref().unwrap_or("?"),
        incident.end_log_pos.unwrap_or(0),
        incident.message
    );
    // Checked before a row is touched: a fix that commits and then cannot restart the
    // SQL thread leaves the replica repaired but stopped.
    if let Err(reason) = apply::check_restart_privilege(&mut replica.conn) {
        return Round::Done(Outcome::Refused {
            reason: format!("{reason}; nothing was changed"),
        });
    }
    let position = transaction_position(incident);
    let mut journal = opts.journal.start(&replica.name, &position, &about);
    let source = source_of(replica, incident, located.gtid.as_deref());
    let audit_path = opts.journal.dir().join("audit.jsonl");
    let audit_to = apply::AuditTo {
        path: &audit_path,
        source: &source,
    };
    let applied = match apply::apply(
        &mut replica.conn,
        &plan,
        &mut journal,
        opts.max_rows,
        audit_to,
    ) {
        Ok(a) => a,
        Err(e @ (apply::ApplyError::TooManyRows { .. } | apply::ApplyError::Trigger { .. })) => {
            return Round::Done(Outcome::Refused {
                reason: format!("{e}; nothing was changed"),
            });
        }
        Err(e) => {
            return Round::Done(Outcome::Failed {
                reason: format!("repair rolled back: {e}"),
            });
        }
    };
    if applied.deleted + applied.inserted == 0 {
        // Nothing left to fix. If this agent already committed a repair of this very
        // transaction (it died, or START SLAVE failed, after the COMMIT), the replica is
        // in the state that repair left: restart. Otherwise the error is not row drift.
        if let Some(earlier) = opts.journal.committed_at(&position, own_journals) {
            tracing::warn!(
                instance = %replica.name,
                "nothing left to fix at {}: the committed repair in {} already did; restarting the SQL thread",
                crate::record::inert(&position),
                earlier.display()
            );
            return restart_and_verify(replica, incident, opts, applied, Some(earlier));
        }
        return Round::Done(Outcome::Refused {
            reason: format!(
                "the replica already holds every row the transaction needs (checked {} keys); error {} is not explained by row drift, so replication was not restarted",
                plan.deletes.len() + plan.inserts.len(),
                incident.errno
            ),
        });
    }
    let journal_path = journal.path().map(|p| p.to_path_buf());
    restart_and_verify(replica, incident, opts, applied, journal_path)
}

/// The failing transaction's identity for the journal: connection, start in the relay
/// log and in the primary's binlog (the same in every round of one incident).
fn transaction_position(incident: &Incident) -> String {
    format!(
        "connection '{}' relay {}:{} primary {}:{}",
        incident.connection,
        incident.relay_log_file,
        incident.relay_log_pos,
        incident.exec_master_log_file,
        incident.exec_master_log_pos
    )
}

fn restart_and_verify(
    replica: &mut Replica,
    incident: &Incident,
    opts: &RepairOptions,
    applied: Applied,
    journal_path: Option<PathBuf>,
) -> Round {
    if let Err(e) =
        apply::restart_sql_thread(&mut replica.conn, &replica.flavor, &incident.connection)
    {
        return Round::Done(Outcome::Failed {
            reason: format!(
                "fixes committed, but the SQL thread did not restart: {e}; a rerun finds the committed journal and restarts it"
            ),
        });
    }
    let restarted_at = Instant::now();
    match apply::verify(
        &mut replica.conn,
        &replica.flavor,
        incident,
        opts.verify_timeout,
    ) {
        Ok(v) => Round::Applied(applied, journal_path, v, restarted_at),
        Err(e) => Round::Done(Outcome::Failed {
            reason: format!("fixes committed, but the restarted SQL thread cannot be checked: {e}"),
        }),
    }
}
