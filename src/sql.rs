//! The only place SQL text is built: identifier quoting and literal rendering, for values
//! decoded from the binlog and for values read back from the replica (the undo journal).
//!
//! Literals, not bound parameters, because the statements are also printed by `--dry-run`
//! and written to the journal, which must be runnable by the `mysql` client as they are.
//! Strings go out as hex with a charset introducer, so no byte ever needs escaping.

use crate::binlog::Value;
use crate::schema::{ColumnInfo, TableInfo};

/// Every statement the tool runs carries this, so a DBA can spot it in the processlist.
pub const TAG: &str = "/* repl-repair */";

/// The session a fix runs in, and an undo journal replays in: out of the binlog (set
/// before the transaction: it cannot change inside one), TIMESTAMP literals in UTC, an
/// explicit 0 stays 0 in an AUTO_INCREMENT column, and no foreign-key cascade may change
/// a row that was not journalled.
pub const SESSION_SETTINGS: [&str; 4] = [
    "SET SESSION sql_log_bin = 0",
    "SET SESSION time_zone = '+00:00'",
    "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
    "SET SESSION foreign_key_checks = 0",
];

/// Backtick-quotes an identifier, doubling any backtick inside it.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A quoted string literal for names (connection, lock): quotes and backslashes escaped.
pub fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

pub fn table(t: &TableInfo) -> String {
    format!("{}.{}", ident(&t.schema), ident(&t.name))
}

/// A string value longer than this (in bytes) is not written into a statement as a hex
/// literal (twice its size, so a 12 MB BLOB would be a 24 MB statement, past the default
/// max_allowed_packet of 16 MiB, and a journal the stock client cannot replay): it goes
/// into a session variable in chunks of [`CHUNK`] bytes, and the statement names the
/// variable. Its whole size stays bounded by max_allowed_packet (CONCAT's limit), as the
/// value's own is on the primary's client.
pub const BIG_VALUE: usize = 256 << 10;
/// Bytes per chunk: 1 MiB of hex per statement.
pub const CHUNK: usize = 512 << 10;

/// `SET @var = X'…'`, then `SET @var = CONCAT(@var, X'…')` per further chunk.
pub fn set_variable_chunks(var: &str, bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::with_capacity(bytes.len() / CHUNK + 1);
    let mut chunks = bytes.chunks(CHUNK);
    out.push(format!(
        "SET @{var} = {} {TAG}",
        hex(chunks.next().unwrap_or_default())
    ));
    for c in chunks {
        out.push(format!("SET @{var} = CONCAT(@{var}, {}) {TAG}", hex(c)));
    }
    out
}

/// The value of session variable `var` (holding the stored bytes) for column `col`: a
/// text column's bytes are relabelled with its charset, not converted.
pub fn variable_value(var: &str, col: &ColumnInfo) -> String {
    match &col.charset {
        Some(cs) if cs != "binary" => format!("CONVERT(@{var} USING {cs})"),
        _ => format!("@{var}"),
    }
}

/// `repl-repair check`'s probe of the sql_log_bin privilege, and its undoing.
pub const SQL_LOG_BIN_OFF: &str = "SET SESSION sql_log_bin = 0 /* repl-repair check */";
pub const SQL_LOG_BIN_ON: &str = "SET SESSION sql_log_bin = 1 /* repl-repair check */";

/// The session variables a repair changes, as they are before it.
pub const SESSION_READ: &str = "SELECT /* repl-repair */ @@SESSION.sql_log_bin, @@SESSION.time_zone, @@SESSION.sql_mode, @@SESSION.foreign_key_checks, @@SESSION.character_set_results";

/// Puts back what [`SESSION_READ`] read.
pub fn session_restore(log_bin: u8, tz: &str, mode: &str, fk: u8, results: Option<&str>) -> String {
    format!(
        "SET SESSION sql_log_bin = {log_bin}, time_zone = {}, sql_mode = {}, foreign_key_checks = {fk}, character_set_results = {} {TAG}",
        string_literal(tz),
        string_literal(mode),
        results.map_or("NULL".into(), string_literal),
    )
}

/// The named lock one repairer of a replica connection holds, across hosts.
pub fn repair_lock_name(connection: &str) -> String {
    string_literal(&format!("repl-repair:{connection}"))
}

pub fn get_lock(lock: &str) -> String {
    format!("SELECT {TAG} GET_LOCK({lock}, 0)")
}

pub fn release_lock(lock: &str) -> String {
    format!("DO {TAG} RELEASE_LOCK({lock})")
}

