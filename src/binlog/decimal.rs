//! DECIMAL in MySQL's binary format (`strings/decimal.c`), decoded to exact text. Shared
//! by row values ([`super::value`]) and JSON documents ([`super::json`]), so it depends on
//! neither.

use super::DecodeErrorKind;
use super::cursor::{Cursor, Result};
use super::digits::{padded, u64_at};

const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Bytes of a DECIMAL(precision, scale) in binary form.
#[inline]
pub fn decimal_size(precision: u8, scale: u8) -> Result<usize> {
    if scale > precision || precision > 65 || precision == 0 {
        return Err(DecodeErrorKind::Invalid(format!(
            "DECIMAL({precision},{scale}) is not a valid precision/scale"
        )));
    }
    let intg = usize::from(precision - scale);
    let frac = usize::from(scale);
    Ok((intg / 9) * 4 + DIG2BYTES[intg % 9] + (frac / 9) * 4 + DIG2BYTES[frac % 9])
}

/// DECIMAL(precision, scale) in MySQL's binary format, rendered as exact text. Groups of
/// nine digits take four big-endian bytes; the sign is the inverted top bit, and negative
/// numbers have every byte inverted.
pub fn decimal(c: &mut Cursor<'_>, precision: u8, scale: u8) -> Result<String> {
    let mut out = Vec::with_capacity(usize::from(precision) + 3);
    decimal_into(c, precision, scale, &mut out)?;
    // Only ASCII digits, '-' and '.' were written.
    Ok(out.into_iter().map(char::from).collect())
}

/// [`decimal`] appended to `out`, allocating nothing: `decode` renders every DECIMAL of
/// every row this way.
pub fn decimal_into(c: &mut Cursor<'_>, precision: u8, scale: u8, out: &mut Vec<u8>) -> Result<()> {
    let raw = c.take(decimal_size(precision, scale)?)?;
    let start = out.len();
    if fast(raw, precision, scale, out).is_none() {
        // A group beyond its digits (corrupt bytes): the digit-by-digit path says what
        // such a value has always printed as.
        out.truncate(start);
        digitwise(raw, precision, scale, out)?;
    }
    Ok(())
}

const POW10: [u32; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// A decimal of at most 65 digits, a sign and a point.
const MAX_TEXT: usize = 67;

/// The groups of a DECIMAL's binary form, in order, as numbers.
struct Groups<'a> {
    raw: &'a [u8],
    pos: usize,
    /// All ones for a negative number, whose bytes are stored inverted.
    invert: u32,
}

impl Groups<'_> {
    /// The next group of `n` (1..=4) bytes.
    #[inline(always)]
    fn next(&mut self, n: usize) -> Option<u32> {
        let v = match *self.raw.get(self.pos..self.pos + n)? {
            [a] => u32::from(a),
            [a, b] => u32::from(u16::from_be_bytes([a, b])),
            [a, b, c] => u32::from_be_bytes([0, a, b, c]),
            [a, b, c, d] => u32::from_be_bytes([a, b, c, d]),
            _ => return None,
        };
        // The sign is the inverted top bit of the first byte.
        let sign = if self.pos == 0 {
            0x80 << (8 * (n - 1))
        } else {
            0
        };
        self.pos += n;
        Some((v ^ sign ^ self.invert) & (u32::MAX >> (32 - 8 * n)))
    }
}

/// [`decimal_into`] a group of nine digits at a time (each group is a u32 < 10^9);
/// `None` if a group holds more than its digits, which only corrupt bytes do.
#[inline]
fn fast(raw: &[u8], precision: u8, scale: u8, out: &mut Vec<u8>) -> Option<()> {
    let intg = usize::from(precision.checked_sub(scale)?);
    let (intg0, intg0x) = (intg / 9, intg % 9);
    let (frac0, frac0x) = (usize::from(scale) / 9, usize::from(scale) % 9);
    let negative = raw.first()? & 0x80 == 0;
    let mut groups = Groups {
        raw,
        pos: 0,
        invert: if negative { u32::MAX } else { 0 },
    };
    let len = out.len();
    out.resize(len + MAX_TEXT, 0);
    let b = &mut out[len..];
    b[0] = b'-';
    let mut i = usize::from(negative);
    // Integer digits: the leading partial group, then whole groups; no leading zeros.
    let mut started = false;
    if intg0x > 0 {
        let g = groups.next(DIG2BYTES[intg0x])?;
        if g >= POW10[intg0x] {
            return None;
        }
        if g != 0 {
            i += u64_at(&mut b[i..], g.into());
            started = true;
        }
    }
    for _ in 0..intg0 {
        let g = groups.next(4)?;
        if g >= POW10[9] {
            return None;
        }
        if started {
            padded(&mut b[i..], g, 9);
            i += 9;
        } else if g != 0 {
            i += u64_at(&mut b[i..], g.into());
            started = true;
        }
    }
    if !started {
        b[i] = b'0';
        i += 1;
    }
    if scale > 0 {
        b[i] = b'.';
        i += 1;
        for _ in 0..frac0 {
            let g = groups.next(4)?;
            if g >= POW10[9] {
                return None;
            }
            padded(&mut b[i..], g, 9);
            i += 9;
        }
        if frac0x > 0 {
            let g = groups.next(DIG2BYTES[frac0x])?;
            if g >= POW10[frac0x] {
                return None;
            }
            padded(&mut b[i..], g, frac0x);
            i += frac0x;
        }
    }
    out.truncate(len + i);
    Some(())
}

