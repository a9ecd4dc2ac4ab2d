//! REST request bodies (`docs/PROTOCOL.md` §2 and docs/openapi.json): what a client sends, as the server
//! reads it. One owned type per body, `Serialize` for clients (the terminal client, the load generator,
//! tests) and `Deserialize` for the server, with utoipa schemas behind the `openapi` feature. The answers
//! are [`crate::server`]'s shapes (decoded by clients into [`crate::client`]'s mirrors).
//!
//! Types are described by plain comments: a doc comment would become the schema's description and change
//! docs/openapi.json. Field docs are part of the document.

use serde::{Deserialize, Deserializer, Serialize};

// `POST /api/v1/register`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterReq {
    pub username: String,
    pub password: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

// `POST /api/v1/login`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginReq {
    pub username: String,
    pub password: String,
}

// `PATCH /api/v1/me`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatchMe {
    pub display_name: String,
}

// `POST /api/v1/dms`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenDm {
    pub username: String,
}

// `POST /api/v1/rooms`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRoom {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
}

// `POST /api/v1/rooms/{room}/invites`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InviteReq {
    pub username: String,
}

// `POST /api/v1/rooms/{room}/messages`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendReq {
    pub body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// The seq of the message this one replies to (same room).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
}

// `PATCH /api/v1/rooms/{room}`: each field absent is left unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatchRoom {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// `public` or `private` (owner only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// Absent: unchanged; `null`: keep forever; a number: seconds.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub retention_secs: Option<Option<i64>>,
}

/// Tells a present `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

// A user named in a moderation request (kick, ban, unban, transfer).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Username))]
pub struct Target {
    pub username: String,
}

// `POST /api/v1/rooms/{room}/roles`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetRole {
    pub username: String,
    pub role: String,
}

// `POST /api/v1/rooms/{room}/read`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadReq {
    pub seq: i64,
}

// `PATCH /api/v1/rooms/{room}/messages/{seq}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EditReq {
    pub body: String,
}

// `POST /api/v1/rooms/{room}/webhooks`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewWebhook {
    pub url: String,
}

// `POST /api/v1/rooms/{room}/threads/{seq}/read`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeqReq {
    pub seq: i64,
}

// `PUT /api/v1/rooms/{room}/notify`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NotifyReq {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_patch_tells_null_from_absent_both_ways() {
        let keep: PatchRoom = serde_json::from_value(json!({ "retention_secs": null })).unwrap();
        assert_eq!(keep.retention_secs, Some(None));
        let unchanged: PatchRoom = serde_json::from_value(json!({ "topic": "t" })).unwrap();
        assert_eq!(unchanged.retention_secs, None);
        assert_eq!(serde_json::to_value(&keep).unwrap(), json!({ "retention_secs": null }));
        assert_eq!(serde_json::to_value(&unchanged).unwrap(), json!({ "topic": "t" }));
        let secs = PatchRoom { retention_secs: Some(Some(60)), ..PatchRoom::default() };
        assert_eq!(serde_json::to_value(&secs).unwrap(), json!({ "retention_secs": 60 }));
    }

    #[test]
    fn bodies_round_trip_and_leave_out_what_is_unset() {
        let send = SendReq { body: "hi".into(), files: vec!["f1".into()], ..SendReq::default() };
        let v = serde_json::to_value(&send).unwrap();
        assert_eq!(v, json!({ "body": "hi", "files": ["f1"] }));
        assert_eq!(serde_json::from_value::<SendReq>(v).unwrap(), send);
        let room = CreateRoom { name: "lobby".into(), visibility: Some("private".into()) };
        assert_eq!(serde_json::to_value(&room).unwrap(), json!({ "name": "lobby", "visibility": "private" }));
        assert!(serde_json::from_value::<NotifyReq>(json!({ "level": "all", "extra": 1 })).is_err());
    }
}
