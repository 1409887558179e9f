//! WRITE/UPDATE/DELETE rows events, v1 (MariaDB, MySQL 5.1–5.5) and v2 (MySQL 5.6+), as
//! thin variants over one decoder. UPDATE carries two column bitmaps, one per image.

use super::DecodeErrorKind;
use super::cursor::Cursor;
use super::header::{EventType, FormatDescription};
use super::table_map::TableMap;
use super::value::{self, Value};

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

impl RowsEvent {
    pub fn parse(
        event_type: EventType,
        body: &[u8],
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
        // Columns present in each image: counted once per event, not per row.
        let n_before = (0..ncols).filter(|&i| bit(present_before, i)).count();
        let n_after = (0..ncols).filter(|&i| bit(present_after, i)).count();
        // MariaDB compressed rows events: only the row data after the bitmaps is zlib.
        let inflated;
        if event_type.is_compressed_rows() {
            inflated = super::compress::uncompress(c.rest())?;
            c = Cursor::new(&inflated);
        }
        let mut rows = Vec::new();
        while !c.is_empty() {
            let at = c.pos();
            let change = match op {
                RowOp::Insert => RowChange {
                    op,
                    before: None,
                    after: Some(image(&mut c, map, ncols, present_after, n_after)?),
                },
                RowOp::Delete => RowChange {
                    op,
                    before: Some(image(&mut c, map, ncols, present_before, n_before)?),
                    after: None,
                },
                RowOp::Update => {
                    let before = image(&mut c, map, ncols, present_before, n_before)?;
                    let after = if event_type == EventType::PARTIAL_UPDATE_ROWS {
                        partial_image(&mut c, map, ncols, present_after, n_after)?
                    } else {
                        image(&mut c, map, ncols, present_after, n_after)?
                    };
                    RowChange {
                        op,
                        before: Some(before),
                        after: Some(after),
                    }
                }
            };
            // A row that consumes no bytes (no column present) would repeat forever:
            // found by the fuzzer (fuzz/regressions/rows-zero-width-image).
            if c.pos() == at {
                return Err(DecodeErrorKind::Invalid(
                    "row image of zero bytes: no column present".into(),
                ));
            }
            rows.push(change);
        }
        Ok(RowsEvent {
            table_id,
            flags,
            op,
            rows,
        })
    }
}

fn bit(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

fn image(
    c: &mut Cursor<'_>,
    map: &TableMap,
    ncols: usize,
    present: &[u8],
    npresent: usize,
) -> Result<Row, DecodeErrorKind> {
    image_with(c, map, ncols, present, npresent, None)
}

/// The after-image of a PARTIAL_UPDATE_ROWS row (binlog_row_value_options=PARTIAL_JSON):
/// value options, then (if partial JSON is on) one bit per JSON column of the table
/// saying whether that column holds a list of diffs instead of a whole document.
fn partial_image(
    c: &mut Cursor<'_>,
    map: &TableMap,
    ncols: usize,
    present: &[u8],
    npresent: usize,
) -> Result<Row, DecodeErrorKind> {
    const PARTIAL_JSON_UPDATES: u64 = 1;
    let options = c.packed()?;
    if options & PARTIAL_JSON_UPDATES == 0 {
        return image(c, map, ncols, present, npresent);
    }
    let json_cols = map
        .columns
        .iter()
        .filter(|d| d.column_type == super::table_map::ColumnType::JSON)
        .count();
    let bits = c.take(json_cols.div_ceil(8))?;
    image_with(c, map, ncols, present, npresent, Some(bits))
}

fn image_with(
    c: &mut Cursor<'_>,
    map: &TableMap,
    ncols: usize,
    present: &[u8],
    npresent: usize,
    partial: Option<&[u8]>,
) -> Result<Row, DecodeErrorKind> {
    let nulls = c.take(npresent.div_ceil(8))?;
    let mut json_ordinal = 0;
    let mut row: Row = Vec::with_capacity(map.columns.len());
    let mut k = 0;
    for (i, def) in map.columns.iter().enumerate() {
        if i >= ncols || !bit(present, i) {
            row.push(None);
            continue;
        }
        let is_json = def.column_type == super::table_map::ColumnType::JSON;
        let diff = is_json && partial.is_some_and(|bits| bit(bits, json_ordinal));
        if is_json {
            json_ordinal += 1;
        }
        let v = if bit(nulls, k) {
            Value::Null
        } else if diff {
            value::json_diff(c, def, i)?
        } else {
            value::decode(c, def, i)?
        };
        row.push(Some(v));
        k += 1;
    }
    Ok(row)
}
