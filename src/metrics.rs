//! What the agent exposes while it runs: Prometheus metrics on `/metrics` (text format
//! 0.0.4, names prefixed `repl_repair_` in mysqld_exporter's style), each instance's
//! state and last incident on `/status`, and `POST /instances/<name>/pause|resume`.
//! Served by tiny_http on one thread (no async runtime), loopback unless told otherwise.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Labels = Vec<(String, String)>;

fn inst(name: &str) -> Labels {
    vec![("instance".into(), name.into())]
}

/// The last incident of an instance, for `/status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IncidentSummary {
    pub errno: u32,
    pub connection: String,
    pub relay: String,
    pub primary: String,
    pub outcome: String,
    pub detail: String,
    /// Where the transaction was read from: `relay` or `primary` (`--source`).
    pub source: String,
    pub deleted: u64,
    pub inserted: u64,
    pub at: String,
}

#[derive(Debug, Clone, Default)]
struct InstanceStatus {
    state: String,
    last_incident: Option<IncidentSummary>,
    repairs: u64,
    dead_letters: u64,
    /// The last committed repair whose journal or audit could not be completed.
    record_error: Option<String>,
}

/// Shared between the workers and the HTTP thread.
pub struct Telemetry {
    registry: Registry,
    up: Family<Labels, Gauge>,
    io_running: Family<Labels, Gauge>,
    sql_running: Family<Labels, Gauge>,
    seconds_behind: Family<Labels, Gauge>,
    last_errno: Family<Labels, Gauge>,
    repairs: Family<Labels, Counter>,
    rows_fixed: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    dead_letters: Family<Labels, Counter>,
    record_incomplete: Family<Labels, Counter>,
    refusals: Family<Labels, Counter>,
    circuit_open: Family<Labels, Gauge>,
    last_repair: Family<Labels, Gauge<f64, AtomicU64>>,
    status: Mutex<BTreeMap<String, InstanceStatus>>,
    paused: Mutex<HashSet<String>>,
}

