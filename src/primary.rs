//! The failing transaction read from the **primary's** binlog, for agents that cannot read
//! the replica's relay logs (a monitoring host over TCP, a managed replica, a non-mysql
//! user).
//!
//! The replica reports where the failing transaction starts in its primary's binlog
//! (`Relay_Master_Log_File:Exec_Master_Log_Pos`, in file/position and GTID mode alike)
//! and where its failing event ends (`end_log_pos` in the error). We register on the
//! primary as a non-blocking binlog dump from that start, copy the transaction's events
//! byte for byte (the primary's FORMAT_DESCRIPTION first) into a private temporary file
//! laid out as a binlog, and hand that file to the relay-log pipeline unchanged: the
//! events keep the primary's headers, so `locate` finds the failing event by server_id
//! and end_log_pos exactly as in a relay log. The copy streams to disk, one event in
//! memory at a time, and is deleted when the [`Fetched`] is dropped.
//!
//! The wire side is the mysql crate's `get_binlog_stream` (the one adapter: the rest of
//! the agent never sees its types). It parses each event, so every event is re-serialised
//! for our decoder; the checksum the primary sent is verified first, so corruption on the
//! way is an error, not a freshly computed valid CRC.
//!
//! Safety: the server reached must have the `server_id` the replica reports as
//! `Master_Server_Id`, and the transaction read must contain the event the error names
//! (`end_log_pos` in the error's binlog file), else nothing is repaired.

use crate::locate::{RelayLogs, Target};
use crate::status::{Flavor, Incident};
use mysql::binlog::events::{Event, QueryEvent, RotateEvent};
use mysql::binlog::{BinlogChecksumAlg, BinlogVersion, EventType};
use mysql::prelude::Queryable;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The dump registers with a server_id in `DUMP_SERVER_ID_BASE ..
/// DUMP_SERVER_ID_BASE + DUMP_SERVER_ID_RANGE`. A primary evicts the dump thread of any
/// replica that registers with the same id, so real replicas must not use this range.
pub const DUMP_SERVER_ID_BASE: u32 = 4_290_000_000;
pub const DUMP_SERVER_ID_RANGE: u32 = 4_000_000;

/// How to reach the primaries: `--primary`, `--primary-user`, `--primary-password` (or
/// `[repl-repair-primary]`, `MYSQL_PRIMARY_PWD`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PrimaryAccess {
    /// `--primary HOST:PORT` (connection `None`: every connection) and
    /// `--primary CONNECTION=HOST:PORT`.
    pub overrides: Vec<(Option<String>, String, u16)>,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for PrimaryAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrimaryAccess")
            .field("overrides", &self.overrides)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl PrimaryAccess {
    /// Parses one `--primary` value: `HOST:PORT` or `CONNECTION=HOST:PORT` (`[v6]:PORT`
    /// for an IPv6 address).
    pub fn parse_override(spec: &str) -> Option<(Option<String>, String, u16)> {
        let (conn, at) = match spec.split_once('=') {
            Some((c, a)) => (Some(c.to_string()), a),
            None => (None, spec),
        };
        let (host, port) = at.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().ok()?;
        if host.is_empty() || port == 0 || host.chars().any(char::is_control) {
            return None;
        }
        Some((conn, host.to_string(), port))
    }

    /// The address for one connection: its own `--primary`, else a plain `--primary`,
    /// else what the replica names.
    fn address(&self, connection: &str, named: Option<(String, u16)>) -> Option<(String, u16)> {
        let pick = |want: Option<&str>| {
            self.overrides
                .iter()
                .find(|(c, _, _)| c.as_deref() == want)
                .map(|(_, h, p)| (h.clone(), *p))
        };
        pick(Some(connection)).or_else(|| pick(None)).or(named)
    }
}

