//! Keyset pagination. A cursor is opaque to clients: it names the sort it belongs to, the sort
//! key of the last row served and that row's id (the tie-breaker). Rows inserted while a client
//! pages never shift a page: each page starts strictly after the previous one's last row.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// One page of a list and the cursor of the next, if there is more.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A decoded cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub sort: String,
    pub key: String,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}\n{}\n{}", self.sort, self.key, self.id))
    }

    /// `None` when the text is not a cursor this service issued.
    pub fn decode(text: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, '\n');
        let (sort, key, id) = (parts.next()?, parts.next()?, parts.next()?);
        uuid::Uuid::parse_str(id).ok()?;
        Some(Cursor {
            sort: sort.to_owned(),
            key: key.to_owned(),
            id: id.to_owned(),
        })
    }
}

/// Cuts a fetched `limit + 1` rows down to `limit` and makes the next cursor from the last row.
pub(crate) fn paginate<R, T>(
    mut rows: Vec<R>,
    limit: i64,
    cursor_of: impl Fn(&R) -> Cursor,
    convert: impl Fn(R) -> Result<T, crate::StoreError>,
) -> Result<Page<T>, crate::StoreError> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| cursor_of(r).encode())
    } else {
        None
    };
    let rows = rows.into_iter().map(convert).collect::<Result<_, _>>()?;
    Ok(Page { rows, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_text_is_refused() {
        let c = Cursor {
            sort: "-due".into(),
            key: "2026-10-31".into(),
            id: "6f1c1a8e-9b2e-4c1e-8d35-2b8f0d5f7b10".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("not a cursor"), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("a\nb\nc")), None);
    }
}
