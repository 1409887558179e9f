//! What a worker does about what it sees, as pure functions: which status row needs
//! attention, whether to repair, leave alone or stop at the circuit breaker
//! ([`decide`]), and what an outcome means for the instance's state, its `--once`
//! result and its log ([`judge`]). The worker in `watch.rs` only does the I/O around
//! these, so every branch here is unit-tested without a server.

use crate::repair::Outcome;
use crate::status::{Incident, ReplicaStatus};
use std::collections::HashSet;

/// How an instance ended up, for the `--once` summary and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalState {
    Healthy,
    /// Something needs a human: refused, failed, dry-run found work, other SQL error.
    NeedsHuman(String),
    /// The agent could not do its job here: unreachable, not a replica.
    Error(String),
}

/// An instance's state as `/status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Healthy,
    Repairing,
    Refused,
    Unrepairable,
    CircuitOpen,
    Unreachable,
    Paused,
    Busy,
    DryRun,
    Error,
}

impl InstanceState {
    pub fn label(self) -> &'static str {
        match self {
            InstanceState::Healthy => "healthy",
            InstanceState::Repairing => "repairing",
            InstanceState::Refused => "refused",
            InstanceState::Unrepairable => "unrepairable",
            InstanceState::CircuitOpen => "circuit-open",
            InstanceState::Unreachable => "unreachable",
            InstanceState::Paused => "paused",
            InstanceState::Busy => "busy",
            InstanceState::DryRun => "dry-run",
            InstanceState::Error => "error",
        }
    }
}

/// An incident the worker already gave up on (refused, failed, dry run) is not retried
/// until the replica's position or error changes.
pub type IncidentKey = (String, String, u64, String);

pub fn key_of(i: &Incident) -> IncidentKey {
    (
        i.connection.clone(),
        i.relay_log_file.clone(),
        i.relay_log_pos,
        i.message.clone(),
    )
}

/// Multi-source: the connection that needs attention first: an incident not given up
/// on, else a stopped SQL thread, else the first connection.
pub fn pick<'a>(
    all: &'a [ReplicaStatus],
    given_up: &HashSet<IncidentKey>,
) -> Option<&'a ReplicaStatus> {
    all.iter()
        .find(|s| {
            s.incident()
                .is_some_and(|i| !given_up.contains(&key_of(&i)))
        })
        .or_else(|| all.iter().find(|s| !s.sql_running))
        .or_else(|| all.first())
}

/// What to do about one connection's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Replication runs.
    Healthy,
    /// The SQL thread is stopped on something that is not row drift, or by hand.
    LeaveStopped(String),
    /// The circuit breaker is open: park the incident (`first` time only), repair nothing.
    CircuitOpen {
        incident: Incident,
        reason: String,
        first: bool,
    },
    /// Repairs of this instance are paused by an operator.
    Paused(Incident),
    /// Already refused or failed at this position: a human is needed.
    GivenUp(Incident),
    /// Repair it.
    Repair(Incident),
}

/// Decides what to do about `st`. `circuit` is the breaker's reason when it is open.
pub fn decide(
    st: &ReplicaStatus,
    given_up: &HashSet<IncidentKey>,
    circuit: Option<String>,
    paused: bool,
) -> Action {
    let on = if st.connection.is_empty() {
        String::new()
    } else {
        format!("connection '{}': ", st.connection)
    };
    let Some(incident) = st.incident() else {
        return if st.sql_running {
            Action::Healthy
        } else if st.last_sql_errno != 0 {
            Action::LeaveStopped(format!(
                "{on}SQL thread stopped with error {} (not a row-drift error, left alone): {}",
                st.last_sql_errno, st.last_sql_error
            ))
        } else {
            Action::LeaveStopped(format!("{on}SQL thread is not running (stopped by hand?)"))
        };
    };
    let seen = given_up.contains(&key_of(&incident));
    if let Some(reason) = circuit {
        Action::CircuitOpen {
            incident,
            reason,
            first: !seen,
        }
    } else if paused {
        Action::Paused(incident)
    } else if seen {
        Action::GivenUp(incident)
    } else {
        Action::Repair(incident)
    }
}

