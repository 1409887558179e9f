use repl_repair::binlog::{self, BinlogReader, Decoded, TableMaps};
fn main() {
    for p in std::env::args().skip(1) {
        let mut r = match BinlogReader::open(&p) {
            Ok(r) => r,
            Err(e) => {
                println!("ERR {e}");
                continue;
            }
        };
        let mut maps = TableMaps::default();
        let (mut n, mut rows) = (0, 0);
        let mut err = None;
        loop {
            match r.next_event() {
                Ok(Some(ev)) => {
                    n += 1;
                    match binlog::events::decode(&ev, &mut maps) {
                        Ok(Decoded::Rows(re)) => rows += re.rows.len(),
                        Ok(_) => {}
                        Err(e) => {
                            err = Some(format!(
                                "offset {} {}: {e}",
                                ev.offset, ev.header.event_type
                            ));
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    err = Some(e.to_string());
                    break;
                }
            }
        }
        println!("{p}: events={n} rows={rows} {}", err.unwrap_or_default());
    }
}
