//! Flags, in the `mysql` client's spelling (`-u -p -S -h -P`), and the one step that turns
//! them into a validated [`Config`]. Nothing downstream re-validates.

use crate::watch::{InstanceTarget, WorkerConfig};
use clap::{ArgAction, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const EXAMPLES: &str = "\
Examples:
  Repair every broken replica on this host once (cron), exit code says how it went;
  credentials from an option file ([client] user=..., password=...), never argv:
    repl-repair --defaults-file=/etc/repl-repair/my.cnf -S /run/mysqld/a.sock,/run/mysqld/b.sock --once
  Named instances, one over TCP, and a circuit breaker:
    repl-repair --instance main=/run/mysqld/a.sock --instance reports=10.0.0.7:3306 --max-repairs 20 --per 1h
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

    /// Read connection options only from this file ([client] and [repl-repair] groups).
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

    /// Host of a replica reached over TCP (with -P).
    #[arg(short = 'h', long)]
    pub host: Option<String>,

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

impl Args {
    /// Connection options for `decode`'s schema lookups, when a server was named.
    pub fn schema_connection(&self) -> Result<Option<mysql::Opts>, ConfigError> {
        let files = crate::config::load(
            self.defaults_file.as_deref(),
            self.defaults_extra_file.as_deref(),
        )?;
        let b = mysql::OptsBuilder::new()
            .user(self.user.clone().or(files.user))
            .pass(match &self.password {
                Some(Some(p)) => Some(p.clone()),
                _ => files.password.or_else(|| std::env::var("MYSQL_PWD").ok()),
            })
            .tcp_connect_timeout(Some(Duration::from_secs(5)));
        Ok(if let Some(s) = self.socket.first() {
            Some(b.socket(Some(s.display().to_string())).into())
        } else {
            self.host.as_ref().map(|h| {
                b.ip_or_hostname(Some(h.clone()))
                    .tcp_port(self.port.unwrap_or(3306))
                    .into()
            })
        })
    }
}

/// Validated configuration: one worker config per instance.
#[derive(Debug, Clone)]
pub struct Config {
    pub workers: Vec<WorkerConfig>,
    pub daemon: bool,
    pub logdir: Option<PathBuf>,
    pub verbose: u8,
    pub once: bool,
    pub pid_file: Option<PathBuf>,
    /// `--format json` for the `--once` summary.
    pub json: bool,
    /// `--dry-run`: stdout carries only SQL, the summary goes to stderr.
    pub dry_run: bool,
    pub metrics_addr: Option<String>,
    pub telemetry: std::sync::Arc<crate::metrics::Telemetry>,
}

/// Asks for the password on the controlling terminal with echo off, like `mysql -p`.
fn prompt_password() -> Option<String> {
    use std::io::{BufRead, Write};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(tty.try_clone().ok()?)
            .status()
            .ok()
    };
    let mut out = tty.try_clone().ok()?;
    let _ = write!(out, "Enter password: ");
    let _ = out.flush();
    stty("-echo");
    let mut line = String::new();
    let read = std::io::BufReader::new(tty.try_clone().ok()?).read_line(&mut line);
    stty("echo");
    let _ = writeln!(out);
    read.ok()?;
    Some(line.trim_end_matches(['\r', '\n']).to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no instance given: name replica sockets with -S (comma-separated) or a host with -h")]
    NoInstance,
    #[error(
        "-p without a value asks for the password on a terminal, and there is none; use an option file (--defaults-file) or MYSQL_PWD"
    )]
    PasswordPrompt,
    #[error(transparent)]
    OptionFile(#[from] crate::config::OptionFileError),
    #[error("--instance {0:?} is not NAME=/path/to.sock or NAME=host:port")]
    Instance(String),
    #[error("--instance name {0:?} contains a control character; use printable names")]
    InstanceName(String),
    #[error(
        "two instances are named {0:?}: names key logs, locks and journals, so each must be unique"
    )]
    DuplicateInstance(String),
    #[error("{what} {path}: {source}")]
    Dir {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no default {what} for this user (neither {vars} nor HOME is set); name one with {flag}"
    )]
    NoDefaultDir {
        what: &'static str,
        vars: &'static str,
        flag: &'static str,
    },
    #[error(transparent)]
    Pattern(#[from] crate::limits::PatternError),
    #[error("--per {0:?} is not a duration like 90s, 30m, 1h or 1d")]
    Per(String),
    #[error("--max-repairs must be at least 1")]
    MaxRepairs,
    #[error("log directory {path}: {source}")]
    Logdir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--daemon needs --logdir: a daemon has no terminal to write to")]
    DaemonWithoutLogdir,
    #[error("--once and --daemon do not go together: --once exits after one check")]
    OnceDaemon,
}

