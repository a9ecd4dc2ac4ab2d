//! Drawing [`ChatState`] with ratatui. Pure: the same state always draws the same screen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph};
use unicode_width::UnicodeWidthChar;

use crate::proto::Message;
use crate::state::{ChatState, Connection, RoomView};

const ROOMS_WIDTH: u16 = 22;
const NAME_COLORS: [Color; 6] =
    [Color::Cyan, Color::Green, Color::Magenta, Color::Yellow, Color::Blue, Color::LightRed];

/// `HH:MM` (UTC) of a millisecond timestamp.
pub fn clock(ts_ms: i64) -> String {
    let mins = ts_ms.div_euclid(60_000).rem_euclid(24 * 60);
    format!("{:02}:{:02}", mins / 60, mins % 60)
}

/// Text safe to put on a terminal: control characters become spaces or `�`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

fn width_of(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// Splits `text` into lines: the first at most `first` columns wide, the others at most `rest`, breaking
/// at spaces where possible.
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
                w = 0;
                line.push_str(word);
                w += ww;
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

fn message_lines(m: &Message, width: usize, out: &mut Vec<Line<'static>>) {
    let time = format!("{} ", clock(m.ts));
    let name = m.sender.as_ref().map(|u| sanitize(u.shown_name())).unwrap_or_else(|| "someone".to_owned());
    if m.is_system() {
        let what = match m.kind.as_str() {
            "join" => "joined".to_owned(),
            "leave" => "left".to_owned(),
            "create" => "created the room".to_owned(),
            other => format!("({})", sanitize(other)),
        };
        let text = format!("{time}— {name} {what}");
        let dim = Style::new().add_modifier(Modifier::DIM);
        for l in wrap(&text, width, width) {
            out.push(Line::styled(l, dim));
        }
        return;
    }
    text_lines(
        &time,
        &name,
        name_style(m.sender.as_ref().map_or(0, |u| u.id)),
        &sanitize(&m.body),
        Style::new(),
        width,
        out,
    );
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
pub fn room_lines(state: &ChatState, room: &RoomView, width: u16) -> Vec<Line<'static>> {
    let width = width.max(10) as usize;
    let mut out = Vec::new();
    for m in room.messages.values() {
        let mut lines = Vec::new();
        message_lines(m, width, &mut lines);
        out.extend(lines);
    }
    let me = state.me.as_ref().map(|u| sanitize(u.shown_name())).unwrap_or_default();
    let pending = Style::new().add_modifier(Modifier::DIM | Modifier::ITALIC);
    for p in state.pending.iter().filter(|p| p.room == room.room.id) {
        text_lines("--:-- ", &me, pending, &format!("{} (sending…)", sanitize(&p.body)), pending, width, &mut out);
    }
    out
}

/// Draws the whole screen, and records the message pane's size in `state` for scrolling.
pub fn render(frame: &mut Frame, state: &mut ChatState) {
    let [main, input_area, status_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(3), Constraint::Length(1)]).areas(frame.area());
    let [rooms_area, pane_area] =
        Layout::horizontal([Constraint::Length(ROOMS_WIDTH), Constraint::Min(10)]).areas(main);

    draw_rooms(frame, state, rooms_area);
    draw_messages(frame, state, pane_area);
    draw_input(frame, state, input_area);
    draw_status(frame, state, status_area);
}

