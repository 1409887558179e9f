//! MySQL 8.0.20+ TRANSACTION_PAYLOAD (type 40, binlog_transaction_compression): a whole
//! transaction's events, zstd-compressed, in one event. Its fields follow the common
//! header directly (no post-header): (type, length, value) triples of packed integers
//! until an end mark, then the payload. The inner events carry no checksum.

use super::DecodeErrorKind;
use super::cursor::Cursor;
use super::header::{EventHeader, HEADER_LEN};
use std::io::Read;

const END_MARK: u64 = 0;
const PAYLOAD_SIZE: u64 = 1;
const COMPRESSION_TYPE: u64 = 2;
const UNCOMPRESSED_SIZE: u64 = 3;
const ZSTD: u64 = 0;
const NONE: u64 = 255;
/// A decompressed payload larger than this is refused rather than allocated.
const MAX_UNCOMPRESSED: u64 = 1 << 30;

/// The transaction's events, decompressed.
pub fn decompress(body: &[u8]) -> Result<Vec<u8>, DecodeErrorKind> {
    let mut c = Cursor::new(body);
    let (mut size, mut compression, mut uncompressed) = (None, ZSTD, None);
    loop {
        let field = c.packed()?;
        if field == END_MARK {
            break;
        }
        let len = c.packed_len()?;
        let value = Cursor::new(c.take(len)?).packed()?;
        match field {
            PAYLOAD_SIZE => size = Some(value),
            COMPRESSION_TYPE => compression = value,
            UNCOMPRESSED_SIZE => uncompressed = Some(value),
            _ => {}
        }
    }
    let payload = c.rest();
    if let Some(n) = size
        && n != payload.len() as u64
    {
        return Err(DecodeErrorKind::Invalid(format!(
            "transaction payload declares {n} bytes, carries {}",
            payload.len()
        )));
    }
    let limit = uncompressed
        .unwrap_or(MAX_UNCOMPRESSED)
        .min(MAX_UNCOMPRESSED);
    match compression {
        NONE => Ok(payload.to_vec()),
        ZSTD => {
            let mut out = Vec::with_capacity(limit.min(64 << 20) as usize);
            zstd::stream::read::Decoder::new(payload)
                .map_err(|e| DecodeErrorKind::Invalid(format!("zstd: {e}")))?
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(|e| DecodeErrorKind::Invalid(format!("zstd: {e}")))?;
            if uncompressed.is_some_and(|u| u != out.len() as u64) {
                return Err(DecodeErrorKind::Invalid(format!(
                    "transaction payload inflates to {} bytes, declared {limit}",
                    out.len()
                )));
            }
            Ok(out)
        }
        other => Err(DecodeErrorKind::Invalid(format!(
            "unknown transaction payload compression {other}"
        ))),
    }
}

/// Splits decompressed payload bytes into (header, body) events.
pub fn events(data: &[u8]) -> Result<Vec<(EventHeader, &[u8])>, DecodeErrorKind> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let head: &[u8; HEADER_LEN] = rest
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeErrorKind::Short {
                at: data.len() - rest.len(),
                needed: HEADER_LEN.saturating_sub(rest.len()),
            })?;
        let h = EventHeader::parse(head);
        let size = h.event_size as usize;
        if size < HEADER_LEN || size > rest.len() {
            return Err(DecodeErrorKind::Invalid(format!(
                "inner event of {size} bytes at payload offset {} (payload {} bytes)",
                data.len() - rest.len(),
                data.len()
            )));
        }
        out.push((h, &rest[HEADER_LEN..size]));
        rest = &rest[size..];
    }
    Ok(out)
}
