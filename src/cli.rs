//! Flags, in the `mysql` client's spelling (`-u -p -S -h -P`), and the one step that turns
//! them into a validated [`Config`]. Nothing downstream re-validates.

use crate::watch::{InstanceTarget, WorkerConfig};
use clap::{ArgAction, Parser};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const EXAMPLES: &str = "\
Examples:
  Repair every broken replica on this host once (cron), exit code says how it went:
    MYSQL_PWD=secret repl-repair -u repair -S /run/mysqld/a.sock,/run/mysqld/b.sock --once
  Show the fix SQL without changing anything:
    repl-repair -u repair -S /run/mysqld/a.sock --once --dry-run
  Watch forever as a daemon, one log per instance:
    repl-repair -u repair -S /run/mysqld/a.sock -d -l /var/log/repl-repair

Exit codes with --once: 0 healthy or repaired; 1 something needs a human (refused,
failed, other SQL error, dry run found work); 2 the agent could not do its job.";

/// Repairs MySQL/MariaDB replicas stopped on 1062 (duplicate key) or 1032 (row not
/// found) by fixing the rows the failing transaction needs, instead of skipping it.
#[derive(Debug, Parser)]
#[command(name = "repl-repair", version, disable_help_flag = true, after_help = EXAMPLES)]
pub struct Args {
    /// User to connect as.
    #[arg(short = 'u', long)]
    pub user: Option<String>,

    /// Password (prefer MYSQL_PWD: a value here is visible in the process list).
    #[arg(short = 'p', long, num_args = 0..=1, require_equals = false)]
    pub password: Option<Option<String>>,

    /// Unix socket(s) of the replica(s), comma-separated: one worker per instance.
    #[arg(short = 'S', long, value_delimiter = ',')]
    pub socket: Vec<PathBuf>,

    /// Host of a replica reached over TCP (with -P).
    #[arg(short = 'h', long)]
    pub host: Option<String>,

    /// TCP port of the replica given with -h.
    #[arg(short = 'P', long, default_value_t = 3306)]
    pub port: u16,

    /// Directory for logs: one file per instance, `repl-repair.<port>.log`.
    #[arg(short = 'l', long)]
    pub logdir: Option<PathBuf>,

    /// Run in the background.
    #[arg(short = 'd', long)]
    pub daemon: bool,

    /// Stop after this many seconds (0 = run forever).
    #[arg(short = 't', long, default_value_t = 0)]
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

    /// Seconds between status polls.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,

    /// Where undo journals go (default: <logdir>/journal, else ./repl-repair-journal).
    #[arg(long)]
    pub journal_dir: Option<PathBuf>,

    /// Seconds to watch a restarted SQL thread move past the repaired transaction.
    #[arg(long, default_value_t = 30.0)]
    pub verify_timeout: f64,

    /// Plan/apply rounds on one transaction before it is declared unrepairable.
    #[arg(long, default_value_t = 10)]
    pub max_rounds: u32,

    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
}

/// Validated configuration: one worker config per instance.
#[derive(Debug, Clone)]
pub struct Config {
    pub workers: Vec<WorkerConfig>,
    pub daemon: bool,
    pub logdir: Option<PathBuf>,
    pub verbose: u8,
    pub once: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no instance given: name replica sockets with -S (comma-separated) or a host with -h")]
    NoInstance,
    #[error("--interval must be a positive number of seconds, got {0}")]
    Interval(f64),
    #[error("--verify-timeout must be a positive number of seconds, got {0}")]
    VerifyTimeout(f64),
    #[error(
        "-p without a value would prompt, which this version does not do; set MYSQL_PWD instead"
    )]
    PasswordPrompt,
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
        if !(self.interval > 0.0 && self.interval.is_finite()) {
            return Err(ConfigError::Interval(self.interval));
        }
        if !(self.verify_timeout > 0.0 && self.verify_timeout.is_finite()) {
            return Err(ConfigError::VerifyTimeout(self.verify_timeout));
        }
        if self.daemon && self.once {
            return Err(ConfigError::OnceDaemon);
        }
        if self.daemon && self.logdir.is_none() {
            return Err(ConfigError::DaemonWithoutLogdir);
        }
        let password = match self.password {
            Some(Some(p)) => Some(p),
            Some(None) => return Err(ConfigError::PasswordPrompt),
            None => std::env::var("MYSQL_PWD").ok(),
        };
        if let Some(dir) = &self.logdir {
            std::fs::create_dir_all(dir).map_err(|source| ConfigError::Logdir {
                path: dir.clone(),
                source,
            })?;
        }
        let base = || {
            mysql::OptsBuilder::new()
                .user(self.user.clone())
                .pass(password.clone())
                .prefer_socket(false)
                .tcp_connect_timeout(Some(Duration::from_secs(5)))
                .read_timeout(Some(Duration::from_secs(60)))
        };
        let mut targets: Vec<InstanceTarget> = self
            .socket
            .iter()
            .filter(|s| !s.as_os_str().is_empty())
            .map(|s| InstanceTarget {
                label: s.display().to_string(),
                opts: base().socket(Some(s.display().to_string())).into(),
            })
            .collect();
        if let Some(host) = &self.host {
            targets.push(InstanceTarget {
                label: format!("{host}:{}", self.port),
                opts: base()
                    .ip_or_hostname(Some(host.clone()))
                    .tcp_port(self.port)
                    .into(),
            });
        }
        if targets.is_empty() {
            return Err(ConfigError::NoInstance);
        }
        let until = (self.time > 0).then(|| Instant::now() + Duration::from_secs(self.time));
        let journal_dir = self
            .journal_dir
            .clone()
            .unwrap_or_else(|| match &self.logdir {
                Some(l) => l.join("journal"),
                None => PathBuf::from("repl-repair-journal"),
            });
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
            })
            .collect();
        Ok(Config {
            workers,
            daemon: self.daemon,
            logdir: self.logdir,
            verbose: self.verbose,
            once: self.once,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        Args::try_parse_from(std::iter::once("repl-repair").chain(args.iter().copied()))
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

    #[test]
    fn bad_interval_is_refused() {
        assert!(matches!(
            parse(&["-S", "/a", "--interval", "0"]).unwrap_err(),
            ConfigError::Interval(_)
        ));
    }
}
