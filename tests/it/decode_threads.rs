//! `decode` renders rows on several threads; what it prints must not depend on that.
//! Every real binlog under fixtures/ (and truncations of them) is decoded on the reading
//! thread alone and on four renderers with one rows event per batch (the most handing
//! over there can be): the same lines, the same error. And a rows event that cannot be
//! decoded stops the output exactly at the event before it, whichever thread found it.

use repl_repair::dump::{self, DumpOptions};
use std::path::{Path, PathBuf};

fn binlogs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    crate::support::files_under(&root)
        .into_iter()
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.starts_with(b"\xfebin") && b.len() > 4))
        .collect()
}

/// The output and the error (as the user reads it) of decoding `files`.
fn decode(files: &[PathBuf], json: bool, threads: usize, batch: usize) -> (String, String) {
    let opts = DumpOptions {
        files: files.to_vec(),
        start: None,
        stop: None,
        json,
        threads,
        batch,
    };
    let mut out = Vec::new();
    let err = match dump::run(&opts, |_, _| None, &mut out) {
        Ok(rows) => format!("ok, {rows} rows"),
        Err(e) => e.to_string(),
    };
    (String::from_utf8_lossy(&out).into_owned(), err)
}

fn temp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("decode_threads");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn every_fixture_decodes_to_the_same_lines_on_one_thread_and_on_four() {
    let files = binlogs();
    assert!(files.len() > 50, "fixtures found: {}", files.len());
    let mut rows = 0;
    for f in &files {
        for json in [true, false] {
            let one = decode(std::slice::from_ref(f), json, 1, dump::BATCH);
            let four = decode(std::slice::from_ref(f), json, 4, 1);
            assert_eq!(one, four, "{} json={json}", f.display());
            rows += one.0.lines().count();
        }
    }
    assert!(rows > 1000, "rows decoded from the fixtures: {rows}");
}

#[test]
fn truncated_fixtures_fail_at_the_same_event_with_the_same_lines_before_it() {
    let mut compared = 0;
    for f in binlogs() {
        let bytes = std::fs::read(&f).unwrap();
        let cut = temp("cut.bin");
        // A dozen cuts through each file, at offsets that land inside events.
        for k in 1..12 {
            let at = bytes.len() * k / 12 + 3;
            if at >= bytes.len() {
                continue;
            }
            std::fs::write(&cut, &bytes[..at]).unwrap();
            let one = decode(std::slice::from_ref(&cut), true, 1, dump::BATCH);
            let four = decode(std::slice::from_ref(&cut), true, 4, 1);
            assert_eq!(one, four, "{} cut at {at}", f.display());
            compared += 1;
        }
    }
    assert!(compared > 500, "{compared} truncations compared");
}

/// Offsets and sizes of the events of a binlog file (4-byte magic, 19-byte headers).
fn events(bytes: &[u8]) -> Vec<(usize, usize, u8)> {
    let mut out = Vec::new();
    let mut at = 4;
    while at + 19 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[at + 9..at + 13].try_into().unwrap()) as usize;
        out.push((at, size, bytes[at + 4]));
        at += size;
    }
    out
}

