//! State-machine tests for conversations: replies, reactions, threads, pins, notification levels,
//! the bell, and how they are laid out.
use super::tests::{hello, msg, room, sends, user};
use super::*;
use crate::proto::{Message, Pin, Quote, Reaction};

fn lines_text(s: &ChatState, room: i64) -> Vec<String> {
    let view = s.room(room).unwrap();
    crate::layout::room_lines(s.me.as_ref(), &s.pending, view, 80)
        .iter()
        .map(|l| l.spans.iter().map(|sp| sp.content.as_ref()).collect::<String>())
        .collect()
}

fn ready() -> ChatState {
    let mut s = ChatState::new("t", None);
    s.apply(hello(vec![room(1, "general", 0)]));
    s
}

#[test]
fn reply_sends_reply_to_and_shows_the_quote() {
    let mut s = ready();
    let bob = user(2, "bob");
    s.apply(ServerFrame::Message { message: msg(1, 1, &bob, "which database?") });
    let a = s.submit("/reply 1 PostgreSQL");
    assert_eq!(sends(&a).len(), 1);
    match &a[0] {
        Action::Send(ClientFrame::Send { body, reply_to, .. }) => {
            assert_eq!((body.as_str(), *reply_to), ("PostgreSQL", Some(1)))
        }
        other => panic!("{other:?}"),
    }
    assert!(
        ClientFrame::Send { room: RoomRef::Id(1), body: "x".into(), client_id: None, reply_to: Some(1), req: None }
            .encode()
            .contains(r#""reply_to":1"#)
    );
    // The stored reply carries its quote; the root its reply count.
    let mut reply = msg(1, 2, &user(1, "alice"), "PostgreSQL");
    reply.reply_to = Some(1);
    reply.thread = Some(1);
    reply.quote = Some(Quote { seq: 1, sender: Some(bob.clone()), excerpt: "which database?".into(), deleted: false });
    s.apply(ServerFrame::Message { message: reply });
    s.apply(ServerFrame::ThreadUpdated { room: 1, seq: 1, reply_count: 1 });
    let text = lines_text(&s, 1);
    assert!(text.iter().any(|l| l.contains("↳ #1 bob: which database?")), "{text:?}");
    assert!(text.iter().any(|l| l.contains("1 reply (/thread 1)")), "{text:?}");
    // A deleted parent is a tombstone in the quote.
    let mut gone = s.room(1).unwrap().messages[&2].clone();
    gone.quote = Some(Quote { seq: 1, sender: None, excerpt: String::new(), deleted: true });
    s.apply(ServerFrame::MessageUpdated { message: gone });
    assert!(lines_text(&s, 1).iter().any(|l| l.contains("↳ #1 (deleted message)")));
    assert!(s.submit("/reply 1").is_empty(), "no text: usage");
}

#[test]
fn reactions_are_requested_and_aggregated_under_the_message() {
    let mut s = ready();
    s.apply(ServerFrame::Message { message: msg(1, 1, &user(2, "bob"), "ship it") });
    let a = s.submit("/react 1 👍");
    assert!(matches!(&a[..], [Action::Send(ClientFrame::React { seq: 1, emoji, .. })] if emoji == "👍"), "{a:?}");
    let a = s.submit("/unreact 1 👍");
    assert!(matches!(&a[..], [Action::Send(ClientFrame::Unreact { seq: 1, .. })]), "{a:?}");
    let reactions = vec![
        Reaction { emoji: "👍".into(), count: 2, users: vec![1, 2] },
        Reaction { emoji: "🎉".into(), count: 1, users: vec![2] },
    ];
    s.apply(ServerFrame::Reactions { room: 1, seq: 1, reactions, req: None });
    assert_eq!(s.room(1).unwrap().messages[&1].reactions.len(), 2);
    assert!(lines_text(&s, 1).iter().any(|l| l.contains("👍 2 · 🎉 1")));
    // All taken back: the line goes, and the answer to our own request says so.
    s.apply(ServerFrame::Reactions { room: 1, seq: 1, reactions: vec![], req: Some("r9".into()) });
    assert!(!lines_text(&s, 1).iter().any(|l| l.contains("👍")));
    assert_eq!(s.status.as_ref().map(|st| st.text.as_str()), Some("no reactions left on #1"));
}

#[test]
fn formatting_renders_emphasis_and_code_with_styles_and_shows_each_message_number() {
    use ratatui::style::{Color, Modifier};
    let mut s = ready();
    s.apply(ServerFrame::Message { message: msg(1, 7, &user(2, "bob"), "**bold** and `code` <script>x</script>") });
    assert_eq!(lines_text(&s, 1), vec!["11:52 #7 bob: bold and code <script>x</script>".to_owned()]);
    let view = s.room(1).unwrap();
    let lines = crate::layout::room_lines(s.me.as_ref(), &s.pending, view, 80);
    let span =
        |t: &str| lines[0].spans.iter().find(|sp| sp.content == t).cloned().unwrap_or_else(|| panic!("{t}: {lines:?}"));
    assert!(span("bold").style.add_modifier.contains(Modifier::BOLD));
    assert_eq!(span("code").style.fg, Some(Color::Cyan));
    assert!(!span(" and ").style.add_modifier.contains(Modifier::BOLD));
}

#[test]
fn threads_pins_and_notify_answer_into_panels_and_the_status_line() {
    let mut s = ready();
    let bob = user(2, "bob");
    assert!(matches!(&s.submit("/thread 3")[..], [Action::Send(ClientFrame::Thread { seq: 3, .. })]));
    let mut r = msg(1, 4, &bob, "a reply");
    r.reply_to = Some(3);
    s.apply(ServerFrame::Thread {
        room: 1,
        root: Box::new(msg(1, 3, &bob, "root")),
        messages: vec![r],
        has_more: false,
        req: None,
    });
    let p = s.panel.clone().unwrap();
    assert!(p.title.starts_with("thread of #3 (1 reply"), "{}", p.title);
    assert_eq!(p.lines, vec!["#3 bob: root".to_owned(), "  #4 bob: a reply".to_owned()]);

    assert!(matches!(&s.submit("/pin 3")[..], [Action::Send(ClientFrame::Pin { seq: 3, .. })]));
    assert!(matches!(&s.submit("/unpin 3")[..], [Action::Send(ClientFrame::Unpin { seq: 3, .. })]));
    assert!(matches!(&s.submit("/pins")[..], [Action::Send(ClientFrame::Pins { .. })]));
    let pin = Pin { message: msg(1, 3, &bob, "root"), pinned_by: Some(user(1, "alice")), at: 5 };
    s.apply(ServerFrame::Pins { room: 1, pins: vec![pin], req: None });
    assert_eq!(s.panel.as_ref().unwrap().lines, vec!["#3 bob: root (pinned by alice)".to_owned()]);

    let a = s.submit("/notify mentions");
    assert!(
        matches!(&a[..], [Action::Send(ClientFrame::Notify { level: Some(l), muted: None, .. })] if l == "mentions")
    );
    s.apply(ServerFrame::Notify { room: 1, notify: "mentions".into(), muted: true, req: None });
    assert_eq!(s.status.as_ref().unwrap().text, "notifications of #general: mentions, muted");
}

#[test]
fn the_bell_rings_on_a_new_mention_only_when_asked() {
    let mut s = ready();
    let bob = user(2, "bob");
    let mut m: Message = msg(1, 1, &bob, "hey @alice");
    m.mentions = vec![1];
    assert!(!s.apply(ServerFrame::Message { message: m.clone() }).contains(&Action::Bell), "off by default");
    s.bell = true;
    m.seq = 2;
    assert!(s.apply(ServerFrame::Message { message: m.clone() }).contains(&Action::Bell));
    assert!(!s.apply(ServerFrame::Message { message: m }).contains(&Action::Bell), "a repeat rings nothing");
    assert!(!s.apply(ServerFrame::Message { message: msg(1, 3, &bob, "no mention") }).contains(&Action::Bell));
}

#[test]
fn search_sends_the_query_and_lists_hits_with_marked_matches() {
    let mut s = ready();
    let a = s.submit("/search \"release notes\" by:bob");
    match &a[..] {
        [Action::Send(ClientFrame::Search { q, cursor: None, .. })] => assert_eq!(q, "\"release notes\" by:bob"),
        other => panic!("{other:?}"),
    }
    let bob = user(2, "bob");
    let hit = crate::proto::SearchHit {
        room: 1,
        room_name: "general".into(),
        seq: 7,
        message: msg(1, 7, &bob, "the release notes are out"),
        snippet: "the release notes are out".into(),
        highlights: vec![[4, 11], [12, 17]],
    };
    let frame = r#"{"type":"search_results","hits":[],"next_cursor":"c2","req":"s1"}"#;
    assert!(matches!(ServerFrame::decode(frame), Some(ServerFrame::SearchResults { next_cursor: Some(_), .. })));
    s.apply(ServerFrame::SearchResults { hits: vec![hit], next_cursor: Some("c2".into()), req: None });
    let panel = s.panel.as_ref().expect("results panel");
    assert!(panel.lines[0].contains("#7") && panel.lines[0].contains("the *release* *notes* are out"), "{panel:?}");
    assert!(panel.lines.iter().any(|l| l.contains("/search +c2 \"release notes\" by:bob")), "{panel:?}");
    // A search that matches nothing says so.
    s.submit("/search zebra");
    s.apply(ServerFrame::SearchResults { hits: vec![], next_cursor: None, req: None });
    assert_eq!(s.panel.as_ref().unwrap().lines, vec!["no messages match".to_owned()]);
}
