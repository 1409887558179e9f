//! One worker per instance: poll the replica status, turn a 1062/1032 stop into a repair,
//! report everything else, reconnect with backoff, and never take other instances down
//! (each worker is its own thread with its own connection and log).

use crate::repair::{self, Outcome, RepairOptions};
use crate::replica::Replica;
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
    /// `--source`: relay log, primary, or whichever this agent can read.
    pub source: crate::policy::SourceMode,
    /// How to reach the primaries when reading from them.
    pub primary: std::sync::Arc<crate::primary::PrimaryAccess>,
}

pub use crate::policy::FinalState;
use crate::policy::{Action, InstanceState, Level};

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
        // A wake-up per half second, not per 100 ms: with a hundred instances the
        // wake-ups were a third of the agent's CPU (benches/watch.rs); shutdown and the
        // `-t` deadline are still noticed within half a second.
        let mut step = (end - now).min(Duration::from_millis(500));
        if let Some(u) = cfg.until {
            step = step.min(u.saturating_duration_since(now));
        }
        std::thread::sleep(step);
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
    let mut replica =
        Replica::connect(cfg.target.label.clone(), cfg.target.opts.clone()).map_err(|e| {
            ConnectError::Fatal(match e {
                crate::replica::ConnectError::Connect(e) => {
                    format!("cannot connect to {}: {e}", cfg.target.label)
                }
                crate::replica::ConnectError::Query(e) => {
                    format!("cannot query {}: {e}", cfg.target.label)
                }
            })
        })?;
    let port = replica.port();
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
    let mut attempt = 0;
    while start.elapsed() < timeout {
        match r.status(connection) {
            Ok(Some(st))
                if st.sql_running
                    && (st.exec_master_log_file != st.read_master_log_file
                        || st.exec_master_log_pos != st.read_master_log_pos) => {}
            _ => return,
        }
        std::thread::sleep(crate::clock::poll_pause(attempt));
        attempt += 1;
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
        source: String::new(),
        deleted: 0,
        inserted: 0,
        at: crate::clock::rfc3339_now(),
    }
}

/// A worker's state between polls.
struct Worker<'a> {
    cfg: &'a WorkerConfig,
    log: InstanceLog,
    state_msg: Once,
    replica: Option<Replica>,
    lock: Option<File>,
    breaker: Option<crate::limits::CircuitBreaker>,
    repairs: u64,
    /// A committed repair whose record is incomplete: the `--once` run ends needing a
    /// human even when the replica is healthy again by then.
    record_alert: Option<String>,
    backoff: Duration,
    /// Incidents refused, failed or dry-run: not retried until the position changes.
    given_up: std::collections::HashSet<crate::policy::IncidentKey>,
}

/// What one poll ended with.
enum Poll {
    /// Poll again after the interval (or at once after a repair).
    Again { state: FinalState, repaired: bool },
    /// Poll again after this pause (no replica to talk to, or no status to read).
    Wait(Duration, FinalState),
    /// Poll again at once (reconnect).
    Now,
    /// The worker is done (`--once`): this is the result.
    Done(FinalState),
}

/// Runs one instance's worker until `--once` is done, `-t` expires or `shutdown` is set.
pub fn run(cfg: WorkerConfig, shutdown: &AtomicBool) -> Summary {
    let mut w = Worker {
        log: InstanceLog::new(&cfg.target.label, cfg.logdir.as_deref()),
        state_msg: Once(None),
        replica: None,
        lock: None,
        breaker: cfg
            .breaker
            .map(|(n, per)| crate::limits::CircuitBreaker::new(n, per)),
        repairs: 0,
        record_alert: None,
        backoff: cfg.interval,
        given_up: Default::default(),
        cfg: &cfg,
    };
    loop {
        let (pause, state) = match w.poll() {
            Poll::Done(state) => return w.summary(state),
            Poll::Wait(d, state) => (Some(d), state),
            Poll::Now => continue,
            Poll::Again { state, repaired } => {
                if cfg.once {
                    if repaired && w.repairs < ONCE_MAX_REPAIRS {
                        continue;
                    }
                    let state = match (state, &w.record_alert) {
                        (FinalState::Healthy, Some(msg)) => FinalState::NeedsHuman(msg.clone()),
                        (state, _) => state,
                    };
                    return w.summary(state);
                }
                ((!repaired).then_some(cfg.interval), state)
            }
        };
        if let Some(d) = pause
            && !nap(d, &cfg, shutdown)
        {
            return w.summary(state);
        }
    }
}