fn draw_rooms(frame: &mut Frame, state: &ChatState, area: Rect) {
    let items: Vec<ListItem> = state
        .rooms
        .iter()
        .map(|r| {
            let mark = if r.room.visibility == "private" { "~" } else { "#" };
            let mut spans = vec![Span::raw(format!("{mark}{}", sanitize(&r.room.name)))];
            if r.unread > 0 {
                spans.push(Span::styled(format!(" ({})", r.unread), Style::new().fg(Color::Yellow)));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let list = List::new(items)
        .block(Block::new().borders(Borders::ALL).title(" Rooms "))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD))
        .highlight_symbol(">");
    let mut ls = ListState::default();
    if !state.rooms.is_empty() {
        ls.select(Some(state.current));
    }
    frame.render_stateful_widget(list, area, &mut ls);
}

fn draw_messages(frame: &mut Frame, state: &mut ChatState, area: Rect) {
    let inner_w = area.width.saturating_sub(2);
    let inner_h = area.height.saturating_sub(2);
    state.pane_width = inner_w;
    state.pane_height = inner_h;
    let Some(room) = state.current_room() else {
        let block = Block::new().borders(Borders::ALL).title(" no room ");
        let hint = Paragraph::new(vec![
            Line::raw("You are in no room yet."),
            Line::raw("/join NAME joins one, /create NAME [private] makes one."),
        ])
        .block(block);
        frame.render_widget(hint, area);
        return;
    };
    let lines = room_lines(state, room, inner_w);
    let height = inner_h as usize;
    let max = lines.len().saturating_sub(height);
    let scroll = room.scroll.min(max);
    let end = lines.len() - scroll;
    let start = end.saturating_sub(height);
    let mut title =
        vec![Span::styled(format!(" #{} ", sanitize(&room.room.name)), Style::new().add_modifier(Modifier::BOLD))];
    if scroll > 0 {
        title.push(Span::styled(format!("· ↑{scroll} "), Style::new().fg(Color::Yellow)));
    }
    if room.loading_older {
        title.push(Span::styled("· loading older… ", Style::new().fg(Color::Yellow)));
    } else if start == 0 && lines.len() > height && !room.has_older() {
        title.push(Span::styled("· start of history ", Style::new().add_modifier(Modifier::DIM)));
    }
    title.push(Span::raw(format!("· {} · {} members ", room.room.visibility, room.room.member_count)));
    let visible: Vec<Line> = lines[start..end].to_vec();
    let para = Paragraph::new(visible).block(Block::new().borders(Borders::ALL).title(Line::from(title)));
    frame.render_widget(para, area);
    if let Some(r) = state.rooms.get_mut(state.current) {
        r.scroll = scroll;
    }
}

fn draw_input(frame: &mut Frame, state: &ChatState, area: Rect) {
    let who = state.me.as_ref().map(|u| sanitize(u.shown_name())).unwrap_or_default();
    let target = state.current_room().map(|r| format!(" to #{}", r.room.name)).unwrap_or_default();
    let block = Block::new().borders(Borders::ALL).title(format!(" {who}{target} "));
    let inner_w = area.width.saturating_sub(2).max(1) as usize;
    let chars: Vec<char> = state.input.chars().collect();
    let cursor = state.cursor.min(chars.len());
    // Scroll the input horizontally so the cursor stays visible.
    let mut start = 0;
    while width_of(&chars[start..cursor].iter().collect::<String>()) >= inner_w {
        start += 1;
    }
    let shown: String = sanitize(&chars[start..].iter().collect::<String>());
    frame.render_widget(Paragraph::new(shown).block(block), area);
    let x = width_of(&chars[start..cursor].iter().collect::<String>()) as u16;
    frame.set_cursor_position((area.x + 1 + x, area.y + 1));
}

fn draw_status(frame: &mut Frame, state: &ChatState, area: Rect) {
    let (mark, style) = match state.connection {
        Connection::Online => ("● online", Style::new().fg(Color::Green)),
        Connection::Connecting => ("◌ connecting…", Style::new().fg(Color::Yellow)),
        Connection::Offline => ("○ offline", Style::new().fg(Color::Red)),
    };
    let mut spans = vec![Span::styled(mark, style), Span::raw(" ")];
    if !state.pending.is_empty() {
        spans.push(Span::styled(format!("[{} unsent] ", state.pending.len()), Style::new().fg(Color::Yellow)));
    }
    match &state.status {
        Some(s) if s.error => spans.push(Span::styled(sanitize(&s.text), Style::new().fg(Color::Red))),
        Some(s) => spans.push(Span::raw(sanitize(&s.text))),
        None => spans.push(Span::styled("/help for commands", Style::new().add_modifier(Modifier::DIM))),
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Room, ServerFrame, User};
    use crate::state::ChatState;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(state: &mut ChatState, w: u16, h: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|f| render(f, state)).unwrap();
        let buf = terminal.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..h {
            for x in 0..w {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn user(id: i64, name: &str) -> User {
        User { id, username: name.into(), display_name: name.into() }
    }

    fn message(seq: i64, kind: &str, from: &User, body: &str) -> Message {
        Message {
            room: 1,
            seq,
            kind: kind.into(),
            sender: Some(from.clone()),
            body: body.into(),
            client_id: None,
            ts: 1_763_812_345_678 + seq * 60_000,
        }
    }

    fn sample() -> ChatState {
        let (alice, bob) = (user(1, "alice"), user(2, "bob"));
        let mut s = ChatState::new("t", None);
        let room = |id, name: &str| Room {
            id,
            name: name.into(),
            visibility: "public".into(),
            created_by: 1,
            last_seq: 0,
            member_count: 2,
        };
        s.apply(ServerFrame::Hello { v: 1, user: alice.clone(), rooms: vec![room(1, "general"), room(2, "random")] });
        s.apply(ServerFrame::History {
            room: 1,
            messages: vec![
                message(1, "create", &alice, ""),
                message(2, "join", &bob, ""),
                message(3, "text", &alice, "hi bob"),
                message(4, "text", &bob, "hello alice, a long line that has to wrap around in a narrow pane"),
            ],
            has_more: false,
            req: None,
        });
        s
    }

    #[test]
    fn renders_rooms_messages_input_and_status() {
        let mut s = sample();
        for c in "typing".chars() {
            s.on_key(crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char(c),
                crossterm::event::KeyModifiers::NONE,
            ));
        }
        let text = screen(&mut s, 100, 14);
        println!("{text}");
        assert!(text.contains(">#general"), "{text}");
        assert!(text.contains("#random"), "{text}");
        assert!(text.contains("— alice created the room"), "{text}");
        assert!(text.contains("— bob joined"), "{text}");
        assert!(text.contains("alice: hi bob"), "{text}");
        assert!(text.contains("bob: hello alice, a long line"), "{text}");
        assert!(text.contains("typing"), "{text}");
        assert!(text.contains("● online"), "{text}");
        assert_eq!(s.pane_height, 8);
        assert_eq!(s.pane_width, 76);
    }

    #[test]
    fn system_lines_are_dim_and_pending_sends_are_shown() {
        let mut s = sample();
        s.submit("on its way");
        let text = screen(&mut s, 80, 14);
        assert!(text.contains("alice: on its way (sending…)"), "{text}");
        assert!(text.contains("[1 unsent]"), "{text}");
        let lines = room_lines(&s, s.current_room().unwrap(), 60);
        assert!(lines[0].style.add_modifier.contains(Modifier::DIM));
        assert!(!lines[2].style.add_modifier.contains(Modifier::DIM));
    }

    #[test]
    fn shows_the_bottom_and_scrolls_up() {
        let mut s = sample();
        let text = screen(&mut s, 60, 9); // 3 lines of pane
        assert!(text.contains("narrow pane"), "the newest line is at the bottom: {text}");
        assert!(!text.contains("created the room"), "{text}");
        s.on_key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::PageUp,
            crossterm::event::KeyModifiers::NONE,
        ));
        s.on_key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::PageUp,
            crossterm::event::KeyModifiers::NONE,
        ));
        let text = screen(&mut s, 60, 9);
        assert!(text.contains("created the room"), "{text}");
        assert!(text.contains("start of history"), "{text}");
    }

    #[test]
    fn wraps_words_and_breaks_long_ones() {
        assert_eq!(wrap("aaa bbb ccc", 7, 7), vec!["aaa bbb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4, 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("one\ntwo", 10, 10), vec!["one", "two"]);
        assert_eq!(wrap("", 10, 10), vec![""]);
        assert_eq!(clock(0), "00:00");
        assert_eq!(clock(1_763_812_345_678), "11:52");
        assert_eq!(sanitize("a\x1b[31mb\tc"), "a\u{fffd}[31mb c");
    }
}
