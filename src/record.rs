//! Durable record of what a repair changed: the undo journal.
//!
//! Before a fix deletes a replica row, the row is read (locked, on the applying
//! connection) and written here as an `INSERT` that puts it back, and the file is
//! fsynced; only then does the DELETE run. Each row a fix inserts is recorded as the
//! `DELETE` that removes it again. The file is a script for the `mysql` client: piping it
//! into the replica undoes the repair.

use crate::event::{ChangeEvent, Column, ColumnMap, EventSource};
use crate::schema::{ColumnInfo, TableInfo};
use crate::sql;
use serde::Serialize;
use serde_json::value::RawValue;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An instance name as one path component, for every file the agent names after an
/// instance (lock files, instance logs, journal, audit and dead-letter directories).
///
/// Injective, so two instances never share a file (`db.1` and `db_1` stay apart): ASCII
/// letters, digits, `_` and `-` stand for themselves, `.` too except as the first
/// character, and every other byte is `%XX` (upper-case hex). The result never contains
/// `/`, is never `.` or `..` (a leading `.` is escaped), and is never empty (`""` is `%`,
/// which no other name produces).
pub fn safe_name(name: &str) -> String {
    if name.is_empty() {
        return "%".to_string();
    }
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The journal directory of one instance.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the undo journal {path}: {source}")]
pub struct JournalError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// One repair's journal file, created at the first row it records.
#[derive(Debug)]
pub struct JournalFile {
    path: PathBuf,
    header: String,
    file: Option<File>,
    pub rows: u64,
}

impl Journal {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Journal { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Names the journal file of a repair; nothing is written until a row is recorded.
    ///
    /// The session settings come first, so nothing after them can reach the replica's
    /// binlog; every comment line is [`inert`]: the error text holds the duplicate *value*
    /// verbatim (newlines included), and a newline there would end the comment and run
    /// the rest when a DBA replays the journal.
    /// `position` identifies the failing transaction (see [`Journal::committed_at`]).
    pub fn start(&self, instance: &str, position: &str, about: &str) -> JournalFile {
        let stamp = crate::clock::file_stamp();
        let safe = safe_name(instance);
        JournalFile {
            path: self.dir.join(format!("{safe}-{stamp}.undo.sql")),
            header: format!(
                "{}\n-- repl-repair undo journal\n-- instance: {}\n{POSITION}{}\n-- {}\n-- Run on the replica with the mysql client to undo this repair.\n",
                crate::sql::SESSION_SETTINGS
                    .iter()
                    .map(|s| format!("{s};"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                inert(instance),
                inert(position),
                inert(about),
            ),
            file: None,
            rows: 0,
        }
    }

    /// Whether a journal in this directory records a *committed* repair of the
    /// transaction at `position`: then a rerun that finds nothing left to fix is looking
    /// at its own work (the agent died, or START SLAVE failed, after the COMMIT) and may
    /// simply restart the SQL thread.
    /// Journals in `exclude` (this run's own) are passed over.
    pub fn committed_at(&self, position: &str, exclude: &[PathBuf]) -> Option<PathBuf> {
        let want = format!("{POSITION}{}\n", inert(position));
        let entries = fs::read_dir(&self.dir).ok()?;
        for e in entries.flatten() {
            let path = e.path();
            if !path.to_string_lossy().ends_with(".undo.sql") || exclude.contains(&path) {
                continue;
            }
            // The position is in the header and the outcome is the last line: read the
            // two ends, not a journal of megabyte rows.
            let Some((head, tail)) = ends(&path, 8 << 10) else {
                continue;
            };
            if head.contains(&want)
                && tail
                    .lines()
                    .rev()
                    .find(|l| l.starts_with(OUTCOME))
                    .is_some_and(|l| l[OUTCOME.len()..].starts_with("committed"))
            {
                return Some(path);
            }
        }
        None
    }
}

/// The first and the last `n` bytes of a file, as text.
fn ends(path: &Path, n: u64) -> Option<(String, String)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut head = Vec::new();
    (&mut f).take(n).read_to_end(&mut head).ok()?;
    let mut tail = Vec::new();
    f.seek(SeekFrom::Start(len.saturating_sub(n))).ok()?;
    f.read_to_end(&mut tail).ok()?;
    Some((
        String::from_utf8_lossy(&head).into_owned(),
        String::from_utf8_lossy(&tail).into_owned(),
    ))
}

/// Journal comment line naming the failing transaction's position.
const POSITION: &str = "-- position: ";
/// Journal comment line saying how the repair ended.
const OUTCOME: &str = "-- outcome: ";

/// Text from data or names made inert for a one-line comment or log line: control
/// characters (newline, carriage return, escape, …) and backslashes become `\n`, `\r`,
/// `\x1b`, `\\`, so a value can neither end the comment nor forge a line.
pub fn inert(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A bounded, inert preview of a statement or message for logs, summaries and dead
/// letters: a multi-megabyte statement is cut, and says how long it was.
pub fn preview(s: &str, max: usize) -> String {
    if s.len() <= max {
        return inert(s).into_owned();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes in all)", inert(&s[..cut]), s.len())
}

impl JournalFile {
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|_| self.path.as_path())
    }

    fn err(&self, source: io::Error) -> JournalError {
        JournalError {
            path: self.path.clone(),
            source,
        }
    }

    fn write_durably(&mut self, text: &str) -> Result<(), JournalError> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                fs::create_dir_all(dir).map_err(|e| self.err(e))?;
            }
            let mut f = OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&self.path)
                .map_err(|e| self.err(e))?;
            f.write_all(self.header.as_bytes())
                .map_err(|e| self.err(e))?;
            self.file = Some(f);
            // The directory entry must survive a crash too.
            if let Some(dir) = self.path.parent()
                && let Ok(d) = File::open(dir)
            {
                let _ = d.sync_all();
            }
        }
        let res = match self.file.as_mut() {
            Some(f) => f.write_all(text.as_bytes()).and_then(|_| f.sync_data()),
            None => Ok(()),
        };
        res.map_err(|e| self.err(e))
    }

    /// Records replica rows about to be deleted, as the INSERTs that restore them.
    /// `columns` are the non-generated columns, in the order `values` holds them.
    ///
    /// Each statement is preceded by a `-- json:` comment line with the row as a column
    /// map (for tools; the mysql client skips it). Returns those maps for the audit.
    pub fn record_deleted(
        &mut self,
        table: &TableInfo,
        rows: &[Vec<mysql::Value>],
    ) -> Result<Vec<ColumnMap>, JournalError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let cols: Vec<usize> = (0..table.columns.len())
            .filter(|&i| !table.columns[i].generated)
            .collect();
        let names: Vec<String> = cols
            .iter()
            .map(|&i| table.columns[i].name.clone())
            .collect();
        let mut text = String::new();
        let mut maps = Vec::with_capacity(rows.len());
        for row in rows {
            // A large value goes into a session variable in chunks, so each statement of
            // the journal stays far below the stock client's and server's packet limit.
            let mut sets = Vec::new();
            let values: Vec<String> = cols
                .iter()
                .zip(row)
                .map(|(&i, v)| match v {
                    mysql::Value::Bytes(b) if b.len() > sql::BIG_VALUE => {
                        let var = format!("repl_repair_u{}", self.rows as usize + sets.len() + 1);
                        sets.extend(sql::set_variable_chunks(&var, b));
                        sql::variable_value(&var, &table.columns[i])
                    }
                    v => sql::mysql_literal(v, &table.columns[i]),
                })
                .collect();
            // The audit gets every value; the journal's comment line names large ones
            // only, so no line of it outgrows the client's line buffer.
            let map = json_row(
                table,
                cols.iter()
                    .zip(row)
                    .map(|(&i, v)| (i, json_mysql_value(v, &table.columns[i]))),
            );
            let line = if sets.is_empty() {
                map.clone()
            } else {
                json_row(
                    table,
                    cols.iter().zip(row).map(|(&i, v)| {
                        let json = match v {
                            mysql::Value::Bytes(b) if b.len() > sql::BIG_VALUE => {
                                let note = format!("({} bytes: see the INSERT below)", b.len());
                                let mut out = Vec::new();
                                crate::event::write_str(&mut out, &note);
                                crate::event::raw(out)
                            }
                            v => json_mysql_value(v, &table.columns[i]),
                        };
                        (i, json)
                    }),
                )
            };
            let restore = RestoreLine {
                op: "restore",
                schema: &table.schema,
                table: &table.name,
                row: &line,
            };
            text.push_str("-- json: ");
            text.push_str(&serde_json::to_string(&restore).unwrap_or_default());
            text.push('\n');
            for set in &sets {
                text.push_str(set);
                text.push_str(";\n");
            }
            text.push_str(&sql::insert("INSERT", table, &names, &values));
            text.push_str(";\n");
            maps.push(map);
        }
        self.write_durably(&text)?;
        self.rows += rows.len() as u64;
        Ok(maps)
    }

    /// Records rows a fix is about to insert, as the DELETEs that remove them again.
    pub fn record_inserted<'a>(
        &mut self,
        table: &TableInfo,
        identities: impl Iterator<Item = &'a str>,
    ) -> Result<(), JournalError> {
        let mut text = String::new();
        let mut n = 0;
        for identity in identities {
            text.push_str(&sql::delete(table, identity));
            text.push_str(" LIMIT 1;\n");
            n += 1;
        }
        self.write_durably(&text)?;
        self.rows += n;
        Ok(())
    }

    /// Closes the journal with how the repair ended, so a reader knows whether the
    /// statements above describe changes that were committed.
    pub fn finish(&mut self, outcome: &str) -> Result<(), JournalError> {
        if self.file.is_some() {
            self.write_durably(&format!("{OUTCOME}{}\n", inert(outcome)))?;
        }
        Ok(())
    }
}

