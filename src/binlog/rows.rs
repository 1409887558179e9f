//! WRITE/UPDATE/DELETE rows events, v1 (MariaDB, MySQL 5.1–5.5) and v2 (MySQL 5.6+), as
//! thin variants over one decoder. UPDATE carries two column bitmaps, one per image.

use super::DecodeErrorKind;
use super::cursor::Cursor;
use super::header::{EventType, FormatDescription};
use super::table_map::TableMap;
use super::value::{self, Value, ValueRef};

/// Set on the last rows event of a statement.
pub const STMT_END_F: u16 = 0x1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowOp {
    Insert,
    Update,
    Delete,
}

impl RowOp {
    pub fn from_event_type(t: EventType) -> Option<Self> {
        match t.0 {
            23 | 30 | 166 | 169 => Some(RowOp::Insert),
            24 | 31 | 39 | 167 | 170 => Some(RowOp::Update),
            25 | 32 | 168 | 171 => Some(RowOp::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RowOp::Insert => "insert",
            RowOp::Update => "update",
            RowOp::Delete => "delete",
        }
    }
}

/// One row image: one entry per table column, `None` where the image does not carry the
/// column (binlog_row_image MINIMAL/NOBLOB), `Some(Value::Null)` for SQL NULL.
pub type Row = Vec<Option<Value>>;

#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    pub op: RowOp,
    pub before: Option<Row>,
    pub after: Option<Row>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RowsEvent {
    pub table_id: u64,
    pub flags: u16,
    pub op: RowOp,
    pub rows: Vec<RowChange>,
}

/// Reads only the table id of a rows event, so the caller can find its TABLE_MAP first.
pub fn table_id(body: &[u8], fde: &FormatDescription) -> Result<u64, DecodeErrorKind> {
    Cursor::new(body).uint_le(fde.table_id_len())
}

/// The parts of a rows event before its rows, and where the rows start.
struct Layout<'b> {
    table_id: u64,
    flags: u16,
    op: RowOp,
    ncols: usize,
    present_before: &'b [u8],
    present_after: &'b [u8],
    n_before: usize,
    n_after: usize,
    rows: &'b [u8],
}

impl<'b> Layout<'b> {
    fn parse(
        event_type: EventType,
        body: &'b [u8],
        fde: &FormatDescription,
        map: &TableMap,
    ) -> Result<Self, DecodeErrorKind> {
        let op = RowOp::from_event_type(event_type)
            .ok_or_else(|| DecodeErrorKind::Invalid(format!("{event_type} is not a rows event")))?;
        let mut c = Cursor::new(body);
        let table_id = c.uint_le(fde.table_id_len())?;
        let flags = c.u16()?;
        if matches!(event_type.0, 30..=32 | 39 | 169..=171) {
            // v2: extra data of any length (2 bytes for its own length, more for
            // partition info since MySQL 8.0.16).
            let extra_len = usize::from(c.u16()?);
            if extra_len < 2 {
                return Err(DecodeErrorKind::Invalid(format!(
                    "rows event extra-data length {extra_len} (< 2)"
                )));
            }
            c.take(extra_len - 2)?;
        }
        // A column *count*, not a byte length: a row of NULLs takes far fewer bytes than
        // it has columns (a fixture with 45 columns and a 25-byte event pinned this).
        let ncols = c.packed()?;
        if ncols > map.columns.len() as u64 {
            return Err(DecodeErrorKind::Invalid(format!(
                "rows event for {}.{} has {ncols} columns, its table map {}",
                map.schema,
                map.table,
                map.columns.len()
            )));
        }
        let ncols = ncols as usize;
        let present_before = c.take(ncols.div_ceil(8))?;
        let present_after = if op == RowOp::Update {
            c.take(ncols.div_ceil(8))?
        } else {
            present_before
        };
        Ok(Layout {
            table_id,
            flags,
            op,
            ncols,
            present_before,
            present_after,
            // Columns present in each image: counted once per event, not per row.
            n_before: (0..ncols).filter(|&i| bit(present_before, i)).count(),
            n_after: (0..ncols).filter(|&i| bit(present_after, i)).count(),
            rows: c.rest(),
        })
    }
}

