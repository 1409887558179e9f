//! `repl-repair decode FILE…`: the decoder for DBAs. One line per row change, as JSON
//! shaped like a change event (op, schema, table, before/after column maps, source) or
//! as text. Works on relay logs and binlogs; column names (and signedness) come from a
//! live server when one is given, otherwise columns are `@1..@n` and integers signed.

use crate::binlog::BinlogReader;
use crate::binlog::events::{self, Decoded, TableMaps};
use crate::binlog::rows::Row;
use crate::binlog::table_map::TableMap;
use crate::record::{json_binlog_value, json_string};
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

/// Column descriptions for a mapped table: the live schema when it matches, else
/// positional names.
fn columns(map: &TableMap, live: Option<&TableInfo>) -> Vec<ColumnInfo> {
    if let Some(t) = live
        && t.check_matches(map).is_ok()
    {
        return t.columns.clone();
    }
    // MySQL 8 with binlog_row_metadata=FULL carries names and signedness itself.
    let meta = map.optional().unwrap_or_default();
    let mut numeric = meta.unsigned_numeric.iter();
    (1..=map.columns.len())
        .map(|i| ColumnInfo {
            name: meta
                .column_names
                .get(i - 1)
                .cloned()
                .unwrap_or_else(|| format!("@{i}")),
            data_type: String::new(),
            unsigned: map.columns[i - 1].column_type.is_numeric() && numeric.next() == Some(&true),
            nullable: true,
            generated: false,
            // Unknown charset: text when it is valid UTF-8, hex otherwise.
            charset: Some("unknown".into()),
            binary_len: None,
            has_default: false,
        })
        .collect()
}

fn image(row: &Option<Row>, cols: &[ColumnInfo], json: bool) -> String {
    let Some(row) = row else {
        return if json { "null".into() } else { "-".into() };
    };
    let fields: Vec<String> = row
        .iter()
        .zip(cols)
        .filter_map(|(v, c)| {
            let v = json_binlog_value(v.as_ref()?, c);
            Some(if json {
                format!("{}:{v}", json_string(&c.name))
            } else {
                format!("{}={v}", c.name)
            })
        })
        .collect();
    if json {
        format!("{{{}}}", fields.join(","))
    } else {
        format!("({})", fields.join(", "))
    }
}

/// Decodes `opts.files` to `out`. `schema` looks a table up on a live server.
pub fn run(
    opts: &DumpOptions,
    mut schema: impl FnMut(&str, &str) -> Option<TableInfo>,
    out: &mut impl Write,
) -> Result<u64, DumpError> {
    let mut live: HashMap<(String, String), Option<TableInfo>> = HashMap::new();
    let mut rows = 0;
    for (i, file) in opts.files.iter().enumerate() {
        let mut r = match (i, opts.start) {
            (0, Some(pos)) => BinlogReader::open_at(file, pos)?,
            _ => BinlogReader::open(file)?,
        };
        let mut maps = TableMaps::default();
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
            let decoded =
                events::decode(&ev, &mut maps).map_err(|kind| crate::binlog::Error::Event {
                    path: file.clone(),
                    offset,
                    event: header.event_type,
                    kind,
                })?;
            for decoded in decoded.flatten() {
                match decoded {
                    Decoded::Gtid { gtid: g, .. } => gtid = g,
                    Decoded::Rows(ev) => {
                        let Some(map) = maps.get(ev.table_id) else {
                            continue;
                        };
                        let info = live
                            .entry((map.schema.clone(), map.table.clone()))
                            .or_insert_with(|| schema(&map.schema, &map.table));
                        let cols = columns(map, info.as_ref());
                        for change in &ev.rows {
                            rows += 1;
                            if opts.json {
                                writeln!(
                                    out,
                                    "{{\"op\":{},\"schema\":{},\"table\":{},\"before\":{},\"after\":{},\"source\":{{\"file\":{},\"pos\":{offset},\"end_log_pos\":{},\"server_id\":{},\"gtid\":{},\"event\":{}}}}}",
                                    json_string(change.op.as_str()),
                                    json_string(&map.schema),
                                    json_string(&map.table),
                                    image(&change.before, &cols, true),
                                    image(&change.after, &cols, true),
                                    json_string(&file.display().to_string()),
                                    header.log_pos,
                                    header.server_id,
                                    json_string(&gtid),
                                    json_string(header.event_type.name()),
                                )?;
                            } else {
                                writeln!(
                                    out,
                                    "{}:{offset} end_log_pos={} server_id={} gtid={} {} {}.{} before={} after={}",
                                    file.display(),
                                    header.log_pos,
                                    header.server_id,
                                    if gtid.is_empty() { "-" } else { &gtid },
                                    change.op.as_str(),
                                    map.schema,
                                    map.table,
                                    image(&change.before, &cols, false),
                                    image(&change.after, &cols, false),
                                )?;
                            }
                        }
                    }
                    Decoded::Xid(_) => gtid.clear(),
                    _ => {}
                }
            }
        }
    }
    Ok(rows)
}
