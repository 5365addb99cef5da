//! Dates and timestamps of item rows read from SQLite's text without chrono's format
//! interpreter: diesel tries up to 18 `strftime` patterns on each timestamp, and the seven date
//! columns of an item cost a read by id 10,000 instructions of 120,000. The text diesel itself
//! wrote (`%F`, `%F %T%.f`) is parsed directly; anything else (a julian day, an offset, a
//! value written by hand) goes to diesel's own parser, so nothing reads differently.
//! PostgreSQL's binary values go straight to diesel.

use crate::db::Backend as Multi;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::pg::Pg;
use diesel::sql_types::{Date, Nullable, Timestamp};
use diesel::sqlite::{Sqlite, SqliteType};

/// A `DATE` column (`#[diesel(deserialize_as = Day)]`).
#[derive(Debug, FromSqlRow)]
pub(crate) struct Day(NaiveDate);

/// A nullable `DATE` column.
#[derive(Debug, FromSqlRow)]
pub(crate) struct MaybeDay(Option<NaiveDate>);

/// A `TIMESTAMP` column.
#[derive(Debug, FromSqlRow)]
pub(crate) struct Instant(NaiveDateTime);

/// A nullable `TIMESTAMP` column.
#[derive(Debug, FromSqlRow)]
pub(crate) struct MaybeInstant(Option<NaiveDateTime>);

impl From<Day> for NaiveDate {
    fn from(d: Day) -> Self {
        d.0
    }
}

impl From<MaybeDay> for Option<NaiveDate> {
    fn from(d: MaybeDay) -> Self {
        d.0
    }
}

impl From<Instant> for NaiveDateTime {
    fn from(t: Instant) -> Self {
        t.0
    }
}

impl From<MaybeInstant> for Option<NaiveDateTime> {
    fn from(t: MaybeInstant) -> Self {
        t.0
    }
}

fn number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// `YYYY-MM-DD`, as diesel writes a date.
fn date(s: &[u8]) -> Option<NaiveDate> {
    match s {
        [y @ .., b'-', m1, m2, b'-', d1, d2] if y.len() == 4 => NaiveDate::from_ymd_opt(
            i32::try_from(number(y)?).ok()?,
            number(&[*m1, *m2])?,
            number(&[*d1, *d2])?,
        ),
        _ => None,
    }
}

/// `YYYY-MM-DD HH:MM:SS` and an optional fraction of 1 to 9 digits, as diesel writes a
/// timestamp (`%F %T%.f`).
fn timestamp(s: &[u8]) -> Option<NaiveDateTime> {
    let (day, rest) = (s.get(..10)?, s.get(10..)?);
    let (hms, fraction) = (rest.get(..9)?, rest.get(9..)?);
    let [b' ', h1, h2, b':', m1, m2, b':', s1, s2] = hms else {
        return None;
    };
    let nanos = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            number(digits)? * 10u32.pow(9 - u32::try_from(digits.len()).ok()?)
        }
        _ => return None,
    };
    date(day)?.and_hms_nano_opt(
        number(&[*h1, *h2])?,
        number(&[*m1, *m2])?,
        number(&[*s1, *s2])?,
        nanos,
    )
}

