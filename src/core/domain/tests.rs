//! The domain rules, as docs/PROTOCOL.md §1 states them.

use super::*;
use crate::core::error::Error;

#[test]
fn usernames_follow_the_documented_rules() {
    for ok in ["abc", "Alice", "bob_2", "x-y-z", &"a".repeat(32)] {
        assert!(Username::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["ab", "1abc", "_abc", "al ice", "alïce", "", &"a".repeat(33), "a;drop"] {
        assert!(Username::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(Username::parse("AlIcE").unwrap().key(), "alice");
}

#[test]
fn bodies_are_non_blank_and_bounded() {
    assert!(matches!(MessageBody::parse("  \n", 10), Err(Error::EmptyMessage)));
    assert!(matches!(MessageBody::parse("12345678901", 10), Err(Error::MessageTooLarge { .. })));
    assert!(MessageBody::parse("héllo", 10).is_ok());
}

#[test]
fn display_names_are_trimmed_and_printable() {
    assert_eq!(DisplayName::parse("  Al  ").unwrap().as_str(), "Al");
    assert!(DisplayName::parse("   ").is_err());
    assert!(DisplayName::parse("a\u{7}b").is_err());
    assert!(DisplayName::parse(&"é".repeat(64)).is_ok());
    assert!(DisplayName::parse(&"é".repeat(65)).is_err());
    // Impersonation: bidi overrides and isolates, zero-width characters.
    for bad in ["adm\u{202E}nimda", "al\u{200B}ice", "a\u{2066}b\u{2069}", "\u{FEFF}bob", "x\u{200D}y", "\u{200F}r"] {
        assert!(matches!(DisplayName::parse(bad), Err(Error::InvalidDisplayName)), "{bad:?}");
    }
    assert!(DisplayName::parse("Zoë 🎉 日本").is_ok());
}

#[test]
fn client_ids_are_printable_ascii_with_space() {
    assert!(ClientMsgId::parse("c 1").is_ok(), "a space is printable ASCII");
    assert!(ClientMsgId::parse("~!x").is_ok());
    for bad in ["", "a\tb", "é", "a\nb", &"x".repeat(65)] {
        assert!(ClientMsgId::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn history_queries_are_validated() {
    assert_eq!(HistoryQuery::new(None, None, None).unwrap(), HistoryQuery::Latest { limit: 50 });
    assert!(HistoryQuery::new(Some(1), Some(2), None).is_err());
    assert!(HistoryQuery::new(None, None, Some(0)).is_err());
    assert!(HistoryQuery::new(None, None, Some(201)).is_err());
}

#[test]
fn mentions_are_words_starting_with_at() {
    assert_eq!(mentioned_names("hi @Alice and @bob_2, not me@mail.com; @al @alice"), ["alice", "bob_2"]);
    assert!(mentioned_names("@ @1x").is_empty());
}

#[test]
fn roles_are_ordered() {
    assert!(Role::Owner.moderates() && Role::Admin.moderates() && !Role::Member.moderates());
    assert!(Role::Owner > Role::Admin);
    assert_eq!(Role::parse_assignable("admin").unwrap(), Role::Admin);
    assert!(Role::parse_assignable("owner").is_err(), "a room keeps its one owner");
    for k in ["text", "kick", "role", "topic"] {
        assert_eq!(MessageKind::parse(k).unwrap().as_str(), k);
    }
}

#[test]
fn webhook_urls_are_http_or_https_with_a_host() {
    for ok in ["http://example.com/hook", "http://127.0.0.1:9000", "HTTP://h/x?y=1", "https://hooks.example.com/p"] {
        assert!(WebhookUrl::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["ftp://x/", "javascript:alert(1)", "http://", "http:///x", "http://a b/", "example.com", "https:///x"] {
        assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
    }
    assert!(parse_retention(Some(0)).is_err() && parse_retention(None).unwrap().is_none());
}

#[test]
fn room_refs_are_ids_or_names() {
    assert_eq!(RoomRef::parse("12"), RoomRef::Id(RoomId(12)));
    assert_eq!(RoomRef::parse("general"), RoomRef::Name("general".into()));
    assert_eq!(RoomRef::parse("@Bob"), RoomRef::Direct("Bob".into()));
}

#[test]
fn group_rooms_cannot_take_direct_names() {
    for bad in ["dm-3-4", "DM-10-2", "dm-1-1", "@bob"] {
        assert!(RoomName::parse(bad).is_err(), "{bad}");
    }
    for ok in ["dm", "dm-3", "dm-3-x", "dmx-1-2", "dm-1-2-3"] {
        assert!(RoomName::parse(ok).is_ok(), "{ok}");
    }
}

#[test]
fn a_reaction_is_one_grapheme_cluster_of_at_most_32_bytes() {
    let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}"; // ZWJ sequence, one cluster
    for ok in ["👍", "👍🏽", "🇫🇷", family, "a", "é", "e\u{301}", "❤️"] {
        assert!(Emoji::parse(ok).is_ok(), "{ok:?}");
    }
    let long_cluster = format!("a{}", "\u{301}".repeat(16)); // one cluster, 33 bytes
    for bad in ["", "ab", "👍👍", " ", "\n", "\u{7}", "🇫🇷🇩🇪", long_cluster.as_str()] {
        assert!(matches!(Emoji::parse(bad), Err(Error::InvalidEmoji)), "{bad:?}");
    }
}

#[test]
fn quotes_take_120_characters_or_a_tombstone() {
    let mut m = Message {
        room: RoomId(1),
        seq: 5,
        kind: MessageKind::Text,
        sender: None,
        target: None,
        body: "é".repeat(200),
        client_id: None,
        mentions: vec![],
        ts: 0,
        edited_at: None,
        deleted: false,
        files: vec![],
        reply_to: None,
        thread: None,
        extras: MessageExtras::default(),
    };
    let q = Quote::of(&m);
    assert_eq!((q.seq, q.excerpt.chars().count(), q.deleted), (5, 120, false));
    m.deleted = true;
    m.body.clear();
    assert_eq!(Quote::of(&m), Quote { seq: 5, sender: None, excerpt: String::new(), deleted: true });
}

#[test]
fn unread_is_shown_only_at_all_and_unmuted() {
    assert_eq!(NotifyLevel::All.unread_shown(false, 7), 7);
    for (level, muted) in [(NotifyLevel::All, true), (NotifyLevel::Mentions, false), (NotifyLevel::None, false)] {
        assert_eq!(level.unread_shown(muted, 7), 0);
    }
    assert_eq!(NotifyLevel::parse("mentions").unwrap(), NotifyLevel::Mentions);
    assert!(NotifyLevel::parse("loud").is_err());
}
