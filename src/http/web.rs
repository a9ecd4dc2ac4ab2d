//! The web page, embedded in the binary from `web/` (no Node or files needed at run time).

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

use super::error::error_response;

#[derive(Embed)]
#[folder = "web/"]
struct Assets;

/// Serves `web/` for any path not claimed by the API; unknown API paths get a JSON 404.
pub async fn asset(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") || path == "ws" {
        return error_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint");
    }
    serve(if path.is_empty() { "index.html" } else { path })
}

fn serve(path: &str) -> Response {
    match Assets::get(path) {
        Some(file) => {
            let mime = file.metadata.mimetype();
            let mut resp = file.data.into_owned().into_response();
            if let Ok(v) = HeaderValue::from_str(mime) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        None => error_response(StatusCode::NOT_FOUND, "not_found", "no such page"),
    }
}
