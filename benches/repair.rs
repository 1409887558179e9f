//! Repair speed on a live lab, each figure beside its baseline measured in the same run:
//! a "perfect hand repair" (the right DELETEs typed in by hand, then START SLAVE).
//!
//!   cargo bench --bench repair            # every scenario
//!   cargo bench --bench repair -- small   # only the 100 000-row one
//!   cargo bench --bench repair -- seek    # only the seek one
//!
//! Scenario 1: one transaction of 100 000 rows with 10 000 scattered conflicts.
//! Scenario 2: one ~357 MB transaction (2 000 000 rows) whose only conflict is its last
//! row; also the agent's peak RSS.
//! Scenario 3 (seek): one small conflict at the end of a ~520 MB relay file holding
//! ~190 000 small transactions: how long until the agent restarts the SQL thread, its
//! whole `--once` run against a perfect hand repair, and `open_at` (seek to
//! Relay_Log_Pos) against walking every header to it, all in the same run.
//!
//! Each scenario also runs the agent with `--source primary` (the transaction read from
//! the primary's binlog over the replication protocol) beside the relay-log run.

#[path = "../tests/support/mod.rs"]
mod support;

use mysql::prelude::Queryable;
use repl_repair::binlog::BinlogReader;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::Lab;

struct Scenario {
    name: &'static str,
    rows: u64,
    /// Every `step`th row of the transaction already exists on the replica.
    step: u64,
    /// Only the last row conflicts (overrides `step`).
    last_only: bool,
    pad: usize,
}