impl Worker<'_> {
    fn summary(&self, state: FinalState) -> Summary {
        Summary {
            instance: self.log.name(),
            repairs: self.repairs,
            state,
        }
    }

    fn set_state(&self, state: InstanceState) {
        self.cfg
            .telemetry
            .set_state(&self.log.name(), state.label());
    }

    /// Logs `msg` once per change of state (`--once`: always, it is the last word).
    fn say(&mut self, level: Level, msg: String) {
        if self.cfg.once {
            self.log.write(level.label(), &msg);
        } else {
            self.state_msg.say(&self.log, level.label(), msg);
        }
    }

    /// One poll: connect if needed, read the status, act on it.
    fn poll(&mut self) -> Poll {
        let cfg = self.cfg;
        if self.replica.is_none() {
            match connect(cfg, &self.log, &mut self.lock) {
                Ok(r) => {
                    self.backoff = cfg.interval;
                    self.replica = Some(r);
                }
                Err(e) => {
                    let (msg, state) = match e {
                        ConnectError::Fatal(m) => (m.clone(), FinalState::Error(m)),
                        ConnectError::LockHeld(m) => (m.clone(), FinalState::NeedsHuman(m)),
                    };
                    cfg.telemetry.observe(&self.log.name(), None);
                    self.set_state(InstanceState::Unreachable);
                    if cfg.once {
                        self.log.error(&msg);
                        return Poll::Done(state);
                    }
                    self.say(Level::Error, format!("{msg}; retrying with backoff"));
                    let wait = self.backoff;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    return Poll::Wait(wait, state);
                }
            }
        }
        let Some(r) = self.replica.as_mut() else {
            return Poll::Wait(cfg.interval, FinalState::Healthy);
        };
        let all = match r.status_all() {
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
                return self.config_fault(msg, cfg.interval);
            }
            Err(e) if access_denied(&e) => {
                let msg = format!(
                    "access denied reading the replica status: the user needs SLAVE MONITOR (MariaDB) / REPLICATION CLIENT (MySQL): {e}"
                );
                return self.config_fault(msg, cfg.interval.max(Duration::from_secs(5)));
            }
            Err(e) => {
                let msg = format!("lost the connection: {e}; reconnecting");
                self.say(Level::Error, msg.clone());
                self.replica = None;
                if cfg.once {
                    return Poll::Done(FinalState::Error(msg));
                }
                return Poll::Now;
            }
        };
        let Some(st) = crate::policy::pick(&all, &self.given_up).cloned() else {
            return Poll::Wait(cfg.interval, FinalState::Healthy);
        };
        let circuit = self.breaker.as_mut().and_then(|b| b.open(Instant::now()));
        if st.incident().is_some() {
            cfg.telemetry
                .set_circuit(&self.log.name(), circuit.is_some());
        }
        let paused = cfg.telemetry.is_paused(&self.log.name());
        match crate::policy::decide(&st, &self.given_up, circuit, paused) {
            Action::Healthy => {
                self.state_msg
                    .say(&self.log, "INFO", "replication running".into());
                if !paused {
                    self.set_state(InstanceState::Healthy);
                }
                Poll::Again {
                    state: FinalState::Healthy,
                    repaired: false,
                }
            }
            Action::LeaveStopped(msg) => {
                self.state_msg.say(&self.log, "WARN", msg.clone());
                Poll::Again {
                    state: FinalState::NeedsHuman(msg),
                    repaired: false,
                }
            }
            Action::CircuitOpen {
                incident,
                reason,
                first,
            } => {
                self.state_msg.say(
                    &self.log,
                    "ERROR",
                    format!("error {}: {reason}", incident.errno),
                );
                if first {
                    self.given_up.insert(crate::policy::key_of(&incident));
                    // /status names the incident the circuit stopped at.
                    cfg.telemetry.incident(
                        &self.log.name(),
                        incident_summary(&incident, "circuit-open", &reason),
                    );
                    self.park(&incident, &reason);
                }
                self.set_state(InstanceState::CircuitOpen);
                Poll::Again {
                    state: FinalState::NeedsHuman(reason),
                    repaired: false,
                }
            }
            Action::Paused(incident) => {
                let msg = format!("error {} left alone: repairs are paused", incident.errno);
                self.state_msg.say(&self.log, "WARN", msg);
                self.set_state(InstanceState::Paused);
                Poll::Again {
                    state: FinalState::NeedsHuman("paused".into()),
                    repaired: false,
                }
            }
            Action::GivenUp(incident) => Poll::Again {
                state: FinalState::NeedsHuman(format!(
                    "error {} still unrepaired at {}:{}",
                    incident.errno, incident.relay_log_file, incident.relay_log_pos
                )),
                repaired: false,
            },
            Action::Repair(incident) => self.repair(&incident, &st.connection),
        }
    }

    /// The agent cannot do its job here (not a replica, no privilege): `--once` ends with
    /// an error; a daemon says so once and looks again later.
    fn config_fault(&mut self, msg: String, wait: Duration) -> Poll {
        if self.cfg.once {
            self.log.error(&msg);
            return Poll::Done(FinalState::Error(msg));
        }
        self.state_msg.say(&self.log, "ERROR", msg);
        Poll::Wait(wait, FinalState::Healthy)
    }

    fn park(&mut self, incident: &crate::status::Incident, reason: &str) {
        if let Some(r) = self.replica.as_mut() {
            park(self.cfg, r, incident, reason, &self.log);
        }
    }

    /// Repairs one incident and acts on the verdict.
    fn repair(&mut self, incident: &crate::status::Incident, connection: &str) -> Poll {
        let cfg = self.cfg;
        let Some(r) = self.replica.as_mut() else {
            return Poll::Wait(cfg.interval, FinalState::Healthy);
        };
        let read_from = match crate::policy::choose_source(cfg.source, relay_readable(r, incident))
        {
            Ok(from) => from,
            Err(msg) => {
                self.state_msg.say(&self.log, "ERROR", msg.clone());
                self.set_state(InstanceState::Error);
                return if cfg.once {
                    Poll::Done(FinalState::Error(msg))
                } else {
                    Poll::Again {
                        state: FinalState::Error(msg),
                        repaired: false,
                    }
                };
            }
        };
        let on = if connection.is_empty() {
            String::new()
        } else {
            format!("connection '{connection}': ")
        };
        self.log.warn(&format!(
            "{on}SQL thread stopped with error {} at relay log {}:{}: {}",
            incident.errno, incident.relay_log_file, incident.relay_log_pos, incident.message
        ));
        if read_from == crate::policy::ReadFrom::Primary {
            self.log.info(&format!(
                "{on}reading the failing transaction from the primary's binlog at {}:{} (--source {})",
                incident.exec_master_log_file,
                incident.exec_master_log_pos,
                if cfg.source == crate::policy::SourceMode::Auto { "auto: the relay log is not readable here" } else { "primary" }
            ));
        }
        let opts = RepairOptions {
            dry_run: cfg.dry_run,
            journal: crate::record::Journal::new(instance_dir(cfg, &r.name)),
            verify_timeout: cfg.verify_timeout,
            tail_wait: Duration::from_secs(5),
            max_rounds: cfg.max_rounds,
            filter: cfg.filter.clone(),
            max_rows: cfg.max_rows,
            primary: (read_from == crate::policy::ReadFrom::Primary).then(|| cfg.primary.clone()),
        };
        cfg.telemetry
            .set_state(&self.log.name(), InstanceState::Repairing.label());
        let started = Instant::now();
        let outcome = repair::repair(r, incident, &opts);
        self.state_msg.0 = None;
        let verdict = crate::policy::judge(&outcome, incident.errno);
        let (deleted, inserted, detail) = match &outcome {
            Outcome::Repaired {
                deleted, inserted, ..
            } => (*deleted, *inserted, String::new()),
            Outcome::Refused { reason, .. }
            | Outcome::Failed { reason }
            | Outcome::Busy { reason } => (0, 0, reason.clone()),
            Outcome::DryRun { statements } => (0, 0, format!("{} statements", statements.len())),
        };
        if let Outcome::Refused { kind, .. } = &outcome {
            cfg.telemetry.refused(&self.log.name(), kind.label());
        }
        cfg.telemetry.repair(
            &self.log.name(),
            crate::metrics::IncidentSummary {
                deleted,
                inserted,
                source: read_from.label().to_string(),
                ..incident_summary(incident, outcome.label(), &detail)
            },
            started.elapsed(),
        );
        cfg.telemetry
            .set_state(&self.log.name(), verdict.state.label());
        for (level, line) in &verdict.lines {
            self.log.write(level.label(), line);
        }
        if let Outcome::DryRun { statements } = &outcome {
            print_dry_run(r, incident, statements);
        }
        if let Some(msg) = &verdict.record_alert {
            cfg.telemetry.record_incomplete(&self.log.name(), msg);
            self.record_alert = Some(msg.clone());
        }
        if let Some(reason) = &verdict.park {
            self.park(incident, reason);
        }
        if verdict.give_up {
            self.given_up.insert(crate::policy::key_of(incident));
        }
        if verdict.repaired {
            self.repairs += 1;
            if let Some(b) = self.breaker.as_mut() {
                b.record(Instant::now());
            }
            if cfg.once
                && let Some(r) = self.replica.as_mut()
            {
                // Let the SQL thread work through what is already relayed, so the next
                // conflict (if any) shows before this run reports the instance healthy.
                settle(r, connection, cfg.verify_timeout);
            }
        }
        Poll::Again {
            state: verdict.final_state,
            repaired: verdict.repaired,
        }
    }
}

/// `--dry-run`: a script for the mysql client, as the agent would run it (one
/// transaction, kept out of the replica's binlog, the same session as a repair's:
/// TIMESTAMP literals are UTC); the restart is left to the reader, as a comment.
fn print_dry_run(r: &Replica, incident: &crate::status::Incident, statements: &[String]) {
    let mut out = std::io::stdout().lock();
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
        crate::record::inert(&r.flavor.start_sql_thread_sql(&incident.connection))
    );
    let _ = out.flush();
}
