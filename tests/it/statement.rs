//! Live repairs of 1062 raised by statement-format events (`scripts/lab --binlog-format
//! STATEMENT|MIXED`; MariaDB's default is MIXED, which logs a plain INSERT … VALUES as a
//! statement), judged by outcome: SQL thread running, the replica executed everything the
//! primary wrote, CHECKSUM TABLE equal on both sides. Each test prints the rounds and the
//! time from the error to a healthy replica (`cargo test --test it statement:: -- --nocapture`).

use crate::support::{Lab, files_under, text, undo_journals_under};
use mysql::prelude::Queryable;
use std::time::{Duration, Instant};

const TABLE: &str = "CREATE TABLE lab.t (id INT PRIMARY KEY, k INT, v VARCHAR(40), UNIQUE KEY uk_k (k)) ENGINE=InnoDB";

fn lab(name: &str, format: &str) -> Lab {
    let lab = Lab::up(name, &["--binlog-format", format]);
    lab.on_primary(&[
        "CREATE DATABASE lab",
        TABLE,
        "INSERT INTO lab.t VALUES (1, 10, 'one'), (2, 20, 'two'), (3, 30, 'three')",
    ]);
    lab.wait_caught_up();
    lab
}

/// Whether the primary logged `needle` as a statement (a QUERY event), not as rows.
fn logged_as_statement(lab: &Lab, needle: &str) -> bool {
    let mut p = lab.primary();
    let files: Vec<String> = p
        .query_map("SHOW BINARY LOGS", |r: mysql::Row| {
            r.get::<String, _>(0).unwrap_or_default()
        })
        .unwrap();
    files.iter().any(|f| {
        let rows: Vec<(String, u64, String, u32, u64, String)> =
            p.query(format!("SHOW BINLOG EVENTS IN '{f}'")).unwrap();
        rows.iter().any(|r| r.2 == "Query" && r.5.contains(needle))
    })
}

/// What a repair took: the agent's rounds and the time from the error to caught up.
struct Healed {
    log: String,
    rounds: u32,
    to_healthy: Duration,
}

/// Runs `repl-repair --once` on a replica stopped with a statement's 1062 (noticed at
/// `stopped`) and asserts it is repaired, caught up and equal to the primary.
fn repair_to_healthy(lab: &Lab, table: &str, stopped: Instant, what: &str) -> Healed {
    let out = lab.repair(&["--once"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("state=healthy"), "{log}");
    assert!(log.contains("repaired error 1062"), "{log}");
    lab.assert_converged(table);
    let to_healthy = stopped.elapsed();
    // "repaired error 1062: … (SQL thread restarted after 0.023s, 3 rounds), …"
    let line = log
        .split("repaired error 1062")
        .nth(1)
        .unwrap_or_else(|| panic!("no repair line in {log}"));
    let rounds = line
        .split(" round")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no round count in {log}"));
    eprintln!(
        "{what}: {rounds} round(s), {:.3}s from the error to healthy",
        to_healthy.as_secs_f64()
    );
    Healed {
        log,
        rounds,
        to_healthy,
    }
}

fn replay(lab: &Lab, journal: &std::path::Path) {
    let out = lab.replay(journal);
    assert!(out.status.success(), "{}", text(&out));
}

fn checksum(lab: &Lab, table: &str) -> Option<u64> {
    lab.checksums(table).1
}

#[test]
fn statement_1062_on_primary_key_under_statement_format_and_its_journal_replays() {
    let lab = lab("stmt_pk", "STATEMENT");
    lab.drift("INSERT INTO lab.t VALUES (4, 400, 'replica only')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (4, 40, 'from primary')"]);
    assert!(logged_as_statement(&lab, "INSERT INTO lab.t VALUES (4"));
    let st = lab.wait_for_error(1062);
    let stopped = Instant::now();
    let msg = &st["Last_SQL_Error"];
    assert!(
        msg.starts_with("Error 'Duplicate entry '4' for key 'PRIMARY'' on query."),
        "{msg}"
    );
    let h = repair_to_healthy(&lab, "lab.t", stopped, "STATEMENT, single-column PK");
    assert_eq!(h.rounds, 1, "{}", h.log);
    assert!(
        h.log
            .contains("fix applied: DELETE /* repl-repair */ FROM `lab`.`t` WHERE `id` = 4"),
        "{}",
        h.log
    );
    // The journal restores the replica-only row: take the primary's row away, replay.
    let journals = undo_journals_under(&lab.journal_dir().join(lab.get("REPLICA_PORT")));
    assert_eq!(journals.len(), 1, "{journals:?}");
    lab.drift("DELETE FROM lab.t WHERE id = 4");
    replay(&lab, &journals[0]);
    let row: Option<(i32, i32, String)> = lab
        .replica()
        .query_first("SELECT id, k, v FROM lab.t WHERE id = 4")
        .unwrap();
    assert_eq!(row, Some((4, 400, "replica only".to_string())));
}

