//! repl-repair: parse flags, build the config, start one worker per instance, and decide
//! the exit code here and nowhere else.

use clap::Parser;
use repl_repair::cli::Args;
use repl_repair::config::Config;
use repl_repair::watch::{self, FinalState, Summary};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Logs to stderr, or with `-d` to `<logdir>/repl-repair.log`: a [`RotatingFile`] like
/// the instance logs, so SIGHUP reopens it and it never outgrows 64 MiB.
///
/// [`RotatingFile`]: repl_repair::record::RotatingFile
fn init_logging(cfg: &Config) -> Result<(), String> {
    let level = match cfg.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REPL_REPAIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    if cfg.daemon
        && let Some(dir) = &cfg.logdir
    {
        use repl_repair::record::RotatingFile;
        let path = dir.join("repl-repair.log");
        let file = RotatingFile::open(&path, RotatingFile::MAX, RotatingFile::KEEP)
            .map_err(|e| format!("cannot open the agent log {}: {e}", path.display()))?;
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .init();
        return Ok(());
    }
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}

/// SIGHUP reopens the log files (logrotate renames them, then signals), in every mode:
/// it never ends the process, least of all between a journal write and its COMMIT.
fn reopen_logs_on_sighup() -> Result<(), std::io::Error> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::spawn(move || {
        for _ in signals.forever() {
            repl_repair::record::request_reopen();
            tracing::info!("SIGHUP: log files reopened");
        }
    });
    Ok(())
}

/// `decode` reads regular files only: opening a FIFO blocks until a writer comes, and a
/// device like /dev/zero never ends.
fn regular_files(files: &[std::path::PathBuf]) -> Result<(), String> {
    for f in files {
        match std::fs::metadata(f) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(format!(
                    "{} is not a regular file (a FIFO, device or directory); decode reads binlog and relay-log files",
                    f.display()
                ));
            }
            Err(e) => return Err(format!("cannot read {}: {e}", f.display())),
        }
    }
    Ok(())
}

/// `repl-repair decode`: exit 0 when every file decoded (or the reader of the output
/// closed it), 2 with the error otherwise.
fn decode(args: &Args, opts: &repl_repair::dump::DumpOptions, stats: bool) -> ExitCode {
    let started = std::time::Instant::now();
    if let Err(e) = regular_files(&opts.files) {
        eprintln!("repl-repair: {e}");
        return ExitCode::from(2);
    }
    let mut conn = match args.schema_connection() {
        Ok(Some(o)) => match mysql::Conn::new(o) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("repl-repair: cannot connect for column names: {e}");
                return ExitCode::from(2);
            }
        },
        Ok(None) => None,
        Err(e) => {
            eprintln!("repl-repair: {e}");
            return ExitCode::from(2);
        }
    };
    let lookup = |db: &str, t: &str| {
        conn.as_mut()
            .and_then(|c| repl_repair::schema::TableInfo::load(c, db, t).ok())
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match repl_repair::dump::run(opts, lookup, &mut out) {
        Ok(rows) => {
            if stats {
                drop(out);
                eprintln!("{}", decode_stats(opts, rows, started.elapsed()));
            }
            ExitCode::SUCCESS
        }
        // `decode … | head`: the reader has all it wanted (as ripgrep does).
        Err(repl_repair::dump::DumpError::Output(e))
            if e.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            use std::io::Write;
            let _ = out.flush();
            eprintln!("repl-repair: {e}");
            ExitCode::from(2)
        }
    }
}

/// `decode --stats`: what was read, how fast, and the peak resident set (VmHWM, the
/// figure to watch when decoding a huge transaction on a small replica).
fn decode_stats(
    opts: &repl_repair::dump::DumpOptions,
    rows: u64,
    took: std::time::Duration,
) -> String {
    let bytes: u64 = opts
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let secs = took.as_secs_f64();
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or_else(
            || "unknown".to_string(),
            |kib| format!("{:.1} MiB", kib as f64 / 1024.0),
        );
    format!(
        "repl-repair: decoded {rows} rows from {} file(s), {bytes} bytes, in {secs:.3} s ({:.1} MB/s); peak RSS {peak}",
        opts.files.len(),
        if secs > 0.0 {
            bytes as f64 / secs / 1e6
        } else {
            0.0
        },
    )
}

/// The `--once --format json` line of one instance.
#[derive(serde::Serialize)]
struct SummaryLine<'a> {
    instance: &'a str,
    state: &'a str,
    repairs: u64,
    detail: &'a str,
}

