//! `repl-repair check`, live: a correct setup passes; a user missing each grant a repair
//! needs fails with that grant named; a relay log the agent's user cannot read fails
//! (exit 2) with its path named; a server that is not a replica fails. Judged by exit
//! code and by the check lines (text and JSON).

use crate::support::{Lab, text};
use std::path::Path;
use std::process::{Command, Output};

fn lab(name: &str) -> Lab {
    let lab = Lab::up(name, &[]);
    lab.on_primary(&[
        "CREATE DATABASE lab",
        "CREATE TABLE lab.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB",
        "INSERT INTO lab.t VALUES (1, 1), (2, 2)",
    ]);
    lab.wait_caught_up();
    lab
}

/// `repl-repair -u USER -S SOCKET … check [--format json]`, private state directories.
fn check(lab: &Lab, user: &str, password: &str, socket: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .args(["-u", user, "-S", socket])
        .arg("--journal-dir")
        .arg(lab.dir.join("journal"))
        .arg("--lock-dir")
        .arg(lab.dir.join("locks"))
        .args(extra)
        .arg("check")
        .env("MYSQL_PWD", password)
        .output()
        .expect("run repl-repair check")
}

/// The `(check, result, detail)` of every JSON line.
fn json_lines(out: &Output) -> Vec<(String, String, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("check"), s("result"), s("detail"))
        })
        .collect()
}

/// Creates a replica-local user (outside the binlog) with these grants.
fn user(lab: &Lab, name: &str, grants: &[&str]) {
    lab.drift(&format!(
        "CREATE USER '{name}'@'localhost' IDENTIFIED BY '{name}-pw'"
    ));
    for g in grants {
        lab.drift(&format!("GRANT {g} TO '{name}'@'localhost'"));
    }
}

const DATA: &str = "SELECT, INSERT, DELETE ON lab.*";
const ADMIN: [&str; 3] = ["BINLOG ADMIN", "REPLICATION SLAVE ADMIN", "SLAVE MONITOR"];

#[test]
fn correct_setup_passes_each_missing_grant_is_named_and_a_primary_is_no_replica() {
    let lab = lab("check_grants");
    let socket = lab.get("REPLICA_SOCKET").to_string();
    // The README's grants, exactly.
    user(
        &lab,
        "fixer",
        &[DATA, &format!("{} ON *.*", ADMIN.join(", "))],
    );
    let out = check(&lab, "fixer", "fixer-pw", &socket, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for c in [
        "connect",
        "replica",
        "grant-restart",
        "grant-sql-log-bin",
        "grant-status",
        "grant-data",
        "relay-log",
        "binlog",
        "journal-dir",
        "lock-dir",
    ] {
        assert!(
            stdout.contains(&format!("check={c} result=ok")),
            "{c} not ok:\n{stdout}"
        );
    }
    let relay = lab.get("REPLICA_DATADIR");
    assert!(
        stdout.contains(relay) && stdout.contains("falls back to the primary"),
        "{stdout}"
    );
    // Nothing was created: the check changes nothing.
    assert!(!lab.dir.join("journal").exists() && !lab.dir.join("locks").exists());

    // JSON: one object per check, every result ok (or a note: running as root).
    let out = check(&lab, "fixer", "fixer-pw", &socket, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = json_lines(&out);
    assert!(lines.len() >= 10, "{lines:?}");
    assert!(
        lines.iter().all(|(_, r, _)| r == "ok" || r == "note"),
        "{lines:?}"
    );

    // Each needed grant missing in turn: exit 2, a failed line naming the grant.
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "SELECT",
            vec![
                "INSERT, DELETE ON lab.*".into(),
                format!("{} ON *.*", ADMIN.join(", ")),
            ],
            "grant-data",
        ),
        (
            "INSERT",
            vec![
                "SELECT, DELETE ON lab.*".into(),
                format!("{} ON *.*", ADMIN.join(", ")),
            ],
            "grant-data",
        ),
        (
            "DELETE",
            vec![
                "SELECT, INSERT ON lab.*".into(),
                format!("{} ON *.*", ADMIN.join(", ")),
            ],
            "grant-data",
        ),
        (
            "BINLOG ADMIN",
            vec![
                DATA.into(),
                "REPLICATION SLAVE ADMIN, SLAVE MONITOR ON *.*".into(),
            ],
            "grant-sql-log-bin",
        ),
        (
            "REPLICATION SLAVE ADMIN",
            vec![DATA.into(), "BINLOG ADMIN, SLAVE MONITOR ON *.*".into()],
            "grant-restart",
        ),
        (
            "SLAVE MONITOR",
            vec![
                DATA.into(),
                "BINLOG ADMIN, REPLICATION SLAVE ADMIN ON *.*".into(),
            ],
            "grant-status",
        ),
    ];
    for (i, (missing, grants, check_name)) in cases.iter().enumerate() {
        let name = format!("m{i}");
        let grants: Vec<&str> = grants.iter().map(String::as_str).collect();
        user(&lab, &name, &grants);
        let out = check(
            &lab,
            &name,
            &format!("{name}-pw"),
            &socket,
            &["--format", "json"],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "missing {missing}: {}",
            text(&out)
        );
        let lines = json_lines(&out);
        assert!(
            lines
                .iter()
                .any(|(c, r, d)| c == check_name && r == "fail" && d.contains(missing)),
            "missing {missing}: no failed {check_name} line naming it: {lines:#?}"
        );
        // Only what is missing fails: the other checks still pass.
        assert!(
            lines
                .iter()
                .filter(|(_, r, _)| r == "fail")
                .all(|(_, _, d)| d.contains(missing)),
            "missing {missing}: {lines:#?}"
        );
    }

    // The primary is not a replica.
    let out = check(
        &lab,
        lab.get("LAB_USER"),
        lab.get("LAB_PASSWORD"),
        lab.get("PRIMARY_SOCKET"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("check=replica result=fail") && l.contains("not a replica")),
        "{stdout}"
    );
}

