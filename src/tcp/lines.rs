//! The line codec: input split into UTF-8 lines, overlong ones refused without buffering them, and a
//! line split into a command and its arguments. Pure, so both are fuzzed (`fuzz/`).

use bytes::BytesMut;

/// Splits input into lines, refusing overlong ones without buffering them: after [`LineReader::next`]
/// returns `None`, at most `max` bytes stay buffered.
#[derive(Default)]
pub struct LineReader {
    buf: BytesMut,
    discarding: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(String),
    TooLong,
    BadUtf8,
}

impl LineReader {
    /// Appends bytes read from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned as a line.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete line in the buffer, if any.
    #[allow(clippy::should_implement_trait)] // takes the limit, so not an Iterator
    pub fn next(&mut self, max: usize) -> Option<Line> {
        loop {
            match self.buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut raw = self.buf.split_to(i + 1);
                    if std::mem::take(&mut self.discarding) {
                        continue; // the tail of a line already refused
                    }
                    raw.truncate(i);
                    if raw.last() == Some(&b'\r') {
                        raw.truncate(i - 1);
                    }
                    if raw.len() > max {
                        return Some(Line::TooLong);
                    }
                    return Some(match String::from_utf8(raw.to_vec()) {
                        Ok(s) => Line::Text(s),
                        Err(_) => Line::BadUtf8,
                    });
                }
                None if self.buf.len() > max => {
                    let refused = !self.discarding;
                    self.buf.clear();
                    self.discarding = true;
                    return refused.then_some(Line::TooLong);
                }
                None => return None,
            }
        }
    }
}

/// A line as a command name and its argument text: `/join general` → `("join", "general")`; a line
/// without `/` is `("say", line)`; an empty line is nothing. Pure, so it is fuzzed (`fuzz/`).
pub fn split_command(line: &str) -> Option<(&str, &str)> {
    if line.is_empty() {
        return None;
    }
    Some(match line.strip_prefix('/') {
        Some(c) => c.split_once(' ').map_or((c, ""), |(a, b)| (a, b.trim())),
        None => ("say", line),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(r: &mut LineReader, max: usize) -> Vec<String> {
        std::iter::from_fn(|| r.next(max))
            .map(|l| match l {
                Line::Text(t) => t,
                Line::TooLong => "<too long>".into(),
                Line::BadUtf8 => "<bad utf8>".into(),
            })
            .collect()
    }

    #[test]
    fn lines_are_split_limited_and_checked() {
        let mut r = LineReader::default();
        r.buf.extend_from_slice(b"hello\r\nw");
        assert_eq!(lines(&mut r, 10), ["hello"]);
        r.buf.extend_from_slice(b"orld\n\xff\xfe\n");
        assert_eq!(lines(&mut r, 10), ["world", "<bad utf8>"]);
        // Overlong, split across reads: refused once, then skipped to the newline.
        r.buf.extend_from_slice(&[b'x'; 25]);
        assert_eq!(lines(&mut r, 10), ["<too long>"]);
        r.buf.extend_from_slice(&[b'x'; 25]);
        assert!(lines(&mut r, 10).is_empty());
        r.buf.extend_from_slice(b"xx\nok\n");
        assert_eq!(lines(&mut r, 10), ["ok"]);
        r.buf.extend_from_slice(b"0123456789A\n");
        assert_eq!(lines(&mut r, 10), ["<too long>"]);
        assert!(r.buf.is_empty());
    }

    #[test]
    fn commands_split_into_name_and_arguments() {
        assert_eq!(split_command(""), None);
        assert_eq!(split_command("hello there"), Some(("say", "hello there")));
        assert_eq!(split_command("/join  general "), Some(("join", "general")));
        assert_eq!(split_command("/quit"), Some(("quit", "")));
        assert_eq!(split_command("/"), Some(("", "")));
        assert_eq!(split_command("/é ü"), Some(("é", "ü")));
    }
}
