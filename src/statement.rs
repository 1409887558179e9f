//! 1062 raised by a statement-format event. MariaDB's default `binlog_format` is MIXED, and
//! a plain `INSERT … VALUES` is logged as a QUERY event: there is no row image, so the
//! error text is the only record of which key value collided:
//!
//! ```text
//! Error 'Duplicate entry '4' for key 'PRIMARY'' on query. Default database: 'lab'. Query: 'INSERT INTO t VALUES (4,'p')'
//! ```
//!
//! (observed on MariaDB 10.11; MySQL 8 writes the key as `'t.PRIMARY'`). From it and the
//! QUERY event (default schema + statement text) this module finds the one replica row
//! holding the value and hands back a [`DeleteStep`], so the ordinary apply path journals
//! and deletes it. A statement that hits several duplicates stops once per duplicate: the
//! repair's round loop re-plans from each new error until the statement goes through.
//!
//! What the error text cannot say reliably is refused, never guessed: a value the server
//! escaped (`\xFF` for bytes that are not text) or truncated (`…'aaa...'` past 64 bytes),
//! a multi-column value (parts joined with `-`) whose splits fit more or fewer than one
//! replica row, key types whose text does not map back to one value (FLOAT, TIMESTAMP in
//! the server's zone, BLOB/BINARY, BIT, spatial, JSON), a target table the statement text
//! does not name plainly, and tables with triggers (the duplicate may be in their tables).

use crate::binlog::Decoded;
use crate::limits::TableFilter;
use crate::locate::{RelayLogs, Target};
use crate::plan::{DeleteStep, Refusal, RefusalKind, RepairPlan};
use crate::schema::{ColumnInfo, KeyPart, TableInfo};
use crate::sql;
use mysql::prelude::Queryable;
use std::sync::Arc;

/// The duplicate named by a 1062 text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DupEntry {
    /// The key's value as the server printed it; multi-column values joined with `-`.
    pub value: String,
    /// The key name as printed: `PRIMARY`, `uk_k`, or MySQL 8's `t.PRIMARY`.
    pub key: String,
}

const DUP: &str = "Duplicate entry '";
const FOR_KEY: &str = "' for key '";
const ON_QUERY: &str = "'' on query.";

/// A value this long (bytes) that ends in `...` may be cut: the server prints at most 64
/// bytes of the key (observed: 65 × `a` → 61 × `a` + `...`, 64 × `é` → 30 × `é` + `...`).
const TRUNCATED_AT: usize = 60;

/// At most this many ways to split a multi-column value are probed on the replica.
const MAX_SPLITS: usize = 64;

fn refuse(s: impl Into<String>) -> Refusal {
    Refusal::new(RefusalKind::Statement, s)
}

/// Parses the `Duplicate entry 'V' for key 'K'' on query.` part of a statement's 1062.
///
/// V is printed verbatim (quotes and newlines included), so it is bounded from the right:
/// K is what lies between the last `' for key '` before the first `'' on query.` and that
/// marker. A key name with a quote in it, or a value holding the marker, is refused.
pub fn parse_dup_entry(message: &str) -> Result<DupEntry, Refusal> {
    let not_statement = || {
        refuse(format!(
            "error 1062 from a statement, but its text does not read `Duplicate entry '…' for key '…'' on query.`: {}",
            one_line(message)
        ))
    };
    let start = message.find(DUP).ok_or_else(not_statement)? + DUP.len();
    let rest = message.get(start..).ok_or_else(not_statement)?;
    let end = rest.find(ON_QUERY).ok_or_else(not_statement)?;
    let head = rest.get(..end).ok_or_else(not_statement)?;
    let at = head.rfind(FOR_KEY).ok_or_else(not_statement)?;
    let value = head.get(..at).ok_or_else(not_statement)?;
    let key = head.get(at + FOR_KEY.len()..).ok_or_else(not_statement)?;
    if key.is_empty() || key.contains('\'') {
        return Err(not_statement());
    }
    Ok(DupEntry {
        value: value.to_string(),
        key: key.to_string(),
    })
}

