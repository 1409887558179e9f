//! One binlog or relay-log file, read event by event through a bounded buffer.
//!
//! Memory stays at one buffered read block plus the largest single event: a transaction is
//! never loaded whole. Headers can be walked without reading bodies (`skip_body`), which is
//! how `locate` crosses hundreds of megabytes quickly; FORMAT_DESCRIPTION bodies are always
//! read because each one sets the checksum rule for the events after it (a relay log mixes
//! the replica's own FDE with the primary's, see MYSQL_FACTS.md).

use super::Error;
use super::header::{
    ChecksumAlg, EventHeader, EventType, FormatDescription, HEADER_LEN, LOG_EVENT_BINLOG_IN_USE_F,
    MAGIC,
};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const READ_BLOCK: usize = 256 * 1024;
/// `\xfdbin`: the first bytes of a MySQL 8.0.14+ binlog written with binlog_encryption=ON
/// (a 512-byte encryption header replaces the usual magic).
const ENCRYPTED_MAGIC: [u8; 4] = [0xfd, b'b', b'i', b'n'];

/// One event: its header, where it starts in the file, and its body without the header
/// and without the checksum.
#[derive(Debug)]
pub struct Event<'a> {
    pub header: EventHeader,
    pub offset: u64,
    pub body: &'a [u8],
    /// The format description in force for this event.
    pub fde: &'a FormatDescription,
}

#[derive(Debug)]
pub struct BinlogReader {
    path: PathBuf,
    file: BufReader<File>,
    /// Offset of the next unread byte.
    pos: u64,
    /// Length of the file at the last stat; re-read when an event seems to run past it,
    /// because the relay log of a running replica grows while we read.
    file_len: u64,
    fde: FormatDescription,
    buf: Vec<u8>,
    /// Header of an event whose body has not been consumed yet, and its offset.
    pending: Option<(EventHeader, u64)>,
    /// Why [`Self::open_at`] walked the headers instead of seeking, if it did.
    walk_reason: Option<String>,
}