/// The `-- json:` comment line above each restoring INSERT of the undo journal.
#[derive(Serialize)]
struct RestoreLine<'a> {
    op: &'a str,
    schema: &'a str,
    table: &'a str,
    row: &'a ColumnMap,
}

/// A value read back from the replica, as JSON (see [`crate::event`] for the rendering).
pub fn json_mysql_value(v: &mysql::Value, col: &ColumnInfo) -> Box<RawValue> {
    let mut out = Vec::new();
    crate::event::write_mysql_value(&mut out, v, &Column::new(col));
    crate::event::raw(out)
}

/// A value decoded from the binlog, as JSON (integers with the column's signedness).
pub fn json_binlog_value(v: &crate::binlog::Value, col: &ColumnInfo) -> Box<RawValue> {
    let mut out = Vec::new();
    crate::event::write_value(&mut out, v, &Column::new(col));
    crate::event::raw(out)
}

/// The column map of the columns a row carries.
pub fn json_row(t: &TableInfo, values: impl Iterator<Item = (usize, Box<RawValue>)>) -> ColumnMap {
    ColumnMap(
        values
            .filter_map(|(i, v)| t.columns.get(i).map(|c| (c.name.clone(), v)))
            .collect(),
    )
}

/// Where a repaired row came from, for the audit trail.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub instance: String,
    pub connection: String,
    pub relay_file: String,
    pub relay_pos: u64,
    pub primary_file: String,
    pub end_log_pos: u64,
    pub gtid: String,
    pub server_id: u32,
    pub errno: u32,
    pub plan_id: String,
    /// `relay` or `primary`: where the failing transaction was read.
    pub read_from: &'static str,
}

