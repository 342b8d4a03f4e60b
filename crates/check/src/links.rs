//! External links in wikitext, approximating the links MediaWiki's parser registers
//! (`ParserOutput::getExternalLinks`), for when the wiki does not send them.
//!
//! Recognised, as the parser does: bracketed links `[url text]` (any protocol of MediaWiki's
//! default `$wgUrlProtocols`, and protocol-relative `//host`), then free links (a URL starting
//! at a word boundary with one of those protocols, except `//`), with trailing `,;.:!?` (and
//! `)` when the URL has no `(`) left out as the parser leaves them out. Text inside
//! `<nowiki>`, `<pre>`, `<syntaxhighlight>`, `<source>`, `<math>` and HTML comments is skipped.
//!
//! Not done (only the real parser can): expanding templates and parser functions (a link a
//! template produces is missed), `Sanitizer::cleanUrl`'s normalisation of escapes and host
//! names, and links from extension tags.

use std::sync::OnceLock;

use regex::Regex;

/// MediaWiki's default `$wgUrlProtocols`, without `//`.
const PROTOCOLS: &str = r"bitcoin:|ftp://|ftps://|geo:|git://|gopher://|http://|https://|irc://|ircs://|magnet:|mailto:|matrix:|mms://|news:|nntp://|redis://|sftp://|sip:|sips:|sms:|ssh://|svn://|tel:|telnet://|urn:|worldwind://|xmpp:";
/// The parser's `EXT_LINK_URL_CLASS`.
const URL_CHAR: &str = r"[^\]\[<>\x22\x00-\x20\x7F\p{Zs}\x{FFFD}]";
/// The parser's `EXT_LINK_ADDR`: a bracketed IPv6 host or one URL character.
const ADDR: &str = r"(?:\[[0-9A-Fa-f:.]+\]|[^\]\[<>\x22\x00-\x20\x7F\p{Zs}\x{FFFD}])";

struct Patterns {
    skip: Regex,
    bracketed: Regex,
    free: Regex,
}

fn patterns() -> Option<&'static Patterns> {
    static P: OnceLock<Option<Patterns>> = OnceLock::new();
    P.get_or_init(|| {
        Some(Patterns {
            skip: Regex::new(
                r"(?is)<!--.*?(?:-->|\z)|<(nowiki|pre|syntaxhighlight|source|math)(?:\s[^>]*)?>.*?(?:</(?:nowiki|pre|syntaxhighlight|source|math)\s*>|\z)|<nowiki\s*/>",
            )
            .ok()?,
            bracketed: Regex::new(&format!(
                r"\[((?i:{PROTOCOLS}|//){ADDR}{URL_CHAR}*)\p{{Zs}}*([^\]\x00-\x08\x0a-\x1F\x{{FFFD}}]*?)\]"
            ))
            .ok()?,
            free: Regex::new(&format!(r"\b((?i:{PROTOCOLS}){ADDR}{URL_CHAR}*)")).ok()?,
        })
    })
    .as_ref()
}

/// Cuts the punctuation the parser leaves outside a free link.
fn trim_free_link(url: &str) -> &str {
    let mut url = url;
    // `&lt;`/`&gt;` end a URL (the parser sees them escaped).
    for ent in ["&lt;", "&gt;"] {
        if let Some(i) = url.find(ent) {
            url = &url[..i];
        }
    }
    let has_paren = url.contains('(');
    let is_sep = |c: char| matches!(c, ',' | ';' | '.' | ':' | '!' | '?') || (c == ')' && !has_paren);
    let trimmed = url.trim_end_matches(is_sep);
    let mut keep = trimmed.len();
    // Keep a `;` that closes an HTML entity (`&amp;`).
    if keep < url.len() && url.as_bytes()[keep] == b';' {
        let head = &url[..keep];
        if let Some(amp) = head.rfind('&') {
            let name = &head[amp + 1..];
            let ok = !name.is_empty()
                && (name.bytes().all(|b| b.is_ascii_alphanumeric())
                    || name.strip_prefix('#').is_some_and(|n| {
                        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                            || n.strip_prefix(['x', 'X'])
                                .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    }));
            if ok {
                keep += 1;
            }
        }
    }
    &url[..keep]
}

