//! One worker per instance: poll the replica status, turn a 1062/1032 stop into a repair,
//! report everything else, reconnect with backoff, and never take other instances down
//! (each worker is its own thread with its own connection and log).

use crate::repair::{self, Outcome, RepairOptions, Replica};
use crate::status;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How to reach one instance.
#[derive(Debug, Clone)]
pub struct InstanceTarget {
    /// Name used until the server tells its port: the socket path or `host:port`.
    pub label: String,
    /// `--instance NAME=…`: the name in logs, lock files and journals; else the port.
    pub name: Option<String>,
    pub opts: mysql::Opts,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub target: InstanceTarget,
    pub interval: Duration,
    /// Stop watching at this instant (`-t`); `None` = until shut down.
    pub until: Option<Instant>,
    /// Check once, repair what is broken, return (`--once`).
    pub once: bool,
    pub logdir: Option<PathBuf>,
    /// Journal directory; each instance gets a subdirectory named after it.
    pub journal_dir: PathBuf,
    pub dry_run: bool,
    pub verify_timeout: Duration,
    /// Plan/apply rounds before a transaction is declared unrepairable.
    pub max_rounds: u32,
    pub filter: std::sync::Arc<crate::limits::TableFilter>,
    pub max_rows: Option<u64>,
    /// `--max-repairs N --per D`.
    pub breaker: Option<(u32, Duration)>,
    pub lock_dir: PathBuf,
    /// Metrics and /status, shared by every worker and the HTTP thread.
    pub telemetry: std::sync::Arc<crate::metrics::Telemetry>,
}

/// How an instance ended up, for the `--once` summary and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalState {
    Healthy,
    /// Something needs a human: refused, failed, dry-run found work, other SQL error.
    NeedsHuman(String),
    /// The agent could not do its job here: unreachable, not a replica.
    Error(String),
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub instance: String,
    pub repairs: u64,
    pub state: FinalState,
}

/// Per-instance log: `repl-repair.<port>.log` in the log directory, plus the global
/// tracing output. One line per event, fixes with their SQL as run.
pub struct InstanceLog {
    name: Mutex<String>,
    dir: Option<PathBuf>,
    file: Mutex<Option<crate::record::RotatingFile>>,
}

impl InstanceLog {
    fn new(label: &str, dir: Option<&Path>) -> Self {
        InstanceLog {
            name: Mutex::new(label.to_string()),
            dir: dir.map(Path::to_path_buf),
            file: Mutex::new(None),
        }
    }

