//! DECIMAL in MySQL's binary format (`strings/decimal.c`), decoded to exact text. Shared
//! by row values ([`super::value`]) and JSON documents ([`super::json`]), so it depends on
//! neither.

use super::DecodeErrorKind;
use super::cursor::{Cursor, Result};

const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Bytes of a DECIMAL(precision, scale) in binary form.
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
}