/// VmHWM from /proc: the peak resident set, reported with -v (the benchmarks read it).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> ExitCode {
    let args = Args::parse();
    match &args.command {
        Some(repl_repair::cli::Command::Check) => {
            return ExitCode::from(repl_repair::check::command(args));
        }
        Some(repl_repair::cli::Command::Man { dir }) => {
            let written = match dir {
                Some(d) => repl_repair::docs::man_pages(d),
                None => repl_repair::docs::man(&mut std::io::stdout().lock()),
            };
            return match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("repl-repair: cannot write the man page: {e}");
                    ExitCode::from(2)
                }
            };
        }
        Some(repl_repair::cli::Command::Completions { shell }) => {
            repl_repair::docs::completions(*shell, &mut std::io::stdout().lock());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    if let Some(repl_repair::cli::Command::Decode {
        files,
        start_position,
        stop_position,
        format,
        threads,
        stats,
    }) = &args.command
    {
        let opts = repl_repair::dump::DumpOptions {
            files: files.clone(),
            start: *start_position,
            stop: *stop_position,
            json: format == "json",
            threads: threads.map_or_else(repl_repair::dump::default_threads, usize::from),
            batch: repl_repair::dump::BATCH,
        };
        return decode(&args, &opts, *stats);
    }
    let cfg = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("repl-repair: {e}");
            return ExitCode::from(2);
        }
    };
    if cfg.daemon {
        // Must happen before any thread exists: fork keeps only the calling thread.
        let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
        let mut d = daemonize::Daemonize::new().working_directory(cwd);
        if let Some(p) = &cfg.pid_file {
            d = d.pid_file(p);
        }
        if let Err(e) = d.start() {
            eprintln!("repl-repair: cannot daemonize: {e}");
            return ExitCode::from(2);
        }
    } else if let Some(p) = &cfg.pid_file
        && let Err(e) = std::fs::write(p, format!("{}\n", std::process::id()))
    {
        eprintln!("repl-repair: cannot write pid file {}: {e}", p.display());
        return ExitCode::from(2);
    }
    if let Err(e) = init_logging(&cfg) {
        eprintln!("repl-repair: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = reopen_logs_on_sighup() {
        eprintln!("repl-repair: cannot install the SIGHUP handler: {e}");
        return ExitCode::from(2);
    }
    // SIGTERM/SIGINT only raise a flag: each worker finishes its current step (a repair
    // is never cut between its journal write and its COMMIT) and returns.
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, shutdown.clone()) {
            eprintln!("repl-repair: cannot install a signal handler: {e}");
            return ExitCode::from(2);
        }
    }
    let http = match &cfg.metrics_addr {
        Some(addr) => {
            if repl_repair::metrics::is_loopback(addr) != Some(true) {
                tracing::warn!(
                    "--metrics-addr {addr} is not a loopback address: /metrics, /status and pause/resume have no authentication; bind 127.0.0.1 and put a proxy in front if they must be reached from elsewhere"
                );
            }
            match repl_repair::metrics::serve(addr, cfg.telemetry.clone(), shutdown.clone()) {
                Ok(h) => Some(h),
                Err(e) => {
                    eprintln!("repl-repair: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None => None,
    };
    let summaries: Vec<Summary> = std::thread::scope(|s| {
        let handles: Vec<_> = cfg
            .workers
            .iter()
            .cloned()
            .map(|w| {
                let shutdown = &*shutdown;
                let cfg_once = cfg.once;
                let label = w.target.label.clone();
                (
                    label,
                    s.spawn(move || {
                        // A worker that hits a bug reports it and starts watching again;
                        // the other instances never notice.
                        loop {
                            let w = w.clone();
                            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                watch::run(w, shutdown)
                            })) {
                                Ok(summary) => return summary,
                                Err(_) if !cfg_once && !shutdown.load(Ordering::Relaxed) => {
                                    tracing::error!("worker panicked; restarting it in 1s");
                                    std::thread::sleep(std::time::Duration::from_secs(1));
                                }
                                Err(_) => std::panic::resume_unwind(Box::new("worker panicked")),
                            }
                        }
                    }),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(label, h)| {
                h.join().unwrap_or_else(|_| Summary {
                    instance: label,
                    repairs: 0,
                    state: FinalState::Error("worker panicked".into()),
                })
            })
            .collect()
    });
    tracing::debug!("peak RSS {} KiB", peak_rss_kib().unwrap_or(0));
    shutdown.store(true, Ordering::Relaxed);
    if let Some(h) = http {
        let _ = h.join();
    }
    let mut code = 0u8;
    for s in &summaries {
        let (state, detail, c) = match &s.state {
            FinalState::Healthy => ("healthy", String::new(), 0),
            FinalState::NeedsHuman(m) => ("needs-human", m.clone(), 1),
            FinalState::Error(m) => ("error", m.clone(), 2),
        };
        code = code.max(c);
        // A dry run's stdout is SQL for the mysql client: the summary goes to stderr.
        let line = if cfg.once && cfg.json {
            serde_json::to_string(&SummaryLine {
                instance: &s.instance,
                state,
                repairs: s.repairs,
                detail: &detail,
            })
            .unwrap_or_default()
        } else if cfg.once {
            format!(
                "instance={} state={state} repairs={}{}",
                s.instance,
                s.repairs,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" detail={detail:?}")
                }
            )
        } else {
            continue;
        };
        if cfg.dry_run {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    if let Some(p) = cfg.pid_file.as_ref().filter(|_| !cfg.once) {
        let _ = std::fs::remove_file(p);
    }
    ExitCode::from(code)
}