/// Whether anything follows the protocol (the parser does not link a lone `http://`).
fn has_host(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = PROTOCOLS
        .split('|')
        .chain(std::iter::once("//"))
        .filter(|p| lower.starts_with(p))
        .map(|p| &url[p.len()..])
        .min_by_key(|r| r.len());
    rest.is_some_and(|r| !r.is_empty())
}

/// The external links of `wikitext`, each once, in order of first appearance.
pub fn extract_links(wikitext: &str) -> Vec<String> {
    let Some(p) = patterns() else {
        return Vec::new();
    };
    let text = p.skip.replace_all(wikitext, " ");
    let mut links: Vec<String> = Vec::new();
    let push = |url: &str, links: &mut Vec<String>| {
        if has_host(url) && !links.iter().any(|l| l == url) {
            links.push(url.to_string());
        }
    };
    // Bracketed links first; their text is then no longer searched for free links (the
    // parser has turned it into an <a> element by then).
    let mut rest = String::with_capacity(text.len());
    let mut last = 0;
    for c in p.bracketed.captures_iter(&text) {
        let (Some(all), Some(url)) = (c.get(0), c.get(1)) else {
            continue;
        };
        push(url.as_str(), &mut links);
        rest.push_str(&text[last..all.start()]);
        rest.push(' ');
        last = all.end();
    }
    rest.push_str(&text[last..]);
    for c in p.free.captures_iter(&rest) {
        if let Some(url) = c.get(1) {
            push(trim_free_link(url.as_str()), &mut links);
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_bracketed() {
        let t = "See http://example.com/a, and [https://example.org/b?x=1 the site] or [//cdn.example.net/c].\n\
                 Mail mailto:someone@example.com. Also ftp://files.example.com/x.";
        assert_eq!(
            extract_links(t),
            [
                "https://example.org/b?x=1",
                "//cdn.example.net/c",
                "http://example.com/a",
                "mailto:someone@example.com",
                "ftp://files.example.com/x",
            ]
        );
    }

    #[test]
    fn punctuation_and_parentheses() {
        assert_eq!(extract_links("(see http://example.com/x)"), ["http://example.com/x"]);
        assert_eq!(
            extract_links("http://en.wikipedia.org/wiki/Foo_(bar)"),
            ["http://en.wikipedia.org/wiki/Foo_(bar)"]
        );
        assert_eq!(extract_links("go to http://example.com/!?"), ["http://example.com/"]);
        assert_eq!(
            extract_links("http://example.com/?a=1&amp;"),
            ["http://example.com/?a=1&amp;"]
        );
        assert_eq!(extract_links("http://example.com/&lt;x"), ["http://example.com/"]);
    }

    #[test]
    fn not_links() {
        assert!(extract_links("http:// alone, //example.com bare, nohttp://x.com").is_empty());
        assert!(extract_links("<nowiki>http://example.com</nowiki> <!-- http://a.com -->").is_empty());
        assert!(extract_links("<pre>https://example.com</pre>").is_empty());
        assert!(extract_links("").is_empty());
    }

    #[test]
    fn duplicates_once_and_brackets_without_text() {
        assert_eq!(
            extract_links("[http://a.com] http://a.com [http://a.com again] HTTP://B.com"),
            ["http://a.com", "HTTP://B.com"]
        );
        // The link text is not searched for free links.
        assert_eq!(extract_links("[http://a.com see http://b.com]"), ["http://a.com"]);
        // A bracketed link whose text spans lines is a free link instead.
        assert_eq!(extract_links("[http://a.com foo\nbar]"), ["http://a.com"]);
    }

    #[test]
    fn ipv6_hosts() {
        assert_eq!(extract_links("http://[2001:db8::1]/x"), ["http://[2001:db8::1]/x"]);
    }
}