/// Why the transaction could not be read from the primary. Each is a refusal: nothing
/// was changed and replication stays stopped.
#[derive(Debug, thiserror::Error)]
pub enum PrimaryError {
    #[error(
        "the replica names no primary for connection '{connection}' (Master_Host/Master_Port empty); name it with --primary {connection}=HOST:PORT"
    )]
    NoAddress { connection: String },
    #[error("cannot read the replica's status to find its primary: {0}")]
    Status(mysql::Error),
    #[error(
        "cannot reach the primary {addr}: {source}; check --primary, the network, and --primary-user/--primary-password (needs REPLICATION SLAVE)"
    )]
    Unreachable {
        addr: String,
        #[source]
        source: mysql::Error,
    },
    #[error(
        "the server at {addr} has server_id {found}, but the replica's primary has Master_Server_Id {expected}: it is not the primary this replica replicates from (a changed primary, or the wrong --primary)"
    )]
    WrongPrimary {
        addr: String,
        found: u32,
        expected: u32,
    },
    #[error(
        "the primary {addr} no longer has the failing transaction at {file}:{pos} (binlog purged?): {message}"
    )]
    Purged {
        addr: String,
        file: String,
        pos: u64,
        message: String,
    },
    #[error("binlog dump from {addr} at {file}:{pos} failed: {message}")]
    Dump {
        addr: String,
        file: String,
        pos: u64,
        message: String,
    },
    #[error(
        "the primary {addr} has no event ending at {file}:{end_log_pos} after {start_file}:{start_pos} (read up to {at}): its binlog does not match the replica's error (a changed primary?)"
    )]
    NotFound {
        addr: String,
        start_file: String,
        start_pos: u64,
        file: String,
        end_log_pos: u64,
        at: String,
    },
    #[error("cannot write the transaction's temporary copy {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Connects to the primary of `connection` (its `--primary`, else what the replica
/// names) and checks it is the server the replica replicates from (`expected`: the
/// replica's Master_Server_Id; 0 = unknown). Returns the connection and `host:port`.
pub fn connect(
    access: &PrimaryAccess,
    reader: &mut impl Queryable,
    flavor: &Flavor,
    connection: &str,
    expected: u32,
) -> Result<(mysql::Conn, String), PrimaryError> {
    let named = named_primary(reader, flavor, connection).map_err(PrimaryError::Status)?;
    let (host, port) =
        access
            .address(connection, named)
            .ok_or_else(|| PrimaryError::NoAddress {
                connection: connection.to_string(),
            })?;
    let addr = format!("{host}:{port}");
    let opts = mysql::OptsBuilder::new()
        .ip_or_hostname(Some(host))
        .tcp_port(port)
        .prefer_socket(false)
        .user(access.user.clone())
        .pass(access.password.clone())
        .tcp_connect_timeout(Some(Duration::from_secs(5)))
        .read_timeout(Some(Duration::from_secs(60)))
        .write_timeout(Some(Duration::from_secs(60)));
    let unreachable = |source| PrimaryError::Unreachable {
        addr: addr.clone(),
        source,
    };
    let mut conn = mysql::Conn::new(opts).map_err(unreachable)?;
    let found: u32 = conn
        .query_first("SELECT /* repl-repair */ @@server_id")
        .map_err(unreachable)?
        .unwrap_or(0);
    if expected != 0 && found != expected {
        return Err(PrimaryError::WrongPrimary {
            addr,
            found,
            expected,
        });
    }
    Ok((conn, addr))
}

/// The transaction, copied: point the relay-log pipeline at `logs`/`target`. The copy
/// is deleted on drop.
pub struct Fetched {
    pub logs: RelayLogs,
    pub target: Target,
    /// `host:port` it was read from, for logs and the record.
    pub primary: String,
    pub bytes: u64,
    pub events: u64,
    dir: PathBuf,
}

impl Drop for Fetched {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The replica's view of one connection's primary: `Master_Host`, `Master_Port`
/// (`Source_*` on MySQL 8.0.22+), read through the status parser.
fn named_primary(
    reader: &mut impl Queryable,
    flavor: &Flavor,
    connection: &str,
) -> Result<Option<(String, u16)>, mysql::Error> {
    Ok(crate::status::read(reader, flavor, connection)?
        .filter(|st| !st.master_host.is_empty() && st.master_port != 0)
        .map(|st| (st.master_host, st.master_port)))
}

/// A dump server_id for this process and call: in the reserved range, different for
/// concurrent workers of one agent and, by host name and pid, unlikely to meet another
/// agent's.
fn dump_server_id() -> u32 {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut h: u32 = 2_166_136_261;
    for b in host.trim().bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(16_777_619);
    }
    let n = h
        .wrapping_add(std::process::id().wrapping_mul(64))
        .wrapping_add(CALLS.fetch_add(1, Ordering::Relaxed));
    DUMP_SERVER_ID_BASE + n % DUMP_SERVER_ID_RANGE
}