    fn name(&self) -> String {
        self.name.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Names the instance (its port) and opens `repl-repair.<name>.log`.
    fn set_name(&self, name: &str) {
        if let Ok(mut n) = self.name.lock() {
            *n = name.to_string();
        }
        if let (Some(dir), Ok(mut f)) = (&self.dir, self.file.lock()) {
            let safe = crate::record::safe_name(name);
            let path = dir.join(format!("repl-repair.{safe}.log"));
            use crate::record::RotatingFile;
            match RotatingFile::open(&path, RotatingFile::MAX, RotatingFile::KEEP) {
                Ok(file) => *f = Some(file),
                Err(e) => tracing::error!("cannot open instance log {}: {e}", path.display()),
            }
        }
    }

    fn write(&self, level: &str, msg: &str) {
        // Messages carry error texts, values and names from the server: one line each.
        let msg = crate::record::inert(msg);
        let name = crate::record::inert(&self.name()).into_owned();
        match level {
            "ERROR" => tracing::error!(instance = %name, "{msg}"),
            "WARN" => tracing::warn!(instance = %name, "{msg}"),
            _ => tracing::info!(instance = %name, "{msg}"),
        }
        if let Ok(mut f) = self.file.lock()
            && let Some(f) = f.as_mut()
        {
            let _ = writeln!(f, "{} {level} [{name}] {msg}", crate::clock::rfc3339_now());
        }
    }

    pub fn info(&self, msg: &str) {
        self.write("INFO", msg);
    }
    pub fn warn(&self, msg: &str) {
        self.write("WARN", msg);
    }
    pub fn error(&self, msg: &str) {
        self.write("ERROR", msg);
    }
}

/// Logs a message only when it differs from the last one: a replica that stays
/// unreachable or stopped is reported once per state change, not once per poll.
struct Once(Option<String>);

impl Once {
    fn say(&mut self, log: &InstanceLog, level: &str, msg: String) {
        if self.0.as_deref() != Some(msg.as_str()) {
            log.write(level, &msg);
            self.0 = Some(msg);
        }
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// In `--once` mode, a replica whose next transactions keep conflicting is repaired this
/// many times at most before the run ends.
const ONCE_MAX_REPAIRS: u64 = 1000;

/// Sleeps `d` in short steps so shutdown and the deadline are noticed promptly. Returns
/// false when the worker should stop.
fn nap(d: Duration, cfg: &WorkerConfig, shutdown: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    loop {
        if shutdown.load(Ordering::Relaxed) || cfg.until.is_some_and(|u| Instant::now() >= u) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

/// Why a worker could not start on its instance.
enum ConnectError {
    /// The agent cannot do its job: unreachable, bad lock file (exit 2).
    Fatal(String),
    /// Another agent on this host holds the instance's lock: it is being looked after,
    /// but not by us (exit 1).
    LockHeld(String),
}

fn connect(
    cfg: &WorkerConfig,
    log: &InstanceLog,
    lock: &mut Option<File>,
) -> Result<Replica, ConnectError> {
    let conn = mysql::Conn::new(cfg.target.opts.clone())
        .map_err(|e| ConnectError::Fatal(format!("cannot connect to {}: {e}", cfg.target.label)))?;
    let mut replica = Replica::new(cfg.target.label.clone(), conn)
        .map_err(|e| ConnectError::Fatal(format!("cannot query {}: {e}", cfg.target.label)))?;
    use mysql::prelude::Queryable;
    let port: Option<u16> = replica
        .conn
        .query_first("SELECT /* repl-repair */ @@port")
        .ok()
        .flatten();
    let name = cfg
        .target
        .name
        .clone()
        .or(port.map(|p| p.to_string()))
        .unwrap_or_else(|| cfg.target.label.clone());
    replica.name = name.clone();
    log.set_name(&name);
    if lock.is_none() {
        *lock = Some(take_lock(&cfg.lock_dir, &name)?);
    }
    Ok(replica)
}

/// One agent per instance on this host: an exclusive lock on
/// `<lock dir>/repl-repair.<safe name>.lock`, held for the worker's lifetime (the OS
/// drops it when the process dies, so a crash leaves no stale lock).
///
/// Opened with `O_NOFOLLOW` and never truncated unless it is a regular file of this user
/// with a single link (one an earlier agent created): a planted symlink or hard link
/// cannot make the agent overwrite another file, even as root.
fn take_lock(dir: &Path, name: &str) -> Result<File, ConnectError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let safe = crate::record::safe_name(name);
    let path = dir.join(format!("repl-repair.{safe}.lock"));
    let fatal = |what: String| ConnectError::Fatal(format!("lock file {}: {what}", path.display()));
    let open_err = |e: std::io::Error| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            fatal("is a symbolic link; not followed (remove it: only repl-repair creates files in the lock directory)".into())
        } else {
            fatal(format!("cannot open: {e}"))
        }
    };
    let open = |create: bool| {
        let mut o = OpenOptions::new();
        o.read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o600);
        if create {
            o.create_new(true);
        }
        o.open(&path)
    };
    let (f, created) = match open(true) {
        Ok(f) => (f, true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            (open(false).map_err(open_err)?, false)
        }
        Err(e) => return Err(open_err(e)),
    };
    if !created {
        let md = f
            .metadata()
            .map_err(|e| fatal(format!("cannot stat: {e}")))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if !md.is_file() || md.uid() != me || md.nlink() != 1 {
            return Err(fatal(format!(
                "is not a regular file of uid {me} with one link (owner {}, {} links); not touched: remove it",
                md.uid(),
                md.nlink()
            )));
        }
    }
    match f.try_lock() {
        Ok(()) => {
            let _ = f.set_len(0);
            let _ = writeln!(&f, "{}", std::process::id());
            Ok(f)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            Err(ConnectError::LockHeld(format!(
                "another repl-repair on this host watches instance {name} (lock file {} held{})",
                path.display(),
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" by pid {holder}")
                }
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(fatal(format!("cannot lock: {e}"))),
    }
}

/// Writes a transaction the agent gives up on to the instance's dead-letter directory.
fn park(
    cfg: &WorkerConfig,
    r: &mut Replica,
    incident: &crate::status::Incident,
    reason: &str,
    log: &InstanceLog,
) {
    if cfg.dry_run {
        return;
    }
    let dir = instance_dir(cfg, &r.name).join("dead-letter");
    match repair::dead_letter(r, incident, reason, &dir) {
        Ok(p) => {
            cfg.telemetry.dead_letter(&r.name);
            log.error(&format!(
                "transaction parked in the dead-letter directory: {}",
                p.display()
            ));
        }
        Err(e) => log.error(&format!("cannot write the dead letter: {e}")),
    }
}

/// The instance's own directory under `--journal-dir`, whatever its name holds.
fn instance_dir(cfg: &WorkerConfig, name: &str) -> PathBuf {
    cfg.journal_dir.join(crate::record::safe_name(name))
}

/// Whether a status read failed for lack of a privilege (1227 specific access denied,
/// 1142/1143 table/column access, 1044/1045 access denied): a configuration fault, not
/// a lost connection.
fn access_denied(e: &mysql::Error) -> bool {
    matches!(e, mysql::Error::MySqlError(me) if matches!(me.code, 1044 | 1045 | 1142 | 1143 | 1227))
}

/// Checks the relay log can be opened before anything else: running on another host
/// or as a user who cannot read mysqld's files is a configuration fault.
fn relay_readable(r: &Replica, incident: &crate::status::Incident) -> Result<(), String> {
    let path = r.relay.resolve(&incident.relay_log_file);
    match File::open(&path) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "cannot read relay log {}: {e}; run repl-repair on the replica's host as the mysqld user or a member of its group",
            path.display()
        )),
    }
}

