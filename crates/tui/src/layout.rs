//! Messages as terminal lines: sanitising, wrapping, and how each kind of message reads. Pure functions of
//! what the client holds, used by the renderer ([`crate::ui`]) and by scrolling ([`crate::state`]).

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar;

use crate::model::{PendingSend, RoomView};
use crate::proto::{Message, Quote, Reaction, User};

const NAME_COLORS: [Color; 6] =
    [Color::Cyan, Color::Green, Color::Magenta, Color::Yellow, Color::Blue, Color::LightRed];

/// `HH:MM` (UTC) of a millisecond timestamp.
pub fn clock(ts_ms: i64) -> String {
    let mins = ts_ms.div_euclid(60_000).rem_euclid(24 * 60);
    format!("{:02}:{:02}", mins / 60, mins % 60)
}

/// Text safe to put on a terminal: line breaks stay (the wrapper breaks lines there), tabs become spaces,
/// other control characters `�`.
pub fn sanitize(s: &str) -> String {
    s.replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\t' => ' ',
            '\n' => '\n',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// A one-line version of `s` (line breaks become spaces), for titles and lists.
pub fn one_line(s: &str) -> String {
    sanitize(s).replace('\n', " ")
}

pub fn width_of(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// Splits `text` into lines: the first at most `first` columns wide, the others at most `rest`, breaking
/// at line breaks, and at spaces where possible.
pub fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut out = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        let mut w = 0usize;
        let limit = |out: &Vec<String>| if out.is_empty() { first.max(1) } else { rest.max(1) };
        for word in para.split_inclusive(' ') {
            let ww = width_of(word);
            let lim = limit(&out);
            if w + ww.saturating_sub(usize::from(word.ends_with(' '))) <= lim {
                line.push_str(word);
                w += ww;
                continue;
            }
            if !line.is_empty() && ww <= rest.max(1) {
                out.push(std::mem::take(&mut line).trim_end().to_owned());
                line.push_str(word);
                w = ww;
                continue;
            }
            // A word longer than a line: break it wherever it does not fit.
            for c in word.chars() {
                let cw = c.width().unwrap_or(0);
                if w + cw > limit(&out) && !line.is_empty() {
                    out.push(std::mem::take(&mut line));
                    w = 0;
                }
                line.push(c);
                w += cw;
            }
        }
        out.push(line.trim_end().to_owned());
    }
    out
}

fn name_style(id: i64) -> Style {
    Style::new().fg(NAME_COLORS[id.rem_euclid(NAME_COLORS.len() as i64) as usize]).add_modifier(Modifier::BOLD)
}

/// Whether `m` mentions `me` (the server's `mentions`, or `@username` in the text).
pub fn mentions(m: &Message, me: &User) -> bool {
    if m.mentions.contains(&me.id) {
        return true;
    }
    let at = format!("@{}", me.username.to_ascii_lowercase());
    m.body
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '@'))
        .any(|w| w.to_ascii_lowercase() == at)
}

/// What a system message says, after the actor's name.
fn system_text(m: &Message) -> String {
    let target = m.target.as_ref().map(|u| one_line(u.shown_name())).unwrap_or_else(|| "someone".to_owned());
    let body = one_line(&m.body);
    match m.kind.as_str() {
        "join" => "joined".to_owned(),
        "leave" => "left".to_owned(),
        "create" => "created the room".to_owned(),
        "invite" => format!("invited {target}"),
        "kick" => format!("removed {target}"),
        "ban" => format!("banned {target}"),
        "unban" => format!("unbanned {target}"),
        "role" => format!("made {target} {body}"),
        "rename" => format!("renamed the room to {body}"),
        "topic" if body.is_empty() => "cleared the topic".to_owned(),
        "topic" => format!("set the topic: {body}"),
        "owner_changed" => format!("handed the room over to {target}"),
        other => format!("({})", one_line(other)),
    }
}

/// Reactions as `👍 2 · 🎉 1` (empty when none).
pub fn reactions_text(reactions: &[Reaction]) -> String {
    reactions.iter().map(|r| format!("{} {}", one_line(&r.emoji), r.count)).collect::<Vec<_>>().join(" · ")
}

/// The compact quote above a reply: `↳ alice: first words` (or the tombstone).
pub fn quote_text(q: &Quote) -> String {
    match (&q.sender, q.deleted) {
        (_, true) => format!("↳ #{} (deleted message)", q.seq),
        (Some(u), false) => format!("↳ #{} {}: {}", q.seq, one_line(u.shown_name()), one_line(&q.excerpt)),
        (None, false) => format!("↳ #{} {}", q.seq, one_line(&q.excerpt)),
    }
}