/// Where a dumped event sits in the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// FDE, rotate, heartbeat: framing, not part of any transaction.
    Framing,
    /// GTID or BEGIN: a transaction starts here.
    Start,
    /// XID, COMMIT/ROLLBACK, MySQL's whole-transaction payload: it ends with this event.
    End,
    Other,
}

fn role(ev: &Event) -> Role {
    let t = ev.header().event_type_raw();
    const MARIADB_GTID: u8 = 162;
    const TAGGED_GTID: u8 = 42;
    match t {
        x if x == EventType::FORMAT_DESCRIPTION_EVENT as u8
            || x == EventType::ROTATE_EVENT as u8
            || x == EventType::HEARTBEAT_EVENT as u8 =>
        {
            Role::Framing
        }
        x if x == EventType::GTID_EVENT as u8
            || x == EventType::ANONYMOUS_GTID_EVENT as u8
            || x == MARIADB_GTID
            || x == TAGGED_GTID =>
        {
            Role::Start
        }
        x if x == EventType::XID_EVENT as u8 || x == EventType::TRANSACTION_PAYLOAD_EVENT as u8 => {
            Role::End
        }
        x if x == EventType::QUERY_EVENT as u8 => {
            match ev.read_event::<QueryEvent>() {
                Ok(q) => {
                    let sql = q.query();
                    let s = sql.trim();
                    if s.eq_ignore_ascii_case("BEGIN") {
                        Role::Start
                    } else if s.eq_ignore_ascii_case("COMMIT") || s.eq_ignore_ascii_case("ROLLBACK")
                    {
                        Role::End
                    } else {
                        Role::Other
                    }
                }
                // Our decoder reads it again and names what is wrong with it.
                Err(_) => Role::Other,
            }
        }
        _ => Role::Other,
    }
}

/// The checksum the primary sent must match the event's bytes: `Event::write` computes
/// a fresh one, which would hide corruption on the way.
fn checksum_ok(ev: &Event) -> bool {
    match (ev.footer().get_checksum_alg(), ev.checksum()) {
        (Ok(Some(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32)), Some(sent)) => {
            u32::from_le_bytes(sent)
                == ev.calc_checksum(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32)
        }
        _ => true,
    }
}

