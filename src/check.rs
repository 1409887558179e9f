//! `repl-repair check`: everything a repair will need, checked before the first
//! incident, changing nothing. Per instance: the connection; replication (every
//! connection/channel); the grants a repair uses, read from the server (`SHOW GRANTS`,
//! and `SET SESSION sql_log_bin` tried on the check's own session); the relay logs
//! readable from here; the binlog settings; the journal and lock directories writable.
//!
//! One line per check. Exit code like `--once`: 0 ready, 1 it works but some repairs
//! would be refused (a human should look), 2 the agent cannot do its job here.

use crate::cli::Args;
use crate::config::Config;
use crate::grants::{self, Grants};
use crate::replica::Replica;
use crate::status::ReplicaStatus;
use crate::watch::WorkerConfig;
use mysql::prelude::Queryable;
use std::path::{Path, PathBuf};

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    /// Worth knowing, changes nothing (exit 0).
    Note,
    /// Some repairs would be refused (exit 1).
    Warn,
    /// The agent cannot do its job (exit 2).
    Fail,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub instance: String,
    pub check: String,
    pub level: Level,
    pub detail: String,
}

impl Line {
    /// `instance=… check=… result=… detail="…"`, or one JSON object.
    pub fn render(&self, json: bool) -> String {
        if json {
            #[derive(serde::Serialize)]
            struct JsonLine<'a> {
                instance: &'a str,
                check: &'a str,
                result: &'a str,
                detail: &'a str,
            }
            serde_json::to_string(&JsonLine {
                instance: &self.instance,
                check: &self.check,
                result: self.level.word(),
                detail: &self.detail,
            })
            .unwrap_or_default()
        } else {
            format!(
                "instance={} check={} result={} detail={:?}",
                crate::record::inert(&self.instance),
                self.check,
                self.level.word(),
                self.detail
            )
        }
    }
}

/// 0 when nothing is worse than a note, 1 with a warning, 2 with a failure.
pub fn exit_code(lines: &[Line]) -> u8 {
    match lines.iter().map(|l| l.level).max() {
        Some(Level::Fail) => 2,
        Some(Level::Warn) => 1,
        _ => 0,
    }
}

/// `repl-repair [flags] check`: prints the report, returns the exit code.
pub fn command(mut args: Args) -> u8 {
    args.inspect_only = true;
    let scope = Scope {
        tables: args.tables.clone(),
        ignore: args.ignore_tables.clone(),
    };
    let cfg = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("repl-repair: {e}");
            return 2;
        }
    };
    let lines = run(&cfg, &scope);
    for l in &lines {
        println!("{}", l.render(cfg.json));
    }
    exit_code(&lines)
}

/// Which tables the repair may touch (`--tables`, `--ignore-tables`): the data grants
/// are checked there.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub tables: Vec<String>,
    pub ignore: Vec<String>,
}

/// Runs every check on every configured instance.
pub fn run(cfg: &Config, scope: &Scope) -> Vec<Line> {
    let mut out = Vec::new();
    for w in &cfg.workers {
        check_instance(w, scope, &mut out);
    }
    out
}

struct Report<'a> {
    instance: String,
    out: &'a mut Vec<Line>,
}

impl Report<'_> {
    fn say(&mut self, check: &str, level: Level, detail: impl Into<String>) {
        self.out.push(Line {
            instance: self.instance.clone(),
            check: check.to_string(),
            level,
            detail: detail.into(),
        });
    }
}

