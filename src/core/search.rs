//! Full-text search, the transport- and store-neutral half: the query language (`q`) parsed into a
//! [`SearchQuery`] the stores run, the cursor, and the snippet with its highlight ranges built from a
//! hit's text (so every backend highlights the same way, and nothing in a snippet is markup).
//!
//! The language (documented in docs/PROTOCOL.md, "Search"): words (all must match, case-insensitive),
//! `"a phrase"`, `prefix*`, and the operators `in:ROOM`, `by:USERNAME`, `from:YYYY-MM-DD` (on or after,
//! UTC), `before:YYYY-MM-DD` (strictly before, UTC), `has:link`, `has:file`. A word is a run of letters and digits;
//! anything else separates words (so `don't` is the phrase `"don t"`).

use std::sync::Arc;

use super::domain::{Message, Millis, RoomId, UserId};
use super::error::{Error, Result};

/// One thing every hit must contain: consecutive words (one word, or a phrase), the last one matching
/// as a prefix when `prefix`. Words are lower-case letters and digits only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerm {
    pub words: Vec<String>,
    pub prefix: bool,
}

/// A parsed query with its filters resolved to ids, ready for `Store::search`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchQuery {
    pub terms: Vec<SearchTerm>,
    pub room: Option<RoomId>,
    pub sender: Option<UserId>,
    /// `created_at >= from`.
    pub from: Option<Millis>,
    /// `created_at < before`.
    pub before: Option<Millis>,
    pub has_link: bool,
    /// Only messages that share at least one file.
    pub has_file: bool,
    pub offset: u32,
    pub limit: u32,
}

/// What a store answers: the hits of one page, best first, and whether more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHits {
    pub messages: Vec<Arc<Message>>,
    pub has_more: bool,
}

/// The query text before its room and sender names are resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedQuery {
    pub terms: Vec<SearchTerm>,
    pub room: Option<String>,
    pub sender: Option<String>,
    pub from: Option<Millis>,
    pub before: Option<Millis>,
    pub has_link: bool,
    pub has_file: bool,
}

pub const MAX_QUERY_BYTES: usize = 512;
pub const MAX_TERMS: usize = 16;
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 50;
/// How deep a cursor may page (offset of the first hit).
pub const MAX_OFFSET: u32 = 1000;
/// How many matches a search ranks: the newest this many the caller may read (every page a cursor can
/// reach). Bounding it is what keeps a query for a common word as fast as one for a rare word.
pub const WINDOW: u32 = MAX_OFFSET + MAX_LIMIT;

/// The words of `text` as search sees them: runs of alphanumeric characters, lower-cased.
pub fn words(text: &str) -> Vec<String> {
    word_spans(text).into_iter().map(|(s, e)| text[s..e].to_lowercase()).collect()
}

/// Byte spans of the words of `text`.
fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

/// Parses the query language; a refusal says what is wrong.
pub fn parse(q: &str) -> Result<ParsedQuery> {
    if q.len() > MAX_QUERY_BYTES {
        return Err(bad(format!("a search query is at most {MAX_QUERY_BYTES} bytes")));
    }
    let mut out = ParsedQuery::default();
    let mut rest = q.trim();
    while !rest.is_empty() {
        let (token, quoted, after) = if let Some(r) = rest.strip_prefix('"') {
            match r.find('"') {
                Some(end) => (&r[..end], true, &r[end + 1..]),
                None => (r, true, ""),
            }
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            (&rest[..end], false, &rest[end..])
        };
        rest = after.trim_start();
        // A `*` right after a closing quote makes the phrase's last word a prefix.
        let mut prefix = false;
        if quoted && let Some(r) = rest.strip_prefix('*') {
            prefix = true;
            rest = r.trim_start();
        }
        if !quoted && let Some((op, value)) = token.split_once(':') {
            match op.to_ascii_lowercase().as_str() {
                "in" => {
                    out.room = Some(value.trim_start_matches('#').to_owned());
                    continue;
                }
                "by" => {
                    out.sender = Some(value.trim_start_matches('@').to_owned());
                    continue;
                }
                "from" => {
                    out.from = Some(parse_day(value)?);
                    continue;
                }
                "before" => {
                    out.before = Some(parse_day(value)?);
                    continue;
                }
                "has" => {
                    match value.to_ascii_lowercase().as_str() {
                        "link" => out.has_link = true,
                        "file" => out.has_file = true,
                        other => return Err(bad(format!("unknown filter has:{other} (has:link, has:file)"))),
                    }
                    continue;
                }
                _ => {} // not an operator: `12:30` is two words
            }
        }
        if !quoted && token.ends_with('*') {
            prefix = true;
        }
        let ws = words(token);
        if ws.is_empty() {
            continue;
        }
        out.terms.push(SearchTerm { words: ws, prefix });
    }
    if out.terms.is_empty() {
        return Err(bad("a search needs at least one word"));
    }
    if out.terms.len() > MAX_TERMS {
        return Err(bad(format!("a search has at most {MAX_TERMS} words or phrases")));
    }
    Ok(out)
}

