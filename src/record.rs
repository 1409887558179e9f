//! Durable record of what a repair changed: the undo journal.
//!
//! Before a fix deletes a replica row, the row is read (locked, on the applying
//! connection) and written here as an `INSERT` that puts it back, and the file is
//! fsynced; only then does the DELETE run. Each row a fix inserts is recorded as the
//! `DELETE` that removes it again. The file is a script for the `mysql` client: piping it
//! into the replica undoes the repair.

use crate::schema::TableInfo;
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
