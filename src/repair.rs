//! One incident, through the whole pipeline: locate and decode the failing transaction,
//! plan it against the replica's schema, apply the plan (or print it with `--dry-run`),
//! restart the SQL thread and verify. Returns an [`Outcome`]; refusals are outcomes, not
//! errors.

use crate::apply::{self, Applied, Verification};
use crate::locate::{self, RelayLogs, Target};
use crate::plan::{Planner, Refusal, RefusalKind, RepairPlan};
use crate::record::Journal;
use crate::replica::{LockError, RepairSession, Replica};
use crate::schema::{SchemaError, TableInfo};
use crate::status::Incident;
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
    /// Read the transaction from the primary's binlog (`--source`), not the relay log.
    pub primary: Option<Arc<crate::primary::PrimaryAccess>>,
}

/// The failing transaction's events: the relay log, or (with `opts.primary`) a copy
/// read from the primary's binlog, which lives as long as the returned guard.
fn transaction_events(
    reader: &mut impl Queryable,
    flavor: &crate::status::Flavor,
    relay: (RelayLogs, Target),
    incident: &Incident,
    opts: &RepairOptions,
) -> Result<(RelayLogs, Target, Option<crate::primary::Fetched>), Box<Outcome>> {
    let Some(access) = &opts.primary else {
        return Ok((relay.0, relay.1, None));
    };
    let refused = |e: String| {
        Box::new(Outcome::Refused {
            kind: RefusalKind::Primary,
            reason: format!("{e}; nothing was changed"),
        })
    };
    let dir = opts.journal.dir();
    std::fs::create_dir_all(dir).map_err(|e| {
        Box::new(Outcome::Failed {
            reason: format!("cannot create {}: {e}", dir.display()),
        })
    })?;
    let started = Instant::now();
    let copy = crate::primary::fetch(access, reader, flavor, incident, dir)
        .map_err(|e| refused(e.to_string()))?;
    tracing::info!(
        "read the failing transaction from the primary {}: {} events, {} bytes in {:?}",
        copy.primary,
        copy.events,
        copy.bytes,
        started.elapsed()
    );
    Ok((copy.logs.clone(), copy.target.clone(), Some(copy)))
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
    Refused { kind: RefusalKind, reason: String },
    /// Another agent holds the replica's repair lock and is on it.
    Busy { reason: String },
    /// The repair was attempted and did not work, or the agent could not do its job.
    Failed { reason: String },
}