/// The first trigger on any of `(schema, table, event)`.
pub fn triggers_for(wanted: &[(String, String, &str)]) -> String {
    let tuples: Vec<String> = wanted
        .iter()
        .map(|(s, t, e)| {
            format!(
                "({}, {}, {})",
                string_literal(s),
                string_literal(t),
                string_literal(e)
            )
        })
        .collect();
    format!(
        "SELECT {TAG} EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE, EVENT_MANIPULATION, TRIGGER_NAME \
         FROM information_schema.TRIGGERS \
         WHERE (EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE, EVENT_MANIPULATION) IN ({}) LIMIT 1",
        tuples.join(", ")
    )
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("column `{column}`: {what} values cannot be rendered yet")]
    Unsupported { column: String, what: &'static str },
}

/// `X'…'`, by table lookup: megabyte values go through here (a `write!` per byte made
/// a 12 MB row take seconds).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(bytes.len() * 2 + 3);
    out.extend_from_slice(b"X'");
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
    out.push(b'\'');
    // Only ASCII was pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// A string literal for `col`: `_charset X'…'` for text, `X'…'` for binary (BINARY(n)
/// padded with 0x00 to its declared length, as the server stores it).
fn bytes_literal(bytes: &[u8], col: &ColumnInfo) -> String {
    match &col.charset {
        Some(cs) if cs != "binary" => format!("_{cs} {}", hex(bytes)),
        _ => match col.binary_len {
            Some(n) if bytes.len() < n => {
                let mut padded = bytes.to_vec();
                padded.resize(n, 0);
                hex(&padded)
            }
            _ => hex(bytes),
        },
    }
}

fn frac(micros: u32, fsp: u8) -> String {
    if fsp == 0 && micros == 0 {
        String::new()
    } else {
        format!(".{micros:06}")
    }
}

/// Renders a value decoded from a row image as a literal for column `col`. TIMESTAMPs are
/// rendered in UTC: the applying session runs with `time_zone = '+00:00'`.
pub fn literal(v: &Value, col: &ColumnInfo) -> Result<String, RenderError> {
    Ok(match v {
        Value::Null => "NULL".into(),
        Value::Int { .. } => {
            if col.unsigned {
                v.as_u64().unwrap_or(0).to_string()
            } else {
                v.as_i64().unwrap_or(0).to_string()
            }
        }
        // The exact double of the stored single-precision value: `f <=> 1e-1` is never
        // true for a FLOAT holding 0.1f (the column is read as double 0.10000000149…),
        // while this literal compares equal and inserts back as the same float.
        Value::Float(f) => format!("{:e}", f64::from(*f)),
        Value::Double(f) => format!("{f:e}"),
        Value::Decimal(s) => s.clone(),
        Value::Bytes(b) => bytes_literal(b, col),
        Value::Geometry(b) => hex(b),
        Value::JsonDiff(_) => {
            return Err(RenderError::Unsupported {
                column: col.name.clone(),
                what: "partial JSON update (the after-image holds only diffs)",
            });
        }
        // MySQL parses JSON text assigned to a JSON column.
        Value::Json(b) => match crate::binlog::json::to_text(b) {
            Ok(text) => format!("_utf8mb4 {}", hex(text.as_bytes())),
            Err(_) => {
                return Err(RenderError::Unsupported {
                    column: col.name.clone(),
                    what: "undecodable binary JSON",
                });
            }
        },
        Value::Date { year, month, day } => format!("'{year:04}-{month:02}-{day:02}'"),
        Value::Time {
            negative,
            hours,
            minutes,
            seconds,
            micros,
            fsp,
        } => format!(
            "'{}{hours:02}:{minutes:02}:{seconds:02}{}'",
            if *negative { "-" } else { "" },
            frac(*micros, *fsp)
        ),
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            fsp,
        } => format!(
            "'{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}{}'",
            frac(*micros, *fsp)
        ),
        Value::Timestamp {
            seconds,
            micros,
            fsp,
        } => {
            if *seconds == 0 && *micros == 0 {
                "'0000-00-00 00:00:00'".into()
            } else {
                format!(
                    "'{}{}'",
                    crate::clock::utc_date_time(i64::from(*seconds), ' '),
                    frac(*micros, *fsp)
                )
            }
        }
        Value::Year(y) => y.to_string(),
        Value::Enum(i) => i.to_string(),
        Value::Set(m) => m.to_string(),
        Value::Bit(b) => b.to_string(),
    })
}