#[test]
fn an_undecodable_rows_event_ends_the_output_at_the_event_before_it_on_any_thread() {
    // The fixture relay log whose table has the most rows events of one kind.
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/mariadb-10.11/types/replica-relay-bin.000002");
    let mut bytes = std::fs::read(&src).unwrap();
    // The same path before and after the damage: it is in every line.
    let bad = temp("bad-ncols.bin");
    std::fs::write(&bad, &bytes).unwrap();
    let (whole, _) = decode(std::slice::from_ref(&bad), true, 1, dump::BATCH);
    // MariaDB WRITE_ROWS_V1 (23), CRC32 checksums.
    let writes: Vec<_> = events(&bytes).into_iter().filter(|e| e.2 == 23).collect();
    assert!(
        writes.len() >= 3,
        "rows events in the fixture: {}",
        writes.len()
    );
    let (at, size, _) = writes[writes.len() / 2];
    // The column count (body byte 8: after the 6-byte table id and 2 flag bytes) one more
    // than the table map has; the CRC recomputed so that only the decoder can object.
    bytes[at + 19 + 8] += 1;
    let crc = crc32fast::hash(&bytes[at..at + size - 4]);
    bytes[at + size - 4..at + size].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&bad, &bytes).unwrap();
    let before: String = whole
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["source"]["pos"].as_u64().unwrap() < at as u64
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!before.is_empty() && before.len() < whole.len());
    for (threads, batch) in [(1, dump::BATCH), (2, 1), (4, 1), (3, dump::BATCH)] {
        let (out, err) = decode(std::slice::from_ref(&bad), true, threads, batch);
        assert_eq!(out, before, "threads {threads} batch {batch}");
        assert!(
            err.contains(&format!("offset {at}")) && err.contains("columns, its table map"),
            "threads {threads}: {err}"
        );
    }
}

#[test]
fn several_relay_files_read_as_one_stream_keep_their_order() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mariadb-10.11/multi-file");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("relay-bin.0"))
        .collect();
    files.sort();
    assert!(files.len() > 2, "{files:?}");
    let one = decode(&files, false, 1, dump::BATCH);
    let four = decode(&files, false, 4, 1);
    assert_eq!(one, four);
    assert!(one.0.lines().count() > 10, "{}", one.0);
}

#[test]
fn a_reader_that_closes_the_pipe_early_ends_decode_quietly_with_exit_0() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/mariadb-10.11/types/replica-relay-bin.000002");
    // Far more output than a pipe holds: the same file, many times over.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .arg("decode")
        .args(std::iter::repeat_n(&f, 2000))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(first.starts_with(b"{\"op\":"));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// (offset, end_log_pos) of every rows event of a binlog file.
fn rows_events(bytes: &[u8]) -> Vec<(u64, u64)> {
    events(bytes)
        .into_iter()
        .filter(|&(_, _, t)| matches!(t, 23..=25 | 30..=32))
        .map(|(at, _, _)| {
            let end = u32::from_le_bytes(bytes[at + 13..at + 17].try_into().unwrap());
            (at as u64, u64::from(end))
        })
        .collect()
}

#[test]
fn every_line_names_its_own_event_even_in_a_file_whose_name_looks_like_a_frame() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/mariadb-10.11/types/replica-relay-bin.000002");
    let mut bytes = std::fs::read(&src).unwrap();
    // The first rows event three times more, so that several events share one frame
    // (one table, operation and GTID) and differ only in their offsets.
    let (at, size, _) = events(&bytes).into_iter().find(|e| e.2 == 23).unwrap();
    let copy = bytes[at..at + size].repeat(3);
    bytes.splice(at + size..at + size, copy);
    let want = rows_events(&bytes);
    assert!(want.len() >= 6);
    assert_eq!(want[1].1, want[0].1, "copies keep their end_log_pos");
    // The placeholders the frames are cut at, quotes, a newline and a backslash.
    let name = "x\"pos\":18446744073709551615:18446744073709551615 end_log_pos=4294967295\n\\.bin";
    let hostile = temp(name);
    std::fs::write(&hostile, &bytes).unwrap();
    let path = hostile.display().to_string();
    let (json, err) = decode(std::slice::from_ref(&hostile), true, 2, 1);
    assert!(err.starts_with("ok"), "{err}");
    let mut seen = Vec::new();
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["source"]["file"], path.as_str(), "{line}");
        let at = (
            v["source"]["pos"].as_u64().unwrap(),
            v["source"]["end_log_pos"].as_u64().unwrap(),
        );
        if seen.last() != Some(&at) {
            seen.push(at);
        }
    }
    assert_eq!(
        seen, want,
        "each line's pos and end_log_pos are its event's"
    );
    let (text, _) = decode(std::slice::from_ref(&hostile), false, 2, 1);
    let inert = path.replace('\\', "\\\\").replace('\n', "\\n");
    let mut seen = Vec::new();
    for line in text.lines() {
        let rest = line.strip_prefix(&format!("{inert}:")).expect(line);
        let (pos, rest) = rest.split_once(" end_log_pos=").unwrap();
        let (end, _) = rest.split_once(' ').unwrap();
        let at = (pos.parse().unwrap(), end.parse().unwrap());
        if seen.last() != Some(&at) {
            seen.push(at);
        }
    }
    assert_eq!(seen, want, "text lines name their events too");
}