/// The audit trail: one JSON line per repaired row, shaped like a change event, in
/// `<journal dir>/<instance>/audit.jsonl`. Lines are buffered during the repair and
/// written (fsynced) only once it committed: the trail lists what really changed.
#[derive(Debug, Default)]
pub struct Audit {
    lines: Vec<String>,
}

impl Audit {
    pub fn row(
        &mut self,
        source: &Source,
        op: &str,
        table: &TableInfo,
        before: Option<ColumnMap>,
        after: Option<ColumnMap>,
    ) {
        let s = source;
        let ts = crate::clock::rfc3339_now();
        let event = ChangeEvent {
            op,
            schema: &table.schema,
            table: &table.name,
            before,
            after,
            source: EventSource {
                instance: Some(&s.instance),
                connection: Some(&s.connection),
                relay_file: Some(&s.relay_file),
                relay_pos: Some(s.relay_pos),
                primary_file: Some(&s.primary_file),
                end_log_pos: Some(s.end_log_pos),
                gtid: Some(&s.gtid),
                server_id: Some(s.server_id),
                read_from: Some(s.read_from),
                schema: Some(&table.schema),
                table: Some(&table.name),
                ..EventSource::default()
            },
            errno: Some(s.errno),
            plan_id: Some(&s.plan_id),
            ts: Some(&ts),
        };
        self.lines
            .push(serde_json::to_string(&event).unwrap_or_default());
    }

    /// Appends the buffered lines to `path`, durably.
    pub fn commit(&mut self, path: &Path) -> Result<(), JournalError> {
        if self.lines.is_empty() {
            return Ok(());
        }
        let err = |source| JournalError {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(err)?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        let mut text = self.lines.join("\n");
        text.push('\n');
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_data().map_err(err)?;
        self.lines.clear();
        Ok(())
    }
}

/// A dead letter: the incident, why it was not repaired, and the transaction's rows as
/// change events (the shape `decode` prints).
#[derive(Serialize)]
pub struct DeadLetter<'a> {
    pub instance: &'a str,
    pub connection: &'a str,
    pub errno: u32,
    pub error: &'a str,
    pub reason: &'a str,
    pub relay_file: &'a str,
    pub relay_pos: u64,
    pub primary_file: &'a str,
    pub end_log_pos: u64,
    pub gtid: &'a str,
    pub ts: &'a str,
    pub rows: &'a [Box<RawValue>],
    /// Why `rows` is not the whole transaction, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_note: Option<&'a str>,
}

