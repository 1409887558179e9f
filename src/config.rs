//! The one validation step: raw [`Args`] (flags) plus option files become a [`Config`]
//! that the rest of the agent trusts. Everything that can be wrong about the setup
//! (credentials, instances, directories, limits) is an error here, at start-up, with
//! exit code 2; nothing downstream re-validates.

use crate::cli::Args;
use crate::watch::{InstanceTarget, WorkerConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Validated configuration: process-wide settings for main.rs, and one [`WorkerConfig`]
/// per instance, all built in [`Args::into_config`].
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

/// Asks for the password on the controlling terminal (`/dev/tty`, not stdin, which may
/// be a pipe) with echo off, like `mysql -p`. `None` when there is no terminal (cron,
/// systemd): logging is not set up yet, so the caller's error is all the user sees.
fn prompt_password() -> Option<String> {
    rpassword::prompt_password("Enter password: ").ok()
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
    OptionFile(#[from] crate::option_file::OptionFileError),
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
    #[error("--primary {0:?} is not HOST:PORT or CONNECTION=HOST:PORT")]
    Primary(String),
    #[error("-h {0:?} is not HOST or HOST:PORT")]
    Host(String),
    #[error(
        "--primary/--primary-user/--primary-password are for reading from the primary; --source relay never does"
    )]
    PrimaryWithRelay,
}
impl Args {
    /// The validation step: flags and option files in, a [`Config`] out, or the first
    /// thing that is wrong (exit code 2). Checks run in a fixed order, so the same bad
    /// command line always gets the same message.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        if self.daemon && self.once {
            return Err(ConfigError::OnceDaemon);
        }
        if self.daemon && self.logdir.is_none() {
            return Err(ConfigError::DaemonWithoutLogdir);
        }
        let files = crate::option_file::load(
            self.defaults_file.as_deref(),
            self.defaults_extra_file.as_deref(),
        )?;
        let login = Login::resolve(&self, &files, Prompt::OnTerminal)?;
        let filter = std::sync::Arc::new(crate::limits::TableFilter::new(
            &self.tables,
            &self.ignore_tables,
        )?);
        let per = crate::limits::parse_duration(&self.per)
            .ok_or_else(|| ConfigError::Per(self.per.clone()))?;
        if self.max_repairs == Some(0) {
            return Err(ConfigError::MaxRepairs);
        }
        // `check` changes nothing on the host: no directory is created or probed.
        if let Some(dir) = self.logdir.as_ref().filter(|_| !self.inspect_only) {
            std::fs::create_dir_all(dir).map_err(|source| ConfigError::Logdir {
                path: dir.clone(),
                source,
            })?;
        }
        let targets = instance_targets(&self, &files, &login)?;
        let source = crate::policy::SourceMode::parse(&self.source).unwrap_or_default();
        let primary = std::sync::Arc::new(primary_access(&self, &files, &login, source)?);
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
        // Every setting a worker needs, shared by all of them; only the target differs.
        let template = WorkerConfig {
            target: InstanceTarget {
                label: String::new(),
                name: None,
                opts: mysql::Opts::default(),
            },
            interval: Duration::from_secs_f64(self.interval),
            until: (self.time > 0).then(|| Instant::now() + Duration::from_secs(self.time)),
            once: self.once,
            logdir: self.logdir.clone(),
            journal_dir,
            dry_run: self.dry_run,
            verify_timeout: Duration::from_secs_f64(self.verify_timeout),
            max_rounds: self.max_rounds.max(1),
            filter,
            max_rows: self.max_rows,
            breaker: self.max_repairs.map(|n| (n, per)),
            lock_dir,
            telemetry: telemetry.clone(),
            source,
            primary,
        };
        let workers = targets
            .into_iter()
            .map(|target| WorkerConfig {
                target,
                ..template.clone()
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

    /// Connection options for `decode`'s schema lookups, when a server was named.
    pub fn schema_connection(&self) -> Result<Option<mysql::Opts>, ConfigError> {
        let files = crate::option_file::load(
            self.defaults_file.as_deref(),
            self.defaults_extra_file.as_deref(),
        )?;
        let login = Login::resolve(self, &files, Prompt::Never)?;
        let b = mysql::OptsBuilder::new()
            .user(login.user)
            .pass(login.password)
            .tcp_connect_timeout(Some(Duration::from_secs(5)));
        Ok(if let Some(s) = self.socket.first() {
            Some(b.socket(Some(s.display().to_string())).into())
        } else {
            self.host.first().map(|h| {
                b.ip_or_hostname(Some(h.clone()))
                    .tcp_port(self.port.unwrap_or(3306))
                    .into()
            })
        })
    }
}

/// Whether a bare `-p` asks on the terminal (the agent) or falls back to the option
/// files and MYSQL_PWD (`decode`, which only reads column names).
#[derive(Clone, Copy, PartialEq)]
enum Prompt {
    OnTerminal,
    Never,
}

/// User and password, with the mysql client's precedence: command line, then option
/// files, then MYSQL_PWD.
struct Login {
    user: Option<String>,
    password: Option<String>,
}

impl Login {
    fn resolve(
        args: &Args,
        files: &crate::option_file::ClientOptions,
        prompt: Prompt,
    ) -> Result<Login, ConfigError> {
        let from_files = || {
            files
                .password
                .clone()
                .or_else(|| std::env::var("MYSQL_PWD").ok())
        };
        let password = match &args.password {
            Some(Some(p)) => Some(p.clone()),
            Some(None) if prompt == Prompt::OnTerminal => {
                Some(prompt_password().ok_or(ConfigError::PasswordPrompt)?)
            }
            _ => from_files(),
        };
        Ok(Login {
            user: args.user.clone().or_else(|| files.user.clone()),
            password,
        })
    }
}

/// The instances to watch, in a fixed order: `-S` sockets, `-h` (or the option files'
/// host), `--instance`s; the option files' socket only when nothing else was named.
fn instance_targets(
    args: &Args,
    files: &crate::option_file::ClientOptions,
    login: &Login,
) -> Result<Vec<InstanceTarget>, ConfigError> {
    let base = || {
        mysql::OptsBuilder::new()
            .user(login.user.clone())
            .pass(login.password.clone())
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
    let mut targets: Vec<InstanceTarget> = args
        .socket
        .iter()
        .filter(|s| !s.as_os_str().is_empty())
        .map(|s| socket_target(None, &s.display().to_string()))
        .collect();
    let default_port = args.port.or(files.port).unwrap_or(3306);
    let hosts: Vec<&String> = if args.host.is_empty() {
        files.host.iter().collect()
    } else {
        args.host.iter().filter(|h| !h.is_empty()).collect()
    };
    for spec in hosts {
        let (host, port) =
            host_port(spec, default_port).ok_or_else(|| ConfigError::Host(spec.clone()))?;
        targets.push(tcp_target(None, &host, port));
    }
    for spec in &args.instances {
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
    Ok(targets)
}

/// One `-h` entry: `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
fn host_port(spec: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = spec.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return (!host.is_empty()).then(|| (host.to_string(), port));
    }
    match spec.matches(':').count() {
        0 => Some((spec.to_string(), default_port)),
        1 => {
            let (host, port) = spec.split_once(':')?;
            let port: u16 = port.parse().ok()?;
            (!host.is_empty() && port != 0).then(|| (host.to_string(), port))
        }
        _ => Some((spec.to_string(), default_port)),
    }
}

/// The login and addresses for reading the primaries' binlogs: `--primary-user` /
/// `--primary-password`, then `[repl-repair-primary]`, then `MYSQL_PRIMARY_PWD`; with no
/// user of its own, the replica's login.
fn primary_access(
    args: &Args,
    files: &crate::option_file::ClientOptions,
    login: &Login,
    source: crate::policy::SourceMode,
) -> Result<crate::primary::PrimaryAccess, ConfigError> {
    let any_primary_flag = !args.primaries.is_empty()
        || args.primary_user.is_some()
        || args.primary_password.is_some();
    if source == crate::policy::SourceMode::Relay && any_primary_flag {
        return Err(ConfigError::PrimaryWithRelay);
    }
    let mut overrides = Vec::new();
    for spec in &args.primaries {
        overrides.push(
            crate::primary::PrimaryAccess::parse_override(spec)
                .ok_or_else(|| ConfigError::Primary(spec.clone()))?,
        );
    }
    let user = args
        .primary_user
        .clone()
        .or_else(|| files.primary_user.clone());
    let password = args
        .primary_password
        .clone()
        .or_else(|| files.primary_password.clone())
        .or_else(|| std::env::var("MYSQL_PRIMARY_PWD").ok());
    Ok(match user {
        Some(user) => crate::primary::PrimaryAccess {
            overrides,
            user: Some(user),
            password,
        },
        None => crate::primary::PrimaryAccess {
            overrides,
            user: login.user.clone(),
            password: password.or_else(|| login.password.clone()),
        },
    })
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
    // Unique per call, not only per process: two validations at once (tests) must not
    // take each other's probe for a read-only directory.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = dir.join(format!(".repl-repair-probe.{}.{n}", std::process::id()));
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
    use clap::Parser;

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