/// Reads the incident's transaction from its primary into a temporary binlog under
/// `work_dir`. `reader` is the replica (for Master_Host/Master_Port).
pub fn fetch(
    access: &PrimaryAccess,
    reader: &mut impl Queryable,
    flavor: &Flavor,
    incident: &Incident,
    work_dir: &Path,
) -> Result<Fetched, PrimaryError> {
    let (mut conn, addr) = connect(
        access,
        reader,
        flavor,
        &incident.connection,
        incident.master_server_id,
    )?;
    let unreachable = |source| PrimaryError::Unreachable {
        addr: addr.clone(),
        source,
    };
    // MariaDB sends its own events (GTID, annotate, compressed, binlog checkpoint) as
    // they are only to a replica that says it understands them (capability 4, "MINE");
    // MySQL ignores the variable.
    conn.query_drop("SET @mariadb_slave_capability = 4")
        .map_err(unreachable)?;
    let start_file = incident.exec_master_log_file.clone();
    let start_pos = incident.exec_master_log_pos;
    let request = mysql::BinlogRequest::new(dump_server_id())
        .with_filename(start_file.as_bytes().to_vec())
        .with_pos(start_pos)
        .with_flags(mysql::BinlogDumpFlags::BINLOG_DUMP_NON_BLOCK);
    let dump_err = |message: String| {
        let purged = message.contains("1236")
            || message.contains("ould not find first log file")
            || message.contains("purged");
        if purged {
            PrimaryError::Purged {
                addr: addr.clone(),
                file: start_file.clone(),
                pos: start_pos,
                message,
            }
        } else {
            PrimaryError::Dump {
                addr: addr.clone(),
                file: start_file.clone(),
                pos: start_pos,
                message,
            }
        }
    };
    let mut stream = conn
        .get_binlog_stream(request)
        .map_err(|e| dump_err(e.to_string()))?;

    let dir = work_dir.join(format!(
        ".primary-{}-{}",
        std::process::id(),
        crate::clock::unix_micros()
    ));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PrimaryError::Io { path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(&dir)
        .map_err(io(&dir))?;
    let mut fetched = Fetched {
        logs: RelayLogs {
            datadir: dir.clone(),
            index: dir.join("transaction.index"),
        },
        target: Target {
            relay_file: dir.join("transaction.binlog"),
            relay_pos: 0,
            master_server_id: incident.master_server_id,
            end_log_pos: incident.end_log_pos,
            tail_wait: Duration::ZERO,
        },
        primary: addr.clone(),
        bytes: 0,
        events: 0,
        dir: dir.clone(),
    };
    std::fs::write(&fetched.logs.index, "transaction.binlog\n").map_err(io(&fetched.logs.index))?;
    let path = fetched.target.relay_file.clone();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io(&path))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(&crate::binlog::header::MAGIC)
        .map_err(io(&path))?;
    let mut offset: u64 = 4;
    let failing_file = incident.master_log_file.clone();
    let mut file_now = start_file.clone();
    let mut seen_failing = false;
    let mut seen_fde = false;
    let not_found = |at: String| PrimaryError::NotFound {
        addr: addr.clone(),
        start_file: start_file.clone(),
        start_pos,
        file: failing_file.clone().unwrap_or_default(),
        end_log_pos: incident.end_log_pos.unwrap_or(0),
        at,
    };
    loop {
        // The crate indexes and unwraps inside its event parser: a malformed packet from
        // the network must be an error here, not a dead worker.
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stream.next()))
            .map_err(|_| {
                dump_err(format!(
                    "malformed event after {file_now} (the binlog client's parser rejected it)"
                ))
            })?;
        let ev = match next {
            None => break,
            Some(Ok(ev)) => ev,
            Some(Err(e)) => return Err(dump_err(e.to_string())),
        };
        let h = ev.header();
        if !checksum_ok(&ev) {
            return Err(dump_err(format!(
                "checksum mismatch in the event ending at {file_now}:{}",
                h.log_pos()
            )));
        }
        let t = h.event_type_raw();
        let r = role(&ev);
        if t == EventType::ROTATE_EVENT as u8 {
            // The first (fake) rotate names the file we asked for; it comes before any
            // FDE, so the parser cannot know to cut its checksum off the name.
            if !seen_fde {
                continue;
            }
            if let Ok(rot) = ev.read_event::<RotateEvent>() {
                let name = rot.name().into_owned();
                if let Some(f) = &failing_file
                    && file_now == *f
                    && name != *f
                    && h.log_pos() != 0
                {
                    // A real rotate out of the error's file before the failing event.
                    return Err(not_found(format!("the end of {file_now}")));
                }
                file_now = name;
            }
            continue;
        }
        if t == EventType::HEARTBEAT_EVENT as u8 {
            continue;
        }
        if r == Role::Start && seen_failing {
            // The next transaction: ours ended without an end event we know.
            break;
        }
        let in_failing_file = failing_file.as_ref().is_none_or(|f| *f == file_now);
        if r != Role::Framing
            && in_failing_file
            && let Some(end) = incident.end_log_pos
        {
            if u64::from(h.log_pos()) == end {
                seen_failing = true;
            } else if u64::from(h.log_pos()) > end && !seen_failing {
                return Err(not_found(format!("{file_now}:{}", h.log_pos())));
            }
        }
        let before = offset;
        let mut counted = CountingWriter {
            inner: &mut out,
            n: 0,
        };
        ev.write(BinlogVersion::Version4, &mut counted)
            .map_err(io(&path))?;
        offset += counted.n;
        fetched.events += 1;
        if t == EventType::FORMAT_DESCRIPTION_EVENT as u8 {
            if !seen_fde {
                fetched.target.relay_pos = offset;
            }
            seen_fde = true;
        } else if !seen_fde {
            return Err(dump_err(format!(
                "the dump did not start with a format description event (event type {t} at {before})"
            )));
        }
        if r == Role::End && (seen_failing || incident.end_log_pos.is_none()) {
            break;
        }
    }
    drop(stream);
    out.flush().map_err(io(&path))?;
    fetched.bytes = offset;
    if incident.end_log_pos.is_some() && !seen_failing {
        return Err(not_found(format!(
            "the end of the primary's binlog ({file_now})"
        )));
    }
    Ok(fetched)
}

