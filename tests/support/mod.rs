//! Test support: a real MariaDB primary/replica started by `scripts/lab`, one per test,
//! stopped (by PID, by the script) when the test ends. A test that needs the lab fails
//! with the script's own message when it cannot start: it never skips silently.

#![allow(dead_code)]

use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct Lab {
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Lab {
    /// Starts a lab in `target/lab/<name>` with the given `scripts/lab up` knobs.
    pub fn up(name: &str, knobs: &[&str]) -> Lab {
        let dir = root().join("target").join("lab").join(name);
        // A previous run that was killed may have left servers behind: stop them first.
        let _ = Command::new(root().join("scripts/lab"))
            .arg("down")
            .arg(&dir)
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(root().join("scripts/lab"))
            .arg("up")
            .arg(&dir)
            .args(knobs)
            .output()
            .expect("cannot run scripts/lab");
        assert!(
            out.status.success(),
            "scripts/lab up {} failed:\n{}\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text =
            std::fs::read_to_string(dir.join("lab.env")).expect("lab.env written by scripts/lab");
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            .collect();
        Lab { dir, env }
    }

    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("lab.env has no {key}"))
    }

    fn conn(&self, socket_key: &str) -> Conn {
        let opts = OptsBuilder::new()
            .socket(Some(self.get(socket_key)))
            .user(Some(self.get("LAB_USER")))
            .pass(Some(self.get("LAB_PASSWORD")))
            .prefer_socket(true);
        Conn::new(opts).unwrap_or_else(|e| panic!("cannot connect to {socket_key}: {e}"))
    }

    pub fn primary(&self) -> Conn {
        self.conn("PRIMARY_SOCKET")
    }

    pub fn replica(&self) -> Conn {
        self.conn("REPLICA_SOCKET")
    }

    /// Runs SQL on the replica outside replication and outside its binlog: drift.
    pub fn drift(&self, sql: &str) {
        let mut c = self.replica();
        c.query_drop("SET SESSION sql_log_bin = 0").unwrap();
        c.query_drop(sql)
            .unwrap_or_else(|e| panic!("drift {sql}: {e}"));
    }

    pub fn on_primary(&self, sqls: &[&str]) {
        let mut c = self.primary();
        for s in sqls {
            c.query_drop(*s)
                .unwrap_or_else(|e| panic!("primary {s}: {e}"));
        }
    }

    pub fn status(&self) -> HashMap<String, String> {
        let mut c = self.replica();
        let row: mysql::Row = c
            .query_first("SHOW SLAVE STATUS")
            .unwrap()
            .expect("the replica has a status row");
        let names: Vec<String> = row
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect();
        names
            .into_iter()
            .zip(row.unwrap())
            .map(|(n, v)| {
                let s = match v {
                    mysql::Value::NULL => String::new(),
                    mysql::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                    other => other.as_sql(true),
                };
                (n, s)
            })
            .collect()
    }

    /// Waits until the SQL thread stops with `errno`; returns the status.
    pub fn wait_for_error(&self, errno: u32) -> HashMap<String, String> {
        let start = Instant::now();
        loop {
            let st = self.status();
            if st["Slave_SQL_Running"] == "No" && st["Last_SQL_Errno"] == errno.to_string() {
                return st;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "replica never stopped with {errno}: {:?} {:?}",
                st.get("Last_SQL_Errno"),
                st.get("Last_SQL_Error")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The primary's current binlog file and position (`SHOW MASTER STATUS`).
    pub fn primary_position(&self) -> (String, u64) {
        position_of(&mut self.primary())
    }

    /// Waits until the replica executed everything the primary has written, with the
    /// SQL thread running.
    ///
    /// The primary's position is read again on every poll: after FLUSH BINARY LOGS,
    /// MariaDB appends a Binlog_checkpoint event to the new file in the background, so
    /// a position read once can be overtaken (CI saw the replica at 389 waiting for 344).
    pub fn wait_caught_up(&self) {
        let mut p = self.primary();
        let start = Instant::now();
        loop {
            let (file, pos) = position_of(&mut p);
            let st = self.status();
            if st["Slave_SQL_Running"] == "Yes"
                && st["Relay_Master_Log_File"] == file
                && st["Exec_Master_Log_Pos"] == pos.to_string()
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "replica did not catch up with {file}:{pos}: SQL running {}, at {}:{}, error {} {}",
                st["Slave_SQL_Running"],
                st["Relay_Master_Log_File"],
                st["Exec_Master_Log_Pos"],
                st["Last_SQL_Errno"],
                st["Last_SQL_Error"]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// CHECKSUM TABLE on primary and replica.
    pub fn checksums(&self, table: &str) -> (Option<u64>, Option<u64>) {
        let q = format!("CHECKSUM TABLE {table}");
        let p: (String, Option<u64>) = self.primary().query_first(&q).unwrap().unwrap();
        let r: (String, Option<u64>) = self.replica().query_first(&q).unwrap().unwrap();
        (p.1, r.1)
    }

    pub fn assert_converged(&self, table: &str) {
        self.wait_caught_up();
        let (p, r) = self.checksums(table);
        assert!(
            p.is_some(),
            "CHECKSUM TABLE {table} returned NULL on the primary"
        );
        assert_eq!(
            p, r,
            "CHECKSUM TABLE {table} differs between primary and replica"
        );
    }

    /// Runs the built `repl-repair` binary against the replica, password in MYSQL_PWD.
    pub fn repair(&self, extra: &[&str]) -> Output {
        let journal = self.dir.join("journal");
        Command::new(env!("CARGO_BIN_EXE_repl-repair"))
            .args(["-u", self.get("LAB_USER"), "-S", self.get("REPLICA_SOCKET")])
            .arg("--journal-dir")
            .arg(&journal)
            .args(extra)
            .env("MYSQL_PWD", self.get("LAB_PASSWORD"))
            .output()
            .expect("run repl-repair")
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.dir.join("journal")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/lab"))
            .arg("down")
            .arg(&self.dir)
            .output();
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Whether `pid` is a live (not zombie) process.
pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The undo journals under `dir`, recursively.
pub fn undo_journals_under(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".undo.sql"))
        .collect()
}

impl Lab {
    /// Pipes `file` into the stock client on the replica, as the README tells a DBA to.
    pub fn replay(&self, file: &Path) -> Output {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "mariadb --no-defaults --socket={} -urepair -prepair < '{}'",
                self.get("REPLICA_SOCKET"),
                file.display()
            ))
            .output()
            .unwrap()
    }
}

/// `SHOW MASTER STATUS` on `conn`: its binlog file and position.
pub fn position_of(conn: &mut Conn) -> (String, u64) {
    let row: mysql::Row = conn.query_first("SHOW MASTER STATUS").unwrap().unwrap();
    (row.get(0).unwrap(), row.get(1).unwrap())
}
