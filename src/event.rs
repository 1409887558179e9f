//! The one JSON shape of a row change, shared by `decode` output, the audit trail and the
//! rows of a dead letter, and the one way each column type's values are rendered.
//!
//! The shape is [`ChangeEvent`] (serde). `decode` writes millions of them, so it does not
//! go through serde per row: [`EventFrame`] serializes one `ChangeEvent` per rows event
//! with placeholder images and keeps the bytes around them, and each row only pastes its
//! images in between ([`write_entry`] per value as `RowsEvent::stream` decodes it,
//! rendered straight into the output buffer with no allocation per value). The audit and
//! dead letters use the same value renderer, so every writer agrees on every value by
//! construction.
//!
//! Values, by column type (see README, "JSON documents"):
//! - NULL → `null`; integers → numbers with the column's signedness (signed when
//!   unknown); YEAR, BIT, ENUM (index), SET (bit mask) → numbers;
//! - FLOAT/DOUBLE → the shortest number that reads back as the same value;
//! - DECIMAL → a string with its exact digits (`"-12.340"`);
//! - temporal → strings: `"2024-02-29"`, `"-838:59:59"`, `"2024-02-29 23:59:59.999999"`
//!   (TIMESTAMP in UTC); a fraction is written, with 6 digits, when it is not zero;
//! - string types by the column's character set: utf8/utf8mb3/utf8mb4/ascii → a string
//!   (`"0x…"` hex if the bytes are not valid UTF-8, which the server does not store);
//!   latin1 (the server's latin1 is cp1252) → decoded to a string; binary, every other
//!   character set, and an unknown one (no schema, no table-map metadata) → `"0x…"` hex;
//! - BLOB/BINARY/VARBINARY, GEOMETRY, VECTOR → `"0x…"` hex, always;
//! - JSON → the document itself (embedded JSON); a partial JSON update → a string of
//!   `JSON_REPLACE(@, …)` calls.

use crate::binlog::DecodeErrorKind;
use crate::binlog::cursor::Cursor;
use crate::binlog::digits::{DEC2, i64_at, put, two, u64_at};
use crate::binlog::value::{Value, ValueRef};
use crate::schema::ColumnInfo;
use serde::Serialize;
use serde_json::value::RawValue;

/// A row change: the same document whoever writes it.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeEvent<'a, I> {
    /// `insert`/`update`/`delete` (decode, dead letters), `repair-delete`/`repair-insert`
    /// (audit).
    pub op: &'a str,
    pub schema: &'a str,
    pub table: &'a str,
    /// Column maps, `null` when the change has no such image.
    pub before: Option<I>,
    pub after: Option<I>,
    pub source: EventSource<'a>,
    /// The error of the incident (audit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<&'a str>,
    /// When it was written, UTC (audit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<&'a str>,
}

/// Where a change came from; each writer fills what it knows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventSource<'a> {
    /// The agent's instance and replication connection (audit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<&'a str>,
    /// The file the rows event was read from and its offset there (decode, dead letters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos: Option<u64>,
    /// The failing transaction in the relay log, and the primary's binlog file (audit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_pos: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_file: Option<&'a str>,
    /// The primary's end_log_pos of the event (decode; the failing event's in the audit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_log_pos: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gtid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<u32>,
    /// The rows event's type name (decode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'static str>,
    /// Where the agent read the failing transaction: `relay` or `primary` (audit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_from: Option<&'a str>,
    /// The table again, as the audit has always carried it in its source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<&'a str>,
}

/// A column map whose values are already JSON (rendered by [`write_value`] and friends),
/// in column order.
#[derive(Debug, Clone, Default)]
pub struct ColumnMap(pub Vec<(String, Box<RawValue>)>);

impl Serialize for ColumnMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Bytes already known to be one JSON value, as a [`RawValue`].
pub fn raw(bytes: Vec<u8>) -> Box<RawValue> {
    // Our renderer only writes valid JSON; `null` keeps a bug from losing the line.
    String::from_utf8(bytes)
        .ok()
        .and_then(|s| RawValue::from_string(s).ok())
        .unwrap_or_else(|| RawValue::from_string("null".into()).unwrap_or_default())
}

/// How a column's string bytes are rendered: decided per column, never per value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    Utf8,
    /// The server's latin1, which is cp1252.
    Latin1,
    Hex,
}

impl Text {
    pub fn of_charset(charset: Option<&str>) -> Text {
        match charset {
            Some("utf8" | "utf8mb3" | "utf8mb4" | "ascii") => Text::Utf8,
            Some("latin1") => Text::Latin1,
            _ => Text::Hex,
        }
    }
}

/// The character set of a collation id, as MySQL and MariaDB number them (table-map
/// optional metadata); `None` for ids not listed here, which render as hex.
pub fn collation_charset(id: u64) -> Option<&'static str> {
    // MariaDB's NO PAD collations are their PAD SPACE twin's id + 1024.
    let id = if (1024..2048).contains(&id) {
        id - 1024
    } else {
        id
    };
    Some(match id {
        63 => "binary",
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => "latin1",
        11 | 65 => "ascii",
        33 | 76 | 83 | 192..=215 | 223 | 576..=578 => "utf8mb3",
        45 | 46 | 224..=247 | 255..=323 | 608..=610 => "utf8mb4",
        // MariaDB 10.10+ UCA 14.0.0 collations.
        2048..=2303 => "utf8mb3",
        2304..=2559 => "utf8mb4",
        _ => return None,
    })
}

/// A column as the writers need it: its key pre-escaped, how its values render.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// `,"name":`
    json_key: Key,
    /// `, name=`
    text_key: Key,
    unsigned: bool,
    text: Text,
    /// information_schema DATA_TYPE, for values read back from the replica.
    data_type: String,
}

/// Keys up to this long are copied as one fixed-size block.
const KEY_BLOCK: usize = 32;

