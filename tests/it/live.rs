//! Live repairs on a real MariaDB primary/replica (scripts/lab), judged by outcome: the
//! SQL thread runs, the replica executed everything the primary wrote, and CHECKSUM
//! TABLE is equal on both sides. Drift is made on the replica with sql_log_bin=0.

use crate::support::{Lab, files_under, free_port, pid_alive, text};
use mysql::prelude::Queryable;

const TABLE: &str = "CREATE TABLE lab.t (id INT PRIMARY KEY, k INT, v VARCHAR(40), UNIQUE KEY uk_k (k)) ENGINE=InnoDB";

fn lab(name: &str, knobs: &[&str]) -> Lab {
    let lab = Lab::up(name, knobs);
    lab.on_primary(&[
        "CREATE DATABASE lab",
        TABLE,
        "INSERT INTO lab.t VALUES (1, 10, 'one'), (2, 20, 'two'), (3, 30, 'three')",
    ]);
    lab.wait_caught_up();
    lab
}

/// Runs `repl-repair --once` and asserts it reports the instance repaired and healthy.
fn repair_once(lab: &Lab) -> String {
    let out = lab.repair(&["--once"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("state=healthy"), "{t}");
    assert!(!t.contains("repairs=0"), "{t}");
    t
}

fn journal_text(lab: &Lab) -> String {
    files_under(&lab.journal_dir())
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[test]
fn dup_key_1062_on_primary_key() {
    let lab = lab("pk1062", &[]);
    lab.drift("INSERT INTO lab.t VALUES (6, 600, 'replica only')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (6, 60, 'from primary')"]);
    let st = lab.wait_for_error(1062);
    assert!(
        st["Last_SQL_Error"].contains("PRIMARY"),
        "{}",
        st["Last_SQL_Error"]
    );
    let out = repair_once(&lab);
    assert!(
        out.contains("fix applied: DELETE /* repl-repair */ FROM `lab`.`t` WHERE `id` = 6"),
        "{out}"
    );
    lab.assert_converged("lab.t");
    // Nothing lost: the replica-only row is in the undo journal.
    let j = journal_text(&lab);
    assert!(j.contains("VALUES (6, 600, _"), "journal: {j}");
}

#[test]
fn dup_key_1062_on_secondary_unique_key_held_by_another_row() {
    let lab = lab("uk1062", &[]);
    lab.drift("INSERT INTO lab.t VALUES (99, 70, 'holds k=70 on the replica')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (7, 70, 'from primary')"]);
    let st = lab.wait_for_error(1062);
    assert!(
        st["Last_SQL_Error"].contains("uk_k"),
        "{}",
        st["Last_SQL_Error"]
    );
    let out = repair_once(&lab);
    assert!(out.contains("WHERE `k` = 70"), "{out}");
    lab.assert_converged("lab.t");
    let n: u64 = lab
        .replica()
        .query_first("SELECT COUNT(*) FROM lab.t WHERE id = 99")
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "the replica-only row holding the key is gone");
}

#[test]
fn row_not_found_1032_on_update() {
    let lab = lab("upd1032", &[]);
    lab.drift("DELETE FROM lab.t WHERE id = 2");
    lab.on_primary(&["UPDATE lab.t SET v = 'two, updated' WHERE id = 2"]);
    lab.wait_for_error(1032);
    let out = repair_once(&lab);
    assert!(
        out.contains("fix applied: INSERT IGNORE /* repl-repair */ INTO `lab`.`t`"),
        "{out}"
    );
    lab.assert_converged("lab.t");
    let v: String = lab
        .replica()
        .query_first("SELECT v FROM lab.t WHERE id = 2")
        .unwrap()
        .unwrap();
    assert_eq!(v, "two, updated");
}

#[test]
fn row_not_found_1032_on_delete() {
    let lab = lab("del1032", &[]);
    lab.drift("DELETE FROM lab.t WHERE id = 3");
    lab.on_primary(&["DELETE FROM lab.t WHERE id = 3"]);
    lab.wait_for_error(1032);
    repair_once(&lab);
    lab.assert_converged("lab.t");
    // The journal undoes the insert with a DELETE.
    assert!(journal_text(&lab).contains("DELETE /* repl-repair */ FROM `lab`.`t` WHERE `id` = 3"));
}

#[test]
fn five_row_transaction_where_only_the_third_row_conflicts() {
    let lab = lab("fiverow", &[]);
    lab.drift("INSERT INTO lab.t VALUES (13, 1300, 'replica only')");
    lab.on_primary(&[
        "INSERT INTO lab.t VALUES (11, 110, 'a'), (12, 120, 'b'), (13, 130, 'c'), (14, 140, 'd'), (15, 150, 'e')",
    ]);
    lab.wait_for_error(1062);
    let out = repair_once(&lab);
    assert!(
        out.contains("1 rows deleted"),
        "only the conflicting row is deleted: {out}"
    );
    lab.assert_converged("lab.t");
}