/// A row that consumes no bytes (no column present) would repeat forever: found by the
/// fuzzer (fuzz/regressions/rows-zero-width-image).
fn check_progress(c: &Cursor<'_>, at: usize) -> Result<(), DecodeErrorKind> {
    if c.pos() == at {
        return Err(DecodeErrorKind::Invalid(
            "row image of zero bytes: no column present".into(),
        ));
    }
    Ok(())
}

impl RowsEvent {
    /// Decodes every row into owned values (what the planner keeps).
    pub fn parse(
        event_type: EventType,
        body: &[u8],
        fde: &FormatDescription,
        map: &TableMap,
    ) -> Result<Self, DecodeErrorKind> {
        let l = Layout::parse(event_type, body, fde, map)?;
        // MariaDB compressed rows events: only the row data after the bitmaps is zlib.
        let inflated;
        let mut c = if event_type.is_compressed_rows() {
            inflated = super::compress::uncompress(l.rows)?;
            Cursor::new(&inflated)
        } else {
            Cursor::new(l.rows)
        };
        let (op, ncols) = (l.op, l.ncols);
        let mut rows = Vec::new();
        while !c.is_empty() {
            let at = c.pos();
            let change = match op {
                RowOp::Insert => RowChange {
                    op,
                    before: None,
                    after: Some(image(&mut c, map, ncols, l.present_after, l.n_after, None)?),
                },
                RowOp::Delete => RowChange {
                    op,
                    before: Some(image(
                        &mut c,
                        map,
                        ncols,
                        l.present_before,
                        l.n_before,
                        None,
                    )?),
                    after: None,
                },
                RowOp::Update => {
                    let before = image(&mut c, map, ncols, l.present_before, l.n_before, None)?;
                    let bits = if event_type == EventType::PARTIAL_UPDATE_ROWS {
                        partial_bits(&mut c, map)?
                    } else {
                        None
                    };
                    let after = image(&mut c, map, ncols, l.present_after, l.n_after, bits)?;
                    RowChange {
                        op,
                        before: Some(before),
                        after: Some(after),
                    }
                }
            };
            check_progress(&c, at)?;
            rows.push(change);
        }
        Ok(RowsEvent {
            table_id: l.table_id,
            flags: l.flags,
            op,
            rows,
        })
    }

    /// Hands every value of every row to `sink` the moment it is decoded, borrowed from
    /// the event: no row is built. `decode` renders this way, so a value goes from the
    /// event's bytes to the output without being stored in between. The first error,
    /// the decoder's or the sink's, ends the event.
    pub fn stream(
        event_type: EventType,
        body: &[u8],
        fde: &FormatDescription,
        map: &TableMap,
        sink: &mut impl RowSink,
    ) -> Result<u64, DecodeErrorKind> {
        let l = Layout::parse(event_type, body, fde, map)?;
        let inflated;
        let mut c = if event_type.is_compressed_rows() {
            inflated = super::compress::uncompress(l.rows)?;
            Cursor::new(&inflated)
        } else {
            Cursor::new(l.rows)
        };
        let mut n = 0;
        while !c.is_empty() {
            let at = c.pos();
            let (b, a) = (l.present_before, l.present_after);
            let (nb, na) = (l.n_before, l.n_after);
            sink.row_start();
            match l.op {
                RowOp::Insert => {
                    sink.no_image(Side::Before);
                    sink.image_start(Side::After);
                    values(&mut c, map, l.ncols, a, na, None, |i, v| sink.value(i, v))?;
                    sink.image_end();
                }
                RowOp::Delete => {
                    sink.image_start(Side::Before);
                    values(&mut c, map, l.ncols, b, nb, None, |i, v| sink.value(i, v))?;
                    sink.image_end();
                    sink.no_image(Side::After);
                }
                RowOp::Update => {
                    sink.image_start(Side::Before);
                    values(&mut c, map, l.ncols, b, nb, None, |i, v| sink.value(i, v))?;
                    sink.image_end();
                    let bits = if event_type == EventType::PARTIAL_UPDATE_ROWS {
                        partial_bits(&mut c, map)?
                    } else {
                        None
                    };
                    sink.image_start(Side::After);
                    values(&mut c, map, l.ncols, a, na, bits, |i, v| sink.value(i, v))?;
                    sink.image_end();
                }
            }
            sink.row_end();
            check_progress(&c, at)?;
            n += 1;
        }
        Ok(n)
    }
}