/// Refuses a value the server may have escaped or cut, since it no longer names one value.
pub fn check_verbatim(value: &str) -> Result<(), Refusal> {
    if value.contains('\\') {
        return Err(refuse(format!(
            "the duplicate value '{}' holds a backslash: the server escapes bytes that are not text as \\xNN, so the value cannot be read back reliably",
            one_line(value)
        )));
    }
    if value.ends_with("...") && value.len() >= TRUNCATED_AT {
        return Err(refuse(format!(
            "the duplicate value '{}' may be truncated (the server prints at most 64 bytes of a key), so the row holding it cannot be told",
            one_line(value)
        )));
    }
    Ok(())
}

/// A token of a statement's head, enough to find its target table.
#[derive(Debug, PartialEq)]
enum Tok<'a> {
    Word(&'a str),
    Quoted(String),
    Dot,
    Other,
}

/// The first `n` tokens of `sql`, comments skipped. `None` for text this scanner does not
/// understand (an executable `/*! … */` comment, an unterminated quote).
fn tokens(sql: &str, n: usize) -> Option<Vec<Tok<'_>>> {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while out.len() < n {
        let c = match b.get(i) {
            Some(c) => *c,
            None => break,
        };
        if c.is_ascii_whitespace() {
            i += 1;
        } else if sql.get(i..)?.starts_with("/*") {
            if sql.get(i..)?.starts_with("/*!") || sql.get(i..)?.starts_with("/*M!") {
                return None;
            }
            i += sql.get(i + 2..)?.find("*/")? + 4;
        } else if c == b'#' || sql.get(i..)?.starts_with("-- ") {
            i += sql.get(i..)?.find('\n').unwrap_or(sql.len() - i);
        } else if c == b'`' {
            let mut name = String::new();
            let mut j = i + 1;
            loop {
                let close = j + sql.get(j..)?.find('`')?;
                name.push_str(sql.get(j..close)?);
                if b.get(close + 1) == Some(&b'`') {
                    name.push('`');
                    j = close + 2;
                } else {
                    i = close + 1;
                    break;
                }
            }
            out.push(Tok::Quoted(name));
        } else if c == b'.' {
            out.push(Tok::Dot);
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
            let len = sql
                .get(i..)?
                .char_indices()
                .find(|(_, ch)| !(ch.is_alphanumeric() || *ch == '_' || *ch == '$'))
                .map_or(sql.len() - i, |(k, _)| k);
            out.push(Tok::Word(sql.get(i..i + len)?));
            i += len;
        } else {
            out.push(Tok::Other);
            i += sql.get(i..)?.chars().next()?.len_utf8();
        }
    }
    Some(out)
}

/// The table a statement writes, as `(schema, table)`, for the statements a 1062 comes
/// from whose text names one target plainly: `INSERT`/`REPLACE [modifiers] [INTO] [db.]t`
/// (VALUES, SET or SELECT) and a single-table `UPDATE [modifiers] [db.]t [[AS] a] SET`.
/// `None` for anything else (multi-table UPDATE, LOAD DATA, CALL, …).
pub fn target_table(sql: &str, default_schema: &str) -> Option<(String, String)> {
    let toks = tokens(sql, 12)?;
    let word = |t: Option<&Tok<'_>>| match t {
        Some(Tok::Word(w)) => Some(w.to_ascii_uppercase()),
        _ => None,
    };
    let verb = word(toks.first())?;
    let modifiers: &[&str] = match verb.as_str() {
        "INSERT" => &["LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "INTO"],
        "REPLACE" => &["LOW_PRIORITY", "DELAYED", "INTO"],
        "UPDATE" => &["LOW_PRIORITY", "IGNORE"],
        _ => return None,
    };
    let mut i = 1;
    while word(toks.get(i)).is_some_and(|w| modifiers.contains(&w.as_str())) {
        i += 1;
    }
    let name = |t: Option<&Tok<'_>>| match t {
        Some(Tok::Word(w)) => Some(w.to_string()),
        Some(Tok::Quoted(q)) => Some(q.clone()),
        _ => None,
    };
    let first = name(toks.get(i))?;
    let (schema, table, next) = if toks.get(i + 1) == Some(&Tok::Dot) {
        (first, name(toks.get(i + 2))?, i + 3)
    } else {
        (default_schema.to_string(), first, i + 1)
    };
    if verb == "UPDATE" {
        // Single table: `SET` next, or after an alias. A comma or a JOIN is refused.
        let set = |k: usize| word(toks.get(k)).as_deref() == Some("SET");
        let alias_then_set = match word(toks.get(next)).as_deref() {
            Some("AS") => set(next + 2),
            Some(_) => set(next + 1),
            None => false,
        };
        if !(set(next) || alias_then_set) {
            return None;
        }
    }
    if schema.is_empty() || table.is_empty() {
        return None;
    }
    Some((schema, table))
}