#[test]
fn transaction_spanning_relay_files_with_the_conflict_near_its_end() {
    let lab = lab("span", &["--max-relay-log-size", "4096"]);
    lab.drift("INSERT INTO lab.t VALUES (1999, 19990, 'replica only')");
    let mut p = lab.primary();
    p.query_drop("BEGIN").unwrap();
    for i in 1000..2000 {
        p.query_drop(format!(
            "INSERT INTO lab.t VALUES ({i}, {}, REPEAT('x', 30))",
            i * 10
        ))
        .unwrap();
    }
    p.query_drop("COMMIT").unwrap();
    let st = lab.wait_for_error(1062);
    let out = repair_once(&lab);
    lab.assert_converged("lab.t");
    // The transaction really crossed relay files: the relay log rotated past the start.
    let files = files_under(&lab.dir.join("replica"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("relay-bin.0"))
        .count();
    assert!(
        files > 3,
        "expected several relay files, found {files}; {out}; {st:?}"
    );
}

#[test]
fn dry_run_prints_the_fix_and_changes_nothing() {
    let lab = lab("dryrun", &[]);
    lab.drift("INSERT INTO lab.t VALUES (8, 800, 'replica only')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (8, 80, 'from primary')"]);
    lab.wait_for_error(1062);
    let out = lab.repair(&["--once", "--dry-run"]);
    let t = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "dry run found work: exit 1: {t}"
    );
    assert!(
        t.contains("DELETE /* repl-repair */ FROM `lab`.`t` WHERE `id` = 8;"),
        "{t}"
    );
    // Still broken, row still there.
    let st = lab.status();
    assert_eq!(st["Last_SQL_Errno"], "1062");
    let n: u64 = lab
        .replica()
        .query_first("SELECT COUNT(*) FROM lab.t WHERE id = 8")
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
}

// ---- The repair engine: whole transactions, one restart, every MariaDB flavour. ----

