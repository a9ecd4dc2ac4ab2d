//! The web page, embedded in the binary from `web/` (no Node or files needed at run time).
//!
//! Every asset is served with a strong `ETag` and `Cache-Control: no-cache`, so a reload revalidates
//! (`If-None-Match` → `304` without a body) instead of downloading again. Text assets are compressed
//! (`br` preferred, else `gzip`, as the request's `Accept-Encoding` allows) once, on first use, and kept
//! in memory; each encoding has its own `ETag` and answers carry `Vary: Accept-Encoding`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, LazyLock};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use rust_embed::Embed;

use super::error::error_response;

#[derive(Embed)]
#[folder = "web/"]
struct Assets;

/// Smaller files are sent as they are: compressing them saves nothing worth a header.
const MIN_COMPRESS_BYTES: usize = 512;

/// Serves `web/` for any path not claimed by the API; unknown API paths get a JSON 404.
pub async fn asset(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") || path == "ws" {
        return error_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint");
    }
    serve(if path.is_empty() { "index.html" } else { path }, &method, &headers).await
}

/// How a body is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    fn token(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Brotli => Some("br"),
        }
    }
}

/// The `q` value `Accept-Encoding` gives `name` (1 when listed without one; `*` covers the unlisted;
/// 0 when refused or absent).
fn quality(accept: &str, name: &str) -> f32 {
    let mut star = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case(name) {
            return q;
        }
        if coding == "*" {
            star = Some(q);
        }
    }
    star.unwrap_or(0.0)
}

/// The best encoding the client accepts among those available: `br`, then `gzip`, else identity.
fn negotiate(accept: Option<&str>) -> Encoding {
    let Some(accept) = accept else { return Encoding::Identity };
    let (br, gz) = (quality(accept, "br"), quality(accept, "gzip"));
    if br > 0.0 && br >= gz {
        Encoding::Brotli
    } else if gz > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// One asset, ready to serve in every encoding worth having.
struct Prepared {
    mime: String,
    /// Strong validator of the file's content (its SHA-256, shortened).
    tag: String,
    identity: Vec<u8>,
    /// `None` when the type does not compress (images) or the file is too small.
    gzip: Option<Vec<u8>>,
    brotli: Option<Vec<u8>>,
}

fn compressible(mime: &str) -> bool {
    mime.starts_with("text/") || mime.contains("javascript") || mime.contains("json") || mime.contains("svg")
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

fn brotli(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 22, ..Default::default() };
    brotli::BrotliCompress(&mut &data[..], &mut out, &params).ok()?;
    Some(out)
}

impl Prepared {
    fn new(file: rust_embed::EmbeddedFile) -> Prepared {
        let mime = file.metadata.mimetype().to_owned();
        let tag = hex::encode(&file.metadata.sha256_hash()[..12]);
        let identity = file.data.into_owned();
        let worth = compressible(&mime) && identity.len() >= MIN_COMPRESS_BYTES;
        // Kept only when smaller than the original.
        let smaller = |c: Option<Vec<u8>>| c.filter(|c| c.len() < identity.len());
        let gzip = if worth { smaller(gzip(&identity)) } else { None };
        let brotli = if worth { smaller(brotli(&identity)) } else { None };
        Prepared { mime, tag, identity, gzip, brotli }
    }

    /// The body and encoding to send for what the client accepts.
    fn pick(&self, wanted: Encoding) -> (&[u8], Encoding) {
        match wanted {
            Encoding::Brotli if self.brotli.is_some() => (self.brotli.as_deref().unwrap_or_default(), Encoding::Brotli),
            Encoding::Brotli | Encoding::Gzip if self.gzip.is_some() => {
                (self.gzip.as_deref().unwrap_or_default(), Encoding::Gzip)
            }
            _ => (&self.identity, Encoding::Identity),
        }
    }

    fn etag(&self, enc: Encoding) -> String {
        match enc.token() {
            Some(t) => format!("\"{}-{t}\"", self.tag),
            None => format!("\"{}\"", self.tag),
        }
    }
}

/// Assets prepared so far, by path (the set is the fixed, small content of `web/`).
static PREPARED: LazyLock<Mutex<HashMap<String, Arc<Prepared>>>> = LazyLock::new(Default::default);

/// The prepared asset at `path`, compressing it (on the blocking pool) the first time it is asked for.
async fn prepared(path: &str) -> Option<Arc<Prepared>> {
    if let Some(p) = PREPARED.lock().get(path) {
        return Some(p.clone());
    }
    let file = Assets::get(path)?;
    let p = Arc::new(tokio::task::spawn_blocking(move || Prepared::new(file)).await.ok()?);
    Some(PREPARED.lock().entry(path.to_owned()).or_insert(p).clone())
}

/// Whether `If-None-Match` lists `etag` (weak comparison, as RFC 9110 asks for this header).
fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.trim() == "*"
        || if_none_match.split(',').any(|t| t.trim().trim_start_matches("W/") == etag.trim_start_matches("W/"))
}

async fn serve(path: &str, method: &Method, headers: &HeaderMap) -> Response {
    let Some(asset) = prepared(path).await else {
        return error_response(StatusCode::NOT_FOUND, "not_found", "no such page");
    };
    let wanted = negotiate(headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()));
    let (body, enc) = asset.pick(wanted);
    let etag = asset.etag(enc);
    let fresh = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|inm| matches(inm, &etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        let mut r = ().into_response();
        r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        r
    } else {
        body.to_vec().into_response()
    };
    let h = resp.headers_mut();
    if !fresh && let Ok(v) = HeaderValue::from_str(&asset.mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Some(t) = enc.token().filter(|_| !fresh) {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(t));
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if asset.gzip.is_some() || asset.brotli.is_some() {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::{Encoding, matches, negotiate, quality};

    #[test]
    fn negotiates_the_best_accepted_encoding() {
        assert_eq!(negotiate(None), Encoding::Identity);
        assert_eq!(negotiate(Some("gzip, deflate, br, zstd")), Encoding::Brotli);
        assert_eq!(negotiate(Some("gzip")), Encoding::Gzip);
        assert_eq!(negotiate(Some("br;q=0, gzip;q=0.5")), Encoding::Gzip);
        assert_eq!(negotiate(Some("br;q=0.2, gzip;q=0.8")), Encoding::Gzip);
        assert_eq!(negotiate(Some("identity")), Encoding::Identity);
        assert_eq!(negotiate(Some("*")), Encoding::Brotli);
        assert_eq!(negotiate(Some("*;q=0")), Encoding::Identity);
        assert_eq!(quality("GZIP;Q=0.3", "gzip"), 0.3);
    }

    #[test]
    fn if_none_match_compares_weakly_and_lists() {
        assert!(matches("\"abc-br\"", "\"abc-br\""));
        assert!(matches("W/\"abc\", \"abc-br\"", "\"abc-br\""));
        assert!(matches("*", "\"x\""));
        assert!(!matches("\"abc\"", "\"abc-br\""));
    }
}