/// A column's key with the separator before it, followed by [`KEY_BLOCK`] spare bytes so
/// that a short key is copied as one fixed-size block (no `memcpy` call per column).
#[derive(Debug, Clone)]
struct Key {
    padded: Box<[u8]>,
    len: usize,
}

impl Key {
    fn new(key: Vec<u8>) -> Key {
        let len = key.len();
        let mut padded = key;
        padded.resize(len + KEY_BLOCK, 0);
        Key {
            padded: padded.into_boxed_slice(),
            len,
        }
    }

    /// Appends the key, without its first `skip` bytes (the separator, for the first
    /// column of an image).
    #[inline(always)]
    fn put(&self, out: &mut Vec<u8>, skip: usize) {
        let n = self.len.saturating_sub(skip);
        let from = self.padded.get(skip..).unwrap_or_default();
        match from.first_chunk::<KEY_BLOCK>() {
            Some(block) if n <= KEY_BLOCK => {
                let end = out.len() + n;
                out.extend_from_slice(block);
                out.truncate(end);
            }
            _ => out.extend_from_slice(&from[..n.min(from.len())]),
        }
    }
}

impl Column {
    pub fn new(c: &ColumnInfo) -> Column {
        let mut json_key = Vec::with_capacity(c.name.len() + 4);
        json_key.push(b',');
        write_str(&mut json_key, &c.name);
        json_key.push(b':');
        // Inert: a newline in a column name cannot start a forged text line.
        let text_key = [b", ", crate::record::inert(&c.name).as_bytes(), b"="].concat();
        Column {
            name: c.name.clone(),
            json_key: Key::new(json_key),
            text_key: Key::new(text_key),
            unsigned: c.unsigned,
            text: Text::of_charset(c.charset.as_deref()),
            data_type: c.data_type.clone(),
        }
    }

    pub fn all(cols: &[ColumnInfo]) -> Vec<Column> {
        cols.iter().map(Column::new).collect()
    }
}

// ---- The renderer: JSON straight into a byte buffer. ----

const HEX: &[u8; 16] = b"0123456789abcdef";

/// What a byte becomes inside a JSON string: 0 = itself, `u` = `\u00XX`, else `\` + it.
/// The same escapes as serde_json.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// A bit per byte of `c` that must be escaped in a JSON string (< 0x20, `"`, `\\`) or,
/// with `ascii`, is not ASCII: bit `j` for `c[j]`. Portable version.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn special_mask_portable(c: &[u8; 16], ascii: bool) -> u32 {
    c.iter().enumerate().fold(0, |m, (j, &x)| {
        let special = ESCAPE[usize::from(x)] != 0 || (ascii && x >= 0x80);
        m | (u32::from(special) << j)
    })
}

#[cfg(not(target_arch = "x86_64"))]
use special_mask_portable as special_mask;

/// [`special_mask_portable`] with SSE2 (part of every x86_64).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn special_mask(c: &[u8; 16], ascii: bool) -> u32 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is in the x86_64 baseline, so these intrinsics are always available;
    // the load reads exactly the 16 bytes of `c` and needs no alignment.
    unsafe {
        let v = _mm_loadu_si128(c.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // x < 0x20 (unsigned) exactly when min(x, 0x1f) == x.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let escape = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control));
        // The top bit of each byte: not ASCII.
        let high = if ascii { _mm_movemask_epi8(v) } else { 0 };
        (escape | high) as u32
    }
}

/// Appends `s` escaped for a JSON string (without quotes), 16 bytes at a time: a chunk
/// with nothing to escape is copied as one block, and in a chunk with escapes (JSON text
/// in a TEXT column has a quote every few bytes) each escape is found from the chunk's
/// mask, not by scanning again after it. With `ASCII`, stops at the first byte that is
/// not ASCII and returns its index, everything before it written; else `s.len()`.
#[inline(always)]
fn escape_run<const ASCII: bool>(out: &mut Vec<u8>, s: &[u8]) -> usize {
    let mut i = 0;
    // Two blocks at a time: plain text costs one capacity check per 32 bytes.
    while let Some(c) = s.get(i..).and_then(|r| r.first_chunk::<32>()) {
        let (a, b) = c.split_at(16);
        let (Some(a), Some(b)) = (a.first_chunk::<16>(), b.first_chunk::<16>()) else {
            break;
        };
        let (ma, mb) = (special_mask(a, ASCII), special_mask(b, ASCII));
        if ma | mb == 0 {
            out.extend_from_slice(c);
        } else {
            for (block, m, at) in [(a, ma, 0), (b, mb, 16)] {
                if m == 0 {
                    out.extend_from_slice(block);
                } else if let Some(stop) = escape_chunk::<ASCII>(out, block, 0, 16, m) {
                    return i + at + stop;
                }
            }
        }
        i += 32;
    }
    while let Some(c) = s.get(i..).and_then(|r| r.first_chunk::<16>()) {
        let m = special_mask(c, ASCII);
        if m == 0 {
            out.extend_from_slice(c);
        } else if let Some(stop) = escape_chunk::<ASCII>(out, c, 0, 16, m) {
            return i + stop;
        }
        i += 16;
    }
    let rest = s.len() - i;
    if rest == 0 {
        return i;
    }
    // The last bytes: the string's last 16 again when it has them, with the bits of
    // the bytes already written cleared; else the bytes padded with plain ones.
    let (c, from) = match s.last_chunk::<16>() {
        Some(c) => (*c, 16 - rest),
        None => {
            let mut c = [b' '; 16];
            c[..rest].copy_from_slice(&s[i..]);
            (c, 0)
        }
    };
    let keep = ((1u32 << rest) - 1) << from;
    match escape_chunk::<ASCII>(out, &c, from, from + rest, special_mask(&c, ASCII) & keep) {
        Some(stop) => i + stop - from,
        None => s.len(),
    }
}

