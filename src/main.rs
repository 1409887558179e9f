//! repl-repair: parse flags, build the config, start one worker per instance, and decide
//! the exit code here and nowhere else.

use clap::Parser;
use repl_repair::cli::{Args, Config};
use repl_repair::watch::{self, FinalState, Summary};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

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

fn main() -> ExitCode {
    let cfg = match Args::parse().into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("repl-repair: {e}");
            return ExitCode::from(2);
        }
    };
    if cfg.daemon {
        // Must happen before any thread exists: fork keeps only the calling thread.
        let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
        if let Err(e) = daemonize::Daemonize::new().working_directory(cwd).start() {
            eprintln!("repl-repair: cannot daemonize: {e}");
            return ExitCode::from(2);
        }
    }
    let _guard = init_logging(&cfg);
    let shutdown = AtomicBool::new(false);
    let summaries: Vec<Summary> = std::thread::scope(|s| {
        let handles: Vec<_> = cfg
            .workers
            .iter()
            .cloned()
            .map(|w| {
                let shutdown = &shutdown;
                let label = w.target.label.clone();
                (label, s.spawn(move || watch::run(w, shutdown)))
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
    let mut code = 0u8;
    for s in &summaries {
        let (state, detail, c) = match &s.state {
            FinalState::Healthy => ("healthy", String::new(), 0),
            FinalState::NeedsHuman(m) => ("needs-human", m.clone(), 1),
            FinalState::Error(m) => ("error", m.clone(), 2),
        };
        code = code.max(c);
        if cfg.once {
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
    ExitCode::from(code)
}