impl Args {
    pub fn into_config(self) -> Result<Config, ConfigError> {
        if self.daemon && self.once {
            return Err(ConfigError::OnceDaemon);
        }
        if self.daemon && self.logdir.is_none() {
            return Err(ConfigError::DaemonWithoutLogdir);
        }
        // Precedence as in the mysql client: command line, then option files, then
        // MYSQL_PWD.
        let files = crate::config::load(
            self.defaults_file.as_deref(),
            self.defaults_extra_file.as_deref(),
        )?;
        let user = self.user.clone().or(files.user.clone());
        let password = match &self.password {
            Some(Some(p)) => Some(p.clone()),
            Some(None) => Some(prompt_password().ok_or(ConfigError::PasswordPrompt)?),
            None => files
                .password
                .clone()
                .or_else(|| std::env::var("MYSQL_PWD").ok()),
        };
        let filter = std::sync::Arc::new(crate::limits::TableFilter::new(
            &self.tables,
            &self.ignore_tables,
        )?);
        let per = crate::limits::parse_duration(&self.per)
            .ok_or_else(|| ConfigError::Per(self.per.clone()))?;
        if self.max_repairs == Some(0) {
            return Err(ConfigError::MaxRepairs);
        }
        if let Some(dir) = self.logdir.as_ref().filter(|_| !self.inspect_only) {
            std::fs::create_dir_all(dir).map_err(|source| ConfigError::Logdir {
                path: dir.clone(),
                source,
            })?;
        }
        let base = || {
            mysql::OptsBuilder::new()
                .user(user.clone())
                .pass(password.clone())
                .prefer_socket(false)
                .tcp_connect_timeout(Some(Duration::from_secs(5)))
                .read_timeout(Some(Duration::from_secs(60)))
        };
        let socket_target = |name: Option<String>, path: &str| InstanceTarget {
            label: path.to_string(),
            name,
            opts: base().socket(Some(path.to_string())).into(),
        };
        let tcp_target = |name: Option<String>, host: &str, port: u16| InstanceTarget {
            label: format!("{host}:{port}"),
            name,
            opts: base()
                .ip_or_hostname(Some(host.to_string()))
                .tcp_port(port)
                .into(),
        };
        let mut targets: Vec<InstanceTarget> = self
            .socket
            .iter()
            .filter(|s| !s.as_os_str().is_empty())
            .map(|s| socket_target(None, &s.display().to_string()))
            .collect();
        if let Some(host) = self.host.as_ref().or(files.host.as_ref()) {
            targets.push(tcp_target(
                None,
                host,
                self.port.or(files.port).unwrap_or(3306),
            ));
        }
        for spec in &self.instances {
            let bad = || ConfigError::Instance(spec.clone());
            let (name, at) = spec.split_once('=').ok_or_else(bad)?;
            if name.is_empty() || at.is_empty() {
                return Err(bad());
            }
            if name.chars().any(char::is_control) {
                return Err(ConfigError::InstanceName(name.to_string()));
            }
            if at.contains('/') {
                targets.push(socket_target(Some(name.to_string()), at));
            } else {
                let (host, port) = at.rsplit_once(':').ok_or_else(bad)?;
                let port: u16 = port.parse().map_err(|_| bad())?;
                targets.push(tcp_target(Some(name.to_string()), host, port));
            }
        }
        if targets.is_empty()
            && let Some(sock) = &files.socket
        {
            targets.push(socket_target(None, sock));
        }
        if targets.is_empty() {
            return Err(ConfigError::NoInstance);
        }
        let mut names = std::collections::HashSet::new();
        for n in targets.iter().filter_map(|t| t.name.as_deref()) {
            if !names.insert(n) {
                return Err(ConfigError::DuplicateInstance(n.to_string()));
            }
        }
        let until = (self.time > 0).then(|| Instant::now() + Duration::from_secs(self.time));
        let journal_dir = match &self.journal_dir {
            Some(d) => d.clone(),
            None => default_journal_dir()?,
        };
        if !self.inspect_only {
            prepare_dir(&journal_dir, "journal directory")?;
            probe_writable(&journal_dir)?;
        }
        let lock_dir = match &self.lock_dir {
            Some(d) => d.clone(),
            None => default_lock_dir()?,
        };
        if !self.inspect_only {
            prepare_dir(&lock_dir, "lock directory")?;
        }
        let telemetry = std::sync::Arc::new(crate::metrics::Telemetry::new());
        let workers = targets
            .into_iter()
            .map(|target| WorkerConfig {
                target,
                interval: Duration::from_secs_f64(self.interval),
                until,
                once: self.once,
                logdir: self.logdir.clone(),
                journal_dir: journal_dir.clone(),
                dry_run: self.dry_run,
                verify_timeout: Duration::from_secs_f64(self.verify_timeout),
                max_rounds: self.max_rounds.max(1),
                filter: filter.clone(),
                max_rows: self.max_rows,
                breaker: self.max_repairs.map(|n| (n, per)),
                lock_dir: lock_dir.clone(),
                telemetry: telemetry.clone(),
            })
            .collect();
        Ok(Config {
            workers,
            daemon: self.daemon,
            logdir: self.logdir,
            verbose: self.verbose,
            once: self.once,
            pid_file: self.pid_file,
            json: self.format == "json",
            dry_run: self.dry_run,
            metrics_addr: self.metrics_addr,
            telemetry,
        })
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// Where state lives when --journal-dir is not given: a standard state directory,
/// never the working directory (cron runs from `/`, a shell from anywhere).
fn default_journal_dir() -> Result<PathBuf, ConfigError> {
    if is_root() {
        return Ok(PathBuf::from("/var/lib/repl-repair"));
    }
    env_dir("XDG_STATE_HOME")
        .or_else(|| env_dir("HOME").map(|h| h.join(".local").join("state")))
        .map(|d| d.join("repl-repair"))
        .ok_or(ConfigError::NoDefaultDir {
            what: "journal directory",
            vars: "XDG_STATE_HOME",
            flag: "--journal-dir",
        })
}

/// Lock files go to a directory only this user can write: in a shared /tmp another
/// local user could plant a symlink there or hold the lock.
fn default_lock_dir() -> Result<PathBuf, ConfigError> {
    if is_root() {
        return Ok(PathBuf::from("/run/repl-repair"));
    }
    if let Some(run) = env_dir("XDG_RUNTIME_DIR") {
        return Ok(run.join("repl-repair"));
    }
    // cron sets no XDG_RUNTIME_DIR: the user's private state directory still works.
    default_journal_dir()
        .map(|d| d.join("locks"))
        .map_err(|_| ConfigError::NoDefaultDir {
            what: "lock directory",
            vars: "XDG_RUNTIME_DIR, XDG_STATE_HOME",
            flag: "--lock-dir",
        })
}

/// Creates `dir` (its last component 0700, private to this user) when missing and
/// checks it is a directory: a bad directory is a start-up error (exit 2), not a
/// failure in the middle of a repair.
fn prepare_dir(dir: &Path, what: &'static str) -> Result<(), ConfigError> {
    use std::os::unix::fs::DirBuilderExt;
    let err = |source| ConfigError::Dir {
        what,
        path: dir.to_path_buf(),
        source,
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(err(e)),
    }
    let md = std::fs::metadata(dir).map_err(err)?;
    if !md.is_dir() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "exists and is not a directory",
        )));
    }
    Ok(())
}

