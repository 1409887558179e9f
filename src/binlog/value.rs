//! Column values as rows events encode them, decoded without knowing the column's
//! signedness or charset (the binlog does not carry them unless binlog_row_metadata=FULL):
//! integers keep their raw bits and width, strings their bytes. `sql.rs` renders them with
//! the schema read from the replica.

use super::DecodeErrorKind;
use super::cursor::{Cursor, Result};
pub use super::decimal::decimal_into;
use super::decimal::{decimal, decimal_size};
use super::table_map::{ColumnDef, ColumnType};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// An integer of `width` bytes, as raw little-endian bits: signed or unsigned is the
    /// schema's business (see [`Value::as_i64`], [`Value::as_u64`]).
    Int {
        raw: u64,
        width: u8,
    },
    Float(f32),
    Double(f64),
    /// DECIMAL rendered exactly as text, e.g. `-12.340`.
    Decimal(String),
    /// CHAR/VARCHAR/BINARY/VARBINARY/TEXT/BLOB bytes, as stored (no charset conversion).
    Bytes(Vec<u8>),
    /// MySQL binary JSON, as stored (see `binlog::json::to_text`).
    Json(Vec<u8>),
    /// A partial JSON update (PARTIAL_UPDATE_ROWS): the diffs, as MySQL functions
    /// applied to the column, e.g. `JSON_REPLACE(@, '$.a', 1)`.
    JsonDiff(String),
    /// SRID (4 bytes LE) followed by WKB: the server's internal geometry format.
    Geometry(Vec<u8>),
    Date {
        year: u16,
        month: u8,
        day: u8,
    },
    /// TIME, possibly negative and over 24 hours.
    Time {
        negative: bool,
        hours: u32,
        minutes: u8,
        seconds: u8,
        micros: u32,
        fsp: u8,
    },
    DateTime {
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micros: u32,
        fsp: u8,
    },
    /// TIMESTAMP: seconds since the epoch, UTC.
    Timestamp {
        seconds: u32,
        micros: u32,
        fsp: u8,
    },
    /// YEAR; 0 means the zero year `0000`.
    Year(u16),
    /// ENUM by its 1-based index (0 = the empty error value).
    Enum(u16),
    /// SET as its bit mask.
    Set(u64),
    /// BIT(n), as an unsigned number.
    Bit(u64),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The integer read as signed, sign-extended from its width.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int { raw, width } => {
                let shift = 64 - u32::from(width) * 8;
                Some(((raw << shift) as i64) >> shift)
            }
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int { raw, .. } => Some(raw),
            _ => None,
        }
    }
}

