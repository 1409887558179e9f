//! Live repairs on a real MariaDB primary/replica (scripts/lab), judged by outcome: the
//! SQL thread runs, the replica executed everything the primary wrote, and CHECKSUM
//! TABLE is equal on both sides. Drift is made on the replica with sql_log_bin=0.

mod support;

use mysql::prelude::Queryable;
use support::{Lab, files_under, text};

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