fn check_instance(w: &WorkerConfig, scope: &Scope, out: &mut Vec<Line>) {
    let label = w.target.label.clone();
    let mut rep = Report {
        instance: w.target.name.clone().unwrap_or_else(|| label.clone()),
        out,
    };
    let mut r = match Replica::connect(label.clone(), w.target.opts.clone()) {
        Ok(r) => r,
        Err(crate::replica::ConnectError::Connect(e)) => {
            rep.say(
                "connect",
                Level::Fail,
                format!("cannot connect to {label}: {e}"),
            );
            return;
        }
        Err(crate::replica::ConnectError::Query(e)) => {
            rep.say(
                "connect",
                Level::Fail,
                format!("connected to {label} but cannot read VERSION(), @@datadir, @@relay_log_index: {e}"),
            );
            return;
        }
    };
    let (user, version): (String, String) = r
        .reader()
        .query_first("SELECT /* repl-repair */ CURRENT_USER(), VERSION()")
        .ok()
        .flatten()
        .unwrap_or_default();
    let port: Option<u16> = r
        .reader()
        .query_first("SELECT /* repl-repair */ @@port")
        .ok()
        .flatten();
    // The name the agent will use in logs, locks and journals: --instance or the port.
    let name = w
        .target
        .name
        .clone()
        .or(port.map(|p| p.to_string()))
        .unwrap_or_else(|| label.clone());
    rep.instance = name.clone();
    rep.say(
        "connect",
        Level::Ok,
        format!("{label} as {user}, server {version}"),
    );

    let statuses = check_replica(&mut r, &mut rep);
    check_grants(&mut r, scope, &mut rep, statuses.is_some());
    for st in statuses.iter().flatten() {
        let relay_ok = w.source != crate::policy::SourceMode::Primary
            && check_relay_log(&r, st, &mut rep, w.source);
        if w.source != crate::policy::SourceMode::Relay {
            // With --source auto the primary is only read when the relay log is not.
            check_primary(&mut r, st, w, &mut rep, !relay_ok);
        }
    }
    check_binlog_settings(&mut r, &mut rep);
    check_dir(
        &mut rep,
        "journal-dir",
        &w.journal_dir.join(crate::record::safe_name(&name)),
        "undo journals, audit trail and dead letters",
    );
    check_dir(
        &mut rep,
        "lock-dir",
        &w.lock_dir,
        "the lock file that keeps one agent per instance",
    );
    if is_root() {
        rep.say(
            "user",
            Level::Note,
            "running as root, which can read and write everything: run the check as the agent's user (sudo -u mysql repl-repair … check) to see what the agent can do",
        );
    }
}

/// Every replication connection's status; `None` when the server cannot be used as a
/// replica (the failure is reported).
fn check_replica(r: &mut Replica, rep: &mut Report) -> Option<Vec<ReplicaStatus>> {
    let statuses = match r.status_all() {
        Ok(s) => s,
        Err(e) => {
            let detail = if is_access_denied(&e) {
                format!(
                    "{} refused: grant {} ON *.* (needed to read the replica status): {e}",
                    r.flavor.show_status_sql(),
                    status_grant(r)
                )
            } else {
                format!("{} failed: {e}", r.flavor.show_status_sql())
            };
            rep.say("replica", Level::Fail, detail);
            return None;
        }
    };
    if statuses.is_empty() {
        rep.say(
            "replica",
            Level::Fail,
            format!(
                "not a replica: {} returned no replication connection; point repl-repair at a replica",
                r.flavor.show_status_sql()
            ),
        );
        return None;
    }
    for st in &statuses {
        let conn = connection_name(&st.connection);
        let running = st.io_running == "Yes" && st.sql_running;
        let (level, detail) = if running {
            (Level::Ok, format!("{conn}: IO and SQL threads running"))
        } else if st.incident().is_some() {
            (
                Level::Note,
                format!(
                    "{conn}: SQL thread stopped on {} (the agent repairs this): {}",
                    st.last_sql_errno, st.last_sql_error
                ),
            )
        } else {
            (
                Level::Warn,
                format!(
                    "{conn}: IO thread {}, SQL thread {}{}{}",
                    if st.io_running.is_empty() {
                        "?"
                    } else {
                        &st.io_running
                    },
                    if st.sql_running { "Yes" } else { "No" },
                    error_suffix(st.last_io_errno, &st.last_io_error),
                    error_suffix(st.last_sql_errno, &st.last_sql_error)
                ),
            )
        };
        rep.say("replica", level, detail);
    }
    Some(statuses)
}

fn error_suffix(errno: u32, msg: &str) -> String {
    if errno == 0 {
        String::new()
    } else {
        format!("; error {errno}: {msg}")
    }
}

fn connection_name(c: &str) -> String {
    if c.is_empty() {
        "default connection".into()
    } else {
        format!("connection {c:?}")
    }
}

fn status_grant(r: &Replica) -> &'static str {
    if r.flavor.mariadb && r.flavor.version >= (10, 5, 9) {
        "SLAVE MONITOR"
    } else {
        "REPLICATION CLIENT"
    }
}

fn is_access_denied(e: &mysql::Error) -> bool {
    matches!(e, mysql::Error::MySqlError(me) if matches!(me.code, 1044 | 1045 | 1142 | 1143 | 1227))
}

