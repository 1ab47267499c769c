//! ListObjects and ListObjectsV2 over the bucket's folder, with hashed long keys shown as the
//! keys the client wrote (s3s-fs would list them as `.wharf-long-keys/<hash>`, in the wrong
//! place of the order and outside every prefix).

use super::keys::{LONG_KEY_DIR, LongKeys};
use s3s::dto::{CommonPrefix, Object, Timestamp};
use std::io;
use std::path::Path;

/// One page of a listing.
pub(crate) struct Page {
    pub objects: Vec<Object>,
    pub common_prefixes: Vec<CommonPrefix>,
    pub is_truncated: bool,
    /// The last key or common prefix of the page, when more follow.
    pub next_marker: Option<String>,
}

/// What a list request asks for.
pub(crate) struct Query<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    /// Entries after this one (StartAfter, ContinuationToken or Marker).
    pub after: Option<&'a str>,
    pub max_keys: usize,
}

/// Lists `bucket`, whose objects are files under `bucket_root`. Blocking: run it off the
/// async threads.
pub(crate) fn list(
    bucket_root: &Path,
    bucket: &str,
    keys: &LongKeys,
    query: &Query<'_>,
) -> io::Result<Page> {
    let mut objects = Vec::new();
    scan(bucket_root, "", query.prefix, &mut |key, meta| {
        objects.push((key, meta));
    })?;
    let long_root = bucket_root.join(LONG_KEY_DIR);
    if long_root.is_dir() {
        for entry in std::fs::read_dir(&long_root)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            // A hashed object whose name is lost cannot be listed under its key; skip it, as a
            // half-written object is skipped.
            if let Some(key) = keys.original(bucket, &format!("{LONG_KEY_DIR}/{name}"))
                && key.starts_with(query.prefix)
            {
                objects.push((key, meta));
            }
        }
    }
    let objects = objects
        .into_iter()
        .map(|(key, meta)| Object {
            key: Some(key),
            size: i64::try_from(meta.len()).ok(),
            last_modified: meta.modified().ok().map(Timestamp::from),
            ..Default::default()
        })
        .collect();
    Ok(page(objects, query))
}

/// Every file under `dir` (whose key prefix is `at`) whose key starts with `prefix`, skipping
/// folders that cannot hold one and the long-key folder (listed by the caller).
fn scan(
    dir: &Path,
    at: &str,
    prefix: &str,
    found: &mut dyn FnMut(String, std::fs::Metadata),
) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let key = format!("{at}{name}");
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            if at.is_empty() && name == LONG_KEY_DIR {
                continue;
            }
            let folder = format!("{key}/");
            if folder.starts_with(prefix) || prefix.starts_with(&folder) {
                scan(&entry.path(), &folder, prefix, found)?;
            }
        } else if file_type.is_file() && key.starts_with(prefix) {
            found(key, entry.metadata()?);
        }
    }
    Ok(())
}

enum Entry {
    Object(Box<Object>),
    Prefix(String),
}

impl Entry {
    fn key(&self) -> &str {
        match self {
            Entry::Object(o) => o.key.as_deref().unwrap_or(""),
            Entry::Prefix(p) => p,
        }
    }
}

/// S3's paging over keys that start with the prefix: keys with the delimiter after the prefix
/// roll up into one common prefix each, entries sort by key, the page starts after the marker
/// and holds at most `max_keys` entries.
fn page(objects: Vec<Object>, query: &Query<'_>) -> Page {
    let mut entries = Vec::with_capacity(objects.len());
    let mut prefixes = std::collections::BTreeSet::new();
    for object in objects {
        let key = object.key.as_deref().unwrap_or("");
        if !key.starts_with(query.prefix) {
            continue;
        }
        let rest = key.get(query.prefix.len()..).unwrap_or("");
        match query.delimiter.filter(|d| !d.is_empty()) {
            Some(d) if rest.contains(d) => {
                let end = query.prefix.len() + rest.find(d).unwrap_or(0) + d.len();
                prefixes.insert(key[..end].to_string());
            }
            _ => entries.push(Entry::Object(Box::new(object))),
        }
    }
    entries.extend(prefixes.into_iter().map(Entry::Prefix));
    entries.sort_by(|a, b| a.key().cmp(b.key()));
    if let Some(after) = query.after {
        entries.retain(|e| e.key() > after);
    }
    let is_truncated = entries.len() > query.max_keys && query.max_keys > 0;
    entries.truncate(query.max_keys);
    let next_marker = is_truncated
        .then(|| entries.last().map(|e| e.key().to_string()))
        .flatten();
    let mut page = Page {
        objects: Vec::new(),
        common_prefixes: Vec::new(),
        is_truncated,
        next_marker,
    };
    for entry in entries {
        match entry {
            Entry::Object(o) => page.objects.push(*o),
            Entry::Prefix(p) => page.common_prefixes.push(CommonPrefix { prefix: Some(p) }),
        }
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page's objects and common prefixes, in key order.
    fn keys(page: &Page) -> Vec<String> {
        let mut keys: Vec<String> = page
            .objects
            .iter()
            .filter_map(|o| o.key.clone())
            .chain(page.common_prefixes.iter().filter_map(|p| p.prefix.clone()))
            .collect();
        keys.sort();
        keys
    }

    fn objects(keys: &[&str]) -> Vec<Object> {
        keys.iter()
            .map(|k| Object {
                key: Some((*k).to_string()),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn pages_follow_s3_order_prefix_delimiter_and_marker() {
        let all = ["a/1", "a/2", "b", "c/x/1", "c/y", "d::e::f", "d::g"];
        let q = |prefix, delimiter, after, max_keys| Query {
            prefix,
            delimiter,
            after,
            max_keys,
        };
        let p = page(objects(&all), &q("", Some("/"), None, 1000));
        assert_eq!(keys(&p), ["a/", "b", "c/", "d::e::f", "d::g"]);
        assert!(!p.is_truncated);
        let p = page(objects(&all), &q("c/", Some("/"), None, 1000));
        assert_eq!(keys(&p), ["c/x/", "c/y"]);
        // A delimiter of several characters rolls up through its last character.
        let p = page(objects(&all), &q("d", Some("::"), None, 1000));
        assert_eq!(keys(&p), ["d::"]);
        // Paging: two at a time, each page after the last entry of the previous one.
        let mut after = None;
        let mut seen = Vec::new();
        loop {
            let query = Query {
                prefix: "",
                delimiter: Some("/"),
                after: after.as_deref(),
                max_keys: 2,
            };
            let p = page(objects(&all), &query);
            seen.extend(keys(&p));
            if !p.is_truncated {
                break;
            }
            after = p.next_marker;
        }
        assert_eq!(seen, ["a/", "b", "c/", "d::e::f", "d::g"]);
        let p = page(objects(&all), &q("", None, None, 0));
        assert!(keys(&p).is_empty() && !p.is_truncated);
    }
}
