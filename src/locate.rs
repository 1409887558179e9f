//! From an incident to the failing transaction's events, across relay files.
//!
//! Starts at `Relay_Log_File:Relay_Log_Pos` (the start of the failing transaction) and
//! reads forward to its commit, following rotation through the relay-log index. The
//! failing event is recognised by its header: from the primary (server_id =
//! Master_Server_Id) with log_pos = the error's `end_log_pos`. Offset arithmetic between
//! primary and relay coordinates is never used: it is wrong whenever the relay log holds
//! decompressed events, lacks Annotate_rows, or rotates mid-transaction (MYSQL_FACTS.md).

use crate::binlog::events::{self, Decoded, TableMaps};
use crate::binlog::rows::RowsEvent;
use crate::binlog::table_map::TableMap;
use crate::binlog::{self, BinlogReader, EventType};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where a replica keeps its relay logs.
#[derive(Debug, Clone)]
pub struct RelayLogs {
    /// `@@datadir`: relative names in SHOW SLAVE STATUS and in the index resolve here.
    pub datadir: PathBuf,
    /// The relay-log index file, listing the relay files in order.
    pub index: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error(transparent)]
    Binlog(#[from] binlog::Error),
    #[error("cannot read relay-log index {path}: {source}")]
    Index {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("relay log {file} is not listed in the index {index}")]
    NotInIndex { file: PathBuf, index: PathBuf },
    #[error(
        "the failing transaction starting at {file}:{pos} does not end within the relay logs (read up to {end_file}:{end_pos}); the IO thread may still be receiving it"
    )]
    Incomplete {
        file: PathBuf,
        pos: u64,
        end_file: PathBuf,
        end_pos: u64,
    },
    #[error(
        "no event with end_log_pos {end_log_pos} from server {server_id} in the transaction at {file}:{pos}; the relay log does not match the error"
    )]
    FailingEventNotFound {
        file: PathBuf,
        pos: u64,
        end_log_pos: u64,
        server_id: u32,
    },
}

impl RelayLogs {
    pub fn resolve(&self, name: &str) -> PathBuf {
        let p = Path::new(name);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.datadir.join(p)
        }
    }

    /// The relay file listed after `current` in the index, if any yet.
    pub fn next_after(&self, current: &Path) -> Result<Option<PathBuf>, LocateError> {
        let text = std::fs::read_to_string(&self.index).map_err(|source| LocateError::Index {
            path: self.index.clone(),
            source,
        })?;
        let files: Vec<PathBuf> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| self.resolve(l.trim()))
            .collect();
        let same = |a: &Path, b: &Path| a.file_name() == b.file_name();
        match files.iter().position(|f| same(f, current)) {
            Some(i) => Ok(files.get(i + 1).cloned()),
            None => Err(LocateError::NotInIndex {
                file: current.to_path_buf(),
                index: self.index.clone(),
            }),
        }
    }
}

/// What to look for, from the incident.
#[derive(Debug, Clone)]
pub struct Target {
    pub relay_file: PathBuf,
    pub relay_pos: u64,
    /// The primary's server id; events written by the replica itself are not part of the
    /// transaction. 0 = unknown, accept every event.
    pub master_server_id: u32,
    pub end_log_pos: Option<u64>,
    /// How long to wait for the IO thread to finish writing the transaction.
    pub tail_wait: Duration,
}

/// What was read, for the record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Located {
    pub gtid: Option<String>,
    pub events: u64,
    pub rows_events: u64,
    pub failing_event: Option<(PathBuf, u64)>,
    pub end_file: PathBuf,
    pub end_pos: u64,
    pub files: u64,
    /// Committed transactions passed over before the failing one (MySQL MTS gaps).
    pub skipped_transactions: u64,
}

/// Where a rows event was read, for the callback of [`read_transaction`].
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    pub file: &'a Path,
    pub offset: u64,
    /// Transactions passed over before this one (see [`read_transaction`]); a callback
    /// that sees it change must forget what it gathered from the earlier transaction.
    pub transaction: u64,
    /// The event comes before the failing event in its transaction: the SQL thread
    /// applied it without error before it failed.
    pub before_failing: bool,
}