impl From<Refusal> for Outcome {
    fn from(r: Refusal) -> Self {
        Outcome::Refused {
            kind: r.kind,
            reason: r.reason,
        }
    }
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

/// The replica's schema of a mapped table, loaded once per repair and checked against
/// the TABLE_MAP.
fn table_info(
    conn: &mut impl Queryable,
    tables: &mut HashMap<(String, String), Arc<TableInfo>>,
    map: &crate::binlog::TableMap,
    filter: &crate::limits::TableFilter,
) -> Result<Arc<TableInfo>, RowsError> {
    let key = (map.schema.clone(), map.table.clone());
    if let Some(t) = tables.get(&key) {
        return Ok(t.clone());
    }
    if !filter.allows(&map.schema, &map.table) {
        return Err(RowsError::Refused(Refusal::new(
            RefusalKind::Excluded,
            format!(
                "the transaction changes {}.{}, which --tables/--ignore-tables keep the agent off",
                map.schema, map.table
            ),
        )));
    }
    let mut t = TableInfo::load(conn, &map.schema, &map.table).map_err(RowsError::Schema)?;
    t.map_to(map)
        .map_err(|r| RowsError::Refused(Refusal::new(RefusalKind::Schema, r)))?;
    let t = Arc::new(t);
    tables.insert(key, t.clone());
    Ok(t)
}

/// The audit/dead-letter description of where an incident's transaction is.
fn source_of(
    replica: &Replica,
    incident: &Incident,
    gtid: Option<&str>,
    read_from: &'static str,
) -> crate::record::Source {
    crate::record::Source {
        read_from,
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
            crate::clock::unix_micros()
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
    let mut reader = replica.reader();
    let conn = &mut reader;
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
    let source = source_of(replica, incident, gtid.as_deref(), "relay");
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
    if opts.dry_run {
        let relay = replica.locate(incident, opts.tail_wait);
        let flavor = replica.flavor.clone();
        let (logs, target, _copy) =
            match transaction_events(&mut replica.reader(), &flavor, relay, incident, opts) {
                Ok(t) => t,
                Err(outcome) => return *outcome,
            };
        return match plan_transaction(&mut replica.reader(), &logs, &target, incident, opts) {
            Ok((plan, _)) => Outcome::DryRun {
                statements: plan
                    .batches(crate::plan::BatchLimits::default())
                    .iter()
                    .flat_map(|b| b.script())
                    .collect(),
            },
            Err(outcome) => *outcome,
        };
    }
    // One repairer per replica across hosts: a named lock held by this connection.
    match replica.begin_repair(&incident.connection) {
        Ok(mut session) => repair_locked(&mut session, incident, opts),
        Err(e @ LockError::Held { .. }) => Outcome::Busy {
            reason: e.to_string(),
        },
        Err(e) => Outcome::Failed {
            reason: e.to_string(),
        },
    }
}

fn repair_locked(
    session: &mut RepairSession<'_>,
    incident: &Incident,
    opts: &RepairOptions,
) -> Outcome {
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
        match repair_round(session, &incident, opts, &journals) {
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
                            instance = %crate::record::inert(&session.replica().name),
                            "round {round}: the SQL thread stopped again on the same transaction: {errno} {message}"
                        );
                        let again = session
                            .status(&incident.connection)
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
/// Reads the failing transaction and plans its repair: the rows events (or, for a 1062
/// raised by a statement, the error text) against the replica's schema. Reads only.
fn plan_transaction(
    conn: &mut impl Queryable,
    logs: &RelayLogs,
    target: &Target,
    incident: &Incident,
    opts: &RepairOptions,
) -> Result<(RepairPlan, locate::Located), Box<Outcome>> {
    let mut tables: HashMap<(String, String), Arc<TableInfo>> = HashMap::new();
    let mut planner = Planner::new();
    let mut transaction = 0;
    let located = locate::read_transaction(logs, target, |map, rows, at| {
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
        Ok(Err(RowsError::Refused(r))) => return Err(Box::new(r.into())),
        Ok(Err(RowsError::Schema(e))) => {
            return Err(Box::new(Outcome::Refused {
                kind: RefusalKind::Schema,
                reason: e.to_string(),
            }));
        }
        Err(e) => {
            return Err(Box::new(Outcome::Failed {
                reason: format!("cannot read the failing transaction: {e}"),
            }));
        }
    };
    // Settle the steps the Bloom filter could not: an exact pass over the events before
    // the failing one, looking only for the pending key hashes.
    let mut touched_before = std::collections::HashSet::new();
    if !planner.pending().is_empty() {
        let pending = planner.pending().clone();
        let pass = locate::read_transaction(logs, target, |map, rows, at| {
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
            Ok(Err(RowsError::Refused(r))) => Some(r.reason),
            Err(e) => Some(e.to_string()),
        };
        if let Some(e) = failed {
            return Err(Box::new(Outcome::Failed {
                reason: format!("cannot re-read the failing transaction: {e}"),
            }));
        }
    }
    let mut plan: RepairPlan = planner.finish(&touched_before);
    // No row image for the error: a 1062 raised by a statement-format event.
    if plan.is_empty() && incident.errno == 1062 {
        match crate::statement::plan(conn, &incident.message, logs, target, &opts.filter) {
            Ok(Some(p)) => plan = p,
            Ok(None) => {}
            Err(r) => return Err(Box::new(r.into())),
        }
    }
    tracing::debug!(
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
    Ok((plan, located))
}

fn repair_round(
    session: &mut RepairSession<'_>,
    incident: &Incident,
    opts: &RepairOptions,
    own_journals: &[PathBuf],
) -> Round {
    let relay = session.replica().locate(incident, opts.tail_wait);
    let flavor = session.replica().flavor.clone();
    let (logs, target, copy) =
        match transaction_events(&mut session.reader(), &flavor, relay, incident, opts) {
            Ok(t) => t,
            Err(outcome) => return Round::Done(*outcome),
        };
    let (plan, located) =
        match plan_transaction(&mut session.reader(), &logs, &target, incident, opts) {
            Ok(p) => p,
            Err(outcome) => return Round::Done(*outcome),
        };
    drop(copy);
    // Read from the primary: its GTID must be one the replica has not applied.
    if opts.primary.is_some()
        && let Some(gtid) = &located.gtid
        && let Err(reason) = crate::primary::check_gtid(&mut session.reader(), &flavor, gtid)
    {
        return Round::Done(Outcome::Refused {
            kind: RefusalKind::Primary,
            reason: format!("{reason}; nothing was changed"),
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
    if let Err(reason) = apply::check_restart_privilege(&mut session.reader()) {
        return Round::Done(Outcome::Refused {
            kind: RefusalKind::Privilege,
            reason: format!("{reason}; nothing was changed"),
        });
    }
    // A fix must not fire a replica trigger: refused before any row is touched.
    if let Err(e) = apply::check_triggers(&mut session.reader(), &plan) {
        let kind = match e {
            apply::ApplyError::Trigger { .. } => RefusalKind::Trigger,
            _ => RefusalKind::Privilege,
        };
        return Round::Done(Outcome::Refused {
            kind,
            reason: format!("{e}; nothing was changed"),
        });
    }
    let position = transaction_position(incident);
    let name = session.replica().name.clone();
    let mut journal = opts.journal.start(&name, &position, &about);
    let read_from = if opts.primary.is_some() {
        "primary"
    } else {
        "relay"
    };
    let source = source_of(
        session.replica(),
        incident,
        located.gtid.as_deref(),
        read_from,
    );
    let audit_path = opts.journal.dir().join("audit.jsonl");
    let audit_to = apply::AuditTo {
        path: &audit_path,
        source: &source,
    };
    let applied = match session
        .applier()
        .apply(&plan, &mut journal, opts.max_rows, audit_to)
    {
        Ok(a) => a,
        Err(e @ apply::ApplyError::TooManyRows { .. }) => {
            return Round::Done(Outcome::Refused {
                kind: RefusalKind::TooManyRows,
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
                instance = %crate::record::inert(&name),
                "nothing left to fix at {}: the committed repair in {} already did; restarting the SQL thread",
                crate::record::inert(&position),
                earlier.display()
            );
            return restart_and_verify(session, incident, opts, applied, Some(earlier));
        }
        return Round::Done(Outcome::Refused {
            kind: RefusalKind::NotDrift,
            reason: format!(
                "the replica already holds every row the transaction needs (checked {} keys); error {} is not explained by row drift, so replication was not restarted",
                plan.deletes.len() + plan.inserts.len(),
                incident.errno
            ),
        });
    }
    let journal_path = journal.path().map(|p| p.to_path_buf());
    restart_and_verify(session, incident, opts, applied, journal_path)
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
    session: &mut RepairSession<'_>,
    incident: &Incident,
    opts: &RepairOptions,
    applied: Applied,
    journal_path: Option<PathBuf>,
) -> Round {
    if let Err(e) = session.applier().restart_sql_thread(&incident.connection) {
        return Round::Done(Outcome::Failed {
            reason: format!(
                "fixes committed, but the SQL thread did not restart: {e}; a rerun finds the committed journal and restarts it"
            ),
        });
    }
    let restarted_at = Instant::now();
    let status_sql = session.replica().flavor.show_status_sql();
    match apply::verify(
        || session.status(&incident.connection),
        status_sql,
        incident,
        opts.verify_timeout,
    ) {
        Ok(v) => Round::Applied(applied, journal_path, v, restarted_at),
        Err(e) => Round::Done(Outcome::Failed {
            reason: format!("fixes committed, but the restarted SQL thread cannot be checked: {e}"),
        }),
    }
}
