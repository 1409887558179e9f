//! Decoder speed and memory on a real relay log made by the lab, each figure beside its
//! baselines measured in the same run on the same file (page cache warm):
//! raw read, our skip-scan (headers only, walking to a far event), our full decode
//! (every row of every event), and `mariadb-binlog -vv --base64-output=decode-rows`;
//! plus the peak RSS while decoding one single transaction of ~365 MB.
//!
//!   cargo bench --bench decode

#[path = "../tests/support/mod.rs"]
mod support;

use mysql::prelude::Queryable;
use repl_repair::binlog::events::{self, Decoded, TableMaps};
use repl_repair::binlog::rows::{self, RowsEvent};
use repl_repair::binlog::{BinlogReader, DecodedEvents};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};
use support::Lab;

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = None;
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f();
        let d = t.elapsed();
        if best.is_none_or(|b| d < b) {
            best = Some(d);
        }
        last = Some(v);
    }
    (best.unwrap_or_default(), last.expect("n > 0"))
}

fn raw_read(path: &Path) -> u64 {
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    let mut x = 0u8;
    loop {
        let r = f.read(&mut buf).unwrap();
        if r == 0 {
            break;
        }
        x ^= buf[r - 1];
        n += r as u64;
    }
    std::hint::black_box(x);
    n
}

fn skip_scan(path: &Path) -> u64 {
    let mut r = BinlogReader::open(path).unwrap();
    let mut n = 0;
    while r.next_header().unwrap().is_some() {
        r.skip_body().unwrap();
        n += 1;
    }
    n
}

/// Every value of every row decoded, borrowed from the event (`RowsEvent::visit`).
fn full_decode(path: &Path) -> u64 {
    let mut r = BinlogReader::open(path).unwrap();
    let mut maps = TableMaps::default();
    let mut rows = 0;
    while let Some(ev) = r.next_event().unwrap() {
        let t = ev.header.event_type;
        if t.is_rows() || t.is_compressed_rows() {
            let map = maps.get(rows::table_id(ev.body, ev.fde).unwrap()).unwrap();
            rows += RowsEvent::visit(t, ev.body, ev.fde, map, |_, before, after| {
                std::hint::black_box((before, after));
            })
            .unwrap();
        } else {
            events::decode(&ev, &mut maps).unwrap();
        }
    }
    rows
}

/// The same rows materialized as owned values, through the decoded-event iterator
/// (what locate and plan keep).
fn owned_decode(path: &Path) -> u64 {
    let mut rows = 0;
    for ev in DecodedEvents::open(path).unwrap() {
        if let Decoded::Rows(e) = ev.unwrap().decoded {
            rows += e.rows.len() as u64;
        }
    }
    rows
}

fn main() {
    let lab = Lab::up("bench_decode", &[]);
    lab.on_primary(&[
        "CREATE DATABASE bench",
        "CREATE TABLE bench.t (id INT PRIMARY KEY, k BIGINT, d DECIMAL(12,2), ts DATETIME(6), v VARCHAR(200))",
        "SET GLOBAL max_binlog_cache_size = 4294967296",
    ]);
    lab.wait_caught_up();
    // Keep every relay event: the SQL thread would purge executed relay files.
    lab.replica().query_drop("STOP SLAVE SQL_THREAD").unwrap();
    let rows = 2_000_000u64;
    lab.on_primary(&[&format!(
        "INSERT INTO bench.t SELECT seq, seq * 7, seq / 100, '2024-01-02 03:04:05.123456', REPEAT('p', 140) FROM bench.seq_1_to_{rows}"
    )]);
    let (file, pos): (String, u64) = {
        let row: mysql::Row = lab
            .primary()
            .query_first("SHOW MASTER STATUS")
            .unwrap()
            .unwrap();
        (row.get(0).unwrap(), row.get(1).unwrap())
    };
    let start = Instant::now();
    loop {
        let st = lab.status();
        if st["Master_Log_File"] == file && st["Read_Master_Log_Pos"] == pos.to_string() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "IO thread did not read it all"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let relay = support::files_under(Path::new(lab.get("REPLICA_DATADIR")))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("relay-bin.0"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .unwrap();
    let size = std::fs::metadata(&relay).unwrap().len();
    println!(
        "relay log {} ({:.1} MB): one transaction of {rows} rows",
        relay.display(),
        size as f64 / 1e6
    );

    raw_read(&relay); // warm the page cache
    let (t_raw, _) = best_of(3, || raw_read(&relay));
    let (t_skip, events) = best_of(3, || skip_scan(&relay));
    let hwm_before = vm_hwm_kib();
    let (t_full, decoded) = best_of(3, || full_decode(&relay));
    let (t_owned, owned) = best_of(3, || owned_decode(&relay));
    let hwm_after = vm_hwm_kib();
    assert_eq!(decoded, rows, "every row decoded");
    assert_eq!(owned, rows, "every row materialized");
    let (t_mb, _) = best_of(2, || {
        let out = std::process::Command::new("mariadb-binlog")
            .args(["-vv", "--base64-output=decode-rows"])
            .arg(&relay)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(out.success());
    });
    println!(
        "  raw read:                  {:8.1} MB/s",
        mbps(size, t_raw)
    );
    println!(
        "  skip-scan ({events} events):  {:8.1} MB/s  ({:.0} % of raw read)",
        mbps(size, t_skip),
        100.0 * t_raw.as_secs_f64() / t_skip.as_secs_f64()
    );
    println!(
        "  full decode ({decoded} rows): {:8.1} MB/s  ({:.1}x mariadb-binlog -vv)",
        mbps(size, t_full),
        t_mb.as_secs_f64() / t_full.as_secs_f64()
    );
    println!(
        "  owned rows ({owned} rows):  {:8.1} MB/s  ({:.1}x mariadb-binlog -vv)",
        mbps(size, t_owned),
        t_mb.as_secs_f64() / t_owned.as_secs_f64()
    );
    println!(
        "  mariadb-binlog -vv --base64-output=decode-rows > /dev/null (best of 2): {:8.1} MB/s",
        mbps(size, t_mb)
    );
    println!(
        "  peak RSS of this process: {hwm_before} KiB before the full decode, {hwm_after} KiB after (the whole {:.0} MB transaction decoded)",
        size as f64 / 1e6
    );
}
