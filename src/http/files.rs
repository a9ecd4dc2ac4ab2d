//! Attachments over HTTP: the streamed upload, file metadata, and the bytes (single ranges, sniffed
//! type, `nosniff`, inline only for raster images). Rules live in `core::chat::files`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body as RawBody;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::auth::Auth;
use super::error::{ApiResult, error_response};
use super::wire::FileW;
use crate::core::domain::*;
use crate::core::error::Error;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name as the user knows it (sanitized before it is kept).
    name: Option<String>,
}

/// `POST /api/v1/rooms/{room}/files?name=…`: the body is the file's bytes, streamed to the blob store.
#[utoipa::path(post, path = "/api/v1/rooms/{room}/files", tag = "files", summary = "Upload a file into a room (not yet shared: send a message with its id in `files`)", params(super::openapi::RoomPath, UploadQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file's bytes (any `Content-Type`, ignored)"), responses((status = 201, description = "the file, not yet shared", body = FileW), (status = 408, description = "`upload_stalled`", body = super::openapi::ErrorW), (status = 413, description = "`file_too_large`", body = super::openapi::ErrorW), (status = 507, description = "`quota_exceeded`", body = super::openapi::ErrorW)))]
pub async fn upload(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: RawBody,
) -> ApiResult<Response> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let name = q.name.unwrap_or_default();
    let file = app.files.upload(&who, &super::api::room_ref(&room), &name, declared, body.into_data_stream()).await?;
    Ok((StatusCode::CREATED, Json(FileW::from(&file))).into_response())
}

/// `GET /api/v1/files/{id}`: what the file is, for those who may read it.
#[utoipa::path(get, path = "/api/v1/files/{id}", tag = "files", summary = "A file's metadata", params(super::openapi::FilePath), responses((status = 200, description = "the file", body = FileW)))]
pub async fn meta(State(app): State<Arc<AppState>>, Auth(who): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let file = app.files.file(&who, &id).await?;
    Ok(Json(FileW::from(&file)).into_response())
}

/// `GET /api/v1/files/{id}/content`: the bytes, whole or one range.
#[utoipa::path(get, path = "/api/v1/files/{id}/content", tag = "files", summary = "A file's bytes, whole or one range", params(super::openapi::FilePath, ("Range" = Option<String>, Header, description = "`bytes=…`: one range answers 206")), responses((status = 200, description = "the bytes", content_type = "application/octet-stream", body = Vec<u8>), (status = 206, description = "one range of the bytes", content_type = "application/octet-stream", body = Vec<u8>), (status = 416, description = "the range is not satisfiable")))]
pub async fn content(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let file = app.files.file(&who, &id).await?;
    let size = u64::try_from(file.size).unwrap_or(0);
    let etag = format!("\"{}\"", file.blob);
    let mut out = HeaderMap::new();
    out.insert(header::CONTENT_TYPE, header_value(served_type(&file), "application/octet-stream"));
    out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    out.insert(header::CONTENT_DISPOSITION, header_value(&disposition(&file), "attachment"));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(header::ETAG, header_value(&etag, "\"\""));
    // Access can change (a ban, a leave): caches must ask again each time.
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v == etag) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, size),
        Some(r) => match http_range_header::parse_range_header(r).and_then(|p| p.validate(size)) {
            // One range is served as asked; several are answered with the whole file (allowed by RFC 9110).
            Ok(ranges) if ranges.len() == 1 => {
                let (a, b) = (*ranges[0].start(), *ranges[0].end());
                out.insert(header::CONTENT_RANGE, header_value(&format!("bytes {a}-{b}/{size}"), ""));
                (StatusCode::PARTIAL_CONTENT, a, b + 1)
            }
            Ok(_) => (StatusCode::OK, 0, size),
            Err(_) => {
                let mut resp = error_response(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    &format!("the file has {size} bytes"),
                );
                resp.headers_mut().insert(header::CONTENT_RANGE, header_value(&format!("bytes */{size}"), ""));
                return Ok(resp);
            }
        },
    };
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    let stream = app.files.read(&file, start, end).await?;
    metrics::counter!("parley_download_bytes_total").increment(end - start);
    Ok((status, out, RawBody::from_stream(stream)).into_response())
}

/// `GET /api/v1/files/{id}/thumbnail`: the server-made thumbnail of an inline image.
#[utoipa::path(get, path = "/api/v1/files/{id}/thumbnail", tag = "files", summary = "A file's thumbnail (inline images only), with the file's access rules", params(super::openapi::FilePath), responses((status = 200, description = "the thumbnail (`image/png` or `image/jpeg`)", content_type = "image/jpeg", body = Vec<u8>), (status = 404, description = "`file_not_found`, `room_not_found`, or `thumbnail_not_found` (not an image, or none could be made)", body = super::openapi::ErrorW)))]
pub async fn thumbnail(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let file = app.files.file(&who, &id).await?;
    let Some(t) = &file.thumbnail else { return Err(Error::ThumbnailNotFound.into()) };
    let etag = format!("\"{}\"", t.blob);
    let mut out = HeaderMap::new();
    out.insert(header::CONTENT_TYPE, header_value(&t.content_type, "application/octet-stream"));
    out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    out.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
    out.insert(header::ETAG, header_value(&etag, "\"\""));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v == etag) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let (t, stream) = app.files.read_thumbnail(&file).await?;
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(u64::try_from(t.size).unwrap_or(0)));
    Ok((StatusCode::OK, out, RawBody::from_stream(stream)).into_response())
}

/// The type a download is served with: the sniffed one, except that a type a browser could run
/// (HTML, SVG, XML, script) is served as opaque bytes, whatever `Content-Disposition` already says.
fn served_type(file: &FileMeta) -> &str {
    let t = file.content_type.as_str();
    let active = ["html", "svg", "xml", "javascript", "ecmascript", "pdf", "flash"].iter().any(|a| t.contains(a));
    if active { "application/octet-stream" } else { t }
}

fn header_value(s: &str, fallback: &'static str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(fallback))
}

/// `inline` for raster images, `attachment` for everything else; the name as ASCII and as UTF-8.
fn disposition(file: &FileMeta) -> String {
    let kind = if file.inline() { "inline" } else { "attachment" };
    let ascii: String = file
        .name
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' })
        .filter(|c| *c != '\\')
        .collect();
    let utf8 = percent_encoding::utf8_percent_encode(&file.name, percent_encoding::NON_ALPHANUMERIC);
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{utf8}")
}
