//! `repl-repair decode FILE…`: the decoder for DBAs. One line per row change, as JSON
//! shaped like a change event (op, schema, table, before/after column maps, source) or
//! as text. Works on relay logs and binlogs; column names (and signedness) come from a
//! live server when one is given, otherwise columns are `@1..@n` and integers signed.

use crate::binlog::events::{self, Decoded, TableMaps};
use crate::binlog::rows::{self, RowOp, RowsEvent};
use crate::binlog::table_map::TableMap;
use crate::binlog::{BinlogReader, DecodeErrorKind};
use crate::event::{ChangeEvent, Column, EventFrame, EventSource, write_image, write_owned_image};
use crate::schema::{ColumnInfo, TableInfo};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct DumpOptions {
    pub files: Vec<PathBuf>,
    pub start: Option<u64>,
    pub stop: Option<u64>,
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Binlog(#[from] crate::binlog::Error),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Column descriptions for a mapped table: the live schema when it matches, else what
/// the table map's optional metadata says (names, signedness, character sets), else
/// positional names (`@1`…), signed integers and an unknown character set (hex).
pub fn columns(map: &TableMap, live: Option<&TableInfo>) -> Vec<ColumnInfo> {
    if let Some(t) = live
        && t.check_matches(map).is_ok()
    {
        return t.columns.clone();
    }
    let meta = map.optional().unwrap_or_default();
    let mut numeric = meta.unsigned_numeric.iter();
    let mut collations = meta.collations.iter();
    map.columns
        .iter()
        .enumerate()
        .map(|(i, def)| {
            let charset = if def.is_character() {
                collations
                    .next()
                    .and_then(|&id| crate::event::collation_charset(id))
                    .filter(|&cs| cs != "binary")
                    .map(str::to_string)
            } else {
                None
            };
            ColumnInfo {
                name: meta
                    .column_names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("@{}", i + 1)),
                data_type: String::new(),
                unsigned: def.column_type.is_numeric() && numeric.next() == Some(&true),
                nullable: true,
                generated: false,
                charset,
                binary_len: None,
                has_default: false,
            }
        })
        .collect()
}

/// Output is built here and handed to the writer in blocks of about this size.
const BLOCK: usize = 64 << 10;

/// The fixed parts of one rows event's output lines (JSON: the change event's frame).
enum Frame {
    Json(EventFrame),
    Text { head: Vec<u8> },
}

/// One line per row change: head, before image, middle, after image, tail.
fn line_parts(frame: &Frame) -> (&[u8], &[u8], &[u8], &'static [u8]) {
    match frame {
        Frame::Json(f) => (f.head(), f.middle(), f.tail(), b"null"),
        Frame::Text { head } => (head, b" after=", b"\n", b"-"),
    }
}

struct Where<'a> {
    file: &'a str,
    offset: u64,
    header: &'a crate::binlog::EventHeader,
    gtid: &'a str,
}

fn frame(json: bool, op: RowOp, map: &TableMap, at: &Where<'_>) -> Frame {
    if json {
        Frame::Json(EventFrame::new(&ChangeEvent {
            op: op.as_str(),
            schema: &map.schema,
            table: &map.table,
            before: None,
            after: None,
            source: EventSource {
                file: Some(at.file),
                pos: Some(at.offset),
                end_log_pos: Some(u64::from(at.header.log_pos)),
                server_id: Some(at.header.server_id),
                gtid: Some(at.gtid),
                event: Some(at.header.event_type.name()),
                ..EventSource::default()
            },
            errno: None,
            plan_id: None,
            ts: None,
        }))
    } else {
        Frame::Text {
            head: format!(
                "{}:{} end_log_pos={} server_id={} gtid={} {} {}.{} before=",
                at.file,
                at.offset,
                at.header.log_pos,
                at.header.server_id,
                if at.gtid.is_empty() { "-" } else { at.gtid },
                op.as_str(),
                map.schema,
                map.table,
            )
            .into_bytes(),
        }
    }
}