fn wait_error(lab: &Lab) -> Instant {
    let start = Instant::now();
    loop {
        let st = lab.status();
        // Slave_SQL_Running turns No only once the failed transaction is rolled back,
        // which takes seconds for 2 M rows; acting before that is acting too early.
        if st["Last_SQL_Errno"] == "1062" && st["Slave_SQL_Running"] == "No" {
            return Instant::now();
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "no 1062: {st:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Drift + the primary's transaction, leaving the replica stopped on 1062; returns the
/// ids the replica holds already.
fn break_replica(lab: &Lab, s: &Scenario) -> (Vec<u64>, Instant) {
    lab.on_primary(&["TRUNCATE TABLE bench.t"]);
    lab.wait_caught_up();
    // Earlier runs' 357 MB binlogs are not needed any more: keep the disk free.
    let mut p = lab.primary();
    p.query_drop("FLUSH BINARY LOGS").unwrap();
    let cur: mysql::Row = p.query_first("SHOW MASTER STATUS").unwrap().unwrap();
    let cur: String = cur.get(0).unwrap();
    lab.wait_caught_up();
    let _ = p.query_drop(format!("PURGE BINARY LOGS TO '{cur}'"));
    let ids: Vec<u64> = if s.last_only {
        vec![s.rows]
    } else {
        (1..=s.rows).filter(|i| i % s.step == 0).collect()
    };
    let mut r = lab.replica();
    r.query_drop("SET SESSION sql_log_bin = 0").unwrap();
    for chunk in ids.chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| format!("({i}, {i}, 'replica')"))
            .collect();
        r.query_drop(format!("INSERT INTO bench.t VALUES {}", values.join(",")))
            .unwrap();
    }
    lab.on_primary(&[&format!(
        "INSERT INTO bench.t SELECT seq, seq, REPEAT('p', {}) FROM bench.seq_1_to_{}",
        s.pad, s.rows
    )]);
    (ids, wait_error(lab))
}

fn hand_repair(lab: &Lab, ids: &[u64]) {
    let mut r = lab.replica();
    r.query_drop("SET SESSION sql_log_bin = 0").unwrap();
    for chunk in ids.chunks(1000) {
        let list: Vec<String> = chunk.iter().map(|i| i.to_string()).collect();
        r.query_drop(format!(
            "DELETE FROM bench.t WHERE id IN ({})",
            list.join(",")
        ))
        .unwrap();
    }
    r.query_drop("START SLAVE SQL_THREAD").unwrap();
}

fn run(lab: &Lab, s: &Scenario) {
    println!("== {}", s.name);
    // Baseline: the perfect hand repair.
    let (ids, t0) = break_replica(lab, s);
    let hand_start = Instant::now();
    hand_repair(lab, &ids);
    let hand_restarted = hand_start.elapsed();
    lab.wait_caught_up();
    let hand_total = t0.elapsed();
    let relay = relay_bytes(lab);

    let relay_run = agent_run(lab, s, &[]);
    let primary_run = agent_run(lab, s, &["--source", "primary"]);
    println!(
        "  transaction: {} rows, {} conflicts, relay log {:.1} MB",
        s.rows,
        ids.len(),
        relay as f64 / 1e6
    );
    println!(
        "  perfect hand repair: fixes + START SLAVE {:.3} s; error -> healthy {:.3} s",
        hand_restarted.as_secs_f64(),
        hand_total.as_secs_f64()
    );
    for (label, r) in [("relay log", &relay_run), ("primary", &primary_run)] {
        println!(
            "  repl-repair --once ({label}): repair start -> SQL thread restarted {:.3} s; agent start -> exit {:.3} s; error -> healthy {:.3} s; peak RSS {} KiB",
            r.to_restart.as_secs_f64(),
            r.wall.as_secs_f64(),
            r.total.as_secs_f64(),
            r.rss
        );
    }
    println!(
        "  primary / relay log, agent start -> SQL thread restarted: {:.2}x",
        primary_run.to_restart.as_secs_f64() / relay_run.to_restart.as_secs_f64()
    );
}

struct AgentRun {
    /// The repair's start → START SLAVE, from the agent's log.
    to_restart: Duration,
    /// Agent process start → exit (after verifying).
    wall: Duration,
    total: Duration,
    rss: String,
}

/// Breaks the replica again and runs the agent with `extra` flags.
fn agent_run(lab: &Lab, s: &Scenario, extra: &[&str]) -> AgentRun {
    let (_, t0) = break_replica(lab, s);
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .args([
            "-u",
            lab.get("LAB_USER"),
            "-S",
            lab.get("REPLICA_SOCKET"),
            "--once",
            "-v",
        ])
        .args(extra)
        .arg("--journal-dir")
        .arg(lab.dir.join("journal"))
        .env("MYSQL_PWD", lab.get("LAB_PASSWORD"))
        .output()
        .unwrap();
    let wall = started.elapsed();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    lab.wait_caught_up();
    let ours_total = t0.elapsed();
    let (p, r) = lab.checksums("bench.t");
    assert_eq!(p, r, "converged");
    let rss = text
        .lines()
        .find_map(|l| l.split("peak RSS ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("?")
        .to_string();
    let internal = text
        .lines()
        .find_map(|l| l.split("restarted after ").nth(1))
        .and_then(|s| s.split('s').next())
        .unwrap_or("?")
        .to_string();
    // From the agent's log: the repair's start (right after the first status poll) to
    // START SLAVE; the wall time to exit adds the verification.
    let to_restart = internal
        .parse::<f64>()
        .map(Duration::from_secs_f64)
        .unwrap_or_else(|_| started.elapsed());
    AgentRun {
        to_restart,
        wall,
        total: ours_total,
        rss,
    }
}

fn relay_bytes(lab: &Lab) -> u64 {
    support::files_under(&lab.dir.join("replica/data"))
        .iter()
        .filter(|p| p.to_string_lossy().contains("relay-bin.0"))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

/// Transactions before the conflict, and the bytes each one leaves in the relay log
/// (GTID, TABLE_MAP, an UPDATE of ~1.3 KB before and after, XID: ~2.75 KB).
const SEEK_TRANSACTIONS: u64 = 190_000;
const SEEK_PAD: usize = 1300;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Waits, polling every 5 ms, until the replica stops with 1062.
fn wait_1062(lab: &Lab) -> std::collections::HashMap<String, String> {
    let start = Instant::now();
    loop {
        let st = lab.status();
        if st["Last_SQL_Errno"] == "1062" && st["Slave_SQL_Running"] == "No" {
            return st;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no 1062: {st:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits, polling every 5 ms, until the replica executed all the primary wrote.
fn wait_healthy(lab: &Lab, limit: Duration) {
    // The primary's position is read on every poll: a Binlog_checkpoint event can be
    // appended after a read (see `Lab::wait_caught_up`).
    let mut p = lab.primary();
    let start = Instant::now();
    loop {
        let (file, pos) = support::position_of(&mut p);
        let st = lab.status();
        if st["Slave_SQL_Running"] == "Yes"
            && st["Relay_Master_Log_File"] == file
            && st["Exec_Master_Log_Pos"] == pos.to_string()
        {
            return;
        }
        assert!(start.elapsed() < limit, "replica not caught up: {st:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One conflict on `bench.c` at the end of the relay log: returns Relay_Log_File (as a
/// path) and Relay_Log_Pos.
fn seek_conflict(lab: &Lab, id: u64) -> (std::path::PathBuf, u64) {
    let mut r = lab.replica();
    r.query_drop("SET SESSION sql_log_bin = 0").unwrap();
    r.query_drop(format!("INSERT INTO bench.c VALUES ({id}, 0)"))
        .unwrap();
    lab.on_primary(&[&format!("INSERT INTO bench.c VALUES ({id}, 1)")]);
    let st = wait_1062(lab);
    let file = lab
        .dir
        .join("replica/data")
        .join(Path::new(&st["Relay_Log_File"]).file_name().unwrap());
    (file, st["Relay_Log_Pos"].parse().unwrap())
}

fn seek_scenario() {
    println!(
        "== seek: one small conflict after {SEEK_TRANSACTIONS} small transactions in one relay file"
    );
    // The default max_relay_log_size (0: max_binlog_size, 1 GiB) keeps them in one file.
    let lab = Lab::up("bench_seek", &[]);
    lab.on_primary(&[
        "CREATE DATABASE bench",
        "CREATE TABLE bench.s (id INT PRIMARY KEY, v VARCHAR(2000))",
        "CREATE TABLE bench.c (id INT PRIMARY KEY, v INT)",
        "INSERT INTO bench.s VALUES (1, '')",
        // One autocommit UPDATE per iteration: one small transaction each.
        &format!(
            "CREATE PROCEDURE bench.fill(n INT) BEGIN DECLARE i INT DEFAULT 0; \
             WHILE i < n DO UPDATE bench.s SET v = REPEAT(CHAR(65 + i % 26), {SEEK_PAD}) WHERE id = 1; \
             SET i = i + 1; END WHILE; END"
        ),
    ]);
    let t = Instant::now();
    lab.on_primary(&[&format!("CALL bench.fill({SEEK_TRANSACTIONS})")]);
    wait_healthy(&lab, Duration::from_secs(1200));
    println!(
        "  {SEEK_TRANSACTIONS} transactions written and applied in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let (mut hand_restart, mut hand_healthy) = (Vec::new(), Vec::new());
    let mut client_healthy = Vec::new();
    let (mut ours_restart, mut ours_run, mut ours_healthy) = (Vec::new(), Vec::new(), Vec::new());
    let (mut seek, mut walk) = (Vec::new(), Vec::new());
    let mut relay = (std::path::PathBuf::new(), 0);
    for round in 0..3 {
        // A perfect hand repair: the DELETE and START SLAVE, typed in at once.
        let id = 2 * round + 1;
        relay = seek_conflict(&lab, id);
        // open_at seeking, against walking the headers, on the very position.
        for (out, walking) in [(&mut seek, false), (&mut walk, true)] {
            let t = Instant::now();
            let r = if walking {
                BinlogReader::open_at_by_walking(&relay.0, relay.1)
            } else {
                BinlogReader::open_at(&relay.0, relay.1)
            }
            .unwrap();
            out.push(t.elapsed().as_secs_f64());
            assert_eq!(r.walk_reason(), None, "open_at seeked");
        }
        let t = Instant::now();
        let mut r = lab.replica();
        r.query_drop("SET SESSION sql_log_bin = 0").unwrap();
        r.query_drop(format!("DELETE FROM bench.c WHERE id = {id}"))
            .unwrap();
        r.query_drop("START SLAVE SQL_THREAD").unwrap();
        hand_restart.push(t.elapsed().as_secs_f64());
        wait_healthy(&lab, Duration::from_secs(60));
        hand_healthy.push(t.elapsed().as_secs_f64());

        // The same hand repair as a DBA types it: the stock client, a process of its own
        // like the agent (start, connect, statements, exit), until caught up.
        seek_conflict(&lab, id + 100);
        let t = Instant::now();
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-S", lab.get("REPLICA_SOCKET")])
            .args(["-u", lab.get("LAB_USER")])
            .arg(format!("-p{}", lab.get("LAB_PASSWORD")))
            .arg("-e")
            .arg(format!(
                "SET SESSION sql_log_bin = 0; DELETE FROM bench.c WHERE id = {}; START SLAVE SQL_THREAD",
                id + 100
            ))
            .output()
            .expect("run the mariadb client");
        assert!(out.status.success(), "{}", support::text(&out));
        wait_healthy(&lab, Duration::from_secs(60));
        client_healthy.push(t.elapsed().as_secs_f64());

        // repl-repair --once on the same kind of conflict, at the same depth.
        seek_conflict(&lab, id + 1);
        let t = Instant::now();
        let out = lab.repair(&["--once", "-v"]);
        ours_run.push(t.elapsed().as_secs_f64());
        let text = support::text(&out);
        assert!(out.status.success(), "{text}");
        wait_healthy(&lab, Duration::from_secs(60));
        ours_healthy.push(t.elapsed().as_secs_f64());
        let restarted: f64 = text
            .lines()
            .find_map(|l| l.split("SQL thread restarted after ").nth(1))
            .and_then(|s| s.split('s').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no restart time in the agent's log:\n{text}"));
        ours_restart.push(restarted);
        assert!(
            !text.contains("cannot seek straight"),
            "the agent walked the headers:\n{text}"
        );
    }
    let (p, r) = lab.checksums("bench.c");
    assert_eq!(p, r, "converged");
    let ms = |v: &Vec<f64>| median(v.clone()) * 1e3;
    println!(
        "  relay file {:.1} MB, conflict at Relay_Log_Pos {} (medians of 3 rounds)",
        std::fs::metadata(&relay.0).map(|m| m.len()).unwrap_or(0) as f64 / 1e6,
        relay.1
    );
    println!(
        "  open_at: seek {:.3} ms; walking every header to it (the old path) {:.1} ms",
        ms(&seek),
        ms(&walk)
    );
    println!(
        "  repl-repair: repair start -> SQL thread restarted {:.1} ms (target <= 50 ms; {:?})",
        ms(&ours_restart),
        ours_restart
    );
    println!(
        "  perfect hand repair: DELETE + START SLAVE {:.1} ms; -> caught up {:.1} ms",
        ms(&hand_restart),
        ms(&hand_healthy)
    );
    println!(
        "  hand repair with the stock client (`mariadb -e`, a process like the agent): -> caught up {:.1} ms",
        ms(&client_healthy)
    );
    println!(
        "  repl-repair --once: whole run {:.1} ms = {:.2}x the client hand repair (target <= 2x), {:.2}x the in-process one; error -> caught up {:.1} ms",
        ms(&ours_run),
        median(ours_run.clone()) / median(client_healthy.clone()),
        median(ours_run.clone()) / median(hand_healthy.clone()),
        ms(&ours_healthy),
    );
}

fn main() {
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if only.as_deref().is_none_or(|o| "seek".starts_with(o)) {
        seek_scenario();
        if only.is_some() {
            return;
        }
    }
    let lab = Lab::up("bench", &[]);
    lab.on_primary(&[
        "CREATE DATABASE bench",
        "CREATE TABLE bench.t (id INT PRIMARY KEY, k INT, v VARCHAR(200), UNIQUE KEY uk_k (k))",
        "SET GLOBAL max_binlog_cache_size = 4294967296",
    ]);
    lab.wait_caught_up();
    let scenarios = [
        Scenario {
            name: "small: 100 000 rows, 10 000 scattered conflicts",
            rows: 100_000,
            step: 10,
            last_only: false,
            pad: 20,
        },
        Scenario {
            name: "big: 2 000 000 rows (~357 MB), only the last row conflicts",
            // BENCH_BIG_ROWS scales it down where the disk cannot hold ~2.5 GB of
            // datadirs, binlog, relay log and the primary copy.
            rows: std::env::var("BENCH_BIG_ROWS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2_000_000),
            step: 0,
            last_only: true,
            pad: 168,
        },
    ];
    for s in &scenarios {
        if only.as_deref().is_some_and(|o| !s.name.starts_with(o)) {
            continue;
        }
        run(&lab, s);
    }
}