#[test]
fn statement_1062_on_primary_key_under_mixed_format() {
    let lab = lab("stmt_mixed", "MIXED");
    lab.drift("INSERT INTO lab.t VALUES (5, 500, 'replica only')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (5, 50, 'from primary')"]);
    assert!(
        logged_as_statement(&lab, "INSERT INTO lab.t VALUES (5"),
        "MIXED logs a plain INSERT … VALUES as a statement"
    );
    lab.wait_for_error(1062);
    let stopped = Instant::now();
    let h = repair_to_healthy(&lab, "lab.t", stopped, "MIXED, single-column PK");
    assert_eq!(h.rounds, 1, "{}", h.log);
    assert!(h.to_healthy < Duration::from_secs(30));
}

#[test]
fn statement_1062_on_secondary_unique_key_with_default_database() {
    let lab = lab("stmt_uk", "MIXED");
    lab.drift("INSERT INTO lab.t VALUES (99, 70, 'holds k=70 on the replica')");
    // Unqualified table name: the target comes from the QUERY event's default database.
    let mut p = lab.primary();
    p.query_drop("USE lab").unwrap();
    p.query_drop("INSERT INTO t VALUES (7, 70, 'from primary')")
        .unwrap();
    let st = lab.wait_for_error(1062);
    let stopped = Instant::now();
    assert!(
        st["Last_SQL_Error"].contains("Default database: 'lab'"),
        "{}",
        st["Last_SQL_Error"]
    );
    let h = repair_to_healthy(&lab, "lab.t", stopped, "MIXED, secondary unique key");
    assert!(h.log.contains("WHERE `k` = 70"), "{}", h.log);
    let n: u64 = lab
        .replica()
        .query_first("SELECT COUNT(*) FROM lab.t WHERE id = 99")
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn statement_1062_from_an_update_moving_a_unique_key_onto_a_replica_only_value() {
    let lab = lab("stmt_update", "MIXED");
    lab.drift("INSERT INTO lab.t VALUES (98, 80, 'holds k=80 on the replica')");
    lab.on_primary(&["UPDATE lab.t SET k = 80 WHERE id = 1"]);
    assert!(logged_as_statement(&lab, "UPDATE lab.t SET k = 80"));
    let st = lab.wait_for_error(1062);
    let stopped = Instant::now();
    assert!(
        st["Last_SQL_Error"].contains("Duplicate entry '80' for key 'uk_k'"),
        "{}",
        st["Last_SQL_Error"]
    );
    let h = repair_to_healthy(&lab, "lab.t", stopped, "MIXED, UPDATE onto a unique key");
    assert_eq!(h.rounds, 1, "{}", h.log);
    assert!(h.log.contains("WHERE `k` = 80"), "{}", h.log);
}

#[test]
fn statement_1062_multi_column_keys_resolved_by_type_and_by_existence() {
    let lab = lab("stmt_multi", "MIXED");
    lab.on_primary(&[
        // 'x-y-3': only ('x-y', 3) fits (VARCHAR, INT); ('x', 'y-3') is no INT.
        "CREATE TABLE lab.m1 (id INT PRIMARY KEY, a VARCHAR(20), b INT, UNIQUE KEY uk_ab (a, b))",
        // 'x-y-z': ('x', 'y-z') and ('x-y', 'z') both fit; only one is on the replica.
        "CREATE TABLE lab.m2 (id INT PRIMARY KEY, a VARCHAR(20), b VARCHAR(20), UNIQUE KEY uk_ab (a, b))",
        "INSERT INTO lab.m2 VALUES (1, 'x', 'y-q')",
    ]);
    lab.wait_caught_up();

    lab.drift("INSERT INTO lab.m1 VALUES (100, 'x-y', 3)");
    lab.on_primary(&["INSERT INTO lab.m1 VALUES (1, 'x-y', 3)"]);
    let st = lab.wait_for_error(1062);
    let stopped = Instant::now();
    assert!(
        st["Last_SQL_Error"].contains("Duplicate entry 'x-y-3' for key 'uk_ab'"),
        "{}",
        st["Last_SQL_Error"]
    );
    let h = repair_to_healthy(&lab, "lab.m1", stopped, "multi-column key, split by type");
    assert_eq!(h.rounds, 1, "{}", h.log);

    lab.drift("INSERT INTO lab.m2 VALUES (100, 'x-y', 'z')");
    lab.on_primary(&["INSERT INTO lab.m2 VALUES (2, 'x-y', 'z')"]);
    let st = lab.wait_for_error(1062);
    let stopped = Instant::now();
    assert!(
        st["Last_SQL_Error"].contains("Duplicate entry 'x-y-z' for key 'uk_ab'"),
        "{}",
        st["Last_SQL_Error"]
    );
    let h = repair_to_healthy(
        &lab,
        "lab.m2",
        stopped,
        "multi-column key, split by existence",
    );
    assert_eq!(h.rounds, 1, "{}", h.log);
    let kept: u64 = lab
        .replica()
        .query_first("SELECT COUNT(*) FROM lab.m2 WHERE a = 'x' AND b = 'y-q'")
        .unwrap()
        .unwrap();
    assert_eq!(kept, 1, "the other reading's row is untouched");
}

#[test]
fn statement_1062_multi_row_insert_with_three_duplicates_converges_in_three_rounds() {
    let lab = lab("stmt_rounds", "MIXED");
    lab.drift("INSERT INTO lab.t VALUES (11, 1100, 'r'), (13, 1300, 'r'), (15, 1500, 'r')");
    lab.on_primary(&[
        "INSERT INTO lab.t VALUES (11, 110, 'a'), (12, 120, 'b'), (13, 130, 'c'), (14, 140, 'd'), (15, 150, 'e')",
    ]);
    lab.wait_for_error(1062);
    let stopped = Instant::now();
    let h = repair_to_healthy(&lab, "lab.t", stopped, "multi-row INSERT, 3 duplicates");
    assert_eq!(h.rounds, 3, "one round per duplicate: {}", h.log);
    assert!(h.log.contains("3 rows deleted"), "{}", h.log);
    assert_eq!(
        undo_journals_under(&lab.journal_dir().join(lab.get("REPLICA_PORT"))).len(),
        3,
        "one journal per round"
    );
}

#[test]
fn statement_1062_ambiguous_value_is_refused_and_the_replica_untouched() {
    let lab = lab("stmt_ambiguous", "MIXED");
    lab.on_primary(&[
        "CREATE TABLE lab.m (id INT PRIMARY KEY, a VARCHAR(20), b VARCHAR(20), UNIQUE KEY uk_ab (a, b))",
        // Held on both sides, legitimately: one reading of 'x-y-z'.
        "INSERT INTO lab.m VALUES (1, 'x', 'y-z')",
    ]);
    lab.wait_caught_up();
    // Drift holding the other reading.
    lab.drift("INSERT INTO lab.m VALUES (100, 'x-y', 'z')");
    lab.on_primary(&["INSERT INTO lab.m VALUES (2, 'x-y', 'z')"]);
    lab.wait_for_error(1062);
    let before = checksum(&lab, "lab.m");
    let out = lab.repair(&["--once"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "needs a human: {log}");
    assert!(log.contains("ambiguous"), "{log}");
    assert_eq!(checksum(&lab, "lab.m"), before, "nothing changed");
    let st = lab.status();
    assert_eq!(st["Slave_SQL_Running"], "No");
    assert_eq!(st["Last_SQL_Errno"], "1062");
    let dead: Vec<_> = files_under(&lab.journal_dir())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("dead-letter"))
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter = std::fs::read_to_string(&dead[0]).unwrap();
    assert!(letter.contains("ambiguous"), "{letter}");
    assert!(
        undo_journals_under(&lab.journal_dir().join(lab.get("REPLICA_PORT"))).is_empty(),
        "no journal: nothing deleted"
    );
}

#[test]
fn statement_1062_with_a_truncated_value_is_refused() {
    let lab = lab("stmt_truncated", "MIXED");
    lab.on_primary(&["CREATE TABLE lab.l (s VARCHAR(200) PRIMARY KEY)"]);
    lab.wait_caught_up();
    lab.drift("INSERT INTO lab.l VALUES (REPEAT('a', 65))");
    lab.on_primary(&["INSERT INTO lab.l VALUES (REPEAT('a', 65))"]);
    let st = lab.wait_for_error(1062);
    assert!(
        st["Last_SQL_Error"].contains(&format!("'{}...'", "a".repeat(61))),
        "the server cuts the value: {}",
        st["Last_SQL_Error"]
    );
    let before = checksum(&lab, "lab.l");
    let out = lab.repair(&["--once"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("may be truncated"), "{log}");
    assert_eq!(checksum(&lab, "lab.l"), before);
    assert_eq!(lab.status()["Slave_SQL_Running"], "No");
}

/// Server behaviour the repair relies on, documented: in statement format an UPDATE or
/// DELETE of a row the replica lacks matches zero rows, which is no error. Replication
/// keeps running and the drift stays silent, so 1032 only ever comes from row events.
#[test]
fn statement_update_and_delete_of_missing_rows_do_not_stop_replication() {
    let lab = lab("stmt_no1032", "MIXED");
    lab.drift("DELETE FROM lab.t WHERE id IN (2, 3)");
    lab.on_primary(&[
        "UPDATE lab.t SET v = 'two, updated' WHERE id = 2",
        "DELETE FROM lab.t WHERE id = 3",
    ]);
    assert!(logged_as_statement(
        &lab,
        "UPDATE lab.t SET v = 'two, updated'"
    ));
    assert!(logged_as_statement(&lab, "DELETE FROM lab.t WHERE id = 3"));
    lab.wait_caught_up();
    let st = lab.status();
    assert_eq!(st["Slave_SQL_Running"], "Yes");
    assert_eq!(st["Last_SQL_Errno"], "0");
    let (p, r) = lab.checksums("lab.t");
    assert_ne!(p, r, "the drift is silent: the replica still lacks row 2");
}