/// The grants the repair uses: restart (START SLAVE), sql_log_bin, status, and
/// SELECT/INSERT/DELETE where it may repair.
fn check_grants(r: &mut Replica, scope: &Scope, rep: &mut Report, status_ok: bool) {
    let g = match grants::read(&mut r.reader()) {
        Ok(g) => g,
        Err(e) => {
            rep.say("grants", Level::Fail, e);
            return;
        }
    };
    let (restart, log_bin) = if r.flavor.mariadb {
        ("REPLICATION SLAVE ADMIN", "BINLOG ADMIN")
    } else if r.flavor.version >= (8, 0, 0) {
        ("REPLICATION_SLAVE_ADMIN", "SYSTEM_VARIABLES_ADMIN")
    } else {
        ("SUPER", "SUPER")
    };
    // Same test as the repair makes before touching a row (apply::check_restart_privilege).
    if g.global_any(grants::RESTART) {
        rep.say(
            "grant-restart",
            Level::Ok,
            format!("{restart} (or SUPER) on *.*: may restart the SQL thread"),
        );
    } else {
        rep.say(
            "grant-restart",
            Level::Fail,
            format!(
                "missing {restart} ON *.* (or SUPER): the repair cannot restart the SQL thread; GRANT {restart} ON *.* TO the repair user"
            ),
        );
    }
    // sql_log_bin: tried on this session, which is exactly what the repair runs; the
    // session ends with the check, so nothing changes.
    let probe = r.probe_sql_log_bin();
    match probe {
        Ok(()) => rep.say(
            "grant-sql-log-bin",
            Level::Ok,
            format!("{log_bin} (or SUPER): may set sql_log_bin = 0, so fixes stay out of this replica's binlog"),
        ),
        Err(e) => rep.say(
            "grant-sql-log-bin",
            Level::Fail,
            format!(
                "missing {log_bin} ON *.* (or SUPER): SET SESSION sql_log_bin = 0 refused ({e}); GRANT {log_bin} ON *.* TO the repair user"
            ),
        ),
    }
    if status_ok {
        let which = if g.global_any(grants::STATUS) {
            status_grant(r)
        } else {
            "a privilege"
        };
        rep.say(
            "grant-status",
            Level::Ok,
            format!("{which} on *.*: may read the replica status"),
        );
    } else {
        rep.say(
            "grant-status",
            Level::Fail,
            format!(
                "missing {} ON *.*: the agent cannot read the replica status",
                status_grant(r)
            ),
        );
    }
    check_data_grants(r, scope, &g, rep);
}

/// SELECT, INSERT, DELETE on every schema (or table) the repair may change: the
/// `--tables` patterns, else every schema this user can see except the system ones.
fn check_data_grants(r: &mut Replica, scope: &Scope, g: &Grants, rep: &mut Report) {
    let ignored_schema = |db: &str| {
        scope
            .ignore
            .iter()
            .any(|p| p.split_once('.') == Some((db, "*")))
    };
    let targets: Vec<(String, Option<String>)> = if scope.tables.is_empty() {
        let dbs: Vec<String> = match r.reader().query("SHOW DATABASES /* repl-repair */") {
            Ok(d) => d,
            Err(e) => {
                rep.say(
                    "grant-data",
                    Level::Fail,
                    format!("SHOW DATABASES failed: {e}"),
                );
                return;
            }
        };
        dbs.into_iter()
            .filter(|d| {
                !matches!(
                    d.as_str(),
                    "mysql" | "information_schema" | "performance_schema" | "sys"
                )
            })
            .filter(|d| !ignored_schema(d))
            .map(|d| (d, None))
            .collect()
    } else {
        scope
            .tables
            .iter()
            .filter_map(|p| p.split_once('.'))
            .map(|(d, t)| (d.to_string(), (t != "*").then(|| t.to_string())))
            .collect()
    };
    if targets.is_empty() {
        rep.say(
            "grant-data",
            Level::Fail,
            format!(
                "the user sees no schema besides the system ones, so it has no privilege on the replicated data: GRANT {} ON db.* TO the repair user (name them with --tables to check specific ones)",
                grants::DATA.join(", ")
            ),
        );
        return;
    }
    for (db, table) in targets {
        let what = match &table {
            Some(t) => format!("{}.{}", crate::sql::ident(&db), crate::sql::ident(t)),
            None => format!("{}.*", crate::sql::ident(&db)),
        };
        let missing = g.missing(grants::DATA, &db, table.as_deref());
        if missing.is_empty() {
            rep.say(
                "grant-data",
                Level::Ok,
                format!("{} on {what}", grants::DATA.join(", ")),
            );
        } else {
            rep.say(
                "grant-data",
                Level::Fail,
                format!(
                    "missing {} on {what}: the repair reads, inserts and deletes rows there; GRANT {} ON {what} TO the repair user",
                    missing.join(", "),
                    missing.join(", ")
                ),
            );
        }
    }
}