/// Decodes `opts.files` to `out`. `schema` looks a table up on a live server.
///
/// Rows are rendered straight from the event's bytes ([`RowsEvent::visit`]) into one
/// reused buffer: nothing is allocated per row or per value.
pub fn run(
    opts: &DumpOptions,
    mut schema: impl FnMut(&str, &str) -> Option<TableInfo>,
    out: &mut impl Write,
) -> Result<u64, DumpError> {
    let mut live: HashMap<(String, String), Option<TableInfo>> = HashMap::new();
    let mut rows = 0;
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK * 2);
    for (i, file) in opts.files.iter().enumerate() {
        let mut r = match (i, opts.start) {
            (0, Some(pos)) => BinlogReader::open_at(file, pos)?,
            _ => BinlogReader::open(file)?,
        };
        let file_name = file.display().to_string();
        let mut maps = TableMaps::default();
        // Renderers of each mapped table, rebuilt at each TABLE_MAP.
        let mut tables: HashMap<u64, Vec<Column>> = HashMap::new();
        let mut gtid = String::new();
        loop {
            if r.next_header()?.is_none() {
                break;
            }
            let offset = r.position();
            if opts.stop.is_some_and(|s| offset >= s) && i + 1 == opts.files.len() {
                break;
            }
            let ev = r.read_body()?;
            let header = ev.header;
            let t = header.event_type;
            let event_err = |kind| crate::binlog::Error::Event {
                path: file.clone(),
                offset,
                event: t,
                kind,
            };
            // The fast path: rows borrowed from the event, rendered as they are decoded.
            if t.is_rows() || t.is_compressed_rows() {
                let id = rows::table_id(ev.body, ev.fde).map_err(event_err)?;
                if let (Some(map), Some(cols)) = (maps.get(id), tables.get(&id)) {
                    let at = Where {
                        file: &file_name,
                        offset,
                        header: &header,
                        gtid: &gtid,
                    };
                    let op = RowOp::from_event_type(t).unwrap_or(RowOp::Insert);
                    let frame = frame(opts.json, op, map, &at);
                    let (head, middle, tail, null) = line_parts(&frame);
                    let mut failed: Option<DecodeErrorKind> = None;
                    let mut io: Option<std::io::Error> = None;
                    let json = opts.json;
                    rows += RowsEvent::visit(t, ev.body, ev.fde, map, |_, before, after| {
                        buf.extend_from_slice(head);
                        for (k, image) in [before, after].into_iter().enumerate() {
                            if k == 1 {
                                buf.extend_from_slice(middle);
                            }
                            match image {
                                Some(row) => {
                                    if let Err(e) = write_image(&mut buf, row, cols, json) {
                                        failed.get_or_insert(e);
                                    }
                                }
                                None => buf.extend_from_slice(null),
                            }
                        }
                        buf.extend_from_slice(tail);
                        if buf.len() >= BLOCK && io.is_none() {
                            if let Err(e) = out.write_all(&buf) {
                                io = Some(e);
                            }
                            buf.clear();
                        }
                    })
                    .map_err(event_err)?;
                    if let Some(e) = failed {
                        return Err(event_err(e).into());
                    }
                    if let Some(e) = io {
                        return Err(e.into());
                    }
                    continue;
                }
            }
            let decoded = events::decode(&ev, &mut maps).map_err(event_err)?;
            for decoded in decoded.flatten() {
                match decoded {
                    Decoded::Gtid { gtid: g, .. } => gtid = g,
                    Decoded::TableMap(map) => {
                        let info = live
                            .entry((map.schema.clone(), map.table.clone()))
                            .or_insert_with(|| schema(&map.schema, &map.table));
                        tables.insert(map.table_id, Column::all(&columns(&map, info.as_ref())));
                    }
                    // Rows inside a TRANSACTION_PAYLOAD, decoded as owned values.
                    Decoded::Rows(ev) => {
                        let (Some(map), Some(cols)) =
                            (maps.get(ev.table_id), tables.get(&ev.table_id))
                        else {
                            continue;
                        };
                        let at = Where {
                            file: &file_name,
                            offset,
                            header: &header,
                            gtid: &gtid,
                        };
                        let frame = frame(opts.json, ev.op, map, &at);
                        let (head, middle, tail, null) = line_parts(&frame);
                        for change in &ev.rows {
                            rows += 1;
                            buf.extend_from_slice(head);
                            for (k, image) in
                                [&change.before, &change.after].into_iter().enumerate()
                            {
                                if k == 1 {
                                    buf.extend_from_slice(middle);
                                }
                                match image {
                                    Some(row) => write_owned_image(&mut buf, row, cols, opts.json),
                                    None => buf.extend_from_slice(null),
                                }
                            }
                            buf.extend_from_slice(tail);
                        }
                    }
                    Decoded::Xid(_) => gtid.clear(),
                    _ => {}
                }
            }
            if buf.len() >= BLOCK {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(rows)
}
