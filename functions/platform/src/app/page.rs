//! Pagination: `?limit=&cursor=` in, `{ "items": [...], "next_cursor": ... }` out.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use super::stored::decode_at;
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

/// One page of the items of a partition under a prefix, decoded into `T`.
pub async fn page_of<T: serde::de::DeserializeOwned>(
    store: &dyn crate::ports::store::Store,
    pk: &str,
    prefix: &str,
    page: &PageRequest,
    descending: bool,
) -> Result<Listed<T>, super::error::AppError> {
    let query = crate::ports::store::Query {
        limit: page.limit,
        after: page.after.as_deref(),
        descending,
        ..crate::ports::store::Query::new(pk, prefix)
    };
    let found = store.query(query).await?;
    Listed::from_page(found, |item| decode_at(&item.pk, &item.sk, item.data))
}

/// The item at (pk, sk) decoded into `T`, with its version; `missing` when absent.
pub async fn get_typed<T: serde::de::DeserializeOwned>(
    store: &dyn crate::ports::store::Store,
    pk: &str,
    sk: &str,
    missing: impl FnOnce() -> super::error::AppError,
) -> Result<(T, u64), super::error::AppError> {
    let item = store.get(pk, sk).await?.ok_or_else(missing)?;
    let value = decode_at(&item.pk, &item.sk, item.data)?;
    Ok((value, item.version))
}

/// Most items one filtered list request examines before answering with a cursor.
pub const MAX_SCAN: usize = 2_000;

/// A filtered list over a partition: reads pages of `query` until `page.limit` items pass
/// `keep` (which decodes an item, `None` to skip it), the partition ends, or [`MAX_SCAN`]
/// items were examined. The cursor resumes after the last item examined, so a filter
/// that matches little still answers promptly.
pub async fn scan_filtered<T>(
    store: &dyn crate::ports::store::Store,
    query: crate::ports::store::Query<'_>,
    page: &PageRequest,
    mut keep: impl FnMut(crate::ports::store::Item) -> Result<Option<T>, super::error::AppError>,
) -> Result<Listed<T>, super::error::AppError> {
    let mut items = Vec::new();
    let mut after = page.after.clone();
    let mut scanned = 0;
    loop {
        let found = store.query(crate::ports::store::Query { limit: 200, after: after.as_deref(), ..query }).await?;
        let mut last = None;
        for item in found.items {
            scanned += 1;
            last = Some(item.sk.clone());
            if let Some(kept) = keep(item)? {
                items.push(kept);
                if items.len() == page.limit {
                    break;
                }
            }
        }
        let full = items.len() == page.limit;
        if found.next.is_none() && !full {
            return Ok(Listed { items, next_cursor: None });
        }
        if full || scanned >= MAX_SCAN {
            return Ok(Listed { items, next_cursor: last.map(|sk| URL_SAFE_NO_PAD.encode(sk)) });
        }
        after = found.next;
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