/// The literal for one key part's text in the error message, if the text is a value of
/// the column's type. Text columns take any text (sent as UTF-8, the message's charset;
/// the server converts it to the column's charset and compares in its collation, as the
/// duplicate check did).
fn part_literal(text: &str, col: &ColumnInfo) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let signed = |s: &str| digits(s.strip_prefix('-').unwrap_or(s));
    let quoted = || sql::temporal_literal(text);
    match col.data_type.as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
            let ok = if col.unsigned {
                digits(text)
            } else {
                signed(text)
            };
            (ok && text.len() <= 21).then(|| text.to_string())
        }
        "decimal" | "numeric" => {
            let (int, frac) = text.split_once('.').unwrap_or((text, "0"));
            (signed(int) && digits(frac) && text.len() <= 70).then(|| text.to_string())
        }
        "year" => (text.len() == 4 && digits(text)).then(|| text.to_string()),
        "date" => is_date(text).then(quoted).flatten(),
        "datetime" => {
            let (date, time) = text.split_once(' ')?;
            (is_date(date) && is_time(time, false))
                .then(quoted)
                .flatten()
        }
        "time" => is_time(text, true).then(quoted).flatten(),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            Some(sql::utf8_literal(text))
        }
        _ => None,
    }
}

fn is_date(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    matches!(p.as_slice(), [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2
        && p.iter().all(|x| x.bytes().all(|b| b.is_ascii_digit())))
}

fn is_time(s: &str, sign: bool) -> bool {
    let s = if sign {
        s.strip_prefix('-').unwrap_or(s)
    } else {
        s
    };
    let (hms, frac) = s.split_once('.').unwrap_or((s, "0"));
    let p: Vec<&str> = hms.split(':').collect();
    let num = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    matches!(p.as_slice(), [h, m, sec] if (2..=3).contains(&h.len()) && m.len() == 2 && sec.len() == 2
        && num(h) && num(m) && num(sec))
        && num(frac)
        && frac.len() <= 6
}

/// Whether the key's column types can be read back from the error text at all: FLOAT and
/// DOUBLE print rounded, TIMESTAMP prints in the SQL thread's time zone, bytes print
/// escaped (`A\xFF`), BIT/spatial/JSON/INET6/UUID are not read here.
fn check_types(t: &TableInfo, parts: &[KeyPart]) -> Result<(), Refusal> {
    for p in parts {
        let Some(col) = t.columns.get(p.column) else {
            return Err(refuse(format!(
                "key column {} of {}.{} is not in its column list",
                p.column + 1,
                t.schema,
                t.name
            )));
        };
        let readable = match col.data_type.as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal"
            | "numeric" | "year" | "date" | "datetime" | "time" => true,
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum"
            | "set" => col.charset.as_deref().is_some_and(|c| c != "binary"),
            _ => false,
        };
        if !readable {
            return Err(refuse(format!(
                "key column `{}` of {}.{} is {}: its value in the error text does not map back to one stored value",
                col.name, t.schema, t.name, col.data_type
            )));
        }
    }
    Ok(())
}

/// Every way to read `value` as the key's column values: one part per column, parts
/// joined with `-` by the server, each part a value of its column's type. Each split is
/// returned as one literal per key part. `Err` when there are too many to probe.
pub fn splits(value: &str, cols: &[&ColumnInfo]) -> Result<Vec<Vec<String>>, Refusal> {
    fn walk(
        rest: &str,
        cols: &[&ColumnInfo],
        acc: &mut Vec<String>,
        out: &mut Vec<Vec<String>>,
    ) -> bool {
        let Some((col, more)) = cols.split_first() else {
            return true;
        };
        if more.is_empty() {
            if let Some(lit) = part_literal(rest, col) {
                acc.push(lit);
                out.push(acc.clone());
                acc.pop();
            }
            return out.len() <= MAX_SPLITS;
        }
        for (i, _) in rest.match_indices('-') {
            let (Some(part), Some(tail)) = (rest.get(..i), rest.get(i + 1..)) else {
                continue;
            };
            if let Some(lit) = part_literal(part, col) {
                acc.push(lit);
                let go_on = walk(tail, more, acc, out);
                acc.pop();
                if !go_on {
                    return false;
                }
            }
        }
        true
    }
    let mut out = Vec::new();
    if !walk(value, cols, &mut Vec::new(), &mut out) {
        return Err(refuse(format!(
            "the value '{}' splits into more than {MAX_SPLITS} candidate key values; too ambiguous to probe",
            one_line(value)
        )));
    }
    Ok(out)
}

