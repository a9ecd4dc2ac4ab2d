//! The one error type of the core. Each variant has a stable `code` (documented in `docs/PROTOCOL.md`)
//! that every transport passes to users unchanged; transports only choose how to carry it (an HTTP
//! status, an `error` frame, an `ERR` line).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("username must be 3-32 letters, digits, '_' or '-', starting with a letter")]
    InvalidUsername,
    #[error("password must be 8-256 bytes")]
    InvalidPassword,
    #[error("display name must be 1-64 characters without control, bidi-control or zero-width characters")]
    InvalidDisplayName,
    #[error("room name must be 1-48 letters, digits, '_' or '-', starting with a letter")]
    InvalidRoomName,
    #[error("message body is empty")]
    EmptyMessage,
    #[error("message body is longer than {max_bytes} bytes")]
    MessageTooLarge { max_bytes: usize },
    #[error("missing, invalid or expired token")]
    Unauthorized,
    #[error("unknown username or wrong password")]
    InvalidCredentials,
    #[error("too many failed attempts; try again in {} s", retry_after.as_secs().max(1))]
    TooManyAttempts { retry_after: Duration },
    #[error("too many {}; try again in {} ms", limit.what(), retry_after.as_millis().max(1))]
    RateLimited { limit: Limit, retry_after: Duration },
    #[error("too many {}; try again later", limit.what())]
    TooManyConnections { limit: Limit, retry_after: Duration },
    #[error("that username is taken")]
    UsernameTaken,
    #[error("a room with that name exists")]
    RoomNameTaken,
    #[error("no such room")]
    RoomNotFound,
    #[error("no such user")]
    UserNotFound,
    #[error("you are not a member of this room")]
    NotAMember,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("you are banned from this room")]
    Banned,
    #[error("no such message")]
    MessageNotFound,
    #[error("no such webhook")]
    WebhookNotFound,
    #[error("you have no invitation into that room")]
    InviteNotFound,
    #[error("the file is larger than {max_bytes} bytes")]
    FileTooLarge { max_bytes: u64 },
    #[error("this upload would take you past your storage quota of {quota_bytes} bytes")]
    QuotaExceeded { quota_bytes: u64 },
    #[error("the file is empty")]
    EmptyFile,
    #[error("the upload stalled: no bytes for {} s", idle.as_secs())]
    UploadStalled { idle: Duration },
    #[error("the upload was cut short")]
    UploadIncomplete,
    #[error("no such file")]
    FileNotFound,
    #[error("this file has no thumbnail")]
    ThumbnailNotFound,
    #[error("a message may share at most {max} files")]
    TooManyFiles { max: usize },
    #[error("a reaction is one emoji: one Unicode grapheme cluster of at most 32 bytes")]
    InvalidEmoji,
    #[error("a message carries at most 20 distinct reactions")]
    TooManyReactions,
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Storing failed; the cause was logged where it happened (the ingest writer), once.
    #[error("messages cannot be stored right now; try again")]
    Unavailable,
    /// Anything the user cannot fix. Logged with its cause chain where it is answered; users see only
    /// `internal`.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::InvalidUsername => "invalid_username",
            Error::InvalidPassword => "invalid_password",
            Error::InvalidDisplayName => "invalid_display_name",
            Error::InvalidRoomName => "invalid_room_name",
            Error::EmptyMessage => "empty_message",
            Error::MessageTooLarge { .. } => "message_too_large",
            Error::Unauthorized => "unauthorized",
            Error::InvalidCredentials => "invalid_credentials",
            Error::TooManyAttempts { .. } => "too_many_attempts",
            Error::RateLimited { .. } => "rate_limited",
            Error::TooManyConnections { .. } => "too_many_connections",
            Error::UsernameTaken => "username_taken",
            Error::RoomNameTaken => "room_name_taken",
            Error::RoomNotFound => "room_not_found",
            Error::UserNotFound => "user_not_found",
            Error::NotAMember => "not_a_member",
            Error::Forbidden(_) => "forbidden",
            Error::Banned => "banned",
            Error::MessageNotFound => "message_not_found",
            Error::WebhookNotFound => "webhook_not_found",
            Error::InviteNotFound => "invite_not_found",
            Error::FileTooLarge { .. } => "file_too_large",
            Error::QuotaExceeded { .. } => "quota_exceeded",
            Error::EmptyFile => "empty_file",
            Error::UploadStalled { .. } => "upload_stalled",
            Error::UploadIncomplete => "upload_incomplete",
            Error::FileNotFound => "file_not_found",
            Error::ThumbnailNotFound => "thumbnail_not_found",
            Error::TooManyFiles { .. } => "too_many_files",
            Error::InvalidEmoji => "invalid_emoji",
            Error::TooManyReactions => "too_many_reactions",
            Error::ShuttingDown => "shutting_down",
            Error::Unavailable => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    /// The message shown to users: never the internal cause.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Error::Internal(e.into())
    }

    /// How long a refused client should wait before trying again, for refusals that say so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::TooManyAttempts { retry_after }
            | Error::RateLimited { retry_after, .. }
            | Error::TooManyConnections { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Which abuse limit refused a request (the `limit` label of `parley_rate_limited_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Login and registration attempts per client address.
    Auth,
    /// Messages per user.
    Messages,
    ConnectionsPerUser,
    ConnectionsTotal,
    /// Logins and registrations waiting for a password hash, server-wide.
    PasswordHashing,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Auth => "auth",
            Limit::Messages => "messages",
            Limit::ConnectionsPerUser => "connections_per_user",
            Limit::ConnectionsTotal => "connections_total",
            Limit::PasswordHashing => "password_hashing",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Limit::Auth => "login or registration attempts from your address",
            Limit::Messages => "messages",
            Limit::ConnectionsPerUser => "connections for this user",
            Limit::ConnectionsTotal => "connections to this server",
            Limit::PasswordHashing => "logins and registrations in progress on this server",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
