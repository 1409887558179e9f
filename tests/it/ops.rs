//! Operations, live: instance names that cannot escape their directories, private lock
//! and state directories, SIGHUP, a dry run that pipes into the mysql client, exit codes,
//! flag ranges, non-regular files, and the HTTP endpoint. Each test is judged by outcome:
//! files where they belong (and nowhere else), exit codes, the replica's rows and
//! CHECKSUM TABLE, what the HTTP endpoint answers.

use crate::support::{Lab, files_under, free_port, pid_alive, text, undo_journals_under};
use mysql::prelude::Queryable;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const TABLE: &str = "CREATE TABLE lab.t (id INT PRIMARY KEY, k INT, v VARCHAR(40), UNIQUE KEY uk_k (k)) ENGINE=InnoDB";

fn lab(name: &str) -> Lab {
    let lab = Lab::up(name, &[]);
    lab.on_primary(&[
        "CREATE DATABASE lab",
        TABLE,
        "INSERT INTO lab.t VALUES (1, 10, 'one'), (2, 20, 'two'), (3, 30, 'three')",
    ]);
    lab.wait_caught_up();
    lab
}

/// A replica-only row, then the primary inserts the same id: 1062.
fn break_1062(lab: &Lab, id: u32) {
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

/// The agent with the lab's credentials and private journal and lock directories; the
/// instance is added by the caller.
fn bare(lab: &Lab) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_repl-repair"));
    c.args(["-u", lab.get("LAB_USER")])
        .env("MYSQL_PWD", lab.get("LAB_PASSWORD"));
    c
}

fn agent(lab: &Lab) -> Command {
    agent_in(lab, &lab.journal_dir(), &lab.dir.join("locks"))
}

fn agent_in(lab: &Lab, journal: &Path, locks: &Path) -> Command {
    let mut c = bare(lab);
    c.args(["-S", lab.get("REPLICA_SOCKET")])
        .arg("--journal-dir")
        .arg(journal)
        .arg("--lock-dir")
        .arg(locks);
    c
}

fn no_lab_agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_repl-repair"))
}

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ops-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn signal(pid: u32, sig: &str) {
    assert!(
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success(),
        "kill -{sig} {pid}"
    );
}

