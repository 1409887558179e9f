//! ASCII digits two at a time from a table, not a division per digit: DECIMAL text, the
//! JSON documents and the `decode` renderer all print numbers this way.

/// "00".."99".
pub static DEC2: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// `v` < 100 as two digits at `b[at..at + 2]`.
#[inline(always)]
pub fn two(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 2].copy_from_slice(&DEC2[v as usize % 100]);
}

/// The low `width` digits of `v` (all of them when `v` < 10^`width`), zero-padded, at the
/// start of `b`.
#[inline(always)]
pub fn padded(b: &mut [u8], mut v: u32, width: usize) {
    let mut k = width;
    while k >= 2 {
        b[k - 2..k].copy_from_slice(&DEC2[(v % 100) as usize]);
        v /= 100;
        k -= 2;
    }
    if k == 1 {
        b[0] = b'0' + (v % 10) as u8;
    }
}

/// 10^i, for i in 0..=19.
const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// How many decimal digits `v` has: from its bit length (log10(2) ≈ 1233/4096), then
/// one comparison; cheaper than `ilog10`.
#[inline(always)]
pub fn digit_count(v: u64) -> usize {
    // 0 has one digit, as 1 has.
    let v = v | 1;
    let bits = 64 - v.leading_zeros() as usize;
    let guess = (bits * 1233) >> 12;
    guess + usize::from(v >= POW10[guess])
}

/// `v` in decimal at the start of `b` (at least 20 bytes); returns how many digits.
#[inline(always)]
pub fn u64_at(b: &mut [u8], mut v: u64) -> usize {
    let n = digit_count(v);
    let mut k = n;
    while v >= 100 {
        k -= 2;
        b[k..k + 2].copy_from_slice(&DEC2[(v % 100) as usize]);
        v /= 100;
    }
    if v >= 10 {
        b[k - 2..k].copy_from_slice(&DEC2[v as usize]);
    } else {
        b[k - 1] = b'0' + v as u8;
    }
    n
}

/// `v` in decimal at the start of `b` (at least 20 bytes, a sign and 19 digits).
#[inline(always)]
pub fn i64_at(b: &mut [u8], v: i64) -> usize {
    if v < 0 {
        b[0] = b'-';
        1 + u64_at(&mut b[1..], v.unsigned_abs())
    } else {
        u64_at(b, v as u64)
    }
}

/// Appends `N` bytes for `fill` to write and keeps as many as it returns: one capacity
/// check and fixed-size stores instead of a `memcpy` call per small piece.
#[inline(always)]
pub fn put<const N: usize>(out: &mut Vec<u8>, fill: impl FnOnce(&mut [u8; N]) -> usize) {
    let len = out.len();
    out.extend_from_slice(&[0u8; N]);
    if let Some(room) = out[len..].first_chunk_mut::<N>() {
        let n = fill(room);
        out.truncate(len + n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_counts() {
        for e in 0..20 {
            let p = 10u64.pow(e);
            for v in [p.saturating_sub(1), p, p + 1, p.saturating_mul(2)] {
                assert_eq!(digit_count(v), v.to_string().len(), "{v}");
            }
        }
        assert_eq!(digit_count(u64::MAX), 20);
        assert_eq!(digit_count(0), 1);
    }

    #[test]
    fn integers_match_format() {
        let edges = [0, 1, 9, 10, 99, 100, 999_999_999, 1_000_000_000, u64::MAX];
        let tens = (0..20).flat_map(|e| {
            let p = 10u64.pow(e);
            [p - 1, p, p + 1]
        });
        for v in (0..=10_000u64).chain(edges).chain(tens) {
            let mut b = [0u8; 20];
            let n = u64_at(&mut b, v);
            assert_eq!(&b[..n], v.to_string().as_bytes());
        }
        for v in [0, 1, -1, 99, -100, i64::MIN, i64::MAX, i64::MIN + 1] {
            let mut b = [0u8; 20];
            let n = i64_at(&mut b, v);
            assert_eq!(&b[..n], v.to_string().as_bytes());
        }
        for v in 0..=10_000u32 {
            for width in 1..=9 {
                let mut b = [b'x'; 9];
                padded(&mut b, v, width);
                let low = u64::from(v) % 10u64.pow(width as u32);
                assert_eq!(&b[..width], format!("{low:0width$}").as_bytes());
            }
        }
    }

    #[test]
    fn put_keeps_what_fill_wrote() {
        let mut out = b"ab".to_vec();
        put::<8>(&mut out, |b| {
            b[..3].copy_from_slice(b"cde");
            3
        });
        assert_eq!(out, b"abcde");
    }
}