#[test]
fn unreadable_relay_log_fails_with_its_path() {
    let lab = lab("check_relay");
    // The agent's user (nobody here) can reach the datadir but not the relay log, as when
    // the agent runs as a user outside mysqld's group.
    let port = lab.get("REPLICA_PORT").to_string();
    let status = lab.status();
    let datadir = Path::new(lab.get("REPLICA_DATADIR"));
    let relay = datadir.join(&status["Relay_Log_File"]);
    use std::os::unix::fs::PermissionsExt;
    for d in datadir.ancestors().take_while(|d| d.starts_with(&lab.dir)) {
        let mode = std::fs::metadata(d).unwrap().permissions().mode();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o711)).unwrap();
    }
    let index: String = {
        use mysql::prelude::Queryable;
        lab.replica()
            .query_first("SELECT @@relay_log_index")
            .unwrap()
            .unwrap()
    };
    std::fs::set_permissions(datadir.join(index), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&relay, std::fs::Permissions::from_mode(0o600)).unwrap();
    let home = lab.dir.join("nobody");
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    let as_nobody = |extra: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_repl-repair"))
            .args(["-u", lab.get("LAB_USER"), "-h", "127.0.0.1", "-P", &port])
            .arg("--journal-dir")
            .arg(home.join("journal"))
            .arg("--lock-dir")
            .arg(home.join("locks"))
            .args(extra)
            .arg("check")
            .env_clear()
            .env("HOME", &home)
            .env("MYSQL_PWD", lab.get("LAB_PASSWORD"))
            .current_dir("/")
            .output()
            .unwrap()
    };
    // With --source auto the primary stands in: a warning for the relay log, the primary
    // reachable and allowed to dump its binlog.
    let out = as_nobody(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("check=relay-log result=warn")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("check=primary result=ok") && l.contains("REPLICATION SLAVE")),
        "{stdout}"
    );
    // The relay log as the only source: it fails, naming the file.
    let out = as_nobody(&["--source", "relay"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("check=relay-log"))
        .unwrap_or_else(|| panic!("no relay-log line:\n{stdout}"));
    assert!(
        line.contains("result=fail") && line.contains(&relay.display().to_string()),
        "{line}"
    );
    // Everything else about this setup is fine: only the relay log fails.
    let fails: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("result=fail"))
        .collect();
    assert_eq!(fails.len(), 1, "{stdout}");
}

#[test]
fn the_primary_is_checked_when_it_is_the_source() {
    let lab = lab("check_primary");
    let socket = lab.get("REPLICA_SOCKET").to_string();
    let (user, pw) = (lab.get("LAB_USER"), lab.get("LAB_PASSWORD"));
    let out = check(&lab, user, pw, &socket, &["--source", "primary"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("check=primary result=ok")),
        "{stdout}"
    );
    assert!(!stdout.contains("check=relay-log"), "{stdout}");
    // A --primary that is not the replica's primary (the replica itself).
    let wrong = format!("127.0.0.1:{}", lab.get("REPLICA_PORT"));
    let out = check(
        &lab,
        user,
        pw,
        &socket,
        &["--source", "primary", "--primary", &wrong],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("check=primary result=fail") && l.contains("Master_Server_Id")),
        "{stdout}"
    );
}
