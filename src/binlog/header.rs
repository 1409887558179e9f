//! The common event header and the FORMAT_DESCRIPTION event, which together say how every
//! following event is framed (header length, post-header lengths, checksum algorithm).

use super::DecodeErrorKind;
use super::cursor::Cursor;
use std::fmt;

/// Length of the v4 common header: timestamp, type, server_id, event_size, log_pos, flags.
pub const HEADER_LEN: usize = 19;
/// `\xfebin`, at offset 0 of every binlog and relay log.
pub const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];
/// Set in the FDE of a binlog still open for writing; cleared before computing the FDE's CRC.
pub const LOG_EVENT_BINLOG_IN_USE_F: u16 = 0x1;

/// An event type code. A newtype, not an enum: unknown codes (Aurora's 100, MySQL's
/// newer types) are valid input and are skipped by length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventType(pub u8);

impl EventType {
    pub const UNKNOWN: Self = Self(0);
    pub const START_V3: Self = Self(1);
    pub const QUERY: Self = Self(2);
    pub const STOP: Self = Self(3);
    pub const ROTATE: Self = Self(4);
    pub const INTVAR: Self = Self(5);
    pub const RAND: Self = Self(13);
    pub const USER_VAR: Self = Self(14);
    pub const FORMAT_DESCRIPTION: Self = Self(15);
    pub const XID: Self = Self(16);
    pub const TABLE_MAP: Self = Self(19);
    /// Rows events of MySQL 5.1 before 5.1.18 (pre-GA), in a format nobody reads today.
    pub const PRE_GA_WRITE_ROWS: Self = Self(20);
    pub const PRE_GA_UPDATE_ROWS: Self = Self(21);
    pub const PRE_GA_DELETE_ROWS: Self = Self(22);
    pub const WRITE_ROWS_V1: Self = Self(23);
    pub const UPDATE_ROWS_V1: Self = Self(24);
    pub const DELETE_ROWS_V1: Self = Self(25);
    pub const INCIDENT: Self = Self(26);
    pub const HEARTBEAT: Self = Self(27);
    pub const ROWS_QUERY: Self = Self(29);
    pub const WRITE_ROWS_V2: Self = Self(30);
    pub const UPDATE_ROWS_V2: Self = Self(31);
    pub const DELETE_ROWS_V2: Self = Self(32);
    pub const GTID: Self = Self(33);
    pub const ANONYMOUS_GTID: Self = Self(34);
    pub const PREVIOUS_GTIDS: Self = Self(35);
    pub const PARTIAL_UPDATE_ROWS: Self = Self(39);
    pub const TRANSACTION_PAYLOAD: Self = Self(40);
    /// MySQL 8.4+ GTID with a tag (`uuid:tag:gno`), serialized with mysql::serialization.
    pub const GTID_TAGGED: Self = Self(42);
    /// Percona Server 5.7 binlog encryption: every event after it is encrypted.
    pub const PERCONA_START_ENCRYPTION: Self = Self(159);
    pub const MARIADB_ANNOTATE_ROWS: Self = Self(160);
    pub const MARIADB_BINLOG_CHECKPOINT: Self = Self(161);
    pub const MARIADB_GTID: Self = Self(162);
    pub const MARIADB_GTID_LIST: Self = Self(163);
    pub const MARIADB_START_ENCRYPTION: Self = Self(164);
    pub const MARIADB_QUERY_COMPRESSED: Self = Self(165);
    pub const MARIADB_WRITE_ROWS_COMPRESSED_V1: Self = Self(166);
    pub const MARIADB_UPDATE_ROWS_COMPRESSED_V1: Self = Self(167);
    pub const MARIADB_DELETE_ROWS_COMPRESSED_V1: Self = Self(168);
    pub const MARIADB_WRITE_ROWS_COMPRESSED: Self = Self(169);
    pub const MARIADB_UPDATE_ROWS_COMPRESSED: Self = Self(170);
    pub const MARIADB_DELETE_ROWS_COMPRESSED: Self = Self(171);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "UNKNOWN",
            1 => "START_V3",
            2 => "QUERY",
            3 => "STOP",
            4 => "ROTATE",
            5 => "INTVAR",
            6 => "LOAD",
            7 => "SLAVE",
            8 => "CREATE_FILE",
            9 => "APPEND_BLOCK",
            10 => "EXEC_LOAD",
            11 => "DELETE_FILE",
            12 => "NEW_LOAD",
            13 => "RAND",
            14 => "USER_VAR",
            15 => "FORMAT_DESCRIPTION",
            16 => "XID",
            17 => "BEGIN_LOAD_QUERY",
            18 => "EXECUTE_LOAD_QUERY",
            19 => "TABLE_MAP",
            20 => "PRE_GA_WRITE_ROWS",
            21 => "PRE_GA_UPDATE_ROWS",
            22 => "PRE_GA_DELETE_ROWS",
            23 => "WRITE_ROWS_V1",
            24 => "UPDATE_ROWS_V1",
            25 => "DELETE_ROWS_V1",
            26 => "INCIDENT",
            27 => "HEARTBEAT",
            28 => "IGNORABLE",
            29 => "ROWS_QUERY",
            30 => "WRITE_ROWS",
            31 => "UPDATE_ROWS",
            32 => "DELETE_ROWS",
            33 => "GTID",
            34 => "ANONYMOUS_GTID",
            35 => "PREVIOUS_GTIDS",
            36 => "TRANSACTION_CONTEXT",
            37 => "VIEW_CHANGE",
            38 => "XA_PREPARE",
            39 => "PARTIAL_UPDATE_ROWS",
            40 => "TRANSACTION_PAYLOAD",
            41 => "HEARTBEAT_V2",
            42 => "GTID_TAGGED",
            159 => "START_5_7_ENCRYPTION",
            160 => "ANNOTATE_ROWS",
            161 => "BINLOG_CHECKPOINT",
            162 => "MARIADB_GTID",
            163 => "GTID_LIST",
            164 => "START_ENCRYPTION",
            165 => "QUERY_COMPRESSED",
            166 => "WRITE_ROWS_COMPRESSED_V1",
            167 => "UPDATE_ROWS_COMPRESSED_V1",
            168 => "DELETE_ROWS_COMPRESSED_V1",
            169 => "WRITE_ROWS_COMPRESSED",
            170 => "UPDATE_ROWS_COMPRESSED",
            171 => "DELETE_ROWS_COMPRESSED",
            _ => "UNKNOWN_TYPE",
        }
    }

    /// WRITE/UPDATE/DELETE rows events, v1 and v2, and MySQL's PARTIAL_UPDATE_ROWS (not compressed ones: see [`Self::is_compressed_rows`]).
    pub fn is_rows(self) -> bool {
        matches!(self.0, 23..=25 | 30..=32 | 39)
    }

    /// MySQL 5.1 pre-GA rows events (20-22), refused by name.
    pub fn is_pre_ga_rows(self) -> bool {
        matches!(self.0, 20..=22)
    }

    /// START_ENCRYPTION of Percona Server 5.7 (159) or MariaDB (164): the events after it
    /// are encrypted with a key this tool does not have.
    pub fn is_start_encryption(self) -> bool {
        matches!(self.0, 159 | 164)
    }

    /// MariaDB's zlib-compressed rows events (log_bin_compress). Relay logs hold them
    /// decompressed, binlogs of the primary do not.
    pub fn is_compressed_rows(self) -> bool {
        matches!(self.0, 166..=171)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.name();
        if n == "UNKNOWN_TYPE" {
            write!(f, "type {}", self.0)
        } else {
            f.write_str(n)
        }
    }
}

