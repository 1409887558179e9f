//! Converge where the agent used to refuse (issue 10): keyless tables holding identical
//! rows, replica tables with extra trailing columns, rows larger than a statement can
//! carry. Judged by outcome: SQL thread running and caught up, CHECKSUM TABLE equal (over
//! the primary's columns where the replica has more), journals replayed through the
//! stock `mariadb` client with server defaults.

use crate::support::{Lab, text, undo_journals_under};
use mysql::prelude::Queryable;
use std::time::Instant;

fn lab(name: &str, tables: &[&str]) -> Lab {
    let lab = Lab::up(name, &[]);
    let mut sqls = vec!["CREATE DATABASE lab"];
    sqls.extend_from_slice(tables);
    lab.on_primary(&sqls);
    lab.wait_caught_up();
    lab
}

/// `--once`, asserting exit 0; returns the output and the seconds it took.
fn repair(lab: &Lab) -> (String, f64) {
    let start = Instant::now();
    let out = lab.repair(&["--once"]);
    let took = start.elapsed().as_secs_f64();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("repaired error"), "{t}");
    eprintln!(
        "repaired in {took:.3}s: {}",
        t.lines()
            .filter(|l| l.contains("repaired error"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    (t, took)
}

fn count(lab: &Lab, q: &str) -> u64 {
    lab.replica().query_first(q).unwrap().unwrap()
}

// ---- 1. Keyless tables are multisets. ----

#[test]
fn keyless_delete_of_two_identical_rows_where_the_replica_lost_one_copy() {
    let lab = lab(
        "conv-multiset-del",
        &[
            "CREATE TABLE lab.t (a INT, b VARCHAR(10))",
            "INSERT INTO lab.t VALUES (4, 'dup'), (4, 'dup'), (5, 'other')",
        ],
    );
    lab.drift("DELETE FROM lab.t WHERE a = 4 LIMIT 1");
    lab.on_primary(&["DELETE FROM lab.t WHERE a = 4"]);
    lab.wait_for_error(1032);
    let (out, _) = repair(&lab);
    assert!(out.contains("1 inserted"), "{out}");
    lab.assert_converged("lab.t");
    assert_eq!(count(&lab, "SELECT COUNT(*) FROM lab.t"), 1);
}

#[test]
fn keyless_update_of_three_identical_rows_where_the_replica_holds_one() {
    let lab = lab(
        "conv-multiset-upd",
        &[
            "CREATE TABLE lab.t (a INT, b VARCHAR(10))",
            "INSERT INTO lab.t VALUES (4, 'dup'), (4, 'dup'), (4, 'dup')",
        ],
    );
    lab.drift("DELETE FROM lab.t WHERE a = 4 LIMIT 2");
    lab.on_primary(&["UPDATE lab.t SET b = 'new'"]);
    lab.wait_for_error(1032);
    let (out, _) = repair(&lab);
    assert!(out.contains("2 inserted"), "{out}");
    lab.assert_converged("lab.t");
    assert_eq!(count(&lab, "SELECT COUNT(*) FROM lab.t WHERE b = 'new'"), 3);
}

// ---- 2. Extra trailing replica columns. ----

/// CHECKSUM over the primary's columns on both sides.
fn primary_columns_equal(lab: &Lab, cols: &str, table: &str) {
    lab.wait_caught_up();
    let q = format!("SELECT COUNT(*), IFNULL(SUM(CRC32(CONCAT_WS('|', {cols}))), 0) FROM {table}");
    let p: (u64, u64) = lab.primary().query_first(&q).unwrap().unwrap();
    let r: (u64, u64) = lab.replica().query_first(&q).unwrap().unwrap();
    assert_eq!(p, r, "{table} differs over the primary's columns");
}

#[test]
fn extra_trailing_replica_column_1062_and_1032() {
    let lab = lab(
        "conv-extra",
        &[
            "CREATE TABLE lab.t (id INT PRIMARY KEY, v VARCHAR(10))",
            "CREATE TABLE lab.k (a INT, v VARCHAR(10))",
            "INSERT INTO lab.t VALUES (1, 'one'), (2, 'two')",
            "INSERT INTO lab.k VALUES (1, 'one'), (2, 'two')",
        ],
    );
    lab.drift("ALTER TABLE lab.t ADD COLUMN note VARCHAR(20) NOT NULL DEFAULT 'replica'");
    lab.drift("ALTER TABLE lab.k ADD COLUMN seen INT DEFAULT 7");
    // 1062: a replica-only row holds the primary's new id.
    lab.drift("INSERT INTO lab.t VALUES (3, 'mine', 'kept?')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (3, 'theirs')"]);
    lab.wait_for_error(1062);
    repair(&lab);
    primary_columns_equal(&lab, "id, v", "lab.t");
    // 1032: the replica lost a row the primary updates.
    lab.drift("DELETE FROM lab.t WHERE id = 2");
    lab.on_primary(&["UPDATE lab.t SET v = 'TWO' WHERE id = 2"]);
    lab.wait_for_error(1032);
    repair(&lab);
    primary_columns_equal(&lab, "id, v", "lab.t");
    let note: String = lab
        .replica()
        .query_first("SELECT note FROM lab.t WHERE id = 2")
        .unwrap()
        .unwrap();
    assert_eq!(note, "replica", "the extra column takes its default");
    // 1032 on a keyless table: identity over the primary's columns only.
    lab.drift("DELETE FROM lab.k WHERE a = 2");
    lab.on_primary(&["UPDATE lab.k SET v = 'x'"]);
    lab.wait_for_error(1032);
    repair(&lab);
    primary_columns_equal(&lab, "a, v", "lab.k");
    assert_eq!(count(&lab, "SELECT COUNT(*) FROM lab.k"), 2);
}

#[test]
fn a_replica_with_fewer_columns_or_a_unique_key_on_an_extra_column_is_refused() {
    let lab = lab(
        "conv-extra-refused",
        &["CREATE TABLE lab.t (id INT PRIMARY KEY, v VARCHAR(10))"],
    );
    lab.drift("ALTER TABLE lab.t ADD COLUMN u INT NULL, ADD UNIQUE KEY uu (u)");
    lab.drift("INSERT INTO lab.t VALUES (3, 'mine', 1)");
    let before = lab.checksums("lab.t").1;
    lab.on_primary(&["INSERT INTO lab.t VALUES (3, 'theirs')"]);
    lab.wait_for_error(1062);
    let out = lab.repair(&["--once"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("covers a column the primary's table does not have"),
        "{t}"
    );
    assert_eq!(lab.checksums("lab.t").1, before, "untouched");
}

// ---- 3. Rows larger than a statement can carry. ----

/// A value of `mb` MiB with every byte value, quotes and backslashes in it.
fn big(mb: usize) -> String {
    format!(
        "REPEAT(CONCAT(X'00275C0A0D1A22', UNHEX(REPEAT('FF', 9)), 'abc'), {} * 1024 * 1024 / 19)",
        mb
    )
}

#[test]
fn a_12_mb_blob_1032_and_a_9_mb_blob_1062_with_server_defaults_and_a_replayable_journal() {
    let lab = lab(
        "conv-big",
        &[
            "CREATE TABLE lab.b (id INT PRIMARY KEY, v INT, blob_col LONGBLOB, txt LONGTEXT CHARACTER SET latin1)",
        ],
    );
    let max: u64 = lab
        .replica()
        .query_first("SELECT @@max_allowed_packet")
        .unwrap()
        .unwrap();
    assert_eq!(max, 16 << 20, "server default max_allowed_packet");
    // 1032: the replica lost a 12 MB row the primary updates.
    lab.on_primary(&[&format!(
        "INSERT INTO lab.b VALUES (1, 0, {}, REPEAT(X'E9', 1000))",
        big(12)
    )]);
    lab.wait_caught_up();
    lab.drift("DELETE FROM lab.b WHERE id = 1");
    lab.on_primary(&["UPDATE lab.b SET v = 1 WHERE id = 1"]);
    lab.wait_for_error(1032);
    let (_, took) = repair(&lab);
    eprintln!("12 MB 1032: healthy in {took:.3}s");
    lab.assert_converged("lab.b");
    // 1062: a 9 MB replica-only row (binary and latin1 text) holds the primary's new id.
    lab.drift(&format!(
        "INSERT INTO lab.b VALUES (2, 9, {}, REPEAT(X'E9E8', 300000))",
        big(9)
    ));
    const SUMS: &str = "SELECT CONCAT(MD5(blob_col), MD5(txt), LENGTH(blob_col), LENGTH(txt)) FROM lab.b WHERE id = 2";
    let before: String = lab.replica().query_first(SUMS).unwrap().unwrap();
    lab.on_primary(&["INSERT INTO lab.b VALUES (2, 2, 'small', 'small')"]);
    lab.wait_for_error(1062);
    let (out, took) = repair(&lab);
    eprintln!("9 MB 1062: healthy in {took:.3}s");
    for line in out.lines() {
        assert!(line.len() < 4096, "a log line of {} bytes", line.len());
    }
    lab.assert_converged("lab.b");
    // Replay the undo journal of the 1062 through the stock client, server defaults.
    let journal = undo_journals_under(&lab.journal_dir())
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("INSERT /* repl-repair */ INTO")
        })
        .expect("the 1062's undo journal");
    let longest = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(str::len)
        .max()
        .unwrap();
    assert!(longest < 2 << 20, "a journal line of {longest} bytes");
    lab.drift("DELETE FROM lab.b WHERE id = 2");
    let r = lab.replay(&journal);
    assert!(r.status.success(), "{}", text(&r));
    let after: String = lab.replica().query_first(SUMS).unwrap().unwrap();
    assert_eq!(after, before, "the 9 MB row is restored byte for byte");
}
