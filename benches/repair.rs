//! Repair speed on a live lab, each figure beside its baseline measured in the same run:
//! a "perfect hand repair" (the right DELETEs typed in by hand, then START SLAVE).
//!
//!   cargo bench --bench repair            # both scenarios
//!   cargo bench --bench repair -- small   # only the 100 000-row one
//!
//! Scenario 1: one transaction of 100 000 rows with 10 000 scattered conflicts.
//! Scenario 2: one ~357 MB transaction (2 000 000 rows) whose only conflict is its last
//! row; also the agent's peak RSS.
//!
//! Each scenario also runs the agent with `--source primary` (the transaction read from
//! the primary's binlog over the replication protocol) beside the relay-log run.

#[path = "../tests/support/mod.rs"]
mod support;

use mysql::prelude::Queryable;
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

fn main() {
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
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