/// Lines under a message: its reactions, then its reply count.
fn footer_lines(m: &Message, me: Option<&User>, indent: usize, width: usize, out: &mut Vec<Line<'static>>) {
    let dim = Style::new().add_modifier(Modifier::DIM);
    if !m.reactions.is_empty() {
        let mut spans = vec![Span::raw(" ".repeat(indent))];
        for (i, r) in m.reactions.iter().enumerate() {
            if i > 0 {
                spans.push(Span::styled(" · ", dim));
            }
            let mine = me.is_some_and(|u| r.users.contains(&u.id));
            let style =
                if mine { Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED) } else { Style::new() };
            spans.push(Span::styled(format!("{} {}", one_line(&r.emoji), r.count), style));
        }
        out.push(Line::from(spans));
    }
    if m.reply_count > 0 {
        let n = m.reply_count;
        let text = format!("{n} repl{} (/thread {})", if n == 1 { "y" } else { "ies" }, m.seq);
        for l in wrap(&text, width.saturating_sub(indent), width.saturating_sub(indent)) {
            out.push(Line::from(vec![Span::raw(" ".repeat(indent)), Span::styled(l, dim)]));
        }
    }
}

fn message_lines(m: &Message, me: Option<&User>, width: usize, out: &mut Vec<Line<'static>>) {
    let time = format!("{} #{} ", clock(m.ts), m.seq);
    let name = m.sender.as_ref().map(|u| one_line(u.shown_name())).unwrap_or_else(|| "someone".to_owned());
    let dim = Style::new().add_modifier(Modifier::DIM);
    if m.is_system() {
        let text = format!("{time}— {name} {}", system_text(m));
        for l in wrap(&text, width, width) {
            out.push(Line::styled(l, dim));
        }
        return;
    }
    let sender_style = name_style(m.sender.as_ref().map_or(0, |u| u.id));
    if m.deleted {
        let style = dim.add_modifier(Modifier::ITALIC);
        text_lines(&time, &name, sender_style, "(message deleted)", style, width, out);
        return;
    }
    let indent = width_of(&time);
    if let Some(q) = &m.quote {
        for l in wrap(&quote_text(q), width.saturating_sub(indent), width.saturating_sub(indent)).into_iter().take(1) {
            out.push(Line::from(vec![
                Span::raw(" ".repeat(indent)),
                Span::styled(l, dim.add_modifier(Modifier::ITALIC)),
            ]));
        }
    }
    let mut body = sanitize(&m.body);
    if m.edited_at.is_some() {
        body.push_str(" (edited)");
    }
    let body_style = match me {
        Some(me) if mentions(m, me) => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        _ => Style::new(),
    };
    if let Some(action) = body.strip_prefix("/me ") {
        let text = format!("* {name} {action}");
        for (i, l) in wrap(&text, width.saturating_sub(indent), width.saturating_sub(indent)).into_iter().enumerate() {
            let lead = if i == 0 { Span::styled(time.clone(), dim) } else { Span::raw(" ".repeat(indent)) };
            out.push(Line::from(vec![lead, Span::styled(l, body_style.add_modifier(Modifier::ITALIC))]));
        }
        footer_lines(m, me, indent, width, out);
        return;
    }
    let (mut text, styles) = crate::markup::render(&m.body);
    text = sanitize(&text);
    if m.edited_at.is_some() {
        text.push_str(" (edited)");
    }
    styled_text_lines(&time, &name, sender_style, &text, &styles, body_style, width, out);
    file_lines(m, indent, width, out);
    footer_lines(m, me, indent, width, out);
}

/// One line per shared file: name, size and the download path (relative to the server's address).
fn file_lines(m: &Message, indent: usize, width: usize, out: &mut Vec<Line<'static>>) {
    for f in &m.files {
        let text = format!("[file] {} ({}) {}", one_line(&f.name), human_size(f.size), one_line(&f.url));
        for l in wrap(&text, width.saturating_sub(indent), width.saturating_sub(indent)) {
            out.push(Line::from(vec![Span::raw(" ".repeat(indent)), Span::styled(l, Style::new().fg(Color::Cyan))]));
        }
    }
}

/// Bytes for people: `512 B`, `2.0 KiB`, `3.4 MiB`.
pub fn human_size(n: i64) -> String {
    let f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if f < 1024.0 * 1024.0 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{:.1} MiB", f / (1024.0 * 1024.0))
    }
}

