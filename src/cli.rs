//! Raw flags, in the `mysql` client's spelling (`-u -p -S -h -P`), as clap parses them:
//! only syntax and ranges are checked here. [`crate::config`] turns them into the
//! validated configuration in one step.

use clap::{ArgAction, Parser, Subcommand};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  Repair every broken replica on this host once (cron), exit code says how it went;
  credentials from an option file ([client] user=..., password=...), never argv:
    repl-repair --defaults-file=/etc/repl-repair/my.cnf -S /run/mysqld/a.sock,/run/mysqld/b.sock --once
  Named instances, one over TCP, and a circuit breaker:
    repl-repair --instance main=/run/mysqld/a.sock --instance reports=10.0.0.7:3306 --max-repairs 20 --per 1h
  From a monitoring host, reading failing transactions from the primaries' binlogs
  ([repl-repair-primary] user/password in the option file):
    repl-repair --defaults-file=/etc/repl-repair/my.cnf -h db1,db2,db3 --once
  Show the fix SQL without changing anything:
    repl-repair -u repair -S /run/mysqld/a.sock --once --dry-run
  Watch forever as a daemon, one log per instance:
    repl-repair -u repair -S /run/mysqld/a.sock -d -l /var/log/repl-repair --pid-file /run/repl-repair.pid

Exit codes with --once: 0 healthy or repaired; 1 something needs a human (refused,
failed, other SQL error, dry run found work); 2 the agent could not do its job.";

/// Repairs MySQL/MariaDB replicas stopped on 1062 (duplicate key) or 1032 (row not
/// found) by fixing the rows the failing transaction needs, instead of skipping it.
#[derive(Debug, Parser)]
#[command(name = "repl-repair", version, disable_help_flag = true, after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// User to connect as.
    #[arg(short = 'u', long)]
    pub user: Option<String>,

    /// Password; with no value, asked on the terminal. Prefer an option file or
    /// MYSQL_PWD: a value here is visible in the process list.
    #[arg(short = 'p', long, num_args = 0..=1, require_equals = false)]
    pub password: Option<Option<String>>,

    /// Read connection options only from this file ([client], [client-server],
    /// [client-mariadb], then [repl-repair]).
    #[arg(long)]
    pub defaults_file: Option<PathBuf>,

    /// Read this option file after ~/.my.cnf.
    #[arg(long)]
    pub defaults_extra_file: Option<PathBuf>,

    /// A named instance, `NAME=/path/to.sock` or `NAME=host:port` (repeatable).
    #[arg(long = "instance", value_name = "NAME=SOCKET|HOST:PORT")]
    pub instances: Vec<String>,

    /// Unix socket(s) of the replica(s), comma-separated: one worker per instance.
    #[arg(short = 'S', long, value_delimiter = ',')]
    pub socket: Vec<PathBuf>,

    /// Host(s) of replicas reached over TCP, comma-separated (`a,b:3307,[::1]:3308`; a
    /// host without `:PORT` takes -P): one worker per instance.
    #[arg(short = 'h', long, value_delimiter = ',')]
    pub host: Vec<String>,

    /// TCP port of the replica given with -h (default 3306).
    #[arg(short = 'P', long)]
    pub port: Option<u16>,

    /// Directory for logs: one file per instance, `repl-repair.<port>.log`.
    #[arg(short = 'l', long)]
    pub logdir: Option<PathBuf>,

    /// Run in the background.
    #[arg(short = 'd', long)]
    pub daemon: bool,

    /// Stop after this many seconds (0 = run forever; at most ten years).
    #[arg(short = 't', long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=MAX_TIME))]
    pub time: u64,

    /// More output (-v: debug, -vv: trace).
    #[arg(short = 'v', long, action = ArgAction::Count)]
    pub verbose: u8,

    /// Check every instance once, repair what is broken, exit.
    #[arg(long)]
    pub once: bool,

    /// Print the exact fix SQL; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Seconds between status polls (0.05 to 3600).
    #[arg(long, default_value_t = 1.0, value_parser = interval_secs)]
    pub interval: f64,

    /// Undo journals, audit trail and dead letters, one subdirectory per instance
    /// (default: /var/lib/repl-repair as root, else $XDG_STATE_HOME/repl-repair or
    /// ~/.local/state/repl-repair).
    #[arg(long)]
    pub journal_dir: Option<PathBuf>,

    /// Seconds to watch a restarted SQL thread move past the repaired transaction (0.1
    /// to 86400).
    #[arg(long, default_value_t = 30.0, value_parser = verify_secs)]
    pub verify_timeout: f64,

    /// Plan/apply rounds on one transaction before it is declared unrepairable.
    #[arg(long, default_value_t = 10)]
    pub max_rounds: u32,

    /// With -d: write the daemon's PID here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,

    /// Directory of the per-instance lock files, one agent per instance on this host
    /// (created 0700 when missing; default: /run/repl-repair as root, else
    /// $XDG_RUNTIME_DIR/repl-repair, else <journal state dir>/locks).
    #[arg(long)]
    pub lock_dir: Option<PathBuf>,

    /// Only repair these tables: `db.tbl` or `db.*`, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub tables: Vec<String>,

    /// Never repair these tables: `db.tbl` or `db.*`, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub ignore_tables: Vec<String>,

    /// Refuse a repair that would change more rows than this.
    #[arg(long)]
    pub max_rows: Option<u64>,

    /// Circuit breaker: at most this many repairs per instance within --per.
    #[arg(long)]
    pub max_repairs: Option<u32>,

    /// Window of the circuit breaker: `90s`, `30m`, `1h`, `1d`.
    #[arg(long, default_value = "1h")]
    pub per: String,

    /// Summary format of --once: text or json (one object per instance and line).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,

    /// Where the failing transaction is read from: `relay` (the replica's relay log, on
    /// its host), `primary` (the primary's binlog, from anywhere), `auto` (the relay log
    /// when readable, else the primary).
    #[arg(long, default_value = "auto", value_parser = ["auto", "relay", "primary"])]
    pub source: String,

    /// The primary to read from, `HOST:PORT` or `CONNECTION=HOST:PORT` per multi-source
    /// connection/channel (repeatable); default: the replica's Master_Host/Master_Port.
    #[arg(long = "primary", value_name = "[CONNECTION=]HOST:PORT")]
    pub primaries: Vec<String>,

    /// User for the primary (needs REPLICATION SLAVE); default: the replica's user.
    #[arg(long)]
    pub primary_user: Option<String>,

    /// Password for the primary; prefer `[repl-repair-primary]` in an option file or
    /// MYSQL_PRIMARY_PWD: a value here is visible in the process list.
    #[arg(long)]
    pub primary_password: Option<String>,

    /// Serve Prometheus /metrics, /status and pause/resume here (e.g. 127.0.0.1:9104).
    #[arg(long)]
    pub metrics_addr: Option<String>,

    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,

    /// Set by `check`: build the configuration without creating or probing any
    /// directory, so checking changes nothing on the host.
    #[arg(skip)]
    pub inspect_only: bool,
}