/// Renders a value read back from the replica over the binary protocol (the undo journal).
pub fn mysql_literal(v: &mysql::Value, col: &ColumnInfo) -> String {
    use mysql::Value as M;
    match v {
        M::NULL => "NULL".into(),
        M::Int(i) => i.to_string(),
        M::UInt(u) => u.to_string(),
        M::Float(f) => format!("{f:e}"),
        M::Double(f) => format!("{f:e}"),
        M::Bytes(b) => match col.data_type.as_str() {
            // Exact decimal text, not a string: keeps the journal readable.
            "decimal" | "numeric" => String::from_utf8_lossy(b).into_owned(),
            _ => bytes_literal(b, col),
        },
        M::Date(y, mo, d, h, mi, s, us) => {
            if col.data_type == "date" {
                format!("'{y:04}-{mo:02}-{d:02}'")
            } else {
                format!("'{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}'")
            }
        }
        M::Time(neg, days, h, mi, s, us) => format!(
            "'{}{:02}:{mi:02}:{s:02}.{us:06}'",
            if *neg { "-" } else { "" },
            u64::from(*days) * 24 + u64::from(*h)
        ),
    }
}

/// `col = lit`, or for a prefix key part `LEFT(col, n) = LEFT(lit, n)`, or the NULL-safe
/// `col <=> lit` for whole-row comparison.
///
/// Key parts compare under the column's collation, as the unique index does. The
/// whole-row form (tables without a unique key) compares text byte for byte: the SQL
/// thread matches such rows by their stored bytes, so `'a'` must not find `'A'` or `'a '`.
pub fn condition(col: &ColumnInfo, lit: &str, prefix: Option<u32>, null_safe: bool) -> String {
    let c = ident(&col.name);
    match prefix {
        Some(n) => format!("LEFT({c}, {n}) = LEFT({lit}, {n})"),
        None if null_safe && col.charset.as_deref().is_some_and(|cs| cs != "binary") => {
            format!("CAST({c} AS BINARY) <=> CAST({lit} AS BINARY)")
        }
        None if null_safe => format!("{c} <=> {lit}"),
        None => format!("{c} = {lit}"),
    }
}

/// `a AND b AND …`: every condition holds.
pub fn all_of<S: AsRef<str>>(conds: &[S]) -> String {
    conds
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `(a) OR (b) OR …`: any condition holds.
pub fn any_of<S: AsRef<str>>(conds: &[S]) -> String {
    conds
        .iter()
        .map(|c| format!("({})", c.as_ref()))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// `cond AND NOT (except)`: the rows matching `cond`, bar the one `except` names.
pub fn but_not(cond: &str, except: &str) -> String {
    format!("{cond} AND NOT ({except})")
}

/// `col IN (lit, …)`.
pub fn in_list<S: AsRef<str>>(col: &ColumnInfo, lits: &[S]) -> String {
    let lits: Vec<&str> = lits.iter().map(AsRef::as_ref).collect();
    format!("{} IN ({})", ident(&col.name), lits.join(", "))
}

/// How many rows of `t` match `cond`.
pub fn count_where(t: &TableInfo, cond: &str) -> String {
    format!("SELECT {TAG} COUNT(*) FROM {} WHERE {cond}", table(t))
}

/// A temporal literal `'…'` from text of digits and `-: .` only (anything else → `None`).
pub fn temporal_literal(text: &str) -> Option<String> {
    text.bytes()
        .all(|b| b.is_ascii_digit() || b"-: .".contains(&b))
        .then(|| format!("'{text}'"))
}

/// Text as a UTF-8 string literal (hex, so no byte needs escaping).
pub fn utf8_literal(text: &str) -> String {
    format!("_utf8mb4 {}", hex(text.as_bytes()))
}

/// How many triggers a table has (parameters: schema, table).
pub const TRIGGER_COUNT: &str = "SELECT /* repl-repair */ COUNT(*) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?";

pub fn delete(t: &TableInfo, condition: &str) -> String {
    format!("DELETE {TAG} FROM {} WHERE {condition}", table(t))
}

/// Reads the rows a fix is about to change, locking them, so the journal holds exactly
/// what the DELETE removes. Generated columns are left out: they cannot be inserted back.
pub fn select_for_update(t: &TableInfo, condition: &str) -> String {
    let cols: Vec<String> = t
        .columns
        .iter()
        .filter(|c| !c.generated)
        .map(|c| ident(&c.name))
        .collect();
    format!(
        "SELECT {TAG} {} FROM {} WHERE {condition} FOR UPDATE",
        cols.join(", "),
        table(t)
    )
}

/// Multi-row INSERT IGNORE; every row has the same columns.
pub fn insert_ignore_rows<'a>(
    t: &TableInfo,
    columns: &[String],
    rows: impl Iterator<Item = &'a [String]>,
) -> String {
    let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    let values: Vec<String> = rows.map(|r| format!("({})", r.join(", "))).collect();
    format!(
        "INSERT IGNORE {TAG} INTO {} ({}) VALUES {}",
        table(t),
        cols.join(", "),
        values.join(", ")
    )
}

/// One row telling, per condition, how many rows match it.
pub fn count_each<'a>(t: &TableInfo, conditions: impl Iterator<Item = &'a str>) -> String {
    let tbl = table(t);
    let probes: Vec<String> = conditions
        .map(|c| format!("(SELECT COUNT(*) FROM {tbl} WHERE {c})"))
        .collect();
    format!("SELECT {TAG} {}", probes.join(", "))
}

