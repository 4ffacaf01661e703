//! Go's parsers, once for the crate: MKE 3 and the kubelet read these values with Go's
//! `strconv.ParseBool` and `time.ParseDuration`, so ferry accepts exactly what they accept.

/// Go `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go `time.ParseDuration` in nanoseconds, including its overflow limits (the result must fit
/// an `int64` of nanoseconds), so that a value accepted here is accepted by the kubelet and by
/// MKE 4k.
pub fn parse_duration(s: &str) -> Option<i128> {
    const LIMIT: u64 = 1 << 63;
    let mut rest = s.as_bytes();
    let mut negative = false;
    if let Some((&sign @ (b'-' | b'+'), tail)) = rest.split_first() {
        negative = sign == b'-';
        rest = tail;
    }
    if rest == b"0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while let Some(&first) = rest.first() {
        if !(first == b'.' || first.is_ascii_digit()) {
            return None;
        }
        // Integer part; Go's `leadingInt` fails on anything above 2^63.
        let int_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (int_digits, tail) = rest.split_at(int_len);
        rest = tail;
        let mut whole: u64 = 0;
        for &d in int_digits {
            if whole > LIMIT / 10 {
                return None;
            }
            whole = whole * 10 + u64::from(d - b'0');
            if whole > LIMIT {
                return None;
            }
        }
        // Fraction; Go's `leadingFraction` stops accumulating (without failing) on overflow.
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        if let Some((b'.', tail)) = rest.split_first() {
            frac_len = tail.iter().take_while(|b| b.is_ascii_digit()).count();
            let (frac_digits, tail) = tail.split_at(frac_len);
            rest = tail;
            let mut overflow = false;
            for &d in frac_digits {
                if overflow {
                    continue;
                }
                if fraction > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let next = fraction * 10 + u64::from(d - b'0');
                if next > LIMIT {
                    overflow = true;
                    continue;
                }
                fraction = next;
                scale *= 10.0;
            }
        }
        if int_len == 0 && frac_len == 0 {
            return None;
        }
        let unit_len = rest
            .iter()
            .take_while(|&&b| !(b == b'.' || b.is_ascii_digit()))
            .count();
        let (unit, tail) = rest.split_at(unit_len);
        rest = tail;
        let unit: u64 = match unit {
            b"ns" => 1,
            // "µs" is U+00B5 MICRO SIGN, "μs" U+03BC GREEK SMALL LETTER MU; Go accepts both.
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => return None,
        };
        if whole > LIMIT / unit {
            return None;
        }
        let mut nanos = whole * unit;
        if fraction > 0 {
            // Same float arithmetic as Go (`uint64(float64(f) * (float64(unit) / scale))`); the
            // product is below `unit`, so the cast cannot saturate.
            let part = (fraction as f64 * (unit as f64 / scale)) as u64;
            nanos += part;
            if nanos > LIMIT {
                return None;
            }
        }
        total += nanos;
        if total > LIMIT {
            return None;
        }
    }
    if !negative && total >= LIMIT {
        return None;
    }
    let total = i128::from(total);
    Some(if negative { -total } else { total })
}

/// Whether Go's `time.ParseDuration` accepts `s`.
pub fn is_duration(s: &str) -> bool {
    parse_duration(s).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_nanoseconds() {
        assert_eq!(parse_duration("1m0s"), Some(60_000_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("-300ms"), Some(-300_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        for bad in ["", "1", "1.2.3s", "s", "10 s", "9223372036854775808ns"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_bool("T"), Some(true));
        assert_eq!(parse_bool("yes"), None);
    }
}
