//! Repairs from anywhere: the agent runs as a user who cannot read the replica's datadir
//! (`nobody`, through setpriv), reaches the replica over TCP, and reads the failing
//! transaction from the primary's binlog (`--source auto` falls back to it). Judged by
//! outcome: exit code, CHECKSUM TABLE equal, the replica caught up, or, for refusals,
//! the replica untouched and stopped.

use crate::support::{Lab, files_under, text};
use mysql::prelude::Queryable;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOBODY: u32 = 65534;

fn lab(name: &str, knobs: &[&str]) -> Lab {
    let lab = Lab::up(name, knobs);
    lab.on_primary(&[
        "CREATE DATABASE lab",
        "CREATE TABLE lab.t (id INT PRIMARY KEY, k INT, v VARCHAR(40), UNIQUE KEY uk_k (k)) ENGINE=InnoDB",
        "INSERT INTO lab.t VALUES (1, 10, 'one'), (2, 20, 'two'), (3, 30, 'three')",
    ]);
    lab.wait_caught_up();
    lab
}

/// A home for `nobody` in the lab directory, with an option file holding the replica
/// login (`[client]`) and the primary login (`[repl-repair-primary]`: the lab's `repl`
/// user, which has REPLICATION SLAVE only).
fn nobody_home(lab: &Lab) -> PathBuf {
    let home = lab.dir.join("nobody");
    std::fs::create_dir_all(&home).unwrap();
    let cnf = home.join("my.cnf");
    std::fs::write(
        &cnf,
        format!(
            "[client]\nuser={}\npassword={}\n[repl-repair-primary]\nuser=repl\npassword=repl\n",
            lab.get("LAB_USER"),
            lab.get("LAB_PASSWORD")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cnf, std::fs::Permissions::from_mode(0o600)).unwrap();
    for p in [&home, &cnf] {
        std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    home
}

/// `repl-repair --once` as `nobody` over TCP against `hosts` (`host:port` list).
fn agent_as_nobody(home: &Path, hosts: &str, extra: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_repl-repair"))
        .arg(format!("--defaults-file={}", home.join("my.cnf").display()))
        .args(["-h", hosts, "--once"])
        .arg("--journal-dir")
        .arg(home.join("journal"))
        .arg("--lock-dir")
        .arg(home.join("locks"))
        .args(extra)
        .env_clear()
        .env("HOME", home)
        .current_dir("/")
        .output()
        .expect("run repl-repair through setpriv")
}

fn replica_addr(lab: &Lab) -> String {
    format!("127.0.0.1:{}", lab.get("REPLICA_PORT"))
}

/// The precondition of every test here: `nobody` cannot read the relay log.
fn assert_relay_unreadable(lab: &Lab) {
    let st = lab.status();
    let datadir = PathBuf::from(lab.get("REPLICA_DATADIR"));
    let relay = datadir.join(&st["Relay_Log_File"]);
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "head",
            "-c",
            "4",
        ])
        .arg(&relay)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "nobody can read {}: the test would not prove anything",
        relay.display()
    );
}

/// No temporary copy of a transaction is left behind.
fn assert_no_copies(home: &Path) {
    let left: Vec<PathBuf> = files_under(&home.join("journal"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".primary-"))
        .collect();
    assert!(left.is_empty(), "temporary copies left: {left:?}");
}

fn table_rows(lab: &Lab) -> Vec<(i32, Option<i32>, Option<String>)> {
    lab.replica()
        .query("SELECT id, k, v FROM lab.t ORDER BY id")
        .unwrap()
}