impl BinlogReader {
    /// Opens a file and checks the magic number; the next event read is the one at 4.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let f = File::open(&path).map_err(io)?;
        let file_len = f.metadata().map_err(io)?.len();
        let mut file = BufReader::with_capacity(READ_BLOCK, f);
        let mut magic = [0u8; 4];
        if file_len < 4 {
            return Err(Error::BadMagic { path });
        }
        file.read_exact(&mut magic).map_err(io)?;
        if magic == ENCRYPTED_MAGIC {
            return Err(Error::Format {
                path,
                offset: 0,
                message: "encrypted binlog (MySQL 8 binlog_encryption file header): not \
                          supported; read it through the server (mysqlbinlog \
                          --read-from-remote-server decrypts)"
                    .into(),
            });
        }
        if magic != MAGIC {
            return Err(Error::BadMagic { path });
        }
        Ok(BinlogReader {
            path,
            file,
            pos: 4,
            file_len,
            fde: FormatDescription::default(),
            buf: Vec::new(),
            pending: None,
            walk_reason: None,
        })
    }

    /// Opens a file positioned at `pos`, which must be an event boundary.
    ///
    /// The checksum rule at `pos` is set by the last FORMAT_DESCRIPTION event before it.
    /// Walking every header up to `pos` finds it for sure but costs ~0.15 s per 500 MB of
    /// small transactions, on the repair's critical path; so the FDEs at the head of the
    /// file (the replica's, then the primary's) are read, and the event at `pos` is checked
    /// under the last of them: sane header, within the file, CRC32 when that FDE says so,
    /// and a sane header right after it. A second primary FDE later in the file (the IO
    /// thread reconnected) that changed the checksum mode makes that check fail, and so
    /// does a position inside an event: then, and only then, the headers are walked
    /// (logged as a warning with the reason).
    pub fn open_at(path: impl AsRef<Path>, pos: u64) -> Result<Self, Error> {
        let mut r = Self::open(path)?;
        r.read_head(pos)?;
        if r.pos == pos {
            return Ok(r);
        }
        let head_end = r.pos;
        match r.check_event_at(pos) {
            Ok(()) => {
                r.seek(pos)?;
                Ok(r)
            }
            Err(reason) => {
                tracing::warn!(
                    "{}: cannot seek straight to offset {pos} ({reason}); reading every event header from offset {head_end} instead",
                    r.path.display()
                );
                r.seek(head_end)?;
                r.walk_to(pos)?;
                r.walk_reason = Some(reason);
                Ok(r)
            }
        }
    }

    /// Opens a file positioned at `pos` by walking every event header before it (the
    /// fallback of [`Self::open_at`], kept public so tests and benches can compare).
    pub fn open_at_by_walking(path: impl AsRef<Path>, pos: u64) -> Result<Self, Error> {
        let mut r = Self::open(path)?;
        r.walk_to(pos)?;
        Ok(r)
    }

    /// Reads the events that open a file before its first transaction (FDEs, ROTATE,
    /// PREVIOUS_GTIDS, GTID_LIST, BINLOG_CHECKPOINT), stopping at `pos`: they set the
    /// framing and checksum rule for what follows.
    fn read_head(&mut self, pos: u64) -> Result<(), Error> {
        // Bounded: a relay file opens with a handful of these, never hundreds.
        for _ in 0..32 {
            if self.pos >= pos {
                break;
            }
            let Some(h) = self.next_header()? else { break };
            let head = matches!(
                h.event_type,
                EventType::FORMAT_DESCRIPTION
                    | EventType::ROTATE
                    | EventType::PREVIOUS_GTIDS
                    | EventType::MARIADB_GTID_LIST
                    | EventType::MARIADB_BINLOG_CHECKPOINT
            );
            if !head {
                // Not consumed: the caller seeks from the start of this event.
                self.pending = None;
                let start = self.pos - HEADER_LEN as u64;
                self.seek(start)?;
                break;
            }
            self.skip_body()?;
        }
        Ok(())
    }

    /// Walks headers (FDE bodies read) from the current position to `pos`; an offset
    /// inside an event is an error, never a guess.
    fn walk_to(&mut self, pos: u64) -> Result<(), Error> {
        while self.pos < pos {
            match self.next_header()? {
                Some(_) => self.skip_body()?,
                None => break,
            }
        }
        if self.pos != pos {
            return Err(Error::Format {
                path: self.path.clone(),
                offset: pos,
                message: format!(
                    "position {pos} is not the start of an event (nearest boundary at {})",
                    self.pos
                ),
            });
        }
        Ok(())
    }

    /// Whether an event starts at `pos` under the FDE in force; the reason if not.
    /// Moves the file position (the caller seeks afterwards).
    fn check_event_at(&mut self, pos: u64) -> Result<(), String> {
        let header_len = u64::from(self.fde.header_len);
        self.refresh_len().map_err(|e| e.to_string())?;
        let h = self
            .header_at(pos)
            .map_err(|e| format!("cannot read an event header there: {e}"))?;
        let size = u64::from(h.event_size);
        sane_header(&h, header_len)?;
        if pos + size > self.file_len {
            return Err(format!(
                "a {size}-byte {} event there would end past the end of the file ({} bytes)",
                h.event_type, self.file_len
            ));
        }
        // log_pos is where the event ends in the primary's binlog (0 for events the
        // replica made up): never inside the primary's magic number and first header.
        if h.log_pos != 0 && u64::from(h.log_pos) < 4 + HEADER_LEN as u64 {
            return Err(format!(
                "implausible log_pos {} in the header there",
                h.log_pos
            ));
        }
        // An FDE there is checked by its own CRC when it is read.
        if self.fde.checksum == ChecksumAlg::Crc32 && h.event_type != EventType::FORMAT_DESCRIPTION
        {
            if size < header_len + 4 {
                return Err(format!(
                    "a {size}-byte {} event there has no room for its CRC32",
                    h.event_type
                ));
            }
            // Bounded by the file length checked above.
            let mut event = vec![0u8; h.event_size as usize];
            self.file
                .seek(SeekFrom::Start(pos))
                .and_then(|_| self.file.read_exact(&mut event))
                .map_err(|e| format!("cannot read the event there: {e}"))?;
            let (data, stored) = event.split_at(event.len() - 4);
            if crc32fast::hash(data).to_le_bytes() != stored {
                return Err(format!(
                    "the {} event there fails its CRC32 under the format description at the head of the file",
                    h.event_type
                ));
            }
        }
        // The next event must start right after it (or the file ends there): a random
        // offset rarely chains into a second sane header.
        let next = pos + size;
        if next + HEADER_LEN as u64 <= self.file_len {
            let n = self
                .header_at(next)
                .map_err(|e| format!("cannot read the header after it: {e}"))?;
            sane_header(&n, header_len).map_err(|e| format!("the event after it: {e}"))?;
        }
        Ok(())
    }

    fn header_at(&mut self, pos: u64) -> std::io::Result<EventHeader> {
        let mut b = [0u8; HEADER_LEN];
        self.file.seek(SeekFrom::Start(pos))?;
        self.file.read_exact(&mut b)?;
        Ok(EventHeader::parse(&b))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why [`Self::open_at`] could not seek straight to its position and walked the
    /// headers instead; `None` when it seeked (or was not used).
    pub fn walk_reason(&self) -> Option<&str> {
        self.walk_reason.as_deref()
    }

    /// Offset of the next event (or of the body of a pending one).
    pub fn position(&self) -> u64 {
        self.pending.map_or(self.pos, |(_, off)| off)
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn refresh_len(&mut self) -> Result<(), Error> {
        self.file_len = self
            .file
            .get_ref()
            .metadata()
            .map_err(|e| self.io(e))?
            .len();
        Ok(())
    }

    /// Reads the next common header. `Ok(None)` at a clean end of file; a partial header
    /// or an event that runs past the end of the file is [`Error::Truncated`].
    pub fn next_header(&mut self) -> Result<Option<EventHeader>, Error> {
        if self.pending.is_some() {
            self.skip_body()?;
        }
        let offset = self.pos;
        if offset + HEADER_LEN as u64 > self.file_len {
            self.refresh_len()?;
            if offset == self.file_len {
                return Ok(None);
            }
            if offset + HEADER_LEN as u64 > self.file_len {
                return Err(Error::Truncated {
                    path: self.path.clone(),
                    offset,
                    size: HEADER_LEN as u64,
                    available: self.file_len.saturating_sub(offset),
                });
            }
        }
        let mut h = [0u8; HEADER_LEN];
        self.file.read_exact(&mut h).map_err(|e| self.io(e))?;
        self.pos += HEADER_LEN as u64;
        let header = EventHeader::parse(&h);
        let t = header.event_type;
        if offset == 4 && t != EventType::FORMAT_DESCRIPTION {
            // Every binlog and relay log since MySQL 5.0 starts with its FDE, which says
            // how to frame what follows: without it nothing after can be trusted.
            let message = if t == EventType::START_V3 {
                "the log begins with a START_V3 event: a binlog format v1/v3 of MySQL \
                 before 5.0, which is not supported"
                    .to_string()
            } else {
                format!(
                    "the log does not begin with a FORMAT_DESCRIPTION event (found {t}, \
                     type {}): not a complete binlog or relay log (cut from another file?)",
                    t.0
                )
            };
            return Err(Error::Format {
                path: self.path.clone(),
                offset,
                message,
            });
        }
        if t.is_start_encryption() {
            // Refused at the header: the events after it are ciphertext, so walking on
            // would report garbage sizes or checksum mismatches instead.
            return Err(Error::Format {
                path: self.path.clone(),
                offset,
                message: super::header::encryption_message(t),
            });
        }
        // Servers that extend the common header (Google MySQL 5.1's group ids: 27 or 31
        // bytes) declare its length in the FDE; it frames every event after that FDE.
        let header_len = u32::from(self.fde.header_len);
        if header.event_size < header_len {
            return Err(Error::Format {
                path: self.path.clone(),
                offset,
                message: format!(
                    "{t} event declares a size of {} bytes, less than its own header ({header_len} bytes)",
                    header.event_size
                ),
            });
        }
        let end = offset + u64::from(header.event_size);
        if end > self.file_len {
            self.refresh_len()?;
            if end > self.file_len {
                return Err(Error::Truncated {
                    path: self.path.clone(),
                    offset,
                    size: u64::from(header.event_size),
                    available: self.file_len - offset,
                });
            }
        }
        self.pending = Some((header, offset));
        Ok(Some(header))
    }

    /// Moves past the body of the pending event without checking it, except for a
    /// FORMAT_DESCRIPTION event, which is always read because it changes the framing.
    pub fn skip_body(&mut self) -> Result<(), Error> {
        let Some((h, offset)) = self.pending else {
            return Ok(());
        };
        if h.event_type == EventType::FORMAT_DESCRIPTION {
            self.read_body()?;
            return Ok(());
        }
        let end = offset + u64::from(h.event_size);
        let skip = (end - self.pos) as i64;
        self.file.seek_relative(skip).map_err(|e| self.io(e))?;
        self.pos = end;
        self.pending = None;
        Ok(())
    }

    /// Reads and checks the body of the pending event.
    pub fn read_body(&mut self) -> Result<Event<'_>, Error> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let read = self.read_into(&mut buf);
        self.buf = buf;
        let (header, offset, body) = read?;
        Ok(Event {
            header,
            offset,
            body: &self.buf[body],
            fde: &self.fde,
        })
    }

    /// [`Self::read_body`], the whole event appended to `buf` (the body at the range
    /// returned): `decode` reads rows events straight into the batch a renderer takes.
    pub fn read_body_into(
        &mut self,
        buf: &mut Vec<u8>,
    ) -> Result<(EventHeader, u64, std::ops::Range<usize>), Error> {
        let start = buf.len();
        let read = self.read_into(buf);
        if read.is_err() {
            buf.truncate(start);
        }
        read
    }

    fn read_into(
        &mut self,
        buf: &mut Vec<u8>,
    ) -> Result<(EventHeader, u64, std::ops::Range<usize>), Error> {
        let Some((header, offset)) = self.pending.take() else {
            return Err(Error::Format {
                path: self.path.clone(),
                offset: self.pos,
                message: "read_body called with no pending event header".into(),
            });
        };
        let size = header.event_size as usize;
        // Bounded by the file length checked in next_header: never an untrusted allocation.
        let start = buf.len();
        buf.reserve(size);
        buf.extend_from_slice(&header_bytes(&header));
        // `take` + `read_to_end` fills the spare capacity without zeroing it first.
        let want = (size - HEADER_LEN) as u64;
        match (&mut self.file).take(want).read_to_end(buf) {
            Ok(n) if n as u64 == want => {}
            Ok(_) => {
                return Err(self.io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)));
            }
            Err(e) => return Err(self.io(e)),
        }
        self.pos = offset + size as u64;
        let ev = &buf[start..];

        // The header length of the FDE in force; a new FDE is itself framed by the old one.
        let header_len = usize::from(self.fde.header_len);
        let body_end = if header.event_type == EventType::FORMAT_DESCRIPTION {
            let fde = FormatDescription::parse(ev.get(header_len..).unwrap_or_default()).map_err(
                |kind| Error::Event {
                    path: self.path.clone(),
                    offset,
                    event: header.event_type,
                    kind,
                },
            )?;
            if fde.checksum == ChecksumAlg::Crc32 {
                // The FDE's CRC is computed with the in-use flag cleared (MYSQL_FACTS.md).
                let mut copy = ev[..size - 4].to_vec();
                let flags = header.flags & !LOG_EVENT_BINLOG_IN_USE_F;
                copy[17..19].copy_from_slice(&flags.to_le_bytes());
                self.verify_crc(&copy, &ev[size - 4..], offset, header)?;
            }
            let end = if fde.has_checksum_field {
                size - 5
            } else {
                size
            };
            self.fde = fde;
            end
        } else {
            match self.fde.checksum {
                ChecksumAlg::Crc32 if size >= header_len + 4 => {
                    let (data, stored) = ev.split_at(size - 4);
                    match self.verify_crc(data, stored, offset, header) {
                        Ok(()) => size - 4,
                        // A replica writes its own ROTATE/STOP into a relay log whose
                        // current FDE may be the primary's: accept one that is not
                        // checksummed rather than call a healthy file corrupt.
                        Err(_)
                            if matches!(header.event_type, EventType::ROTATE | EventType::STOP) =>
                        {
                            size
                        }
                        Err(e) => return Err(e),
                    }
                }
                _ => {
                    // No checksum announced, but a relay log can still carry events of a
                    // writer that checksums (mixed modes): recognise a valid trailing CRC.
                    if size >= header_len + 4 {
                        let (data, stored) = ev.split_at(size - 4);
                        if crc32fast::hash(data).to_le_bytes() == stored {
                            size - 4
                        } else {
                            size
                        }
                    } else {
                        size
                    }
                }
            }
        };
        if header_len > body_end {
            return Err(Error::Format {
                path: self.path.clone(),
                offset,
                message: format!(
                    "{} event of {size} bytes is shorter than its {header_len}-byte header and checksum",
                    header.event_type
                ),
            });
        }
        Ok((header, offset, start + header_len..start + body_end))
    }

    fn verify_crc(
        &self,
        data: &[u8],
        stored: &[u8],
        offset: u64,
        header: EventHeader,
    ) -> Result<(), Error> {
        let computed = crc32fast::hash(data);
        let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
        if computed != stored {
            return Err(Error::Checksum {
                path: self.path.clone(),
                offset,
                event: header.event_type,
                stored,
                computed,
            });
        }
        Ok(())
    }

    /// The next whole event, or `None` at a clean end of file.
    pub fn next_event(&mut self) -> Result<Option<Event<'_>>, Error> {
        match self.next_header()? {
            Some(_) => self.read_body().map(Some),
            None => Ok(None),
        }
    }

    /// Repositions at `pos` (an event boundary already seen) without re-walking, keeping
    /// the current checksum rule. Used to re-read a live relay log that was still growing.
    pub fn seek(&mut self, pos: u64) -> Result<(), Error> {
        self.file
            .seek(SeekFrom::Start(pos))
            .map_err(|e| self.io(e))?;
        self.pos = pos;
        self.pending = None;
        Ok(())
    }
}

