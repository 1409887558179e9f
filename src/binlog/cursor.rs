//! A bounds-checked reader over one event body: every read returns an error instead of
//! panicking when the bytes run out (a truncated or corrupt relay log must never panic).

use super::DecodeErrorKind;

pub type Result<T> = std::result::Result<T, DecodeErrorKind>;

#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` bytes, advancing past them.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        match rest.get(..n) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(DecodeErrorKind::Short {
                at: self.pos,
                needed: n - rest.len(),
            }),
        }
    }

    #[inline]
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// Little-endian unsigned integer of `n` bytes (1..=8).
    #[inline]
    pub fn uint_le(&mut self, n: usize) -> Result<u64> {
        let b = self.take(n)?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(b);
        Ok(u64::from_le_bytes(v))
    }

    /// Big-endian unsigned integer of `n` bytes (1..=8), as used by the temporal and
    /// decimal encodings.
    #[inline]
    pub fn uint_be(&mut self, n: usize) -> Result<u64> {
        let b = self.take(n)?;
        Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    #[inline]
    pub fn u16(&mut self) -> Result<u16> {
        Ok(self.uint_le(2)? as u16)
    }

    #[inline]
    pub fn u32(&mut self) -> Result<u32> {
        Ok(self.uint_le(4)? as u32)
    }

    /// MySQL's length-encoded ("packed") integer.
    #[inline]
    pub fn packed(&mut self) -> Result<u64> {
        match self.u8()? {
            n @ 0..=250 => Ok(u64::from(n)),
            251 => Err(DecodeErrorKind::Invalid(
                "NULL where a packed length was expected".into(),
            )),
            252 => self.uint_le(2),
            253 => self.uint_le(3),
            254 => self.uint_le(8),
            _ => Err(DecodeErrorKind::Invalid(
                "invalid packed integer prefix 255".into(),
            )),
        }
    }

    /// A packed length that must fit in what is left of the event; checked here so no
    /// caller ever allocates by an untrusted length.
    #[inline]
    pub fn packed_len(&mut self) -> Result<usize> {
        let n = self.packed()?;
        if n > self.remaining() as u64 {
            return Err(DecodeErrorKind::Short {
                at: self.pos,
                needed: (n - self.remaining() as u64) as usize,
            });
        }
        Ok(n as usize)
    }
}

impl Cursor<'_> {
    /// An unsigned integer in MySQL's serialization format (`mysql::serialization`, used
    /// by MySQL 8.4+ tagged GTID events): the number of trailing one bits of the first
    /// byte is the number of bytes that follow; the little-endian value of all the bytes,
    /// shifted right by their count, is the integer. `0xff` is followed by 8 raw bytes.
    pub fn varlen(&mut self) -> Result<u64> {
        let first = *self.buf.get(self.pos).ok_or(DecodeErrorKind::Short {
            at: self.pos,
            needed: 1,
        })?;
        let n = first.trailing_ones() as usize + 1;
        if n == 9 {
            self.take(1)?;
            return self.uint_le(8);
        }
        Ok(self.uint_le(n)? >> n)
    }

    /// A signed integer in MySQL's serialization format: zig-zag over [`Self::varlen`]
    /// (the lowest bit is the sign).
    pub fn varlen_signed(&mut self) -> Result<i64> {
        let u = self.varlen()?;
        let magnitude = (u >> 1) as i64;
        Ok(if u & 1 == 1 {
            -magnitude - 1
        } else {
            magnitude
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_read_is_an_error_not_a_panic() {
        let mut c = Cursor::new(&[1, 2, 3]);
        assert_eq!(c.uint_le(2), Ok(0x0201));
        assert_eq!(c.take(2), Err(DecodeErrorKind::Short { at: 2, needed: 1 }));
    }

    #[test]
    fn packed_integers() {
        let mut c = Cursor::new(&[250, 252, 0x34, 0x12, 253, 1, 2, 3]);
        assert_eq!(c.packed(), Ok(250));
        assert_eq!(c.packed(), Ok(0x1234));
        assert_eq!(c.packed(), Ok(0x030201));
    }

    #[test]
    fn packed_len_beyond_the_event_is_refused() {
        let mut c = Cursor::new(&[200, 1, 2]);
        assert!(c.packed_len().is_err());
    }

    #[test]
    fn mysql_serialization_varlen_integers() {
        // 60 in one byte (the payload size of a real MySQL 9.6 tagged GTID event), 153
        // in two (a UUID byte), 2^40 in the 9-byte form.
        let mut c = Cursor::new(&[0x78, 0x65, 0x02]);
        assert_eq!(c.varlen(), Ok(60));
        assert_eq!(c.varlen(), Ok(153));
        let mut nine = vec![0xff];
        nine.extend((1u64 << 40).to_le_bytes());
        assert_eq!(Cursor::new(&nine).varlen(), Ok(1 << 40));
        // Zig-zag: 3 is stored as 6, -3 as 5.
        assert_eq!(Cursor::new(&[6 << 1]).varlen_signed(), Ok(3));
        assert_eq!(Cursor::new(&[5 << 1]).varlen_signed(), Ok(-3));
        // The first byte promises more bytes than there are.
        assert!(Cursor::new(&[0x01]).varlen().is_err());
        assert!(Cursor::new(&[]).varlen().is_err());
    }

    #[test]
    fn big_endian() {
        let mut c = Cursor::new(&[0x80, 0, 1]);
        assert_eq!(c.uint_be(3), Ok(0x800001));
    }
}
