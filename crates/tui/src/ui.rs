//! Drawing [`ChatState`] with ratatui. The same state always draws the same screen (typing indicators
//! aside, which expire with the clock).
//!
//! Wide terminals show the room list beside the messages; narrow ones (under [`NARROW`] columns) give
//! the messages the whole width and show the room list over them on F2 / Ctrl-R.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph};

use crate::layout::{one_line, room_lines};
use crate::state::{ChatState, Connection};

const ROOMS_WIDTH: u16 = 22;
/// Below this width the room list is hidden behind a key.
pub const NARROW: u16 = 60;
/// The composer grows with its lines up to this many.
const COMPOSER_LINES: usize = 5;

/// Draws the whole screen, and records the message pane's size in `state` for scrolling.
pub fn render(frame: &mut Frame, state: &mut ChatState) {
    let composer_h = state.composer.lines().len().clamp(1, COMPOSER_LINES) as u16 + 2;
    let [main, input_area, status_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(composer_h), Constraint::Length(1)])
            .areas(frame.area());
    let narrow = main.width < NARROW;
    let pane_area = if narrow {
        main
    } else {
        let [rooms_area, pane_area] =
            Layout::horizontal([Constraint::Length(ROOMS_WIDTH), Constraint::Min(10)]).areas(main);
        draw_rooms(frame, state, rooms_area);
        pane_area
    };
    draw_messages(frame, state, pane_area, narrow);
    if let Some(panel) = &state.panel {
        let inner_h = pane_area.height.saturating_sub(2) as usize;
        let lines: Vec<Line> =
            panel.lines.iter().skip(panel.scroll).take(inner_h).map(|l| Line::raw(one_line(l))).collect();
        frame.render_widget(Clear, pane_area);
        let block = Block::new().borders(Borders::ALL).title(format!(" {} ", one_line(&panel.title)));
        frame.render_widget(Paragraph::new(lines).block(block), pane_area);
    }
    if state.show_rooms {
        frame.render_widget(Clear, main);
        draw_rooms(frame, state, main);
    }
    draw_input(frame, state, input_area);
    draw_status(frame, state, status_area);
}