/// `-t` ceiling: ten years, so `Instant + t` cannot overflow.
const MAX_TIME: u64 = 10 * 365 * 86_400;

/// A number of seconds within `[min, max]`: absurd values are flag errors, not panics.
fn seconds(s: &str, min: f64, max: f64) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v.is_finite() && (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be between {min} and {max} seconds"))
    }
}

/// `--interval`: below 50 ms the agent would only load the server; above an hour it
/// is not watching.
fn interval_secs(s: &str) -> Result<f64, String> {
    seconds(s, 0.05, 3600.0)
}

fn verify_secs(s: &str) -> Result<f64, String> {
    seconds(s, 0.1, 86_400.0)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode binlog or relay-log files: one line per row change. With -S/-h, column
    /// names and signedness come from that server; otherwise columns are @1..@n.
    Decode {
        /// Files, read in order (a transaction may continue in the next relay file).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Start at this offset of the first file (an event boundary).
        #[arg(long)]
        start_position: Option<u64>,
        /// Stop before the first event at or after this offset of the last file.
        #[arg(long)]
        stop_position: Option<u64>,
        /// json (one change event per line) or text.
        #[arg(long, default_value = "json", value_parser = ["json", "text"])]
        format: String,
        /// Threads that render rows (default: one per CPU, at most 8); 1 renders them
        /// on the thread that reads. The output is the same whatever the number.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
        /// At the end, print to stderr the rows decoded, the bytes of the files, the
        /// time taken and the peak memory (resident set) of the process.
        #[arg(long)]
        stats: bool,
    },
    /// Check the setup, changing nothing: connection, replication (every connection),
    /// the grants a repair needs, relay-log access, binlog settings, journal and lock
    /// directories. One line per check; exit 0 ready, 1 some repairs would be refused,
    /// 2 the agent cannot work here.
    Check,
    /// Print a shell completion script (used when packaging).
    #[command(hide = true)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page in roff (used when packaging).
    #[command(hide = true)]
    Man {
        /// Write every page (repl-repair.1, repl-repair-check.1, …) into this directory
        /// instead.
        dir: Option<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag_error(args: &[&str]) -> String {
        Args::try_parse_from(std::iter::once("repl-repair").chain(args.iter().copied()))
            .map(|_| ())
            .expect_err("clap refuses it")
            .to_string()
    }

    #[test]
    fn absurd_numbers_are_flag_errors() {
        for bad in [
            &["--interval", "0"][..],
            &["--interval", "0.01"],
            &["--interval", "1e30"],
            &["--interval", "NaN"],
            &["--interval", "inf"],
            &["--verify-timeout", "1e30"],
            &["--verify-timeout=-1"],
            &["-t", "18446744073709551615"],
            &["-t=-1"],
        ] {
            let e = flag_error(&[&["-S", "/a"][..], bad].concat());
            let flag = bad[0].split('=').next().unwrap_or_default();
            assert!(e.contains(flag), "{bad:?}: {e}");
        }
        assert!(Args::try_parse_from(["repl-repair", "-S", "/a", "--interval", "0.05"]).is_ok());
    }
}
