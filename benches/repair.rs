//! Repair speed on a live lab, each figure beside its baseline measured in the same run:
//! a "perfect hand repair" (the right DELETEs typed in by hand, then START SLAVE).
//!
//!   cargo bench --bench repair            # both scenarios
//!   cargo bench --bench repair -- small   # only the 100 000-row one
//!
//! Scenario 1: one transaction of 100 000 rows with 10 000 scattered conflicts.
//! Scenario 2: one ~357 MB transaction (2 000 000 rows) whose only conflict is its last
//! row; also the agent's peak RSS.

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

    // repl-repair.
    let (_, t0) = break_replica(lab, s);
    let out = Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .args([
            "-u",
            lab.get("LAB_USER"),
            "-S",
            lab.get("REPLICA_SOCKET"),
            "--once",
            "-v",
        ])
        .arg("--journal-dir")
        .arg(lab.dir.join("journal"))
        .env("MYSQL_PWD", lab.get("LAB_PASSWORD"))
        .output()
        .unwrap();
    let ours_restarted = t0.elapsed();
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
    println!(
        "  repl-repair --once:  process start -> SQL thread restarted {internal} s; error -> healthy {:.3} s; error -> agent exited (after verifying) {:.3} s",
        ours_total.as_secs_f64(),
        ours_restarted.as_secs_f64()
    );
    println!("  repl-repair peak RSS: {rss} KiB");
    println!("  restarts: {}", text.matches("repaired error").count());
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
            rows: 2_000_000,
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