/// Counts what `Event::write` wrote, so offsets in the copy are known without seeking.
struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// In GTID mode, the GTID of the transaction read must not be one the replica already
/// applied: then it is not the failing one. MariaDB: same domain, sequence number past
/// `@@gtid_slave_pos`; MySQL: not in `@@gtid_executed`.
pub fn check_gtid(reader: &mut impl Queryable, flavor: &Flavor, gtid: &str) -> Result<(), String> {
    if flavor.mariadb {
        let pos: Option<String> = reader
            .query_first("SELECT /* repl-repair */ @@gtid_slave_pos")
            .map_err(|e| format!("cannot read @@gtid_slave_pos: {e}"))?;
        let parse = |g: &str| {
            let mut it = g.trim().split('-');
            let d: u64 = it.next()?.parse().ok()?;
            let s: u64 = it.next()?.parse().ok()?;
            let n: u64 = it.next()?.parse().ok()?;
            Some((d, s, n))
        };
        let Some((domain, server, seq)) = parse(gtid) else {
            return Ok(());
        };
        // Only a position from the same server says anything: two primaries of a
        // multi-source replica may share a domain (observed: 0-1-10 in the position,
        // 0-3-10 failing on the other connection).
        for applied in pos.unwrap_or_default().split(',') {
            if let Some((d, s, n)) = parse(applied)
                && d == domain
                && s == server
                && n >= seq
            {
                return Err(format!(
                    "the primary's transaction {gtid} is already applied on the replica (@@gtid_slave_pos has {}): the primary's binlog does not match the replica's error",
                    applied.trim()
                ));
            }
        }
        Ok(())
    } else {
        let sql = format!(
            "SELECT /* repl-repair */ GTID_SUBSET({}, @@gtid_executed)",
            crate::sql::string_literal(gtid)
        );
        let applied: Option<i64> = reader
            .query_first(sql)
            .map_err(|e| format!("cannot check {gtid} against @@gtid_executed: {e}"))?;
        if applied == Some(1) {
            return Err(format!(
                "the primary's transaction {gtid} is already in the replica's @@gtid_executed: the primary's binlog does not match the replica's error"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_override_forms() {
        assert_eq!(
            PrimaryAccess::parse_override("db1:3306"),
            Some((None, "db1".into(), 3306))
        );
        assert_eq!(
            PrimaryAccess::parse_override("east=10.0.0.1:3307"),
            Some((Some("east".into()), "10.0.0.1".into(), 3307))
        );
        assert_eq!(
            PrimaryAccess::parse_override("[::1]:3306"),
            Some((None, "::1".into(), 3306))
        );
        for bad in ["db1", "db1:", ":3306", "db1:0", "db1:70000", "x=db1:port"] {
            assert_eq!(PrimaryAccess::parse_override(bad), None, "{bad}");
        }
    }

    #[test]
    fn connection_override_beats_plain_beats_named() {
        let a = PrimaryAccess {
            overrides: vec![
                (None, "any".into(), 1),
                (Some("east".into()), "e".into(), 2),
            ],
            ..PrimaryAccess::default()
        };
        let named = Some(("n".to_string(), 3));
        assert_eq!(a.address("east", named.clone()), Some(("e".into(), 2)));
        assert_eq!(a.address("west", named.clone()), Some(("any".into(), 1)));
        assert_eq!(
            PrimaryAccess::default().address("west", named.clone()),
            named
        );
    }

    #[test]
    fn dump_server_ids_stay_in_the_reserved_range() {
        for _ in 0..1000 {
            let id = dump_server_id();
            assert!(
                (DUMP_SERVER_ID_BASE..DUMP_SERVER_ID_BASE + DUMP_SERVER_ID_RANGE).contains(&id)
            );
        }
    }

    #[test]
    fn password_is_never_debug_printed() {
        let a = PrimaryAccess {
            password: Some("s3cret".into()),
            ..PrimaryAccess::default()
        };
        assert!(!format!("{a:?}").contains("s3cret"));
    }
}