fn duration_histogram() -> Histogram {
    Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry")
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("repl_repair");
        let t = Telemetry {
            up: Family::default(),
            io_running: Family::default(),
            sql_running: Family::default(),
            seconds_behind: Family::default(),
            last_errno: Family::default(),
            repairs: Family::default(),
            rows_fixed: Family::default(),
            duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            dead_letters: Family::default(),
            record_incomplete: Family::default(),
            refusals: Family::default(),
            circuit_open: Family::default(),
            last_repair: Family::default(),
            status: Mutex::new(BTreeMap::new()),
            paused: Mutex::new(HashSet::new()),
            registry: Registry::default(),
        };
        registry.register(
            "up",
            "Whether the instance answers (1) or not (0)",
            t.up.clone(),
        );
        registry.register(
            "replica_io_running",
            "IO thread running",
            t.io_running.clone(),
        );
        registry.register(
            "replica_sql_running",
            "SQL thread running",
            t.sql_running.clone(),
        );
        registry.register(
            "replica_seconds_behind",
            "Seconds_Behind_Master (-1 when NULL)",
            t.seconds_behind.clone(),
        );
        registry.register(
            "replica_last_sql_errno",
            "Last_SQL_Errno",
            t.last_errno.clone(),
        );
        registry.register("repairs", "Repairs by errno and outcome", t.repairs.clone());
        registry.register(
            "rows_fixed",
            "Replica rows changed by op",
            t.rows_fixed.clone(),
        );
        registry.register(
            "repair_duration_seconds",
            "From incident to SQL thread past the transaction",
            t.duration.clone(),
        );
        registry.register(
            "dead_letters",
            "Transactions parked in the dead-letter directory",
            t.dead_letters.clone(),
        );
        registry.register(
            "circuit_open",
            "Circuit breaker open (1)",
            t.circuit_open.clone(),
        );
        registry.register(
            "last_repair_timestamp_seconds",
            "Unix time of the last successful repair",
            t.last_repair.clone(),
        );
        let build: Family<Labels, Gauge> = Family::default();
        build
            .get_or_create(&vec![("version".into(), env!("CARGO_PKG_VERSION").into())])
            .set(1);
        registry.register("build_info", "The agent's version", build);
        registry.register(
            "refusals",
            "Transactions the agent refused to repair, by kind of reason",
            t.refusals.clone(),
        );
        registry.register(
            "record_incomplete",
            "Repairs that committed but whose undo journal or audit trail could not be completed",
            t.record_incomplete.clone(),
        );
        Telemetry { registry, ..t }
    }

    pub fn observe(&self, name: &str, st: Option<&crate::status::ReplicaStatus>) {
        let l = inst(name);
        self.up.get_or_create(&l).set(i64::from(st.is_some()));
        if let Some(st) = st {
            self.io_running
                .get_or_create(&l)
                .set(i64::from(st.io_running == "Yes"));
            self.sql_running
                .get_or_create(&l)
                .set(i64::from(st.sql_running));
            self.seconds_behind
                .get_or_create(&l)
                .set(st.seconds_behind.map_or(-1, |s| s as i64));
            self.last_errno
                .get_or_create(&l)
                .set(i64::from(st.last_sql_errno));
        }
    }

    pub fn set_state(&self, name: &str, state: &str) {
        if let Ok(mut s) = self.status.lock() {
            s.entry(name.to_string()).or_default().state = state.to_string();
        }
    }

    pub fn set_circuit(&self, name: &str, open: bool) {
        self.circuit_open
            .get_or_create(&inst(name))
            .set(i64::from(open));
    }

    /// Records one repair attempt's outcome.
    pub fn repair(&self, name: &str, summary: IncidentSummary, took: Duration) {
        let mut labels = inst(name);
        labels.push(("errno".into(), summary.errno.to_string()));
        labels.push(("outcome".into(), summary.outcome.clone()));
        self.repairs.get_or_create(&labels).inc();
        if summary.outcome == "repaired" {
            for (op, n) in [("delete", summary.deleted), ("insert", summary.inserted)] {
                let mut l = inst(name);
                l.push(("op".into(), op.into()));
                self.rows_fixed.get_or_create(&l).inc_by(n);
            }
            self.duration
                .get_or_create(&inst(name))
                .observe(took.as_secs_f64());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            self.last_repair
                .get_or_create(&inst(name))
                .set(now.as_secs_f64());
        }
        if let Ok(mut s) = self.status.lock() {
            let e = s.entry(name.to_string()).or_default();
            if summary.outcome == "repaired" {
                e.repairs += 1;
            }
            e.last_incident = Some(summary);
        }
    }

    /// A refusal, counted by its kind (`RefusalKind::label`).
    pub fn refused(&self, name: &str, kind: &str) {
        let mut l = inst(name);
        l.push(("reason".into(), kind.into()));
        self.refusals.get_or_create(&l).inc();
    }

    /// A committed repair whose journal or audit could not be completed: alert, and
    /// show it in `/status` until the next repair.
    pub fn record_incomplete(&self, name: &str, what: &str) {
        self.record_incomplete.get_or_create(&inst(name)).inc();
        if let Ok(mut s) = self.status.lock() {
            s.entry(name.to_string()).or_default().record_error = Some(what.to_string());
        }
    }

    /// Records an incident the agent did not attempt (the circuit is open), so `/status`
    /// says which transaction is waiting; no repair is counted.
    pub fn incident(&self, name: &str, summary: IncidentSummary) {
        if let Ok(mut s) = self.status.lock() {
            s.entry(name.to_string()).or_default().last_incident = Some(summary);
        }
    }

    pub fn dead_letter(&self, name: &str) {
        self.dead_letters.get_or_create(&inst(name)).inc();
        if let Ok(mut s) = self.status.lock() {
            s.entry(name.to_string()).or_default().dead_letters += 1;
        }
    }

    pub fn is_paused(&self, name: &str) -> bool {
        self.paused
            .lock()
            .map(|p| p.contains(name))
            .unwrap_or(false)
    }

    fn set_paused(&self, name: &str, paused: bool) -> bool {
        let known = self
            .status
            .lock()
            .map(|s| s.contains_key(name))
            .unwrap_or(false);
        if known && let Ok(mut p) = self.paused.lock() {
            if paused {
                p.insert(name.to_string());
            } else {
                p.remove(name);
            }
        }
        known
    }

    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }

    pub fn status_json(&self) -> String {
        let s = match self.status.lock() {
            Ok(s) => s.clone(),
            Err(_) => BTreeMap::new(),
        };
        let instances: Vec<StatusInstance<'_>> = s
            .iter()
            .map(|(name, st)| StatusInstance {
                name,
                state: if self.is_paused(name) {
                    "paused"
                } else {
                    st.state.as_str()
                },
                repairs: st.repairs,
                dead_letters: st.dead_letters,
                record_error: st.record_error.as_deref(),
                last_incident: st.last_incident.as_ref(),
            })
            .collect();
        serde_json::to_string(&StatusDoc { instances }).unwrap_or_default()
    }
}

/// The `/status` document.
#[derive(serde::Serialize)]
struct StatusDoc<'a> {
    instances: Vec<StatusInstance<'a>>,
}

#[derive(serde::Serialize)]
struct StatusInstance<'a> {
    name: &'a str,
    state: &'a str,
    repairs: u64,
    dead_letters: u64,
    record_error: Option<&'a str>,
    last_incident: Option<&'a IncidentSummary>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {message}")]
pub struct ServeError {
    pub addr: String,
    pub message: String,
}

/// Whether every address `addr` resolves to is loopback; `None` when it does not
/// resolve. The endpoint has no authentication, so anything else deserves a warning.
pub fn is_loopback(addr: &str) -> Option<bool> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<_> = addr.to_socket_addrs().ok()?.collect();
    (!addrs.is_empty()).then(|| addrs.iter().all(|a| a.ip().is_loopback()))
}

