//! From an incident to the failing transaction's events, across relay files.
//!
//! Starts at `Relay_Log_File:Relay_Log_Pos` (the start of the failing transaction) and
//! reads forward to its commit, following rotation through the relay-log index. The
//! failing event is recognised by its header: from the primary (server_id =
//! Master_Server_Id) with log_pos = the error's `end_log_pos`. Offset arithmetic between
//! primary and relay coordinates is never used: it is wrong whenever the relay log holds
//! decompressed events, lacks Annotate_rows, or rotates mid-transaction (MYSQL_FACTS.md).

use crate::binlog::rows::RowsEvent;
use crate::binlog::table_map::TableMap;
use crate::binlog::{self, Decoded, DecodedEvents, EventType};
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

/// Where an event stands in the stream of transactions, from its decoded content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Opens or continues the current transaction.
    Within,
    /// The last event of the current transaction (COMMIT, XID, a standalone statement).
    EndsWith,
    /// The current transaction ended before this event, which opens the next one: a GTID
    /// while a transaction is open (no commit event we recognise, or a transaction the IO
    /// thread relayed only in part before it reconnected and sent it again).
    EndsBefore,
}

/// Transaction boundaries, fed one decoded event at a time. Pure, so its cases are unit
/// tested on small event sequences.
#[derive(Debug, Default)]
struct Boundaries {
    in_txn: bool,
    standalone: bool,
    gtid: Option<String>,
}

impl Boundaries {
    fn step(&mut self, d: &Decoded) -> Step {
        match d {
            Decoded::Gtid { gtid, standalone } => {
                if self.in_txn {
                    // Not consumed: the caller closes the current transaction and feeds
                    // this GTID again to open the next one.
                    return Step::EndsBefore;
                }
                self.gtid = Some(gtid.clone());
                self.standalone = *standalone;
                self.in_txn = true;
                Step::Within
            }
            Decoded::Query { sql, .. } => {
                let s = sql.trim().to_ascii_uppercase();
                if s == "BEGIN" || s.starts_with("XA START") {
                    self.in_txn = true;
                    Step::Within
                } else if s == "COMMIT"
                    || s == "ROLLBACK"
                    || self.standalone
                    || !self.in_txn
                    || s.starts_with("XA END")
                {
                    Step::EndsWith
                } else {
                    Step::Within
                }
            }
            Decoded::Xid(_) => Step::EndsWith,
            // A rows event outside BEGIN…COMMIT (non-transactional engine, no GTID) ends
            // with its statement.
            Decoded::Rows(rows) if !self.in_txn && rows.flags & binlog::rows::STMT_END_F != 0 => {
                Step::EndsWith
            }
            _ => Step::Within,
        }
    }

    fn reset(&mut self) {
        *self = Boundaries::default();
    }
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
    read_transaction_events(logs, target, |ev, map, at| match (&ev.decoded, map) {
        (Decoded::Rows(rows), Some(map)) => on_rows(map, rows, at),
        _ => Ok(()),
    })
}

