//! Message bodies in the documented Markdown subset (docs/PROTOCOL.md, "Formatting") as text plus one
//! style per character, parsed by `pulldown-cmark`: emphasis italic, strong bold, strikethrough crossed
//! out, inline code and code blocks in a code colour, links underlined (followed by their address when it
//! differs from the text), block quotes prefixed `│ `, list items `• ` / `1. `. Raw HTML stays text.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use ratatui::style::{Color, Modifier, Style};

/// The text to show and, for each of its characters, the style to add to the message's own.
pub fn render(body: &str) -> (String, Vec<Style>) {
    let mut out = Out::default();
    let mut stack: Vec<Style> = vec![Style::new()];
    let mut links: Vec<String> = Vec::new();
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut quote_depth = 0usize;
    let code = Style::new().fg(Color::Cyan);
    for ev in Parser::new_ext(body, Options::ENABLE_STRIKETHROUGH) {
        let top = *stack.last().unwrap_or(&Style::new());
        match ev {
            Event::Start(tag) => {
                let style = match &tag {
                    Tag::Emphasis => top.add_modifier(Modifier::ITALIC),
                    Tag::Strong => top.add_modifier(Modifier::BOLD),
                    Tag::Strikethrough => top.add_modifier(Modifier::CROSSED_OUT),
                    Tag::Link { .. } => top.add_modifier(Modifier::UNDERLINED),
                    Tag::CodeBlock(_) => code,
                    _ => top,
                };
                match &tag {
                    Tag::Paragraph | Tag::CodeBlock(_) | Tag::List(_) | Tag::BlockQuote(_) => out.block(),
                    Tag::Item => {
                        out.block();
                        let depth = lists.len().saturating_sub(1);
                        let mark = match lists.last_mut() {
                            Some(Some(n)) => {
                                *n += 1;
                                format!("{}. ", *n - 1)
                            }
                            _ => "• ".to_owned(),
                        };
                        out.push(&format!("{}{mark}", "  ".repeat(depth)), top);
                    }
                    Tag::Link { dest_url, .. } => links.push(dest_url.to_string()),
                    _ => {}
                }
                if let Tag::List(start) = tag {
                    lists.push(start);
                }
                if matches!(tag, Tag::BlockQuote(_)) {
                    quote_depth += 1;
                }
                stack.push(style);
            }
            Event::End(end) => {
                stack.pop();
                match end {
                    TagEnd::List(_) => {
                        lists.pop();
                    }
                    TagEnd::BlockQuote(_) => quote_depth = quote_depth.saturating_sub(1),
                    TagEnd::Link => {
                        if let Some(url) = links.pop()
                            && !out.text.ends_with(url.as_str())
                        {
                            out.push(&format!(" <{url}>"), Style::new().add_modifier(Modifier::DIM));
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) => out.text_in(&t, top, quote_depth),
            Event::Code(t) => out.text_in(&t, code, quote_depth),
            Event::Html(t) | Event::InlineHtml(t) => out.text_in(&t, top, quote_depth),
            Event::SoftBreak | Event::HardBreak => out.text_in("\n", top, quote_depth),
            Event::Rule => out.text_in("\n―――\n", top, quote_depth),
            _ => {}
        }
    }
    let trimmed = out.text.trim_end_matches('\n').chars().count();
    let text: String = out.text.chars().take(trimmed).collect();
    out.styles.truncate(trimmed);
    (text, out.styles)
}

#[derive(Default)]
struct Out {
    text: String,
    styles: Vec<Style>,
}

impl Out {
    fn push(&mut self, s: &str, style: Style) {
        for c in s.chars() {
            self.text.push(c);
            self.styles.push(style);
        }
    }

    /// Text inside `depth` block quotes: each new line starts with the quote bars.
    fn text_in(&mut self, s: &str, style: Style, depth: usize) {
        for c in s.chars() {
            if depth > 0 && (self.text.is_empty() || self.text.ends_with('\n')) && c != '\n' {
                self.push(&"│ ".repeat(depth), Style::new().add_modifier(Modifier::DIM));
            }
            self.text.push(c);
            self.styles.push(style);
        }
    }

    /// A block starts on a new line.
    fn block(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.push("\n", Style::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn styled(body: &str, needle: &str) -> Style {
        let (text, styles) = render(body);
        let at = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in {text:?}"));
        styles[text[..at].chars().count()]
    }

    #[test]
    fn emphasis_code_and_links_get_styles_and_the_markers_go() {
        let body = "**bold** _soft_ ~~gone~~ `x < y` [docs](https://example.com) <b>raw</b>";
        let (text, styles) = render(body);
        assert_eq!(text, "bold soft gone x < y docs <https://example.com> <b>raw</b>");
        assert_eq!(text.chars().count(), styles.len());
        assert!(styled(body, "bold").add_modifier.contains(Modifier::BOLD));
        assert!(styled(body, "soft").add_modifier.contains(Modifier::ITALIC));
        assert!(styled(body, "gone").add_modifier.contains(Modifier::CROSSED_OUT));
        assert_eq!(styled(body, "x < y").fg, Some(Color::Cyan));
        assert!(styled(body, "docs").add_modifier.contains(Modifier::UNDERLINED));
        assert_eq!(styled(body, "<b>raw"), Style::new(), "raw HTML is plain text");
    }

    #[test]
    fn blocks_lists_quotes_and_line_breaks() {
        let (text, _) = render("> quoted\n\n- one\n- two\n\n```\nfn main() {}\n```\nplain\nnext");
        assert_eq!(text, "│ quoted\n• one\n• two\nfn main() {}\nplain\nnext");
        assert_eq!(render("1. a\n2. b").0, "1. a\n2. b");
        assert_eq!(render("just text").0, "just text");
    }
}
