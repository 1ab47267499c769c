//! Finding the tables of a local source: each file, or folder of files of one format, that
//! a query may name. Only regular files are tables; what cannot be read becomes a table with
//! a problem, which fails only the models that use it.

use crate::error::EngineError;
use std::path::{Path, PathBuf};

/// A table of the local warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub name: String,
    pub path: PathBuf,
    pub format: &'static str,
    /// Why the table cannot be read (not a regular file, an unreadable folder, a folder of
    /// mixed formats), when it cannot. Such a table fails only the models that use it.
    pub problem: Option<String>,
}

fn format_of(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()? {
        "parquet" => Some("parquet"),
        "csv" => Some("csv"),
        "ndjson" => Some("ndjson"),
        "jsonl" => Some("jsonl"),
        _ => None,
    }
}

/// What a path is, following symbolic links, in words for messages (`a FIFO`).
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// The files of a table folder with `format`'s extension, sorted; an entry that is not a
/// regular file (a FIFO would block a read forever, a link to `/dev/zero` never ends) makes
/// the whole folder unreadable.
pub(super) fn table_files(dir: &Path) -> Result<Vec<(PathBuf, &'static str)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read the folder: {e}"))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read the folder: {e}"))?;
        let path = entry.path();
        let Some(format) = format_of(&path) else {
            continue;
        };
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let meta =
            std::fs::metadata(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if !meta.is_file() {
            return Err(format!(
                "{} is {}, and tables are read from regular files only",
                path.display(),
                kind_of(&meta)
            ));
        }
        files.push((path, format));
    }
    files.sort();
    Ok(files)
}

/// The tables of `dir`, sorted by name. Entries that look like tables but cannot be read are
/// listed with their problem; only an unreadable `dir` itself is an error.
pub fn discover(dir: &Path) -> Result<Vec<TableInfo>, EngineError> {
    let unreadable = |path: &Path, e: std::io::Error| EngineError::Source {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let entries = std::fs::read_dir(dir).map_err(|e| unreadable(dir, e))?;
    let mut tables = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| unreadable(dir, e))?;
        let path = entry.path();
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let format = format_of(&path);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            // A dangling link or an entry we may not look at: a table only if it is named as one.
            Err(e) => {
                if let Some(format) = format {
                    tables.push(TableInfo {
                        name,
                        path,
                        format,
                        problem: Some(format!("cannot read it: {e}")),
                    });
                }
                continue;
            }
        };
        if meta.is_dir() {
            let table_name = entry.file_name().to_string_lossy().into_owned();
            match table_files(&path) {
                Ok(files) => {
                    let mut formats: Vec<&'static str> = files.iter().map(|(_, f)| *f).collect();
                    formats.sort_unstable();
                    formats.dedup();
                    match formats.as_slice() {
                        [] => {}
                        [format] => tables.push(TableInfo {
                            name: table_name,
                            path,
                            format,
                            problem: None,
                        }),
                        _ => tables.push(TableInfo {
                            name: table_name,
                            path,
                            format: formats[0],
                            problem: Some(format!(
                                "a table folder holds files of one format; this one has {}",
                                formats.join(", ")
                            )),
                        }),
                    }
                }
                Err(problem) => tables.push(TableInfo {
                    name: table_name,
                    path,
                    format: "unknown",
                    problem: Some(problem),
                }),
            }
        } else if let Some(format) = format {
            let problem = (!meta.is_file()).then(|| {
                format!(
                    "it is {}, and tables are read from regular files only",
                    kind_of(&meta)
                )
            });
            tables.push(TableInfo {
                name,
                path,
                format,
                problem,
            });
        }
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in tables.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(EngineError::Source {
                path: pair[1].path.clone(),
                message: format!(
                    "two tables are named {:?} ({} and {}); rename one",
                    pair[0].name,
                    pair[0].path.display(),
                    pair[1].path.display()
                ),
            });
        }
    }
    Ok(tables)
}

/// Marks every table that resolves outside `roots` (through a symbolic link, the table's own or
/// one of its files') as unreadable: on a shared server a source reads its own folder's files
/// and nothing else.
pub(crate) fn confine(tables: &mut [TableInfo], roots: &[PathBuf]) {
    let roots: Vec<PathBuf> = roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect();
    let inside = |p: &Path| {
        std::fs::canonicalize(p).is_ok_and(|c| roots.iter().any(|root| c.starts_with(root)))
    };
    for table in tables.iter_mut().filter(|t| t.problem.is_none()) {
        let mut paths = vec![table.path.clone()];
        if table.path.is_dir() {
            paths.extend(
                table_files(&table.path)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(p, _)| p),
            );
        }
        if let Some(outside) = paths.iter().find(|p| !inside(p)) {
            table.problem = Some(format!(
                "{} leads outside the folders local sources may read on this server ({}); \
                 the operator allows more with WHARF_LOCAL_SOURCE_ROOTS",
                outside.display(),
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
}