/// A value as decoded, borrowing strings and DECIMAL digits from the event: no
/// allocation per value (compressed columns excepted). [`ValueRef::into_owned`] gives the
/// owned [`Value`] the planner keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueRef<'a> {
    /// Values that own nothing on the heap (integers, floats, temporal, ENUM/SET/BIT,
    /// NULL), or that had to be built (JSON diffs).
    Owned(Value),
    Bytes(&'a [u8]),
    Json(&'a [u8]),
    Geometry(&'a [u8]),
    /// DECIMAL in its binary form, rendered to text by `into_owned`.
    Decimal {
        raw: &'a [u8],
        precision: u8,
        scale: u8,
    },
    /// A MariaDB compressed column, inflated.
    Inflated(Vec<u8>),
}

impl ValueRef<'_> {
    #[inline(always)]
    pub fn into_owned(self) -> Result<Value> {
        Ok(match self {
            ValueRef::Owned(v) => v,
            ValueRef::Bytes(b) => Value::Bytes(b.to_vec()),
            ValueRef::Json(b) => Value::Json(b.to_vec()),
            ValueRef::Geometry(b) => Value::Geometry(b.to_vec()),
            ValueRef::Decimal {
                raw,
                precision,
                scale,
            } => Value::Decimal(decimal(&mut Cursor::new(raw), precision, scale)?),
            ValueRef::Inflated(b) => Value::Bytes(b),
        })
    }
}

/// Decodes one non-NULL value of column `def` (the `index`th, 0-based, for errors).
#[inline(always)]
pub fn decode(c: &mut Cursor<'_>, def: &ColumnDef, index: usize) -> Result<Value> {
    decode_ref(c, def, index)?.into_owned()
}

/// Decodes one non-NULL value without copying its bytes. Inlined: returning the enum
/// through memory caused store-forwarding stalls that cost more than the decoding.
#[inline(always)]
pub fn decode_ref<'a>(c: &mut Cursor<'a>, def: &ColumnDef, index: usize) -> Result<ValueRef<'a>> {
    use ValueRef::Owned as S;
    let meta = def.meta;
    let t = def.column_type;
    Ok(match t {
        ColumnType::TINY => S(int(c, 1)?),
        ColumnType::SHORT => S(int(c, 2)?),
        ColumnType::INT24 => S(int(c, 3)?),
        ColumnType::LONG => S(int(c, 4)?),
        ColumnType::LONGLONG => S(int(c, 8)?),
        ColumnType::FLOAT => S(Value::Float(f32::from_bits(c.u32()?))),
        ColumnType::DOUBLE => S(Value::Double(f64::from_bits(c.uint_le(8)?))),
        ColumnType::NEWDECIMAL => {
            let precision = (meta >> 8) as u8;
            let scale = (meta & 0xff) as u8;
            let raw = c.take(decimal_size(precision, scale)?)?;
            ValueRef::Decimal {
                raw,
                precision,
                scale,
            }
        }
        ColumnType::VARCHAR | ColumnType::VAR_STRING => {
            let len = if meta < 256 {
                usize::from(c.u8()?)
            } else {
                usize::from(c.u16()?)
            };
            ValueRef::Bytes(c.take(len)?)
        }
        ColumnType::STRING => {
            let byte0 = (meta >> 8) as u8;
            let byte1 = (meta & 0xff) as u8;
            // CHAR(n) of more than 255 bytes folds the high bits of its length into the
            // type byte: real type = byte0 | 0x30, length bits = (byte0 & 0x30) ^ 0x30.
            if byte0 == ColumnType::ENUM.0 {
                S(Value::Enum(c.uint_le(usize::from(byte1.clamp(1, 2)))? as u16))
            } else if byte0 == ColumnType::SET.0 {
                S(Value::Set(c.uint_le(usize::from(byte1.clamp(1, 8)))?))
            } else {
                let max_len = ((u16::from(byte0 & 0x30) ^ 0x30) << 4) | u16::from(byte1);
                let len = if max_len > 255 {
                    usize::from(c.u16()?)
                } else {
                    usize::from(c.u8()?)
                };
                ValueRef::Bytes(c.take(len)?)
            }
        }
        ColumnType::ENUM => S(Value::Enum(c.uint_le(usize::from((meta & 0xff).clamp(1, 2) as u8))? as u16)),
        ColumnType::SET => S(Value::Set(c.uint_le(usize::from((meta & 0xff).clamp(1, 8) as u8))?)),
        ColumnType::BLOB
        | ColumnType::TINY_BLOB
        | ColumnType::MEDIUM_BLOB
        | ColumnType::LONG_BLOB
        // MySQL 9 VECTOR: length-prefixed like a BLOB, 4-byte floats inside.
        | ColumnType::VECTOR => ValueRef::Bytes(blob(c, meta, t, index)?),
        ColumnType::JSON => ValueRef::Json(blob(c, meta, t, index)?),
        ColumnType::VARCHAR_COMPRESSED => {
            let len = if meta < 256 {
                usize::from(c.u8()?)
            } else {
                usize::from(c.u16()?)
            };
            ValueRef::Inflated(super::compress::uncompress_column(c.take(len)?)?)
        }
        ColumnType::BLOB_COMPRESSED => {
            ValueRef::Inflated(super::compress::uncompress_column(blob(c, meta, t, index)?)?)
        }
        ColumnType::GEOMETRY => ValueRef::Geometry(blob(c, meta, t, index)?),
        ColumnType::BIT => {
            let bits = usize::from(meta >> 8) + usize::from(meta & 0xff) * 8;
            let v = c.uint_be(bits.div_ceil(8).min(8))?;
            if bits > 64 {
                return Err(DecodeErrorKind::Invalid(format!(
                    "BIT column {} declares {bits} bits",
                    index + 1
                )));
            }
            S(Value::Bit(v))
        }
        ColumnType::YEAR => {
            let y = c.u8()?;
            S(Value::Year(if y == 0 { 0 } else { 1900 + u16::from(y) }))
        }
        ColumnType::DATE | ColumnType::NEWDATE => {
            let v = c.uint_le(3)? as u32;
            S(Value::Date {
                year: (v >> 9) as u16,
                month: ((v >> 5) & 15) as u8,
                day: (v & 31) as u8,
            })
        }
        ColumnType::TIME => {
            // Pre-5.6 TIME: a 3-byte signed integer HHMMSS.
            let raw = c.uint_le(3)? as u32;
            let v = ((raw << 8) as i32) >> 8;
            let a = v.unsigned_abs();
            S(Value::Time {
                negative: v < 0,
                hours: a / 10000,
                minutes: ((a / 100) % 100) as u8,
                seconds: (a % 100) as u8,
                micros: 0,
                fsp: 0,
            })
        }
        ColumnType::DATETIME => {
            // Pre-5.6 DATETIME: an 8-byte integer YYYYMMDDhhmmss.
            let v = c.uint_le(8)?;
            let (date, time) = (v / 1_000_000, v % 1_000_000);
            S(Value::DateTime {
                year: (date / 10000) as u16,
                month: ((date / 100) % 100) as u8,
                day: (date % 100) as u8,
                hour: (time / 10000) as u8,
                minute: ((time / 100) % 100) as u8,
                second: (time % 100) as u8,
                micros: 0,
                fsp: 0,
            })
        }
        ColumnType::TIMESTAMP => S(Value::Timestamp {
            seconds: c.u32()?,
            micros: 0,
            fsp: 0,
        }),
        ColumnType::TIMESTAMP2 => {
            let fsp = fsp_of(meta, index)?;
            let seconds = c.uint_be(4)? as u32;
            let micros = frac(c, fsp)?;
            S(Value::Timestamp {
                seconds,
                micros,
                fsp,
            })
        }
        ColumnType::DATETIME2 => {
            let fsp = fsp_of(meta, index)?;
            // 40 bits big-endian, offset by 2^39: sign, year*13+month (17), day (5),
            // hour (5), minute (6), second (6).
            let int_part = c.uint_be(5)? as i64 - 0x80_0000_0000;
            let micros = frac(c, fsp)?;
            let v = int_part.unsigned_abs();
            let ymd = v >> 17;
            let ym = ymd >> 5;
            let hms = v % (1 << 17);
            S(Value::DateTime {
                year: (ym / 13) as u16,
                month: (ym % 13) as u8,
                day: (ymd % 32) as u8,
                hour: (hms >> 12) as u8,
                minute: ((hms >> 6) % 64) as u8,
                second: (hms % 64) as u8,
                micros,
                fsp,
            })
        }
        ColumnType::TIME2 => S(time2(c, fsp_of(meta, index)?)?),
        _ => {
            return Err(DecodeErrorKind::UnsupportedType {
                type_name: t.name(),
                code: t.0,
                column: index + 1,
            });
        }
    })
}