/// The journal is written before every DELETE: find out now, not mid-repair, when
/// that cannot work.
fn probe_writable(dir: &Path) -> Result<(), ConfigError> {
    let probe = dir.join(format!(".repl-repair-probe.{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|source| ConfigError::Dir {
            what: "journal directory is not writable:",
            path: dir.to_path_buf(),
            source,
        })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses with private journal and lock directories, so no test touches the
    /// defaults under /var/lib and /run.
    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("rr-cli-{}", std::process::id()));
        let (j, l) = (dir.join("j"), dir.join("l"));
        let base = [
            "repl-repair",
            "--journal-dir",
            j.to_str().unwrap(),
            "--lock-dir",
            l.to_str().unwrap(),
        ];
        Args::try_parse_from(base.into_iter().chain(args.iter().copied()))
            .expect("flags parse")
            .into_config()
    }

    #[test]
    fn sockets_are_comma_separated_one_worker_each() {
        let c = parse(&["-u", "x", "-pSECRET", "-S", "/a.sock,/b.sock", "--once"]).unwrap();
        assert_eq!(c.workers.len(), 2);
        assert_eq!(c.workers[1].target.label, "/b.sock");
    }

    #[test]
    fn no_instance_is_a_clear_error() {
        let e = parse(&["-u", "x"]).unwrap_err();
        assert!(e.to_string().contains("-S"), "{e}");
    }

    #[test]
    fn named_instances() {
        let c = parse(&[
            "--instance",
            "a=/run/a.sock",
            "--instance",
            "b=10.0.0.2:3307",
        ])
        .unwrap();
        assert_eq!(c.workers[0].target.name.as_deref(), Some("a"));
        assert_eq!(c.workers[1].target.label, "10.0.0.2:3307");
        assert!(matches!(
            parse(&["--instance", "nohost"]).unwrap_err(),
            ConfigError::Instance(_)
        ));
    }

    #[test]
    fn host_and_port_like_the_mysql_client() {
        let c = parse(&["-h", "127.0.0.1", "-P", "3307"]).unwrap();
        assert_eq!(c.workers[0].target.label, "127.0.0.1:3307");
    }

    #[test]
    fn daemon_needs_a_logdir() {
        assert!(matches!(
            parse(&["-S", "/a", "-d"]).unwrap_err(),
            ConfigError::DaemonWithoutLogdir
        ));
    }

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

    #[test]
    fn instance_names_must_be_printable_and_unique() {
        let with = parse;
        assert!(matches!(
            with(&["--instance", "a\nb=/a.sock"]).unwrap_err(),
            ConfigError::InstanceName(_)
        ));
        assert!(matches!(
            with(&["--instance", "=/a.sock"]).unwrap_err(),
            ConfigError::Instance(_)
        ));
        assert!(matches!(
            with(&["--instance", "x=/a.sock", "--instance", "x=/b.sock"]).unwrap_err(),
            ConfigError::DuplicateInstance(n) if n == "x"
        ));
        let c = with(&["--instance", "db.1=/a.sock", "--instance", "db_1=/b.sock"]).unwrap();
        assert_eq!(c.workers.len(), 2);
    }
}
