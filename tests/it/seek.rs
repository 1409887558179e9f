//! `BinlogReader::open_at` seeks straight to `Relay_Log_Pos` after reading the format
//! description events at the head of the file, and walks the headers only when the event
//! there does not check out under them. These tests prove both paths land on the right
//! transaction, on relay files of real MariaDB 10.11 servers (fixtures/mariadb-10.11) and
//! files spliced from their events: a transaction after a second primary FDE that changes
//! the checksum mode (the primary rotated its binlog after `SET GLOBAL binlog_checksum`),
//! a corrupt event at the position, a position inside an event; and live, a repair in a
//! relay file mixing the replica's CRC32 FDE with the primary's checksum-less one.

use mysql::prelude::Queryable;
use repl_repair::binlog::header::ChecksumAlg;
use repl_repair::binlog::{self, BinlogReader, DecodedEvents, EventType, RowOp};
use repl_repair::locate::{self, RelayLogs, Target};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mariadb-10.11")
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("seek-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// (offset, type) of every event of a file, read from the start.
fn boundaries(f: &Path) -> Vec<(u64, EventType)> {
    let mut r = BinlogReader::open(f).unwrap();
    let mut out = Vec::new();
    while let Some(ev) = r.next_event().unwrap() {
        out.push((ev.offset, ev.header.event_type));
    }
    out
}

/// The rest of the file from `pos` as (offset, decoded event) text, up to the first error
/// (a position after a TABLE_MAP cannot decode its rows: the same error either way).
fn rest(events: DecodedEvents) -> Vec<String> {
    events
        .map(|ev| match ev {
            Ok(ev) => format!("{} {:?}", ev.offset, ev.decoded),
            Err(e) => format!("error: {e}"),
        })
        .collect()
}

/// Captures what the library logs with `tracing` while `f` runs.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || out.clone())
        .finish();
    let t = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (t, text)
}

#[test]
fn every_transaction_start_in_the_fixtures_is_reached_by_seeking() {
    let mut seeked = 0;
    for case in std::fs::read_dir(fixtures()).unwrap() {
        let case = case.unwrap().path();
        for f in std::fs::read_dir(&case).unwrap() {
            let f = f.unwrap().path();
            if !f.to_string_lossy().contains("relay-bin.0") {
                continue;
            }
            for (offset, t) in boundaries(&f) {
                let by_seek = DecodedEvents::open_at(&f, offset).unwrap();
                let reason = by_seek.reader().walk_reason().map(str::to_string);
                // Where Relay_Log_Pos points (a GTID), the seek must succeed.
                if t == EventType::MARIADB_GTID {
                    assert_eq!(reason, None, "{}:{offset}", f.display());
                    seeked += 1;
                }
                let walked = BinlogReader::open_at_by_walking(&f, offset).unwrap();
                assert_eq!(
                    rest(by_seek),
                    rest(DecodedEvents::new(walked)),
                    "{}:{offset} ({reason:?})",
                    f.display()
                );
            }
        }
    }
    assert!(seeked > 20, "transaction starts tried: {seeked}");
}

/// Event byte ranges in the fixtures (offsets printed by reading them; both 10.11).
/// `types` relay 000002 is CRC32 throughout; `checksum-none` relay 000002 has the
/// replica's CRC32 FDE, then the primary's FDE without checksums.
const TYPES: &str = "types/replica-relay-bin.000002";
const NONE: &str = "checksum-none/replica-relay-bin.000002";
/// Replica FDE, ROTATE, primary FDE.
const HEAD: (usize, usize) = (4, 557);
const PRIMARY_FDE: (usize, usize) = (305, 557);
/// GTID 0-1-9 … XID (INSERT) in `types`; GTID 0-1-10 … XID (INSERT) in `types`.
const TYPES_TRX_9: (usize, usize) = (1570, 2342);
const TYPES_TRX_10: (usize, usize) = (2342, 2621);
/// GTID 0-1-9 … XID (INSERT), GTID 0-1-10 … XID (UPDATE, log_pos 1981) in `checksum-none`.
const NONE_TRX_9: (usize, usize) = (833, 986);
const NONE_TRX_10: (usize, usize) = (986, 1140);

