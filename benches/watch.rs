//! The cost of watching: one agent with 100 `--instance` names on one lab replica, polling
//! every second for 30 s, as a daemon would. Prints the agent's CPU time (user + system,
//! from getrusage of the child), its share of one core, and CPU per poll, beside the
//! baseline measured in the same run: the replica server's own CPU for answering those
//! same polls (from /proc/<mariadbd pid>/stat, before and after).
//!
//!   cargo bench --bench watch
//!   REPL_REPAIR_BENCH_SECONDS=60 REPL_REPAIR_BENCH_INSTANCES=200 cargo bench --bench watch
//!
//! Target (issue 12): 100 instances at 1 s polls ≤ 2 % of one core.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::Lab;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime of a process, in seconds, from /proc/PID/stat.
fn proc_cpu(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm) ": state is field 0, utime 11, stime 12.
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

/// CPU seconds (user + system) of all waited-for children so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn main() {
    let seconds = env_u64("REPL_REPAIR_BENCH_SECONDS", 30);
    let instances = env_u64("REPL_REPAIR_BENCH_INSTANCES", 100);
    let lab = Lab::up("bench-watch", &[]);
    let socket = lab.get("REPLICA_SOCKET").to_string();
    let server_pid = lab.get("REPLICA_PID").to_string();
    let dir = lab.dir.join("watch");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_repl-repair"));
    cmd.args(["-u", lab.get("LAB_USER")])
        .env("MYSQL_PWD", lab.get("LAB_PASSWORD"))
        .arg("--journal-dir")
        .arg(dir.join("journal"))
        .arg("--lock-dir")
        .arg(dir.join("locks"))
        .args(["--interval", "1", "-t", &seconds.to_string()]);
    for i in 0..instances {
        cmd.arg("--instance").arg(format!("w{i}={socket}"));
    }
    // The whole run (start-up included), from getrusage once the agent has exited, and
    // the steady state: the agent's and the server's CPU between 5 s after the start and
    // 2 s before the end, from /proc.
    let before_children = children_cpu();
    let start = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run repl-repair");
    let pid = child.id().to_string();
    let warm = Duration::from_secs(5);
    std::thread::sleep(warm);
    let (agent0, server0, t0) = (proc_cpu(&pid), proc_cpu(&server_pid), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds.saturating_sub(7).max(1)));
    let (agent1, server1, steady) = (proc_cpu(&pid), proc_cpu(&server_pid), t0.elapsed());
    let status = child.wait().expect("wait for repl-repair");
    let wall = start.elapsed();
    let agent = children_cpu() - before_children;
    assert!(status.success(), "agent failed: {status}");
    let steady_polls = instances as f64 * steady.as_secs_f64();
    let core = |cpu: f64, d: Duration| 100.0 * cpu / d.as_secs_f64();
    println!(
        "watch: {instances} instances, 1 s polls, {:.1} s wall ({:.1} s measured in steady state, ~{steady_polls:.0} polls)",
        wall.as_secs_f64(),
        steady.as_secs_f64()
    );
    println!(
        "  repl-repair agent, steady state  CPU {:.3} s = {:.2} % of one core, {:.1} µs per poll (target ≤ 2 %)",
        agent1 - agent0,
        core(agent1 - agent0, steady),
        (agent1 - agent0) * 1e6 / steady_polls
    );
    println!(
        "  repl-repair agent, whole run     CPU {agent:.3} s = {:.2} % of one core (start-up: 100 connections, locks)",
        core(agent, wall)
    );
    println!(
        "  baseline: mariadbd, steady state CPU {:.3} s = {:.2} % of one core answering the same polls, {:.1} µs per poll",
        server1 - server0,
        core(server1 - server0, steady),
        (server1 - server0) * 1e6 / steady_polls
    );
}
