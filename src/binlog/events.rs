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
            let uuid = uuid_text(sid);
            Decoded::Gtid {
                gtid: if t == EventType::ANONYMOUS_GTID {
                    "ANONYMOUS".into()
                } else {
                    format!("{uuid}:{gno}")
                },
                standalone: false,
            }
        }
        EventType::GTID_TAGGED => Decoded::Gtid {
            gtid: tagged_gtid(body)?,
            standalone: false,
        },
        EventType::TABLE_MAP if fde.is_pre_ga_row_format() => {
            return Err(DecodeErrorKind::Invalid(format!(
                "pre-GA MySQL 5.1 table map (server {}, whose format description knows no \
                 WRITE_ROWS_V1 event) is not supported: its row format predates MySQL 5.1.18",
                fde.server_version
            )));
        }
        t if t.is_pre_ga_rows() => {
            return Err(DecodeErrorKind::Invalid(format!(
                "pre-GA MySQL 5.1 rows event (type {}) is not supported: its row format \
                 predates MySQL 5.1.18",
                t.0
            )));
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
        t if t.is_start_encryption() => {
            return Err(DecodeErrorKind::Invalid(super::header::encryption_message(
                t,
            )));
        }
        _ => Decoded::Other,
    })
}

/// `8-4-4-4-12` hex text of a 16-byte server UUID.
fn uuid_text(sid: &[u8]) -> String {
    let hex: String = sid.iter().map(|b| format!("{b:02x}")).collect();
    match (
        hex.get(0..8),
        hex.get(8..12),
        hex.get(12..16),
        hex.get(16..20),
        hex.get(20..),
    ) {
        (Some(a), Some(b), Some(c), Some(d), Some(e)) => format!("{a}-{b}-{c}-{d}-{e}"),
        _ => hex,
    }
}

/// Field ids of MySQL's GTID_TAGGED event (libs/mysql/binlog/event/control_events.h);
/// fields come in increasing id order and ones holding their default value are left out.
const TAGGED_GTID_FLAGS: u64 = 0;
const TAGGED_SID: u64 = 1;
const TAGGED_GNO: u64 = 2;
const TAGGED_TAG: u64 = 3;
/// The serialization format version MySQL 8.4 and 9.x write.
const TAGGED_FORMAT_VERSION: u8 = 2;