/// `c[from..to]` escaped, the bytes to escape being the set bits of `m` (all within
/// `from..to`). With `ASCII`, stops at a byte that is not ASCII and returns its index.
/// The plain bytes between escapes are copied as 16-byte blocks out of a 32-byte
/// window, then cut to length: no `memcpy` call per run.
#[inline(always)]
fn escape_chunk<const ASCII: bool>(
    out: &mut Vec<u8>,
    c: &[u8; 16],
    mut from: usize,
    to: usize,
    mut m: u32,
) -> Option<usize> {
    let mut window = [0u8; 32];
    window[..16].copy_from_slice(c);
    // `from` <= 16: a block of 16 bytes starts at every offset it can take.
    let run = |out: &mut Vec<u8>, from: usize, n: usize| {
        if let Some(block) = window.get(from..).and_then(|w| w.first_chunk::<16>()) {
            let len = out.len();
            out.extend_from_slice(block);
            out.truncate(len + n);
        }
    };
    while m != 0 {
        let k = m.trailing_zeros() as usize;
        run(out, from, k - from);
        let x = c.get(k).copied().unwrap_or(b' ');
        if ASCII && x >= 0x80 {
            return Some(k);
        }
        escape_byte(out, x);
        from = k + 1;
        m &= m - 1;
    }
    run(out, from, to - from);
    None
}

/// One byte that must be escaped.
#[inline(always)]
fn escape_byte(out: &mut Vec<u8>, x: u8) {
    match ESCAPE[usize::from(x)] {
        b'u' => {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(x >> 4)]);
            out.push(HEX[usize::from(x & 15)]);
        }
        e => out.extend_from_slice(&[b'\\', e]),
    }
}

/// `s` escaped for a JSON string (not quoted).
#[inline]
fn escaped_into(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 16);
    escape_run::<false>(out, s);
}

/// A JSON string.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    escaped_into(out, s.as_bytes());
    out.push(b'"');
}

/// `"0x<hex>"`.
pub fn write_hex(out: &mut Vec<u8>, b: &[u8]) {
    out.reserve(b.len() * 2 + 4);
    out.extend_from_slice(b"\"0x");
    for &x in b {
        out.push(HEX[usize::from(x >> 4)]);
        out.push(HEX[usize::from(x & 15)]);
    }
    out.push(b'"');
}

/// cp1252's 0x80..0x9F (the five it leaves undefined map to the C1 controls, as the
/// server's latin1 does).
const CP1252_80: [u16; 32] = [
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
];

fn write_latin1(out: &mut Vec<u8>, b: &[u8]) {
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &x) in b.iter().enumerate() {
        if x < 0x80 && ESCAPE[usize::from(x)] == 0 {
            continue;
        }
        escaped_into(out, &b[start..i]);
        if x < 0x80 {
            escaped_into(out, &b[i..=i]);
        } else {
            let cp = match CP1252_80.get(usize::from(x) - 0x80) {
                Some(&c) => u32::from(c),
                None => u32::from(x),
            };
            let c = char::from_u32(cp).unwrap_or('\u{fffd}');
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        start = i + 1;
    }
    escaped_into(out, &b[start..]);
    out.push(b'"');
}

/// String bytes of a column, the column's one way.
#[inline]
pub fn write_bytes(out: &mut Vec<u8>, b: &[u8], text: Text) {
    match text {
        Text::Utf8 => {
            // Most text is ASCII: copied as it is scanned, escapes written between runs;
            // UTF-8 is validated only from the first byte that is not ASCII.
            let start = out.len();
            out.reserve(b.len() + 18);
            out.push(b'"');
            let i = escape_run::<true>(out, b);
            if let Some(rest) = b.get(i..).filter(|r| !r.is_empty()) {
                if std::str::from_utf8(rest).is_err() {
                    out.truncate(start);
                    return write_hex(out, b);
                }
                escape_run::<false>(out, rest);
            }
            out.push(b'"');
        }
        Text::Latin1 => write_latin1(out, b),
        Text::Hex => write_hex(out, b),
    }
}

#[inline(always)]
fn write_int(out: &mut Vec<u8>, i: impl Into<i64>) {
    let len = out.len();
    out.extend_from_slice(&[0; 20]);
    let n = i64_at(&mut out[len..], i.into());
    out.truncate(len + n);
}

#[inline(always)]
fn write_uint(out: &mut Vec<u8>, u: impl Into<u64>) {
    let len = out.len();
    out.extend_from_slice(&[0; 20]);
    let n = u64_at(&mut out[len..], u.into());
    out.truncate(len + n);
}

fn write_f64(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        out.extend_from_slice(zmij::Buffer::new().format_finite(f).as_bytes());
    } else {
        write_str(out, &f.to_string());
    }
}

fn write_f32(out: &mut Vec<u8>, f: f32) {
    if f.is_finite() {
        out.extend_from_slice(zmij::Buffer::new().format_finite(f).as_bytes());
    } else {
        write_str(out, &f.to_string());
    }
}

/// `v` < 1_000_000 as six digits at `b[at..at + 6]`.
#[inline(always)]
fn six(b: &mut [u8], at: usize, v: u32) {
    two(b, at, v / 10_000);
    two(b, at + 2, (v / 100) % 100);
    two(b, at + 4, v % 100);
}

/// `v` as `width` decimal digits, zero-padded (all of them if there are more).
fn digits(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut v = v;
    let mut i = buf.len();
    while v >= 100 {
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DEC2[(v % 100) as usize]);
        v /= 100;
    }
    if v >= 10 {
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DEC2[v as usize]);
    } else if v > 0 {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    let start = (buf.len() - width.min(buf.len())).min(i);
    out.extend_from_slice(&buf[start..]);
}

