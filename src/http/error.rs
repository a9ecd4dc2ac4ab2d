//! Core errors as HTTP answers: a status, and a JSON body with the stable code. Internal errors are
//! logged here, once, with their whole cause chain, and answered opaquely.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::wire::ErrorBodyW;
use crate::core::error::Error;

pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::BadRequest(_)
        | Error::InvalidUsername
        | Error::InvalidPassword
        | Error::InvalidDisplayName
        | Error::InvalidRoomName
        | Error::EmptyMessage
        | Error::MessageTooLarge { .. }
        | Error::EmptyFile
        | Error::UploadIncomplete
        | Error::TooManyFiles { .. } => StatusCode::BAD_REQUEST,
        Error::FileTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::QuotaExceeded { .. } => StatusCode::INSUFFICIENT_STORAGE,
        Error::UploadStalled { .. } => StatusCode::REQUEST_TIMEOUT,
        Error::FileNotFound | Error::ThumbnailNotFound => StatusCode::NOT_FOUND,
        Error::InvalidEmoji => StatusCode::BAD_REQUEST,
        Error::Unauthorized | Error::InvalidCredentials => StatusCode::UNAUTHORIZED,
        Error::TooManyAttempts { .. } | Error::RateLimited { .. } | Error::TooManyConnections { .. } => {
            StatusCode::TOO_MANY_REQUESTS
        }
        Error::UsernameTaken | Error::RoomNameTaken | Error::TooManyReactions => StatusCode::CONFLICT,
        Error::RoomNotFound | Error::UserNotFound => StatusCode::NOT_FOUND,
        Error::NotAMember | Error::Forbidden(_) | Error::Banned => StatusCode::FORBIDDEN,
        Error::MessageNotFound | Error::WebhookNotFound | Error::InviteNotFound => StatusCode::NOT_FOUND,
        Error::ShuttingDown | Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A JSON error answer with any status and code (also for refusals that are not core errors).
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": ErrorBodyW { code, message, retry_after_ms: None } }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        if let Error::Internal(cause) = &e {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let body = ErrorBodyW {
            code: e.code(),
            message: &e.public_message(),
            retry_after_ms: e.retry_after().map(super::wire::retry_ms),
        };
        let mut resp = (status_of(&e), Json(serde_json::json!({ "error": body }))).into_response();
        if let Some(retry_after) = e.retry_after() {
            // Whole seconds, rounded up (the header has no finer unit).
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
