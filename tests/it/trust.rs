//! Trust (issue 9): a fix changes exactly the rows it journals, and the journal is safe to
//! replay. Each test reproduces a case on a real primary/replica and judges it by outcome:
//! CHECKSUM TABLE of every table involved, or a clean refusal that left the replica as it
//! was; journals replayed through the stock `mariadb` client.

use crate::support::{Lab, files_under, text, undo_journals_under};
use mysql::prelude::Queryable;
use std::path::PathBuf;
use std::process::{Command, Output};

fn lab(name: &str, knobs: &[&str], tables: &[&str]) -> Lab {
    let lab = Lab::up(name, knobs);
    let mut sqls = vec!["CREATE DATABASE lab"];
    sqls.extend_from_slice(tables);
    lab.on_primary(&sqls);
    lab.wait_caught_up();
    lab
}

/// `repl-repair --once` with a named instance, so its journal directory is known.
fn once(lab: &Lab, extra: &[&str]) -> Output {
    agent(lab, "r1", extra).output().expect("run repl-repair")
}

fn agent(lab: &Lab, user: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_repl-repair"));
    let (u, p) = if user == "r1" {
        (
            lab.get("LAB_USER").to_string(),
            lab.get("LAB_PASSWORD").to_string(),
        )
    } else {
        (user.to_string(), user.to_string())
    };
    c.args(["-u", &u])
        .arg("--instance")
        .arg(format!("r1={}", lab.get("REPLICA_SOCKET")))
        .arg("--journal-dir")
        .arg(lab.journal_dir())
        // Every test names its instance r1: each lab gets its own lock directory.
        .arg("--lock-dir")
        .arg(lab.dir.join("locks"))
        .arg("--once")
        .args(extra)
        .env("MYSQL_PWD", p);
    c
}

fn instance_dir(lab: &Lab) -> PathBuf {
    lab.journal_dir().join("r1")
}

fn replica_value<T: mysql::prelude::FromValue>(lab: &Lab, q: &str) -> T {
    lab.replica()
        .query_first(q)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .unwrap_or_else(|| panic!("{q}: no row"))
}

fn replica_checksum(lab: &Lab, table: &str) -> Option<u64> {
    lab.checksums(table).1
}

fn sql_running(lab: &Lab) -> String {
    lab.status()["Slave_SQL_Running"].clone()
}

// ---- 1. A fix never fires a trigger. ----

