//! MariaDB's compressed events (`log_bin_compress`, types 165–171): the payload is a
//! header byte `0x80 | n`, the uncompressed length in `n` (1..4) big-endian bytes, then
//! a zlib stream (MariaDB `binlog_buf_compress`). A replica's relay log holds these
//! events decompressed; the primary's binlog does not.

use super::DecodeErrorKind;
use std::io::Read;

/// The largest event a server writes (max_allowed_packet's ceiling): a declared length
/// above it is corruption, and is never allocated.
const MAX_UNCOMPRESSED: u64 = 1 << 30;

pub fn uncompress(data: &[u8]) -> Result<Vec<u8>, DecodeErrorKind> {
    let invalid = |m: String| DecodeErrorKind::Invalid(m);
    let (&head, rest) = data
        .split_first()
        .ok_or_else(|| invalid("empty compressed payload".into()))?;
    let lenlen = usize::from(head & 0x07);
    if head & 0x80 == 0 || !(1..=4).contains(&lenlen) {
        return Err(invalid(format!(
            "bad compressed-payload header byte {head:#04x}"
        )));
    }
    let (len_bytes, stream) = rest
        .split_at_checked(lenlen)
        .ok_or(DecodeErrorKind::Short {
            at: 1,
            needed: lenlen.saturating_sub(rest.len()),
        })?;
    let len = len_bytes.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
    if len > MAX_UNCOMPRESSED {
        return Err(invalid(format!("compressed payload declares {len} bytes")));
    }
    let mut out = Vec::with_capacity(len as usize);
    flate2::read::ZlibDecoder::new(stream)
        .take(len + 1)
        .read_to_end(&mut out)
        .map_err(|e| invalid(format!("zlib: {e}")))?;
    if out.len() as u64 != len {
        return Err(invalid(format!(
            "compressed payload inflates to {} bytes, its header says {len}",
            out.len()
        )));
    }
    Ok(out)
}

/// A MariaDB compressed column value (`VARCHAR/TEXT … COMPRESSED`, binlog types 140 and
/// 141), as stored: a header byte, 0 for "stored raw"; else `0x80 | flag | n` with the
/// original length in `n` big-endian bytes, then the deflate data. Observed on MariaDB
/// 10.11 (fixtures/mariadb-10.11/mariadb-types): header 0x8a, i.e. flag 0x08 set, with
/// a raw deflate stream; a stream without the flag is read as zlib-wrapped.
pub fn uncompress_column(data: &[u8]) -> Result<Vec<u8>, DecodeErrorKind> {
    let invalid = |m: String| DecodeErrorKind::Invalid(format!("compressed column: {m}"));
    let Some((&head, rest)) = data.split_first() else {
        // An empty string is stored as nothing at all.
        return Ok(Vec::new());
    };
    if head == 0 {
        return Ok(rest.to_vec());
    }
    let lenlen = usize::from(head & 0x07);
    if head & 0x80 == 0 || !(1..=4).contains(&lenlen) {
        return Err(invalid(format!("bad header byte {head:#04x}")));
    }
    let (len_bytes, stream) = rest
        .split_at_checked(lenlen)
        .ok_or_else(|| invalid("truncated length".into()))?;
    let len = len_bytes.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
    if len > MAX_UNCOMPRESSED {
        return Err(invalid(format!("declares {len} bytes")));
    }
    let mut out = Vec::with_capacity(len as usize);
    let res = if head & 0x08 != 0 {
        flate2::read::DeflateDecoder::new(stream)
            .take(len + 1)
            .read_to_end(&mut out)
    } else {
        flate2::read::ZlibDecoder::new(stream)
            .take(len + 1)
            .read_to_end(&mut out)
    };
    res.map_err(|e| invalid(format!("inflate: {e}")))?;
    if out.len() as u64 != len {
        return Err(invalid(format!(
            "inflates to {} bytes, header says {len}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn compress(data: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data)?;
        let z = e.finish()?;
        let mut out = vec![0x81, data.len() as u8];
        out.extend(z);
        Ok(out)
    }

    #[test]
    fn round_trip_and_length_check() -> std::io::Result<()> {
        let c = compress(b"hello rows")?;
        assert_eq!(uncompress(&c), Ok(b"hello rows".to_vec()));
        let mut lying = c.clone();
        lying[1] = 3;
        assert!(uncompress(&lying).is_err());
        assert!(uncompress(&[0x05]).is_err());
        assert!(uncompress(&[]).is_err());
        Ok(())
    }
}