/// The value's text parsed by `fast` when it is text that `fast` knows, else diesel's parser.
fn sqlite<T>(
    mut value: <Sqlite as Backend>::RawValue<'_>,
    fast: fn(&[u8]) -> Option<T>,
    diesel: fn(<Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<T>,
) -> deserialize::Result<T> {
    if value.value_type() == Some(SqliteType::Text) {
        if let Some(v) = fast(value.read_text().as_bytes()) {
            return Ok(v);
        }
    }
    diesel(value)
}

impl FromSql<Date, Sqlite> for Day {
    fn from_sql(value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        sqlite(value, date, <NaiveDate as FromSql<Date, Sqlite>>::from_sql).map(Day)
    }
}

impl FromSql<Timestamp, Sqlite> for Instant {
    fn from_sql(value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        sqlite(
            value,
            timestamp,
            <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql,
        )
        .map(Instant)
    }
}

/// PostgreSQL's binary value, read by diesel; and the service's connection (either backend),
/// each value read by its backend's impl.
macro_rules! other_backends {
    ($wrapper:ident, $chrono:ty, $sql:ty) => {
        impl FromSql<$sql, Pg> for $wrapper {
            fn from_sql(value: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                <$chrono as FromSql<$sql, Pg>>::from_sql(value).map($wrapper)
            }
        }

        impl FromSql<$sql, Multi> for $wrapper {
            fn from_sql(value: <Multi as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                value.from_sql::<Self, $sql>()
            }
        }
    };
}

other_backends!(Day, NaiveDate, Date);
other_backends!(Instant, NaiveDateTime, Timestamp);

/// The nullable column on `$backend`: NULL is `None`, a value is read as `$inner` reads it.
macro_rules! nullable {
    ($maybe:ident, $inner:ident, $sql:ty, $($backend:ty),+) => {$(
        impl FromSql<Nullable<$sql>, $backend> for $maybe {
            fn from_sql(value: <$backend as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                <$inner as FromSql<$sql, $backend>>::from_sql(value).map(|v| $maybe(Some(v.0)))
            }

            fn from_nullable_sql(
                value: Option<<$backend as Backend>::RawValue<'_>>,
            ) -> deserialize::Result<Self> {
                value.map_or(Ok($maybe(None)), |v| {
                    <Self as FromSql<Nullable<$sql>, $backend>>::from_sql(v)
                })
            }
        }
    )+};
}

nullable!(MaybeDay, Day, Date, Sqlite, Pg, Multi);
nullable!(MaybeInstant, Instant, Timestamp, Sqlite, Pg, Multi);

#[cfg(test)]
mod tests {
    use super::*;

    /// What the direct parser accepts, it reads as chrono does; what it refuses goes to diesel.
    #[test]
    fn the_direct_parse_agrees_with_chrono() {
        for s in [
            "2026-12-02",
            "0001-01-01",
            "9999-12-31",
            "2024-02-29",
            "2025-02-29",
            "2026-13-01",
            "2026-1-01",
            "2026-12-02 ",
            "+2026-12-02",
            "20a6-12-02",
        ] {
            // Refusing is always safe (diesel's parser reads it); accepting must agree.
            if let Some(d) = date(s.as_bytes()) {
                assert_eq!(Some(d), NaiveDate::parse_from_str(s, "%F").ok(), "{s}");
            }
        }
        for s in [
            "2026-12-02 14:22:04",
            "2026-12-02 14:22:04.5",
            "2026-12-02 14:22:04.123",
            "2026-12-02 14:22:04.123456",
            "2026-12-02 14:22:04.123456789",
            "1970-01-01 00:00:00",
            "9999-12-31 23:59:59.999999999",
            "2026-12-02 24:00:00",
            "2026-12-02 14:60:00",
            "2026-12-02T14:22:04",
            "2026-12-02 14:22:04.",
            "2026-12-02 14:22:04.1234567890",
            "2026-12-02 14:22:04+00:00",
            "2026-12-02 14:22",
        ] {
            if let Some(t) = timestamp(s.as_bytes()) {
                let chrono = NaiveDateTime::parse_from_str(s, "%F %T%.f").ok();
                assert_eq!(Some(t), chrono, "{s}");
            }
        }
        // Every timestamp diesel writes (`%F %T%.f`) reads back the same.
        let base = NaiveDate::from_ymd_opt(2026, 12, 2)
            .and_then(|d| d.and_hms_opt(14, 22, 4))
            .unwrap_or_default();
        for nanos in [0, 1, 120, 500_000_000, 123_456_000, 999_999_999] {
            let t = base + chrono::Duration::nanoseconds(nanos);
            let text = t.format("%F %T%.f").to_string();
            assert_eq!(timestamp(text.as_bytes()), Some(t), "{text}");
        }
    }
}
