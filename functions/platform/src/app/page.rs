//! Pagination: `?limit=&cursor=` in, `{ "items": [...], "next_cursor": ... }` out.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use crate::domain::invalid::Invalid;
use crate::ports::store::Page;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

/// A validated page request. The cursor is opaque to callers: the sort key to resume after.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub after: Option<String>,
}

impl PageRequest {
    pub fn first(limit: usize) -> Self {
        Self { limit, after: None }
    }

    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, Invalid> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => return Err(Invalid::one("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))),
            },
        };
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(raw) => Some(
                URL_SAFE_NO_PAD
                    .decode(raw)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| Invalid::one("cursor", "is not a cursor this API returned"))?,
            ),
        };
        Ok(Self { limit, after })
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Listed<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Listed<T> {
    /// Maps a store page, turning its resume key into an opaque cursor.
    pub fn from_page<E>(page: Page, mut map: impl FnMut(crate::ports::store::Item) -> Result<T, E>) -> Result<Self, E> {
        let items = page.items.into_iter().map(&mut map).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { items, next_cursor: page.next.map(|sk| URL_SAFE_NO_PAD.encode(sk)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors_are_checked() {
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(PageRequest::parse(Some("0"), None).unwrap_err().0[0].field, "limit");
        assert_eq!(PageRequest::parse(Some("abc"), None).unwrap_err().0[0].field, "limit");
        assert_eq!(PageRequest::parse(None, Some("%%%")).unwrap_err().0[0].field, "cursor");
        let cursor = URL_SAFE_NO_PAD.encode("SYSTEM#crm");
        assert_eq!(PageRequest::parse(Some("2"), Some(&cursor)).unwrap().after.as_deref(), Some("SYSTEM#crm"));
    }
}