/// A JSON column's value in a partial after-image: a length, then diffs of
/// (operation, path, [value]) with binary JSON values.
pub fn json_diff(c: &mut Cursor<'_>, def: &ColumnDef, index: usize) -> Result<Value> {
    let data = blob(c, def.meta, def.column_type, index)?;
    let mut d = Cursor::new(data);
    let mut out: Vec<String> = Vec::new();
    while !d.is_empty() {
        let op = d.u8()?;
        let len = d.packed_len()?;
        let path = String::from_utf8_lossy(d.take(len)?).replace('\'', "''");
        let f = match op {
            0 => "JSON_REPLACE",
            1 => "JSON_INSERT",
            2 => "JSON_REMOVE",
            other => {
                return Err(DecodeErrorKind::Invalid(format!(
                    "JSON diff operation {other} in column {}",
                    index + 1
                )));
            }
        };
        if op == 2 {
            out.push(format!("{f}(@, '{path}')"));
        } else {
            let vlen = d.packed_len()?;
            let text = super::json::to_text(d.take(vlen)?)?;
            out.push(format!(
                "{f}(@, '{path}', CAST('{}' AS JSON))",
                text.replace('\'', "''")
            ));
        }
    }
    Ok(Value::JsonDiff(out.join("; ")))
}

#[inline]
fn int(c: &mut Cursor<'_>, width: u8) -> Result<Value> {
    Ok(Value::Int {
        raw: c.uint_le(usize::from(width))?,
        width,
    })
}

#[inline]
fn blob<'a>(c: &mut Cursor<'a>, meta: u16, t: ColumnType, index: usize) -> Result<&'a [u8]> {
    let pack = usize::from(meta);
    if !(1..=4).contains(&pack) {
        return Err(DecodeErrorKind::Invalid(format!(
            "{} column {} has a length prefix of {pack} bytes (expected 1..4)",
            t.name(),
            index + 1
        )));
    }
    let len = c.uint_le(pack)? as usize;
    c.take(len)
}

#[inline]
fn fsp_of(meta: u16, index: usize) -> Result<u8> {
    if meta > 6 {
        return Err(DecodeErrorKind::Invalid(format!(
            "column {} declares fractional precision {meta} (> 6)",
            index + 1
        )));
    }
    Ok(meta as u8)
}

/// Fractional seconds of TIMESTAMP2/DATETIME2: (fsp+1)/2 big-endian bytes.
#[inline]
fn frac(c: &mut Cursor<'_>, fsp: u8) -> Result<u32> {
    Ok(match fsp {
        0 => 0,
        1 | 2 => c.uint_be(1)? as u32 * 10_000,
        3 | 4 => c.uint_be(2)? as u32 * 100,
        _ => c.uint_be(3)? as u32,
    })
}

