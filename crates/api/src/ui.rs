//! The web UI: the static files of `ui/` embedded in the binary and served at `GET /`
//! and `GET /ui/{path}`.
//!
//! There is no build step: the files are plain HTML, CSS and ES modules, compiled into the
//! binary by `include_bytes!`, so `cargo build` alone makes a complete binary. Every answer
//! carries a strong `ETag` (a hash of the file's bytes) and `Cache-Control: no-cache`: a
//! browser revalidates each file and gets a bodiless `304` while it is unchanged, so a new
//! binary is never hidden behind a stale cache.
//!
//! While working on the UI, `LOGYARD_UI_DIR=ui` makes the server read the same files from
//! that directory at each request instead, so an edit shows on reload without a rebuild.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;

/// One embedded file.
struct Asset {
    /// The path under `ui/`.
    path: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(Asset { path: $path, bytes: include_bytes!(concat!("../../../ui/", $path)) }),*]
    };
}

/// Every file of `ui/`; a new file needs a line here.
static ASSETS: &[Asset] = assets![
    "index.html",
    "app.css",
    "favicon.svg",
    "js/main.js",
    "js/api.js",
    "js/dom.js",
    "js/state.js",
    "js/time.js",
    "js/query.js",
    "js/histogram.js",
    "js/charts.js",
    "js/list.js",
    "js/explorer.js",
    "js/dashboard.js",
    "js/alerts.js",
    "js/sources.js",
    "js/session.js",
    "js/saved.js",
];

/// The routes of the UI; they use no state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{*path}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers).unwrap_or_else(|e| e.into_response())
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers).unwrap_or_else(|e| e.into_response())
}

fn serve(path: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let (asset, etag) = find(path).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no UI file {path}"),
        )
    })?;
    let dev = dev_file(asset.path);
    let (bytes, etag): (std::borrow::Cow<'static, [u8]>, String) = match dev {
        Some(b) => {
            let etag = format!("\"{:016x}\"", fnv1a(&b));
            (b.into(), etag)
        }
        None => (asset.bytes.into(), etag.to_string()),
    };
    let etag = HeaderValue::from_str(&etag).expect("an etag is ASCII");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let common = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if fresh {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let content_type = HeaderValue::from_static(content_type(asset.path));
    Ok((common, [(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

/// The file from `$LOGYARD_UI_DIR`, when that is set (UI development without rebuilds).
/// Only the embedded files' paths are looked up, so no other file can be read.
fn dev_file(path: &str) -> Option<Vec<u8>> {
    let dir = std::env::var_os("LOGYARD_UI_DIR")?;
    std::fs::read(std::path::Path::new(&dir).join(path)).ok()
}

/// Returns the asset at `path` and its ETag.
fn find(path: &str) -> Option<(&'static Asset, &'static str)> {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    let etags = ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{:016x}\"", fnv1a(a.bytes)))
            .collect()
    });
    let i = ASSETS.iter().position(|a| a.path == path)?;
    Some((&ASSETS[i], etags[i].as_str()))
}

/// The 64-bit FNV-1a hash: enough to tell versions of a file apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn app() -> Router {
        routes::<()>()
    }

    #[test]
    fn every_asset_has_a_known_type() {
        for a in ASSETS {
            assert_ne!(
                content_type(a.path),
                "application/octet-stream",
                "{}",
                a.path
            );
            assert!(!a.bytes.is_empty(), "{} is empty", a.path);
        }
    }

    #[tokio::test]
    async fn serves_index_and_modules_with_etags() {
        let res = app()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let etag = res.headers()[header::ETAG].clone();
        let res = app()
            .oneshot(
                Request::get("/")
                    .header(header::IF_NONE_MATCH, etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        let res = app()
            .oneshot(Request::get("/ui/js/main.js").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let res = app()
            .oneshot(Request::get("/ui/nope.js").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}