/// The relay-log index and the current relay file open and start like a relay log.
/// Returns whether the relay log is readable.
fn check_relay_log(
    r: &Replica,
    st: &ReplicaStatus,
    rep: &mut Report,
    source: crate::policy::SourceMode,
) -> bool {
    let conn = connection_name(&st.connection);
    let fallback = if source == crate::policy::SourceMode::Relay {
        "--source relay: the relay log is the only source of transactions"
    } else {
        "with --source auto an unreadable relay log falls back to the primary (checked below)"
    };
    if st.relay_log_file.is_empty() {
        rep.say(
            "relay-log",
            Level::Note,
            format!("{conn}: no relay log yet (replication never started); {fallback}"),
        );
        return true;
    }
    // The files exactly as the repair finds them.
    let logs = r.relay_logs(&st.relay_log_file, &st.connection);
    let (file, index) = (logs.resolve(&st.relay_log_file), logs.index);
    let advice = "run repl-repair on the replica's host as the mysqld user or a member of its group (and make the files group-readable)";
    let opened = crate::binlog::BinlogReader::open(&file).and_then(|mut rd| {
        rd.next_event()?;
        Ok(())
    });
    // Unreadable relay logs fail with --source relay; with auto the primary stands in
    // (its own check says whether it can).
    let unreadable = if source == crate::policy::SourceMode::Relay {
        Level::Fail
    } else {
        Level::Warn
    };
    match opened {
        Ok(()) => match std::fs::read_to_string(&index) {
            Err(e) => {
                rep.say(
                    "relay-log",
                    unreadable,
                    format!(
                        "{conn}: cannot read relay-log index {}: {e}; {advice}",
                        index.display()
                    ),
                );
                false
            }
            Ok(_) => {
                rep.say(
                    "relay-log",
                    Level::Ok,
                    format!(
                        "{conn}: {} and {} readable; {fallback}",
                        file.display(),
                        index.display()
                    ),
                );
                true
            }
        },
        Err(e) => {
            rep.say(
                "relay-log",
                unreadable,
                format!(
                    "{conn}: cannot read relay log {}: {e}; {advice}",
                    file.display()
                ),
            );
            false
        }
    }
}

/// The primary `--source auto|primary` would read a failing transaction from: reachable
/// with the primary login, the server the replica replicates from, and a login that
/// may dump the binlog (REPLICATION SLAVE).
/// `needed`: the primary is the only source (`--source primary`, or auto with an
/// unreadable relay log); otherwise a failure here is only a note.
fn check_primary(
    r: &mut Replica,
    st: &ReplicaStatus,
    w: &WorkerConfig,
    rep: &mut Report,
    needed: bool,
) {
    let conn = connection_name(&st.connection);
    let flavor = r.flavor.clone();
    let connected = crate::primary::connect(
        &w.primary,
        &mut r.reader(),
        &flavor,
        &st.connection,
        st.master_server_id,
    );
    match connected {
        Err(e) => rep.say(
            "primary",
            if needed { Level::Fail } else { Level::Note },
            format!("{conn}: {e}"),
        ),
        Ok((mut primary, addr)) => match grants::read(&mut primary) {
            Ok(g) if g.global_any(grants::DUMP) => rep.say(
                "primary",
                Level::Ok,
                format!(
                    "{conn}: primary {addr} reachable, server_id {} as the replica expects, REPLICATION SLAVE granted",
                    st.master_server_id
                ),
            ),
            Ok(_) => rep.say(
                "primary",
                if needed { Level::Fail } else { Level::Note },
                format!(
                    "{conn}: primary {addr} reachable, but the primary login lacks REPLICATION SLAVE ON *.* (needed to read its binlog); GRANT REPLICATION SLAVE ON *.* TO it"
                ),
            ),
            Err(e) => rep.say("primary", Level::Warn, format!("{conn}: primary {addr}: {e}")),
        },
    }
}

