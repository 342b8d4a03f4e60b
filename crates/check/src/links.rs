//! External links in wikitext, approximating the links MediaWiki's parser registers
//! (`ParserOutput::getExternalLinks`), for when the wiki does not send them.
//!
//! Recognised, as the parser does: bracketed links `[url text]` (any protocol of MediaWiki's
//! default `$wgUrlProtocols`, and protocol-relative `//host`), then free links (a URL starting
//! at a word boundary with one of those protocols, except `//`), with trailing `,;.:!?` (and
//! `)` when the URL has no `(`) left out as the parser leaves them out. Bold/italic quotes and
//! heading markers end a URL (the parser turns them into tags first); the text of internal
//! links `[[…]]` is not searched. Text inside `<nowiki>`, `<pre>`, `<syntaxhighlight>`,
//! `<source>`, `<math>` and HTML comments is skipped. Each URL is then normalised as
//! `Sanitizer::cleanUrl` and `Parser::normalizeLinkUrl` do (character references decoded,
//! unsafe and non-ASCII bytes percent-encoded, needless escapes decoded), so `added_links`
//! holds what MediaWiki would store.
//!
//! Not done (only the real parser can): expanding templates and parser functions. Links in a
//! template's parameters are kept (ending at `|` and `}}`), since citation templates usually
//! render them, though MediaWiki registers them only if the template does; links a template
//! produces by itself are missed. Links to the wiki's own server are registered too (MediaWiki
//! leaves them out; we do not know the server). `tests/mediawiki_links.rs` compares the scan
//! with the parser's output.

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;

/// MediaWiki's default `$wgUrlProtocols`, without `//`.
const PROTOCOLS: &str = r"bitcoin:|ftp://|ftps://|geo:|git://|gopher://|http://|https://|irc://|ircs://|magnet:|mailto:|matrix:|mms://|news:|nntp://|redis://|sftp://|sip:|sips:|sms:|ssh://|svn://|tel:|telnet://|urn:|worldwind://|xmpp:";
/// The parser's `EXT_LINK_URL_CLASS`.
const URL_CHAR: &str = r"[^\]\[<>\x22\x00-\x20\x7F\p{Zs}\x{FFFD}]";
/// The parser's `EXT_LINK_ADDR`: a bracketed IPv6 host or one URL character.
const ADDR: &str = r"(?:\[[0-9A-Fa-f:.]+\]|[^\]\[<>\x22\x00-\x20\x7F\p{Zs}\x{FFFD}])";

/// The tags whose content the parser does not search for links (with `<!-- … -->`).
const SKIPPED_TAGS: &str = "nowiki|pre|syntaxhighlight|source|math";
/// The bytes that can follow the `<` of what [`Patterns::skip`] removes: `!` (a comment) and
/// the first letter of each of [`SKIPPED_TAGS`], derived from that list when compiling.
const SKIPPED_FIRST_BYTES: [bool; 256] = {
    let tags = SKIPPED_TAGS.as_bytes();
    let mut table = [false; 256];
    table[b'!' as usize] = true;
    let mut i = 0;
    while i < tags.len() {
        if i == 0 || tags[i - 1] == b'|' {
            table[tags[i] as usize] = true;
        }
        i += 1;
    }
    table
};

/// A URL as the parser's external-link patterns match it: a protocol (also `//` when
/// `relative`), the address, then URL characters.
fn url_pattern(relative: bool) -> String {
    format!(
        r"(?i:{PROTOCOLS}{}){ADDR}{URL_CHAR}*",
        if relative { "|//" } else { "" }
    )
}

struct Patterns {
    skip: Regex,
    /// The URL of a bracketed link `[url text]`, at the start of the haystack (just after its
    /// `[`; see [`bracketed_links`]).
    bracketed_url: Regex,
    free_anchored: Regex,
    word_char: Regex,
    host: Regex,
    encoded_ipv6_host: Regex,
    ipv6_url: Regex,
    ipv6_prefix: Regex,
}

const SCHEME: &str = r"[a-z][a-z0-9+.-]*:";
const USERINFO: &str = r"(?:[a-z0-9\-._~!$&'()*+,;=:]|%[0-9a-f]{2})*";