/// Waits for `child` at most `secs`; a child still running then is killed (by its PID)
/// and `None` returned.
fn wait_at_most(child: &mut Child, secs: u64) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_file_containing(path: &Path, want: &str, secs: u64) -> String {
    let start = Instant::now();
    loop {
        let t = std::fs::read_to_string(path).unwrap_or_default();
        if t.contains(want) {
            return t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{} never showed {want:?}; it holds:\n{t}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

// ---- 7. Instance names: one injective, path-safe encoding for every file. ----

#[test]
fn instance_names_like_dotdot_and_absolute_paths_stay_inside_the_journal_dir() {
    let lab = lab("ops_names");
    // ../../x from here is lab.dir/x; /abs is /abs.
    let journal = lab.dir.join("j1").join("j2");
    let logdir = lab.dir.join("logs");
    let locks = lab.dir.join("locks");
    assert!(!Path::new("/abs").exists(), "/abs exists before the test");
    for (n, (name, dir)) in [("../../x", "%2E.%2F..%2Fx"), ("/abs", "%2Fabs")]
        .into_iter()
        .enumerate()
    {
        break_1062(&lab, 40 + n as u32);
        let out = bare(&lab)
            .arg("--instance")
            .arg(format!("{name}={}", lab.get("REPLICA_SOCKET")))
            .args(["--once", "-l"])
            .arg(&logdir)
            .arg("--journal-dir")
            .arg(&journal)
            .arg("--lock-dir")
            .arg(&locks)
            .output()
            .unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        lab.assert_converged("lab.t");
        // Everything the repair wrote is under the instance's own journal directory.
        assert_eq!(
            undo_journals_under(&journal.join(dir)).len(),
            1,
            "{name}: {:?}",
            files_under(&journal)
        );
        assert!(
            journal.join(dir).join("audit.jsonl").exists(),
            "{name}: {:?}",
            files_under(&journal)
        );
        assert!(
            logdir.join(format!("repl-repair.{dir}.log")).exists(),
            "{name}: {:?}",
            names_in(&logdir)
        );
        assert!(
            locks.join(format!("repl-repair.{dir}.lock")).exists(),
            "{name}: {:?}",
            names_in(&locks)
        );
    }
    assert!(
        !lab.dir.join("x").exists(),
        "../../x escaped the journal dir"
    );
    assert!(!Path::new("/abs").exists(), "/abs escaped the journal dir");
    assert_eq!(
        names_in(&journal),
        vec!["%2E.%2F..%2Fx".to_string(), "%2Fabs".to_string()]
    );
    // Only files the agent names, all directly in the directories it was given.
    for f in files_under(&logdir)
        .iter()
        .chain(files_under(&locks).iter())
    {
        let parent = f.parent().unwrap();
        assert!(parent == logdir || parent == locks, "{}", f.display());
    }
}

#[test]
fn db_dot_1_and_db_underscore_1_are_two_instances_both_watched_and_repaired() {
    let labs = [lab("ops_db_dot_1"), lab("ops_db_us_1")];
    for (i, l) in labs.iter().enumerate() {
        break_1062(l, 50 + i as u32);
    }
    let journal = labs[0].dir.join("journal");
    let locks = labs[0].dir.join("locks");
    let logdir = labs[0].dir.join("logs");
    let out = bare(&labs[0])
        .arg("--instance")
        .arg(format!("db.1={}", labs[0].get("REPLICA_SOCKET")))
        .arg("--instance")
        .arg(format!("db_1={}", labs[1].get("REPLICA_SOCKET")))
        .args(["--once", "-l"])
        .arg(&logdir)
        .arg("--journal-dir")
        .arg(&journal)
        .arg("--lock-dir")
        .arg(&locks)
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("instance=db.1 state=healthy repairs=1"), "{t}");
    assert!(t.contains("instance=db_1 state=healthy repairs=1"), "{t}");
    for l in &labs {
        l.assert_converged("lab.t");
    }
    for name in ["db.1", "db_1"] {
        assert_eq!(undo_journals_under(&journal.join(name)).len(), 1, "{name}");
        assert!(locks.join(format!("repl-repair.{name}.lock")).exists());
        let log = std::fs::read_to_string(logdir.join(format!("repl-repair.{name}.log")))
            .unwrap_or_default();
        assert!(log.contains("repaired error 1062"), "{name}: {log}");
    }
}

#[test]
fn empty_control_character_and_duplicate_instance_names_are_refused_at_start() {
    let dir = scratch("badnames");
    for (specs, want) in [
        (&["=/run/a.sock"][..], "is not NAME="),
        (&["a\u{1b}[2J=/run/a.sock"], "control character"),
        (
            &["x=/run/a.sock", "x=10.0.0.1:3306"],
            "two instances are named \"x\"",
        ),
    ] {
        let mut c = no_lab_agent();
        for s in specs {
            c.arg("--instance").arg(s);
        }
        let out = c
            .args(["--once", "--journal-dir"])
            .arg(dir.join("j"))
            .arg("--lock-dir")
            .arg(dir.join("l"))
            .output()
            .unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{specs:?}: {t}");
        assert!(t.contains(want), "{specs:?}: {t}");
    }
}

// ---- 8. Lock files: a private directory, O_NOFOLLOW, nothing foreign truncated. ----

#[test]
fn a_symlink_or_hard_link_planted_at_the_lock_path_is_not_followed_and_its_target_is_untouched() {
    let lab = lab("ops_lock_symlink");
    let locks = lab.dir.join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let precious = lab.dir.join("precious");
    std::fs::write(&precious, "precious contents\n").unwrap();
    let lock = locks.join(format!("repl-repair.{}.lock", lab.get("REPLICA_PORT")));
    std::os::unix::fs::symlink(&precious, &lock).unwrap();
    let out = agent(&lab).args(["--once", "--dry-run"]).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("symbolic link"), "{t}");
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "precious contents\n"
    );
    assert!(std::fs::symlink_metadata(&lock).unwrap().is_symlink());
    // A hard link to another file is not truncated either.
    std::fs::remove_file(&lock).unwrap();
    std::fs::hard_link(&precious, &lock).unwrap();
    let out = agent(&lab).args(["--once", "--dry-run"]).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("not touched"), "{t}");
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "precious contents\n"
    );
    // Cleared away, the agent runs, and a missing --lock-dir is created private.
    std::fs::remove_file(&lock).unwrap();
    let fresh = lab.dir.join("new").join("locks");
    let out = agent_in(&lab, &lab.journal_dir(), &fresh)
        .arg("--once")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    assert!(
        fresh
            .join(format!("repl-repair.{}.lock", lab.get("REPLICA_PORT")))
            .is_file()
    );
    // A --lock-dir that cannot be a directory is a start-up error.
    let out = agent_in(&lab, &lab.journal_dir(), &precious)
        .arg("--once")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("lock directory"), "{t}");
}

