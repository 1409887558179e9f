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
use repl_repair::binlog::{self, BinlogReader, Decoded, DecodedEvents, Value};
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
    let present = |row: Option<Vec<Option<Value>>>| row.map(|r| r.into_iter().flatten().collect());
    let mut out = Vec::new();
    // The iterator flattens a MySQL TRANSACTION_PAYLOAD into its transaction's events and
    // names the file and offset in its errors.
    for ev in DecodedEvents::open(path).map_err(|e| e.to_string())? {
        if let Decoded::Rows(rows) = ev.map_err(|e| e.to_string())?.decoded {
            out.extend(
                rows.rows
                    .into_iter()
                    .map(|c| (present(c.before), present(c.after))),
            );
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

/// A copy of a corpus file whose FDE declares a common header of `19 + extra` bytes, each
/// later event carrying `extra` more header bytes (what Google MySQL 5.1 wrote for its
/// group ids: 27 or 31 bytes), sizes, positions and CRCs rewritten to match.
fn with_extended_header(bytes: &[u8], extra: usize) -> Vec<u8> {
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let fde_size = u32_at(bytes, 4 + 9) as usize;
    let mut fde = bytes[4..4 + fde_size].to_vec();
    assert_eq!(fde[19 + 56], 19, "the original declares 19 bytes");
    fde[19 + 56] = (19 + extra) as u8;
    // The FDE's last 5 bytes are the checksum algorithm and the CRC, when there is one.
    let crc = fde_size > 5 && fde[fde_size - 5] == 1;
    if crc {
        let mut copy = fde[..fde_size - 4].to_vec();
        copy[17] &= !1; // the in-use flag is not covered by the CRC
        let sum = crc32fast::hash(&copy).to_le_bytes();
        fde[fde_size - 4..].copy_from_slice(&sum);
    }
    let mut out = bytes[..4].to_vec();
    out.extend(&fde);
    let mut pos = 4 + fde_size;
    while pos < bytes.len() {
        let size = u32_at(bytes, pos + 9) as usize;
        let ev = &bytes[pos..pos + size];
        let body_end = if crc { size - 4 } else { size };
        let mut new = ev[..19].to_vec();
        new[9..13].copy_from_slice(&((size + extra) as u32).to_le_bytes());
        let end = (out.len() + size + extra) as u32;
        new[13..17].copy_from_slice(&end.to_le_bytes());
        new.extend((0..extra).map(|i| 0xA0 + i as u8));
        new.extend(&ev[19..body_end]);
        if crc {
            let sum = crc32fast::hash(&new).to_le_bytes();
            new.extend(sum);
        }
        out.extend(new);
        pos += size;
    }
    out
}

#[test]
fn the_common_header_length_an_fde_declares_frames_every_later_event() {
    // Issue #12: logs whose FDE declares 27 or 31 header bytes failed with "QUERY event:
    // event truncated". A MySQL 5.1 file without checksums and a Percona 5.7 one with.
    for file in [
        "alibaba__canal/parse__src__test__resources__binlog__mysql-bin.000001",
        "EasyPost__rust-mysql-binlog/test_data__bin-log.000001",
    ] {
        let path = corpus().join(file);
        let original = ours(&path).unwrap();
        assert!(!original.is_empty(), "{file} has rows");
        for extra in [8, 12] {
            let copy = temp(&format!("header-{extra}"));
            std::fs::write(
                &copy,
                with_extended_header(&std::fs::read(&path).unwrap(), extra),
            )
            .unwrap();
            let mut r = BinlogReader::open(&copy).unwrap();
            while let Some(ev) = r.next_event().unwrap() {
                assert_eq!(ev.fde.header_len, 19 + extra as u8);
            }
            let mut queries = 0;
            for ev in DecodedEvents::open(&copy).unwrap() {
                if let Decoded::Query { sql, .. } = ev.unwrap().decoded {
                    assert!(!sql.is_empty());
                    queries += 1;
                }
            }
            assert!(queries > 0, "{file}: QUERY events decoded");
            let rows = ours(&copy).unwrap_or_else(|e| panic!("{file} +{extra}: {e}"));
            std::fs::remove_file(&copy).ok();
            assert_eq!(rows, original, "{file} with a {}-byte header", 19 + extra);
        }
    }
}

#[test]
fn a_mysql_9_tagged_gtid_is_the_gtid_of_its_rows() {
    // MySQL 9.6 (rust_mysql_common's test file): the transaction's GTID_TAGGED event
    // (type 42) is 55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3, as mysql_common's own
    // test of the file states.
    let path = corpus().join(
        "blackbeam__rust_mysql_common/test-data__binlogs__binlog_transaction_with_GTID_TAG.000001",
    );
    let mut gtids = Vec::new();
    for ev in DecodedEvents::open(&path).unwrap() {
        let ev = ev.unwrap();
        if let Decoded::Gtid { gtid, .. } = ev.decoded {
            assert_eq!(ev.header.event_type, binlog::EventType(42), "GTID_TAGGED");
            gtids.push(gtid);
        }
    }
    assert_eq!(gtids, ["55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3"]);
    // The decode command puts it on the row.
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
    assert!(text.lines().count() > 0, "rows decoded");
    for line in text.lines() {
        assert!(
            line.contains("\"gtid\":\"55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3\""),
            "{line}"
        );
    }
}

/// `magic + events`, as a file in the temp dir.
fn write_log(name: &str, events: &[&[u8]]) -> PathBuf {
    let path = temp(name);
    let mut bytes = binlog::header::MAGIC.to_vec();
    for e in events {
        bytes.extend(*e);
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

/// One event with a 19-byte header, `log_pos` left 0, a CRC32 when `crc`.
fn event(t: u8, body: &[u8], crc: bool) -> Vec<u8> {
    let size = 19 + body.len() + if crc { 4 } else { 0 };
    let mut e = vec![0, 0, 0, 0, t, 1, 0, 0, 0];
    e.extend((size as u32).to_le_bytes());
    e.extend([0, 0, 0, 0, 0, 0]);
    e.extend(body);
    if crc {
        let sum = crc32fast::hash(&e).to_le_bytes();
        e.extend(sum);
    }
    e
}

/// The first error reading `path` to its end, as text.
fn first_error(path: &Path) -> String {
    let events = match DecodedEvents::open(path) {
        Ok(r) => r,
        Err(e) => return e.to_string(),
    };
    for ev in events {
        if let Err(e) = ev {
            return e.to_string();
        }
    }
    panic!("{} read to its end without an error", path.display())
}

/// The decode command on `path`: (exit code, stderr).
fn decode_command(path: &Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .arg("decode")
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn encrypted_binlogs_are_refused_by_name_not_called_corrupt() {
    // Percona Server 5.7: START_ENCRYPTION (type 159) right after the FDE; everything
    // after it is ciphertext (here: random-looking bytes, as a real file has).
    let percona =
        std::fs::read(corpus().join("EasyPost__rust-mysql-binlog/test_data__bin-log.000001"))
            .unwrap();
    let fde_size = u32::from_le_bytes(percona[13..17].try_into().unwrap()) as usize;
    let fde = &percona[4..4 + fde_size];
    // Body: scheme (1), key version (4), nonce (12).
    let mut start = vec![1u8, 7, 0, 0, 0];
    start.extend([0x5a; 12]);
    let cipher: Vec<u8> = (0..200u32).map(|i| (i * 97 + 13) as u8).collect();
    let path = write_log(
        "percona-encrypted",
        &[fde, &event(159, &start, true), &cipher],
    );
    let err = first_error(&path);
    let offset = 4 + fde_size;
    assert!(
        err.contains(&format!("{} at offset {offset}: encrypted binlog (Percona/MySQL START_ENCRYPTION event, type 159): not supported", path.display())),
        "{err}"
    );
    assert!(!err.contains("checksum"), "{err}");
    let (code, stderr) = decode_command(&path);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("encrypted binlog (Percona/MySQL"),
        "{stderr}"
    );
    std::fs::remove_file(&path).ok();

    // MariaDB: START_ENCRYPTION is type 164, after the FDE (and a GTID list) of a
    // MariaDB 10.11 binlog.
    let maria_file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/mariadb-10.11/types/primary-bin.000001");
    let maria = std::fs::read(maria_file).unwrap();
    let fde_size = u32::from_le_bytes(maria[13..17].try_into().unwrap()) as usize;
    let path = write_log(
        "mariadb-encrypted",
        &[&maria[4..4 + fde_size], &event(164, &start, true), &cipher],
    );
    let err = first_error(&path);
    assert!(
        err.contains("encrypted binlog (MariaDB START_ENCRYPTION event, type 164): not supported"),
        "{err}"
    );
    std::fs::remove_file(&path).ok();

    // MySQL 8 binlog_encryption: the file starts with \xfdbin and a 512-byte header.
    let path = temp("mysql8-encrypted");
    let mut bytes = vec![0xfd, b'b', b'i', b'n', 1];
    bytes.resize(512, 0);
    std::fs::write(&path, &bytes).unwrap();
    let err = first_error(&path);
    std::fs::remove_file(&path).ok();
    assert!(err.contains("encrypted binlog (MySQL 8"), "{err}");
}

#[test]
fn a_log_that_does_not_begin_with_a_format_description_is_refused() {
    // A real file with its FDE cut out: it now begins with the QUERY event after it.
    let src = corpus().join("alibaba__canal/parse__src__test__resources__binlog__mysql-bin.000001");
    let bytes = std::fs::read(&src).unwrap();
    let fde_size = u32::from_le_bytes(bytes[13..17].try_into().unwrap()) as usize;
    let path = write_log("no-fde", &[&bytes[4 + fde_size..]]);
    let err = first_error(&path);
    assert!(
        err.contains(&format!(
            "{} at offset 4: the log does not begin with a FORMAT_DESCRIPTION event (found QUERY, type 2)",
            path.display()
        )),
        "{err}"
    );
    let (code, stderr) = decode_command(&path);
    std::fs::remove_file(&path).ok();
    assert_ne!(
        code,
        Some(0),
        "mariadb-binlog exits 1 on such a file; we must fail too"
    );
    assert!(
        stderr.contains("does not begin with a FORMAT_DESCRIPTION"),
        "{stderr}"
    );

    // MySQL before 5.0 began with START_V3 (type 1): binlog version, server version
    // (50 bytes), creation time.
    let mut start = 3u16.to_le_bytes().to_vec();
    let mut version = b"4.0.27-log".to_vec();
    version.resize(50, 0);
    start.extend(version);
    start.extend(0u32.to_le_bytes());
    let path = write_log("start-v3", &[&event(1, &start, false)]);
    let err = first_error(&path);
    std::fs::remove_file(&path).ok();
    assert!(
        err.contains("at offset 4: the log begins with a START_V3 event"),
        "{err}"
    );
    assert!(err.contains("before 5.0, which is not supported"), "{err}");
}

/// An FDE body: binlog v4, `version`, a `header_len`-byte common header, `post` lengths.
fn fde_body(version: &str, header_len: u8, post: &[u8]) -> Vec<u8> {
    let mut b = 4u16.to_le_bytes().to_vec();
    let mut v = version.as_bytes().to_vec();
    v.resize(50, 0);
    b.extend(v);
    b.extend(0u32.to_le_bytes());
    b.push(header_len);
    b.extend(post);
    b
}

#[test]
fn pre_ga_mysql_5_1_row_events_are_refused_by_name() {
    // A MySQL 5.1.15 (pre-GA) log: its FDE knows event types 1..22 only; its TABLE_MAP
    // has no metadata block and its rows are PRE_GA_WRITE_ROWS (type 20).
    let mut post = vec![0u8; 22];
    post[1] = 13; // QUERY
    post[18] = 8; // TABLE_MAP
    post[19..22].fill(8); // rows events 20-22
    let fde = event(15, &fde_body("5.1.15-beta-log", 19, &post), false);
    // TABLE_MAP of test.t (one INT column), without metadata or NULL bitmap.
    let mut map = vec![0x21, 0, 0, 0, 0, 0, 1, 0];
    map.extend(b"\x04test\x00\x01t\x00\x01\x03");
    let table_map = event(19, &map, false);
    // PRE_GA_WRITE_ROWS: table id, flags, 1 column, bitmap, row (null bitmap + INT 7).
    let rows = event(
        20,
        &[0x21, 0, 0, 0, 0, 0, 1, 0, 1, 0x01, 0x00, 7, 0, 0, 0],
        false,
    );
    let path = write_log("pre-ga", &[&fde, &table_map, &rows]);
    let err = first_error(&path);
    assert!(
        err.contains(&format!("{} at offset", path.display())),
        "{err}"
    );
    assert!(
        err.contains("pre-GA MySQL 5.1 table map (server 5.1.15-beta-log"),
        "{err}"
    );
    // Without the TABLE_MAP, the rows event itself is refused by its type.
    let path2 = write_log("pre-ga-rows", &[&fde, &rows]);
    let err = first_error(&path2);
    assert!(
        err.contains("pre-GA MySQL 5.1 rows event (type 20) is not supported"),
        "{err}"
    );
    let (code, stderr) = decode_command(&path2);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("pre-GA MySQL 5.1 rows event (type 20)"),
        "{stderr}"
    );
    std::fs::remove_file(&path).ok();
    std::fs::remove_file(&path2).ok();
    // Types 21 and 22 too, even under a modern FDE.
    for t in [21u8, 22] {
        let path =
            write_log(
                "pre-ga-modern",
                &[
                    &std::fs::read(corpus().join(
                        "alibaba__canal/parse__src__test__resources__binlog__mysql-bin.000001",
                    ))
                    .unwrap()[4..106],
                    &event(t, &[0x21, 0, 0, 0, 0, 0, 1, 0], false),
                ],
            );
        let err = first_error(&path);
        std::fs::remove_file(&path).ok();
        assert!(
            err.contains(&format!(
                "pre-GA MySQL 5.1 rows event (type {t}) is not supported"
            )),
            "{err}"
        );
    }
}
