//! A WebSocket client speaking JSON frames, every read bounded by [`DEADLINE`].

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::DEADLINE;

pub struct Ws {
    pub inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn send(&mut self, v: Value) {
        self.inner.send(Message::text(v.to_string())).await.unwrap();
    }

    /// The next JSON frame; panics on close or after [`DEADLINE`].
    pub async fn next_json(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(DEADLINE, self.inner.next()).await.expect("a frame in time");
            match m {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next frame of `ty`, skipping others.
    pub async fn next_of(&mut self, ty: &str) -> Value {
        loop {
            let v = self.next_json().await;
            if v["type"] == ty {
                return v;
            }
        }
    }

    /// The next `message` frame's message whose kind is `text`.
    pub async fn next_text(&mut self) -> Value {
        loop {
            let v = self.next_of("message").await;
            if v["message"]["kind"] == "text" {
                return v["message"].clone();
            }
        }
    }

    /// Reads until the server closes; the close code (None when the connection just ended).
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(DEADLINE, self.inner.next()).await.expect("close in time") {
                Some(Ok(Message::Close(f))) => {
                    return f.map(|f| u16::from(f.code)).or(Some(u16::from(CloseCode::Status)));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }
}