/// Which image of a row change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Before,
    After,
}

/// What [`RowsEvent::stream`] calls, in this order for each row: `row_start`; for the
/// before-image then the after-image, either `no_image` or `image_start`, a `value` per
/// column the image carries (in column order), `image_end`; then `row_end`.
pub trait RowSink {
    fn row_start(&mut self);
    fn no_image(&mut self, side: Side);
    fn image_start(&mut self, side: Side);
    /// The value of column `column` (0-based, an index into the table map's columns).
    fn value(&mut self, column: usize, v: ValueRef<'_>) -> Result<(), DecodeErrorKind>;
    fn image_end(&mut self);
    fn row_end(&mut self);
}

fn bit(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// The after-image of a PARTIAL_UPDATE_ROWS row (binlog_row_value_options=PARTIAL_JSON):
/// value options, then (if partial JSON is on) one bit per JSON column of the table
/// saying whether that column holds a list of diffs instead of a whole document.
fn partial_bits<'a>(
    c: &mut Cursor<'a>,
    map: &TableMap,
) -> Result<Option<&'a [u8]>, DecodeErrorKind> {
    const PARTIAL_JSON_UPDATES: u64 = 1;
    let options = c.packed()?;
    if options & PARTIAL_JSON_UPDATES == 0 {
        return Ok(None);
    }
    let json_cols = map
        .columns
        .iter()
        .filter(|d| d.column_type == super::table_map::ColumnType::JSON)
        .count();
    Ok(Some(c.take(json_cols.div_ceil(8))?))
}

/// One row image as owned values (what the planner keeps): an entry per table column.
fn image(
    c: &mut Cursor<'_>,
    map: &TableMap,
    ncols: usize,
    present: &[u8],
    npresent: usize,
    partial: Option<&[u8]>,
) -> Result<Row, DecodeErrorKind> {
    let mut row: Row = vec![None; map.columns.len()];
    values(c, map, ncols, present, npresent, partial, |i, v| {
        if let Some(slot) = row.get_mut(i) {
            *slot = Some(v.into_owned()?);
        }
        Ok(())
    })?;
    Ok(row)
}

/// Decodes one row image, handing each value the image carries to `each` with its
/// column index, in column order.
#[inline(always)]
fn values<'a>(
    c: &mut Cursor<'a>,
    map: &TableMap,
    ncols: usize,
    present: &[u8],
    npresent: usize,
    partial: Option<&[u8]>,
    mut each: impl FnMut(usize, ValueRef<'a>) -> Result<(), DecodeErrorKind>,
) -> Result<(), DecodeErrorKind> {
    let nulls = c.take(npresent.div_ceil(8))?;
    let mut json_ordinal = 0;
    let mut k = 0;
    // `ncols` <= the map's columns (checked by `Layout::parse`); a slice, not `take`,
    // keeps the loop at one bound per column (6 % of decode's instructions).
    let defs = map.columns.get(..ncols).unwrap_or_default();
    for (i, def) in defs.iter().enumerate() {
        if !bit(present, i) {
            continue;
        }
        let is_json = def.column_type == super::table_map::ColumnType::JSON;
        let diff = is_json && partial.is_some_and(|bits| bit(bits, json_ordinal));
        if is_json {
            json_ordinal += 1;
        }
        let v = if bit(nulls, k) {
            ValueRef::Owned(Value::Null)
        } else if diff {
            ValueRef::Owned(value::json_diff(c, def, i)?)
        } else {
            value::decode_ref(c, def, i)?
        };
        each(i, v)?;
        k += 1;
    }
    Ok(())
}
