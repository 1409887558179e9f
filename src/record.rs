//! Durable record of what a repair changed: the undo journal.
//!
//! Before a fix deletes a replica row, the row is read (locked, on the applying
//! connection) and written here as an `INSERT` that puts it back, and the file is
//! fsynced; only then does the DELETE run. Each row a fix inserts is recorded as the
//! `DELETE` that removes it again. The file is a script for the `mysql` client: piping it
//! into the replica undoes the repair.

use crate::schema::{ColumnInfo, TableInfo};
use crate::sql;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

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
    pub fn start(&self, instance: &str, about: &str) -> JournalFile {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let stamp = format!("{}.{:06}", now.as_secs(), now.subsec_micros());
        let safe: String = instance
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        JournalFile {
            path: self.dir.join(format!("{safe}-{stamp}.undo.sql")),
            header: format!(
                "-- repl-repair undo journal\n-- instance: {instance}\n-- {about}\n-- Run on the replica with the mysql client to undo this repair.\n\
                 SET SESSION sql_log_bin = 0;\nSET SESSION time_zone = '+00:00';\nSET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\nSET SESSION foreign_key_checks = 0;\n"
            ),
            file: None,
            rows: 0,
        }
    }
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
    pub fn record_deleted(
        &mut self,
        table: &TableInfo,
        rows: &[Vec<mysql::Value>],
    ) -> Result<(), JournalError> {
        if rows.is_empty() {
            return Ok(());
        }
        let cols: Vec<&crate::schema::ColumnInfo> =
            table.columns.iter().filter(|c| !c.generated).collect();
        let names: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
        let mut text = String::new();
        for row in rows {
            let values: Vec<String> = cols
                .iter()
                .zip(row)
                .map(|(c, v)| sql::mysql_literal(v, c))
                .collect();
            text.push_str(&sql::insert("INSERT", table, &names, &values));
            text.push_str(";\n");
        }
        self.write_durably(&text)?;
        self.rows += rows.len() as u64;
        Ok(())
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
            self.write_durably(&format!("-- outcome: {outcome}\n"))?;
        }
        Ok(())
    }
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Bytes as JSON: text when it is UTF-8 in a text column, else `"0x<hex>"`.
fn json_bytes(b: &[u8], text: bool) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if text => json_string(s),
        _ => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            json_string(&format!("0x{hex}"))
        }
    }
}

fn json_number(f: f64) -> String {
    if f.is_finite() {
        format!("{f}")
    } else {
        json_string(&f.to_string())
    }
}

/// A value read back from the replica, as JSON.
pub fn json_mysql_value(v: &mysql::Value, col: &ColumnInfo) -> String {
    use mysql::Value as M;
    let text = col.charset.as_deref().is_some_and(|c| c != "binary");
    match v {
        M::NULL => "null".into(),
        M::Int(i) => i.to_string(),
        M::UInt(u) => u.to_string(),
        M::Float(f) => json_number(f64::from(*f)),
        M::Double(f) => json_number(*f),
        M::Bytes(b) => {
            let numeric = matches!(col.data_type.as_str(), "decimal" | "numeric");
            json_bytes(b, text || numeric)
        }
        other => {
            let lit = sql::mysql_literal(other, col);
            json_string(lit.trim_matches('\''))
        }
    }
}

/// A value decoded from the binlog, as JSON (integers with the column's signedness).
pub fn json_binlog_value(v: &crate::binlog::Value, col: &ColumnInfo) -> String {
    use crate::binlog::Value as V;
    let text = col.charset.as_deref().is_some_and(|c| c != "binary");
    match v {
        V::Null => "null".into(),
        V::Int { .. } | V::Year(_) | V::Enum(_) | V::Set(_) | V::Bit(_) => {
            sql::literal(v, col).unwrap_or_else(|_| "null".into())
        }
        V::Float(f) => json_number(f64::from(*f)),
        V::Double(f) => json_number(*f),
        V::Decimal(s) => json_string(s),
        V::Bytes(b) => json_bytes(b, text),
        V::Json(b) | V::Geometry(b) => json_bytes(b, false),
        other => {
            let lit = sql::literal(other, col).unwrap_or_default();
            json_string(lit.trim_matches('\''))
        }
    }
}

/// `{"col": value, ...}` for the columns a row carries.
pub fn json_row(t: &TableInfo, values: impl Iterator<Item = (usize, String)>) -> String {
    let fields: Vec<String> = values
        .filter_map(|(i, v)| {
            t.columns
                .get(i)
                .map(|c| format!("{}:{v}", json_string(&c.name)))
        })
        .collect();
    format!("{{{}}}", fields.join(","))
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
        before: Option<String>,
        after: Option<String>,
    ) {
        let s = source;
        self.lines.push(format!(
            "{{\"op\":{},\"before\":{},\"after\":{},\"source\":{{\"instance\":{},\"connection\":{},\"relay_file\":{},\"relay_pos\":{},\"primary_file\":{},\"end_log_pos\":{},\"gtid\":{},\"server_id\":{},\"schema\":{},\"table\":{}}},\"errno\":{},\"plan_id\":{},\"ts\":{}}}",
            json_string(op),
            before.unwrap_or_else(|| "null".into()),
            after.unwrap_or_else(|| "null".into()),
            json_string(&s.instance),
            json_string(&s.connection),
            json_string(&s.relay_file),
            s.relay_pos,
            json_string(&s.primary_file),
            s.end_log_pos,
            json_string(&s.gtid),
            s.server_id,
            json_string(&table.schema),
            json_string(&table.name),
            s.errno,
            json_string(&s.plan_id),
            json_string(&crate::watch::utc_now()),
        ));
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
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

/// Writes a transaction the agent could not repair to `<dir>/<stamp>.json`: the
/// incident, the reason, and its decoded rows. Replication stays stopped; a human
/// decides. Never a silent skip.
pub fn write_dead_letter(
    dir: &Path,
    source: &Source,
    reason: &str,
    message: &str,
    rows_json: &str,
) -> Result<PathBuf, JournalError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let path = dir.join(format!(
        "{}.{:06}-{}.json",
        now.as_secs(),
        now.subsec_micros(),
        source.relay_pos
    ));
    let err = |source| JournalError {
        path: path.clone(),
        source,
    };
    fs::create_dir_all(dir).map_err(err)?;
    let s = source;
    let body = format!(
        "{{\"instance\":{},\"connection\":{},\"errno\":{},\"error\":{},\"reason\":{},\"relay_file\":{},\"relay_pos\":{},\"primary_file\":{},\"end_log_pos\":{},\"gtid\":{},\"ts\":{},\"rows\":{rows_json}}}\n",
        json_string(&s.instance),
        json_string(&s.connection),
        s.errno,
        json_string(message),
        json_string(reason),
        json_string(&s.relay_file),
        s.relay_pos,
        json_string(&s.primary_file),
        s.end_log_pos,
        json_string(&s.gtid),
        json_string(&crate::watch::utc_now()),
    );
    let mut f = File::create(&path).map_err(err)?;
    f.write_all(body.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    Ok(path)
}
