//! repl-repair: parse flags, build the config, start one worker per instance, and decide
//! the exit code here and nowhere else.

use clap::Parser;
use repl_repair::cli::{Args, Config};
use repl_repair::watch::{self, FinalState, Summary};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn init_logging(cfg: &Config) -> Option<tracing_appender::non_blocking::WorkerGuard> {
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
        let (writer, guard) = tracing_appender::non_blocking(tracing_appender::rolling::never(
            dir,
            "repl-repair.log",
        ));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(false)
            .init();
        return Some(guard);
    }
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    None
}

/// `repl-repair decode`: exit 0 when every file decoded, 2 with the error otherwise.
fn decode(args: &Args, opts: &repl_repair::dump::DumpOptions) -> ExitCode {
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
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write;
            let _ = out.flush();
            eprintln!("repl-repair: {e}");
            ExitCode::from(2)
        }
    }
}

/// VmHWM from /proc: the peak resident set, reported with -v (the benchmarks read it).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(repl_repair::cli::Command::Decode {
        files,
        start_position,
        stop_position,
        format,
    }) = &args.command
    {
        let opts = repl_repair::dump::DumpOptions {
            files: files.clone(),
            start: *start_position,
            stop: *stop_position,
            json: format == "json",
        };
        return decode(&args, &opts);
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
    let _guard = init_logging(&cfg);
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
        if cfg.once && cfg.json {
            println!(
                "{{\"instance\":{},\"state\":\"{state}\",\"repairs\":{},\"detail\":{}}}",
                repl_repair::record::json_string(&s.instance),
                s.repairs,
                repl_repair::record::json_string(&detail)
            );
        } else if cfg.once {
            println!(
                "instance={} state={state} repairs={}{}",
                s.instance,
                s.repairs,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" detail={detail:?}")
                }
            );
        }
    }
    if let Some(p) = cfg.pid_file.as_ref().filter(|_| !cfg.once) {
        let _ = std::fs::remove_file(p);
    }
    ExitCode::from(code)
}