/// Plain INSERT, used by the undo journal: a restore that collides must say so.
pub fn insert(verb: &str, t: &TableInfo, columns: &[String], values: &[String]) -> String {
    let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    format!(
        "{verb} {TAG} INTO {} ({}) VALUES ({})",
        table(t),
        cols.join(", "),
        values.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str, charset: Option<&str>) -> ColumnInfo {
        ColumnInfo {
            name: "c`x".into(),
            data_type: data_type.into(),
            unsigned: false,
            nullable: true,
            generated: false,
            charset: charset.map(Into::into),
            binary_len: None,
            has_default: false,
        }
    }

    #[test]
    fn identifiers_double_backticks() {
        assert_eq!(ident("a`b"), "`a``b`");
    }

    #[test]
    fn text_is_hex_with_introducer() {
        let c = col("varchar", Some("utf8mb4"));
        assert_eq!(
            literal(&Value::Bytes(b"it's".to_vec()), &c).unwrap(),
            "_utf8mb4 X'69742773'"
        );
    }

    #[test]
    fn binary_n_is_padded_like_the_server_stores_it() {
        let mut c = col("binary", None);
        c.binary_len = Some(4);
        assert_eq!(
            literal(&Value::Bytes(vec![0xab]), &c).unwrap(),
            "X'AB000000'"
        );
    }

    #[test]
    fn signedness_comes_from_the_schema() {
        let v = Value::Int {
            raw: 0xFF_FFFB,
            width: 3,
        };
        let mut c = col("mediumint", None);
        assert_eq!(literal(&v, &c).unwrap(), "-5");
        c.unsigned = true;
        assert_eq!(literal(&v, &c).unwrap(), "16777211");
    }

    #[test]
    fn timestamps_render_in_utc() {
        let c = col("timestamp", None);
        let v = Value::Timestamp {
            seconds: 1_700_000_000,
            micros: 120_000,
            fsp: 2,
        };
        assert_eq!(literal(&v, &c).unwrap(), "'2023-11-14 22:13:20.120000'");
    }

    #[test]
    fn negative_time() {
        let c = col("time", None);
        let v = Value::Time {
            negative: true,
            hours: 838,
            minutes: 59,
            seconds: 59,
            micros: 0,
            fsp: 0,
        };
        assert_eq!(literal(&v, &c).unwrap(), "'-838:59:59'");
    }

    #[test]
    fn prefix_key_condition() {
        let c = col("varchar", Some("utf8mb4"));
        assert_eq!(
            condition(&c, "'x'", Some(3), false),
            "LEFT(`c``x`, 3) = LEFT('x', 3)"
        );
        assert_eq!(
            condition(&c, "NULL", None, true),
            "CAST(`c``x` AS BINARY) <=> CAST(NULL AS BINARY)"
        );
        assert_eq!(
            condition(&col("int", None), "1", None, true),
            "`c``x` <=> 1"
        );
    }

    #[test]
    fn float_renders_as_the_exact_double_of_the_stored_single() {
        let c = col("float", None);
        // 0.1f is 0.100000001490116119384765625: the literal must say so, or the
        // whole-row probe of a keyless table never finds the row.
        let lit = literal(&Value::Float(0.1), &c).unwrap();
        assert_eq!(lit, "1.0000000149011612e-1");
        assert_eq!(lit.parse::<f64>().unwrap() as f32, 0.1f32);
    }
}