/// [`read_transaction`] with every event of the transaction handed to `on_event` (a rows
/// event with its TABLE_MAP): the statement path reads QUERY events through the same
/// walk and the same transaction boundaries.
pub fn read_transaction_events<E>(
    logs: &RelayLogs,
    target: &Target,
    mut on_event: impl FnMut(&binlog::DecodedEvent, Option<&TableMap>, &Position<'_>) -> Result<(), E>,
) -> Result<Result<Located, E>, LocateError> {
    let mut events = DecodedEvents::open_at(&target.relay_file, target.relay_pos)?;
    let mut out = Located {
        files: 1,
        ..Located::default()
    };
    let mut txn = Boundaries::default();
    let mut waited_since: Option<Instant> = None;
    loop {
        let ev = match events.next_event() {
            Ok(Some(ev)) => ev,
            Ok(None) | Err(binlog::Error::Truncated { .. }) => {
                // End of this file: move on if the index lists a next one, else wait for
                // the IO thread, which may still be writing the transaction (a truncated
                // event leaves the reader at its start, to be read again).
                if let Some(next) = logs.next_after(events.path())? {
                    events.next_file(&next)?;
                    out.files += 1;
                    continue;
                }
                let since = *waited_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= target.tail_wait {
                    return Err(LocateError::Incomplete {
                        file: target.relay_file.clone(),
                        pos: target.relay_pos,
                        end_file: events.path().to_path_buf(),
                        end_pos: events.position(),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
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
        let mut step = txn.step(&ev.decoded);
        if step == Step::EndsBefore {
            if target.end_log_pos.is_none() || out.failing_event.is_some() {
                // The transaction read ends where this event begins.
                out.end_file = ev.file.to_path_buf();
                out.end_pos = ev.offset;
                break;
            }
            // Passed over without its failing event: this GTID opens the next
            // transaction, so it is read again as its first event, not swallowed.
            out.skipped_transactions += 1;
            txn.reset();
            events.clear_table_maps();
            step = txn.step(&ev.decoded);
        }
        if ev.inner.is_none() {
            out.events += 1;
        }
        if target.end_log_pos == Some(u64::from(h.log_pos)) && out.failing_event.is_none() {
            out.failing_event = Some((ev.file.to_path_buf(), ev.offset));
        }
        out.gtid.clone_from(&txn.gtid);
        let map = match &ev.decoded {
            Decoded::Rows(rows) => {
                out.rows_events += 1;
                Some(
                    events
                        .table_map(rows.table_id)
                        .ok_or_else(|| binlog::Error::Event {
                            path: ev.file.to_path_buf(),
                            offset: ev.offset,
                            event: h.event_type,
                            kind: binlog::DecodeErrorKind::Invalid(
                                "rows event without TABLE_MAP".into(),
                            ),
                        })?,
                )
            }
            _ => None,
        };
        let at = Position {
            file: &ev.file,
            offset: ev.offset,
            transaction: out.skipped_transactions,
            before_failing: target.end_log_pos.is_some() && out.failing_event.is_none(),
        };
        if let Err(e) = on_event(&ev, map, &at) {
            return Ok(Err(e));
        }
        if step == Step::EndsWith {
            if target.end_log_pos.is_some() && out.failing_event.is_none() {
                out.skipped_transactions += 1;
                txn.reset();
                events.clear_table_maps();
                continue;
            }
            out.end_file = ev.file.to_path_buf();
            out.end_pos = ev.end;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::rows::{RowOp, STMT_END_F};

    fn gtid(g: &str, standalone: bool) -> Decoded {
        Decoded::Gtid {
            gtid: g.into(),
            standalone,
        }
    }

    fn query(sql: &str) -> Decoded {
        Decoded::Query {
            schema: "db".into(),
            sql: sql.into(),
        }
    }

    fn rows(flags: u16) -> Decoded {
        Decoded::Rows(RowsEvent {
            table_id: 1,
            flags,
            op: RowOp::Insert,
            rows: Vec::new(),
        })
    }

    fn steps(events: &[Decoded]) -> Vec<Step> {
        let mut b = Boundaries::default();
        events.iter().map(|d| b.step(d)).collect()
    }

    use Step::{EndsBefore, EndsWith, Within};

    #[test]
    fn mariadb_gtid_transaction_ends_with_xid() {
        let s = steps(&[
            gtid("0-1-5", false),
            rows(0),
            rows(STMT_END_F),
            Decoded::Xid(7),
        ]);
        assert_eq!(s, [Within, Within, Within, EndsWith]);
    }

    #[test]
    fn mysql_begin_commit_without_gtid() {
        let s = steps(&[query("BEGIN"), rows(STMT_END_F), query("COMMIT")]);
        assert_eq!(s, [Within, Within, EndsWith]);
    }

    #[test]
    fn standalone_ddl_ends_with_its_statement() {
        let s = steps(&[gtid("0-1-6", true), query("CREATE TABLE t (a INT)")]);
        assert_eq!(s, [Within, EndsWith]);
    }

    #[test]
    fn statement_outside_a_transaction_ends_alone() {
        assert_eq!(steps(&[rows(0), rows(STMT_END_F)]), [Within, EndsWith]);
        assert_eq!(steps(&[query("DROP TABLE t")]), [EndsWith]);
    }

    #[test]
    fn gtid_inside_an_open_transaction_ends_it_before() {
        let mut b = Boundaries::default();
        assert_eq!(b.step(&gtid("0-1-5", false)), Within);
        assert_eq!(b.step(&rows(STMT_END_F)), Within);
        assert_eq!(b.step(&gtid("0-1-6", false)), EndsBefore);
        // Not consumed: the state still describes the transaction that ended.
        assert_eq!(b.gtid.as_deref(), Some("0-1-5"));
        b.reset();
        assert_eq!(b.step(&gtid("0-1-6", false)), Within);
        assert_eq!(b.gtid.as_deref(), Some("0-1-6"));
        // Inside the new transaction a statement does not end it.
        assert_eq!(b.step(&rows(STMT_END_F)), Within);
    }

    const TYPES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/mariadb-10.11/types/replica-relay-bin.000002"
    );

    /// Byte ranges of events in the `types` fixture's second relay file (MariaDB 10.11,
    /// CRC32): replica FDE + rotate + primary FDE; GTID 0-1-9, its TABLE_MAP and
    /// WRITE_ROWS; GTID 0-1-12, TABLE_MAP, UPDATE_ROWS (log_pos 4974); TABLE_MAP,
    /// DELETE_ROWS (log_pos 5292) of GTID 0-1-13; XID.
    const HEAD: (usize, usize) = (4, 557);
    const PARTIAL_9: (usize, usize) = (1570, 2311);
    const GTID_12: (usize, usize) = (2883, 3176);
    const DELETE_13: (usize, usize) = (3249, 3438);
    const XID_13: (usize, usize) = (3438, 3469);

    /// A relay log built from real events: a transaction the IO thread relayed in part
    /// (no XID), then one of two statements (UPDATE then DELETE) that fails on its DELETE.
    fn relay_with_partial_transaction(dir: &Path) -> (RelayLogs, PathBuf, u64) {
        let src = std::fs::read(TYPES).unwrap();
        let mut out = b"\xfebin".to_vec();
        for (a, b) in [HEAD, PARTIAL_9, GTID_12, DELETE_13, XID_13] {
            out.extend_from_slice(&src[a..b]);
        }
        std::fs::create_dir_all(dir).unwrap();
        let relay = dir.join("relay-bin.000001");
        std::fs::write(&relay, &out).unwrap();
        let index = dir.join("relay-bin.index");
        std::fs::write(&index, "./relay-bin.000001\n").unwrap();
        let logs = RelayLogs {
            datadir: dir.to_path_buf(),
            index,
        };
        (logs, relay, (HEAD.1 - HEAD.0 + 4) as u64)
    }

    fn scratch(name: &str) -> PathBuf {
        let d = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/tmp")
            .join(format!("locate-{name}"));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// Issue #11: the GTID that ends a passed-over transaction is the first event of the
    /// next one. Swallowed, the next transaction lost its GTID and, with no transaction
    /// open, ended at its first statement: the failing DELETE came back alone, without
    /// the UPDATE before it.
    #[test]
    fn gtid_ending_a_skipped_transaction_opens_the_next_one() {
        let (logs, relay, start) = relay_with_partial_transaction(&scratch("swallow"));
        let target = Target {
            relay_file: relay.clone(),
            relay_pos: start,
            master_server_id: 1,
            end_log_pos: Some(5292),
            tail_wait: Duration::ZERO,
        };
        let mut seen = Vec::new();
        let located = read_transaction(&logs, &target, |map, rows, at| {
            seen.push((
                map.table.clone(),
                rows.op,
                at.transaction,
                at.before_failing,
            ));
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(located.skipped_transactions, 1);
        assert_eq!(located.gtid.as_deref(), Some("0-1-12"));
        assert_eq!(
            seen,
            [
                ("types".to_string(), RowOp::Insert, 0, true),
                ("types".to_string(), RowOp::Update, 1, true),
                ("types".to_string(), RowOp::Delete, 1, false),
            ]
        );
        let len = std::fs::metadata(&relay).unwrap().len();
        assert_eq!((located.end_file, located.end_pos), (relay, len));
    }

    /// Without an `end_log_pos` the transaction at the position is the one read, and it
    /// ends where the next GTID begins, not after it.
    #[test]
    fn transaction_ended_by_a_gtid_ends_before_it() {
        let (logs, relay, start) = relay_with_partial_transaction(&scratch("ends-before"));
        let target = Target {
            relay_file: relay.clone(),
            relay_pos: start,
            master_server_id: 1,
            end_log_pos: None,
            tail_wait: Duration::ZERO,
        };
        let located = read_transaction(&logs, &target, |_, _, _| Ok::<_, ()>(()))
            .unwrap()
            .unwrap();
        let gtid_12 = start + (PARTIAL_9.1 - PARTIAL_9.0) as u64;
        assert_eq!(located.gtid.as_deref(), Some("0-1-9"));
        assert_eq!((located.end_file, located.end_pos), (relay, gtid_12));
        assert_eq!(located.rows_events, 1);
    }
}