/// Streams the failing transaction's rows events to `on_rows`, in order, never holding
/// more than one event in memory. Returns when the commit has been read.
///
/// On MySQL's multi-threaded replica `Relay_Log_Pos` is only a low-water mark: later
/// transactions may have committed and the failing one may come after it. So when a
/// transaction ends without the failing event (known by `end_log_pos`), it is passed
/// over and the next one is read, until the failing event's transaction is complete.
pub fn read_transaction<E>(
    logs: &RelayLogs,
    target: &Target,
    mut on_rows: impl FnMut(&TableMap, &RowsEvent, &Position<'_>) -> Result<(), E>,
) -> Result<Result<Located, E>, LocateError> {
    let mut reader = BinlogReader::open_at(&target.relay_file, target.relay_pos)?;
    let mut path = target.relay_file.clone();
    let mut maps = TableMaps::default();
    let mut out = Located {
        files: 1,
        ..Located::default()
    };
    let mut in_txn = false;
    let mut standalone = false;
    let mut waited_since: Option<Instant> = None;
    loop {
        let boundary = reader.position();
        let ev = match reader.next_event() {
            Ok(Some(ev)) => ev,
            Ok(None) | Err(binlog::Error::Truncated { .. }) => {
                // End of this file: move on if the index lists a next one, else wait for
                // the IO thread, which may still be writing the transaction.
                if let Some(next) = logs.next_after(reader.path())? {
                    reader = BinlogReader::open(&next)?;
                    path = next;
                    out.files += 1;
                    continue;
                }
                let since = *waited_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= target.tail_wait {
                    return Err(LocateError::Incomplete {
                        file: target.relay_file.clone(),
                        pos: target.relay_pos,
                        end_file: path.clone(),
                        end_pos: boundary,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
                reader.seek(boundary)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        waited_since = None;
        let h = ev.header;
        if h.event_type == EventType::FORMAT_DESCRIPTION
            || h.event_type == EventType::ROTATE
            || (target.master_server_id != 0 && h.server_id != target.master_server_id)
        {
            continue;
        }
        out.events += 1;
        let offset = ev.offset;
        if target.end_log_pos == Some(u64::from(h.log_pos)) && out.failing_event.is_none() {
            out.failing_event = Some((path.clone(), offset));
        }
        let decoded = events::decode(&ev, &mut maps).map_err(|kind| binlog::Error::Event {
            path: path.clone(),
            offset,
            event: h.event_type,
            kind,
        })?;
        let mut ends = false;
        for decoded in decoded.flatten() {
            ends = match decoded {
                Decoded::Gtid {
                    gtid,
                    standalone: s,
                } => {
                    if in_txn {
                        // A new transaction began: the previous one ended without a commit
                        // event we recognise (non-transactional tables).
                        true
                    } else {
                        out.gtid = Some(gtid);
                        standalone = s;
                        in_txn = true;
                        false
                    }
                }
                Decoded::Query { sql, .. } => {
                    let s = sql.trim().to_ascii_uppercase();
                    if s == "BEGIN" || s.starts_with("XA START") {
                        in_txn = true;
                        false
                    } else {
                        s == "COMMIT"
                            || s == "ROLLBACK"
                            || standalone
                            || !in_txn
                            || s.starts_with("XA END")
                    }
                }
                Decoded::Xid(_) => true,
                Decoded::Rows(rows) => {
                    out.rows_events += 1;
                    let map = maps
                        .get(rows.table_id)
                        .ok_or_else(|| binlog::Error::Event {
                            path: path.clone(),
                            offset,
                            event: h.event_type,
                            kind: binlog::DecodeErrorKind::Invalid(
                                "rows event without TABLE_MAP".into(),
                            ),
                        })?;
                    let at = Position {
                        file: &path,
                        offset,
                        transaction: out.skipped_transactions,
                        before_failing: target.end_log_pos.is_some() && out.failing_event.is_none(),
                    };
                    if let Err(e) = on_rows(map, &rows, &at) {
                        return Ok(Err(e));
                    }
                    // A rows event outside BEGIN…COMMIT (non-transactional engine, no GTID)
                    // ends with the statement.
                    !in_txn && rows.flags & binlog::rows::STMT_END_F != 0
                }
                _ => false,
            };
            if ends {
                break;
            }
        }
        if ends {
            if target.end_log_pos.is_some() && out.failing_event.is_none() {
                out.skipped_transactions += 1;
                out.gtid = None;
                in_txn = false;
                standalone = false;
                maps.clear();
                continue;
            }
            out.end_file = path.clone();
            out.end_pos = reader.position();
            break;
        }
    }
    if let Some(end_log_pos) = target.end_log_pos
        && out.failing_event.is_none()
    {
        return Err(LocateError::FailingEventNotFound {
            file: target.relay_file.clone(),
            pos: target.relay_pos,
            end_log_pos,
            server_id: target.master_server_id,
        });
    }
    Ok(Ok(out))
}