/// Like [`text_lines`], each character of `body` adding `styles[i]` (from the Markdown) to `base`.
#[allow(clippy::too_many_arguments)]
fn styled_text_lines(
    time: &str,
    name: &str,
    name_style: Style,
    body: &str,
    styles: &[Style],
    base: Style,
    width: usize,
    out: &mut Vec<Line<'static>>,
) {
    let head = width_of(time) + width_of(name) + 2;
    let indent = width_of(time);
    let chars: Vec<char> = body.chars().collect();
    let mut at = 0usize;
    for (i, part) in wrap(body, width.saturating_sub(head), width.saturating_sub(indent)).into_iter().enumerate() {
        let mut spans = if i == 0 {
            vec![
                Span::styled(time.to_owned(), Style::new().add_modifier(Modifier::DIM)),
                Span::styled(name.to_owned(), name_style),
                Span::raw(": "),
            ]
        } else {
            vec![Span::raw(" ".repeat(indent))]
        };
        // The wrapper only drops white space and line breaks: find each character of the line in the
        // body to know its style.
        let mut run = String::new();
        let mut run_style = base;
        for c in part.chars() {
            while at < chars.len() && chars[at] != c {
                at += 1;
            }
            let style = base.patch(styles.get(at).copied().unwrap_or_default());
            at += 1;
            if style != run_style && !run.is_empty() {
                spans.push(Span::styled(std::mem::take(&mut run), run_style));
            }
            run_style = style;
            run.push(c);
        }
        if !run.is_empty() {
            spans.push(Span::styled(run, run_style));
        }
        out.push(Line::from(spans));
    }
}

fn text_lines(
    time: &str,
    name: &str,
    name_style: Style,
    body: &str,
    body_style: Style,
    width: usize,
    out: &mut Vec<Line<'static>>,
) {
    let head = width_of(time) + width_of(name) + 2;
    let indent = width_of(time);
    let wrapped = wrap(body, width.saturating_sub(head), width.saturating_sub(indent));
    for (i, part) in wrapped.into_iter().enumerate() {
        if i == 0 {
            out.push(Line::from(vec![
                Span::styled(time.to_owned(), Style::new().add_modifier(Modifier::DIM)),
                Span::styled(name.to_owned(), name_style),
                Span::raw(": "),
                Span::styled(part, body_style),
            ]));
        } else {
            out.push(Line::from(vec![Span::raw(" ".repeat(indent)), Span::styled(part, body_style)]));
        }
    }
}

/// Every line of a room's message pane at `width` columns: held messages, then the user's unsent ones.
pub fn room_lines(me: Option<&User>, pending: &[PendingSend], room: &RoomView, width: u16) -> Vec<Line<'static>> {
    let width = width.max(10) as usize;
    let mut out = Vec::new();
    for m in room.messages.values() {
        message_lines(m, me, width, &mut out);
    }
    let my_name = me.map(|u| one_line(u.shown_name())).unwrap_or_default();
    let style = Style::new().add_modifier(Modifier::DIM | Modifier::ITALIC);
    for p in pending.iter().filter(|p| p.room == room.room.id) {
        text_lines("--:-- ", &my_name, style, &format!("{} (sending…)", sanitize(&p.body)), style, width, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_words_and_breaks_long_ones() {
        assert_eq!(wrap("aaa bbb ccc", 7, 7), vec!["aaa bbb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4, 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("one\ntwo", 10, 10), vec!["one", "two"]);
        assert_eq!(wrap("", 10, 10), vec![""]);
        assert_eq!(clock(0), "00:00");
        assert_eq!(clock(1_763_812_345_678), "11:52");
    }

    #[test]
    fn newlines_survive_sanitising_and_escapes_do_not() {
        assert_eq!(sanitize("a\x1b[31mb\tc"), "a\u{fffd}[31mb c");
        assert_eq!(sanitize("line one\r\nline two\nthree"), "line one\nline two\nthree");
        assert_eq!(one_line("a\nb"), "a b");
    }

    #[test]
    fn shared_files_get_a_line_each_with_size_and_download_path() {
        let m = Message {
            room: 1,
            seq: 1,
            kind: "text".into(),
            body: "the report".into(),
            ts: 0,
            files: vec![crate::proto::FileRef {
                id: "f1".into(),
                name: "report.pdf".into(),
                size: 2048,
                url: "/api/v1/files/f1/content".into(),
            }],
            ..Message::default()
        };
        let mut out = Vec::new();
        message_lines(&m, None, 100, &mut out);
        let text: Vec<String> = out.iter().map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert_eq!(text[1].trim_start(), "[file] report.pdf (2.0 KiB) /api/v1/files/f1/content", "{text:?}");
    }

    #[test]
    fn mentions_are_found_by_id_or_name() {
        let me = User { id: 1, username: "alice".into(), display_name: "Alice".into() };
        let mut m = Message {
            room: 1,
            seq: 1,
            kind: "text".into(),
            sender: None,
            body: "hey @Alice, look".into(),
            client_id: None,
            ts: 0,
            target: None,
            mentions: vec![],
            edited_at: None,
            deleted: false,
            files: vec![],
            ..Message::default()
        };
        assert!(mentions(&m, &me));
        m.body = "alice without at, @alicexyz".into();
        assert!(!mentions(&m, &me));
        m.mentions = vec![1];
        assert!(mentions(&m, &me));
    }
}