#[test]
fn a_fix_that_would_fire_a_replica_trigger_is_refused_and_the_replica_is_untouched() {
    let lab = lab(
        "trust-trigger",
        &[],
        &[
            "CREATE TABLE lab.o (id INT PRIMARY KEY, s VARCHAR(10))",
            "CREATE TABLE lab.arch (id INT, s VARCHAR(10))",
            // Triggers replicate as DDL: the replica has them too.
            "CREATE TRIGGER lab.d AFTER DELETE ON lab.o FOR EACH ROW INSERT INTO lab.arch VALUES (OLD.id, OLD.s)",
            // A trigger for an operation a fix never runs does not stand in the way.
            "CREATE TABLE lab.w (id INT PRIMARY KEY, s VARCHAR(10))",
            "CREATE TRIGGER lab.wu BEFORE UPDATE ON lab.w FOR EACH ROW SET NEW.s = NEW.s",
        ],
    );
    // A trigger for an operation a fix never runs (UPDATE) does not stand in the way.
    lab.drift("INSERT INTO lab.w VALUES (7, 'r')");
    lab.on_primary(&["INSERT INTO lab.w VALUES (7, 'p')"]);
    lab.wait_for_error(1062);
    let out = once(&lab, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    lab.assert_converged("lab.w");
    let repaired = undo_journals_under(&instance_dir(&lab)).len();
    assert_eq!(repaired, 1);

    lab.drift("INSERT INTO lab.o VALUES (901, 'r')");
    let before = (
        replica_checksum(&lab, "lab.o"),
        replica_checksum(&lab, "lab.arch"),
    );
    lab.on_primary(&["INSERT INTO lab.o VALUES (901, 'p')"]);
    lab.wait_for_error(1062);
    let out = once(&lab, &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "a refusal needs a human: {t}");
    assert!(
        t.contains("trigger `d`"),
        "the refusal names the trigger: {t}"
    );
    assert_eq!(
        (
            replica_checksum(&lab, "lab.o"),
            replica_checksum(&lab, "lab.arch")
        ),
        before,
        "the replica is untouched: no row deleted, nothing archived"
    );
    let arch: u64 = replica_value(&lab, "SELECT COUNT(*) FROM lab.arch");
    assert_eq!(arch, 0, "the trigger never fired");
    assert_eq!(sql_running(&lab), "No", "replication left stopped");
    let letters = files_under(&instance_dir(&lab).join("dead-letter"));
    assert_eq!(letters.len(), 1, "one dead letter: {letters:?}");
    assert_eq!(
        undo_journals_under(&instance_dir(&lab)).len(),
        repaired,
        "nothing journalled, nothing run"
    );
}

#[test]
fn a_1032_fix_into_a_table_with_an_insert_trigger_is_refused() {
    let lab = lab(
        "trust-trigger-ins",
        &[],
        &[
            "CREATE TABLE lab.o (id INT PRIMARY KEY, s VARCHAR(10))",
            "CREATE TABLE lab.log (id INT)",
            "CREATE TRIGGER lab.i AFTER INSERT ON lab.o FOR EACH ROW INSERT INTO lab.log VALUES (NEW.id)",
            "INSERT INTO lab.o VALUES (1, 'a')",
        ],
    );
    lab.drift("DELETE FROM lab.o WHERE id = 1");
    let before = replica_checksum(&lab, "lab.log");
    lab.on_primary(&["UPDATE lab.o SET s = 'b' WHERE id = 1"]);
    lab.wait_for_error(1032);
    let out = once(&lab, &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("INSERT trigger `i`"), "{t}");
    let n: u64 = replica_value(&lab, "SELECT COUNT(*) FROM lab.o");
    assert_eq!(n, 0, "no row inserted");
    assert_eq!(replica_checksum(&lab, "lab.log"), before);
}

// ---- 2. Keyless tables with FLOAT columns. ----

#[test]
fn keyless_table_with_float_columns_gets_no_duplicate_row() {
    let lab = lab(
        "trust-float",
        &[],
        &[
            "CREATE TABLE lab.kl (a INT, f FLOAT, d DOUBLE)",
            "INSERT INTO lab.kl VALUES (1, 0.1, 0.1), (2, 0.2, 0.2), (3, -3.4e38, 1e-300)",
        ],
    );
    lab.drift("DELETE FROM lab.kl WHERE a = 2");
    lab.on_primary(&["UPDATE lab.kl SET a = a + 10"]);
    lab.wait_for_error(1032);
    let out = once(&lab, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    lab.assert_converged("lab.kl");
    let n: u64 = replica_value(&lab, "SELECT COUNT(*) FROM lab.kl");
    assert_eq!(n, 3, "no duplicate of an existing FLOAT row");
}

// ---- 3. The journal and the logs are inert. ----

const EVIL: &str = "CONCAT('bob', CHAR(10), 'CREATE DATABASE pwned; -- ')";

#[test]
fn a_value_with_a_newline_cannot_inject_sql_through_the_journal_or_forge_log_lines() {
    let lab = lab(
        "trust-inject",
        &["--replica-binlog"],
        &["CREATE TABLE lab.`u``1` (id INT PRIMARY KEY, name VARCHAR(100), UNIQUE KEY uk (name))"],
    );
    lab.drift(&format!("INSERT INTO lab.`u``1` VALUES (5, {EVIL})"));
    lab.on_primary(&[&format!("INSERT INTO lab.`u``1` VALUES (6, {EVIL})")]);
    let st = lab.wait_for_error(1062);
    assert!(
        st["Last_SQL_Error"].contains("bob\nCREATE DATABASE pwned"),
        "the server's error text holds the value verbatim: {:?}",
        st["Last_SQL_Error"]
    );
    let logdir = lab.dir.join("logs");
    std::fs::create_dir_all(&logdir).unwrap();
    let out = once(&lab, &["-l", logdir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    lab.assert_converged("lab.`u``1`");
    let journals = undo_journals_under(&instance_dir(&lab));
    assert_eq!(journals.len(), 1, "{journals:?}");
    let j = std::fs::read_to_string(&journals[0]).unwrap();
    assert!(
        j.starts_with("SET SESSION sql_log_bin = 0;"),
        "session settings come first: {j}"
    );
    for line in j.lines() {
        assert!(
            !line.starts_with("CREATE"),
            "a line of data became a statement: {line:?}\n{j}"
        );
    }
    // Replay it: the primary's row has to go first (its unique name is the same).
    lab.drift("DELETE FROM lab.`u``1` WHERE id = 6");
    let gtid_before: String = replica_value(&lab, "SELECT @@gtid_binlog_pos");
    let r = lab.replay(&journals[0]);
    assert!(r.status.success(), "{}", text(&r));
    let pwned: u64 = replica_value(
        &lab,
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'pwned'",
    );
    assert_eq!(pwned, 0, "replaying the journal ran injected SQL");
    let restored: String = replica_value(&lab, "SELECT HEX(name) FROM lab.`u``1` WHERE id = 5");
    let want: String = lab
        .primary()
        .query_first(format!("SELECT HEX({EVIL})"))
        .unwrap()
        .unwrap();
    assert_eq!(restored, want, "the row is restored byte for byte");
    let gtid_after: String = replica_value(&lab, "SELECT @@gtid_binlog_pos");
    assert_eq!(
        gtid_before, gtid_after,
        "the replay stayed out of the replica's binlog"
    );
    // Logs: no line begins with the injected text.
    for f in files_under(&logdir) {
        let log = std::fs::read_to_string(&f).unwrap();
        for line in log.lines() {
            assert!(
                !line.starts_with("CREATE DATABASE pwned"),
                "{}: a value forged a log line: {line:?}",
                f.display()
            );
        }
        assert!(log.contains("bob\\nCREATE DATABASE pwned"), "{log}");
    }
}

// ---- 4. Every charset restored byte for byte. ----

#[test]
fn the_undo_journal_restores_latin1_gbk_utf16_cp1251_sjis_ucs2_values_byte_exact() {
    let lab = lab(
        "trust-charsets",
        &[],
        &[
            "CREATE TABLE lab.cs (id INT PRIMARY KEY, l VARCHAR(20) CHARACTER SET latin1, g VARCHAR(20) CHARACTER SET gbk, u VARCHAR(20) CHARACTER SET utf16, c VARCHAR(20) CHARACTER SET cp1251, s VARCHAR(20) CHARACTER SET sjis, ucs TEXT CHARACTER SET ucs2, ch CHAR(5) CHARACTER SET latin1)",
        ],
    );
    lab.drift(
        "INSERT INTO lab.cs VALUES (1, _latin1 X'636166E9', _gbk X'C4E3BAC3', _utf16 X'00630061D83DDE00', _cp1251 X'CFF0E8E2E5F2', _sjis X'82A082A2', _ucs2 X'00E9006E', _latin1 X'E9')",
    );
    const HEX: &str = "SELECT CONCAT_WS('|', HEX(l), HEX(g), HEX(u), HEX(c), HEX(s), HEX(ucs), HEX(ch)) FROM lab.cs WHERE id = 1";
    let before: String = replica_value(&lab, HEX);
    assert!(before.starts_with("636166E9|C4E3BAC3|"), "{before}");
    lab.on_primary(&["INSERT INTO lab.cs (id) VALUES (1)"]);
    lab.wait_for_error(1062);
    let out = once(&lab, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    lab.assert_converged("lab.cs");
    let journals = undo_journals_under(&instance_dir(&lab));
    assert_eq!(journals.len(), 1);
    let j = std::fs::read_to_string(&journals[0]).unwrap();
    assert!(j.contains("_latin1 X'636166E9'"), "{j}");
    lab.drift("DELETE FROM lab.cs WHERE id = 1");
    let r = lab.replay(&journals[0]);
    assert!(r.status.success(), "{}", text(&r));
    let after: String = replica_value(&lab, HEX);
    assert_eq!(after, before, "every charset restored byte for byte");
}

// ---- 5. Committed is committed: a record that fails after COMMIT, a restart denied. ----

#[test]
fn an_audit_write_failing_after_commit_is_reported_as_committed_and_replication_restarts() {
    let lab = lab(
        "trust-full",
        &[],
        &["CREATE TABLE lab.t (id INT PRIMARY KEY, v VARCHAR(10))"],
    );
    // The audit trail lands on a full device: the journal is written, the COMMIT runs,
    // then the audit write fails.
    std::fs::create_dir_all(instance_dir(&lab)).unwrap();
    std::os::unix::fs::symlink("/dev/full", instance_dir(&lab).join("audit.jsonl")).unwrap();
    lab.drift("INSERT INTO lab.t VALUES (1, 'r')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (1, 'p')"]);
    lab.wait_for_error(1062);
    let out = once(&lab, &[]);
    let t = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a partial record needs a human: {t}"
    );
    assert!(t.contains("COMMITTED, but its record is incomplete"), "{t}");
    assert!(!t.contains("rolled back"), "{t}");
    lab.assert_converged("lab.t");
    let j = std::fs::read_to_string(&undo_journals_under(&instance_dir(&lab))[0]).unwrap();
    assert!(j.contains("-- outcome: committed"), "{j}");
    assert!(
        j.contains("VALUES (1, _utf8mb4 X'72')"),
        "the deleted row is journalled: {j}"
    );
}

#[test]
fn a_user_who_cannot_restart_the_sql_thread_is_refused_before_any_row_is_touched() {
    let lab = lab(
        "trust-priv",
        &[],
        &["CREATE TABLE lab.t (id INT PRIMARY KEY, v VARCHAR(10))"],
    );
    for s in [
        "CREATE USER np@localhost IDENTIFIED BY 'np'",
        "GRANT SELECT, INSERT, DELETE ON lab.* TO np@localhost",
        "GRANT BINLOG ADMIN, SLAVE MONITOR ON *.* TO np@localhost",
    ] {
        lab.drift(s);
    }
    lab.drift("INSERT INTO lab.t VALUES (1, 'r')");
    let before = replica_checksum(&lab, "lab.t");
    lab.on_primary(&["INSERT INTO lab.t VALUES (1, 'p')"]);
    lab.wait_for_error(1062);
    let out = agent(&lab, "np", &[]).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("REPLICATION SLAVE ADMIN"),
        "names the grant: {t}"
    );
    assert_eq!(replica_checksum(&lab, "lab.t"), before, "untouched");
    assert!(undo_journals_under(&instance_dir(&lab)).is_empty());
    // With the grant (through a role, as many shops do it), the same user repairs.
    for s in [
        "CREATE ROLE rr",
        "GRANT REPLICATION SLAVE ADMIN ON *.* TO rr",
        "GRANT rr TO np@localhost",
        "SET DEFAULT ROLE rr FOR np@localhost",
    ] {
        lab.drift(s);
    }
    let out = agent(&lab, "np", &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    lab.assert_converged("lab.t");
}

#[test]
fn a_rerun_recognises_its_own_committed_repair_and_just_restarts() {
    let lab = lab(
        "trust-rerun",
        &[],
        &["CREATE TABLE lab.t (id INT PRIMARY KEY, v VARCHAR(10))"],
    );
    lab.drift("INSERT INTO lab.t VALUES (1, 'r'), (2, 'r')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (1, 'p'), (2, 'p')"]);
    lab.wait_for_error(1062);
    // Killed between COMMIT and START SLAVE.
    let mut child = agent(&lab, "r1", &[])
        .env("REPL_REPAIR_TEST_PAUSE_AFTER_COMMIT_MS", "60000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let done = undo_journals_under(&instance_dir(&lab))
            .iter()
            .any(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("-- outcome: committed")));
        if done {
            break;
        }
        assert!(start.elapsed().as_secs() < 30, "the repair never committed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(sql_running(&lab), "No", "killed before the restart");
    let n: u64 = replica_value(&lab, "SELECT COUNT(*) FROM lab.t");
    assert_eq!(n, 0, "the committed fix removed both replica rows");
    let out = once(&lab, &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("already did"), "says why it restarts: {t}");
    lab.assert_converged("lab.t");
}

// ---- 6. --max-rows caps deletes too. ----

#[test]
fn max_rows_caps_deleted_rows_and_nothing_is_changed() {
    let lab = lab(
        "trust-maxrows",
        &[],
        &["CREATE TABLE lab.t (id INT PRIMARY KEY, v VARCHAR(10))"],
    );
    lab.drift("INSERT INTO lab.t VALUES (1,'r'),(2,'r'),(3,'r'),(4,'r'),(5,'r')");
    let before = replica_checksum(&lab, "lab.t");
    lab.on_primary(&["INSERT INTO lab.t VALUES (1,'p'),(2,'p'),(3,'p'),(4,'p'),(5,'p')"]);
    lab.wait_for_error(1062);
    let out = once(&lab, &["--max-rows", "1"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("--max-rows 1"), "{t}");
    assert_eq!(replica_checksum(&lab, "lab.t"), before, "nothing deleted");
    let out = once(&lab, &["--max-rows", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    lab.assert_converged("lab.t");
}

// ---- 11. A multi-MB statement never goes into a log line whole. ----

#[test]
fn megabyte_fix_statements_are_logged_as_bounded_previews() {
    let lab = lab(
        "trust-biglog",
        &[],
        &["CREATE TABLE lab.t (k VARCHAR(250) PRIMARY KEY, v INT)"],
    );
    // 6000 conflicting 200-character keys: the DELETE batches are about 1 MiB each.
    lab.drift(
        "INSERT INTO lab.t SELECT CONCAT(LPAD(seq, 10, '0'), REPEAT('x', 190)), 0 FROM lab.seq_1_to_6000",
    );
    lab.on_primary(&[
        "INSERT INTO lab.t SELECT CONCAT(LPAD(seq, 10, '0'), REPEAT('x', 190)), 1 FROM lab.seq_1_to_6000",
    ]);
    lab.wait_for_error(1062);
    let logdir = lab.dir.join("logs");
    std::fs::create_dir_all(&logdir).unwrap();
    let out = once(&lab, &["-l", logdir.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    lab.assert_converged("lab.t");
    let log = std::fs::read_to_string(logdir.join("repl-repair.r1.log")).unwrap();
    assert!(log.contains("bytes in all)"), "{log}");
    for line in log.lines().chain(t.lines()) {
        assert!(line.len() < 4096, "a log line of {} bytes", line.len());
    }
}