fn fraction(out: &mut Vec<u8>, micros: u32) {
    if micros != 0 {
        out.push(b'.');
        digits(out, u64::from(micros), 6);
    }
}

fn date(out: &mut Vec<u8>, y: u64, m: u64, d: u64) {
    digits(out, y, 4);
    out.push(b'-');
    digits(out, m, 2);
    out.push(b'-');
    digits(out, d, 2);
}

fn clock(out: &mut Vec<u8>, h: u64, m: u64, s: u64, micros: u32) {
    digits(out, h, 2);
    out.push(b':');
    digits(out, m, 2);
    out.push(b':');
    digits(out, s, 2);
    fraction(out, micros);
}

/// A calendar date and a time of day, each part within its printed width: the common
/// case, rendered into one fixed window.
#[derive(Clone, Copy)]
struct Stamp {
    date: (u32, u32, u32),
    /// Hours, minutes, seconds, microseconds; `None` for a DATE.
    time: Option<(u32, u32, u32, u32)>,
}

impl Stamp {
    fn fits(&self) -> bool {
        let (y, m, d) = self.date;
        let time_fits = self
            .time
            .is_none_or(|(h, mi, s, us)| h < 100 && mi < 100 && s < 100 && us < 1_000_000);
        y < 10_000 && m < 100 && d < 100 && time_fits
    }

    /// `"YYYY-MM-DD[ hh:mm:ss[.ffffff]]"`, when [`Stamp::fits`]; else the general way.
    #[inline]
    fn write(self, out: &mut Vec<u8>) {
        let (y, m, d) = self.date;
        if !self.fits() {
            out.push(b'"');
            date(out, y.into(), m.into(), d.into());
            if let Some((h, mi, s, us)) = self.time {
                out.push(b' ');
                clock(out, h.into(), mi.into(), s.into(), us);
            }
            out.push(b'"');
            return;
        }
        put::<28>(out, |b| {
            b[0] = b'"';
            two(b, 1, y / 100);
            two(b, 3, y % 100);
            b[5] = b'-';
            two(b, 6, m);
            b[8] = b'-';
            two(b, 9, d);
            let Some((h, mi, s, us)) = self.time else {
                b[11] = b'"';
                return 12;
            };
            b[11] = b' ';
            two(b, 12, h);
            b[14] = b':';
            two(b, 15, mi);
            b[17] = b':';
            two(b, 18, s);
            if us == 0 {
                b[20] = b'"';
                return 21;
            }
            b[20] = b'.';
            six(b, 21, us);
            b[27] = b'"';
            28
        });
    }
}

/// `"[-]hh:mm:ss[.ffffff]"` (TIME: hours may exceed 99).
#[inline]
fn write_time(out: &mut Vec<u8>, negative: bool, h: u32, mi: u32, s: u32, us: u32) {
    if h >= 1000 || mi >= 100 || s >= 100 || us >= 1_000_000 {
        out.push(b'"');
        if negative {
            out.push(b'-');
        }
        clock(out, h.into(), mi.into(), s.into(), us);
        out.push(b'"');
        return;
    }
    put::<20>(out, |b| {
        b[0] = b'"';
        let mut i = 1;
        if negative {
            b[i] = b'-';
            i += 1;
        }
        if h >= 100 {
            b[i] = b'0' + (h / 100) as u8;
            i += 1;
        }
        two(b, i, h % 100);
        b[i + 2] = b':';
        two(b, i + 3, mi);
        b[i + 5] = b':';
        two(b, i + 6, s);
        i += 8;
        if us != 0 {
            b[i] = b'.';
            six(b, i + 1, us);
            i += 7;
        }
        b[i] = b'"';
        i + 1
    });
}

/// A value decoded from the binlog, for column `col`.
#[inline(always)]
pub fn write_value(out: &mut Vec<u8>, v: &Value, col: &Column) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Int { .. } => {
            if col.unsigned {
                write_uint(out, v.as_u64().unwrap_or(0));
            } else {
                write_int(out, v.as_i64().unwrap_or(0));
            }
        }
        Value::Float(f) => write_f32(out, *f),
        Value::Double(f) => write_f64(out, *f),
        Value::Decimal(s) => write_str(out, s),
        Value::Bytes(b) => write_bytes(out, b, col.text),
        Value::Json(b) => write_json(out, b),
        Value::JsonDiff(d) => write_str(out, d),
        Value::Geometry(b) => write_hex(out, b),
        Value::Date { year, month, day } => Stamp {
            date: (u32::from(*year), u32::from(*month), u32::from(*day)),
            time: None,
        }
        .write(out),
        Value::Time {
            negative,
            hours,
            minutes,
            seconds,
            micros,
            ..
        } => {
            let (m, s) = (u32::from(*minutes), u32::from(*seconds));
            write_time(out, *negative, *hours, m, s, *micros);
        }
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            ..
        } => Stamp {
            date: (u32::from(*year), u32::from(*month), u32::from(*day)),
            time: Some((
                u32::from(*hour),
                u32::from(*minute),
                u32::from(*second),
                *micros,
            )),
        }
        .write(out),
        Value::Timestamp {
            seconds, micros, ..
        } => {
            if *seconds == 0 && *micros == 0 {
                out.extend_from_slice(b"\"0000-00-00 00:00:00\"");
            } else {
                let s = i64::from(*seconds);
                let (y, m, d) = crate::clock::civil_from_days(s.div_euclid(86_400));
                let t = s.rem_euclid(86_400) as u32;
                Stamp {
                    // u32 seconds reach the year 2106: always positive and 4 digits.
                    date: (y.clamp(0, 99_999) as u32, m, d),
                    time: Some((t / 3600, (t / 60) % 60, t % 60, *micros)),
                }
                .write(out);
            }
        }
        Value::Year(y) => write_uint(out, *y),
        Value::Enum(i) => write_uint(out, *i),
        Value::Set(m) => write_uint(out, *m),
        Value::Bit(b) => write_uint(out, *b),
    }
}

