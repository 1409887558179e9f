//! The public corpus: real binlog files from other projects, copied into
//! fixtures/binlogs (see its README.md and manifest.json). Every file is read to its end, rows inside MySQL's
//! TRANSACTION_PAYLOAD included; every row of every file is
//! compared with `mysql_common`'s decoder (dev-dependency oracle), each known
//! disagreement pinned to a named cause; truncated and corrupted copies are typed
//! errors, never panics.

use mysql_common::binlog::BinlogFile;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::{EventData, RowsEventData, TableMapEvent};
use mysql_common::binlog::value::BinlogValue;
use repl_repair::binlog::events::{self, Decoded, TableMaps};
use repl_repair::binlog::{self, BinlogReader, Value};
use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/binlogs");
    assert!(
        p.join("manifest.json").is_file(),
        "the binlog corpus is missing at {}: it is committed with the repository",
        p.display()
    );
    p
}

/// One manifest entry: (file, has_row_events, bytes).
fn manifest_entries() -> Vec<(String, bool, u64)> {
    let text = std::fs::read_to_string(corpus().join("manifest.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entries = json.as_array().expect("manifest.json is an array");
    let out: Vec<(String, bool, u64)> = entries
        .iter()
        .map(|e| {
            for field in ["repo", "commit", "path", "license"] {
                assert!(
                    e[field].as_str().is_some_and(|s| !s.is_empty()),
                    "manifest entry without {field}: {e}"
                );
            }
            (
                e["file"].as_str().unwrap().to_string(),
                e["has_row_events"].as_bool().unwrap(),
                e["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(out.len() > 50, "manifest lists {} files", out.len());
    out
}

/// (file, has_row_events) from manifest.json.
fn manifest() -> Vec<(String, bool)> {
    manifest_entries()
        .into_iter()
        .map(|(f, rows, _)| (f, rows))
        .collect()
}

/// One row change as (before, after), each the values of the columns present.
type Pair<V> = (Option<Vec<V>>, Option<Vec<V>>);

fn ours(path: &Path) -> Result<Vec<Pair<Value>>, String> {
    let mut r = BinlogReader::open(path).map_err(|e| e.to_string())?;
    let mut maps = TableMaps::default();
    let mut out = Vec::new();
    let present = |row: Option<Vec<Option<Value>>>| row.map(|r| r.into_iter().flatten().collect());
    while let Some(ev) = r.next_event().map_err(|e| e.to_string())? {
        let off = ev.offset;
        let decoded = events::decode(&ev, &mut maps).map_err(|e| format!("offset {off}: {e}"))?;
        // A MySQL TRANSACTION_PAYLOAD holds its transaction's events.
        for d in decoded.flatten() {
            if let Decoded::Rows(rows) = d {
                out.extend(
                    rows.rows
                        .into_iter()
                        .map(|c| (present(c.before), present(c.after))),
                );
            }
        }
    }
    Ok(out)
}

/// mysql_common's rows, as far as it gets; `Err` carries what it produced before failing.
type OracleRows = Vec<Pair<BinlogValue<'static>>>;

fn oracle(path: &Path) -> Result<OracleRows, (OracleRows, String)> {
    let f = std::fs::File::open(path).unwrap();
    let mut out = Vec::new();
    let mut file = match BinlogFile::new(BinlogVersion::Version4, BufReader::new(f)) {
        Ok(f) => f,
        Err(e) => return Err((out, e.to_string())),
    };
    let mut maps: HashMap<u64, TableMapEvent<'static>> = HashMap::new();
    loop {
        let ev = match file.next() {
            Some(Ok(ev)) => ev,
            Some(Err(e)) => return Err((out, e.to_string())),
            None => break,
        };
        if let Err(e) = oracle_event(&ev, &mut maps, &mut out) {
            return Err((out, e));
        }
        // MySQL TRANSACTION_PAYLOAD: read its inner events with mysql_common too.
        if let Ok(Some(EventData::TransactionPayloadEvent(p))) = ev.read_data() {
            let mut rdr = match p.decompressed() {
                Ok(r) => r,
                Err(e) => return Err((out, e.to_string())),
            };
            loop {
                match file.reader_mut().read_decompressed(&mut rdr) {
                    Ok(Some(inner)) => {
                        if let Err(e) = oracle_event(&inner, &mut maps, &mut out) {
                            return Err((out, e));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err((out, e.to_string())),
                }
            }
        }
    }
    Ok(out)
}

fn oracle_event(
    ev: &mysql_common::binlog::events::Event,
    maps: &mut HashMap<u64, TableMapEvent<'static>>,
    out: &mut OracleRows,
) -> Result<(), String> {
    let data = match ev.read_data() {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    match data {
        EventData::TableMapEvent(t) => {
            maps.insert(t.table_id(), t.into_owned());
        }
        EventData::RowsEvent(rows) => {
            let tme = maps
                .get(&rows.table_id())
                .ok_or_else(|| "rows event without table map".to_string())?;
            let rows: RowsEventData<'_> = rows;
            for row in rows.rows(tme) {
                let (b, a) = row.map_err(|e| e.to_string())?;
                out.push((b.map(|r| r.unwrap()), a.map(|r| r.unwrap())));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Compares one of our values with mysql_common's. `Err` names the difference.
fn same(ours: &Value, theirs: &BinlogValue<'_>) -> Result<(), String> {
    use mysql_common::value::Value as M;
    let BinlogValue::Value(t) = theirs else {
        // Binary JSON: both sides as serde_json values.
        return match (ours, theirs) {
            (Value::Json(b), BinlogValue::Jsonb(j)) => {
                let text = repl_repair::binlog::json::to_text(b).map_err(|e| e.to_string())?;
                let mine: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| format!("our JSON {text:?}: {e}"))?;
                let theirs = serde_json::Value::try_from(j.clone())
                    .map_err(|e| format!("mysql_common cannot convert its JSON: {e}"))?;
                if mine == theirs {
                    Ok(())
                } else {
                    Err(format!("JSON ours {mine} vs mysql_common {theirs}"))
                }
            }
            (Value::JsonDiff(d), BinlogValue::JsonDiff(diffs)) => {
                // Same number of diffs, each naming the same path in order.
                let mine: Vec<&str> = d.split("; ").collect();
                let same = mine.len() == diffs.len()
                    && mine
                        .iter()
                        .zip(diffs)
                        .all(|(m, t)| m.contains(&format!("'{}'", t.path_str())));
                if same {
                    Ok(())
                } else {
                    Err(format!("JSON diff ours {d} vs mysql_common {diffs:?}"))
                }
            }
            (other, _) => Err(format!("{other:?} vs JSON")),
        };
    };
    let ok = match (ours, t) {
        (Value::Null, M::NULL) => true,
        (Value::Int { raw, width }, M::Int(i)) => {
            let mask = if *width == 8 {
                u64::MAX
            } else {
                (1u64 << (8 * width)) - 1
            };
            (*i as u64) & mask == *raw
        }
        (Value::Int { raw, .. }, M::UInt(u)) => u == raw,
        (Value::Float(a), M::Float(b)) => a.to_bits() == b.to_bits(),
        (Value::Double(a), M::Double(b)) => a.to_bits() == b.to_bits(),
        (Value::Decimal(a), M::Bytes(b)) => a.as_bytes() == b.as_slice(),
        (Value::Bytes(a) | Value::Geometry(a), M::Bytes(b)) => a == b,
        (Value::Date { year, month, day }, M::Date(y, m, d, 0, 0, 0, 0)) => {
            (*year, *month, *day) == (*y, *m, *d)
        }
        (
            Value::DateTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micros,
                ..
            },
            M::Date(y, mo, d, h, mi, s, us),
        ) => {
            (*year, *month, *day, *hour, *minute, *second, *micros)
                == (*y, *mo, *d, *h, *mi, *s, *us)
        }
        (
            Value::Time {
                negative,
                hours,
                minutes,
                seconds,
                micros,
                ..
            },
            M::Time(neg, days, h, mi, s, us),
        ) => {
            (*negative, *hours, *minutes, *seconds, *micros)
                == (*neg, days * 24 + u32::from(*h), *mi, *s, *us)
        }
        (
            Value::Timestamp {
                seconds, micros, ..
            },
            M::Int(i),
        ) => *micros == 0 && i64::from(*seconds) == *i,
        (
            Value::Timestamp {
                seconds, micros, ..
            },
            M::Bytes(b),
        ) => {
            let text = if *micros == 0 {
                seconds.to_string()
            } else {
                format!("{seconds}.{micros:06}")
            };
            text.as_bytes() == b.as_slice()
        }
        (Value::Year(y), M::Bytes(b)) => y.to_string().as_bytes() == b.as_slice(),
        (Value::Enum(e), M::Int(i)) => i64::from(*e) == *i,
        (Value::Set(s), M::Bytes(b)) => {
            b.len() <= 8
                && b.iter()
                    .rev()
                    .fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
                    == *s
        }
        (Value::Bit(v), M::Bytes(b)) => {
            b.len() <= 8 && b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)) == *v
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("ours {ours:?} vs mysql_common {t:?}"))
    }
}

/// Files where mysql_common decodes fewer rows than we do: (file, rows, cause). The
/// issue that chose our own decoder measured this: it skips them without an error.
const ORACLE_SKIPS: &[(&str, usize, &str)] = &[(
    "own:compressed/primary-bin.000001",
    4,
    "mysql_common silently skips MariaDB compressed rows events (166-171)",
)];

/// Disagreements whose cause is known: (file, substring of the difference, cause).
const KNOWN_DISAGREEMENTS: &[(&str, &str, &str)] = &[
    (
        "json-opaque.binlog",
        "JSONB contains an opaque value",
        "mysql_common cannot turn JSON opaque values (DECIMAL, DATETIME, ...) into JSON; ours are checked by decoding_json_opaque_values",
    ),
    (
        "own:types/",
        "ours Year(0) vs mysql_common Bytes(\"1900\")",
        "mysql_common reads the zero YEAR (0000) as 1900",
    ),
];

/// Every file of the corpus directory is listed (so the tests below read it), every
/// listed file is there with its recorded size, and every licence is permissive.
#[test]
fn the_corpus_on_disk_is_exactly_the_manifest() {
    let root = corpus();
    let mut on_disk = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap().flatten() {
        if !dir.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let rel = f.path().strip_prefix(&root).unwrap().display().to_string();
            on_disk.push((rel, f.metadata().unwrap().len()));
        }
    }
    on_disk.sort();
    let mut listed: Vec<(String, u64)> = manifest_entries()
        .into_iter()
        .map(|(f, _, bytes)| (f, bytes))
        .collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "fixtures/binlogs differs from its manifest"
    );
    let text = std::fs::read_to_string(root.join("manifest.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    for e in json.as_array().unwrap() {
        let licence = e["license"].as_str().unwrap();
        assert!(
            ["MIT", "ISC", "Apache-2.0"]
                .iter()
                .any(|l| licence.starts_with(l)),
            "{}: licence {licence} is not MIT, ISC or Apache-2.0",
            e["file"]
        );
    }
}

#[test]
fn every_shared_fixture_reads_to_its_end() {
    let root = corpus();
    let mut failures = Vec::new();
    let mut total_rows = 0;
    for (file, has_rows) in manifest() {
        match ours(&root.join(&file)) {
            Ok(rows) => {
                total_rows += rows.len();
                if has_rows && rows.is_empty() {
                    failures.push(format!(
                        "{file}: manifest says it has row events, we decoded none"
                    ));
                }
            }
            Err(e) => failures.push(format!("{file}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        total_rows > 40_000,
        "decoded only {total_rows} rows from the corpus"
    );
}

#[test]
fn differential_against_mysql_common() {
    let root = corpus();
    let (mut files, mut rows_cmp, mut values_cmp, mut pinned) = (0, 0, 0, 0);
    let mut oracle_limits = Vec::new();
    let mut failures = Vec::new();
    // Our own MariaDB fixtures too: they hold the edge values the shared corpus lacks.
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mariadb-10.11");
    let mut own_files: Vec<PathBuf> = std::fs::read_dir(&own)
        .unwrap()
        .flatten()
        .flat_map(|d| {
            std::fs::read_dir(d.path())
                .unwrap()
                .flatten()
                .map(|e| e.path())
        })
        // Relay files of multi-file hold transactions whose TABLE_MAP is in an earlier
        // file: they are read as one stream by tests/decoder_fixtures.rs instead.
        .filter(|p| {
            let s = p.to_string_lossy();
            let split_txn = s.contains("multi-file") && s.contains("relay");
            let binlog = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("-bin.0"));
            binlog && !split_txn
        })
        .collect();
    own_files.sort();
    let all = manifest()
        .into_iter()
        .map(|(f, _)| (root.join(&f), f))
        .chain(own_files.into_iter().map(|p| {
            let name = p.strip_prefix(&own).unwrap().display().to_string();
            (p, format!("own:{name}"))
        }));
    for (path, file) in all {
        let mine = ours(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        // Where mysql_common itself gives up, only the rows it produced are compared.
        let mut limited = false;
        let theirs = match std::panic::catch_unwind(|| oracle(&path)) {
            Ok(Ok(rows)) => rows,
            Ok(Err((prefix, e))) => {
                oracle_limits.push(format!(
                    "{file}: mysql_common stopped after {} rows: {e}",
                    prefix.len()
                ));
                limited = true;
                prefix
            }
            Err(_) => {
                oracle_limits.push(format!("{file}: mysql_common panicked"));
                continue;
            }
        };
        files += 1;
        let skipped = ORACLE_SKIPS
            .iter()
            .find(|(f, _, _)| *f == file)
            .map_or(0, |(_, n, _)| *n);
        let counts_agree = if limited {
            theirs.len() <= mine.len()
        } else {
            theirs.len() + skipped == mine.len()
        };
        if !counts_agree {
            failures.push(format!(
                "{file}: mysql_common decoded {} rows, we {}",
                theirs.len(),
                mine.len()
            ));
            continue;
        }
        for (i, (m, t)) in mine.iter().zip(&theirs).enumerate() {
            rows_cmp += 1;
            for (mi, ti) in [(&m.0, &t.0), (&m.1, &t.1)] {
                match (mi, ti) {
                    (None, None) => {}
                    (Some(a), Some(b)) if a.len() == b.len() => {
                        for (col, (x, y)) in a.iter().zip(b).enumerate() {
                            values_cmp += 1;
                            if let Err(d) = same(x, y) {
                                let known = KNOWN_DISAGREEMENTS
                                    .iter()
                                    .any(|(f, s, _)| file.contains(f) && d.contains(s));
                                if known {
                                    pinned += 1;
                                } else {
                                    failures.push(format!("{file}: row {i} column {col}: {d}"));
                                }
                            }
                        }
                    }
                    _ => failures.push(format!("{file}: row {i}: images differ in shape")),
                }
            }
        }
    }
    println!(
        "differential: {files} files, {rows_cmp} rows, {values_cmp} values compared, {pinned} pinned disagreements, {} oracle limitations",
        oracle_limits.len()
    );
    for l in &oracle_limits {
        println!("  oracle limitation: {l}");
    }
    assert!(
        failures.is_empty(),
        "{} unpinned disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(values_cmp > 100_000, "compared only {values_cmp} values");
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("repl-repair-{}-{name}", std::process::id()))
}

#[test]
fn truncated_files_are_errors_not_panics() {
    let src = corpus().join(
        "osheroff__mysql-binlog-connector-java/src__test__resources__mysql-bin.checksum-crc32",
    );
    let bytes = std::fs::read(&src).unwrap();
    let path = temp("truncated");
    let mut truncations = 0;
    let cuts = (5..bytes.len())
        .step_by(7)
        .chain(bytes.len().saturating_sub(30)..bytes.len());
    for cut in cuts {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let res = std::panic::catch_unwind(|| ours(&path));
        let res = res.unwrap_or_else(|_| panic!("panic on a file cut at {cut}"));
        if let Err(e) = res {
            assert!(
                e.contains(&path.display().to_string()),
                "error names the file: {e}"
            );
            assert!(e.contains("truncated"), "cut at {cut}: {e}");
            truncations += 1;
        }
    }
    std::fs::remove_file(&path).ok();
    assert!(
        truncations > 100,
        "only {truncations} cuts were detected as truncated"
    );
}

#[test]
fn a_flipped_byte_is_a_checksum_error_at_its_event() {
    let src = corpus().join(
        "osheroff__mysql-binlog-connector-java/src__test__resources__mysql-bin.checksum-crc32",
    );
    let mut bytes = std::fs::read(&src).unwrap();
    // Find the offset of the 10th event and flip a byte in its body.
    let mut r = BinlogReader::open(&src).unwrap();
    let mut target = None;
    for _ in 0..10 {
        let ev = r.next_event().unwrap().unwrap();
        target = Some((ev.offset, ev.header.event_size));
    }
    let (offset, size) = target.unwrap();
    bytes[(offset + u64::from(size) / 2) as usize] ^= 0x5a;
    let path = temp("flipped");
    std::fs::write(&path, &bytes).unwrap();
    let mut r = BinlogReader::open(&path).unwrap();
    let err = loop {
        match r.next_event() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("corruption not detected"),
            Err(e) => break e,
        }
    };
    std::fs::remove_file(&path).ok();
    match err {
        binlog::Error::Checksum { offset: o, .. } => assert_eq!(o, offset),
        other => panic!("expected a checksum error, got {other}"),
    }
}

#[test]
fn decoding_json_opaque_values() {
    // Expected texts as mysql_common's own test of this file states them (its
    // json-opaque test), DECIMALs as JSON numbers the way MySQL prints them.
    let path = corpus().join("blackbeam__rust_mysql_common/test-data__binlogs__json-opaque.binlog");
    let rows = ours(&path).unwrap();
    let texts: Vec<String> = rows
        .iter()
        .filter_map(|(_, after)| match after.as_ref()?.first()? {
            Value::Json(b) => Some(repl_repair::binlog::json::to_text(b).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            r#"{"a": "base64:type15:VQ=="}"#,
            r#"{"b": "2012-03-18"}"#,
            r#"{"c": "2012-03-18 11:30:45.000000"}"#,
            r#"{"c": "87:31:46.654321"}"#,
            r#"{"d": 123.456}"#,
            r#"{"e": 9.00}"#,
            r#"{"e": [0, 1, true, false]}"#,
            r#"{"e": null}"#,
        ]
    );
}

#[test]
fn decode_takes_column_names_and_signedness_from_mysql_full_row_metadata() {
    // MySQL 8 with binlog_row_metadata=FULL writes names and signedness into TABLE_MAP.
    let path = corpus()
        .join("blackbeam__rust_mysql_common/test-data__binlogs__binlog-invisible-columns.000001");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .arg("decode")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap();
    assert!(
        first.contains("\"after\":{\"f1\":1,\"f2\":2,\"f3\":-3,"),
        "{first}"
    );
    // A MariaDB file has no such metadata: positional names.
    let maria =
        corpus().join("blackbeam__rust_mysql_common/test-data__binlogs__mariadb-bin.000001");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .arg("decode")
        .arg(&maria)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"after\":{\"id\":62,\"topic\":\"foo\""),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
