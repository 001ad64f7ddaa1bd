//! Timestamps: epoch milliseconds in, RFC3339 UTC out.
//!
//! Windows run on CloudWatch's `logEvents[].timestamp` (epoch ms), so the core
//! never reads a clock. Audit events carry their own timestamps as text, in
//! RFC3339 with microseconds from kube-apiserver, or `YYYY-MM-DD HH:MM:SS.fff`
//! in Panther's test logs; NDJSON replay uses them, leniently.

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats epoch ms as `2024-05-14T00:00:00.123Z`.
pub fn format_rfc3339(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
            sod / 3600,
            (sod % 3600) / 60,
            sod % 60
        );
    }
    // Every alert writes four of these: digits into a template, not the
    // formatting machinery.
    let mut out = *b"0000-00-00T00:00:00.000Z";
    for (at, width, value) in [
        (0, 4, y),
        (5, 2, m),
        (8, 2, d),
        (11, 2, sod / 3600),
        (14, 2, (sod % 3600) / 60),
        (17, 2, sod % 60),
        (20, 3, milli),
    ] {
        let mut v = value;
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    out.iter().map(|b| char::from(*b)).collect()
}

fn num(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')),
    )
}

/// Parses RFC3339 (`T` or space separator, optional fraction of any length,
/// `Z`, `+hh:mm` or no zone meaning UTC) into epoch ms. `None` if malformed.
pub fn parse_timestamp(text: &str) -> Option<Millis> {
    let b = text.trim().as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[10] != b'T' && b[10] != b't' && b[10] != b' ' {
        return None;
    }
    let (y, mo, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (h, mi, s) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if let Some((b'.', frac)) = rest.split_first() {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        // Keep milliseconds; finer digits are truncated.
        let ms_digits = &frac[..digits.min(3)];
        millis = num(ms_digits)? * 10i64.pow(3 - ms_digits.len() as u32);
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), hh1, hh2, b':', mm1, mm2] => {
            let oh = num(&[*hh1, *hh2])?;
            let om = num(&[*mm1, *mm2])?;
            let off = oh * 3600 + om * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    Some(secs * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kube_apiserver_and_panther_formats() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2024-05-14T00:00:00.110812Z"),
            Some(1_715_644_800_110)
        );
        assert_eq!(
            parse_timestamp("2022-11-29 22:40:02.903"),
            Some(1_669_761_602_903)
        );
        assert_eq!(
            parse_timestamp("2022-11-29 00:09:04.38"),
            Some(1_669_680_544_380)
        );
        assert_eq!(
            parse_timestamp("2024-05-14T02:00:00+02:00"),
            Some(1_715_644_800_000)
        );
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-05-14T00:00:00.Z",
            "2024-05-14T00:00:00+0200",
            "2024-05-14",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn formats_as_the_formatting_machinery_does(ms in -70_000_000_000_000i64..300_000_000_000_000) {
            let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
            let sod = secs.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let expected = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
                sod / 3600,
                (sod % 3600) / 60,
                sod % 60
            );
            proptest::prop_assert_eq!(format_rfc3339(ms), expected);
        }
    }

    #[test]
    fn formats_rfc3339_and_round_trips() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339(1_715_644_800_111),
            "2024-05-14T00:00:00.111Z"
        );
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            format_rfc3339(253_402_300_799_999),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            format_rfc3339(253_402_300_800_000),
            "10000-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339(-62_167_219_200_001),
            "-001-12-31T23:59:59.999Z"
        );
        for ms in [0, 951_782_400_000, 1_709_210_096_789, 4_102_444_800_000] {
            assert_eq!(parse_timestamp(&format_rfc3339(ms)), Some(ms));
        }
    }
}

/// Where wall-clock time comes from. Only the edges read it (claims,
/// remembered batches, TTL); the detection core takes event times.
pub trait Clock: Send + Sync {
    /// Epoch milliseconds now.
    fn now_ms(&self) -> Millis;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told: tests of leases, sweeps and batch
/// memory run without sleeping.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// A clock standing at `now_ms`.
    pub fn at(now_ms: Millis) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self(std::sync::atomic::AtomicI64::new(now_ms)))
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
