//! The UI's static files, embedded in the binary and served under names that change when their
//! bytes do, so browsers may keep them for a year: htmx under its version (vendored from the
//! `htmx.org` npm package, unchanged), wharf's own stylesheet and script under a hash of their
//! contents. Nothing is loaded from anywhere else: the UI works offline.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::sync::OnceLock;

/// The htmx release vendored in `crates/server/assets`.
const HTMX_FILE: &str = "htmx-2.0.11.min.js";

struct Asset {
    /// The name it is served under.
    name: String,
    /// The file in `crates/server/assets`.
    file: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// The paths pages link to.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AssetPaths {
    pub css: String,
    pub js: String,
    pub htmx: String,
}

fn hashed(stem: &str, extension: &str, bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{stem}-{short}.{extension}")
}

fn assets() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let css: &[u8] = include_bytes!("../../assets/app.css");
        let js: &[u8] = include_bytes!("../../assets/app.js");
        let htmx: &[u8] = include_bytes!("../../assets/htmx-2.0.11.min.js");
        vec![
            Asset {
                name: hashed("app", "css", css),
                file: "app.css",
                content_type: "text/css; charset=utf-8",
                bytes: css,
            },
            Asset {
                name: hashed("app", "js", js),
                file: "app.js",
                content_type: "text/javascript; charset=utf-8",
                bytes: js,
            },
            Asset {
                name: HTMX_FILE.to_string(),
                file: HTMX_FILE,
                content_type: "text/javascript; charset=utf-8",
                bytes: htmx,
            },
        ]
    })
}

pub(crate) fn paths() -> AssetPaths {
    let path = |file: &str| {
        assets()
            .iter()
            .find(|a| a.file == file)
            .map(|a| format!("/assets/{}", a.name))
            .unwrap_or_default()
    };
    AssetPaths {
        css: path("app.css"),
        js: path("app.js"),
        htmx: path(HTMX_FILE),
    }
}

/// `GET /assets/{name}`.
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = assets().iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    #[cfg(debug_assertions)]
    if let Some(bytes) = from_source_tree(asset.file) {
        // A development build next to its sources: the file as it is now, never cached.
        return (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(asset.content_type),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            bytes,
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(debug_assertions)]
fn from_source_tree(file: &str) -> Option<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    std::fs::read(dir.join(file)).ok()
}