/// Removes what a test created under a system directory, and the directory itself when
/// the test created it.
struct Cleanup {
    paths: Vec<PathBuf>,
    dirs_created: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
        for d in &self.dirs_created {
            let _ = std::fs::remove_file(d.join(".keep"));
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn default_lock_and_journal_dirs_are_private_system_dirs_as_root_and_xdg_dirs_otherwise() {
    let lab = lab("ops_default_dirs");
    let port = lab.get("REPLICA_PORT").to_string();
    let (run, state) = (
        Path::new("/run/repl-repair"),
        Path::new("/var/lib/repl-repair"),
    );
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    assert!(
        is_root,
        "this test checks the root defaults: run it as root"
    );
    let _cleanup = Cleanup {
        paths: vec![
            run.join(format!("repl-repair.{port}.lock")),
            state.join(&port),
        ],
        dirs_created: [run, state]
            .into_iter()
            .filter(|d| !d.exists())
            .map(Path::to_path_buf)
            .collect(),
    };
    // Root, from an unrelated working directory, with a repair to journal.
    break_1062(&lab, 60);
    let cwd = lab.dir.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let out = bare(&lab)
        .args(["-S", lab.get("REPLICA_SOCKET"), "--once"])
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    lab.assert_converged("lab.t");
    assert!(names_in(&cwd).is_empty(), "cwd: {:?}", names_in(&cwd));
    assert!(run.join(format!("repl-repair.{port}.lock")).is_file());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(run).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "/run/repl-repair is private: {mode:o}");
    assert_eq!(undo_journals_under(&state.join(&port)).len(), 1);

    // Another user (nobody), over TCP: XDG directories, else ~/.local/state.
    let home = lab.dir.join("home");
    for d in [&home, &home.join("run")] {
        std::fs::create_dir_all(d).unwrap();
        std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap();
    }
    std::fs::set_permissions(home.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let as_nobody = |xdg: bool| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_repl-repair"))
            .args(["-u", lab.get("LAB_USER"), "-h", "127.0.0.1", "-P", &port])
            .arg("--once")
            .env_clear()
            .env("HOME", &home)
            .env("MYSQL_PWD", lab.get("LAB_PASSWORD"))
            .current_dir("/");
        if xdg {
            c.env("XDG_STATE_HOME", home.join("state"))
                .env("XDG_RUNTIME_DIR", home.join("run"));
        }
        c.output().unwrap()
    };
    let out = as_nobody(true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(home.join("state/repl-repair").is_dir());
    assert!(
        home.join(format!("run/repl-repair/repl-repair.{port}.lock"))
            .is_file(),
        "{:?}",
        files_under(&home)
    );
    let out = as_nobody(false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(home.join(".local/state/repl-repair").is_dir());
    // No XDG_RUNTIME_DIR (cron): the locks go to the private state directory.
    assert!(
        home.join(format!(
            ".local/state/repl-repair/locks/repl-repair.{port}.lock"
        ))
        .is_file(),
        "{:?}",
        files_under(&home)
    );
}

// ---- 9. SIGHUP reopens the logs; it never ends the agent. ----

#[test]
fn sighup_reopens_both_logs_after_logrotate_and_the_daemon_keeps_repairing() {
    let lab = lab("ops_sighup");
    let logdir = lab.dir.join("logs");
    let pid_file = lab.dir.join("agent.pid");
    let out = agent(&lab)
        .args(["-d", "--interval", "0.1", "-l"])
        .arg(&logdir)
        .arg("--pid-file")
        .arg(&pid_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let start = Instant::now();
    let pid: u32 = loop {
        if let Some(p) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break p;
        }
        assert!(start.elapsed().as_secs() < 10, "no pid file");
        std::thread::sleep(Duration::from_millis(50));
    };
    let stop = Daemon(pid);
    let instance_log = logdir.join(format!("repl-repair.{}.log", lab.get("REPLICA_PORT")));
    let agent_log = logdir.join("repl-repair.log");
    wait_for_file_containing(&instance_log, "replication running", 10);
    // logrotate: rename away, then SIGHUP.
    std::fs::rename(&instance_log, logdir.join("instance.old")).unwrap();
    std::fs::rename(&agent_log, logdir.join("agent.old")).unwrap();
    signal(pid, "HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(pid_alive(pid), "SIGHUP ended the daemon");
    lab.drift("INSERT INTO lab.t VALUES (70, 700, 'replica only')");
    lab.on_primary(&["INSERT INTO lab.t VALUES (70, 701, 'primary')"]);
    lab.assert_converged("lab.t");
    wait_for_file_containing(&instance_log, "repaired error 1062", 10);
    let a = wait_for_file_containing(&agent_log, "repaired error 1062", 10);
    assert!(a.contains("SIGHUP"), "{a}");
    for old in ["instance.old", "agent.old"] {
        let t = std::fs::read_to_string(logdir.join(old)).unwrap();
        assert!(!t.contains("repaired error"), "{old} got new lines: {t}");
    }
    assert!(pid_alive(pid));
    assert!(pid_file.exists());
    drop(stop);
    assert!(!pid_file.exists(), "pid file removed on SIGTERM");
}

/// Sends SIGTERM to the daemon when dropped (also when an assertion failed) and waits
/// for it to go.
struct Daemon(u32);

impl Drop for Daemon {
    fn drop(&mut self) {
        if pid_alive(self.0) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.0.to_string())
                .status();
        }
        let start = Instant::now();
        while pid_alive(self.0) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn sighup_to_a_foreground_run_does_not_end_it() {
    let lab = lab("ops_sighup_fg");
    let mut child = agent(&lab)
        .args(["-t", "3", "--interval", "0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    signal(child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(200));
    signal(child.id(), "HUP");
    let st = wait_at_most(&mut child, 20).expect("the -t 3 run ended");
    assert_eq!(st.code(), Some(0), "{st:?}: killed by SIGHUP?");
}

// ---- 11. Dry run into mysql, exit codes, flag ranges, non-regular files, HTTP. ----

#[test]
fn dry_run_stdout_pipes_into_the_mariadb_client_and_fixes_the_replica() {
    let lab = lab("ops_dry_pipe");
    break_1062(&lab, 80);
    let out = agent(&lab).args(["--once", "--dry-run"]).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "dry run found work: {t}");
    let sql = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(!sql.contains("instance="), "summary on stdout: {sql}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("state=needs-human"),
        "{t}"
    );
    assert!(sql.contains("SET SESSION sql_log_bin = 0;"), "{sql}");
    // Nothing changed by the dry run itself.
    assert_eq!(lab.status()["Last_SQL_Errno"], "1062");
    let mut mysql = Command::new("mariadb")
        .args(["-u", lab.get("LAB_USER"), "-S", lab.get("REPLICA_SOCKET")])
        .env("MYSQL_PWD", lab.get("LAB_PASSWORD"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        mysql
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
    }
    let piped = mysql.wait_with_output().unwrap();
    assert_eq!(piped.status.code(), Some(0), "{}\n{sql}", text(&piped));
    let left: u64 = lab
        .replica()
        .query_first("SELECT COUNT(*) FROM lab.t WHERE id = 80")
        .unwrap()
        .unwrap();
    assert_eq!(left, 0, "the replica-only row is gone");
    // The restart is the reader's step (a comment in the script); then it converges.
    lab.replica().query_drop("START SLAVE SQL_THREAD").unwrap();
    lab.assert_converged("lab.t");
    // --format json keeps stdout SQL-only too.
    let out = agent(&lab)
        .args(["--once", "--dry-run", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
}

#[test]
fn exit_codes_lock_loser_1_unreadable_relay_log_2_bad_journal_dir_2_missing_slave_monitor_2() {
    let lab = lab("ops_exit");
    let port = lab.get("REPLICA_PORT").to_string();
    // Lock loser: another agent on this host holds the instance's lock.
    let locks = lab.dir.join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let held = std::fs::File::create(locks.join(format!("repl-repair.{port}.lock"))).unwrap();
    held.try_lock().unwrap();
    let out = agent(&lab).arg("--once").output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("another repl-repair on this host"), "{t}");
    drop(held);

    // Unusable journal directory: refused at start.
    let file = lab.dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    for bad in [file.clone(), PathBuf::from("/proc/repl-repair-journal")] {
        let out = agent_in(&lab, &bad, &locks).arg("--once").output().unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{}: {t}", bad.display());
        assert!(t.contains("journal directory"), "{t}");
    }

    // A user without SLAVE MONITOR: an access error, not a lost connection.
    lab.drift("CREATE USER 'nomon'@'localhost' IDENTIFIED BY 'nomon'");
    lab.drift("GRANT SELECT ON *.* TO 'nomon'@'localhost'");
    let out = Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .args(["-u", "nomon", "-S", lab.get("REPLICA_SOCKET"), "--once"])
        .arg("--journal-dir")
        .arg(lab.journal_dir())
        .arg("--lock-dir")
        .arg(&locks)
        .env("MYSQL_PWD", "nomon")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("access denied") && t.contains("SLAVE MONITOR"),
        "{t}"
    );
    assert!(!t.contains("lost the connection"), "{t}");

    // Unreadable relay log (here: gone, as on the wrong host) with --source relay: exit
    // 2, nothing touched (--source auto would read the primary, see tests/it/remote.rs).
    let st = {
        break_1062(&lab, 90);
        lab.status()
    };
    let datadir = PathBuf::from(lab.get("REPLICA_DATADIR"));
    let relay = datadir.join(&st["Relay_Log_File"]);
    let away = relay.with_extension("away");
    std::fs::rename(&relay, &away).unwrap();
    let out = agent(&lab)
        .args(["--once", "--source", "relay"])
        .output()
        .unwrap();
    std::fs::rename(&away, &relay).unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("cannot read relay log"), "{t}");
    assert_eq!(lab.status()["Last_SQL_Errno"], "1062", "nothing touched");
    let out = agent(&lab).arg("--once").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    lab.assert_converged("lab.t");
}

#[test]
fn absurd_numbers_are_flag_errors_not_panics() {
    for args in [
        &["--interval", "1e30"][..],
        &["--interval", "0.001"],
        &["--interval", "nan"],
        &["--verify-timeout", "1e30"],
        &["-t", "18446744073709551615"],
        &["--per", "18446744073709551615d"],
    ] {
        let out = no_lab_agent()
            .args(["-S", "/nonexistent.sock", "--once"])
            .args(args)
            .output()
            .unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(!t.contains("panicked"), "{args:?}: {t}");
        assert!(t.contains(args[0]), "{args:?}: {t}");
    }
}

#[test]
fn decode_of_a_fifo_and_defaults_file_dev_zero_return_promptly_with_exit_2() {
    let dir = scratch("fifo");
    let fifo = dir.join("relay.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let cases: [Vec<std::ffi::OsString>; 3] = [
        vec!["decode".into(), fifo.clone().into()],
        vec![
            "--defaults-file=/dev/zero".into(),
            "-S".into(),
            "/nonexistent.sock".into(),
            "decode".into(),
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("Cargo.toml")
                .into(),
        ],
        vec![
            "--defaults-file=/dev/zero".into(),
            "-S".into(),
            "/nonexistent.sock".into(),
            "--once".into(),
        ],
    ];
    for args in cases {
        let started = Instant::now();
        let mut child = no_lab_agent()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let st = wait_at_most(&mut child, 10);
        let mut err = String::new();
        use std::io::Read;
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        let st = st.unwrap_or_else(|| panic!("{args:?} hung: {err}"));
        assert_eq!(st.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("not a regular file"), "{args:?}: {err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{args:?}");
    }
}

/// A bare HTTP/1.0 request; returns the status line and the body.
fn http(port: u16, method: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

fn wait_http(port: u16, path: &str, want: &str) -> String {
    let start = Instant::now();
    loop {
        if let Ok((_, body)) = std::panic::catch_unwind(|| http(port, "GET", path))
            && body.contains(want)
        {
            return body;
        }
        assert!(
            start.elapsed().as_secs() < 30,
            "{path} never showed {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn http_escaped_names_query_strings_circuit_incident_and_a_non_loopback_warning() {
    let lab = lab("ops_http");
    let port = free_port();
    let mut child = bare(&lab)
        .arg("--instance")
        .arg(format!("db 1/a={}", lab.get("REPLICA_SOCKET")))
        .args(["--interval", "0.1", "-t", "90", "--max-repairs", "1"])
        .arg("--metrics-addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--journal-dir")
        .arg(lab.journal_dir())
        .arg("--lock-dir")
        .arg(lab.dir.join("locks"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checks = std::panic::catch_unwind(|| {
        wait_http(port, "/status?pretty=1", "\"state\":\"healthy\"");
        // One repair, then the circuit opens on the next incident.
        lab.drift("INSERT INTO lab.t VALUES (100, 1000, 'replica only')");
        lab.on_primary(&["INSERT INTO lab.t VALUES (100, 1001, 'primary')"]);
        wait_http(port, "/status", "\"repairs\":1");
        lab.assert_converged("lab.t");
        break_1062(&lab, 101);
        let st = lab.status();
        let status = wait_http(port, "/status?x=y", "\"state\":\"circuit-open\"");
        assert!(status.contains("\"name\":\"db 1/a\""), "{status}");
        assert!(status.contains("\"outcome\":\"circuit-open\""), "{status}");
        assert!(status.contains("\"errno\":1062"), "{status}");
        let relay = format!("{}:{}", st["Relay_Log_File"], st["Relay_Log_Pos"]);
        assert!(status.contains(&relay), "{relay} not in {status}");
        let (line, metrics) = http(port, "GET", "/metrics?name[]=repl_repair_up");
        assert!(line.contains("200"), "{line}");
        assert!(
            metrics.contains("repl_repair_circuit_open{instance=\"db 1/a\"} 1"),
            "{metrics}"
        );
        let (line, body) = http(port, "POST", "/instances/db%201%2Fa/pause");
        assert!(line.contains("200"), "{line} {body}");
        wait_http(port, "/status", "\"state\":\"paused\"");
        let (line, _) = http(port, "POST", "/instances/db%201%2Fa/resume");
        assert!(line.contains("200"), "{line}");
        let (line, _) = http(port, "POST", "/instances/db%2/pause");
        assert!(line.contains("400"), "{line}");
    });
    signal(child.id(), "TERM");
    let _ = wait_at_most(&mut child, 20);
    if let Err(e) = checks {
        std::panic::resume_unwind(e);
    }
    // Not loopback: said before anything is served (192.0.2.1 is TEST-NET, never bound).
    let out = agent(&lab)
        .args(["--once", "--metrics-addr", "192.0.2.1:9104"])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(t.contains("not a loopback address"), "{t}");
    assert_eq!(out.status.code(), Some(2), "{t}");
}
