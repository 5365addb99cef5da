//! Dates and instants written into JSON as chrono writes them (`2026-12-02`,
//! `2026-12-02T17:44:53.123456Z`: RFC 3339, UTC as `Z`, the fraction in 0, 3, 6 or 9 digits),
//! without going through `core::fmt`: chrono's `Serialize` formats through `collect_str`, a
//! third of the cost of rendering an item. For `#[serde(serialize_with = ...)]`; a value chrono
//! would write differently (a year outside 0..=9999, a leap second) is handed to chrono.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Serialize, Serializer};

/// Writes `v` as `width` decimal digits into `out` (`v` < 10^width).
fn digits(out: &mut [u8], mut v: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// `YYYY-MM-DD` into the first ten bytes of `out`; `None` when the year needs a sign.
fn put_day(out: &mut [u8], d: &NaiveDate) -> Option<()> {
    let year = u32::try_from(d.year()).ok().filter(|y| *y <= 9999)?;
    let head = out.get_mut(..10)?;
    digits(&mut head[..4], year);
    head[4] = b'-';
    digits(&mut head[5..7], d.month());
    head[7] = b'-';
    digits(&mut head[8..10], d.day());
    Some(())
}

/// The text [`day`] writes for `d`, in `buf`; `None` where chrono is asked instead.
pub fn day_text<'a>(d: &NaiveDate, buf: &'a mut [u8; 10]) -> Option<&'a str> {
    put_day(&mut buf[..], d)?;
    std::str::from_utf8(&buf[..]).ok()
}

/// A date, as chrono's `Serialize` writes it.
pub fn day<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    match day_text(d, &mut [0u8; 10]) {
        Some(text) => s.serialize_str(text),
        None => d.serialize(s),
    }
}

/// An optional date: `null` or [`day`].
pub fn maybe_day<S: Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => day(d, s),
        None => s.serialize_none(),
    }
}

/// The RFC 3339 text of `t`, into `buf`; its length, or `None` where chrono is asked instead.
fn put_instant(buf: &mut [u8; 30], t: &DateTime<Utc>) -> Option<usize> {
    let naive = t.naive_utc();
    put_day(&mut buf[..], &naive.date())?;
    let nanos = naive.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    buf[10] = b'T';
    digits(&mut buf[11..13], naive.hour());
    buf[13] = b':';
    digits(&mut buf[14..16], naive.minute());
    buf[16] = b':';
    digits(&mut buf[17..19], naive.second());
    let mut end = 19;
    let (fraction, width) = match (nanos, nanos % 1_000_000, nanos % 1_000) {
        (0, _, _) => (0, 0),
        (_, 0, _) => (nanos / 1_000_000, 3),
        (_, _, 0) => (nanos / 1_000, 6),
        _ => (nanos, 9),
    };
    if width > 0 {
        buf[end] = b'.';
        digits(&mut buf[end + 1..end + 1 + width], fraction);
        end += 1 + width;
    }
    buf[end] = b'Z';
    Some(end + 1)
}

/// The text [`instant`] writes for `t`, in `buf`; `None` where chrono is asked instead.
pub fn instant_text<'a>(t: &DateTime<Utc>, buf: &'a mut [u8; 30]) -> Option<&'a str> {
    let len = put_instant(buf, t)?;
    std::str::from_utf8(buf.get(..len)?).ok()
}

/// An instant, as chrono's `Serialize` writes it.
pub fn instant<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    match instant_text(t, &mut [0u8; 30]) {
        Some(text) => s.serialize_str(text),
        None => t.serialize(s),
    }
}

/// An optional instant: `null` or [`instant`].
pub fn maybe_instant<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => instant(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[derive(Serialize)]
    struct Ours<'a> {
        #[serde(serialize_with = "instant")]
        t: &'a DateTime<Utc>,
        #[serde(serialize_with = "maybe_instant")]
        mt: &'a Option<DateTime<Utc>>,
        #[serde(serialize_with = "day")]
        d: &'a NaiveDate,
        #[serde(serialize_with = "maybe_day")]
        md: &'a Option<NaiveDate>,
    }

    #[derive(Serialize)]
    struct Chrono<'a> {
        t: &'a DateTime<Utc>,
        mt: &'a Option<DateTime<Utc>>,
        d: &'a NaiveDate,
        md: &'a Option<NaiveDate>,
    }

    fn same(t: DateTime<Utc>, mt: Option<DateTime<Utc>>, d: NaiveDate, md: Option<NaiveDate>) {
        let ours = serde_json::to_string(&Ours {
            t: &t,
            mt: &mt,
            d: &d,
            md: &md,
        });
        let theirs = serde_json::to_string(&Chrono {
            t: &t,
            mt: &mt,
            d: &d,
            md: &md,
        });
        assert_eq!(ours.ok(), theirs.ok(), "{t:?} {d:?}");
    }

    /// Every kind of fraction, the edges of the fast path and the years it hands to chrono.
    #[test]
    fn writes_what_chrono_writes() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for i in 0..20_000u64 {
            let secs = (next() % 400_000_000_000) as i64 - 100_000_000_000;
            let nanos = match i % 5 {
                0 => 0,
                1 => (next() % 1000) as u32 * 1_000_000,
                2 => (next() % 1_000_000) as u32 * 1_000,
                3 => (next() % 1_000_000_000) as u32,
                _ => 1_000_000_000 + (next() % 1_000_000_000) as u32, // a leap second
            };
            let Some(t) = DateTime::from_timestamp(secs, nanos) else {
                continue;
            };
            let d = t.date_naive();
            same(t, Some(t), d, Some(d));
            same(t, None, d, None);
        }
        for (y, m, dd) in [
            (0, 1, 1),
            (9999, 12, 31),
            (10000, 1, 1),
            (-1, 12, 31),
            (1, 2, 3),
        ] {
            let Some(d) = NaiveDate::from_ymd_opt(y, m, dd) else {
                continue;
            };
            let t = Utc.from_utc_datetime(&d.and_hms_opt(23, 59, 59).unwrap_or_default());
            same(t, None, d, Some(d));
        }
    }
}