/// MySQL binary JSON as the document it holds; hex when it cannot be decoded.
fn write_json(out: &mut Vec<u8>, b: &[u8]) {
    let start = out.len();
    if crate::binlog::json::write_text(b, out).is_err() {
        out.truncate(start);
        write_hex(out, b);
    }
}

/// A value borrowed from its rows event (the `decode` fast path).
#[inline(always)]
pub fn write_value_ref(
    out: &mut Vec<u8>,
    v: &ValueRef<'_>,
    col: &Column,
) -> Result<(), DecodeErrorKind> {
    match v {
        ValueRef::Owned(v) => write_value(out, v, col),
        ValueRef::Bytes(b) => write_bytes(out, b, col.text),
        ValueRef::Inflated(b) => write_bytes(out, b, col.text),
        ValueRef::Json(b) => write_json(out, b),
        ValueRef::Geometry(b) => write_hex(out, b),
        ValueRef::Decimal {
            raw,
            precision,
            scale,
        } => {
            out.push(b'"');
            crate::binlog::value::decimal_into(&mut Cursor::new(raw), *precision, *scale, out)?;
            out.push(b'"');
        }
    }
    Ok(())
}

/// A value read back from the replica over the binary protocol (the audit of deleted
/// rows), rendered as the same column's binlog value would be.
pub fn write_mysql_value(out: &mut Vec<u8>, v: &mysql::Value, col: &Column) {
    use mysql::Value as M;
    match v {
        M::NULL => out.extend_from_slice(b"null"),
        M::Int(i) => write_int(out, *i),
        M::UInt(u) => write_uint(out, *u),
        M::Float(f) => write_f32(out, *f),
        M::Double(f) => write_f64(out, *f),
        M::Bytes(b) => match col.data_type.as_str() {
            "decimal" | "numeric" => write_str(out, &String::from_utf8_lossy(b)),
            "bit" => write_uint(
                out,
                b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
            ),
            "json" if serde_json::from_slice::<&RawValue>(b).is_ok() => {
                out.extend_from_slice(b.trim_ascii())
            }
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => write_hex(out, b),
            _ => write_bytes(out, b, col.text),
        },
        M::Date(y, mo, d, h, mi, s, us) => Stamp {
            date: (u32::from(*y), u32::from(*mo), u32::from(*d)),
            time: (col.data_type != "date")
                .then(|| (u32::from(*h), u32::from(*mi), u32::from(*s), *us)),
        }
        .write(out),
        M::Time(neg, days, h, mi, s, us) => {
            out.push(b'"');
            if *neg {
                out.push(b'-');
            }
            let hours = u64::from(*days) * 24 + u64::from(*h);
            clock(out, hours, u64::from(*mi), u64::from(*s), *us);
            out.push(b'"');
        }
    }
}

/// One value of an image with its key before it (`"name":` or `, name=`); the image's
/// `first` value goes without the separator. For renderers that write each value as it
/// is decoded (`RowsEvent::stream`).
#[inline(always)]
pub fn write_entry<const JSON: bool>(
    out: &mut Vec<u8>,
    v: &ValueRef<'_>,
    col: &Column,
    first: bool,
) -> Result<(), DecodeErrorKind> {
    let skip = match (first, JSON) {
        (false, _) => 0,
        (true, true) => 1,
        (true, false) => 2,
    };
    if JSON { &col.json_key } else { &col.text_key }.put(out, skip);
    write_value_ref(out, v, col)
}

/// One image of owned values (events inside a TRANSACTION_PAYLOAD, dead letters), as
/// `decode` writes a borrowed one value by value with [`write_entry`].
pub fn write_owned_image(out: &mut Vec<u8>, row: &[Option<Value>], cols: &[Column], json: bool) {
    out.push(if json { b'{' } else { b'(' });
    let mut skip = if json { 1 } else { 2 };
    for (v, c) in row.iter().zip(cols) {
        let Some(v) = v else { continue };
        if json { &c.json_key } else { &c.text_key }.put(out, skip);
        skip = 0;
        write_value(out, v, c);
    }
    out.push(if json { b'}' } else { b')' });
}

/// The bytes of one rows event's change events around their images: a [`ChangeEvent`]
/// serialized once with placeholders, so `decode` writes exactly the serde shape.
#[derive(Debug, Clone)]
pub struct EventFrame {
    /// Up to and including `"before":`.
    head: Vec<u8>,
    /// From after the before image up to and including `"after":`.
    middle: Vec<u8>,
    /// The rest, with the newline.
    tail: Vec<u8>,
}

const BEFORE_MARK: &str = "\u{1}before";
const AFTER_MARK: &str = "\u{1}after";

/// The placeholders as serde_json writes them (`\u{1}` is escaped), after their keys; a
/// test checks them against serde_json.
const BEFORE_KEY: &[u8] = b"\"before\":\"\\u0001before\"";
const AFTER_KEY: &[u8] = b"\"after\":\"\\u0001after\"";
/// The placeholder values alone, the ends of the keys above.
const BEFORE_VALUE_LEN: usize = "\"\\u0001before\"".len();
const AFTER_VALUE_LEN: usize = "\"\\u0001after\"".len();

/// Where `needle` starts in `hay`, checking whole windows only where `hay` has the
/// needle's backslash (rare in a frame), not a memcmp per offset.
fn find_key(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let anchor = needle.iter().position(|&x| x == b'\\')?;
    let mut from = anchor;
    while let Some(k) = hay.get(from..)?.iter().position(|&x| x == b'\\') {
        let at = from + k - anchor;
        if hay.get(at..at + needle.len()) == Some(needle) {
            return Some(at);
        }
        from += k + 1;
    }
    None
}

