//! Safety limits an operator puts around the agent: which tables it may touch
//! (`--tables`, `--ignore-tables`) and how often it may repair one instance before it
//! stops and asks for a human (`--max-repairs N --per 1h`): repeated drift means
//! something upstream is wrong, and repairing it forever hides that.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// `db.tbl` or `db.*` patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableFilter {
    only: Vec<(String, String)>,
    ignore: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("table pattern {0:?} is not of the form db.table or db.*")]
pub struct PatternError(pub String);

fn parse(p: &str) -> Result<(String, String), PatternError> {
    match p.split_once('.') {
        Some((db, t)) if !db.is_empty() && !t.is_empty() && !t.contains('.') => {
            Ok((db.to_string(), t.to_string()))
        }
        _ => Err(PatternError(p.to_string())),
    }
}

impl TableFilter {
    pub fn new(only: &[String], ignore: &[String]) -> Result<Self, PatternError> {
        Ok(TableFilter {
            only: only.iter().map(|p| parse(p)).collect::<Result<_, _>>()?,
            ignore: ignore.iter().map(|p| parse(p)).collect::<Result<_, _>>()?,
        })
    }

    fn matches(list: &[(String, String)], db: &str, table: &str) -> bool {
        list.iter()
            .any(|(d, t)| d == db && (t == "*" || t == table))
    }

    /// Whether the agent may change rows of `db.table`.
    pub fn allows(&self, db: &str, table: &str) -> bool {
        (self.only.is_empty() || Self::matches(&self.only, db, table))
            && !Self::matches(&self.ignore, db, table)
    }
}

/// At most `max` repairs per `per` on one instance.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    max: u32,
    per: Duration,
    recent: VecDeque<Instant>,
}

impl CircuitBreaker {
    pub fn new(max: u32, per: Duration) -> Self {
        CircuitBreaker {
            max,
            per,
            recent: VecDeque::new(),
        }
    }

    /// `Some(reason)` while the circuit is open.
    pub fn open(&mut self, now: Instant) -> Option<String> {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.per)
        {
            self.recent.pop_front();
        }
        (self.recent.len() >= self.max as usize).then(|| {
            format!(
                "circuit open: {} repairs in the last {}s (--max-repairs {} --per {}s); repeated drift means something upstream is wrong, so repairs stop here",
                self.recent.len(),
                self.per.as_secs(),
                self.max,
                self.per.as_secs()
            )
        })
    }

    pub fn record(&mut self, now: Instant) {
        self.recent.push_back(now);
    }
}

/// `90`, `90s`, `30m`, `1h`, `2d` → a duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mult).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let f =
            TableFilter::new(&["shop.*".into(), "lab.t".into()], &["shop.audit".into()]).unwrap();
        assert!(f.allows("shop", "orders"));
        assert!(f.allows("lab", "t"));
        assert!(!f.allows("lab", "u"));
        assert!(!f.allows("shop", "audit"));
        assert!(TableFilter::new(&["nodot".into()], &[]).is_err());
    }

    #[test]
    fn breaker_trips_at_n_and_closes_after_the_window() {
        let mut b = CircuitBreaker::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(b.open(t0).is_none());
        b.record(t0);
        b.record(t0);
        assert!(b.open(t0).is_some());
        assert!(b.open(t0 + Duration::from_secs(61)).is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("18446744073709551615d"), None, "no overflow");
    }
}