fn draw_rooms(frame: &mut Frame, state: &ChatState, area: Rect) {
    let items: Vec<ListItem> = state
        .rooms
        .iter()
        .map(|r| {
            let mut spans = vec![Span::raw(one_line(&r.room.label()))];
            if r.mentions > 0 {
                spans.push(Span::styled(format!(" @{}", r.mentions), Style::new().fg(Color::LightRed)));
            }
            if r.unread > 0 {
                spans.push(Span::styled(format!(" ({})", r.unread), Style::new().fg(Color::Yellow)));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let title = if state.show_rooms { " Rooms (↑/↓, Enter) " } else { " Rooms " };
    let list = List::new(items)
        .block(Block::new().borders(Borders::ALL).title(title))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD))
        .highlight_symbol(">");
    let mut ls = ListState::default();
    if !state.rooms.is_empty() {
        ls.select(Some(state.current));
    }
    frame.render_stateful_widget(list, area, &mut ls);
}

fn draw_messages(frame: &mut Frame, state: &mut ChatState, area: Rect, narrow: bool) {
    let inner_w = area.width.saturating_sub(2);
    let inner_h = area.height.saturating_sub(2);
    state.pane_width = inner_w;
    state.pane_height = inner_h;
    let Some(room) = state.current_room() else {
        let block = Block::new().borders(Borders::ALL).title(" no room ");
        let hint = Paragraph::new(vec![
            Line::raw("You are in no room yet."),
            Line::raw("/join NAME joins one, /create NAME [private] makes one, /msg USER starts a conversation."),
        ])
        .wrap(ratatui::widgets::Wrap { trim: true })
        .block(block);
        frame.render_widget(hint, area);
        return;
    };
    let mut lines = room_lines(state.me.as_ref(), &state.pending, room, inner_w);
    let typing = room.typing_names(Instant::now());
    if !typing.is_empty() {
        let who = typing.iter().map(|n| one_line(n)).collect::<Vec<_>>().join(", ");
        let verb = if typing.len() == 1 { "is" } else { "are" };
        lines.push(Line::styled(format!("{who} {verb} typing…"), Style::new().add_modifier(Modifier::DIM)));
    }
    let height = inner_h as usize;
    let max = lines.len().saturating_sub(height);
    let scroll = room.scroll.min(max);
    let end = lines.len() - scroll;
    let start = end.saturating_sub(height);
    let mut title =
        vec![Span::styled(format!(" {} ", one_line(&room.room.label())), Style::new().add_modifier(Modifier::BOLD))];
    if scroll > 0 {
        title.push(Span::styled(format!("· ↑{scroll} "), Style::new().fg(Color::Yellow)));
    }
    if room.loading_older {
        title.push(Span::styled("· loading older… ", Style::new().fg(Color::Yellow)));
    } else if start == 0 && lines.len() > height && !room.has_older() {
        title.push(Span::styled("· start of history ", Style::new().add_modifier(Modifier::DIM)));
    }
    if narrow {
        let others: usize = state.rooms.iter().filter(|r| r.room.id != room.room.id).map(|r| r.unread).sum();
        if others > 0 {
            title.push(Span::styled(format!("· F2 rooms ({others}) "), Style::new().fg(Color::Yellow)));
        } else {
            title.push(Span::raw("· F2 rooms "));
        }
    } else if room.room.is_direct() {
        title.push(Span::raw("· direct conversation "));
    } else {
        title.push(Span::raw(format!("· {} · {} members ", room.room.visibility, room.room.member_count)));
        if !room.room.topic.is_empty() {
            title.push(Span::styled(
                format!("· {} ", one_line(&room.room.topic)),
                Style::new().add_modifier(Modifier::DIM),
            ));
        }
    }
    let visible: Vec<Line> = lines[start..end].to_vec();
    let para = Paragraph::new(visible).block(Block::new().borders(Borders::ALL).title(Line::from(title)));
    frame.render_widget(para, area);
    if let Some(r) = state.rooms.get_mut(state.current) {
        r.scroll = scroll;
    }
}

fn draw_input(frame: &mut Frame, state: &mut ChatState, area: Rect) {
    let who = state.me.as_ref().map(|u| one_line(u.shown_name())).unwrap_or_default();
    let target = state.current_room().map(|r| format!(" to {}", one_line(&r.room.label()))).unwrap_or_default();
    let hint = if state.composer.lines().len() > 1 { " · Enter sends, Alt-Enter new line" } else { "" };
    state.composer.set_block(Block::new().borders(Borders::ALL).title(format!(" {who}{target}{hint} ")));
    frame.render_widget(&state.composer, area);
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
        Some(s) if s.error => spans.push(Span::styled(one_line(&s.text), Style::new().fg(Color::Red))),
        Some(s) => spans.push(Span::raw(one_line(&s.text))),
        None => spans.push(Span::styled("/help for commands", Style::new().add_modifier(Modifier::DIM))),
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Message, Room, ServerFrame, User};
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
            ..Message::default()
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
            kind: "group".into(),
            ..Room::default()
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
        let lines = room_lines(s.me.as_ref(), &s.pending, s.current_room().unwrap(), 60);
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

    fn type_text(s: &mut ChatState, text: &str) {
        for c in text.chars() {
            s.on_key(crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char(c),
                crossterm::event::KeyModifiers::NONE,
            ));
        }
    }

    #[test]
    fn newlines_edits_deletions_mentions_and_actions_read_right() {
        let mut s = sample();
        let bob = user(2, "bob");
        let mut multi = message(5, "text", &bob, "first line\nsecond line");
        multi.client_id = Some("x".into());
        s.apply(ServerFrame::Message { message: multi });
        s.apply(ServerFrame::Message { message: message(6, "text", &bob, "/me waves at @alice") });
        let mut edited = message(3, "text", &user(1, "alice"), "hi bob, edited");
        edited.edited_at = Some(1);
        s.apply(ServerFrame::MessageUpdated { message: edited });
        let mut gone = message(4, "text", &bob, "");
        gone.deleted = true;
        s.apply(ServerFrame::MessageUpdated { message: gone });
        let text = screen(&mut s, 100, 20);
        assert!(text.contains("bob: first line"), "{text}");
        assert!(text.contains("      second line"), "the next line is indented under the text: {text}");
        assert!(!text.contains('\u{fffd}'), "no replacement character for a newline: {text}");
        assert!(text.contains("alice: hi bob, edited (edited)"), "{text}");
        assert!(text.contains("bob: (message deleted)"), "{text}");
        assert!(!text.contains("a long line that has to wrap"), "the deleted text is gone: {text}");
        assert!(text.contains("* bob waves at @alice"), "{text}");
        let lines = room_lines(s.me.as_ref(), &s.pending, s.current_room().unwrap(), 90);
        let action = lines.iter().find(|l| l.to_string().contains("waves")).unwrap();
        assert_eq!(action.spans[1].style.fg, Some(Color::Yellow), "a mention of the user stands out");
    }

    #[test]
    fn a_direct_conversation_is_named_by_its_peer_and_typing_shows() {
        let mut s = ChatState::new("t", None);
        let bob = user(2, "bob");
        let dm = Room {
            id: 9,
            name: "dm-1-2".into(),
            kind: "direct".into(),
            visibility: "private".into(),
            peer: Some(bob.clone()),
            ..Room::default()
        };
        s.apply(ServerFrame::Hello { v: 1, user: user(1, "alice"), rooms: vec![dm] });
        s.apply(ServerFrame::Typing { room: 9, user: bob, expires_ms: 5000 });
        let text = screen(&mut s, 80, 12);
        assert!(text.contains(">@bob"), "{text}");
        assert!(text.contains(" @bob · direct conversation"), "{text}");
        assert!(!text.contains("dm-1-2"), "{text}");
        assert!(text.contains("bob is typing…"), "{text}");
    }

    #[test]
    fn a_narrow_terminal_hides_the_room_list_behind_f2() {
        let mut s = sample();
        let text = screen(&mut s, 44, 14);
        assert!(!text.contains("Rooms"), "{text}");
        assert!(text.contains("#general · F2 rooms"), "{text}");
        assert!(text.contains("alice: hi bob"), "{text}");
        assert_eq!(s.pane_width, 42, "the messages get the whole width");
        s.on_key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::F(2),
            crossterm::event::KeyModifiers::NONE,
        ));
        let text = screen(&mut s, 44, 14);
        assert!(text.contains("Rooms"), "{text}");
        assert!(text.contains(">#general"), "{text}");
        assert!(text.contains("#random"), "{text}");
        s.on_key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Down,
            crossterm::event::KeyModifiers::NONE,
        ));
        s.on_key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Enter,
            crossterm::event::KeyModifiers::NONE,
        ));
        let text = screen(&mut s, 44, 14);
        assert!(!text.contains("Rooms"), "{text}");
        assert!(text.contains("#random · F2 rooms"), "{text}");
    }

    #[test]
    fn the_composer_grows_with_its_lines_and_help_is_a_scrollable_panel() {
        let mut s = sample();
        type_text(&mut s, "one");
        s.on_key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Enter,
            crossterm::event::KeyModifiers::ALT,
        ));
        type_text(&mut s, "two");
        let text = screen(&mut s, 80, 16);
        assert!(text.contains("│one"), "{text}");
        assert!(text.contains("│two"), "{text}");
        assert!(text.contains("Alt-Enter new line"), "{text}");
        s.composer = ratatui_textarea::TextArea::default();
        s.submit("/help");
        let text = screen(&mut s, 80, 16);
        assert!(text.contains("help (PgUp/PgDn scroll, Esc closes)"), "{text}");
        assert!(text.contains("/join NAME"), "{text}");
        assert!(!text.contains("Ctrl-C quit"), "the end is below: {text}");
        // The help is long (files' /upload, search's /search…): page down until its end shows.
        for _ in 0..4 {
            s.on_key(crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::PageDown,
                crossterm::event::KeyModifiers::NONE,
            ));
        }
        let text = screen(&mut s, 80, 16);
        assert!(text.contains("Ctrl-C quit"), "{text}");
        s.on_key(crossterm::event::KeyEvent::new(crossterm::event::KeyCode::Esc, crossterm::event::KeyModifiers::NONE));
        assert!(s.panel.is_none());
    }
}