/// The 1062's message or value on one line, for refusal texts (logs, dead letters).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect()
}

/// The statements of the failing transaction, as `(default schema, text)`, read from the
/// relay log from `Relay_Log_Pos` to its commit. A statement's error names no
/// `end_log_pos`, so the failing one is told by its text (see [`failing_statement`]).
fn transaction_statements(
    logs: &RelayLogs,
    target: &Target,
) -> Result<Vec<(String, String)>, Refusal> {
    let mut out = Vec::new();
    // The same walk and transaction boundaries as the rows path (locate.rs).
    let read = crate::locate::read_transaction_events::<()>(logs, target, |ev, _, _| {
        if let Decoded::Query { schema, sql } = &ev.decoded {
            let word = sql.trim().to_ascii_uppercase();
            let control = word == "BEGIN"
                || word == "COMMIT"
                || word == "ROLLBACK"
                || word.starts_with("XA ");
            if !control {
                out.push((schema.clone(), sql.clone()));
            }
        }
        Ok(())
    });
    match read {
        Ok(_) => Ok(out),
        // The relayed part holds the failing statement: the rest is not needed.
        Err(crate::locate::LocateError::Incomplete { .. }) => Ok(out),
        Err(e) => Err(refuse(format!(
            "cannot read the failing transaction's statements from {}: {e}",
            target.relay_file.display()
        ))),
    }
}

/// Which of the transaction's statements failed: the one whose text the error quotes
/// after `Query: '` (a prefix of it when the server cut the message), or the only one.
/// `None` when the choice is not unique.
pub fn failing_statement<'a>(
    message: &str,
    statements: &'a [(String, String)],
) -> Option<&'a (String, String)> {
    let quoted = message
        .find(ON_QUERY)
        .and_then(|i| message.get(i..))
        .and_then(|m| m.find("Query: '").and_then(|j| m.get(j + 8..)))
        .map(|q| q.strip_suffix('\'').unwrap_or(q));
    let pick = |f: &dyn Fn(&str) -> bool| {
        let mut hits = statements.iter().filter(|(_, sql)| f(sql));
        let first = hits.next()?;
        // The same text twice names the same target: either will do.
        hits.all(|h| h == first).then_some(first)
    };
    match quoted {
        Some(q) if !q.is_empty() => {
            pick(&|sql| sql == q).or_else(|| pick(&|sql| sql.starts_with(q)))
        }
        _ => match statements {
            [only] => Some(only),
            _ => None,
        },
    }
}