/// How loud a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// What a repair's outcome means for the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub state: InstanceState,
    pub final_state: FinalState,
    pub lines: Vec<(Level, String)>,
    /// A repair happened: counted, fed to the circuit breaker, and a `--once` run looks
    /// again for the next conflict.
    pub repaired: bool,
    /// Park the transaction in the dead-letter directory with this reason.
    pub park: Option<String>,
    /// Do not try this incident again at this position.
    pub give_up: bool,
    /// A committed repair whose record is incomplete: alert (metric, `/status`), and a
    /// `--once` run ends needing a human.
    pub record_alert: Option<String>,
}

/// The one place an [`Outcome`] becomes a state, a `--once` result and log lines.
pub fn judge(outcome: &Outcome, errno: u32) -> Verdict {
    let mut v = Verdict {
        state: InstanceState::Healthy,
        final_state: FinalState::Healthy,
        lines: Vec::new(),
        repaired: false,
        park: None,
        give_up: false,
        record_alert: None,
    };
    match outcome {
        Outcome::Repaired {
            deleted,
            inserted,
            statements,
            keyless_inserts,
            journals,
            elapsed,
            to_restart,
            rounds,
            still_applying,
            record_error,
        } => {
            v.repaired = true;
            for s in statements {
                v.lines.push((Level::Info, format!("fix applied: {s}")));
            }
            if let Some(e) = record_error {
                let msg = format!(
                    "repair of error {errno} COMMITTED, but its record is incomplete: {e}; the rows above were changed, the SQL thread is restarted; check the journal directory"
                );
                v.lines.push((Level::Error, msg.clone()));
                v.record_alert = Some(msg);
            }
            if *keyless_inserts > 0 {
                v.lines.push((
                    Level::Warn,
                    format!(
                        "{keyless_inserts} rows were inserted into tables without any unique key: the replica may now also hold a stale near-duplicate of them, which no key can find"
                    ),
                ));
            }
            let journals: Vec<String> = journals.iter().map(|p| p.display().to_string()).collect();
            v.lines.push((
                Level::Info,
                format!(
                    "repaired error {errno}: {deleted} rows deleted, {inserted} inserted in {:.3}s (SQL thread restarted after {:.3}s, {rounds} round{}), SQL thread {}{}",
                    elapsed.as_secs_f64(),
                    to_restart.as_secs_f64(),
                    if *rounds == 1 { "" } else { "s" },
                    if *still_applying {
                        "restarted and still applying the transaction"
                    } else {
                        "running past the transaction"
                    },
                    if journals.is_empty() {
                        String::new()
                    } else {
                        format!("; undo journal {}", journals.join(", "))
                    }
                ),
            ));
        }
        Outcome::DryRun { statements } => {
            v.state = InstanceState::DryRun;
            v.final_state = FinalState::NeedsHuman(format!(
                "dry run: {} statements would repair error {errno}",
                statements.len()
            ));
            v.give_up = true;
        }
        Outcome::Busy { reason } => {
            v.state = InstanceState::Busy;
            v.lines
                .push((Level::Warn, format!("error {errno}: {reason}")));
            v.final_state = FinalState::NeedsHuman(reason.clone());
        }
        Outcome::Refused { reason, .. } | Outcome::Failed { reason } => {
            v.state = if matches!(outcome, Outcome::Refused { .. }) {
                InstanceState::Refused
            } else {
                InstanceState::Unrepairable
            };
            v.lines.push((
                Level::Error,
                format!(
                    "{} error {errno}: {reason}; replication left stopped",
                    outcome.label()
                ),
            ));
            v.final_state = FinalState::NeedsHuman(format!("{}: {reason}", outcome.label()));
            v.park = Some(reason.clone());
            v.give_up = true;
        }
    }
    v
}

