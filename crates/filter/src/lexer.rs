//! The tokenizer: AbuseFilter's `AbuseFilterTokenizer`, rule for rule.
//!
//! Quirks kept on purpose because existing filters depend on them: keywords are lower-case
//! only (`IF` is an identifier, which the checker then refuses as a built-in); an identifier
//! may start with a digit (`1e5` is an identifier, there is no exponent syntax); a number
//! must not be followed by a word character; `\xHH` in a string makes a byte; an unknown
//! escape keeps its backslash.

use crate::error::SyntaxError;

/// What kind of token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// End of input.
    End,
    /// `,`
    Comma,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `;`
    Semicolon,
    /// An operator, e.g. `!==`, `**`, `:=`.
    Op(&'static str),
    /// A string literal's value.
    Str(String),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A lower-case keyword: in, like, true, false, null, contains, matches, rlike, irlike,
    /// regex, if, then, else, end.
    Keyword(&'static str),
    /// An identifier as written (case kept).
    Ident(String),
}

impl Tok {
    /// How the token is named in "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::End => "the end of the rule".into(),
            Tok::Comma => "`,`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Semicolon => "`;`".into(),
            Tok::Op(o) => format!("operator `{o}`"),
            Tok::Str(_) => "a string".into(),
            Tok::Int(i) => format!("the number {i}"),
            Tok::Float(f) => format!("the number {f}"),
            Tok::Keyword(k) => format!("keyword `{k}`"),
            Tok::Ident(i) => format!("identifier `{i}`"),
        }
    }
}

/// A token and where it starts and ends (byte offsets).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset after its last character.
    pub end: usize,
}

/// Operators, longest first where one is a prefix of another (AbuseFilter's `OPERATOR_RE` order).
const OPERATORS: &[&str] = &[
    "!==", "!=", "!", "**", "*", "/", "+", "-", "%", "&", "|", "^", ":=", "?", ":", "<=", "<", ">=", ">", "===", "==",
    "=",
];

/// The keywords, matched case-sensitively as AbuseFilter does.
pub const KEYWORDS: &[&str] = &[
    "in", "like", "true", "false", "null", "contains", "matches", "rlike", "irlike", "regex", "if", "then", "else",
    "end",
];

const WHITESPACE: &[u8] = b"\t\n\x0b\x0c\r ";