/// Waits until `repl-repair.<instance>.log` in `dir` records `n` repairs.
fn wait_for_log(dir: &std::path::Path, instance: &str, n: usize) {
    let path = dir.join(format!("repl-repair.{instance}.log"));
    let start = std::time::Instant::now();
    while repairs_in(&std::fs::read_to_string(&path).unwrap_or_default()) < n {
        assert!(
            start.elapsed().as_secs() < 15,
            "{} never recorded {n} repairs",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Counts "repaired error" lines: one per SQL-thread restart cycle of a repair.
fn repairs_in(out: &str) -> usize {
    out.lines().filter(|l| l.contains("repaired error")).count()
}

#[test]
fn insert_select_of_5000_rows_with_1000_scattered_conflicts_needs_one_restart() {
    let lab = lab("bulk", &[]);
    lab.on_primary(&["CREATE TABLE lab.src (id INT PRIMARY KEY, k INT, v VARCHAR(40))"]);
    lab.on_primary(&[
        "INSERT INTO lab.src SELECT seq, seq * 10, CONCAT('row ', seq) FROM lab.seq_10000_to_14999",
    ]);
    lab.wait_caught_up();
    // 1000 rows the replica holds already: 500 by PK, 500 by the unique key only.
    lab.drift(
        "INSERT INTO lab.t SELECT seq, seq * 10 + 1, 'stale' FROM lab.seq_10000_to_14999_step_10",
    );
    lab.drift(
        "INSERT INTO lab.t SELECT seq + 100000, (seq + 5) * 10, 'holds a key' FROM lab.seq_10000_to_14999_step_10",
    );
    lab.on_primary(&["INSERT INTO lab.t SELECT id, k, v FROM lab.src"]);
    lab.wait_for_error(1062);
    let out = repair_once(&lab);
    assert_eq!(
        repairs_in(&out),
        1,
        "one restart for the whole transaction: {out}"
    );
    assert!(out.contains("1000 rows deleted"), "{out}");
    assert!(out.contains(" 1 round)"), "one round");
    lab.assert_converged("lab.t");
}

#[test]
fn delete_then_reinsert_of_a_key_the_replica_lacks() {
    let lab = lab("delins", &[]);
    lab.drift("DELETE FROM lab.t WHERE id = 2");
    let mut p = lab.primary();
    p.query_drop("BEGIN").unwrap();
    p.query_drop("DELETE FROM lab.t WHERE id = 2").unwrap();
    p.query_drop("INSERT INTO lab.t VALUES (2, 20, 'reborn')")
        .unwrap();
    p.query_drop("COMMIT").unwrap();
    lab.wait_for_error(1032);
    repair_once(&lab);
    lab.assert_converged("lab.t");
}

#[test]
fn update_moving_a_row_onto_a_unique_value_another_replica_row_holds() {
    let lab = lab("moveuk", &[]);
    lab.drift("INSERT INTO lab.t VALUES (50, 99, 'replica only, holds k=99')");
    lab.on_primary(&["UPDATE lab.t SET k = 99 WHERE id = 1"]);
    lab.wait_for_error(1062);
    let out = repair_once(&lab);
    assert!(out.contains("1 rows deleted"), "{out}");
    lab.assert_converged("lab.t");
}

#[test]
fn nullable_unique_key_holding_null_plus_a_real_conflict() {
    let lab = lab("nulluk", &[]);
    // NULLs never conflict: both replica and primary hold k = NULL rows.
    lab.on_primary(&["INSERT INTO lab.t VALUES (4, NULL, 'null k')"]);
    lab.wait_caught_up();
    lab.drift("INSERT INTO lab.t VALUES (6, 60, 'replica only')");
    lab.on_primary(&[
        "INSERT INTO lab.t VALUES (5, NULL, 'another null k'), (6, 61, 'conflicts on id')",
    ]);
    lab.wait_for_error(1062);
    let out = repair_once(&lab);
    assert!(
        !out.contains("`k` IS NULL") && !out.contains("`k` = NULL"),
        "{out}"
    );
    assert!(out.contains("1 rows deleted"), "{out}");
    lab.assert_converged("lab.t");
}

#[test]
fn table_without_any_key_row_not_found_1032() {
    let lab = lab("keyless", &[]);
    lab.on_primary(&[
        "CREATE TABLE lab.log (a INT, b VARCHAR(20))",
        "INSERT INTO lab.log VALUES (1, 'x'), (2, 'y')",
    ]);
    lab.wait_caught_up();
    lab.drift("DELETE FROM lab.log WHERE a = 2");
    lab.on_primary(&["UPDATE lab.log SET b = 'z' WHERE a = 2"]);
    lab.wait_for_error(1032);
    let out = repair_once(&lab);
    assert!(
        out.contains("stale near-duplicate"),
        "the record warns about keyless tables: {out}"
    );
    lab.assert_converged("lab.log");
}

#[test]
fn minimal_row_image_that_cannot_be_rebuilt_is_refused_and_nothing_runs() {
    let lab = lab("minimal", &[]);
    lab.drift("DELETE FROM lab.t WHERE id = 2");
    lab.on_primary(&[
        "SET SESSION binlog_row_image = 'MINIMAL'",
        "UPDATE lab.t SET v = 'x' WHERE id = 2",
    ]);
    lab.wait_for_error(1032);
    let out = lab.repair(&["--once"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "needs a human: {t}");
    assert!(t.contains("refused"), "{t}");
    assert!(t.contains("does not carry column"), "{t}");
    assert!(!t.contains("fix applied"), "{t}");
    let files = files_under(&lab.journal_dir());
    assert!(
        !files
            .iter()
            .any(|f| f.to_string_lossy().ends_with(".undo.sql")),
        "nothing was journalled or changed: {files:?}"
    );
    // The transaction is parked in the dead-letter directory with its reason and rows.
    let dead: Vec<_> = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("dead-letter"))
        .collect();
    assert_eq!(dead.len(), 1, "{files:?}");
    let letter = std::fs::read_to_string(dead[0]).unwrap();
    assert!(letter.contains("does not carry column"), "{letter}");
    assert!(letter.contains("\"op\":\"update\""), "{letter}");
    assert_eq!(
        lab.status()["Last_SQL_Errno"],
        "1032",
        "replication left stopped"
    );
}

#[test]
fn parallel_replication_with_4_threads() {
    let lab = lab("parallel", &["--parallel", "4"]);
    lab.drift("INSERT INTO lab.t VALUES (7, 70, 'replica only')");
    lab.drift("DELETE FROM lab.t WHERE id = 3");
    lab.on_primary(&[
        "INSERT INTO lab.t VALUES (7, 71, 'from primary')",
        "UPDATE lab.t SET v = 'three!' WHERE id = 3",
    ]);
    lab.wait_for_error(1062);
    let out = repair_once(&lab);
    assert_eq!(repairs_in(&out), 2, "{out}");
    lab.assert_converged("lab.t");
    let threads: u64 = lab
        .replica()
        .query_first("SELECT @@slave_parallel_threads")
        .unwrap()
        .unwrap();
    assert_eq!(threads, 4, "the worker configuration is left alone");
}

#[test]
fn gtid_replica_with_log_slave_updates_gets_no_errant_gtid() {
    let lab = lab("gtid", &["--gtid", "--replica-binlog"]);
    lab.drift("INSERT INTO lab.t VALUES (8, 80, 'replica only')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (8, 81, 'from primary')"]);
    lab.wait_for_error(1062);
    repair_once(&lab);
    lab.assert_converged("lab.t");
    // Every GTID in the replica's binlog comes from the primary (server 1), none from
    // the replica itself (server 2): the fix ran with sql_log_bin=0.
    let pos: String = lab
        .replica()
        .query_first("SELECT @@gtid_binlog_pos")
        .unwrap()
        .unwrap();
    assert!(!pos.is_empty(), "the replica logs replicated transactions");
    for gtid in pos.split(',') {
        assert_eq!(
            gtid.split('-').nth(1),
            Some("1"),
            "errant GTID {gtid} in {pos}"
        );
    }
}

#[test]
fn primary_with_log_bin_compress() {
    let lab = lab("compress", &["--compress"]);
    lab.drift("INSERT INTO lab.t VALUES (9, 90, 'replica only')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (9, 91, REPEAT('compressible ', 2))"]);
    lab.wait_for_error(1062);
    repair_once(&lab);
    lab.assert_converged("lab.t");
}

#[test]
fn multi_source_with_two_connections() {
    let lab = lab("multi_a", &[]);
    let other = Lab::up("multi_b", &["--primary-id", "3"]);
    // The other lab's replica has server_id 2 too: a primary drops a dump thread when
    // another replica with the same id connects, so the two would evict each other.
    other.replica().query_drop("STOP SLAVE").unwrap();
    // Start 'b' after the other lab's own setup (its users exist here already).
    let (file, pos) = other.primary_position();
    other.on_primary(&[
        "CREATE DATABASE lab2",
        "CREATE TABLE lab2.t (id INT PRIMARY KEY, v VARCHAR(20))",
    ]);
    lab.replica()
        .query_drop(format!(
            "CHANGE MASTER 'b' TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_CONNECT_RETRY=1, MASTER_LOG_FILE='{file}', MASTER_LOG_POS={pos}, MASTER_USE_GTID=no",
            other.get("PRIMARY_PORT")
        ))
        .unwrap();
    lab.replica().query_drop("START SLAVE 'b'").unwrap();
    other.on_primary(&["INSERT INTO lab2.t VALUES (1, 'one')"]);
    let count = |lab: &Lab| -> u64 {
        lab.replica()
            .query_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'lab2'",
            )
            .unwrap()
            .unwrap()
    };
    let start = std::time::Instant::now();
    while count(&lab) == 0 {
        if start.elapsed().as_secs() >= 30 {
            let rows: Vec<mysql::Row> = lab.replica().query("SHOW ALL SLAVES STATUS").unwrap();
            let fields: Vec<String> = rows
                .iter()
                .map(|r| {
                    let names = [
                        "Connection_name",
                        "Slave_IO_Running",
                        "Slave_SQL_Running",
                        "Last_IO_Error",
                        "Last_SQL_Error",
                    ];
                    names
                        .iter()
                        .map(|f| format!("{f}={:?}", r.get::<Option<String>, _>(*f)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            panic!("connection 'b' never replicated: {fields:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Drift on the 'b' source's table, then a conflict through connection 'b'.
    std::thread::sleep(std::time::Duration::from_millis(300));
    lab.drift("INSERT INTO lab2.t VALUES (2, 'replica only')");
    other.on_primary(&["INSERT INTO lab2.t VALUES (2, 'from b')"]);
    let start = std::time::Instant::now();
    loop {
        let rows: Vec<mysql::Row> = lab.replica().query("SHOW ALL SLAVES STATUS").unwrap();
        let b = rows
            .iter()
            .find(|r| r.get::<String, _>("Connection_name").as_deref() == Some("b"))
            .unwrap();
        if b.get::<String, _>("Last_SQL_Errno").as_deref() == Some("1062") {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 30,
            "connection 'b' did not stop on 1062"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = repair_once(&lab);
    assert!(out.contains("connection 'b'"), "{out}");
    // Connection 'b' runs again and both sources' tables converge.
    let start = std::time::Instant::now();
    loop {
        let p: (String, Option<u64>) = other
            .primary()
            .query_first("CHECKSUM TABLE lab2.t")
            .unwrap()
            .unwrap();
        let r: (String, Option<u64>) = lab
            .replica()
            .query_first("CHECKSUM TABLE lab2.t")
            .unwrap()
            .unwrap();
        if p.1 == r.1 {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 30,
            "lab2.t did not converge: {p:?} vs {r:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    lab.assert_converged("lab.t");
}

#[test]
fn twenty_conflicting_transactions_in_a_row_the_worker_keeps_going() {
    let lab = lab("twenty", &[]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .args(["-u", lab.get("LAB_USER"), "-S", lab.get("REPLICA_SOCKET")])
        .args(["--interval", "0.05", "-t", "120", "-l"])
        .arg(lab.dir.join("log"))
        .arg("--journal-dir")
        .arg(lab.journal_dir())
        .env("MYSQL_PWD", lab.get("LAB_PASSWORD"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for i in 0..20 {
        let id = 100 + i;
        lab.drift(&format!(
            "INSERT INTO lab.t VALUES ({id}, {}, 'replica only')",
            id * 10
        ));
        lab.on_primary(&[&format!(
            "INSERT INTO lab.t VALUES ({id}, {}, 'primary')",
            id * 10 + 1
        )]);
    }
    let converged = std::panic::catch_unwind(|| {
        lab.assert_converged("lab.t");
        // The agent logs a repair just after the SQL thread moved on.
        wait_for_log(&lab.dir.join("log"), lab.get("REPLICA_PORT"), 20);
    });
    child.kill().ok();
    child.wait().ok();
    converged.unwrap();
    let log = files_under(&lab.dir.join("log"))
        .iter()
        .filter(|p| p.to_string_lossy().contains("repl-repair."))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<String>();
    assert_eq!(repairs_in(&log), 20, "{log}");
}

// ---- Operations: many instances, credentials, daemon, locks, limits, exit codes. ----

fn agent(lab: &Lab) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_repl-repair"));
    c.args(["-u", lab.get("LAB_USER"), "-S", lab.get("REPLICA_SOCKET")])
        .arg("--journal-dir")
        .arg(lab.journal_dir())
        .env("MYSQL_PWD", lab.get("LAB_PASSWORD"));
    c
}

fn break_with_1062(lab: &Lab, id: u32) {
    lab.drift(&format!(
        "INSERT INTO lab.t VALUES ({id}, {}, 'replica only')",
        id * 10
    ));
    lab.on_primary(&[&format!(
        "INSERT INTO lab.t VALUES ({id}, {}, 'primary')",
        id * 10 + 1
    )]);
    lab.wait_for_error(1062);
}

#[test]
fn three_instances_one_stopped_mid_run_the_other_two_still_repaired() {
    let labs = [
        lab("three_a", &[]),
        lab("three_b", &[]),
        lab("three_c", &[]),
    ];
    let sockets: Vec<&str> = labs.iter().map(|l| l.get("REPLICA_SOCKET")).collect();
    let logdir = labs[0].dir.join("agent-log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .args([
            "-u",
            "repair",
            "-S",
            &sockets.join(","),
            "--interval",
            "0.1",
            "-t",
            "120",
            "-l",
        ])
        .arg(&logdir)
        .arg("--journal-dir")
        .arg(labs[0].dir.join("journal"))
        .env("MYSQL_PWD", "repair")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Instance b goes away mid-run.
    let down = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lab"))
        .arg("down")
        .arg(&labs[1].dir)
        .output()
        .unwrap();
    assert!(down.status.success());
    for (i, l) in [&labs[0], &labs[2]].into_iter().enumerate() {
        l.drift(&format!(
            "INSERT INTO lab.t VALUES ({}, 0, 'replica only')",
            40 + i
        ));
        l.on_primary(&[&format!(
            "INSERT INTO lab.t VALUES ({}, 1, 'primary')",
            40 + i
        )]);
    }
    let ok = std::panic::catch_unwind(|| {
        labs[0].assert_converged("lab.t");
        labs[2].assert_converged("lab.t");
        wait_for_log(&logdir, labs[0].get("REPLICA_PORT"), 1);
        wait_for_log(&logdir, labs[2].get("REPLICA_PORT"), 1);
    });
    child.kill().ok();
    child.wait().ok();
    ok.unwrap();
    let log_of = |l: &Lab| {
        std::fs::read_to_string(logdir.join(format!("repl-repair.{}.log", l.get("REPLICA_PORT"))))
            .unwrap_or_default()
    };
    assert_eq!(repairs_in(&log_of(&labs[0])), 1);
    assert_eq!(repairs_in(&log_of(&labs[2])), 1);
    let b = log_of(&labs[1]);
    assert!(
        b.contains("lost the connection") || b.contains("cannot connect"),
        "{b}"
    );
    assert!(
        b.matches("retrying with backoff").count() <= 1,
        "logged once per state change: {b}"
    );
}

#[test]
fn credentials_from_a_defaults_file_never_appear_in_argv_logs_or_output() {
    let lab = lab("creds", &[]);
    let secret = "Pw-s3cr3t-7f1e";
    lab.drift(&format!(
        "CREATE USER 'ops'@'localhost' IDENTIFIED BY '{secret}'; GRANT ALL ON *.* TO 'ops'@'localhost'"
    ));
    let cnf = lab.dir.join("agent.cnf");
    std::fs::write(
        &cnf,
        format!(
            "[client]\nuser=ops\npassword={secret}\n[repl-repair]\nsocket={}\n",
            lab.get("REPLICA_SOCKET")
        ),
    )
    .unwrap();
    break_with_1062(&lab, 20);
    let logdir = lab.dir.join("agent-log");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .arg(format!("--defaults-file={}", cnf.display()))
        .args(["--once", "-v", "-l"])
        .arg(&logdir)
        .arg("--journal-dir")
        .arg(lab.journal_dir())
        .env_remove("MYSQL_PWD")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("state=healthy repairs=1"), "{t}");
    lab.assert_converged("lab.t");
    let mut everything = t.clone();
    for f in files_under(&logdir)
        .into_iter()
        .chain(files_under(&lab.journal_dir()))
    {
        everything.push_str(&std::fs::read_to_string(f).unwrap());
    }
    assert!(!everything.contains(secret), "the password leaked");
    // A wrong password is a clear error that does not echo it either.
    std::fs::write(
        &cnf,
        format!(
            "[client]\nuser=ops\npassword=wrong-{secret}\nsocket={}\n",
            lab.get("REPLICA_SOCKET")
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .arg(format!("--defaults-file={}", cnf.display()))
        .arg("--once")
        .env_remove("MYSQL_PWD")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("Access denied"), "{t}");
    assert!(!t.contains(secret), "{t}");
}

#[test]
fn daemon_writes_its_pid_file_and_logs_and_exits_cleanly_on_sigterm() {
    let lab = lab("daemon", &[]);
    let logdir = lab.dir.join("agent-log");
    let pid_file = lab.dir.join("agent.pid");
    let out = agent(&lab)
        .args(["-d", "--interval", "0.1", "-l"])
        .arg(&logdir)
        .arg("--pid-file")
        .arg(&pid_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let start = std::time::Instant::now();
    let pid: u32 = loop {
        if let Some(p) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break p;
        }
        assert!(start.elapsed().as_secs() < 10, "no pid file");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // The daemon repairs like the foreground agent (too fast to watch the error).
    lab.drift("INSERT INTO lab.t VALUES (30, 300, 'replica only')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (30, 301, 'primary')"]);
    lab.assert_converged("lab.t");
    let log = logdir.join(format!("repl-repair.{}.log", lab.get("REPLICA_PORT")));
    let start = std::time::Instant::now();
    while repairs_in(&std::fs::read_to_string(&log).unwrap_or_default()) == 0 {
        assert!(
            start.elapsed().as_secs() < 10,
            "no repair in {}",
            log.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(repairs_in(&std::fs::read_to_string(&log).unwrap()), 1);
    assert!(
        logdir.join("repl-repair.log").exists(),
        "the agent's own log"
    );
    // SIGTERM: finish the current step and exit.
    assert!(
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success()
    );
    let start = std::time::Instant::now();
    while pid_alive(pid) {
        assert!(
            start.elapsed().as_secs() < 10,
            "daemon {pid} still running after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!pid_file.exists(), "pid file removed on exit");
}

#[test]
fn two_agents_on_one_replica_exactly_one_repairs() {
    let lab = lab("twoagents", &[]);
    break_with_1062(&lab, 31);
    // Another agent (another host) holds the replica's repair lock: this one stands back.
    let mut holder = lab.replica();
    let got: i64 = holder
        .query_first("SELECT GET_LOCK('repl-repair:', 0)")
        .unwrap()
        .unwrap();
    assert_eq!(got, 1);
    let out = agent(&lab).arg("--once").output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("another agent holds the lock"), "{t}");
    assert_eq!(lab.status()["Last_SQL_Errno"], "1062", "nothing touched");
    drop(holder);
    // Two agents at once, as from two hosts (separate lock dirs): one repair in total.
    let spawn = |dir: &str| {
        agent(&lab)
            .arg("--once")
            .arg("--lock-dir")
            .arg(lab.dir.join(dir))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    std::fs::create_dir_all(lab.dir.join("h1")).unwrap();
    std::fs::create_dir_all(lab.dir.join("h2")).unwrap();
    let (a, b) = (spawn("h1"), spawn("h2"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let total: usize = [&a, &b].iter().map(|o| repairs_in(&text(o))).sum();
    assert_eq!(total, 1, "{}\n{}", text(&a), text(&b));
    lab.assert_converged("lab.t");
}

#[test]
fn once_exit_codes_0_healthy_1_needs_a_human_2_agent_error() {
    let lab = lab("exitcodes", &[]);
    let healthy = agent(&lab).arg("--once").output().unwrap();
    assert_eq!(healthy.status.code(), Some(0), "{}", text(&healthy));
    let json = agent(&lab)
        .args(["--once", "--format", "json"])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&json.stdout);
    assert!(
        line.trim().starts_with('{') && line.contains("\"state\":\"healthy\""),
        "{line}"
    );
    // 1: a non-drift SQL error (table missing on the replica: 1146) is left alone.
    // (MariaDB's default slave_ddl_exec_mode=IDEMPOTENT hides duplicate CREATE TABLEs.)
    lab.on_primary(&["CREATE TABLE lab.gone (id INT PRIMARY KEY)"]);
    lab.wait_caught_up();
    lab.drift("DROP TABLE lab.gone");
    lab.on_primary(&["INSERT INTO lab.gone VALUES (1)"]);
    let start = std::time::Instant::now();
    while lab.status()["Slave_SQL_Running"] != "No" {
        assert!(start.elapsed().as_secs() < 30);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let human = agent(&lab).arg("--once").output().unwrap();
    assert_eq!(human.status.code(), Some(1), "{}", text(&human));
    assert!(
        text(&human).contains("not a row-drift error"),
        "{}",
        text(&human)
    );
    // 2: an unreachable instance.
    let missing = lab.dir.join("no-such.sock");
    let err = std::process::Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .arg("-S")
        .arg(&missing)
        .arg("--once")
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(2), "{}", text(&err));
    assert!(text(&err).contains("cannot connect"), "{}", text(&err));
}

#[test]
fn circuit_breaker_trips_at_n_repairs() {
    let lab = lab("breaker", &[]);
    lab.replica().query_drop("STOP SLAVE SQL_THREAD").unwrap();
    for id in 60..63u32 {
        lab.drift(&format!(
            "INSERT INTO lab.t VALUES ({id}, {}, 'replica only')",
            id * 10
        ));
        lab.on_primary(&[&format!(
            "INSERT INTO lab.t VALUES ({id}, {}, 'primary')",
            id * 10 + 1
        )]);
    }
    lab.replica().query_drop("START SLAVE SQL_THREAD").unwrap();
    lab.wait_for_error(1062);
    let out = agent(&lab)
        .args(["--once", "--max-repairs", "2", "--per", "1h"])
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("repairs=2"), "{t}");
    assert!(t.contains("circuit open"), "{t}");
    assert_eq!(
        lab.status()["Last_SQL_Errno"],
        "1062",
        "the third conflict is left for a human"
    );
}

#[test]
fn tables_filter_keeps_the_agent_off_a_table() {
    let lab = lab("tables", &[]);
    break_with_1062(&lab, 70);
    let out = agent(&lab)
        .args(["--once", "--tables", "lab.other,shop.*"])
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("keep the agent off"), "{t}");
    let n: u64 = lab
        .replica()
        .query_first("SELECT COUNT(*) FROM lab.t WHERE id = 70")
        .unwrap()
        .unwrap();
    assert_eq!(n, 1, "the replica row is untouched");
    let out = agent(&lab)
        .args(["--once", "--ignore-tables", "lab.t"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = agent(&lab)
        .args(["--once", "--tables", "lab.*"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    lab.assert_converged("lab.t");
}

// ---- Nothing lost, nothing silent: journal, audit, dead letters, metrics, status. ----

/// A bare HTTP/1.0 request to the agent; returns the body.
fn http(port: u16, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(out)
}

fn wait_http(port: u16, path: &str, want: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        if let Ok(body) = std::panic::catch_unwind(|| http(port, "GET", path))
            && body.contains(want)
        {
            return body;
        }
        assert!(
            start.elapsed().as_secs() < 30,
            "{path} never showed {want:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

const ROW_HEX: &str = "SELECT CONCAT_WS('|', HEX(id), HEX(b), HEX(f), HEX(d), HEX(dt), HEX(ts), HEX(u), IFNULL(n, 'NULL'), HEX(bits)) FROM lab.x WHERE id = 5";

#[test]
fn the_undo_journal_restores_the_deleted_row_byte_exact_and_the_audit_line_matches() {
    let lab = lab("journal", &[]);
    lab.on_primary(&["CREATE TABLE lab.x (id INT PRIMARY KEY, b BLOB, f FLOAT, d DECIMAL(20,6), dt DATETIME(6), ts TIMESTAMP(3) NULL, u VARCHAR(20) CHARACTER SET utf8mb4, n INT NULL, bits BIT(9))"]);
    lab.wait_caught_up();
    lab.drift("INSERT INTO lab.x VALUES (5, X'00FF10275C', 3.14159, -12345.678901, '2024-02-29 23:59:59.999999', '2023-11-14 22:13:20.123', 'ünï''\\\\`x', NULL, b'100000001')");
    let before: String = lab.replica().query_first(ROW_HEX).unwrap().unwrap();
    lab.on_primary(&["INSERT INTO lab.x (id) VALUES (5)"]);
    lab.wait_for_error(1062);
    repair_once(&lab);
    lab.assert_converged("lab.x");
    let dir = lab.journal_dir().join(lab.get("REPLICA_PORT"));
    let journal = files_under(&dir)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".undo.sql"))
        .expect("an undo journal");
    // Audit: one repair-delete line holding the removed row.
    let audit = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    let line = audit
        .lines()
        .find(|l| l.contains("repair-delete"))
        .expect("an audit line");
    for want in [
        "\"id\":5",
        "\"u\":\"ünï'\\\\`x\"",
        "\"n\":null",
        "\"d\":\"-12345.678901\"",
        "\"table\":\"x\"",
        "\"errno\":1062",
        "\"after\":null",
    ] {
        assert!(line.contains(want), "{want} not in {line}");
    }
    // Undo: take the primary's row away and pipe the journal into the mysql client.
    lab.drift("DELETE FROM lab.x WHERE id = 5");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mariadb --socket={} -urepair -prepair < {}",
            lab.get("REPLICA_SOCKET"),
            journal.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let after: String = lab.replica().query_first(ROW_HEX).unwrap().unwrap();
    assert_eq!(after, before, "the journal restores the row byte for byte");
}

#[test]
fn unrepairable_goes_to_dead_letter_with_metrics_and_status_saying_so() {
    let lab = lab("deadletter", &[]);
    lab.drift("DELETE FROM lab.t WHERE id = 2");
    lab.on_primary(&[
        "SET SESSION binlog_row_image = 'MINIMAL'",
        "UPDATE lab.t SET v = 'x' WHERE id = 2",
    ]);
    lab.wait_for_error(1032);
    let port = free_port();
    let mut child = agent(&lab)
        .args([
            "--interval",
            "0.1",
            "-t",
            "60",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checks = std::panic::catch_unwind(|| {
        let status = wait_http(port, "/status", "\"state\":\"refused\"");
        assert!(status.contains("\"dead_letters\":1"), "{status}");
        assert!(status.contains("\"errno\":1032"), "{status}");
        let metrics = http(port, "GET", "/metrics");
        let name = lab.get("REPLICA_PORT");
        for want in [
            format!("repl_repair_dead_letters_total{{instance=\"{name}\"}} 1"),
            format!("repl_repair_replica_sql_running{{instance=\"{name}\"}} 0"),
            format!("repl_repair_replica_last_sql_errno{{instance=\"{name}\"}} 1032"),
            format!("repl_repair_up{{instance=\"{name}\"}} 1"),
            "repl_repair_build_info".to_string(),
        ] {
            assert!(metrics.contains(&want), "{want} not in:\n{metrics}");
        }
        // A real Prometheus text-format parser accepts it.
        let parsed = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\nprint(' '.join(sorted(f.name for f in p(sys.stdin.read()))))",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(metrics.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(parsed.status.success(), "{}", text(&parsed));
        let families = String::from_utf8_lossy(&parsed.stdout).to_string();
        for want in [
            "repl_repair_up",
            "repl_repair_dead_letters",
            "repl_repair_repairs",
            "repl_repair_replica_sql_running",
        ] {
            assert!(
                families.split_whitespace().any(|f| f == want),
                "{want} not parsed: {families}"
            );
        }
    });
    child.kill().ok();
    child.wait().ok();
    checks.unwrap();
    assert_eq!(
        lab.status()["Last_SQL_Errno"],
        "1032",
        "replication stays stopped"
    );
    let dead = files_under(&lab.journal_dir())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("dead-letter"))
        .count();
    assert_eq!(dead, 1);
}

#[test]
fn pause_stops_repairs_on_that_instance_only() {
    let a = lab("pause_a", &[]);
    let b = lab("pause_b", &[]);
    let port = free_port();
    let sockets = format!("{},{}", a.get("REPLICA_SOCKET"), b.get("REPLICA_SOCKET"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .args([
            "-u",
            "repair",
            "-S",
            &sockets,
            "--interval",
            "0.1",
            "-t",
            "90",
        ])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .arg("--journal-dir")
        .arg(a.journal_dir())
        .env("MYSQL_PWD", "repair")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checks = std::panic::catch_unwind(|| {
        let name_a = a.get("REPLICA_PORT");
        wait_http(port, "/status", name_a);
        assert!(http(port, "POST", &format!("/instances/{name_a}/pause")).contains("paused"));
        assert!(http(port, "POST", "/instances/nope/pause").contains("no instance"));
        for l in [&a, &b] {
            l.drift("INSERT INTO lab.t VALUES (9, 900, 'replica only')");
            l.on_primary(&["INSERT INTO lab.t VALUES (9, 901, 'primary')"]);
        }
        b.assert_converged("lab.t");
        a.wait_for_error(1062);
        wait_http(port, "/status", "\"state\":\"paused\"");
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert_eq!(a.status()["Last_SQL_Errno"], "1062", "paused: left alone");
        assert!(http(port, "POST", &format!("/instances/{name_a}/resume")).contains("resumed"));
        a.assert_converged("lab.t");
    });
    child.kill().ok();
    child.wait().ok();
    checks.unwrap();
}

#[test]
fn kill_9_between_journal_and_commit_then_restart_converges_with_nothing_lost() {
    let lab = lab("kill9", &[]);
    break_with_1062(&lab, 6);
    let mut child = agent(&lab)
        .arg("--once")
        .env("REPL_REPAIR_TEST_PAUSE_AFTER_JOURNAL_MS", "30000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dir = lab.journal_dir().join(lab.get("REPLICA_PORT"));
    let start = std::time::Instant::now();
    let journal = loop {
        if let Some(j) = files_under(&dir)
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(".undo.sql"))
        {
            break j;
        }
        assert!(start.elapsed().as_secs() < 20, "no journal written");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL, between the journal's fsync and the DELETE/COMMIT
    child.wait().unwrap();
    let first = std::fs::read_to_string(&journal).unwrap();
    assert!(
        first.contains("VALUES (6, 60, "),
        "the row was journalled first: {first}"
    );
    assert!(
        !first.contains("-- outcome"),
        "the repair never finished: {first}"
    );
    // The server rolled the half-done repair back: the row is still there.
    let n: u64 = lab
        .replica()
        .query_first("SELECT COUNT(*) FROM lab.t WHERE id = 6 AND v = 'replica only'")
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    // A restarted agent repairs it, and journals the row again before deleting it.
    repair_once(&lab);
    lab.assert_converged("lab.t");
    let journals: Vec<String> = files_under(&dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".undo.sql"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(journals.len(), 2);
    assert!(
        journals
            .iter()
            .any(|j| j.contains("VALUES (6, 60, ") && j.contains("-- outcome: committed"))
    );
}

#[test]
fn decode_with_a_live_server_names_the_columns() {
    let lab = lab("decode", &[]);
    lab.on_primary(&["UPDATE lab.t SET v = 'uno' WHERE id = 1"]);
    lab.wait_caught_up();
    let relay: Vec<std::path::PathBuf> =
        files_under(&std::path::PathBuf::from(lab.get("REPLICA_DATADIR")))
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("relay-bin.0"))
            .collect();
    let out = agent(&lab).arg("decode").args(&relay).output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("\"before\":{\"id\":1,\"k\":10,\"v\":\"one\"},\"after\":{\"id\":1,\"k\":10,\"v\":\"uno\"}"), "{t}");
}

#[test]
fn generated_and_invisible_columns_are_repaired_around() {
    let lab = lab("gencols", &[]);
    lab.on_primary(&[
        "CREATE TABLE lab.g (id INT PRIMARY KEY, a INT, twice INT AS (a * 2) VIRTUAL, stored INT AS (a + 1) PERSISTENT, secret INT INVISIBLE DEFAULT 7, UNIQUE KEY (stored))",
        "INSERT INTO lab.g (id, a, secret) VALUES (1, 10, 70), (2, 20, 80)",
    ]);
    lab.wait_caught_up();
    // 1062 on the generated unique key, and 1032 on a row the replica lost.
    lab.drift("INSERT INTO lab.g (id, a, secret) VALUES (99, 30, 1)");
    lab.drift("DELETE FROM lab.g WHERE id = 2");
    lab.on_primary(&[
        "INSERT INTO lab.g (id, a, secret) VALUES (3, 30, 90)",
        "UPDATE lab.g SET a = 21 WHERE id = 2",
    ]);
    lab.wait_for_error(1062);
    let out = repair_once(&lab);
    assert_eq!(repairs_in(&out), 2, "{out}");
    lab.assert_converged("lab.g");
    let secret: i64 = lab
        .replica()
        .query_first("SELECT secret FROM lab.g WHERE id = 2")
        .unwrap()
        .unwrap();
    assert_eq!(
        secret, 80,
        "the invisible column was restored from the before-image"
    );
}

#[test]
fn a_table_changed_since_the_event_was_written_is_refused() {
    let lab = lab("schemachange", &[]);
    // A column dropped on the replica (an extra trailing one is repaired around: see
    // tests/converge.rs).
    lab.drift("ALTER TABLE lab.t DROP COLUMN v");
    lab.drift("INSERT INTO lab.t (id, k) VALUES (8, 80)");
    lab.on_primary(&["INSERT INTO lab.t VALUES (8, 81, 'primary')"]);
    let start = std::time::Instant::now();
    while lab.status()["Slave_SQL_Running"] != "No" {
        assert!(start.elapsed().as_secs() < 30, "replica never stopped");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = lab.repair(&["--once"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("columns, the table on the replica has only 2"),
        "{t}"
    );
    assert!(!t.contains("fix applied"), "{t}");
}

#[test]
fn minimal_grants_are_enough_to_repair() {
    // The grants the README lists; without BINLOG ADMIN the repair is refused with
    // "you need (at least one of) the SUPER, BINLOG ADMIN privilege(s)" (checked by hand).
    let lab = lab("grants", &[]);
    lab.drift(
        "CREATE USER 'fixer'@'localhost' IDENTIFIED BY 'fixer-pw'; \
         GRANT SELECT, INSERT, DELETE ON lab.* TO 'fixer'@'localhost'; \
         GRANT BINLOG ADMIN, REPLICATION SLAVE ADMIN, SLAVE MONITOR ON *.* TO 'fixer'@'localhost'",
    );
    break_with_1062(&lab, 12);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .args(["-u", "fixer", "-S", lab.get("REPLICA_SOCKET"), "--once"])
        .arg("--journal-dir")
        .arg(lab.journal_dir())
        .env("MYSQL_PWD", "fixer-pw")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("state=healthy repairs=1"), "{t}");
    lab.assert_converged("lab.t");
}