/// `--source`: where the failing transaction may be read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceMode {
    /// The relay log when this agent can read it, else the primary's binlog.
    #[default]
    Auto,
    Relay,
    Primary,
}

impl SourceMode {
    pub fn parse(s: &str) -> Option<SourceMode> {
        match s {
            "auto" => Some(SourceMode::Auto),
            "relay" => Some(SourceMode::Relay),
            "primary" => Some(SourceMode::Primary),
            _ => None,
        }
    }
}

/// Where one incident's transaction is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    Relay,
    Primary,
}

impl ReadFrom {
    pub fn label(self) -> &'static str {
        match self {
            ReadFrom::Relay => "relay",
            ReadFrom::Primary => "primary",
        }
    }
}

/// Chooses the source for one incident from `--source` and whether the relay log could
/// be opened (`Err` says why not). Only `--source relay` with an unreadable relay log is
/// an error: the agent cannot do its job where it runs.
pub fn choose_source(mode: SourceMode, relay: Result<(), String>) -> Result<ReadFrom, String> {
    match (mode, relay) {
        (SourceMode::Primary, _) => Ok(ReadFrom::Primary),
        (_, Ok(())) => Ok(ReadFrom::Relay),
        (SourceMode::Auto, Err(_)) => Ok(ReadFrom::Primary),
        (SourceMode::Relay, Err(why)) => Err(format!(
            "{why}, or let the agent read the transaction from the primary (--source auto)"
        )),
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;

    #[test]
    fn source_choice_for_every_mode() {
        let unreadable = || Err("cannot read relay log x: permission denied".to_string());
        assert_eq!(choose_source(SourceMode::Auto, Ok(())), Ok(ReadFrom::Relay));
        assert_eq!(
            choose_source(SourceMode::Auto, unreadable()),
            Ok(ReadFrom::Primary)
        );
        assert_eq!(
            choose_source(SourceMode::Relay, Ok(())),
            Ok(ReadFrom::Relay)
        );
        assert!(
            choose_source(SourceMode::Relay, unreadable())
                .unwrap_err()
                .contains("--source auto")
        );
        assert_eq!(
            choose_source(SourceMode::Primary, Ok(())),
            Ok(ReadFrom::Primary)
        );
        assert_eq!(
            choose_source(SourceMode::Primary, unreadable()),
            Ok(ReadFrom::Primary)
        );
        assert_eq!(SourceMode::parse("auto"), Some(SourceMode::Auto));
        assert_eq!(SourceMode::parse("replica"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::RefusalKind;
    use std::time::Duration;

    fn status(sql_running: bool, errno: u32) -> ReplicaStatus {
        ReplicaStatus {
            sql_running,
            last_sql_errno: errno,
            last_sql_error: format!(
                "Could not execute Write_rows_v1 event on table lab.t; Duplicate entry '6' for key 'PRIMARY', Error_code: {errno}; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log primary-bin.000002, end_log_pos 1294"
            ),
            relay_log_file: "relay.000002".into(),
            relay_log_pos: 700,
            ..ReplicaStatus::default()
        }
    }

    #[test]
    fn decide_covers_every_state() {
        let none = HashSet::new();
        assert_eq!(
            decide(&status(true, 0), &none, None, false),
            Action::Healthy
        );
        let by_hand = decide(&status(false, 0), &none, None, false);
        assert!(matches!(by_hand, Action::LeaveStopped(m) if m.contains("stopped by hand")));
        let other = decide(&status(false, 1146), &none, None, false);
        assert!(matches!(other, Action::LeaveStopped(m) if m.contains("not a row-drift error")));
        let st = status(false, 1062);
        assert!(matches!(decide(&st, &none, None, false), Action::Repair(i) if i.errno == 1062));
        assert!(matches!(decide(&st, &none, None, true), Action::Paused(_)));
        let open = decide(&st, &none, Some("3 repairs in 1h".into()), true);
        assert!(
            matches!(open, Action::CircuitOpen { first: true, .. }),
            "the breaker outranks pause: {open:?}"
        );
        let given: HashSet<_> = [key_of(&st.incident().unwrap())].into();
        assert!(matches!(
            decide(&st, &given, None, false),
            Action::GivenUp(_)
        ));
        assert!(matches!(
            decide(&st, &given, Some("x".into()), false),
            Action::CircuitOpen { first: false, .. }
        ));
    }

    #[test]
    fn pick_prefers_a_fresh_incident_then_a_stopped_thread() {
        let mut a = status(true, 0);
        a.connection = "a".into();
        let mut b = status(false, 1062);
        b.connection = "b".into();
        let mut c = status(false, 0);
        c.connection = "c".into();
        let all = vec![a.clone(), c.clone(), b.clone()];
        assert_eq!(pick(&all, &HashSet::new()).unwrap().connection, "b");
        let given: HashSet<_> = [key_of(&b.incident().unwrap())].into();
        assert_eq!(pick(&all, &given).unwrap().connection, "c");
        assert_eq!(pick(&[a], &given).unwrap().connection, "a");
        assert!(pick(&[], &given).is_none());
    }

    #[test]
    fn judge_covers_every_outcome() {
        let repaired = Outcome::Repaired {
            deleted: 1,
            inserted: 2,
            statements: vec!["DELETE …".into()],
            keyless_inserts: 1,
            journals: vec!["/j/1.undo.sql".into()],
            elapsed: Duration::from_millis(12),
            to_restart: Duration::from_millis(10),
            rounds: 1,
            still_applying: false,
            record_error: None,
        };
        let v = judge(&repaired, 1062);
        assert_eq!(
            (v.state, v.final_state.clone(), v.repaired, v.give_up),
            (InstanceState::Healthy, FinalState::Healthy, true, false)
        );
        assert!(v.park.is_none() && v.record_alert.is_none());
        assert!(
            v.lines
                .iter()
                .any(|(l, m)| *l == Level::Warn && m.contains("stale near-duplicate"))
        );
        assert!(
            v.lines
                .last()
                .unwrap()
                .1
                .contains("1 rows deleted, 2 inserted")
        );

        let incomplete = match repaired {
            Outcome::Repaired { .. } => Outcome::Repaired {
                deleted: 1,
                inserted: 0,
                statements: vec![],
                keyless_inserts: 0,
                journals: vec![],
                elapsed: Duration::ZERO,
                to_restart: Duration::ZERO,
                rounds: 2,
                still_applying: true,
                record_error: Some("disk full".into()),
            },
            o => o,
        };
        let v = judge(&incomplete, 1032);
        assert!(v.repaired);
        assert!(
            v.record_alert
                .as_deref()
                .is_some_and(|m| m.contains("COMMITTED"))
        );
        assert!(v.lines.iter().any(|(l, _)| *l == Level::Error));

        let v = judge(
            &Outcome::DryRun {
                statements: vec!["x".into(); 3],
            },
            1062,
        );
        assert_eq!(v.state, InstanceState::DryRun);
        assert!(v.give_up && v.park.is_none() && !v.repaired);
        assert!(matches!(v.final_state, FinalState::NeedsHuman(m) if m.contains("3 statements")));

        let v = judge(
            &Outcome::Busy {
                reason: "held".into(),
            },
            1062,
        );
        assert_eq!(v.state, InstanceState::Busy);
        assert!(!v.give_up && v.park.is_none());

        let v = judge(
            &Outcome::Refused {
                kind: RefusalKind::Trigger,
                reason: "trigger `d`".into(),
            },
            1062,
        );
        assert_eq!(v.state, InstanceState::Refused);
        assert_eq!(v.park.as_deref(), Some("trigger `d`"));
        assert!(v.give_up);
        assert!(matches!(v.final_state, FinalState::NeedsHuman(m) if m.starts_with("refused: ")));

        let v = judge(
            &Outcome::Failed {
                reason: "unrepairable".into(),
            },
            1032,
        );
        assert_eq!(v.state, InstanceState::Unrepairable);
        assert!(v.give_up && v.park.is_some());
    }
}