/// Writes a transaction the agent could not repair to `<dir>/<stamp>.json`: the
/// incident, the reason, and its decoded rows. Replication stays stopped; a human
/// decides. Never a silent skip.
pub fn write_dead_letter(
    dir: &Path,
    source: &Source,
    reason: &str,
    message: &str,
    rows: &[Box<RawValue>],
    rows_note: Option<&str>,
) -> Result<PathBuf, JournalError> {
    let path = dir.join(format!(
        "{}-{}.json",
        crate::clock::file_stamp(),
        source.relay_pos
    ));
    let err = |source| JournalError {
        path: path.clone(),
        source,
    };
    fs::create_dir_all(dir).map_err(err)?;
    let s = source;
    let ts = crate::clock::rfc3339_now();
    let letter = DeadLetter {
        instance: &s.instance,
        connection: &s.connection,
        errno: s.errno,
        error: message,
        reason,
        relay_file: &s.relay_file,
        relay_pos: s.relay_pos,
        primary_file: &s.primary_file,
        end_log_pos: s.end_log_pos,
        gtid: &s.gtid,
        ts: &ts,
        rows,
        rows_note,
    };
    let mut body = serde_json::to_vec(&letter).map_err(|e| err(io::Error::other(e)))?;
    body.push(b'\n');
    let mut f = File::create(&path).map_err(err)?;
    f.write_all(&body).map_err(err)?;
    f.sync_all().map_err(err)?;
    Ok(path)
}

/// A log file that rotates itself by size (`name` → `name.1` → … → `name.<keep>`), so a
/// daemon left running for months neither fills the disk nor needs logrotate, and the
/// current file keeps the name operators and the original tool expect.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    written: u64,
    max: u64,
    keep: u32,
    /// The [`REOPEN`] generation this file was opened in.
    generation: u64,
}