/// TIME2 (MySQL 5.6+ and MariaDB's mysql56 format), after `my_time_packed_from_binary`.
///
/// The value is one signed integer, `(hms << 24) + micros`, stored with an offset. For
/// fsp 1..4 the fraction is stored separately as the low part of that integer, so a
/// negative value keeps floor(int part) and a fraction byte(s) read *unsigned*: the
/// server then steps the int part up by one and subtracts 0x100 (0x10000). Reading the
/// fraction as signed made `-838:59:59.99` come out as `.355` (issue #9).
#[inline]
fn time2(c: &mut Cursor<'_>, fsp: u8) -> Result<Value> {
    const OFFSET: i64 = 0x80_0000;
    let packed: i64 = match fsp {
        0 => (c.uint_be(3)? as i64 - OFFSET) << 24,
        1 | 2 => {
            let mut int_part = c.uint_be(3)? as i64 - OFFSET;
            let mut f = i64::from(c.u8()?);
            if int_part < 0 && f != 0 {
                int_part += 1;
                f -= 0x100;
            }
            (int_part << 24) + f * 10_000
        }
        3 | 4 => {
            let mut int_part = c.uint_be(3)? as i64 - OFFSET;
            let mut f = c.uint_be(2)? as i64;
            if int_part < 0 && f != 0 {
                int_part += 1;
                f -= 0x10000;
            }
            (int_part << 24) + f * 100
        }
        _ => c.uint_be(6)? as i64 - 0x8000_0000_0000,
    };
    let negative = packed < 0;
    let a = packed.unsigned_abs();
    let hms = a >> 24;
    Ok(Value::Time {
        negative,
        hours: ((hms >> 12) % (1 << 10)) as u32,
        minutes: ((hms >> 6) % 64) as u8,
        seconds: (hms % 64) as u8,
        micros: (a % (1 << 24)) as u32,
        fsp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TIME2 bytes as the server writes them (`my_time_packed_to_binary`): the packed
    /// value split with an arithmetic shift and a truncating remainder, as in C.
    fn time2_bytes(negative: bool, hms: (i64, i64, i64), micros: i64, fsp: u8) -> Vec<u8> {
        let (h, m, s) = hms;
        let mut nr = (((h << 12) | (m << 6) | s) << 24) + micros;
        if negative {
            nr = -nr;
        }
        let (int_part, frac) = (nr >> 24, nr % (1 << 24));
        let be = |v: i64, n: usize| v.to_be_bytes()[8 - n..].to_vec();
        let mut out = be(int_part + 0x80_0000, 3);
        match fsp {
            0 => {}
            1 | 2 => out.push((frac / 10_000) as u8),
            3 | 4 => out.extend(be(frac / 100, 2)),
            _ => out = be(nr + 0x8000_0000_0000, 6),
        }
        out
    }

    #[test]
    fn time2_negative_fractions_of_every_fsp() {
        let cases: &[(bool, (i64, i64, i64), i64)] = &[
            (true, (838, 59, 59), 990_000),
            (true, (838, 59, 59), 999_900),
            (true, (0, 0, 0), 500_000),
            (true, (0, 0, 1), 10_000),
            (true, (0, 0, 1), 0),
            (true, (0, 0, 0), 10_000),
            (true, (12, 34, 56), 780_000),
            (false, (838, 59, 59), 990_000),
            (false, (0, 0, 0), 0),
        ];
        for fsp in 0..=6u8 {
            // The fraction a column of this fsp can hold.
            let unit = 10i64.pow(6 - u32::from(fsp));
            for &(negative, (h, m, s), micros) in cases {
                let micros = micros / unit * unit;
                let bytes = time2_bytes(negative, (h, m, s), micros, fsp);
                let Ok(got) = time2(&mut Cursor::new(&bytes), fsp) else {
                    panic!("time2 failed for {bytes:?} fsp {fsp}");
                };
                let zero = (h, m, s, micros) == (0, 0, 0, 0);
                let want = Value::Time {
                    negative: negative && !zero,
                    hours: h as u32,
                    minutes: m as u8,
                    seconds: s as u8,
                    micros: micros as u32,
                    fsp,
                };
                assert_eq!(got, want, "fsp {fsp}, bytes {bytes:02x?}");
            }
        }
    }

    #[test]
    fn signed_mediumint_sign_extends() {
        let v = Value::Int {
            raw: 0xFF_FFFB,
            width: 3,
        };
        assert_eq!(v.as_i64(), Some(-5));
        assert_eq!(v.as_u64(), Some(16_777_211));
    }
}