/// `YYYY-MM-DD` as the millisecond its day starts, UTC.
fn parse_day(s: &str) -> Result<Millis> {
    let err = || bad(format!("dates are YYYY-MM-DD, not {s:?}"));
    let mut it = s.splitn(3, '-');
    let mut num = |len: usize| -> Result<i64> {
        let p = it.next().ok_or_else(err)?;
        if p.len() != len || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        p.parse().map_err(|_| err())
    };
    let (y, m, d) = (num(4)?, num(2)?, num(2)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(err());
    }
    Ok(days_from_civil(y, m, d) * 86_400_000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The opaque cursor of the page starting at `offset`.
pub fn cursor_at(offset: u32) -> String {
    format!("o{offset}")
}

/// The offset a cursor stands for.
pub fn parse_cursor(cursor: Option<&str>) -> Result<u32> {
    let Some(c) = cursor.filter(|c| !c.is_empty()) else { return Ok(0) };
    let offset: u32 = c.strip_prefix('o').and_then(|n| n.parse().ok()).ok_or_else(|| bad("invalid search cursor"))?;
    if offset > MAX_OFFSET {
        return Err(bad(format!("search pages stop after {MAX_OFFSET} hits; narrow the query")));
    }
    Ok(offset)
}

pub fn parse_limit(limit: Option<u32>) -> Result<u32> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    Ok(limit)
}

/// An excerpt of a hit's text around its first match, and where the matches are in it: `[start, end)`
/// offsets in Unicode scalar values (characters) of `text`. Plain text: clients display it as text
/// and mark the ranges, never parse it as markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    pub text: String,
    pub highlights: Vec<(usize, usize)>,
}

/// Characters of context kept before the first match and in the whole snippet.
const CONTEXT_BEFORE: usize = 60;
const SNIPPET_CHARS: usize = 240;

/// Which words of `body` (by index into its word spans) match `terms`, and whether every term matched.
fn matched_words(body: &str, spans: &[(usize, usize)], terms: &[SearchTerm]) -> (Vec<bool>, bool) {
    let lowered: Vec<String> = spans.iter().map(|&(s, e)| body[s..e].to_lowercase()).collect();
    let mut hit = vec![false; spans.len()];
    let mut all_terms = true;
    for t in terms {
        let n = t.words.len();
        let mut found = false;
        if n > 0 && n <= spans.len() {
            for i in 0..=spans.len() - n {
                let all = t.words.iter().enumerate().all(|(k, w)| {
                    let got = &lowered[i + k];
                    if k + 1 == n && t.prefix { got.starts_with(w.as_str()) } else { got == w }
                });
                if all {
                    found = true;
                    hit[i..i + n].iter_mut().for_each(|h| *h = true);
                }
            }
        }
        all_terms &= found;
    }
    (hit, all_terms)
}

/// How well `body` matches `terms`: `None` unless every term occurs, else the number of matching
/// words (the reference ranking of the in-memory store).
pub fn score(body: &str, terms: &[SearchTerm]) -> Option<usize> {
    let spans = word_spans(body);
    let (hit, all) = matched_words(body, &spans, terms);
    all.then(|| hit.iter().filter(|h| **h).count())
}

