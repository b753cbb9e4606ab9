//! The dashboard: `GET /ui` and its files, compiled into the server (`ui/` beside the
//! crate's `src/`), served with a strict Content-Security-Policy — scripts, styles and
//! requests only from this server, no inline script or style, no frames — and nothing
//! loaded from elsewhere. The page uses only the public API, with the token its user
//! types in.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::StatusCode;

use super::problem::ApiError;

/// What the dashboard's pages may load and do.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The dashboard's files: name under `/ui/`, media type, contents.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../ui/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../ui/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/api.js"),
    ),
    (
        "chart.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/chart.js"),
    ),
    (
        "format.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/format.js"),
    ),
    (
        "sse.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/sse.js"),
    ),
    (
        "store.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/store.js"),
    ),
    (
        "stream.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/stream.js"),
    ),
    (
        "views.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/views.js"),
    ),
];

/// `GET /ui` and `GET /ui/`: the page.
pub(super) async fn index() -> Response {
    file("index.html").unwrap_or_else(|| ApiError::not_found("no dashboard").into_response())
}

/// `GET /ui/{file}`: one of its files.
pub(super) async fn asset(Path(name): Path<String>) -> Response {
    file(&name).unwrap_or_else(|| {
        ApiError::not_found(format!("the dashboard has no file {name:?}")).into_response()
    })
}

fn file(name: &str) -> Option<Response> {
    let (_, media_type, contents) = FILES.iter().find(|(n, _, _)| *n == name)?;
    let mut response = (StatusCode::OK, *contents).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
    // Served from this binary: a new version is a new server, so no caching beyond it.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `ui/` (not its tests) is served, and nothing else.
    #[test]
    fn every_file_of_the_dashboard_is_compiled_in() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        on_disk.sort();
        let mut served: Vec<String> = FILES.iter().map(|(n, _, _)| (*n).to_owned()).collect();
        served.sort();
        assert_eq!(served, on_disk);
    }

    #[test]
    fn files_carry_their_type_and_the_policy() {
        let page = file("index.html").unwrap();
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        let policy = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe"));
        assert!(file("../Cargo.toml").is_none());
        assert!(file("app.js").is_some());
    }
}
