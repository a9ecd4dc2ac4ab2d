//! What the SQL stores share for [`Store::search`](super::Store::search): the query each index
//! language gets (an FTS5 `MATCH` expression, a PostgreSQL `tsquery`) and the filter clause. The
//! query text is built only from [`SearchTerm`] words, which hold letters and digits alone, and is
//! bound as a parameter; every filter is bound too.

use crate::core::search::{SearchQuery, SearchTerm};

/// Filters after the text match: `$2` the searching user (a member of the room *now*), `$3` room, `$4`
/// sender, `$5` from, `$6` before, `$7` has-link (0/1), `$8` has-file (0/1); `$9` limit, `$10` offset
/// follow. Expects the message as `m`; has-file is an index probe of `files_by_message` per candidate.
pub(super) const FILTERS: &str = "JOIN members mb ON mb.room_id = m.room_id AND mb.user_id = $2 \
     WHERE {MATCH} AND m.kind = 'text' AND NOT m.deleted \
     AND ($3 IS NULL OR m.room_id = $3) AND ($4 IS NULL OR m.sender_id = $4) \
     AND ($5 IS NULL OR m.created_at >= $5) AND ($6 IS NULL OR m.created_at < $6) \
     AND ($7 = 0 OR m.body LIKE '%http://%' OR m.body LIKE '%https://%') \
     AND ($8 = 0 OR EXISTS (SELECT 1 FROM files fl WHERE fl.room_id = m.room_id AND fl.seq = m.seq))";

/// An FTS5 query: each term a quoted phrase (`"a b"`, `"a b"*` for a prefix), all required.
pub(super) fn fts5_match(terms: &[SearchTerm]) -> String {
    terms
        .iter()
        .map(|t| {
            let phrase = t.words.iter().map(|w| w.replace('"', "\"\"")).collect::<Vec<_>>().join(" ");
            format!("\"{phrase}\"{}", if t.prefix { "*" } else { "" })
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A `to_tsquery` text: each term its quoted lexemes joined by `<->` (followed by), the last one `:*`
/// for a prefix; terms joined by `&`.
pub(super) fn tsquery(terms: &[SearchTerm]) -> String {
    terms
        .iter()
        .map(|t| {
            let n = t.words.len();
            let lexemes = t
                .words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let w = w.replace('\\', "\\\\").replace('\'', "''");
                    if t.prefix && i + 1 == n { format!("'{w}':*") } else { format!("'{w}'") }
                })
                .collect::<Vec<_>>()
                .join(" <-> ");
            format!("({lexemes})")
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

/// The bound values `$3`..`$10` in order: room, sender, from, before, has-link, has-file, limit + 1,
/// offset.
pub(super) fn filter_values(q: &SearchQuery) -> [Option<i64>; 8] {
    [
        q.room.map(|r| r.0),
        q.sender.map(|u| u.0),
        q.from,
        q.before,
        Some(i64::from(q.has_link)),
        Some(i64::from(q.has_file)),
        Some(i64::from(q.limit) + 1),
        Some(i64::from(q.offset)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_queries_quote_every_term() {
        let terms = vec![
            SearchTerm { words: vec!["release".into(), "notes".into()], prefix: false },
            SearchTerm { words: vec!["dep".into()], prefix: true },
        ];
        assert_eq!(fts5_match(&terms), r#""release notes" AND "dep"*"#);
        assert_eq!(tsquery(&terms), "('release' <-> 'notes') & ('dep':*)");
    }
}
