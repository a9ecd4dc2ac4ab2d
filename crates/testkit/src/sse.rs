//! An EventSource reader over a `reqwest` response: events as (event, id, data), comments counted.

use serde_json::Value;

use crate::DEADLINE;

pub struct Sse {
    resp: reqwest::Response,
    buf: String,
    /// Comment lines seen (the server's keepalives).
    pub comments: usize,
}

#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

impl Sse {
    /// Sends `req` (a GET of the event stream, authenticated as the test likes); the stream, or the
    /// status and JSON body of a refusal.
    pub async fn open(req: reqwest::RequestBuilder) -> Result<Sse, (u16, Value)> {
        let resp = req.send().await.unwrap();
        if resp.status() != 200 {
            let status = resp.status().as_u16();
            return Err((status, resp.json().await.unwrap_or(Value::Null)));
        }
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Ok(Sse { resp, buf: String::new(), comments: 0 })
    }

    /// The next event (one with data); `None` when the stream ended. Panics after [`DEADLINE`].
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let (mut event, mut id, mut data) = (String::from("message"), None, String::new());
                for line in block.lines() {
                    if line.starts_with(':') {
                        self.comments += 1;
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(SseEvent { event, id, data: serde_json::from_str(&data).unwrap() });
            }
            match tokio::time::timeout(DEADLINE, self.resp.chunk()).await.expect("an event in time") {
                Ok(Some(chunk)) => self.buf.push_str(std::str::from_utf8(&chunk).unwrap()),
                _ => return None,
            }
        }
    }

    /// The next event; panics if the stream ends.
    pub async fn event(&mut self) -> SseEvent {
        self.next().await.expect("stream open")
    }

    /// The next `message` event whose message is a text, and that message.
    pub async fn next_text(&mut self) -> (SseEvent, Value) {
        loop {
            let e = self.event().await;
            if e.event == "message" && e.data["message"]["kind"] == "text" {
                let m = e.data["message"].clone();
                return (e, m);
            }
        }
    }

    /// The data of the next event named `ty`, skipping others; panics if the stream ends.
    pub async fn next_of(&mut self, ty: &str) -> Value {
        loop {
            let e = self.next().await.expect("stream open");
            if e.event == ty {
                return e.data;
            }
        }
    }
}