/// The repair of a 1062 whose failing event is a statement: a plan deleting the one
/// replica row that holds the duplicate value. `Ok(None)` when the error is not a
/// statement's (not ours to handle); `Err` is a refusal, nothing changed.
pub fn plan(
    conn: &mut impl Queryable,
    message: &str,
    logs: &RelayLogs,
    target: &Target,
    filter: &TableFilter,
) -> Result<Option<RepairPlan>, Refusal> {
    if !message.contains(ON_QUERY) {
        return Ok(None);
    }
    let dup = parse_dup_entry(message)?;
    let statements = transaction_statements(logs, target)?;
    let (default_schema, statement) = failing_statement(message, &statements)
        .ok_or_else(|| {
            refuse(format!(
                "error 1062 on a statement, but which of the transaction's {} statements failed cannot be told from the error text",
                statements.len()
            ))
        })?
        .clone();
    let (schema, table) = target_table(&statement, &default_schema).ok_or_else(|| {
        refuse(format!(
            "error 1062 on a statement whose target table is not named plainly (only INSERT/REPLACE … INTO [db.]t and single-table UPDATE are read): {}",
            one_line(&statement)
        ))
    })?;
    if !filter.allows(&schema, &table) {
        return Err(refuse(format!(
            "the statement writes {schema}.{table}, which --tables/--ignore-tables keep the agent off"
        )));
    }
    let t = TableInfo::load(conn, &schema, &table).map_err(|e| refuse(e.to_string()))?;
    let qualified = format!("{table}.");
    let key_index = t
        .unique_keys
        .iter()
        .position(|k| k.name == dup.key)
        .or_else(|| {
            let bare = dup.key.strip_prefix(&qualified)?;
            t.unique_keys.iter().position(|k| k.name == bare)
        })
        .ok_or_else(|| {
            refuse(format!(
                "the error names key '{}', which {schema}.{table} (the statement's target) does not have as a unique key",
                dup.key
            ))
        })?;
    let triggers: Option<u64> = conn
        .exec_first(sql::TRIGGER_COUNT, (&schema, &table))
        .map_err(|e| refuse(format!("cannot read the triggers of {schema}.{table}: {e}")))?;
    if triggers.unwrap_or(0) > 0 {
        return Err(refuse(format!(
            "{schema}.{table} has triggers: the duplicate may be in a table they write, which the error does not name"
        )));
    }
    check_verbatim(&dup.value)?;
    let key = &t.unique_keys[key_index];
    check_types(&t, &key.parts)?;
    let cols: Vec<&ColumnInfo> = key
        .parts
        .iter()
        .filter_map(|p| t.columns.get(p.column))
        .collect();
    let candidates = splits(&dup.value, &cols)?;
    let condition = |lits: &[String]| -> String {
        let parts: Vec<String> = key
            .parts
            .iter()
            .zip(&cols)
            .zip(lits)
            .map(|((p, c), l)| sql::condition(c, l, p.prefix, false))
            .collect();
        sql::all_of(&parts)
    };
    let mut found: Vec<(Vec<String>, String, u64)> = Vec::new();
    for lits in candidates.iter() {
        let cond = condition(lits);
        let probe = sql::count_where(&t, &cond);
        let n: Option<u64> = conn
            .query_first(&probe)
            .map_err(|e| refuse(format!("{probe}: {e}")))?;
        if let Some(n) = n.filter(|n| *n > 0) {
            found.push((lits.clone(), cond, n));
        }
    }
    let about = format!(
        "duplicate '{}' for key '{}' of {schema}.{table}",
        one_line(&dup.value),
        key.name
    );
    let table = Arc::new(t);
    match found.as_slice() {
        [(literals, cond, 1)] => Ok(Some(RepairPlan {
            deletes: vec![DeleteStep {
                table,
                key_index,
                literals: literals.clone(),
                except: None,
                condition: cond.clone(),
                pending: Vec::new(),
            }],
            inserts: Vec::new(),
            rows_seen: 0,
        })),
        [] => Err(refuse(format!(
            "{about}: no replica row holds it ({} reading{} of the value tried); the error is not explained by row drift",
            candidates.len(),
            if candidates.len() == 1 { "" } else { "s" }
        ))),
        many => Err(refuse(format!(
            "{about}: ambiguous, {} replica rows fit the value: {}",
            many.iter().map(|f| f.2).sum::<u64>(),
            many.iter()
                .map(|f| f.1.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str, charset: Option<&str>) -> ColumnInfo {
        ColumnInfo {
            name: data_type.into(),
            data_type: data_type.into(),
            unsigned: false,
            nullable: false,
            generated: false,
            charset: charset.map(Into::into),
            binary_len: None,
            has_default: false,
        }
    }

    #[test]
    fn mariadb_statement_1062_text() {
        let m = "Error 'Duplicate entry '4' for key 'PRIMARY'' on query. Default database: 'lab'. Query: 'INSERT INTO t VALUES (4,'p')'";
        assert_eq!(
            parse_dup_entry(m).unwrap(),
            DupEntry {
                value: "4".into(),
                key: "PRIMARY".into()
            }
        );
    }

    #[test]
    fn value_with_quotes_and_the_marker_inside() {
        let m = "Error 'Duplicate entry 'a' for key 'b-x' for key 'uk_abc'' on query. Default database: ''. Query: 'INSERT INTO lab.m VALUES (''a'''' for key ''b'', ''x'')'";
        let d = parse_dup_entry(m).unwrap();
        assert_eq!(d.value, "a' for key 'b-x");
        assert_eq!(d.key, "uk_abc");
    }

    #[test]
    fn mysql8_key_names_are_qualified() {
        let m = "Error 'Duplicate entry '4' for key 't.PRIMARY'' on query. Default database: 'test'. Query: 'insert into t values (4)'";
        assert_eq!(parse_dup_entry(m).unwrap().key, "t.PRIMARY");
    }

    #[test]
    fn row_event_text_is_not_a_statement() {
        let m = "Could not execute Write_rows_v1 event on table lab.t; Duplicate entry '6' for key 'PRIMARY', Error_code: 1062";
        assert!(parse_dup_entry(m).is_err());
    }

    #[test]
    fn escaped_and_truncated_values_are_refused() {
        assert!(check_verbatim("A\\xFF\\x00B").is_err());
        let cut = format!("{}...", "a".repeat(61));
        assert!(check_verbatim(&cut).is_err());
        assert!(check_verbatim(&"a".repeat(64)).is_ok());
        assert!(check_verbatim("wait...").is_ok());
    }

    #[test]
    fn the_failing_statement_is_told_by_its_text() {
        let st = |s: &str| ("lab".to_string(), s.to_string());
        let all = [
            st("INSERT INTO a VALUES (1)"),
            st("INSERT INTO b VALUES (1,'x')"),
        ];
        let m = "Error 'Duplicate entry '1' for key 'PRIMARY'' on query. Default database: 'lab'. Query: 'INSERT INTO b VALUES (1,'x')'";
        assert_eq!(failing_statement(m, &all), Some(&all[1]));
        let cut = "Error 'Duplicate entry '1' for key 'PRIMARY'' on query. Default database: 'lab'. Query: 'INSERT INTO a VAL";
        assert_eq!(failing_statement(cut, &all), Some(&all[0]));
        let other = "Error 'Duplicate entry '1' for key 'PRIMARY'' on query. Default database: 'lab'. Query: 'INSERT INTO c VALUES (1)'";
        assert_eq!(failing_statement(other, &all), None);
    }

    #[test]
    fn target_tables() {
        let t = |s: &str| target_table(s, "lab");
        assert_eq!(
            t("INSERT INTO t VALUES (4)"),
            Some(("lab".into(), "t".into()))
        );
        assert_eq!(
            t("/* x */ insert ignore into `o``d`.`t 1` (a) select 1"),
            Some(("o`d".into(), "t 1".into()))
        );
        assert_eq!(
            t("REPLACE LOW_PRIORITY db.t SET a=1"),
            Some(("db".into(), "t".into()))
        );
        assert_eq!(
            t("UPDATE t AS x SET k = 5"),
            Some(("lab".into(), "t".into()))
        );
        assert_eq!(t("UPDATE t, u SET t.k = u.k"), None);
        assert_eq!(t("UPDATE t JOIN u USING (id) SET k = 1"), None);
        assert_eq!(t("LOAD DATA INFILE 'x' INTO TABLE t"), None);
        assert_eq!(t("INSERT /*!50000 IGNORE */ INTO t VALUES (1)"), None);
        assert_eq!(target_table("INSERT INTO t VALUES (1)", ""), None);
    }

    #[test]
    fn splits_follow_column_types() {
        let (d, i, f) = (col("date", None), col("int", None), col("decimal", None));
        let s = splits("2024-01-02--5--1.50", &[&d, &i, &f]).unwrap();
        assert_eq!(
            s,
            vec![vec![
                "'2024-01-02'".to_string(),
                "-5".into(),
                "-1.50".into()
            ]]
        );
    }

    #[test]
    fn text_splits_are_ambiguous_by_type() {
        let (v, i) = (col("varchar", Some("utf8mb4")), col("int", None));
        // 'x-y' + 3, or 'x' + ? — only splits whose parts parse survive.
        let s = splits("x-y-3", &[&v, &i]).unwrap();
        assert_eq!(s, vec![vec!["_utf8mb4 X'782D79'".to_string(), "3".into()]]);
        let s = splits("x-y-3", &[&v, &v]).unwrap();
        assert_eq!(s.len(), 2, "{s:?}");
        let u = ColumnInfo {
            unsigned: true,
            ..col("int", None)
        };
        assert!(splits("-3", &[&u]).unwrap().is_empty());
    }

    #[test]
    fn unreadable_key_types_are_refused() {
        let t = TableInfo {
            schema: "lab".into(),
            name: "t".into(),
            columns: vec![col("float", None), col("varbinary", None)],
            unique_keys: vec![],
            mapped: 2,
        };
        for c in 0..2 {
            assert!(
                check_types(
                    &t,
                    &[KeyPart {
                        column: c,
                        prefix: None
                    }]
                )
                .is_err()
            );
        }
    }
}