/// A refusal: exit 1, replication still stopped on the same error and position, the
/// replica's rows unchanged, a dead letter naming the reason.
fn assert_refused_untouched(
    lab: &Lab,
    home: &Path,
    out: &Output,
    before: &std::collections::HashMap<String, String>,
    rows: &[(i32, Option<i32>, Option<String>)],
    reason: &str,
) {
    let t = text(out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let st = lab.status();
    assert_eq!(st["Slave_SQL_Running"], "No", "{t}");
    for f in [
        "Last_SQL_Errno",
        "Relay_Log_File",
        "Relay_Log_Pos",
        "Exec_Master_Log_Pos",
    ] {
        assert_eq!(st[f], before[f], "{f} changed: {t}");
    }
    assert_eq!(table_rows(lab), rows, "the replica's rows changed: {t}");
    let letters: Vec<String> = files_under(&home.join("journal"))
        .iter()
        .filter(|p| p.to_string_lossy().contains("dead-letter"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(letters.len(), 1, "{t}");
    assert!(letters[0].contains(reason), "{}", letters[0]);
    assert!(
        files_under(&home.join("journal"))
            .iter()
            .all(|p| !p.to_string_lossy().ends_with(".undo.sql")),
        "a journal was written: {t}"
    );
    assert_no_copies(home);
}

#[test]
fn purged_primary_binlog_is_a_clean_refusal() {
    let lab = lab("remote_purged", &[]);
    let home = nobody_home(&lab);
    lab.drift("INSERT INTO lab.t VALUES (6, 600, 'replica only')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (6, 60, 'from primary')"]);
    let before = lab.wait_for_error(1062);
    let rows = table_rows(&lab);
    // The primary rotates and purges the binlog holding the failing transaction.
    // A binlog a dump thread still reads is skipped by PURGE: retry until it is gone.
    let mut p = lab.primary();
    p.query_drop("FLUSH BINARY LOGS").unwrap();
    let current: mysql::Row = p.query_first("SHOW MASTER STATUS").unwrap().unwrap();
    let current: String = current.get(0).unwrap();
    let failing = before["Relay_Master_Log_File"].clone();
    let start = std::time::Instant::now();
    loop {
        p.query_drop(format!("PURGE BINARY LOGS TO '{current}'"))
            .unwrap();
        let logs: Vec<String> = p
            .query_map("SHOW BINARY LOGS", |row: mysql::Row| {
                row.get::<String, _>(0).unwrap_or_default()
            })
            .unwrap();
        if !logs.contains(&failing) {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 20,
            "{failing} never purged: {logs:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = agent_as_nobody(&home, &replica_addr(&lab), &[]);
    assert_refused_untouched(&lab, &home, &out, &before, &rows, "purged");
}

#[test]
fn a_server_that_is_not_the_replicas_primary_is_refused() {
    let lab = lab("remote_wrong", &[]);
    let home = nobody_home(&lab);
    lab.drift("INSERT INTO lab.t VALUES (6, 600, 'replica only')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (6, 60, 'from primary')"]);
    let before = lab.wait_for_error(1062);
    let rows = table_rows(&lab);
    // The replica itself (server_id 2) named as the primary (Master_Server_Id 1).
    let out = agent_as_nobody(
        &home,
        &replica_addr(&lab),
        &[
            "--primary",
            &replica_addr(&lab),
            "--primary-user",
            "repair",
            "--primary-password",
            "repair",
        ],
    );
    assert_refused_untouched(
        &lab,
        &home,
        &out,
        &before,
        &rows,
        "not the primary this replica replicates from",
    );
}

/// Two replicas in one `-h` list, one in file/position mode and one with GTIDs
/// (MASTER_USE_GTID=slave_pos), each stopped by drift: one run repairs both.
#[test]
fn host_list_repairs_a_file_position_and_a_gtid_replica() {
    let plain = lab("remote_list_pos", &[]);
    let gtid = lab("remote_list_gtid", &["--gtid"]);
    let home = nobody_home(&plain);
    let using: mysql::Row = gtid
        .replica()
        .query_first("SHOW SLAVE STATUS")
        .unwrap()
        .unwrap();
    assert_eq!(
        using.get::<String, _>("Using_Gtid").as_deref(),
        Some("Slave_Pos")
    );
    for l in [&plain, &gtid] {
        l.drift("DELETE FROM lab.t WHERE id = 2");
        l.on_primary(&["UPDATE lab.t SET v = 'two, updated' WHERE id = 2"]);
        l.wait_for_error(1032);
    }
    assert_relay_unreadable(&gtid);
    let hosts = format!("{},{}", replica_addr(&plain), replica_addr(&gtid));
    let out = agent_as_nobody(&home, &hosts, &["--source", "primary"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert_eq!(t.matches("state=healthy").count(), 2, "{t}");
    plain.assert_converged("lab.t");
    gtid.assert_converged("lab.t");
    assert_no_copies(&home);
}

/// A 2 MB transaction, bigger than the primary's max_binlog_size (one primary file
/// holds a whole transaction, however large) and relayed over several relay files,
/// after several small primary binlogs: the dump starts in a later file and the
/// failing event is the transaction's last.
#[test]
fn large_transaction_after_rotations_is_read_whole() {
    let lab = lab("remote_large", &["--max-relay-log-size", "4096"]);
    let home = nobody_home(&lab);
    lab.on_primary(&[
        "SET GLOBAL max_binlog_size = 4096",
        "FLUSH BINARY LOGS",
        "INSERT INTO lab.t VALUES (4, 40, 'four')",
        "FLUSH BINARY LOGS",
    ]);
    lab.wait_caught_up();
    lab.drift("INSERT INTO lab.t VALUES (100000, NULL, 'replica only')");
    lab.on_primary(&[
        "CREATE TABLE lab.big (id INT PRIMARY KEY, pad VARCHAR(2000))",
        "BEGIN",
        "INSERT INTO lab.big SELECT seq, REPEAT('x', 2000) FROM lab.seq_1_to_1000",
        "INSERT INTO lab.t VALUES (100000, 1000, 'last event')",
        "COMMIT",
    ]);
    let st = lab.wait_for_error(1062);
    assert_ne!(st["Relay_Master_Log_File"], "primary-bin.000001");
    let out = agent_as_nobody(&home, &replica_addr(&lab), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    lab.assert_converged("lab.t");
    lab.assert_converged("lab.big");
    assert_no_copies(&home);
}

#[test]
fn dup_key_and_missing_row_repaired_from_the_primary_as_nobody_over_tcp() {
    let lab = lab("remote_basic", &[]);
    let home = nobody_home(&lab);
    // 1062.
    lab.drift("INSERT INTO lab.t VALUES (6, 600, 'replica only')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (6, 60, 'from primary')"]);
    lab.wait_for_error(1062);
    assert_relay_unreadable(&lab);
    let out = agent_as_nobody(&home, &replica_addr(&lab), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("state=healthy"), "{t}");
    lab.assert_converged("lab.t");
    assert_no_copies(&home);
    // 1032, in a transaction of several statements.
    lab.drift("DELETE FROM lab.t WHERE id = 2");
    lab.on_primary(&[
        "BEGIN",
        "INSERT INTO lab.t VALUES (7, 70, 'seven')",
        "UPDATE lab.t SET v = 'two, updated' WHERE id = 2",
        "DELETE FROM lab.t WHERE id = 3",
        "COMMIT",
    ]);
    lab.wait_for_error(1032);
    let out = agent_as_nobody(&home, &replica_addr(&lab), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    lab.assert_converged("lab.t");
    assert_no_copies(&home);
    // The audit trail and the journal of both repairs are nobody's own files.
    let journal: String = files_under(&home.join("journal"))
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".undo.sql"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(journal.contains("replica only"), "{journal}");
    // The audit says where each transaction was read.
    let audit: String = files_under(&home.join("journal"))
        .iter()
        .filter(|p| p.ends_with("audit.jsonl"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(!audit.is_empty(), "an audit trail");
    for line in audit.lines() {
        assert!(line.contains("\"read_from\":\"primary\""), "{line}");
    }
}

/// MariaDB multi-source: one replica with two connections, each from its own primary
/// (server_ids 1 and 3), both stopped by drift. Each transaction is read from the
/// primary of its own connection, found through that connection's Master_Host/Port.
#[test]
fn multi_source_two_primaries_each_read_from_its_own() {
    let lab = lab("remote_multi_a", &[]);
    let other = Lab::up("remote_multi_b", &["--primary-id", "3"]);
    // The other lab's replica has server_id 2 too: it would evict ours from primary b.
    other.replica().query_drop("STOP SLAVE").unwrap();
    let home = nobody_home(&lab);
    let (file, pos) = other.primary_position();
    other.on_primary(&[
        "CREATE DATABASE lab2",
        "CREATE TABLE lab2.t (id INT PRIMARY KEY, v VARCHAR(20))",
        "INSERT INTO lab2.t VALUES (1, 'one')",
    ]);
    lab.replica()
        .query_drop(format!(
            "CHANGE MASTER 'b' TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_CONNECT_RETRY=1, MASTER_LOG_FILE='{file}', MASTER_LOG_POS={pos}, MASTER_USE_GTID=no",
            other.get("PRIMARY_PORT")
        ))
        .unwrap();
    lab.replica().query_drop("START SLAVE 'b'").unwrap();
    let b_status = |lab: &Lab| -> (String, u32) {
        let rows: Vec<mysql::Row> = lab.replica().query("SHOW ALL SLAVES STATUS").unwrap();
        let b = rows
            .iter()
            .find(|r| r.get::<String, _>("Connection_name").as_deref() == Some("b"))
            .expect("connection b");
        (
            b.get::<String, _>("Slave_SQL_Running").unwrap_or_default(),
            b.get::<u32, _>("Last_SQL_Errno").unwrap_or(0),
        )
    };
    let rows_b = |lab: &Lab| -> u64 {
        lab.replica()
            .query_first("SELECT COUNT(*) FROM lab2.t")
            .ok()
            .flatten()
            .unwrap_or(0)
    };
    let start = std::time::Instant::now();
    while rows_b(&lab) == 0 {
        assert!(
            start.elapsed().as_secs() < 30,
            "connection 'b' never replicated"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Drift under both connections, then a conflict through each.
    lab.drift("INSERT INTO lab2.t VALUES (2, 'replica only')");
    other.on_primary(&["INSERT INTO lab2.t VALUES (2, 'from b')"]);
    lab.drift("DELETE FROM lab.t WHERE id = 3");
    lab.on_primary(&["UPDATE lab.t SET v = 'three, updated' WHERE id = 3"]);
    lab.wait_for_error(1032);
    let start = std::time::Instant::now();
    while b_status(&lab) != ("No".to_string(), 1062) {
        assert!(start.elapsed().as_secs() < 30, "b: {:?}", b_status(&lab));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_relay_unreadable(&lab);
    let mut last = None;
    for _ in 0..2 {
        let out = agent_as_nobody(&home, &replica_addr(&lab), &["--source", "primary"]);
        let done = out.status.code() == Some(0);
        last = Some(out);
        if done {
            break;
        }
    }
    let out = last.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    lab.assert_converged("lab.t");
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
        if p.1 == r.1 && b_status(&lab).0 == "Yes" {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 30,
            "lab2.t differs or b stopped: {:?} {}",
            b_status(&lab),
            text(&out)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_no_copies(&home);
}
