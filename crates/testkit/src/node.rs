//! One node seen from outside: its REST API (JSON in, status and JSON out) and its WebSocket, with the
//! conventions tests share (user `name` has the password `password-{name}`).

use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::ws::Ws;

/// A client of the node serving HTTP on `addr`.
#[derive(Clone)]
pub struct Node {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
}

impl Node {
    pub fn new(addr: SocketAddr) -> Self {
        Node { addr, http: reqwest::Client::new() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post(&self, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        answer(req).await
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        answer(req).await
    }

    /// Registers and logs in `name` (password "password-{name}"); returns the token.
    pub async fn user(&self, name: &str) -> String {
        let (s, b) = self
            .post(None, "/api/v1/register", json!({"username": name, "password": format!("password-{name}")}))
            .await;
        assert_eq!(s, 201, "register {name}: {b}");
        self.login(name).await
    }

    pub async fn login(&self, name: &str) -> String {
        login(&self.http, &self.url(""), name).await
    }

    /// The room's whole history (see [`history`]).
    pub async fn history(&self, token: &str, room: &str) -> Vec<Value> {
        history(&self.http, &self.url(""), token, room).await
    }

    /// Creates a room as `token`'s user; returns its id.
    pub async fn room(&self, token: &str, name: &str, visibility: &str) -> i64 {
        let (s, b) = self.post(Some(token), "/api/v1/rooms", json!({"name": name, "visibility": visibility})).await;
        assert_eq!(s, 201, "create room {name}: {b}");
        b["id"].as_i64().unwrap()
    }

    pub async fn join(&self, token: &str, room: &str) {
        let (s, b) = self.post(Some(token), &format!("/api/v1/rooms/{room}/join"), json!({})).await;
        assert_eq!(s, 200, "join {room}: {b}");
    }

    /// A WebSocket past its `hello` frame.
    pub async fn ws(&self, token: &str) -> Ws {
        self.ws_query(token, "").await
    }

    /// A socket opened with `?resume=1`: live delivery waits for its first `resume` frame.
    pub async fn ws_resuming(&self, token: &str) -> Ws {
        self.ws_query(token, "&resume=1").await
    }

    async fn ws_query(&self, token: &str, extra: &str) -> Ws {
        let ws = self.ws_raw(&format!("/ws?token={token}{extra}")).await.expect("websocket upgrade");
        let mut ws = Ws { inner: ws };
        let hello = ws.next_json().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        ws
    }

    /// The upgrade alone (subprotocol `parley.v1`), or why it failed.
    pub async fn ws_raw(
        &self,
        path_and_query: &str,
    ) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, tokio_tungstenite::tungstenite::Error> {
        let mut req = format!("ws://{}{}", self.addr, path_and_query).into_client_request()?;
        req.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("parley.v1"));
        tokio_tungstenite::connect_async(req).await.map(|(ws, _)| ws)
    }
}

/// Logs in `name` (password "password-{name}") at the node whose base URL is `base` (`http://host:port`);
/// returns the token.
pub async fn login(http: &reqwest::Client, base: &str, name: &str) -> String {
    let body = json!({"username": name, "password": format!("password-{name}")});
    let (s, b) = answer(http.post(format!("{base}/api/v1/login")).json(&body)).await;
    assert_eq!(s, 200, "login {name}: {b}");
    b["token"].as_str().unwrap().to_owned()
}

/// A room's whole history as the node at `base` holds it, oldest first: its messages as sent, read with
/// REST in pages of 200.
pub async fn history(http: &reqwest::Client, base: &str, token: &str, room: &str) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    loop {
        let after = all.last().map_or(0, |m| m["seq"].as_i64().unwrap());
        let url = format!("{base}/api/v1/rooms/{room}/messages?after={after}&limit=200");
        let (s, page) = answer(http.get(url).bearer_auth(token)).await;
        assert_eq!(s, 200, "history of {room}: {page}");
        all.extend(page["messages"].as_array().unwrap().iter().cloned());
        if page["has_more"] != json!(true) {
            return all;
        }
    }
}

/// Status and JSON body (`Null` when the body is not JSON).
async fn answer(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}