/// Waits until the connection's SQL thread has executed everything its IO thread read,
/// or has stopped, or `timeout` passed.
fn settle(r: &mut Replica, connection: &str, timeout: Duration) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        match status::read(&mut r.conn, &r.flavor, connection) {
            Ok(Some(st))
                if st.sql_running
                    && (st.exec_master_log_file != st.read_master_log_file
                        || st.exec_master_log_pos != st.read_master_log_pos) => {}
            _ => return,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An incident as `/status` shows it.
fn incident_summary(
    incident: &crate::status::Incident,
    outcome: &str,
    detail: &str,
) -> crate::metrics::IncidentSummary {
    crate::metrics::IncidentSummary {
        errno: incident.errno,
        connection: incident.connection.clone(),
        relay: format!("{}:{}", incident.relay_log_file, incident.relay_log_pos),
        primary: format!(
            "{}:{}",
            incident.master_log_file.as_deref().unwrap_or(""),
            incident.end_log_pos.unwrap_or(0)
        ),
        outcome: outcome.to_string(),
        detail: detail.to_string(),
        deleted: 0,
        inserted: 0,
        at: crate::clock::rfc3339_now(),
    }
}

/// Runs one instance's worker until `--once` is done, `-t` expires or `shutdown` is set.
pub fn run(cfg: WorkerConfig, shutdown: &AtomicBool) -> Summary {
    let log = InstanceLog::new(&cfg.target.label, cfg.logdir.as_deref());
    let mut state_msg = Once(None);
    let mut replica: Option<Replica> = None;
    let mut lock: Option<File> = None;
    let mut breaker = cfg
        .breaker
        .map(|(n, per)| crate::limits::CircuitBreaker::new(n, per));
    let mut repairs = 0u64;
    // A committed repair whose record is incomplete: the `--once` run ends needing a
    // human even when the replica is healthy again by then.
    let mut record_alert: Option<String> = None;
    let mut backoff = cfg.interval;
    // The transaction last refused or failed: not retried until the position changes.
    let mut given_up: std::collections::HashSet<(String, String, u64, String)> =
        std::collections::HashSet::new();
    let summary = |repairs, state| Summary {
        instance: log.name(),
        repairs,
        state,
    };
    loop {
        let r = match replica.as_mut() {
            Some(r) => r,
            None => match connect(&cfg, &log, &mut lock) {
                Ok(r) => {
                    backoff = cfg.interval;
                    replica.insert(r)
                }
                Err(e) => {
                    let (msg, final_state) = match e {
                        ConnectError::Fatal(m) => (m.clone(), FinalState::Error(m)),
                        ConnectError::LockHeld(m) => (m.clone(), FinalState::NeedsHuman(m)),
                    };
                    cfg.telemetry.observe(&log.name(), None);
                    cfg.telemetry.set_state(&log.name(), "unreachable");
                    if cfg.once {
                        log.error(&msg);
                        return summary(repairs, final_state);
                    }
                    state_msg.say(&log, "ERROR", format!("{msg}; retrying with backoff"));
                    if !nap(backoff, &cfg, shutdown) {
                        return summary(repairs, final_state);
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        let all = match status::read_all(&mut r.conn, &r.flavor) {
            Ok(all) if !all.is_empty() => {
                cfg.telemetry.observe(&r.name, all.first());
                all
            }
            Ok(_) => {
                let msg = format!(
                    "{} is not a replica (empty {})",
                    r.name,
                    r.flavor.show_status_sql()
                );
                if cfg.once {
                    log.error(&msg);
                    return summary(repairs, FinalState::Error(msg));
                }
                state_msg.say(&log, "ERROR", msg);
                if !nap(cfg.interval, &cfg, shutdown) {
                    return summary(repairs, FinalState::Healthy);
                }
                continue;
            }
            Err(e) if access_denied(&e) => {
                let msg = format!(
                    "access denied reading the replica status: the user needs SLAVE MONITOR (MariaDB) / REPLICATION CLIENT (MySQL): {e}"
                );
                if cfg.once {
                    log.error(&msg);
                    return summary(repairs, FinalState::Error(msg));
                }
                state_msg.say(&log, "ERROR", msg);
                if !nap(cfg.interval.max(Duration::from_secs(5)), &cfg, shutdown) {
                    return summary(repairs, FinalState::Healthy);
                }
                continue;
            }
            Err(e) => {
                let msg = format!("lost the connection: {e}; reconnecting");
                state_msg.say(&log, "ERROR", msg.clone());
                replica = None;
                if cfg.once {
                    return summary(repairs, FinalState::Error(msg));
                }
                continue;
            }
        };
        // Multi-source: the connection that needs attention first, an incident not
        // given up on before anything else.
        let key_of = |i: &crate::status::Incident| {
            (
                i.connection.clone(),
                i.relay_log_file.clone(),
                i.relay_log_pos,
                i.message.clone(),
            )
        };
        let st = all
            .iter()
            .find(|s| {
                s.incident()
                    .is_some_and(|i| !given_up.contains(&key_of(&i)))
            })
            .or_else(|| all.iter().find(|s| !s.sql_running))
            .unwrap_or(&all[0])
            .clone();
        let on = if st.connection.is_empty() {
            String::new()
        } else {
            format!("connection '{}': ", st.connection)
        };
        let mut state = FinalState::Healthy;
        let mut repaired_now = false;
        if let Some(incident) = st.incident() {
            let key = key_of(&incident);
            let circuit = breaker.as_mut().and_then(|b| b.open(Instant::now()));
            cfg.telemetry.set_circuit(&r.name, circuit.is_some());
            if let Some(reason) = circuit {
                state_msg.say(
                    &log,
                    "ERROR",
                    format!("{on}error {}: {reason}", incident.errno),
                );
                if given_up.insert(key.clone()) {
                    // /status names the incident the circuit stopped at.
                    cfg.telemetry.incident(
                        &r.name,
                        incident_summary(&incident, "circuit-open", &reason),
                    );
                    park(&cfg, r, &incident, &reason, &log);
                }
                cfg.telemetry.set_state(&r.name, "circuit-open");
                state = FinalState::NeedsHuman(reason);
            } else if cfg.telemetry.is_paused(&r.name) {
                state_msg.say(
                    &log,
                    "WARN",
                    format!(
                        "{on}error {} left alone: repairs are paused",
                        incident.errno
                    ),
                );
                cfg.telemetry.set_state(&r.name, "paused");
                state = FinalState::NeedsHuman("paused".into());
            } else if !given_up.contains(&key)
                && let Err(msg) = relay_readable(r, &incident)
            {
                state_msg.say(&log, "ERROR", msg.clone());
                cfg.telemetry.set_state(&r.name, "error");
                state = FinalState::Error(msg);
                if cfg.once {
                    return summary(repairs, state);
                }
            } else if given_up.contains(&key) {
                state = FinalState::NeedsHuman(format!(
                    "error {} still unrepaired at {}:{}",
                    incident.errno, incident.relay_log_file, incident.relay_log_pos
                ));
            } else {
                log.warn(&format!(
                    "{on}SQL thread stopped with error {} at relay log {}:{}: {}",
                    incident.errno,
                    incident.relay_log_file,
                    incident.relay_log_pos,
                    incident.message
                ));
                let opts = RepairOptions {
                    dry_run: cfg.dry_run,
                    journal: crate::record::Journal::new(instance_dir(&cfg, &r.name)),
                    verify_timeout: cfg.verify_timeout,
                    tail_wait: Duration::from_secs(5),
                    max_rounds: cfg.max_rounds,
                    filter: cfg.filter.clone(),
                    max_rows: cfg.max_rows,
                };
                cfg.telemetry.set_state(&r.name, "repairing");
                let started = Instant::now();
                let outcome = repair::repair(r, &incident, &opts);
                state_msg.0 = None;
                let (deleted, inserted, detail) = match &outcome {
                    Outcome::Repaired {
                        deleted, inserted, ..
                    } => (*deleted, *inserted, String::new()),
                    Outcome::Refused { reason }
                    | Outcome::Failed { reason }
                    | Outcome::Busy { reason } => (0, 0, reason.clone()),
                    Outcome::DryRun { statements } => {
                        (0, 0, format!("{} statements", statements.len()))
                    }
                };
                cfg.telemetry.repair(
                    &r.name,
                    crate::metrics::IncidentSummary {
                        deleted,
                        inserted,
                        ..incident_summary(&incident, outcome.label(), &detail)
                    },
                    started.elapsed(),
                );
                cfg.telemetry.set_state(
                    &r.name,
                    match outcome {
                        Outcome::Repaired { .. } => "healthy",
                        Outcome::Refused { .. } => "refused",
                        Outcome::Failed { .. } => "unrepairable",
                        Outcome::Busy { .. } => "busy",
                        Outcome::DryRun { .. } => "dry-run",
                    },
                );
                match &outcome {
                    Outcome::Repaired {
                        deleted,
                        inserted,
                        statements,
                        keyless_inserts,
                        journals,
                        elapsed,
                        to_restart,
                        rounds,
                        still_applying,
                        record_error,
                    } => {
                        for s in statements {
                            log.info(&format!("fix applied: {s}"));
                        }
                        if let Some(e) = record_error {
                            let msg = format!(
                                "repair of error {} COMMITTED, but its record is incomplete: {e}; the rows above were changed, the SQL thread is restarted; check the journal directory",
                                incident.errno
                            );
                            log.error(&msg);
                            cfg.telemetry.record_incomplete(&r.name, &msg);
                            record_alert = Some(msg);
                        }
                        if *keyless_inserts > 0 {
                            log.warn(&format!(
                                "{keyless_inserts} rows were inserted into tables without any unique key: the replica may now also hold a stale near-duplicate of them, which no key can find"
                            ));
                        }
                        let journals: Vec<String> =
                            journals.iter().map(|p| p.display().to_string()).collect();
                        log.info(&format!(
                            "repaired error {}: {deleted} rows deleted, {inserted} inserted in {:.3}s (SQL thread restarted after {:.3}s, {rounds} round{}), SQL thread {}{}",
                            incident.errno,
                            elapsed.as_secs_f64(),
                            to_restart.as_secs_f64(),
                            if *rounds == 1 { "" } else { "s" },
                            if *still_applying { "restarted and still applying the transaction" } else { "running past the transaction" },
                            if journals.is_empty() { String::new() } else { format!("; undo journal {}", journals.join(", ")) }
                        ));
                        repairs += 1;
                        repaired_now = true;
                        if let Some(b) = breaker.as_mut() {
                            b.record(Instant::now());
                        }
                    }
                    Outcome::DryRun { statements } => {
                        // A script for the mysql client, as the agent would run it (one
                        // transaction, kept out of the replica's binlog); the restart is
                        // left to the reader, as a comment.
                        let mut out = std::io::stdout().lock();
                        // The same session as the repair's: TIMESTAMP literals are UTC.
                        let _ = writeln!(
                            out,
                            "-- repl-repair dry run, instance {}: error {} at relay log {}:{}; a repair would run:\n{};\nBEGIN;",
                            crate::record::inert(&r.name),
                            incident.errno,
                            crate::record::inert(&incident.relay_log_file),
                            incident.relay_log_pos,
                            crate::sql::SESSION_SETTINGS.join(";\n"),
                        );
                        for s in statements {
                            let _ = writeln!(out, "{s};");
                        }
                        let _ = writeln!(
                            out,
                            "COMMIT;\n-- then restart replication: {};",
                            crate::record::inert(
                                &r.flavor.start_sql_thread_sql(&incident.connection)
                            )
                        );
                        let _ = out.flush();
                        state = FinalState::NeedsHuman(format!(
                            "dry run: {} statements would repair error {}",
                            statements.len(),
                            incident.errno
                        ));
                        given_up.insert(key);
                    }
                    Outcome::Busy { reason } => {
                        log.warn(&format!("error {}: {reason}", incident.errno));
                        state = FinalState::NeedsHuman(reason.clone());
                    }
                    Outcome::Refused { reason } | Outcome::Failed { reason } => {
                        log.error(&format!(
                            "{} error {}: {reason}; replication left stopped",
                            outcome.label(),
                            incident.errno
                        ));
                        state = FinalState::NeedsHuman(format!("{}: {reason}", outcome.label()));
                        park(&cfg, r, &incident, reason, &log);
                        given_up.insert(key);
                    }
                }
            }
        } else if !st.sql_running {
            let msg = if st.last_sql_errno != 0 {
                format!(
                    "{on}SQL thread stopped with error {} (not a row-drift error, left alone): {}",
                    st.last_sql_errno, st.last_sql_error
                )
            } else {
                format!("{on}SQL thread is not running (stopped by hand?)")
            };
            state_msg.say(&log, "WARN", msg.clone());
            state = FinalState::NeedsHuman(msg);
        } else {
            state_msg.say(&log, "INFO", "replication running".into());
            if !cfg.telemetry.is_paused(&r.name) {
                cfg.telemetry.set_state(&r.name, "healthy");
            }
        }
        if cfg.once {
            if repaired_now && repairs < ONCE_MAX_REPAIRS {
                // Let the SQL thread work through what is already relayed, so the next
                // conflict (if any) shows before this run reports the instance healthy.
                settle(r, &st.connection, cfg.verify_timeout);
                continue;
            }
            if let (FinalState::Healthy, Some(msg)) = (&state, &record_alert) {
                state = FinalState::NeedsHuman(msg.clone());
            }
            return summary(repairs, state);
        }
        if !repaired_now && !nap(cfg.interval, &cfg, shutdown) {
            return summary(repairs, state);
        }
    }
}