fn patterns() -> Option<&'static Patterns> {
    static P: OnceLock<Option<Patterns>> = OnceLock::new();
    P.get_or_init(|| {
        Some(Patterns {
            // Tag names in any ASCII case, as the parser's byte-wise `/i` matches them (not
            // `<ſource>`, whose long s only Unicode case folding takes for an `s`).
            skip: Regex::new(&format!(
                r"(?s)<!--.*?(?:-->|\z)|<(?i-u:{SKIPPED_TAGS})(?:\s[^>]*)?>.*?(?:</(?i-u:{SKIPPED_TAGS})\s*>|\z)|<(?i-u:nowiki)\s*/>",
            ))
            .ok()?,
            bracketed_url: Regex::new(&format!(r"\A{}", url_pattern(true))).ok()?,
            // The parser's `\b` before the protocol is checked by hand (`after_word`): a Unicode
            // word boundary would make the regex crate leave its DFA on non-ASCII text.
            free_anchored: Regex::new(&format!(r"\A{}", url_pattern(false))).ok()?,
            word_char: Regex::new(r"^\w$").ok()?,
            host: Regex::new(r"(?is)^([^:]+:)(//[^/]+)?(.*)$").ok()?,
            encoded_ipv6_host: Regex::new(r"^//%5B([0-9A-Fa-f:.]+)%5D((?::\d+)?)$").ok()?,
            ipv6_url: Regex::new(&format!(
                r"(?is)^(?:{SCHEME})?//(?:{USERINFO}@)?\[((?:[0-9a-f:]|%3[0-9A]|%[46][1-6])+)\](?:[:/?#].*|)$"
            ))
            .ok()?,
            ipv6_prefix: Regex::new(&format!(r"(?i)^(?:{SCHEME})?//(?:{USERINFO}@)?$")).ok()?,
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
    let first = url.as_bytes().first().map(u8::to_ascii_lowercase);
    let rest = protocol_list()
        .iter()
        .filter(|p| p.as_bytes().first().copied() == first && starts_with_ignore_case(url, p))
        .filter_map(|p| url.get(p.len()..))
        .min_by_key(|r| r.len());
    rest.is_some_and(|r| !r.is_empty())
}

/// Runs of two or more apostrophes become bold/italic tags before links are found: they end
/// a URL. Four apostrophes are one literal apostrophe and bold; more than five, the extra
/// ones literal and bold italic.
fn mark_quotes(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(i) = rest.find('\'') {
        out.push_str(&rest[..i]);
        let run = rest.as_bytes()[i..].iter().take_while(|&&b| b == b'\'').count();
        match run {
            1 => out.push('\''),
            4 => out.push_str("'<"),
            n if n > 5 => {
                out.extend(std::iter::repeat_n('\'', n - 5));
                out.push('<');
            }
            _ => out.push('<'),
        }
        rest = &rest[i + run..];
    }
    out.push_str(rest);
    out
}

/// A heading line `== x ==` loses its markers (the parser makes it an `<h2>` first).
fn mark_headings(text: &str) -> String {
    // Only a line starting with `=` can be a heading: those are found with a substring search
    // for "\n=", and the text between them is copied as it is.
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut next = if b.first() == Some(&b'=') { Some(0) } else { None };
    let mut search = 0;
    loop {
        let start = match next.take() {
            Some(start) => start,
            None => match b.get(search..).and_then(|rest| memchr::memmem::find(rest, b"\n=")) {
                Some(k) => search + k + 1,
                None => break,
            },
        };
        let end = memchr::memchr(b'\n', &b[start..]).map_or(b.len(), |k| start + k);
        if let Some(inner) = heading_text(&text[start..end]) {
            out.push_str(&text[copied..start]);
            out.push('<');
            out.push_str(inner);
            out.push('<');
            copied = end;
        }
        search = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The text of a heading line between its markers, `None` when `line` is no heading.
fn heading_text(line: &str) -> Option<&str> {
    let lead = line.bytes().take_while(|&b| b == b'=').count().min(6);
    let body = line.trim_end_matches(|c: char| c.is_ascii_whitespace());
    let n = (1..=lead)
        .rev()
        .find(|&n| body.len() > 2 * n && body.ends_with(&"======"[..n]))?;
    body.get(n..body.len() - n)
}

/// Template parameters: the braces of a closed `{{…}}` and a `|` inside it end a URL (an
/// unclosed `{{` is plain text, as in the parser).
fn mark_templates(text: &str) -> String {
    // Pair the braces first: only closed templates count. The tokens (`{{`, `}}`, `|`) come
    // from one literal search, so the bytes between them are not looked at one by one.
    let mut open: Vec<usize> = Vec::new();
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut pipes: Vec<usize> = Vec::new();
    for (at, token) in template_tokens(text.as_bytes()) {
        match token {
            b'{' => open.push(at),
            b'}' => {
                if let Some(start) = open.pop() {
                    pairs.push((start, at));
                }
            }
            _ => pipes.push(at),
        }
    }
    if pairs.is_empty() {
        return text.to_string();
    }
    let mut out = text.as_bytes().to_vec();
    // A pipe strictly inside some pair is blanked: sweep the pairs' inner ranges.
    let mut events: Vec<(usize, i32)> = Vec::with_capacity(2 * pairs.len());
    for &(start, end) in &pairs {
        for x in [start, start + 1, end, end + 1] {
            out[x] = b' ';
        }
        events.push((start + 2, 1));
        events.push((end, -1));
    }
    events.sort_unstable();
    let (mut depth, mut e) = (0i32, 0);
    for x in pipes {
        while e < events.len() && events[e].0 <= x {
            depth += events[e].1;
            e += 1;
        }
        if depth > 0 {
            out[x] = b' ';
        }
    }
    // Only ASCII bytes (braces and pipes) are blanked, so the text stays UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The tokens of `\{\{|\}\}|\|` in `b`, leftmost first and not overlapping, as (offset, first
/// byte): a byte search for the three bytes, then a look at the next.
fn template_tokens(b: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || loop {
        let i = at + memchr::memchr3(b'{', b'}', b'|', b.get(at..)?)?;
        let c = b[i];
        if c == b'|' {
            at = i + 1;
            return Some((i, c));
        }
        if b.get(i + 1) == Some(&c) {
            at = i + 2;
            return Some((i, c));
        }
        at = i + 1;
    })
}

/// `$wgUrlProtocols` and `//`, one per entry, for prefix tests.
fn protocol_list() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| PROTOCOLS.split('|').chain(std::iter::once("//")).collect())
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn starts_with_protocol(s: &str) -> bool {
    let s = s.trim_start();
    // Every protocol but `//` has its colon within its first ten bytes (`worldwind:`): most
    // strings (an internal link's target) are ruled out without trying the list.
    let head = s.as_bytes().get(..10).unwrap_or(s.as_bytes());
    if !head.starts_with(b"//") && !head.contains(&b':') {
        return false;
    }
    protocol_list().iter().any(|p| starts_with_ignore_case(s, p))
}

/// Where the next `[[` at or after `from` starts: a byte search for `[` (memchr), then a look
/// at the next byte, which is cheaper than a two-byte substring search on wikitext.
fn find_double_bracket(b: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(k) = memchr::memchr(b'[', b.get(at..)?) {
        let i = at + k;
        if b.get(i + 1) == Some(&b'[') {
            return Some(i);
        }
        at = i + 1;
    }
    None
}

/// Internal links `[[Page|text]]` become `<a>` elements before free links are found, so their
/// text is not searched (file links keep their captions, which the parser does search).
fn blank_internal_links(text: &str) -> String {
    // As `\[\[([^\[\]|]*)(?:\|[^\[\]]*)?\]\]`, replaced left to right: each class is greedy
    // and what may follow it is a character it excludes, so each `[[` has at most one way to
    // match; where it has none, the next `[[` (one byte on, overlapping) is tried.
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut last, mut search) = (0, 0);
    while let Some(i) = find_double_bracket(b, search) {
        let mut j = i + 2;
        while j < b.len() && !matches!(b[j], b'[' | b']' | b'|') {
            j += 1;
        }
        let target = &text[i + 2..j];
        if j < b.len() && b[j] == b'|' {
            j += 1;
            while j < b.len() && !matches!(b[j], b'[' | b']') {
                j += 1;
            }
        }
        if !text[j..].starts_with("]]") {
            search = i + 1;
            continue;
        }
        let end = j + 2;
        let target = target.trim_start_matches([' ', ':']);
        let keep = starts_with_protocol(target)
            || starts_with_ignore_case(target, "file:")
            || starts_with_ignore_case(target, "image:");
        out.push_str(&text[last..i]);
        out.push_str(if keep { &text[i..end] } else { " " });
        last = end;
        search = end;
    }
    out.push_str(&text[last..]);
    out
}

/// `Sanitizer::decodeCharReferences`: numeric references and the common named ones; an
/// unknown name stays as written.
fn decode_char_references(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest[1..].find(';').and_then(|end| {
            let name = &rest[1..1 + end];
            let c = if let Some(num) = name.strip_prefix('#') {
                let code = match num.strip_prefix(['x', 'X']) {
                    Some(hex) if !hex.is_empty() && hex.len() <= 8 => u32::from_str_radix(hex, 16).ok(),
                    Some(_) => None,
                    None if !num.is_empty() && num.len() <= 10 && num.bytes().all(|b| b.is_ascii_digit()) => {
                        num.parse().ok()
                    }
                    None => None,
                }?;
                // Sanitizer::validateCodepoint: controls other than tab/newline/CR are invalid.
                let valid = matches!(code, 0x09 | 0x0A | 0x0D | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF);
                Some(char::from_u32(code).filter(|_| valid).unwrap_or('\u{FFFD}'))
            } else {
                match name {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    "nbsp" => Some('\u{A0}'),
                    _ => None,
                }
            }?;
            Some((c, end + 2))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn hex_upper(b: u8) -> [char; 3] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    ['%', HEX[(b >> 4) as usize] as char, HEX[(b & 15) as usize] as char]
}

/// Percent-encodes the bytes `encode` selects (as upper-case `%XX`; a space as `+` when `plus`).
fn encode_bytes(s: &str, encode: impl Fn(u8) -> bool, plus: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        let bytes = &s.as_bytes()[i..i + c.len_utf8()];
        if bytes.iter().any(|&b| encode(b)) {
            for &b in bytes {
                if plus && b == b' ' {
                    out.push('+');
                } else {
                    out.extend(hex_upper(b));
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `Parser::normalizeUrlComponent`: an escape of a printable ASCII character not in `unsafe`
/// is decoded, the others upper-cased.
fn normalize_component(s: &str, unsafe_chars: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
            let v = u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(0);
            if v > 32 && v < 127 && !unsafe_chars.as_bytes().contains(&v) {
                out.push(v as char);
            } else {
                out.push('%');
                out.push_str(&s[i + 1..i + 3].to_ascii_uppercase());
            }
            i += 3;
        } else {
            // Only ASCII remains after encoding, so byte-wise copying is safe here.
            let c = s[i..].chars().next().unwrap_or('\u{FFFD}');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Characters MediaWiki strips from host names (RFC 8264 ignorable code points).
fn ignorable_in_host(c: char) -> bool {
    c.is_whitespace()
        || matches!(c as u32,
            0xAD | 0x34F | 0x61C | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180E
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
            | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF)
}

/// Whether every step of [`normalize_url_in_full`] leaves `url` as it is: it is printable
/// ASCII without a character reference (`&`), an escape (`%`), or a byte either step encodes
/// (which also rules out IPv6 hosts, written in brackets, and ignorable code points in the
/// host, which are not ASCII). Most links on a page are like that.
fn normal_already(url: &str) -> bool {
    url.bytes()
        .all(|b| b != b'&' && b != b'%' && !clean_url_encodes(b) && !link_url_encodes(b))
}

/// The bytes `Sanitizer::cleanUrl` percent-encodes.
fn clean_url_encodes(b: u8) -> bool {
    matches!(b, b'[' | b']' | b'<' | b'>' | b'"' | b'|' | 0..=0x20 | 0x7F)
}

/// The bytes `Parser::normalizeLinkUrl` percent-encodes.
fn link_url_encodes(b: u8) -> bool {
    matches!(b, 0..=0x20 | b'"' | b'<' | b'>' | b'[' | b'\\' | b']' | b'^' | b'`' | b'{' | b'|' | b'}' | 0x7F..=0xFF)
}

/// The URL as MediaWiki registers it: `Sanitizer::cleanUrl`, then `Parser::normalizeLinkUrl`.
fn normalize_url(p: &Patterns, url: &str) -> String {
    if normal_already(url) {
        return url.to_string();
    }
    normalize_url_in_full(p, url)
}

fn normalize_url_in_full(p: &Patterns, url: &str) -> String {
    // cleanUrl
    let url = decode_char_references(url);
    let url = encode_bytes(&url, clean_url_encodes, true);
    let url = match p.host.captures(&url) {
        Some(c) => {
            let (proto, host, rest) = (
                c.get(1).map_or("", |m| m.as_str()),
                c.get(2).map_or("", |m| m.as_str()),
                c.get(3).map_or("", |m| m.as_str()),
            );
            let mut host: String = host.chars().filter(|&c| !ignorable_in_host(c)).collect();
            if let Some(h) = p.encoded_ipv6_host.captures(&host) {
                host = format!("//[{}]{}", &h[1], &h[2]);
            }
            format!("{proto}{host}{rest}")
        }
        None => url,
    };
    // normalizeLinkUrl
    let ipv6 = p.ipv6_url.captures(&url).and_then(|c| {
        let raw = percent_decode(c.get(1)?.as_str());
        raw.parse::<std::net::IpAddr>().is_ok().then_some(raw)
    });
    let url = encode_bytes(&url, link_url_encodes, false);
    let mut end = url.len();
    let mut tail = String::new();
    if let Some(start) = url.find('#') {
        tail = normalize_component(&url[start..end], "\"#%<>[\\]^`{|}");
        end = start;
    }
    if let Some(start) = url[..end].find('?') {
        tail = normalize_component(&url[start..end], "\"#%<>[\\]^`{|}&=+;") + &tail;
        end = start;
    }
    let mut out = normalize_component(&url[..end], "\"#%<>[\\]^`{|}/?") + &tail;
    if let Some(ip) = ipv6 {
        let needle = format!("%5B{ip}%5D");
        if let Some(at) = out.find(&needle) {
            let after = &out[at + needle.len()..];
            if (after.is_empty() || after.starts_with([':', '/', '?', '#'])) && p.ipv6_prefix.is_match(&out[..at]) {
                out = format!("{}[{ip}]{after}", &out[..at]);
            }
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(0));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The external links of `wikitext`, each once, in order of first appearance.
pub fn extract_links(wikitext: &str) -> Vec<String> {
    let Some(p) = patterns() else {
        return Vec::new();
    };
    let text = if may_hold_skipped(wikitext) {
        p.skip.replace_all(wikitext, " ")
    } else {
        std::borrow::Cow::Borrowed(wikitext)
    };
    let text = mark_headings(&text);
    let text = blank_internal_links(&text);
    let text = mark_templates(&text);
    let text = mark_quotes(&text);
    let mut links: Vec<String> = Vec::new();
    // A page can hold hundreds of links: "each once" is a set lookup, not a scan of the list.
    let mut seen: HashSet<String> = HashSet::new();
    let mut push = |url: &str| {
        if has_host(url) {
            let url = normalize_url(p, url);
            if seen.insert(url.clone()) {
                links.push(url);
            }
        }
    };
    // Bracketed links first; their text is then no longer searched for free links (the
    // parser has turned it into an <a> element by then).
    let mut rest = String::with_capacity(text.len());
    let mut last = 0;
    for (all, url) in bracketed_links(p, &text) {
        push(url);
        rest.push_str(&text[last..all.start]);
        rest.push(' ');
        last = all.end;
    }
    rest.push_str(&text[last..]);
    for url in free_links(p, &rest) {
        push(url);
    }
    links
}

/// Whether `text` may hold what [`Patterns::skip`] removes: a `<` followed by `!--` or one of
/// the tag names (any case). Most pages have none, and a byte search for `<` that looks at the
/// next bytes rules them out faster than the pattern's own search.
fn may_hold_skipped(text: &str) -> bool {
    let b = text.as_bytes();
    memchr::memchr_iter(b'<', b).any(|i| {
        let after = &b[i + 1..];
        // Most `<` open a tag that is none of these (`<ref>`, `</ref>`, `<br>`): one look at
        // the next byte rules them out before the names are compared.
        let first = after.first().map_or(0, |c| c.to_ascii_lowercase());
        if !SKIPPED_FIRST_BYTES[usize::from(first)] {
            return false;
        }
        std::iter::once("!--").chain(SKIPPED_TAGS.split('|')).any(|o| {
            after
                .get(..o.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(o.as_bytes()))
        })
    })
}

/// The bracketed links of `text`, leftmost first and not overlapping: each one's span and
/// URL, as `\[(url)\p{Zs}*(text)\]` finds them left to right, in one pass over the text.
///
/// Every match starts at a `[`, so each `[` is tried in turn: its URL (the protocol, the
/// address and the URL characters after it) with an anchored pattern, then the rest by hand.
/// The link text's class holds every URL character and every `\p{Zs}`, and the lazy text
/// stops at the first `]`; so the match is the longest URL followed by everything up to the
/// first `]`, and there is none when a character the text refuses (a control other than tab,
/// U+FFFD) or the end comes first. No `[` before that character can start a match either (no
/// `]` lies between), so the search goes on after it: each byte is looked at a bounded
/// number of times, whatever the text.
fn bracketed_links<'t>(p: &Patterns, text: &'t str) -> Vec<(std::ops::Range<usize>, &'t str)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(k) = b.get(at..).and_then(|rest| memchr::memchr(b'[', rest)) {
        let i = at + k;
        let Some(url) = p.bracketed_url.find(&text[i + 1..]) else {
            at = i + 1;
            continue;
        };
        let url_end = i + 1 + url.end();
        match link_text_end(&b[url_end..]) {
            Ok(close) => {
                let end = url_end + close + 1;
                out.push((i..end, &text[i + 1..url_end]));
                at = end;
            }
            Err(refused) => at = url_end + refused,
        }
    }
    out
}

/// Where the link text after a bracketed link's URL ends: `Ok` with the offset of its `]`, or
/// `Err` with the offset of the first character the text refuses (or the end).
fn link_text_end(b: &[u8]) -> Result<usize, usize> {
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b']' => return Ok(i),
            0x00..=0x08 | 0x0A..=0x1F => return Err(i),
            // U+FFFD is EF BF BD in UTF-8.
            0xEF if b.get(i + 1..i + 3) == Some(&[0xBF, 0xBD]) => return Err(i),
            _ => i += 1,
        }
    }
    Err(b.len())
}

fn is_word_char(p: &Patterns, c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '_'
    } else {
        p.word_char.is_match(c.encode_utf8(&mut [0; 4]))
    }
}

/// The free links of `text`, in order, as the parser's `\b(?i:PROTOCOLS)…` finds them.
///
/// Every protocol is letters and a colon, and the `\b` before it means the character before
/// the protocol is not a word character. So a link can only start where a run of word
/// characters ending at a colon begins: each colon gives one place to try the anchored
/// pattern, instead of running the pattern over every byte of the text.
fn free_links<'t>(p: &Patterns, text: &'t str) -> Vec<&'t str> {
    let mut out = Vec::new();
    let mut at = 0; // matches may not start before this (the end of the previous one)
    let mut from = 0;
    while let Some(i) = memchr::memchr(b':', &text.as_bytes()[from..]) {
        let colon = from + i;
        from = colon + 1;
        let start = text[..colon]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_word_char(p, c))
            .last()
            .map_or(colon, |(i, _)| i);
        if start == colon || start < at {
            continue;
        }
        let Some(m) = p.free_anchored.find(&text[start..]) else {
            continue;
        };
        out.push(trim_free_link(m.as_str()));
        at = start + m.end().max(1);
        from = from.max(at);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_first_bytes_are_the_tags_first_letters() {
        let mut firsts: Vec<u8> = SKIPPED_TAGS.split('|').map(|t| t.as_bytes()[0]).collect();
        firsts.sort_unstable();
        firsts.dedup();
        let listed: Vec<u8> = (0..=255u8)
            .filter(|&b| SKIPPED_FIRST_BYTES[usize::from(b)] && b != b'!')
            .collect();
        assert_eq!(firsts, listed);
    }

    /// The patterns only the plain versions below use, which the scans replaced.
    struct Plain {
        bracketed: Regex,
        free: Regex,
        wikilink: Regex,
        template_tokens: Regex,
    }

    fn plain() -> &'static Plain {
        static P: OnceLock<Plain> = OnceLock::new();
        P.get_or_init(|| Plain {
            bracketed: Regex::new(&format!(
                r"\[({})\p{{Zs}}*([^\]\x00-\x08\x0a-\x1F\x{{FFFD}}]*?)\]",
                url_pattern(true)
            ))
            .unwrap(),
            free: Regex::new(&url_pattern(false)).unwrap(),
            wikilink: Regex::new(r"\[\[([^\[\]|]*)(?:\|[^\[\]]*)?\]\]").unwrap(),
            template_tokens: Regex::new(r"\{\{|\}\}|\|").unwrap(),
        })
    }

    /// The plain search `free_links` replaces: the unanchored pattern over the whole text,
    /// with the word boundary checked at each match.
    fn free_links_by_search<'t>(p: &Patterns, text: &'t str) -> Vec<&'t str> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(m) = plain().free.find_at(text, at) {
            let prev = text[..m.start()].chars().next_back();
            if prev.is_some_and(|c| p.word_char.is_match(c.encode_utf8(&mut [0; 4]))) {
                at = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
            out.push(trim_free_link(m.as_str()));
            at = m.end().max(m.start() + 1);
        }
        out
    }

    fn mark_quotes_by_chars(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut run = 0usize;
        let flush = |out: &mut String, run: usize| match run {
            0 => {}
            1 => out.push('\''),
            4 => out.push_str("'<"),
            n if n > 5 => {
                out.extend(std::iter::repeat_n('\'', n - 5));
                out.push('<');
            }
            _ => out.push('<'),
        };
        for c in text.chars() {
            if c == '\'' {
                run += 1;
            } else {
                flush(&mut out, run);
                run = 0;
                out.push(c);
            }
        }
        flush(&mut out, run);
        out
    }

    fn mark_templates_by_bytes(text: &str) -> String {
        let b = text.as_bytes();
        // Pair the braces first: only closed templates count.
        let mut blank = vec![false; b.len()];
        let mut open: Vec<usize> = Vec::new();
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        let mut i = 0;
        while i + 1 < b.len() {
            if b[i] == b'{' && b[i + 1] == b'{' {
                open.push(i);
                i += 2;
            } else if b[i] == b'}' && b[i + 1] == b'}' && !open.is_empty() {
                if let Some(start) = open.pop() {
                    pairs.push((start, i));
                }
                i += 2;
            } else {
                i += 1;
            }
        }
        for (start, end) in pairs {
            for x in [start, start + 1, end, end + 1] {
                blank[x] = true;
            }
            for (x, &c) in b.iter().enumerate().take(end).skip(start + 2) {
                if c == b'|' {
                    blank[x] = true;
                }
            }
        }
        // Only ASCII bytes (braces and pipes) are blanked, so the text stays UTF-8.
        let mut out = b.to_vec();
        for (o, &bl) in out.iter_mut().zip(&blank) {
            if bl {
                *o = b' ';
            }
        }
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    fn mark_headings_by_lines(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let lead = line.bytes().take_while(|&b| b == b'=').count().min(6);
            let body = line.trim_end_matches(|c: char| c.is_ascii_whitespace());
            let n = (1..=lead)
                .rev()
                .find(|&n| body.len() > 2 * n && body.ends_with(&"======"[..n]));
            match n {
                Some(n) => {
                    out.push('<');
                    out.push_str(&body[n..body.len() - n]);
                    out.push('<');
                }
                None => out.push_str(line),
            }
        }
        out
    }

    fn starts_with_protocol_by_list(s: &str) -> bool {
        let s = s.trim_start();
        protocol_list().iter().any(|p| starts_with_ignore_case(s, p))
    }

    /// The plain search `bracketed_links` replaces: the unanchored pattern with its URL group.
    fn bracketed_links_by_captures(text: &str) -> Vec<(std::ops::Range<usize>, &str)> {
        plain()
            .bracketed
            .captures_iter(text)
            .filter_map(|c| Some((c.get(0)?.range(), c.get(1)?.as_str())))
            .collect()
    }

    fn blank_internal_links_by_regex(text: &str) -> String {
        plain()
            .wikilink
            .replace_all(text, |c: &regex::Captures<'_>| {
                let target = c.get(1).map_or("", |m| m.as_str()).trim_start_matches([' ', ':']);
                let keep = starts_with_protocol(target)
                    || starts_with_ignore_case(target, "file:")
                    || starts_with_ignore_case(target, "image:");
                match (keep, c.get(0)) {
                    (true, Some(all)) => std::borrow::Cow::Owned(all.as_str().to_string()),
                    _ => std::borrow::Cow::Borrowed(" "),
                }
            })
            .into_owned()
    }

    #[test]
    fn passes_agree_with_their_plain_versions() {
        for t in [
            "''a'' '''b''' ''''c'''' '''''d''''' ''''''e'''''' x'",
            "{{a|b}} {{c|{{d|e}}|f}} }}{{ {{{x|y}}} | {{unclosed|z",
            "[[A]] [[B|c]] [[[C]]] [[File:x.png|cap http://x.y]] [[ :http://z.w]] [[a|[b]] ]]",
        ] {
            assert_eq!(mark_quotes(t), mark_quotes_by_chars(t), "{t}");
            assert_eq!(mark_templates(t), mark_templates_by_bytes(t), "{t}");
            assert_eq!(blank_internal_links(t), blank_internal_links_by_regex(t), "{t}");
        }
        let p = patterns().unwrap();
        for t in [
            "== A ==\n=B=\n==C== \t\n= x\n===\n====== Six ======\n======= Seven =======\n=\n",
            "=Lead=\r\ntext\n\n==\u{e9}t\u{e9}==",
            "[http://a.b c] [//x.y] [http://[::1]:80/p t] [mailto:x@y.z] [ftp://q\u{1}] [http://u\u{a0}\u{a0}t]]",
            "[[http://a.b]] [http://a.b [http://c.d e] f] [https://e.f/\u{fffd} g] [http://g.h\n i]",
        ] {
            assert_eq!(mark_headings(t), mark_headings_by_lines(t), "{t:?}");
            assert_eq!(bracketed_links(p, t), bracketed_links_by_captures(t), "{t:?}");
        }
        // Unclosed links on one long line: one pass, not a scan to the line's end per `[`.
        let flood = "[//a ".repeat(40_000);
        let t = std::time::Instant::now();
        assert!(bracketed_links(p, &flood).is_empty());
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "{:?}", t.elapsed());
        for t in [
            "a <!-- c --> b",
            "<NoWiki>x</nowiki>",
            "<pre>",
            "<ref>x</ref> <b>",
            "x <math>y",
            "<",
            "a<SOURCE lang=x>",
            "<\u{17f}ource>x</source>",
            "<nowi\u{212a}i/>",
        ] {
            let removed = p.skip.replace_all(t, " ");
            assert_eq!(
                may_hold_skipped(t),
                matches!(removed, std::borrow::Cow::Owned(_)),
                "{t}"
            );
        }
        for target in [
            "http://x",
            " //x",
            "worldwind://a",
            "Mircea",
            "File:x",
            "mailto:a",
            "x:http://",
            "WorldWind:",
        ] {
            assert_eq!(
                starts_with_protocol(target),
                starts_with_protocol_by_list(target),
                "{target}"
            );
        }
    }

    #[test]
    fn free_links_agree_with_the_plain_search() {
        let p = patterns().unwrap();
        for t in [
            "xhttp://a.com/http://b.com and sftp://c.org ftp://d.net",
            "HTTPS://UPPER.example mailto:me@x.org:tel:+1-555 news:comp.lang",
            "httpſ://long-s.example Kttp and ſftp://x.y", // Unicode case folding: ſ is s
            "12:30 at the station; urn:isbn:123 geo:1,2 a:b: :: ::http://x.y",
            "[[Category:Towns]] {{cite web|url=https://example.org/a?b=c|title=T}}",
            "ééhttp://x.y _http://z.w 1http://v.u (http://w.v) http://",
            "http://a.com:8080/x:y/http://b.com",
        ] {
            assert_eq!(free_links(p, t), free_links_by_search(p, t), "{t}");
        }
    }

    proptest::proptest! {
        #[test]
        fn passes_agree_on_generated_text(
            t in proptest::string::string_regex(
                r"([a-z: '|{}\[\]é]|\[\[|\]\]|\{\{|\}\}|http://|File:){0,40}"
            ).unwrap()
        ) {
            proptest::prop_assert_eq!(mark_quotes(&t), mark_quotes_by_chars(&t));
            proptest::prop_assert_eq!(mark_templates(&t), mark_templates_by_bytes(&t));
            proptest::prop_assert_eq!(blank_internal_links(&t), blank_internal_links_by_regex(&t));
        }

        #[test]
        fn headings_brackets_and_protocols_agree_on_generated_text(
            t in proptest::string::string_regex(
                "([a-z =\n\t\r\\[\\]:/\u{a0}\u{1}\u{fffd}é]|\n=|==|https?://|//|mailto:|worldwind:|\\[::1\\]){0,40}"
            ).unwrap()
        ) {
            let p = patterns().unwrap();
            proptest::prop_assert_eq!(mark_headings(&t), mark_headings_by_lines(&t));
            proptest::prop_assert_eq!(bracketed_links(p, &t), bracketed_links_by_captures(&t));
            proptest::prop_assert_eq!(starts_with_protocol(&t), starts_with_protocol_by_list(&t));
        }

        /// Text the skip pattern would change is never passed over.
        #[test]
        fn skipped_text_is_found(
            t in proptest::string::string_regex("([a-z <>/!-]|<!--|-->|<nowiki|<pre|<math|</pre>|NoWiki|<source){0,30}").unwrap()
        ) {
            let p = patterns().unwrap();
            if matches!(p.skip.replace_all(&t, " "), std::borrow::Cow::Owned(_)) {
                proptest::prop_assert!(may_hold_skipped(&t));
            }
        }

        #[test]
        fn free_links_agree_on_generated_text(
            t in proptest::string::string_regex(
                "([a-zA-Z_1ſK:/. é\\[\\]|=]|https?:|ftps?://|mailto:|tel:|news:){0,40}"
            ).unwrap()
        ) {
            let p = patterns().unwrap();
            proptest::prop_assert_eq!(free_links(p, &t), free_links_by_search(p, &t));
        }

        /// The byte search for template tokens finds what the regex finds.
        #[test]
        fn template_tokens_agree_with_the_regex(t in "[{}|a\\[\\]]{0,40}") {
            let by_regex: Vec<(usize, u8)> =
                plain().template_tokens.find_iter(&t).map(|m| (m.start(), t.as_bytes()[m.start()])).collect();
            proptest::prop_assert_eq!(template_tokens(t.as_bytes()).collect::<Vec<_>>(), by_regex);
        }

        /// The shortcut for URLs that need no normalising agrees with the full steps.
        #[test]
        fn urls_already_normal_come_back_unchanged(
            u in proptest::string::string_regex(
                "(https?|ftp|mailto|news|irc)(:|://)([a-zA-Z0-9._~:/?#@!$'()*+,;=&%\\[\\]<>\"|^`{}-]|\\\\| |\\u{e9}|\\u{a0}|\\u{200b}){0,40}"
            ).unwrap()
        ) {
            let p = patterns().unwrap();
            if normal_already(&u) {
                proptest::prop_assert_eq!(normalize_url_in_full(p, &u), u.clone());
            }
            proptest::prop_assert_eq!(normalize_url(p, &u), normalize_url_in_full(p, &u));
        }
    }

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
            ["http://example.com/?a=1&"]
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
    fn normalised_as_mediawiki_registers_them() {
        assert_eq!(
            extract_links("http://example.com/?a=1&amp;b"),
            ["http://example.com/?a=1&b"]
        );
        assert_eq!(
            extract_links("http://example.com/%7euser/%41"),
            ["http://example.com/~user/A"]
        );
        assert_eq!(
            extract_links("http://example.com/é|x"),
            ["http://example.com/%C3%A9%7Cx"]
        );
        assert_eq!(
            extract_links("http://example.com/a?x=%3d#%7e"),
            ["http://example.com/a?x=%3D#~"]
        );
        assert_eq!(extract_links("http://x.example/'''bold'''"), ["http://x.example/"]);
        assert_eq!(extract_links("== http://h.example/ =="), ["http://h.example/"]);
        assert!(extract_links("[[Page|http://not.example/]]").is_empty());
        assert_eq!(
            extract_links("[[File:X.png|thumb|http://cap.example/]]"),
            ["http://cap.example/"]
        );
        assert_eq!(
            extract_links("{{cite|url=http://c.example/a|title=x}}"),
            ["http://c.example/a"]
        );
        assert_eq!(extract_links("http://a.example/{{x"), ["http://a.example/%7B%7Bx"]);
        assert_eq!(extract_links("http://a.example/&#0;"), ["http://a.example/%EF%BF%BD"]);
    }

    #[test]
    fn ipv6_hosts() {
        assert_eq!(extract_links("http://[2001:db8::1]/x"), ["http://[2001:db8::1]/x"]);
    }
}