/// GTID_TAGGED (MySQL 8.4+, type 42) as `uuid:tag:gno`. The body is a
/// mysql::serialization message: a format version byte, the message size (counting
/// from the version byte), the last non-ignorable field id, then (field id, value)
/// pairs of varlen integers; the UUID is 16 varlen bytes, the tag a varlen length and
/// its bytes. Only the fields up to the tag are read: the rest (commit timestamps,
/// transaction length, server versions, ticket) are not needed.
fn tagged_gtid(body: &[u8]) -> Result<String, DecodeErrorKind> {
    let mut c = Cursor::new(body);
    let version = c.u8()?;
    if version != TAGGED_FORMAT_VERSION {
        return Err(DecodeErrorKind::Invalid(format!(
            "tagged GTID event in serialization format {version} (this reader knows {TAGGED_FORMAT_VERSION})"
        )));
    }
    let size = c.varlen()?;
    if size > body.len() as u64 || size < c.pos() as u64 {
        return Err(DecodeErrorKind::Invalid(format!(
            "tagged GTID event declares {size} bytes, the event body has {}",
            body.len()
        )));
    }
    let _last_non_ignorable = c.varlen()?;
    let mut fields = Cursor::new(body.get(c.pos()..size as usize).unwrap_or_default());
    let (mut sid, mut gno, mut tag) = ([0u8; 16], 0i64, String::new());
    while !fields.is_empty() {
        match fields.varlen()? {
            TAGGED_GTID_FLAGS => {
                fields.varlen()?;
            }
            TAGGED_SID => {
                for b in sid.iter_mut() {
                    *b = u8::try_from(fields.varlen()?).map_err(|_| {
                        DecodeErrorKind::Invalid("tagged GTID event: UUID byte over 255".into())
                    })?;
                }
            }
            TAGGED_GNO => gno = fields.varlen_signed()?,
            TAGGED_TAG => {
                let len = usize::try_from(fields.varlen()?).unwrap_or(usize::MAX);
                if len > fields.remaining() {
                    return Err(DecodeErrorKind::Short {
                        at: fields.pos(),
                        needed: len - fields.remaining(),
                    });
                }
                tag = String::from_utf8_lossy(fields.take(len)?).into_owned();
            }
            // Later fields: nothing the repair needs.
            _ => break,
        }
    }
    if gno <= 0 {
        return Err(DecodeErrorKind::Invalid(format!(
            "tagged GTID event with transaction number {gno}"
        )));
    }
    let uuid = uuid_text(&sid);
    Ok(if tag.is_empty() {
        format!("{uuid}:{gno}")
    } else {
        format!("{uuid}:{tag}:{gno}")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// mysql::serialization unsigned varlen, as MySQL writes it.
    fn varlen(out: &mut Vec<u8>, v: u64) {
        let n = (1..=8u32).find(|&n| v < 1u64 << (7 * n));
        match n {
            Some(n) => {
                let enc = (v << n) | ((1u64 << (n - 1)) - 1);
                out.extend(&enc.to_le_bytes()[..n as usize]);
            }
            None => {
                out.push(0xff);
                out.extend(v.to_le_bytes());
            }
        }
    }

    /// A GTID_TAGGED body: version 2, size, last non-ignorable field id, then fields
    /// 0 (flags), 1 (uuid), 2 (gno, zig-zag), 3 (tag), 4 (last_committed), 8 (length).
    fn tagged_body(uuid: [u8; 16], gno: i64, tag: &str) -> Vec<u8> {
        let mut fields = Vec::new();
        varlen(&mut fields, 0);
        varlen(&mut fields, 1);
        varlen(&mut fields, 1);
        for b in uuid {
            varlen(&mut fields, u64::from(b));
        }
        varlen(&mut fields, 2);
        varlen(&mut fields, (gno as u64) << 1);
        if !tag.is_empty() {
            varlen(&mut fields, 3);
            varlen(&mut fields, tag.len() as u64);
            fields.extend(tag.as_bytes());
        }
        varlen(&mut fields, 4);
        varlen(&mut fields, 1234 << 1);
        varlen(&mut fields, 8);
        varlen(&mut fields, 999);
        let mut lnif = Vec::new();
        varlen(&mut lnif, 8);
        // The size counts the version byte, itself and everything after.
        let rest = 1 + lnif.len() + fields.len();
        let mut size = Vec::new();
        varlen(&mut size, (rest + 1) as u64);
        if size.len() > 1 {
            size.clear();
            varlen(&mut size, (rest + 2) as u64);
        }
        let mut body = vec![2];
        body.extend(size);
        body.extend(lnif);
        body.extend(fields);
        body
    }

    #[test]
    fn tagged_gtid_from_bytes_built_per_the_format() {
        let uuid = [
            0x55, 0x77, 0x89, 0x04, 0x02, 0x99, 0x11, 0xf1, 0xb1, 0xb8, 0x4e, 0xf0, 0xc4, 0x95,
            0x6f, 0xeb,
        ];
        // A 32-character tag (the longest MySQL allows) and a gno that needs 5 bytes.
        let tag = "a_tag_of_thirty_two_characters__";
        let body = tagged_body(uuid, 123_456_789_012, tag);
        assert_eq!(
            tagged_gtid(&body).ok(),
            Some(format!(
                "55778904-0299-11f1-b1b8-4ef0c4956feb:{tag}:123456789012"
            ))
        );
        assert_eq!(
            tagged_gtid(&tagged_body(uuid, 7, "")).ok().as_deref(),
            Some("55778904-0299-11f1-b1b8-4ef0c4956feb:7")
        );
        // Cut anywhere inside the fields: an error, never a panic or a wrong GTID.
        for cut in 1..body.len() {
            let r = std::panic::catch_unwind(|| tagged_gtid(&body[..cut]));
            assert!(matches!(r, Ok(Err(_))), "cut at {cut}: a panic or a GTID");
        }
        let mut v3 = body.clone();
        v3[0] = 3;
        assert!(tagged_gtid(&v3).is_err());
    }

    #[test]
    fn pre_ga_rows_events_are_refused_under_any_fde() {
        let fde = FormatDescription::default();
        for t in 20..=22u8 {
            let ev = Event {
                header: EventHeader {
                    timestamp: 0,
                    event_type: EventType(t),
                    server_id: 1,
                    event_size: 30,
                    log_pos: 0,
                    flags: 0,
                },
                offset: 4,
                body: &[1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0],
                fde: &fde,
            };
            let err = decode(&ev, &mut TableMaps::default()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "pre-GA MySQL 5.1 rows event (type {t}) is not supported: its row format predates MySQL 5.1.18"
                )
            );
        }
    }
}