/// The 19-byte common header, fields in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHeader {
    /// Seconds since the epoch when the statement began on the primary.
    pub timestamp: u32,
    pub event_type: EventType,
    /// The server that wrote the event first (the primary's id for relayed events).
    pub server_id: u32,
    /// Whole event length: header, body and checksum.
    pub event_size: u32,
    /// End of this event in the *originating* binlog; relay logs keep the primary's value.
    pub log_pos: u32,
    pub flags: u16,
}

impl EventHeader {
    pub fn parse(b: &[u8; HEADER_LEN]) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        EventHeader {
            timestamp: u32_at(0),
            event_type: EventType(b[4]),
            server_id: u32_at(5),
            event_size: u32_at(9),
            log_pos: u32_at(13),
            flags: u16::from_le_bytes([b[17], b[18]]),
        }
    }
}

/// Checksum algorithm announced by an FDE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlg {
    None,
    Crc32,
}

/// The FORMAT_DESCRIPTION event: the context that drives how later events are framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatDescription {
    pub binlog_version: u16,
    /// e.g. `10.11.19-MariaDB-log` or `8.0.36`.
    pub server_version: String,
    pub create_timestamp: u32,
    pub header_len: u8,
    /// Post-header length per event type, indexed by `type - 1`.
    pub post_header_lens: Vec<u8>,
    pub checksum: ChecksumAlg,
    /// Whether the FDE itself ends with the algorithm byte and a 4-byte checksum field.
    pub has_checksum_field: bool,
}