/// `decode --stats` on `file` with two renderers: the lines, and the peak RSS in MiB it
/// reports.
fn decode_with_stats(file: &Path) -> (Vec<String>, f64) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_repl-repair"))
        .args(["decode", "--format", "json", "--threads", "2", "--stats"])
        .arg(file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let peak = err
        .split("peak RSS ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|mib| mib.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {err:?}"));
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    (lines, peak)
}

/// A transaction of huge rows is decoded in memory that does not grow with it: a batch
/// holding a huge event is rendered alone, at most two batches per renderer are in
/// flight, and buffers a huge event grew are not kept. Three times as many 4 MB rows
/// (96 MB instead of 32 MB, each row its own rows event) may cost a few MiB of
/// allocator slack, not the 128 MB that holding them (and their output) would.
#[test]
fn huge_rows_are_decoded_in_memory_that_does_not_grow_with_the_transaction() {
    let lab = crate::support::Lab::up("decode_huge", &[]);
    let binlog = |name: &str| lab.dir.join("primary").join("data").join(name);
    // Column names and the character set in the file: the value is printed as text.
    lab.on_primary(&["SET GLOBAL binlog_row_metadata = 'FULL'"]);
    let mut files = Vec::new();
    for (first, n) in [(1, 8), (101, 24)] {
        lab.on_primary(&[
            "CREATE DATABASE IF NOT EXISTS lab",
            "CREATE TABLE IF NOT EXISTS lab.big (id INT PRIMARY KEY, v LONGTEXT)",
            "FLUSH BINARY LOGS",
        ]);
        let (file, _) = lab.primary_position();
        lab.on_primary(&[&format!(
            "INSERT INTO lab.big SELECT seq, REPEAT(CHAR(97 + seq % 26), 4000000) FROM lab.seq_{first}_to_{}",
            first + n - 1
        )]);
        files.push((binlog(&file), first, n));
    }
    lab.on_primary(&["FLUSH BINARY LOGS"]);
    let mut peaks = Vec::new();
    for (file, first, n) in &files {
        let size = std::fs::metadata(file).unwrap().len();
        assert!(
            size > *n as u64 * 4_000_000,
            "{} is {size} bytes",
            file.display()
        );
        let (lines, peak) = decode_with_stats(file);
        assert_eq!(lines.len(), *n, "{}", file.display());
        for (k, line) in lines.iter().enumerate() {
            let id = first + k;
            let letter = char::from(b'a' + (id % 26) as u8);
            assert!(
                line.starts_with(&format!(
                    r#"{{"op":"insert","schema":"lab","table":"big","before":null,"after":{{"id":{id},"v":"{letter}{letter}"#
                )),
                "line {k}: {}",
                &line[..line.len().min(200)]
            );
            assert!(line.len() > 4_000_000, "line {k}: {} bytes", line.len());
        }
        peaks.push(peak);
    }
    // Two renderers, two batches each, plus the reader's: about five 4 MB events and
    // their output in memory at most, whatever the transaction's size.
    assert!(peaks[0] < 80.0, "8 rows of 4 MB: peak RSS {} MiB", peaks[0]);
    assert!(
        peaks[1] < peaks[0] + 24.0,
        "peak RSS {} MiB for 24 rows of 4 MB, {} MiB for 8",
        peaks[1],
        peaks[0]
    );
}