/// A relay file spliced from real events; returns it, its index and the offset of the
/// last piece (the transaction to find).
fn splice(dir: &Path, pieces: &[(&str, (usize, usize))]) -> (RelayLogs, PathBuf, u64) {
    let mut out = b"\xfebin".to_vec();
    let mut last = 0;
    for (file, (a, b)) in pieces {
        let src = std::fs::read(fixtures().join(file)).unwrap();
        last = out.len() as u64;
        out.extend_from_slice(&src[*a..*b]);
    }
    let relay = dir.join("relay-bin.000001");
    std::fs::write(&relay, &out).unwrap();
    let index = dir.join("relay-bin.index");
    std::fs::write(&index, "relay-bin.000001\n").unwrap();
    let logs = RelayLogs {
        datadir: dir.to_path_buf(),
        index,
    };
    (logs, relay, last)
}

fn locate_at(logs: &RelayLogs, relay: &Path, pos: u64, end_log_pos: u64) -> (String, Vec<RowOp>) {
    let target = Target {
        relay_file: relay.to_path_buf(),
        relay_pos: pos,
        master_server_id: 1,
        end_log_pos: Some(end_log_pos),
        tail_wait: Duration::ZERO,
    };
    let mut ops = Vec::new();
    let located = locate::read_transaction(logs, &target, |_, rows, _| {
        ops.push(rows.op);
        Ok::<_, ()>(())
    })
    .unwrap()
    .unwrap();
    (located.gtid.unwrap_or_default(), ops)
}

#[test]
fn a_transaction_after_a_second_fde_without_checksums_is_found_by_the_walk() {
    // Head: the primary's FDE says CRC32; later the primary rotated with checksums off
    // and its new FDE governs the failing transaction, which has no CRC: the seek's
    // check fails, the walk reads the second FDE.
    let dir = scratch("fde-drops-crc");
    let (logs, relay, pos) = splice(
        &dir,
        &[
            (TYPES, HEAD),
            (TYPES, TYPES_TRX_9),
            (NONE, PRIMARY_FDE),
            (NONE, NONE_TRX_10),
        ],
    );
    let ((gtid, ops), log) = logged(|| locate_at(&logs, &relay, pos, 1981));
    assert_eq!(gtid, "0-1-10");
    assert_eq!(ops, [RowOp::Update]);
    assert!(log.contains("WARN"), "{log}");
    assert!(
        log.contains(&format!("cannot seek straight to offset {pos}")),
        "{log}"
    );
    assert!(log.contains("CRC32"), "{log}");
    assert!(log.contains(&relay.display().to_string()), "{log}");
}

#[test]
fn a_transaction_after_a_second_fde_with_checksums_is_reached_by_seeking() {
    // Head: the primary's FDE says no checksums; a later one turns CRC32 on. The seek's
    // check under the head's rule passes, and the reader recognises the events' CRCs.
    let dir = scratch("fde-adds-crc");
    let (logs, relay, pos) = splice(
        &dir,
        &[
            (NONE, HEAD),
            (NONE, NONE_TRX_9),
            (TYPES, PRIMARY_FDE),
            (TYPES, TYPES_TRX_10),
        ],
    );
    let seeked = DecodedEvents::open_at(&relay, pos).unwrap();
    assert_eq!(seeked.reader().walk_reason(), None);
    let walked = DecodedEvents::new(BinlogReader::open_at_by_walking(&relay, pos).unwrap());
    assert_eq!(rest(seeked), rest(walked));
    let (gtid, ops) = locate_at(&logs, &relay, pos, 4222);
    assert_eq!(gtid, "0-1-10");
    assert_eq!(ops, [RowOp::Insert]);
}

#[test]
fn a_corrupt_event_at_the_position_falls_back_and_is_an_error_at_its_offset() {
    let dir = scratch("corrupt");
    let mut bytes = std::fs::read(fixtures().join(TYPES)).unwrap();
    let pos = TYPES_TRX_10.0;
    bytes[pos + 30] ^= 0x5a;
    let f = dir.join("relay-bin.000002");
    std::fs::write(&f, &bytes).unwrap();
    let (r, log) = logged(|| BinlogReader::open_at(&f, pos as u64));
    let mut r = r.unwrap();
    assert!(
        r.walk_reason().unwrap().contains("CRC32"),
        "{:?}",
        r.walk_reason()
    );
    assert!(
        log.contains(&format!("cannot seek straight to offset {pos}")),
        "{log}"
    );
    match r.next_event() {
        Err(binlog::Error::Checksum { offset, .. }) => assert_eq!(offset, pos as u64),
        other => panic!("expected a checksum error at {pos}: {other:?}"),
    }
}