/// The digit-by-digit rendering: each group's low digits, whatever the group holds.
fn digitwise(raw: &[u8], precision: u8, scale: u8, out: &mut Vec<u8>) -> Result<()> {
    let intg = usize::from(precision - scale);
    let (intg0, intg0x) = (intg / 9, intg % 9);
    let (frac0, frac0x) = (usize::from(scale) / 9, usize::from(scale) % 9);
    let negative = raw.first().is_some_and(|b| b & 0x80 == 0);
    // At most 65 digits: 32 bytes.
    let mut bytes = [0u8; 32];
    let bytes = bytes
        .get_mut(..raw.len())
        .ok_or_else(|| DecodeErrorKind::Invalid(format!("DECIMAL of {} bytes", raw.len())))?;
    bytes.copy_from_slice(raw);
    if let Some(b) = bytes.first_mut() {
        *b ^= 0x80;
    }
    if negative {
        bytes.iter_mut().for_each(|b| *b = !*b);
    }
    let mut d = Cursor::new(bytes);
    if negative {
        out.push(b'-');
    }
    let mut started = false;
    let push_group = |out: &mut Vec<u8>, g: u64, width: usize, started: &mut bool| {
        let mut digits = [b'0'; 9];
        let mut v = g;
        for slot in digits[..width].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        for &dg in &digits[..width] {
            if *started || dg != b'0' {
                *started = true;
                out.push(dg);
            }
        }
    };
    if intg0x > 0 {
        let g = d.uint_be(DIG2BYTES[intg0x])?;
        push_group(out, g, intg0x, &mut started);
    }
    for _ in 0..intg0 {
        let g = d.uint_be(4)?;
        push_group(out, g, 9, &mut started);
    }
    if !started {
        out.push(b'0');
    }
    if scale > 0 {
        out.push(b'.');
        let mut all = true;
        for _ in 0..frac0 {
            let g = d.uint_be(4)?;
            push_group(out, g, 9, &mut all);
        }
        if frac0x > 0 {
            let g = d.uint_be(DIG2BYTES[frac0x])?;
            push_group(out, g, frac0x, &mut all);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(bytes: &[u8], p: u8, s: u8) -> String {
        decimal(&mut Cursor::new(bytes), p, s).unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn decimal_examples_from_the_mysql_manual() {
        // 1234567890.1234 as DECIMAL(14,4): the example in strings/decimal.c.
        assert_eq!(
            dec(&[0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2], 14, 4),
            "1234567890.1234"
        );
        assert_eq!(
            dec(&[0x7E, 0xF2, 0x04, 0xC7, 0x2D, 0xFB, 0x2D], 14, 4),
            "-1234567890.1234"
        );
    }

    /// xorshift64*: reproducible bytes without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// A random DECIMAL(precision, scale) in binary form, as the server writes it.
    fn encode(precision: u8, scale: u8, negative: bool, rng: &mut Rng) -> Vec<u8> {
        let intg = usize::from(precision - scale);
        let frac = usize::from(scale);
        let mut widths = Vec::new();
        if intg % 9 > 0 {
            widths.push(intg % 9);
        }
        widths.extend(std::iter::repeat_n(9, intg / 9 + frac / 9));
        if frac % 9 > 0 {
            widths.push(frac % 9);
        }
        let mut out = Vec::new();
        for w in widths {
            // Mostly full-range groups, some zeros (leading-zero handling).
            let g = match rng.next() % 4 {
                0 => 0,
                _ => (rng.next() % u64::from(POW10[w])) as u32,
            };
            let n = DIG2BYTES[w];
            out.extend_from_slice(&g.to_be_bytes()[4 - n..]);
        }
        out[0] ^= 0x80;
        if negative {
            out.iter_mut().for_each(|b| *b = !*b);
        }
        out
    }

    fn both(raw: &[u8], p: u8, s: u8) -> (Option<String>, String) {
        let mut fast_out = b"x".to_vec();
        let f = fast(raw, p, s, &mut fast_out).map(|()| String::from_utf8(fast_out).unwrap());
        let mut slow_out = b"x".to_vec();
        digitwise(raw, p, s, &mut slow_out).unwrap();
        (f, String::from_utf8(slow_out).unwrap())
    }

    #[test]
    fn group_at_a_time_matches_digit_by_digit_for_every_precision_and_scale() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for p in 1..=65u8 {
            for s in 0..=p.min(30) {
                let size = decimal_size(p, s).unwrap();
                // Zero and negative zero.
                for first in [0x80u8, 0x7f] {
                    let mut raw = vec![if first == 0x80 { 0 } else { 0xff }; size];
                    raw[0] = first;
                    let (f, slow) = both(&raw, p, s);
                    assert_eq!(f.as_deref(), Some(slow.as_str()), "zero {p},{s}");
                }
                for k in 0..40 {
                    let raw = encode(p, s, k % 2 == 1, &mut rng);
                    assert_eq!(raw.len(), size);
                    let (f, slow) = both(&raw, p, s);
                    assert_eq!(f.as_deref(), Some(slow.as_str()), "{p},{s} {raw:02x?}");
                    // Arbitrary bytes: the fast path declines or agrees.
                    let junk: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
                    let (f, slow) = both(&junk, p, s);
                    if let Some(f) = f {
                        assert_eq!(f, slow, "{p},{s} {junk:02x?}");
                    }
                    let mut out = Vec::new();
                    decimal_into(&mut Cursor::new(&junk), p, s, &mut out).unwrap();
                    assert_eq!(
                        b"x".iter().chain(&out).copied().collect::<Vec<_>>(),
                        slow.as_bytes()
                    );
                }
            }
        }
    }
}