impl Default for FormatDescription {
    /// What applies before any FDE is read: v4 framing, no checksum.
    fn default() -> Self {
        FormatDescription {
            binlog_version: 4,
            server_version: String::new(),
            create_timestamp: 0,
            header_len: HEADER_LEN as u8,
            post_header_lens: Vec::new(),
            checksum: ChecksumAlg::None,
            has_checksum_field: false,
        }
    }
}

/// `(major, minor, patch)` from a server version string such as `5.6.35-log`.
pub fn parse_version(v: &str) -> (u32, u32, u32) {
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

impl FormatDescription {
    /// Parses an FDE body (everything after the common header, *including* the trailing
    /// checksum bytes, whose presence only the body itself can tell).
    pub fn parse(body: &[u8]) -> Result<Self, DecodeErrorKind> {
        let mut c = Cursor::new(body);
        let binlog_version = c.u16()?;
        let raw_version = c.take(50)?;
        let end = raw_version.iter().position(|&b| b == 0).unwrap_or(50);
        let server_version = String::from_utf8_lossy(&raw_version[..end]).into_owned();
        let create_timestamp = c.u32()?;
        let header_len = c.u8()?;
        if usize::from(header_len) < HEADER_LEN {
            return Err(DecodeErrorKind::Invalid(format!(
                "format description declares a header length of {header_len} (< 19)"
            )));
        }
        // Checksum-aware servers (MySQL >= 5.6.1, MariaDB >= 5.3) always end the FDE with
        // the algorithm byte and a 4-byte checksum field, whatever the algorithm.
        let ver = parse_version(&server_version);
        let aware = if server_version.contains("MariaDB") {
            ver >= (5, 3, 0)
        } else {
            ver >= (5, 6, 1)
        };
        let rest = c.rest();
        let has_checksum_field = aware && rest.len() >= 5;
        let (post_header_lens, checksum) = if has_checksum_field {
            let split = rest.len() - 5;
            let alg = match rest[split] {
                0 => ChecksumAlg::None,
                1 => ChecksumAlg::Crc32,
                // 0xff: "undefined", written by servers that predate checksums.
                0xff => ChecksumAlg::None,
                other => {
                    return Err(DecodeErrorKind::Invalid(format!(
                        "unknown checksum algorithm {other} in format description"
                    )));
                }
            };
            (rest[..split].to_vec(), alg)
        } else {
            (rest.to_vec(), ChecksumAlg::None)
        };
        Ok(FormatDescription {
            binlog_version,
            server_version,
            create_timestamp,
            header_len,
            post_header_lens,
            checksum,
            has_checksum_field,
        })
    }

    /// Post-header length of `t`, as this FDE declares it (0 when it declares none).
    pub fn post_header_len(&self, t: EventType) -> usize {
        usize::from(t.0)
            .checked_sub(1)
            .and_then(|i| self.post_header_lens.get(i))
            .map_or(0, |&n| usize::from(n))
    }

    /// Whether this FDE comes from a MySQL 5.1 pre-GA server (before 5.1.18), whose row
    /// format (rows events 20-22, TABLE_MAPs without metadata) is not supported: it
    /// declares post-header lengths, but none for WRITE_ROWS_V1 (type 23).
    pub fn is_pre_ga_row_format(&self) -> bool {
        !self.post_header_lens.is_empty()
            && self.post_header_lens.len() < usize::from(EventType::WRITE_ROWS_V1.0)
    }

    /// Table ids are 6 bytes, except in servers whose TABLE_MAP post-header is 6 bytes long.
    pub fn table_id_len(&self) -> usize {
        if self.post_header_len(EventType::TABLE_MAP) == 6 {
            4
        } else {
            6
        }
    }
}

/// Why a log with a START_ENCRYPTION event cannot be read, naming whose event it is.
pub fn encryption_message(t: EventType) -> String {
    let whose = if t == EventType::PERCONA_START_ENCRYPTION {
        "Percona/MySQL"
    } else {
        "MariaDB"
    };
    format!(
        "encrypted binlog ({whose} START_ENCRYPTION event, type {}): not supported; the \
         events after it are encrypted with a key from the server's keyring (read them \
         through the server, e.g. mysqlbinlog --read-from-remote-server, which decrypts)",
        t.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("10.11.19-MariaDB-log"), (10, 11, 19));
        assert_eq!(parse_version("5.6.35-log"), (5, 6, 35));
        assert_eq!(parse_version("8.0.36"), (8, 0, 36));
    }

    #[test]
    fn unknown_event_types_display_their_code() {
        assert_eq!(EventType(100).to_string(), "type 100");
        assert_eq!(EventType::TABLE_MAP.to_string(), "TABLE_MAP");
    }
}