/// PCRE's `\s` without UCP (used by the comment-start rule).
fn is_pcre_space(b: u8) -> bool {
    WHITESPACE.contains(&b)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Splits a rule into tokens, ending with [`Tok::End`].
pub fn tokenize(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut lx = Lexer {
        src,
        b: src.as_bytes(),
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        let t = lx.next_token()?;
        let end = t.tok == Tok::End;
        out.push(t);
        if end {
            return Ok(out);
        }
    }
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn err(&self, offset: usize, code: &'static str, msg: impl Into<String>) -> SyntaxError {
        SyntaxError::new(self.src, offset, code, msg)
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    fn skip_comments(&mut self) -> Result<(), SyntaxError> {
        loop {
            let mut i = self.pos;
            while self.at(i).is_some_and(is_pcre_space) {
                i += 1;
            }
            if !(self.at(i) == Some(b'/') && self.at(i + 1) == Some(b'*')) {
                return Ok(());
            }
            // AbuseFilter searches for the closing `*/` from the comment's own `/`, so `/*/`
            // is a whole comment.
            match find(self.b, b"*/", i) {
                Some(close) => self.pos = close + 2,
                None => return Err(self.err(i, "unclosedcomment", "unclosed comment: add `*/` to end it")),
            }
        }
    }

    fn next_token(&mut self) -> Result<Token, SyntaxError> {
        self.skip_comments()?;
        while self.at(self.pos).is_some_and(|c| WHITESPACE.contains(&c)) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(c) = self.at(start) else {
            return Ok(Token {
                tok: Tok::End,
                start,
                end: start,
            });
        };
        let punct = match c {
            b',' => Some(Tok::Comma),
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            b';' => Some(Tok::Semicolon),
            _ => None,
        };
        if let Some(tok) = punct {
            self.pos += 1;
            return Ok(Token {
                tok,
                start,
                end: self.pos,
            });
        }
        if c == b'"' || c == b'\'' {
            return self.string(c);
        }
        if let Some(op) = OPERATORS.iter().find(|op| self.b[start..].starts_with(op.as_bytes())) {
            self.pos += op.len();
            return Ok(Token {
                tok: Tok::Op(op),
                start,
                end: self.pos,
            });
        }
        if let Some((tok, len)) = self.number(start) {
            self.pos += len;
            return Ok(Token {
                tok,
                start,
                end: self.pos,
            });
        }
        let mut i = start;
        while self.at(i).is_some_and(is_word) {
            i += 1;
        }
        if i > start {
            self.pos = i;
            let word = &self.src[start..i];
            let tok = match KEYWORDS.iter().find(|k| **k == word) {
                Some(k) => Tok::Keyword(k),
                None => Tok::Ident(word.to_string()),
            };
            return Ok(Token { tok, start, end: i });
        }
        let ch = self.src[start..].chars().next().unwrap_or('?');
        Err(self.err(start, "unrecognisedtoken", format!("unrecognized character `{ch}`")))
    }

    /// AbuseFilter's `RADIX_RE` with its backtracking: `(?:0[xbo])?` then a hex-digit run with
    /// an optional `.digits`, or `.digits`; not followed by a word character. The base's digit
    /// check is applied to the match afterwards; failing it makes the text an identifier.
    fn number(&self, start: usize) -> Option<(Tok, usize)> {
        let with_base = if self.at(start) == Some(b'0') {
            match self.at(start + 1) {
                Some(b'x') => Some(16),
                Some(b'b') => Some(2),
                Some(b'o') => Some(8),
                _ => None,
            }
        } else {
            None
        };
        let attempts: &[(u32, usize)] = match with_base {
            Some(base) => &[(base, 2), (10, 0)],
            None => &[(10, 0)],
        };
        for &(base, prefix) in attempts {
            let input_start = start + prefix;
            let Some(input_end) = self.radix_input(input_start) else {
                continue;
            };
            let input = &self.src[input_start..input_end];
            let ok = match base {
                2 => input.bytes().all(|c| c == b'0' || c == b'1'),
                8 => input.bytes().all(|c| (b'0'..=b'7').contains(&c)),
                16 => input.bytes().all(|c| c.is_ascii_hexdigit()),
                _ => input.bytes().all(|c| c.is_ascii_digit() || c == b'.'),
            };
            if !ok {
                return None;
            }
            let tok = if input.contains('.') {
                Tok::Float(
                    input
                        .parse::<f64>()
                        .unwrap_or_else(|_| crate::value::string_to_float(input)),
                )
            } else if base == 10 {
                Tok::Int(crate::value::string_to_int(input))
            } else {
                Tok::Int(parse_radix_saturating(input, base))
            };
            return Some((tok, input_end - start));
        }
        None
    }

    /// The end of the `input` group of `RADIX_RE` starting at `i`, if the regex can match there.
    fn radix_input(&self, i: usize) -> Option<usize> {
        let mut j = i;
        while self.at(j).is_some_and(|c| c.is_ascii_hexdigit()) {
            j += 1;
        }
        if j > i {
            // A shorter hex run would be followed by a hex digit, a word character, so only the
            // longest run can match; then the fraction is tried greedily, then without.
            if self.at(j) == Some(b'.') {
                let mut k = j + 1;
                while self.at(k).is_some_and(|c| c.is_ascii_digit()) {
                    k += 1;
                }
                if !self.at(k).is_some_and(is_word) {
                    return Some(k);
                }
                return Some(j);
            }
            return (!self.at(j).is_some_and(is_word)).then_some(j);
        }
        if self.at(i) == Some(b'.') {
            let mut k = i + 1;
            while self.at(k).is_some_and(|c| c.is_ascii_digit()) {
                k += 1;
            }
            if k > i + 1 && !self.at(k).is_some_and(is_word) {
                return Some(k);
            }
        }
        None
    }

    fn string(&mut self, quote: u8) -> Result<Token, SyntaxError> {
        let start = self.pos;
        let mut i = start + 1;
        let mut buf: Vec<u8> = Vec::new();
        while let Some(c) = self.at(i) {
            if c == quote {
                self.pos = i + 1;
                let s = match String::from_utf8(buf) {
                    Ok(s) => s,
                    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                };
                return Ok(Token {
                    tok: Tok::Str(s),
                    start,
                    end: self.pos,
                });
            }
            if c != b'\\' {
                buf.push(c);
                i += 1;
                continue;
            }
            let Some(next) = self.at(i + 1) else {
                return Err(self.err(start, "unclosedstring", "unclosed string: add the closing quote"));
            };
            match next {
                b'\\' => buf.push(b'\\'),
                b'n' => buf.push(b'\n'),
                b'r' => buf.push(b'\r'),
                b't' => buf.push(b'\t'),
                q if q == quote => buf.push(quote),
                b'x' => {
                    let hex = self.b.get(i + 2..i + 4).and_then(|h| std::str::from_utf8(h).ok());
                    match hex.filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) {
                        Some(h) => {
                            buf.push(u8::from_str_radix(h, 16).unwrap_or(0));
                            i += 2;
                        }
                        None => buf.extend_from_slice(b"\\x"),
                    }
                }
                other => {
                    buf.push(b'\\');
                    buf.push(other);
                }
            }
            i += 2;
        }
        Err(self.err(start, "unclosedstring", "unclosed string: add the closing quote"))
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// `intval(base_convert(...))`: values past `i64::MAX` saturate, as PHP's do.
fn parse_radix_saturating(digits: &str, base: u32) -> i64 {
    let mut acc: i64 = 0;
    for c in digits.chars() {
        let d = i64::from(c.to_digit(base).unwrap_or(0));
        acc = match acc.checked_mul(i64::from(base)).and_then(|a| a.checked_add(d)) {
            Some(v) => v,
            None => return i64::MAX,
        };
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src)
            .map(|v| v.into_iter().map(|t| t.tok).collect())
            .unwrap_or_default()
    }

    #[test]
    fn numbers_follow_abusefilters_radix_rule() {
        assert_eq!(toks("0x1F"), vec![Tok::Int(31), Tok::End]);
        assert_eq!(toks("0b11 0o17"), vec![Tok::Int(3), Tok::Int(15), Tok::End]);
        assert_eq!(toks("1.5.3"), vec![Tok::Float(1.5), Tok::Float(0.3), Tok::End]);
        assert_eq!(toks("1e20"), vec![Tok::Ident("1e20".into()), Tok::End]);
        assert_eq!(toks("0b12"), vec![Tok::Ident("0b12".into()), Tok::End]);
        assert_eq!(toks("99999999999999999999"), vec![Tok::Int(i64::MAX), Tok::End]);
        assert_eq!(toks("1."), vec![Tok::Float(1.0), Tok::End]);
        assert_eq!(toks(".5"), vec![Tok::Float(0.5), Tok::End]);
    }

    #[test]
    fn strings_keep_unknown_escapes() {
        assert_eq!(
            toks(r#""a\xb" 'it\'s' "\x41\n""#),
            vec![
                Tok::Str("a\\xb".into()),
                Tok::Str("it's".into()),
                Tok::Str("A\n".into()),
                Tok::End
            ]
        );
        assert_eq!(toks(r#""\xC3\xA9""#), vec![Tok::Str("é".into()), Tok::End]);
        assert_eq!(toks(r#""\d""#), vec![Tok::Str("\\d".into()), Tok::End]);
    }

    #[test]
    fn keywords_are_lower_case_only() {
        assert_eq!(
            toks("if IF"),
            vec![Tok::Keyword("if"), Tok::Ident("IF".into()), Tok::End]
        );
    }

    #[test]
    fn comments_and_errors() {
        assert_eq!(toks("/*/ 1"), vec![Tok::Int(1), Tok::End]);
        assert_eq!(tokenize("/* x").map_err(|e| e.code), Err("unclosedcomment"));
        assert_eq!(tokenize("'abc").map_err(|e| e.code), Err("unclosedstring"));
        assert_eq!(tokenize("'abc\\").map_err(|e| e.code), Err("unclosedstring"));
        assert_eq!(tokenize("1 @ 2").map_err(|e| e.code), Err("unrecognisedtoken"));
    }

    #[test]
    fn operators_take_the_longest_spelling() {
        assert_eq!(
            toks("a!==b"),
            vec![Tok::Ident("a".into()), Tok::Op("!=="), Tok::Ident("b".into()), Tok::End]
        );
        assert_eq!(
            toks("x:=2**3"),
            vec![
                Tok::Ident("x".into()),
                Tok::Op(":="),
                Tok::Int(2),
                Tok::Op("**"),
                Tok::Int(3),
                Tok::End
            ]
        );
    }
}
