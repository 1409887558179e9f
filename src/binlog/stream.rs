//! The one loop every reader of relay logs needs: next event, decode, flatten (a MySQL
//! TRANSACTION_PAYLOAD yields its inner events), and name the file and offset on every
//! error. `locate`, `dump`, the corpus tests and the benches all read events through it,
//! so a fix to framing, payloads or error context lands everywhere at once.

use super::Error;
use super::events::{self, Decoded, TableMaps};
use super::header::EventHeader;
use super::reader::BinlogReader;
use super::table_map::TableMap;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

/// One decoded event and where it was read.
#[derive(Debug)]
pub struct DecodedEvent {
    /// The file it was read from (shared, not copied, between the events of a file).
    pub file: Arc<Path>,
    /// Offset of the event in the file; for an event inside a TRANSACTION_PAYLOAD, the
    /// payload's offset (the inner events have no offset of their own in the file).
    pub offset: u64,
    /// Offset of the event after it in the file: where a transaction ending here ends.
    pub end: u64,
    /// The header in the file (the TRANSACTION_PAYLOAD's for an inner event): its
    /// `server_id` and `log_pos` are what SHOW SLAVE STATUS errors refer to.
    pub header: EventHeader,
    /// For an event from inside a TRANSACTION_PAYLOAD, its own header.
    pub inner: Option<EventHeader>,
    pub decoded: Decoded,
}

/// Decoded events of one file, or of consecutive files (see [`DecodedEvents::next_file`]).
///
/// Table maps are kept across events and files, because a rows event is decodable only
/// with the TABLE_MAP before it, which a relay log may have put in the previous file.
#[derive(Debug)]
pub struct DecodedEvents {
    reader: BinlogReader,
    file: Arc<Path>,
    maps: TableMaps,
    /// Inner events of a TRANSACTION_PAYLOAD not yielded yet.
    queue: VecDeque<DecodedEvent>,
    /// Set once the [`Iterator`] returned an error, so a `for` loop cannot spin on one.
    failed: bool,
}

impl DecodedEvents {
    pub fn new(reader: BinlogReader) -> Self {
        let file: Arc<Path> = Arc::from(reader.path());
        DecodedEvents {
            reader,
            file,
            maps: TableMaps::default(),
            queue: VecDeque::new(),
            failed: false,
        }
    }

    /// Every event of `path`, from the first.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        BinlogReader::open(path).map(Self::new)
    }

    /// The events of `path` from `pos`, an event boundary ([`BinlogReader::open_at`]).
    pub fn open_at(path: impl AsRef<Path>, pos: u64) -> Result<Self, Error> {
        BinlogReader::open_at(path, pos).map(Self::new)
    }

    /// Goes on with the next file of a sequence (relay-log rotation), keeping the table
    /// maps: a transaction can be split between files, even between a TABLE_MAP and its
    /// rows event.
    pub fn next_file(&mut self, path: impl AsRef<Path>) -> Result<(), Error> {
        self.reader = BinlogReader::open(path)?;
        self.file = Arc::from(self.reader.path());
        self.queue.clear();
        self.failed = false;
        Ok(())
    }

    /// The underlying reader (e.g. to ask whether `open_at` seeked or walked).
    pub fn reader(&self) -> &BinlogReader {
        &self.reader
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Offset of the next event in the file not read yet (inner events of a payload
    /// already read do not count): where a stop position is compared.
    pub fn position(&self) -> u64 {
        self.reader.position()
    }

    /// The TABLE_MAP a rows event refers to.
    pub fn table_map(&self, table_id: u64) -> Option<&TableMap> {
        self.maps.get(table_id)
    }

    /// Forgets the table maps, e.g. when a transaction is passed over.
    pub fn clear_table_maps(&mut self) {
        self.maps.clear();
    }

    /// The next decoded event, `Ok(None)` at a clean end of the file.
    ///
    /// A [`Error::Truncated`] event (the IO thread is still writing it) leaves the
    /// reader at that event's start, so a caller that waits and calls again reads it
    /// whole; every other error names the file and offset.
    pub fn next_event(&mut self) -> Result<Option<DecodedEvent>, Error> {
        if let Some(ev) = self.queue.pop_front() {
            return Ok(Some(ev));
        }
        let boundary = self.reader.position();
        let ev = match self.reader.next_event() {
            Ok(Some(ev)) => ev,
            Ok(None) => return Ok(None),
            Err(e @ Error::Truncated { .. }) => {
                self.reader.seek(boundary)?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let (header, offset) = (ev.header, ev.offset);
        let decoded = events::decode(&ev, &mut self.maps);
        let decoded = decoded.map_err(|kind| Error::Event {
            path: self.file.to_path_buf(),
            offset,
            event: header.event_type,
            kind,
        })?;
        let end = self.reader.position();
        let file = self.file.clone();
        let event = |inner, decoded| DecodedEvent {
            file: file.clone(),
            offset,
            end,
            header,
            inner,
            decoded,
        };
        match decoded {
            Decoded::Payload(inner) => {
                let mut inner = inner.into_iter();
                let Some((h, first)) = inner.next() else {
                    // An empty payload: yield it, so the caller still sees its position.
                    return Ok(Some(event(None, Decoded::Payload(Vec::new()))));
                };
                let first = event(Some(h), first);
                let rest: Vec<DecodedEvent> = inner.map(|(h, d)| event(Some(h), d)).collect();
                self.queue.extend(rest);
                Ok(Some(first))
            }
            d => Ok(Some(event(None, d))),
        }
    }
}

impl Iterator for DecodedEvents {
    type Item = Result<DecodedEvent, Error>;

    /// Stops after the first error (a `for` loop that logs and goes on would otherwise
    /// ask again forever on an unreadable file).
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_event() {
            Ok(ev) => ev.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