/// binlog_format, binlog_row_image, binlog_checksum: what the repair can use.
fn check_binlog_settings(r: &mut Replica, rep: &mut Report) {
    let vars: Option<(String, String, String)> = r
        .reader()
        .query_first(
            "SELECT /* repl-repair */ @@global.binlog_format, @@global.binlog_row_image, @@global.binlog_checksum",
        )
        .ok()
        .flatten();
    let Some((format, image, checksum)) = vars else {
        rep.say(
            "binlog",
            Level::Warn,
            "cannot read @@binlog_format, @@binlog_row_image, @@binlog_checksum",
        );
        return;
    };
    let whose = "this server's settings; the primary's decide what the relay log holds, so keep them the same there";
    let (level, verdict) = match (
        format.to_ascii_uppercase().as_str(),
        image.to_ascii_uppercase().as_str(),
    ) {
        (_, "MINIMAL" | "NOBLOB") => (
            Level::Warn,
            format!(
                "row images {image} lack the columns a fix needs: such repairs are refused; set binlog_row_image=FULL"
            ),
        ),
        ("ROW", _) => (
            Level::Ok,
            "row events with full images: every 1062/1032 is repairable".to_string(),
        ),
        (f, _) => (
            Level::Note,
            format!(
                "{f}: 1062 from a statement is repaired for plain INSERT/UPDATE only (see README); 1032 needs row events; ROW is the format repairs handle fully"
            ),
        ),
    };
    let (level, checksum_note) = match checksum.to_ascii_uppercase().as_str() {
        "CRC32" | "NONE" => (level, String::new()),
        other => (
            Level::Fail,
            format!("; binlog_checksum {other} is not one the decoder reads (CRC32, NONE)"),
        ),
    };
    rep.say(
        "binlog",
        level,
        format!(
            "binlog_format={format} binlog_row_image={image} binlog_checksum={checksum}: {verdict}{checksum_note} ({whose})"
        ),
    );
}

/// A directory the agent writes: writable by this user when it exists, or creatable
/// (its nearest existing parent writable) when it does not. Nothing is created.
fn check_dir(rep: &mut Report, check: &str, dir: &Path, what: &str) {
    match std::fs::metadata(dir) {
        Ok(md) if !md.is_dir() => rep.say(
            check,
            Level::Fail,
            format!(
                "{} exists and is not a directory ({what} go there)",
                dir.display()
            ),
        ),
        Ok(_) if writable(dir) => rep.say(check, Level::Ok, format!("{} writable", dir.display())),
        Ok(_) => rep.say(
            check,
            Level::Fail,
            format!(
                "{} is not writable by uid {} ({what} go there); chown it to the agent's user",
                dir.display(),
                uid()
            ),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = nearest_existing(dir);
            match parent {
                Some(p) if writable(&p) => rep.say(
                    check,
                    Level::Ok,
                    format!(
                        "{} missing; the agent creates it (in writable {})",
                        dir.display(),
                        p.display()
                    ),
                ),
                Some(p) => rep.say(
                    check,
                    Level::Fail,
                    format!(
                        "{} missing and {} is not writable by uid {}: create it for the agent's user ({what} go there)",
                        dir.display(),
                        p.display(),
                        uid()
                    ),
                ),
                None => rep.say(
                    check,
                    Level::Fail,
                    format!("{} missing and no parent exists", dir.display()),
                ),
            }
        }
        Err(e) => rep.say(check, Level::Fail, format!("{}: {e}", dir.display())),
    }
}

fn nearest_existing(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .skip(1)
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .find(|p| p.is_dir())
        .map(Path::to_path_buf)
}

/// access(2) W_OK|X_OK: what this user may do, without creating a file.
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

fn uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn is_root() -> bool {
    uid() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(level: Level) -> Line {
        Line {
            instance: "db 1".into(),
            check: "x".into(),
            level,
            detail: "a \"b\"".into(),
        }
    }

    #[test]
    fn exit_code_is_the_worst_line() {
        assert_eq!(exit_code(&[]), 0);
        assert_eq!(exit_code(&[line(Level::Ok), line(Level::Note)]), 0);
        assert_eq!(exit_code(&[line(Level::Warn), line(Level::Ok)]), 1);
        assert_eq!(exit_code(&[line(Level::Warn), line(Level::Fail)]), 2);
    }

    #[test]
    fn renders_text_and_json() {
        let l = line(Level::Fail);
        assert_eq!(
            l.render(false),
            "instance=db 1 check=x result=fail detail=\"a \\\"b\\\"\""
        );
        assert_eq!(
            l.render(true),
            "{\"instance\":\"db 1\",\"check\":\"x\",\"result\":\"fail\",\"detail\":\"a \\\"b\\\"\"}"
        );
    }

    #[test]
    fn directories_checked_without_creating_them() {
        let base = std::env::temp_dir().join(format!("rr-check-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let mut out = Vec::new();
        let mut rep = Report {
            instance: "i".into(),
            out: &mut out,
        };
        check_dir(&mut rep, "journal-dir", &base.join("a/b"), "journals");
        let file = base.join("f");
        std::fs::write(&file, b"").unwrap();
        check_dir(&mut rep, "lock-dir", &file, "locks");
        assert_eq!(out[0].level, Level::Ok, "{:?}", out[0]);
        assert!(!base.join("a").exists(), "the check created a directory");
        assert_eq!(out[1].level, Level::Fail);
        assert!(out[1].detail.contains("not a directory"), "{:?}", out[1]);
        let _ = std::fs::remove_dir_all(&base);
    }
}