impl EventFrame {
    pub fn new(ev: &ChangeEvent<'_, ()>) -> EventFrame {
        let marked = ChangeEvent {
            op: ev.op,
            schema: ev.schema,
            table: ev.table,
            before: Some(BEFORE_MARK),
            after: Some(AFTER_MARK),
            source: ev.source.clone(),
            errno: ev.errno,
            plan_id: ev.plan_id,
            ts: ev.ts,
        };
        // One allocation for the usual frame (one per rows event).
        let mut text = Vec::with_capacity(512);
        if serde_json::to_writer(&mut text, &marked).is_err() {
            text.clear();
        }
        // The keys with their unescaped quotes only occur as structure, never inside a
        // string value (whose quotes are escaped).
        let i = find_key(&text, BEFORE_KEY);
        let j = i.and_then(|i| {
            let from = i + BEFORE_KEY.len();
            find_key(text.get(from..)?, AFTER_KEY).map(|j| from + j)
        });
        match (i, j) {
            (Some(i), Some(j)) => {
                let after_b = i + BEFORE_KEY.len();
                let after_a = j + AFTER_KEY.len();
                let mut tail = text[after_a..].to_vec();
                tail.push(b'\n');
                let middle = text[after_b..after_a - AFTER_VALUE_LEN].to_vec();
                text.truncate(after_b - BEFORE_VALUE_LEN);
                EventFrame {
                    head: text,
                    middle,
                    tail,
                }
            }
            // Unreachable with the derive above; an empty frame shows up in every test.
            _ => EventFrame {
                head: Vec::new(),
                middle: Vec::new(),
                tail: Vec::new(),
            },
        }
    }

