//! Wall-clock time as text, in one place: RFC 3339 UTC for logs and JSON records, a
//! sortable stamp for file names, and the calendar arithmetic both (and SQL TIMESTAMP
//! literals) need. Hand-rolled: the `time` crate would add six crates and ~6 s to a
//! clean build for three formats.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch; a clock set before 1970 reads as the epoch, not a panic.
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Now, as RFC 3339 UTC with milliseconds: `2024-05-01T12:00:00.123Z`.
pub fn rfc3339_now() -> String {
    rfc3339(since_epoch())
}

/// `t` since the epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: Duration) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    format!("{}.{:03}Z", utc_date_time(secs, 'T'), t.subsec_millis())
}

/// Now as `<unix seconds>.<microseconds>` (`1714564800.123456`): file names that sort
/// by time, carry no characters a shell or file system minds, and rarely collide.
pub fn file_stamp() -> String {
    let t = since_epoch();
    format!("{}.{:06}", t.as_secs(), t.subsec_micros())
}

/// Microseconds since the epoch: makes an identifier unique per repair.
pub fn unix_micros() -> u128 {
    since_epoch().as_micros()
}

/// `YYYY-MM-DD<sep>HH:MM:SS` for `secs` seconds since the epoch, in UTC (`sep` is `T`
/// for RFC 3339, a space for SQL).
pub fn utc_date_time(secs: i64, sep: char) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}:{:02}",
        t / 3600,
        (t / 60) % 60,
        t % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The pause before the `attempt`th re-read of a state that is about to change (the
/// SQL thread moving past a transaction, catching up): 1, 2, 4, 8, 16, then 20 ms. A
/// small repair is over in a few milliseconds; a fixed 20 ms poll was most of a
/// `--once` run.
pub fn poll_pause(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis((1u64 << attempt.min(5)).min(20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_pauses_grow_to_20_ms() {
        let ms: Vec<u128> = (0..8).map(|a| poll_pause(a).as_millis()).collect();
        assert_eq!(ms, vec![1, 2, 4, 8, 16, 20, 20, 20]);
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(Duration::ZERO), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day of a century leap year) 23:59:59.999.
        assert_eq!(
            rfc3339(Duration::from_millis(951_868_799_999)),
            "2000-02-29T23:59:59.999Z"
        );
        // TIMESTAMP's last second.
        assert_eq!(
            rfc3339(Duration::from_secs(2_147_483_647)),
            "2038-01-19T03:14:07.000Z"
        );
    }

    #[test]
    fn sql_form_and_days_before_the_epoch() {
        assert_eq!(utc_date_time(86_399, ' '), "1970-01-01 23:59:59");
        assert_eq!(utc_date_time(-1, ' '), "1969-12-31 23:59:59");
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
    }

    #[test]
    fn now_is_well_formed() {
        let s = rfc3339_now();
        assert_eq!(s.len(), 24, "{s}");
        assert!(
            s.ends_with('Z') && s.as_bytes().get(10) == Some(&b'T'),
            "{s}"
        );
        let stamp = file_stamp();
        let (secs, micros) = stamp.split_once('.').expect("a dot");
        assert!(secs.parse::<u64>().is_ok() && micros.len() == 6, "{stamp}");
    }
}