/// `%XX` escapes of a URL path segment decoded (instance names hold `/`, spaces, …);
/// `None` for a broken escape or a name that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Serves `/metrics`, `/status` and pause/resume until `shutdown` is set.
pub fn serve(
    addr: &str,
    telemetry: Arc<Telemetry>,
    shutdown: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, ServeError> {
    let server = tiny_http::Server::http(addr).map_err(|e| ServeError {
        addr: addr.to_string(),
        message: e.to_string(),
    })?;
    Ok(std::thread::spawn(move || {
        while !shutdown.load(Ordering::Relaxed) {
            let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(200)) else {
                continue;
            };
            let (code, ctype, body) = route(&telemetry, req.method(), req.url());
            let mut resp = tiny_http::Response::from_string(body).with_status_code(code);
            if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", ctype) {
                resp = resp.with_header(h);
            }
            let _ = req.respond(resp);
        }
    }))
}

fn route(t: &Telemetry, method: &tiny_http::Method, url: &str) -> (u16, &'static str, String) {
    use tiny_http::Method::{Get, Post};
    let text = "text/plain; charset=utf-8";
    // Scrapers add query strings (`/metrics?name[]=…`); the path alone routes.
    let url = url.split_once('?').map_or(url, |(path, _)| path);
    match (method, url) {
        (Get, "/metrics") => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            t.metrics_text(),
        ),
        (Get, "/status") => (200, "application/json", t.status_json()),
        (Post, u) if u.starts_with("/instances/") => {
            let rest = &u["/instances/".len()..];
            let (raw, action) = rest.rsplit_once('/').unwrap_or((rest, ""));
            let Some(name) = percent_decode(raw) else {
                return (
                    400,
                    text,
                    format!("bad %-escape in instance name {raw:?}\n"),
                );
            };
            let name = name.as_str();
            let paused = match action {
                "pause" => true,
                "resume" => false,
                _ => return (404, text, "use /instances/<name>/pause or /resume\n".into()),
            };
            if t.set_paused(name, paused) {
                (200, text, format!("{name}: {action}d\n"))
            } else {
                (404, text, format!("no instance named {name:?}\n"))
            }
        }
        _ => (
            404,
            text,
            "try /metrics, /status, POST /instances/<name>/pause|resume\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_kind() {
        let t = Telemetry::new();
        t.refused("db1", crate::plan::RefusalKind::Trigger.label());
        t.refused("db1", crate::plan::RefusalKind::Trigger.label());
        t.refused("db1", crate::plan::RefusalKind::NotDrift.label());
        let m = t.metrics_text();
        assert!(
            m.contains("repl_repair_refusals_total{instance=\"db1\",reason=\"trigger\"} 2"),
            "{m}"
        );
        assert!(
            m.contains("repl_repair_refusals_total{instance=\"db1\",reason=\"not-drift\"} 1"),
            "{m}"
        );
    }

    #[test]
    fn an_incomplete_record_is_counted_and_shown_in_status() {
        let t = Telemetry::new();
        t.set_state("db1", "healthy");
        t.record_incomplete("db1", "audit: No space left on device");
        let m = t.metrics_text();
        assert!(
            m.contains("repl_repair_record_incomplete_total{instance=\"db1\"} 1"),
            "{m}"
        );
        let s = t.status_json();
        assert!(
            s.contains("\"record_error\":\"audit: No space left on device\""),
            "{s}"
        );
    }

    #[test]
    fn percent_escapes_decode_and_broken_ones_are_refused() {
        assert_eq!(percent_decode("db%201").as_deref(), Some("db 1"));
        assert_eq!(percent_decode("a%2Fb%2fc").as_deref(), Some("a/b/c"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("%C3%BC").as_deref(), Some("ü"));
        for bad in ["%", "%2", "%zz", "%+1", "%FF"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn query_strings_and_escaped_names_route() {
        let t = Telemetry::new();
        t.set_state("db 1", "healthy");
        let (code, _, body) = route(&t, &tiny_http::Method::Get, "/status?pretty=1");
        assert_eq!(code, 200);
        assert!(body.contains("\"db 1\""), "{body}");
        assert_eq!(route(&t, &tiny_http::Method::Get, "/metrics?x").0, 200);
        let post = |u| route(&t, &tiny_http::Method::Post, u).0;
        assert_eq!(post("/instances/db%201/pause"), 200);
        assert!(t.is_paused("db 1"));
        assert_eq!(post("/instances/db%201/resume?now"), 200);
        assert!(!t.is_paused("db 1"));
        assert_eq!(post("/instances/db%2/pause"), 400);
        assert_eq!(post("/instances/nobody/pause"), 404);
    }

    #[test]
    fn loopback_or_not() {
        assert_eq!(is_loopback("127.0.0.1:9104"), Some(true));
        assert_eq!(is_loopback("[::1]:9104"), Some(true));
        assert_eq!(is_loopback("0.0.0.0:9104"), Some(false));
        assert_eq!(is_loopback("192.0.2.1:9104"), Some(false));
    }
}
