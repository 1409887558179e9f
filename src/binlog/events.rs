//! The non-row events the repair pipeline needs to understand: transaction boundaries
//! (QUERY `BEGIN`/`COMMIT`, XID, GTID events), ROTATE, and a classifier that turns a raw
//! event into one of them, keeping TABLE_MAPs by id for the rows events that follow.

use super::DecodeErrorKind;
use super::cursor::Cursor;
use super::header::{EventHeader, EventType, FormatDescription};
use super::reader::Event;
use super::rows::{self, RowsEvent};
use super::table_map::TableMap;
use std::collections::HashMap;

/// A decoded event, as much as the repair needs of it.
#[derive(Debug)]
pub enum Decoded {
    FormatDescription,
    /// QUERY: its default schema and SQL text (`BEGIN`, `COMMIT`, DDL, ...).
    Query {
        schema: String,
        sql: String,
    },
    /// Commit of an XA-less InnoDB transaction.
    Xid(u64),
    /// Start of a transaction: MariaDB GTID `domain-server-seq` or MySQL `uuid:gno`.
    Gtid {
        gtid: String,
        standalone: bool,
    },
    Rotate {
        next_file: String,
        position: u64,
    },
    TableMap(TableMap),
    /// Rows, with the table id resolved against the TABLE_MAPs seen so far.
    Rows(RowsEvent),
    /// MySQL TRANSACTION_PAYLOAD: the inner events, decoded (TABLE_MAPs applied).
    Payload(Vec<(EventHeader, Decoded)>),
    /// Any other event, skipped by length.
    Other,
}

impl Decoded {
    /// The event itself, or the events inside a TRANSACTION_PAYLOAD.
    pub fn flatten(self) -> Vec<Decoded> {
        match self {
            Decoded::Payload(inner) => inner.into_iter().map(|(_, d)| d).collect(),
            d => vec![d],
        }
    }
}

/// TABLE_MAPs by table id, valid until the end of the transaction that declared them.
#[derive(Debug, Default)]
pub struct TableMaps {
    by_id: HashMap<u64, TableMap>,
}

impl TableMaps {
    pub fn get(&self, id: u64) -> Option<&TableMap> {
        self.by_id.get(&id)
    }

    pub fn clear(&mut self) {
        self.by_id.clear();
    }
}

/// Decodes one event. Rows events need their TABLE_MAP in `maps`; an event whose bytes
/// are not all consumed is an error (full-consumption check), except where the format
/// allows trailing data.
pub fn decode(ev: &Event<'_>, maps: &mut TableMaps) -> Result<Decoded, DecodeErrorKind> {
    let fde = ev.fde;
    let t = ev.header.event_type;
    let body = ev.body;
    Ok(match t {
        EventType::FORMAT_DESCRIPTION => Decoded::FormatDescription,
        EventType::QUERY | EventType::MARIADB_QUERY_COMPRESSED => {
            let (schema, sql) = query(body, fde, t == EventType::MARIADB_QUERY_COMPRESSED)?;
            Decoded::Query { schema, sql }
        }
        EventType::XID => {
            let mut c = Cursor::new(body);
            let xid = c.uint_le(8)?;
            leftover(&c)?;
            Decoded::Xid(xid)
        }
        EventType::ROTATE => {
            let mut c = Cursor::new(body);
            let position = c.uint_le(8)?;
            let next_file = String::from_utf8_lossy(c.rest()).into_owned();
            Decoded::Rotate {
                next_file,
                position,
            }
        }
        EventType::MARIADB_GTID => {
            let mut c = Cursor::new(body);
            let seq = c.uint_le(8)?;
            let domain = c.u32()?;
            let flags = c.u8()?;
            Decoded::Gtid {
                gtid: format!("{domain}-{}-{seq}", ev.header.server_id),
                // FL_STANDALONE: a DDL or other statement that is its own transaction.
                standalone: flags & 1 != 0,
            }
        }
        EventType::GTID | EventType::ANONYMOUS_GTID => {
            let mut c = Cursor::new(body);
            let _flags = c.u8()?;
            let sid = c.take(16)?;
            let gno = c.uint_le(8)?;
            let hex: String = sid.iter().map(|b| format!("{b:02x}")).collect();
            let uuid = format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            Decoded::Gtid {
                gtid: if t == EventType::ANONYMOUS_GTID {
                    "ANONYMOUS".into()
                } else {
                    format!("{uuid}:{gno}")
                },
                standalone: false,
            }
        }
        EventType::TABLE_MAP => {
            let map = TableMap::parse(body, fde)?;
            maps.by_id.insert(map.table_id, map.clone());
            Decoded::TableMap(map)
        }
        t if t.is_rows() || t.is_compressed_rows() => {
            let id = rows::table_id(body, fde)?;
            let map = maps.get(id).ok_or_else(|| {
                DecodeErrorKind::Invalid(format!(
                    "rows event for table id {id} without a preceding TABLE_MAP"
                ))
            })?;
            Decoded::Rows(RowsEvent::parse(t, body, fde, map)?)
        }
        EventType::TRANSACTION_PAYLOAD => {
            let data = super::payload::decompress(body)?;
            let mut inner = Vec::new();
            for (h, b) in super::payload::events(&data)? {
                let ev = Event {
                    header: h,
                    offset: ev.offset,
                    body: b,
                    fde,
                };
                inner.push((h, decode(&ev, maps)?));
            }
            Decoded::Payload(inner)
        }
        EventType::MARIADB_START_ENCRYPTION => {
            return Err(DecodeErrorKind::Invalid(
                "the log is encrypted (START_ENCRYPTION): encrypted relay logs cannot be read"
                    .into(),
            ));
        }
        _ => Decoded::Other,
    })
}

fn leftover(c: &Cursor<'_>) -> Result<(), DecodeErrorKind> {
    if c.is_empty() {
        Ok(())
    } else {
        Err(DecodeErrorKind::LeftOver(c.remaining()))
    }
}

/// QUERY event: thread id, exec time, schema length, error code, status-vars length,
/// status vars, schema NUL, SQL text.
fn query(
    body: &[u8],
    fde: &FormatDescription,
    compressed: bool,
) -> Result<(String, String), DecodeErrorKind> {
    let mut c = Cursor::new(body);
    let post = fde.post_header_len(EventType::QUERY).max(11);
    let mut ph = Cursor::new(c.take(post)?);
    let _thread_id = ph.u32()?;
    let _exec_time = ph.u32()?;
    let schema_len = usize::from(ph.u8()?);
    let _error_code = ph.u16()?;
    let status_len = if post >= 13 {
        usize::from(ph.u16()?)
    } else {
        0
    };
    c.take(status_len)?;
    let schema = String::from_utf8_lossy(c.take(schema_len)?).into_owned();
    c.take(1)?;
    let sql = if compressed {
        String::from_utf8_lossy(&super::compress::uncompress(c.rest())?).into_owned()
    } else {
        String::from_utf8_lossy(c.rest()).into_owned()
    };
    Ok((schema, sql))
}