#[test]
fn a_position_inside_an_event_is_refused_after_the_walk() {
    let f = fixtures().join(TYPES);
    let pos = TYPES_TRX_10.0 as u64 + 7;
    let err = BinlogReader::open_at(&f, pos).unwrap_err().to_string();
    assert!(err.contains("is not the start of an event"), "{err}");
    assert!(err.contains(&f.display().to_string()), "{err}");
}

#[test]
fn a_position_in_the_middle_of_a_transaction_reads_the_same_either_way() {
    // The TABLE_MAP of GTID 0-1-10: not where a transaction starts, still an event.
    let f = fixtures().join(TYPES);
    let pos = 2384;
    let seeked = DecodedEvents::open_at(&f, pos).unwrap();
    assert_eq!(seeked.reader().walk_reason(), None);
    let first = rest(seeked);
    assert!(first[0].starts_with("2384 TableMap"), "{first:?}");
    let walked = DecodedEvents::new(BinlogReader::open_at_by_walking(&f, pos).unwrap());
    assert_eq!(first, rest(walked));
}

/// Live: the primary turns checksums off (`SET GLOBAL binlog_checksum = NONE`). Observed
/// on MariaDB 10.11: the replica starts a new relay file, so the failing transaction's
/// file mixes modes (the replica's CRC32 FDE, then the primary's NONE FDE) but holds one
/// primary FDE. The agent seeks straight to the position under that FDE and repairs.
#[test]
fn live_repair_after_the_primary_turned_checksums_off_seeks() {
    let lab = crate::support::Lab::up("seek_fde", &["--checksum", "CRC32"]);
    lab.on_primary(&[
        "CREATE DATABASE lab",
        "CREATE TABLE lab.t (id INT PRIMARY KEY, v INT)",
        "INSERT INTO lab.t VALUES (1, 1), (2, 2)",
    ]);
    lab.wait_caught_up();
    lab.on_primary(&["SET GLOBAL binlog_checksum = NONE"]);
    lab.on_primary(&["INSERT INTO lab.t VALUES (3, 3)"]);
    lab.wait_caught_up();
    lab.drift("INSERT INTO lab.t VALUES (5, 50)");
    lab.on_primary(&["INSERT INTO lab.t VALUES (4, 4), (5, 5), (6, 6)"]);
    let st = lab.wait_for_error(1062);

    let relay = lab
        .dir
        .join("replica/data")
        .join(Path::new(&st["Relay_Log_File"]).file_name().unwrap());
    let pos: u64 = st["Relay_Log_Pos"].parse().unwrap();
    let primary_id: u32 = st["Master_Server_Id"].parse().unwrap();
    let mut r = BinlogReader::open(&relay).unwrap();
    let mut fdes = Vec::new();
    while let Some(ev) = r.next_event().unwrap() {
        if ev.header.event_type == EventType::FORMAT_DESCRIPTION && ev.offset < pos {
            fdes.push((ev.header.server_id == primary_id, ev.fde.checksum));
        }
    }
    assert_eq!(
        fdes,
        [(false, ChecksumAlg::Crc32), (true, ChecksumAlg::None)],
        "(from the primary, checksum) of the FDEs before {}:{pos}",
        relay.display()
    );
    let opened = BinlogReader::open_at(&relay, pos).unwrap();
    assert_eq!(opened.walk_reason(), None);

    let out = lab.repair(&["--once", "-v"]);
    let t = crate::support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(!t.contains("cannot seek straight"), "{t}");
    lab.wait_caught_up();
    lab.assert_converged("lab.t");
    let mut c = lab.replica();
    let v: Option<i64> = c.query_first("SELECT v FROM lab.t WHERE id = 5").unwrap();
    assert_eq!(v, Some(5), "the primary's row replaced the drift");
}