/// Bumped on SIGHUP: every [`RotatingFile`] reopens its path before its next write, so
/// logrotate (rename, then SIGHUP) works as with any daemon.
static REOPEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Asks every log file to reopen its path at its next write (the SIGHUP convention).
pub fn request_reopen() {
    REOPEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn reopen_generation() -> u64 {
    REOPEN.load(std::sync::atomic::Ordering::Relaxed)
}

impl RotatingFile {
    /// 64 MiB per file, 5 old files kept.
    pub const MAX: u64 = 64 << 20;
    pub const KEEP: u32 = 5;

    pub fn open(path: impl Into<PathBuf>, max: u64, keep: u32) -> io::Result<Self> {
        let path = path.into();
        let generation = reopen_generation();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        Ok(RotatingFile {
            path,
            file,
            written,
            max,
            keep,
            generation,
        })
    }

    /// Opens the path again (after logrotate renamed the file away); writes go on to the
    /// old file when the path cannot be opened, so no line is lost.
    pub fn reopen(&mut self) -> io::Result<()> {
        self.generation = reopen_generation();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = file.metadata()?.len();
        self.file = file;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let name = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        for i in (1..self.keep).rev() {
            let _ = fs::rename(name(i), name(i + 1));
        }
        fs::rename(&self.path, name(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.generation != reopen_generation() {
            let _ = self.reopen();
        }
        if self.written > 0 && self.written + buf.len() as u64 > self.max {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inert_text_cannot_end_a_comment_line() {
        let evil = "bob\nCREATE DATABASE pwned; -- \r\x1b[2J\\";
        let out = inert(evil);
        assert!(!out.chars().any(|c| c.is_control()), "{out}");
        assert_eq!(out, "bob\\nCREATE DATABASE pwned; -- \\r\\u{1b}[2J\\\\");
        assert_eq!(inert("plain"), "plain");
    }

    #[test]
    fn preview_is_bounded_and_says_the_length() {
        let long = "x".repeat(10_000);
        let p = preview(&long, 100);
        assert!(p.len() < 140, "{p}");
        assert!(p.ends_with("(10000 bytes in all)"), "{p}");
        assert_eq!(preview("é\n", 100), "é\\n");
        // Never cut inside a character.
        assert!(preview(&"é".repeat(100), 3).starts_with('é'));
    }

    #[test]
    fn journal_header_sets_the_session_first_and_keeps_names_inert() {
        let dir = std::env::temp_dir().join(format!("rr-jh-{}", std::process::id()));
        let j = Journal::new(&dir);
        let mut f = j.start(
            "a\nDROP TABLE x;",
            "relay.000001:4",
            "Duplicate entry 'bob\nCREATE DATABASE pwned; -- '",
        );
        let t = crate::schema::TableInfo {
            schema: "s".into(),
            name: "t".into(),
            columns: vec![],
            unique_keys: vec![],
            mapped: 0,
        };
        f.record_inserted(&t, ["1"].into_iter()).unwrap();
        f.finish("rolled back: x\ny").unwrap();
        let text = fs::read_to_string(f.path().unwrap()).unwrap();
        assert!(text.starts_with("SET SESSION sql_log_bin = 0;"), "{text}");
        for line in text.lines() {
            assert!(
                line.starts_with("-- ")
                    || line.starts_with("SET SESSION ")
                    || line.starts_with("DELETE "),
                "a line that is neither a comment nor SQL the tool built: {line:?}"
            );
        }
        assert!(
            j.committed_at("relay.000001:4", &[]).is_none(),
            "rolled back is not committed"
        );
        let mut g = j.start("a", "relay.000001:4", "x");
        g.record_inserted(&t, ["1"].into_iter()).unwrap();
        g.finish("committed").unwrap();
        assert_eq!(j.committed_at("relay.000001:4", &[]).as_deref(), g.path());
        assert!(j.committed_at("relay.000001:40", &[]).is_none());
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn rotating_file_keeps_the_name_and_n_old_files() {
        let dir = std::env::temp_dir().join(format!("rr-rot-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.log");
        let mut f = RotatingFile::open(&p, 10, 2).unwrap();
        for i in 0..5 {
            writeln!(f, "line {i}..").unwrap();
        }
        assert_eq!(fs::read_to_string(&p).unwrap(), "line 4..\n");
        assert_eq!(
            fs::read_to_string(dir.join("x.log.1")).unwrap(),
            "line 3..\n"
        );
        assert!(dir.join("x.log.2").exists());
        assert!(!dir.join("x.log.3").exists());
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reopen_after_a_rename_writes_to_the_original_name() {
        let dir = std::env::temp_dir().join(format!("rr-reopen-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.log");
        let mut f = RotatingFile::open(&p, 1 << 20, 2).unwrap();
        writeln!(f, "before").unwrap();
        fs::rename(&p, dir.join("x.log.old")).unwrap();
        request_reopen();
        writeln!(f, "after").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "after\n");
        assert_eq!(
            fs::read_to_string(dir.join("x.log.old")).unwrap(),
            "before\n"
        );
        fs::remove_dir_all(&dir).ok();
    }

    /// Decodes [`safe_name`] back, proving it loses nothing.
    fn unescape(s: &str) -> Option<String> {
        if s == "%" {
            return Some(String::new());
        }
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }

    #[test]
    fn safe_name_is_injective_and_one_harmless_path_component() {
        let names = [
            "",
            ".",
            "..",
            "...",
            "../../x",
            "/abs",
            "db.1",
            "db_1",
            "db%2E1",
            "db%1",
            "%",
            "a/b",
            "a%2Fb",
            "3306",
            "host:3306",
            "ünï",
            "a b",
            "-",
            ".hidden",
            "x.",
            "/run/mysqld/a.sock",
            "\\",
            "\u{7f}",
        ];
        let mut seen = std::collections::HashMap::new();
        for n in names {
            let s = safe_name(n);
            assert!(!s.is_empty(), "{n:?}");
            assert!(!s.contains('/') && !s.contains('\0'), "{n:?} -> {s}");
            assert!(s != "." && s != "..", "{n:?} -> {s}");
            assert!(!s.starts_with('.'), "{n:?} -> {s}: hidden file");
            assert_eq!(
                Path::new(&s).components().count(),
                1,
                "{n:?} -> {s} is one component"
            );
            assert_eq!(
                unescape(&s).as_deref(),
                Some(n),
                "{n:?} -> {s} decodes back"
            );
            if let Some(other) = seen.insert(s.clone(), n) {
                panic!("{other:?} and {n:?} both map to {s}");
            }
        }
        assert_eq!(safe_name("3306"), "3306", "ports stay as they were");
        assert_eq!(safe_name("db.1"), "db.1");
        assert_eq!(safe_name("../../x"), "%2E.%2F..%2Fx");
    }
}
