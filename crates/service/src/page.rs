//! Pages of a list: at most `limit` items, and an opaque cursor to the next page. The cursor is
//! the sort key of the page's last item, encoded so that callers treat it as a token.

use crate::ServiceError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Which page a caller asks for.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// From a previous page's `next_cursor`; `None`: the first page.
    pub cursor: Option<String>,
    /// `None`: [`DEFAULT_PAGE_SIZE`].
    pub limit: Option<u32>,
}

/// A page of items.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass it as `cursor` for the next page; `None`: this is the last one.
    pub next_cursor: Option<String>,
}

impl PageRequest {
    /// The page size, checked.
    pub fn limit(&self) -> Result<u32, ServiceError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE_SIZE),
            Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            Some(n) => Err(ServiceError::bad_input(
                "limit",
                format!("limit {n} is out of range: ask for 1 to {MAX_PAGE_SIZE} items"),
            )),
        }
    }

    /// The sort key the cursor stands for.
    pub(crate) fn after(&self) -> Result<Option<String>, ServiceError> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(Some)
            .ok_or_else(|| {
                ServiceError::bad_input(
                    "cursor",
                    "the cursor is not one this server gave: pass a page's next_cursor unchanged",
                )
            })
    }

    /// The page of `items` (sorted by `key`, ascending) after the cursor.
    pub fn of<T>(&self, items: Vec<T>, key: impl Fn(&T) -> &str) -> Result<Page<T>, ServiceError> {
        let limit = self.limit()? as usize;
        let after = self.after()?;
        let rest: Vec<T> = items
            .into_iter()
            .filter(|item| after.as_deref().is_none_or(|a| key(item) > a))
            .take(limit + 1)
            .collect();
        self.cut(rest, |item| key(item).to_string())
    }

    /// A page whose items the store already cut at `limit + 1`.
    pub(crate) fn cut<T>(
        &self,
        mut items: Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> Result<Page<T>, ServiceError> {
        let limit = self.limit()? as usize;
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = more
            .then(|| items.last().map(|last| cursor_for(&key(last))))
            .flatten();
        Ok(Page { items, next_cursor })
    }
}

fn cursor_for(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cursor: Option<String>, limit: u32) -> PageRequest {
        PageRequest {
            cursor,
            limit: Some(limit),
        }
    }

    #[test]
    fn pages_cover_every_item_once_in_order() {
        let items: Vec<String> = (0..7).map(|i| format!("item-{i}")).collect();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = request(cursor, 3)
                .of(items.clone(), String::as_str)
                .expect("page");
            assert!(page.items.len() <= 3);
            seen.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn an_exact_last_page_has_no_cursor_and_bad_input_names_its_field() {
        let items = vec!["a".to_string(), "b".to_string()];
        let page = request(None, 2)
            .of(items.clone(), String::as_str)
            .expect("page");
        assert_eq!(page.next_cursor, None);
        for (req, field) in [
            (request(None, 0), "limit"),
            (request(None, MAX_PAGE_SIZE + 1), "limit"),
            (request(Some("%%%".into()), 2), "cursor"),
        ] {
            let e = req.of(items.clone(), String::as_str).expect_err(field);
            assert_eq!(e.field.as_deref(), Some(field));
        }
    }
}
