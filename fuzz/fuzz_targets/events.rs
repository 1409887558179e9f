//! Fuzzes the event decoder: input = one event type byte, a 2-byte length, a TABLE_MAP
//! body of that length, then the body of the event under test (decoded against that
//! TABLE_MAP). Also fuzzes the FDE, binary JSON, MariaDB zlib and MySQL payload parsers
//! with the same bytes. The decoder must return errors, never panic or over-allocate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use repl_repair::binlog::events::{self, TableMaps};
use repl_repair::binlog::header::{EventHeader, EventType, FormatDescription};
use repl_repair::binlog::reader::Event;

fuzz_target!(|data: &[u8]| {
    let _ = FormatDescription::parse(data);
    let _ = repl_repair::binlog::json::to_text(data);
    let _ = repl_repair::binlog::compress::uncompress(data);
    let _ = repl_repair::binlog::payload::decompress(data);
    let Some((&t, rest)) = data.split_first() else { return };
    let Some(len) = rest.get(..2).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]]))) else {
        return;
    };
    let rest = &rest[2..];
    let (map_body, body) = rest.split_at(len.min(rest.len()));
    let fde = FormatDescription::default();
    let mut maps = TableMaps::default();
    let header = |event_type| EventHeader {
        timestamp: 0,
        event_type,
        server_id: 1,
        event_size: 0,
        log_pos: 0,
        flags: 0,
    };
    let map_ev = Event { header: header(EventType::TABLE_MAP), offset: 4, body: map_body, fde: &fde };
    let _ = events::decode(&map_ev, &mut maps);
    let ev = Event { header: header(EventType(t)), offset: 4, body, fde: &fde };
    let _ = events::decode(&ev, &mut maps);
});