/// Builds the snippet of `body` for `terms`: every word that matches a term's word (whole, or as a
/// prefix for a prefix term's last word) is highlighted.
pub fn snippet(body: &str, terms: &[SearchTerm]) -> Snippet {
    let spans = word_spans(body);
    let (hit, _) = matched_words(body, &spans, terms);
    // Byte offset → char offset, once.
    let char_at = |byte: usize| body[..byte].chars().count();
    let total = body.chars().count();
    let first = spans.iter().zip(&hit).find(|(_, h)| **h).map(|(s, _)| char_at(s.0)).unwrap_or(0);
    let start = first.saturating_sub(CONTEXT_BEFORE);
    let end = (start + SNIPPET_CHARS).min(total);
    let mut text: String = body.chars().skip(start).take(end - start).collect();
    let mut shift = 0;
    if start > 0 {
        text.insert(0, '…');
        shift = 1;
    }
    if end < total {
        text.push('…');
    }
    let highlights = spans
        .iter()
        .zip(&hit)
        .filter(|(_, h)| **h)
        .map(|(&(s, e), _)| (char_at(s), char_at(e)))
        .filter(|&(s, e)| s >= start && e <= end)
        .map(|(s, e)| (s - start + shift, e - start + shift))
        .collect();
    Snippet { text, highlights }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(words: &[&str], prefix: bool) -> SearchTerm {
        SearchTerm { words: words.iter().map(|w| w.to_string()).collect(), prefix }
    }

    #[test]
    fn the_query_language_parses() {
        let q =
            parse(r#"Deploy "Release Notes" rust* in:#general by:@Alice has:link from:2026-11-30 before:2026-12-01"#)
                .unwrap();
        assert_eq!(q.terms, vec![term(&["deploy"], false), term(&["release", "notes"], false), term(&["rust"], true)]);
        assert_eq!(q.room.as_deref(), Some("general"));
        assert_eq!(q.sender.as_deref(), Some("Alice"));
        assert!(q.has_link);
        assert!(!q.has_file);
        assert!(parse("report has:FILE").unwrap().has_file);
        assert_eq!(q.from, Some(1_795_996_800_000));
        assert_eq!(q.before, Some(1_795_996_800_000 + 86_400_000));
        assert_eq!(parse(r#""half open"*"#).unwrap().terms, vec![term(&["half", "open"], true)]);
        assert_eq!(parse("don't 12:30").unwrap().terms, vec![term(&["don", "t"], false), term(&["12", "30"], false)]);
        assert_eq!(parse(r#""unterminated phrase"#).unwrap().terms, vec![term(&["unterminated", "phrase"], false)]);
    }

    #[test]
    fn bad_queries_are_refused_with_a_reason() {
        for q in ["", "   ", "in:general", "***", "from:yesterday", "from:2026-13-01", "has:kittens", "has:file"] {
            // `has:file` alone has no word to match: refused like any query without one.
            assert!(matches!(parse(q), Err(Error::BadRequest(_))), "{q}");
        }
        assert!(parse(&"a ".repeat(300)).is_err());
        assert!(parse(&"w ".repeat(MAX_TERMS + 1)).is_err());
    }

    #[test]
    fn cursors_and_limits() {
        assert_eq!(parse_cursor(None).unwrap(), 0);
        assert_eq!(parse_cursor(Some(&cursor_at(40))).unwrap(), 40);
        assert!(parse_cursor(Some("x1")).is_err());
        assert!(parse_cursor(Some(&cursor_at(MAX_OFFSET + 1))).is_err());
        assert_eq!(parse_limit(None).unwrap(), DEFAULT_LIMIT);
        assert!(parse_limit(Some(0)).is_err() && parse_limit(Some(MAX_LIMIT + 1)).is_err());
    }

    #[test]
    fn snippets_mark_matches_in_characters_and_stay_plain_text() {
        let s = snippet("Ünïcode <b>deploy</b> today: Deployment done", &[term(&["deploy"], true)]);
        assert_eq!(s.text, "Ünïcode <b>deploy</b> today: Deployment done");
        let marked: Vec<String> =
            s.highlights.iter().map(|&(a, b)| s.text.chars().skip(a).take(b - a).collect()).collect();
        assert_eq!(marked, vec!["deploy", "Deployment"]);
        let s = snippet("release the notes, then release notes", &[term(&["release", "notes"], false)]);
        let marked: Vec<String> =
            s.highlights.iter().map(|&(a, b)| s.text.chars().skip(a).take(b - a).collect()).collect();
        assert_eq!(marked, vec!["release", "notes"], "only the phrase, not its words apart");
        let long = format!("{} needle {}", "x ".repeat(200), "y ".repeat(200));
        let s = snippet(&long, &[term(&["needle"], false)]);
        assert!(s.text.starts_with('…') && s.text.ends_with('…'));
        let (a, b) = s.highlights[0];
        assert_eq!(s.text.chars().skip(a).take(b - a).collect::<String>(), "needle");
    }
}