    pub fn head(&self) -> &[u8] {
        &self.head
    }
    pub fn middle(&self) -> &[u8] {
        &self.middle
    }
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One borrowed image as `decode` writes it, value by value.
    fn write_image(
        out: &mut Vec<u8>,
        row: &[Option<ValueRef<'_>>],
        cols: &[Column],
        json: bool,
    ) -> Result<(), DecodeErrorKind> {
        out.push(if json { b'{' } else { b'(' });
        let mut first = true;
        for (v, c) in row.iter().zip(cols) {
            let Some(v) = v else { continue };
            if json {
                write_entry::<true>(out, v, c, first)?;
            } else {
                write_entry::<false>(out, v, c, first)?;
            }
            first = false;
        }
        out.push(if json { b'}' } else { b')' });
        Ok(())
    }

    fn col(name: &str, charset: Option<&str>, data_type: &str, unsigned: bool) -> Column {
        Column::new(&ColumnInfo {
            name: name.into(),
            data_type: data_type.into(),
            unsigned,
            nullable: true,
            generated: false,
            charset: charset.map(Into::into),
            binary_len: None,
            has_default: false,
        })
    }

    fn render(v: &Value, c: &Column) -> String {
        let mut out = Vec::new();
        write_value(&mut out, v, c);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        let all: String = (0u8..0x80).map(char::from).collect::<String>() + "é😀\u{2028}";
        let mut out = Vec::new();
        write_str(&mut out, &all);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&all).unwrap()
        );
    }

    #[test]
    fn word_at_a_time_escaping_matches_serde_json_at_every_offset() {
        let utf8 = col("t", Some("utf8mb4"), "text", false);
        for special in ["\"", "\\", "\n", "\u{1}", "\u{1f}", "é", "\u{7f}", " "] {
            for at in 0..20 {
                let s = format!("{}{special}{}", "a".repeat(at), "b".repeat(19 - at));
                let mut out = Vec::new();
                write_bytes(&mut out, s.as_bytes(), utf8.text);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    serde_json::to_string(&s).unwrap(),
                    "{s:?}"
                );
            }
        }
    }

    /// What a utf8 column's bytes must render as: serde_json's string, or hex.
    fn reference_utf8(b: &[u8]) -> String {
        match std::str::from_utf8(b) {
            Ok(s) => serde_json::to_string(s).unwrap(),
            Err(_) => format!(
                "\"0x{}\"",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
        }
    }

    /// `b` as a utf8 column renders as [`reference_utf8`] says, after text already in
    /// the buffer (as in a row).
    fn assert_renders_as_serde_json(b: &[u8]) {
        let mut out = b"x".to_vec();
        write_bytes(&mut out, b, Text::Utf8);
        let want = format!("x{}", reference_utf8(b));
        assert_eq!(String::from_utf8_lossy(&out), want, "{b:?}");
    }

    #[test]
    fn block_scanning_matches_serde_json_at_every_length_and_offset() {
        let specials: [&[u8]; 10] = [
            b"\"",
            b"\\",
            b"\n",
            b"\x01",
            b"\x1f",
            b"\x7f",
            "é".as_bytes(),
            "😀".as_bytes(),
            b"\xff",
            b"\xc3",
        ];
        for len in 0..=50 {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut out = Vec::new();
            write_bytes(&mut out, &base, Text::Utf8);
            assert_eq!(String::from_utf8(out).unwrap(), reference_utf8(&base));
            for at in 0..len {
                for sp in specials {
                    for second in [None, Some(len - 1), Some(at / 2)] {
                        let mut b = base.clone();
                        b.splice(at..at + 1, sp.iter().copied());
                        if let Some(j) = second.filter(|&j| j < b.len()) {
                            b[j] = b'"';
                        }
                        assert_renders_as_serde_json(&b);
                    }
                }
            }
        }
    }

    #[test]
    fn dense_escapes_match_serde_json() {
        // JSON text in a TEXT column: several escapes in each 16-byte block.
        let alphabet: [&[u8]; 7] = [b"\"", b"a", b"\n", b"\\", b"\x01", "é".as_bytes(), b"b"];
        for len in 0..=70 {
            for step in [1, 2, 3, 5] {
                let b: Vec<u8> = (0..len)
                    .flat_map(|i| {
                        alphabet[(i * step + i / 7) % alphabet.len()]
                            .iter()
                            .copied()
                    })
                    .collect();
                for ascii_only in [false, true] {
                    let b: Vec<u8> = if ascii_only {
                        b.iter().copied().filter(u8::is_ascii).collect()
                    } else {
                        b.clone()
                    };
                    assert_renders_as_serde_json(&b);
                }
            }
        }
    }

    #[test]
    fn sse2_and_portable_masks_agree() {
        let bytes = [
            b'a', b' ', b'~', b'"', b'\\', 0, 0x1f, 0x20, 0x7f, 0x80, 0xc3, 0xff,
        ];
        for at in 0..16 {
            for &x in &bytes {
                for &y in &bytes {
                    let mut c = [b'a'; 16];
                    c[at] = x;
                    c[(at * 7 + 3) % 16] = y;
                    for ascii in [false, true] {
                        let want = c.iter().enumerate().fold(0u32, |m, (j, &b)| {
                            let special = ESCAPE[usize::from(b)] != 0 || (ascii && b >= 0x80);
                            if special { m | 1 << j } else { m }
                        });
                        assert_eq!(special_mask(&c, ascii), want, "{c:?} {ascii}");
                        assert_eq!(special_mask_portable(&c, ascii), want, "{c:?} {ascii}");
                    }
                }
            }
        }
    }

    #[test]
    fn text_column_names_are_inert_json_keys_escaped() {
        let c = col("a\nb\\", Some("utf8mb4"), "varchar", false);
        let row = [Some(ValueRef::Bytes(b"v"))];
        let mut text = Vec::new();
        write_image(&mut text, &row, std::slice::from_ref(&c), false).unwrap();
        assert_eq!(String::from_utf8(text).unwrap(), "(a\\nb\\\\=\"v\")");
        let mut json = Vec::new();
        write_image(&mut json, &row, &[c], true).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["a\nb\\"], "v");
    }

    #[test]
    fn one_rendering_per_column_whatever_the_bytes() {
        let vector = col("v", None, "vector", false);
        // Bytes that happen to be valid UTF-8 stay hex in a binary column.
        assert_eq!(
            render(&Value::Bytes(b"abc".to_vec()), &vector),
            "\"0x616263\""
        );
        assert_eq!(render(&Value::Bytes(vec![0, 0x80]), &vector), "\"0x0080\"");
        let unknown = col("u", Some("unknown"), "", false);
        assert_eq!(
            render(&Value::Bytes(b"two".to_vec()), &unknown),
            "\"0x74776f\""
        );
        let utf8 = col("t", Some("utf8mb4"), "varchar", false);
        assert_eq!(render(&Value::Bytes("ünï\"".into()), &utf8), "\"ünï\\\"\"");
        let latin1 = col("l", Some("latin1"), "varchar", false);
        assert_eq!(
            render(&Value::Bytes(vec![b'a', 0x80, 0xe9, 0x81, b'"']), &latin1),
            "\"a€é\u{81}\\\"\""
        );
    }

    #[test]
    fn numbers_and_temporal_values() {
        let s = col("s", None, "int", false);
        let u = col("u", None, "int", true);
        let v = Value::Int {
            raw: 0xFFFF_FFFB,
            width: 4,
        };
        assert_eq!(render(&v, &s), "-5");
        assert_eq!(render(&v, &u), "4294967291");
        assert_eq!(render(&Value::Float(2.71), &s), "2.71");
        assert_eq!(
            render(&Value::Double(1e300), &s),
            serde_json::to_string(&1e300).unwrap()
        );
        assert_eq!(render(&Value::Double(f64::NAN), &s), "\"NaN\"");
        let dt = Value::DateTime {
            year: 2024,
            month: 2,
            day: 29,
            hour: 23,
            minute: 59,
            second: 59,
            micros: 999_999,
            fsp: 6,
        };
        assert_eq!(render(&dt, &s), "\"2024-02-29 23:59:59.999999\"");
        let t = Value::Time {
            negative: true,
            hours: 838,
            minutes: 59,
            seconds: 59,
            micros: 0,
            fsp: 2,
        };
        assert_eq!(render(&t, &s), "\"-838:59:59\"");
        let ts = Value::Timestamp {
            seconds: 1_700_000_000,
            micros: 123_000,
            fsp: 3,
        };
        assert_eq!(render(&ts, &s), "\"2023-11-14 22:13:20.123000\"");
        // The replica's rendering of the same values agrees.
        let mut out = Vec::new();
        let c = col("dt", None, "datetime", false);
        write_mysql_value(
            &mut out,
            &mysql::Value::Date(2024, 2, 29, 23, 59, 59, 999_999),
            &c,
        );
        assert_eq!(out, render(&dt, &c).as_bytes());
    }

    /// The renderings the digit tables replace, spelled with `format!`.
    fn reference_digits(v: u64, width: usize) -> String {
        format!("{v:0width$}")
    }

    #[test]
    fn digit_tables_match_format() {
        for v in (0..=10_000u64).chain([99_999, 100_000, 999_999, 1_000_000, u64::MAX]) {
            for width in [1, 2, 4, 6, 20] {
                let mut out = Vec::new();
                digits(&mut out, v, width);
                assert_eq!(String::from_utf8(out).unwrap(), reference_digits(v, width));
            }
        }
    }

    fn reference_stamp(y: u32, m: u32, d: u32, time: Option<(u32, u32, u32, u32)>) -> String {
        let mut s = format!("\"{y:04}-{m:02}-{d:02}");
        if let Some((h, mi, sec, us)) = time {
            s += &format!(" {h:02}:{mi:02}:{sec:02}");
            if us != 0 {
                s += &format!(".{us:06}");
            }
        }
        s + "\""
    }

    #[test]
    fn temporal_windows_match_format_at_the_edges() {
        let years = [
            0, 1, 9, 10, 99, 100, 999, 1000, 2024, 9999, 10_000, 16_383, 65_535,
        ];
        let small = [0, 1, 9, 10, 31, 59, 99, 100, 255];
        let micros = [0, 1, 9, 10, 99_999, 100_000, 999_999, 1_000_000, 16_777_215];
        for &y in &years {
            for &x in &small {
                let date = Stamp {
                    date: (y, x, 31),
                    time: None,
                };
                let mut out = Vec::new();
                date.write(&mut out);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    reference_stamp(y, x, 31, None)
                );
                for &us in &micros {
                    let time = Some((x, 59, x, us));
                    let mut out = Vec::new();
                    Stamp {
                        date: (y, 1, x),
                        time,
                    }
                    .write(&mut out);
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        reference_stamp(y, 1, x, time)
                    );
                }
            }
        }
        for h in [0, 1, 9, 10, 99, 100, 838, 999, 1000, 87_839, u32::MAX] {
            for &us in &micros {
                for negative in [false, true] {
                    for (mi, s) in [(0, 0), (59, 59), (99, 100), (255, 7)] {
                        let mut out = Vec::new();
                        write_time(&mut out, negative, h, mi, s, us);
                        let mut want =
                            format!("\"{}{h:02}:{mi:02}:{s:02}", if negative { "-" } else { "" });
                        if us != 0 {
                            want += &format!(".{us:06}");
                        }
                        want.push('"');
                        assert_eq!(String::from_utf8(out).unwrap(), want);
                    }
                }
            }
        }
    }

    #[test]
    fn images_with_keys_of_every_length() {
        // Names around the fixed-size key block, one needing escapes, and columns the
        // image does not carry, first and in the middle.
        let names: Vec<String> = (0..40)
            .map(|n| "k".repeat(n))
            .chain(["\"q\\\n".to_string(), "é".repeat(20)])
            .collect();
        for skip_first in [false, true] {
            let cols: Vec<Column> = names.iter().map(|n| col(n, None, "int", false)).collect();
            let row: Vec<Option<ValueRef<'_>>> = (0..names.len())
                .map(|i| {
                    let missing = (skip_first && i == 0) || i % 7 == 3;
                    (!missing).then_some(ValueRef::Owned(Value::Int {
                        raw: i as u64,
                        width: 4,
                    }))
                })
                .collect();
            let present = || {
                names
                    .iter()
                    .zip(&row)
                    .enumerate()
                    .filter(|(_, (_, v))| v.is_some())
            };
            let mut json = Vec::new();
            write_image(&mut json, &row, &cols, true).unwrap();
            let mut want = String::from("{");
            for (k, (i, (n, _))) in present().enumerate() {
                if k > 0 {
                    want.push(',');
                }
                want += &format!("{}:{i}", serde_json::to_string(n).unwrap());
            }
            want.push('}');
            assert_eq!(String::from_utf8(json).unwrap(), want);
            let mut text = Vec::new();
            write_image(&mut text, &row, &cols, false).unwrap();
            let fields: Vec<String> = present()
                .map(|(i, (n, _))| format!("{}={i}", crate::record::inert(n)))
                .collect();
            assert_eq!(
                String::from_utf8(text).unwrap(),
                format!("({})", fields.join(", "))
            );
        }
    }

    #[test]
    fn frame_keys_are_serde_json_spelling() {
        let b = serde_json::to_vec(BEFORE_MARK).unwrap();
        let a = serde_json::to_vec(AFTER_MARK).unwrap();
        assert_eq!(BEFORE_KEY, [b"\"before\":".as_slice(), &b].concat());
        assert_eq!(AFTER_KEY, [b"\"after\":".as_slice(), &a].concat());
        assert_eq!(BEFORE_VALUE_LEN, b.len());
        assert_eq!(AFTER_VALUE_LEN, a.len());
        // A backslash before the key is a decoy anchor; a lone placeholder is no key.
        let hay = [b"ab\\".as_slice(), BEFORE_KEY].concat();
        assert_eq!(find_key(&hay, BEFORE_KEY), Some(3));
        assert_eq!(find_key(&hay[3 + 9..], BEFORE_KEY), None);
    }

    #[test]
    fn the_frame_is_the_serde_shape() {
        let source = EventSource {
            file: Some("relay\"bin.000001"),
            pos: Some(4),
            end_log_pos: Some(100),
            server_id: Some(1),
            gtid: Some("0-1-2"),
            event: Some("WRITE_ROWS_EVENT_V1"),
            ..Default::default()
        };
        let ev = ChangeEvent {
            op: "insert",
            schema: "before\":",
            table: "t",
            before: None,
            after: None,
            source,
            errno: None,
            plan_id: None,
            ts: None,
        };
        let f = EventFrame::new(&ev);
        let mut line = f.head().to_vec();
        line.extend_from_slice(b"null");
        line.extend_from_slice(f.middle());
        line.extend_from_slice(b"{\"a\":1}");
        line.extend_from_slice(f.tail());
        let mut want = serde_json::to_vec(&ChangeEvent {
            after: Some(serde_json::json!({"a": 1})),
            before: None,
            ..ev.clone_with()
        })
        .unwrap();
        want.push(b'\n');
        assert_eq!(
            String::from_utf8(line).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    impl<'a> ChangeEvent<'a, ()> {
        fn clone_with<I>(&self) -> ChangeEvent<'a, I> {
            ChangeEvent {
                op: self.op,
                schema: self.schema,
                table: self.table,
                before: None,
                after: None,
                source: self.source.clone(),
                errno: self.errno,
                plan_id: self.plan_id,
                ts: self.ts,
            }
        }
    }
}
