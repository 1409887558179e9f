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
        })
    }

    /// Opens a file positioned at `pos`, which must be an event boundary. The events
    /// before it are walked (headers only, FDE bodies read) so that the checksum rule in
    /// force at `pos` is known; an offset inside an event is an error, never a guess.
    pub fn open_at(path: impl AsRef<Path>, pos: u64) -> Result<Self, Error> {
        let mut r = Self::open(path)?;
        while r.pos < pos {
            match r.next_header()? {
                Some(_) => r.skip_body()?,
                None => break,
            }
        }
        if r.pos != pos {
            return Err(Error::Format {
                path: r.path.clone(),
                offset: pos,
                message: format!(
                    "position {pos} is not the start of an event (nearest boundary at {})",
                    r.pos
                ),
            });
        }
        Ok(r)
    }

    pub fn path(&self) -> &Path {
        &self.path
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
                message: super::events::encryption_message(t),
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
        let Some((header, offset)) = self.pending.take() else {
            return Err(Error::Format {
                path: self.path.clone(),
                offset: self.pos,
                message: "read_body called with no pending event header".into(),
            });
        };
        let size = header.event_size as usize;
        // Bounded by the file length checked in next_header: never an untrusted allocation.
        self.buf.clear();
        self.buf.resize(size, 0);
        let (head, tail) = self.buf.split_at_mut(HEADER_LEN);
        head.copy_from_slice(&header_bytes(&header));
        if let Err(e) = self.file.read_exact(tail) {
            return Err(self.io(e));
        }
        self.pos = offset + size as u64;

        // The header length of the FDE in force; a new FDE is itself framed by the old one.
        let header_len = usize::from(self.fde.header_len);
        let body_end = if header.event_type == EventType::FORMAT_DESCRIPTION {
            let fde = FormatDescription::parse(self.buf.get(header_len..).unwrap_or_default())
                .map_err(|kind| Error::Event {
                    path: self.path.clone(),
                    offset,
                    event: header.event_type,
                    kind,
                })?;
            if fde.checksum == ChecksumAlg::Crc32 {
                // The FDE's CRC is computed with the in-use flag cleared (MYSQL_FACTS.md).
                let mut copy = self.buf[..size - 4].to_vec();
                let flags = header.flags & !LOG_EVENT_BINLOG_IN_USE_F;
                copy[17..19].copy_from_slice(&flags.to_le_bytes());
                self.verify_crc(&copy, &self.buf[size - 4..], offset, header)?;
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
                    let (data, stored) = self.buf.split_at(size - 4);
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
                        let (data, stored) = self.buf.split_at(size - 4);
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
        let Some(body) = self.buf.get(header_len..body_end) else {
            return Err(Error::Format {
                path: self.path.clone(),
                offset,
                message: format!(
                    "{} event of {size} bytes is shorter than its {header_len}-byte header and checksum",
                    header.event_type
                ),
            });
        };
        Ok(Event {
            header,
            offset,
            body,
            fde: &self.fde,
        })
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