/// MySQL's LOG_EVENT_IGNORABLE_F: an event of a type this reader may not know, which the
/// writer marked as safe to skip.
const LOG_EVENT_IGNORABLE_F: u16 = 0x80;

/// Header checks that need no body: a type this reader knows (or marked ignorable), a
/// size at least the header, a server id.
fn sane_header(h: &EventHeader, header_len: u64) -> Result<(), String> {
    let t = h.event_type;
    if (t.0 == 0 || t.name() == "UNKNOWN_TYPE") && h.flags & LOG_EVENT_IGNORABLE_F == 0 {
        return Err(format!("unknown event type {} in the header there", t.0));
    }
    if u64::from(h.event_size) < header_len {
        return Err(format!(
            "{t} event header declares {} bytes, less than its {header_len}-byte header",
            h.event_size
        ));
    }
    if h.server_id == 0 {
        return Err(format!("{t} event header has server id 0"));
    }
    Ok(())
}

fn header_bytes(h: &EventHeader) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[0..4].copy_from_slice(&h.timestamp.to_le_bytes());
    b[4] = h.event_type.0;
    b[5..9].copy_from_slice(&h.server_id.to_le_bytes());
    b[9..13].copy_from_slice(&h.event_size.to_le_bytes());
    b[13..17].copy_from_slice(&h.log_pos.to_le_bytes());
    b[17..19].copy_from_slice(&h.flags.to_le_bytes());
    b
}
