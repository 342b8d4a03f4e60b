//! PHP `preg_*` regex semantics (PCRE2 10.42 with the `/u` modifier, optionally `i`) on Rust
//! regex engines.
//!
//! AbuseFilter hands every `rlike`/`irlike`/`get_matches`/`str_replace_regexp`/`rcount` pattern to
//! PHP as `'/' . munged . '/u'` (plus `i`), and `like` as `'#^' . … . '$#u'`. PHP's `/u` turns on
//! both `PCRE2_UTF` **and** `PCRE2_UCP`, so `\w \d \s \b` and the POSIX classes are *Unicode*
//! (PCRE2 10.42 flavour, which differs from Rust's), `.` is one code point, and caseless matching
//! uses Unicode simple case folding.
//!
//! The pattern is parsed here with PCRE2's grammar (including its compile errors) into a small
//! tree, and re-emitted for one of two engines:
//!
//! * **fast** — the linear-time `regex` crate, used whenever the tree only needs regular
//!   constructs. Three PCRE assertions have no exact `regex` equivalent but are exact on most
//!   haystacks: `$`/`\Z` (exact unless the haystack ends in `\n`), multi-line `^` (exact unless
//!   the haystack ends in `\n` and the match found reaches the end) and
//!   `\b \B [[:<:]] [[:>:]]` (exact unless the haystack holds a character on which Rust's and
//!   PCRE2's notion of a word character differ, e.g. combining marks). Those haystacks are
//!   routed to the exact engine, so results never depend on the engine chosen.
//! * **exact** — `fancy-regex` (backtracking), for backreferences, lookaround, atomic groups,
//!   possessive quantifiers, `\K`, `\G`, `\R`, and the haystacks above. It runs with a budget of
//!   [`BACKTRACK_LIMIT`] backtracking steps per search; an overrun is
//!   [`RegexError::BacktrackLimit`], as PHP's `PREG_BACKTRACK_LIMIT_ERROR` is.
//!
//! Before either engine runs, necessary conditions derived from the tree rule most haystacks
//! out cheaply: a set of literals one of which every match contains (searched with SIMD
//! substring search; for a caseless pattern in an ASCII-lowercased copy of the haystack, which
//! a caller searching one haystack with many patterns shares through [`HaystackFacts`]), a run
//! of `n` characters of one class (`[^\s]{150,}`), the run a whole match is when all it
//! consumes comes from a few literals and classes (`\b[A-Z]{2,}(\s+[A-Z]{2,}){5,}\b`), a period
//! (`(.)\1{10,}`), a repeated word.
//!
//! # Unsupported or approximate constructs
//! These are a clean [`RegexError::Compile`] whose message names the construct:
//! `\X`, `\C`, recursion and subroutine calls (`(?R)`, `(?1)`, `(?&n)`, `(?P>n)`, `\g<…>`),
//! conditionals `(?(…)…)`, branch reset `(?|…)`, callouts `(?C…)`, backtracking verbs other than
//! `(*FAIL)`/`(*F)` (`(*ACCEPT)`, `(*COMMIT)`, `(*SKIP)`, `(*PRUNE)`, `(*THEN)`, `(*MARK)`),
//! non-atomic assertions `(?*…)`/`(*napla:…)`, script runs, newline conventions other than LF
//! (`(*CR)` etc.), `(*NOTEMPTY…)`, `\K` inside an assertion, a backreference to a duplicated
//! group name, `\N{name}`, `\p{Bidi_Class:…}`, and Unicode
//! properties PCRE2 knows but the `regex` crate does not. A construct that `fancy-regex` itself
//! rejects is also a compile error.
//!
//! Approximations (results may differ from PHP):
//! * Unicode data is the `regex` crate's (Unicode 16), PCRE2 10.42 has Unicode 14. Every class
//!   (`\w \d \s \h \v`, POSIX, `\p{…}`: general categories, binary properties, scripts and
//!   their extensions, `\p{Unknown}`, `\p{Cs}`) is made PCRE2's on every code point, the
//!   characters assigned since Unicode 14 included (`ASSIGNED_SINCE_14` and the fix tables,
//!   checked by the ignored test `unicode_properties_match_php`), and classes and simple
//!   caseless literals were checked caselessly against PHP on characters of Unicode 14. Case
//!   folding is PCRE2's too on the pairs Rust has and PCRE2 10.42 has not (newer than
//!   Unicode 14, and U+1FD3/U+0390, U+1FE3/U+03B0, U+FB05/U+FB06): caseless literals and
//!   classes of those characters match only themselves (`(?i)[\x{264}]` matches U+0264 alone).
//! * Caseless backreferences use `fancy-regex`'s folding: `(k)\1`/`(s)\1` do not accept the
//!   Kelvin sign or long s as PHP does.
//! * A capture group inside a repeat whose last iteration matches empty keeps the previous
//!   iteration's text (`(a|)*` on `ab` gives `$1 = "a"`, PHP gives `""`).
//! * The backtracking budget counts `fancy-regex` steps, not PCRE2's, and the linear engine
//!   never runs out: `(a+)+$` on 30 `a`s and a `!` is `PREG_BACKTRACK_LIMIT_ERROR` in PHP but a
//!   correct non-match here; likewise the exact engine is preceded by a linear-time necessary
//!   condition (the pattern with assertions and lookaround dropped, backreferences replaced by
//!   their group's sub-pattern, plus a periodicity scan for `(…)\1{n,}`), so
//!   `^(\w+\s?)*(?<=q)!` on 100 KB of `a` without any `!` is a non-match here, a
//!   `PREG_BACKTRACK_LIMIT_ERROR` in PHP; PHP's JIT also fails `(?:a|b)*c` on 200 KB with
//!   `PREG_JIT_STACKLIMIT_ERROR`, which matches here.
//! * `(*LIMIT_MATCH=…)`, `(*LIMIT_DEPTH=…)`, `(*LIMIT_HEAP=…)` are accepted and ignored; a huge
//!   counted repetition PCRE2 accepts may exceed this module's size limit (compile error).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// Budget of backtracking steps for one search on the exact engine. PHP's default
/// `pcre.backtrack_limit` is 1,000,000; `fancy-regex` counts every retried branch (including
/// every new start position), so the same figure keeps a pathological search to a few tens of
/// milliseconds while leaving ordinary lookaround patterns room on 100 KB haystacks.
pub const BACKTRACK_LIMIT: usize = 1_000_000;

/// Bound on the compiled size of one pattern, so that a huge repetition such as `\w{60000}` is a
/// compile error rather than an unbounded allocation.
const SIZE_LIMIT: usize = 16 << 20;
/// Bound on each lazy DFA's cache; beyond it the `regex` crate falls back to slower engines
/// instead of growing.
const DFA_SIZE_LIMIT: usize = 8 << 20;
/// PCRE2's default `PARENS_NEST_LIMIT`; it also bounds the recursion of this module's parser.
const NEST_LIMIT: usize = 250;
/// PCRE2's limit on quantifier bounds.
const MAX_REPEAT: u32 = 65_535;
/// PCRE2's limit on a group name, in UTF-8 code units.
const MAX_NAME_BYTES: usize = 32;

/// Why a pattern cannot be used; both variants are AbuseFilter's `regexfailure`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegexError {
    /// The pattern does not compile (PHP's preg_* would return false/null: AbuseFilter's
    /// `regexfailure`), or uses a PCRE construct this module cannot reproduce faithfully.
    #[error("regular expression does not compile: {message}")]
    Compile {
        /// PCRE2-style description of the problem.
        message: String,
    },
    /// Matching exceeded the backtracking budget (PHP: PREG_BACKTRACK_LIMIT_ERROR, also
    /// `regexfailure`).
    #[error("regular expression exceeded the backtracking limit")]
    BacktrackLimit,
}

fn err<T>(message: impl Into<String>) -> Result<T, RegexError> {
    Err(RegexError::Compile {
        message: message.into(),
    })
}

fn unsupported<T>(what: &str) -> Result<T, RegexError> {
    err(format!("unsupported PCRE construct: {what}"))
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// One compiled pattern. Cloning is cheap (shared inner state).
#[derive(Clone, Debug)]
pub struct Regex {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    fast: Option<regex::Regex>,
    exact: Option<fancy_regex::Regex>,
    /// `\G(?:exact)` rejecting empty matches: PHP's `PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED`
    /// retry after an empty match, needed only when that retry can succeed.
    retry: Option<fancy_regex::Regex>,
    /// The fast engine is inexact on haystacks ending in `\n`.
    dep_final_newline: bool,
    /// The fast engine's multi-line `^` also matches at the end of a haystack ending in `\n`,
    /// PCRE2's does not; a fast match that does not reach the end is still exact (PCRE2's
    /// matches are a subset, and the path found uses no assertion past its end).
    dep_line_start: bool,
    /// Finds characters on which Rust's `\b` disagrees with PCRE2's; present iff the fast engine
    /// uses `\b`-like assertions.
    word_disagreement: Option<regex::Regex>,
    /// A cheap necessary condition checked before the engines above, for patterns whose exact
    /// search is slow (exact engine, or Unicode `\b` that keeps the `regex` crate off its DFA).
    prefilter: Option<Prefilter>,
    /// The whole pattern is one case-sensitive ASCII character or class (`[^A-Z]`): matches
    /// are single characters, found without a regex engine.
    single: Option<AsciiSet>,
    /// Literals every match contains (see [`Required`]).
    required: Option<Required>,
    /// A run of characters every match contains (see [`MinRun`]).
    min_run: Option<MinRun>,
    /// A run every match is (see [`build_whole_run`]).
    whole_run: Option<MinRun>,
    group_count: usize,
    names: Arc<[(String, usize)]>,
    matches_empty: bool,
}

/// Where a key of PHP's `$matches` array comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MatchKey {
    /// Numeric key: the group number.
    Index(usize),
    /// String key: a group name.
    Name(String),
}

/// The result of a successful `preg_match` with `$matches`.
#[derive(Debug, Clone, PartialEq)]
pub struct Captures {
    groups: Vec<Option<String>>,
    names: Arc<[(String, usize)]>,
}

impl Captures {
    /// Groups as PHP counts them: index 0 is the whole match, trailing unmatched groups are
    /// already dropped, `None` is an unmatched group in the middle (PHP reports `""`).
    pub fn groups(&self) -> &[Option<String>] {
        &self.groups
    }

    /// Number of entries PHP puts under numeric keys.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Never true: group 0 always exists.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Group `i` as PHP reports it (`""` for an unmatched group in the middle), `None` past the
    /// end.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.groups.get(i).map(|g| g.as_deref().unwrap_or_default())
    }

    /// Named groups of the pattern with their numbers, in pattern order (a name may repeat
    /// under `(?J)`).
    pub fn names(&self) -> &[(String, usize)] {
        &self.names
    }

    /// `$matches` exactly as PHP builds it: for each group in order, its name (if any) then its
    /// number; a repeated name keeps its first position and takes the later value.
    pub fn php_matches(&self) -> Vec<(MatchKey, String)> {
        let mut out: Vec<(MatchKey, String)> = Vec::with_capacity(self.groups.len() * 2);
        for (i, g) in self.groups.iter().enumerate() {
            let value = g.clone().unwrap_or_default();
            for (name, _) in self.names.iter().filter(|(_, idx)| *idx == i) {
                let key = MatchKey::Name(name.clone());
                match out.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = value.clone(),
                    None => out.push((key, value.clone())),
                }
            }
            out.push((MatchKey::Index(i), value));
        }
        out
    }
}

impl Regex {
    /// `pattern` is the raw text an AbuseFilter rule gives to rlike/irlike/get_matches/
    /// str_replace_regexp (WITHOUT delimiters); caseless = the `i` modifier (irlike).
    pub fn new(pattern: &str, caseless: bool) -> Result<Regex, RegexError> {
        let body = munge(pattern)?;
        Regex::from_pcre_body(&body, caseless)
    }

    /// Like [`Regex::new`] but for an already-PCRE pattern body that needs no slash munging
    /// (used for `like`, see [`like_to_pcre_body`]).
    pub fn from_pcre_body(body: &str, caseless: bool) -> Result<Regex, RegexError> {
        build(body, caseless)
    }

    /// AbuseFilter's `like`/`matches` operator: `'#^' . strtr(preg_quote(p, '#'), WILDCARD_MAP)
    /// . '$#u'`, always case-sensitive.
    pub fn like(pattern: &str) -> Result<Regex, RegexError> {
        Regex::from_like_body(&like_to_pcre_body(pattern))
    }

    /// [`Regex::like`] from the body [`like_to_pcre_body`] made.
    fn from_like_body(body: &str) -> Result<Regex, RegexError> {
        // PHP's delimiter scan: the WILDCARD_MAP can turn `\#` into `\\#`, whose `#` then
        // closes the pattern early and the rest is read as (invalid) modifiers.
        let mut bytes = body.bytes();
        while let Some(b) = bytes.next() {
            match b {
                b'\\' => {
                    bytes.next();
                }
                b'#' => return err("Unknown modifier after '#' delimiter"),
                _ => {}
            }
        }
        Regex::from_pcre_body(body, false)
    }

    /// Whether the literal prefilter compares an ASCII-lowercased copy of the haystack: callers
    /// that search one haystack with many patterns can lowercase it once and pass it to the
    /// `*_in` methods.
    pub fn prefilter_folds(&self) -> bool {
        self.inner.required.as_ref().is_some_and(|r| r.folded)
    }

    /// The literal prefilter's strings (lossy UTF-8), for tests and diagnostics.
    #[doc(hidden)]
    pub fn prefilter_literals(&self) -> Option<(bool, Vec<String>)> {
        let req = self.inner.required.as_ref()?;
        Some((
            req.folded,
            req.literals
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect(),
        ))
    }

    /// A cheap necessary condition: `false` when no search of this pattern can match
    /// `haystack`. `facts`, if given, must have been made for this `haystack`.
    pub fn may_match(&self, haystack: &str, facts: Option<&HaystackFacts>) -> bool {
        for run in [&self.inner.min_run, &self.inner.whole_run].into_iter().flatten() {
            if !run.found(haystack.as_bytes()) {
                return false;
            }
        }
        let Some(req) = &self.inner.required else {
            return true;
        };
        let owned;
        let hay: &[u8] = match (req.folded, facts) {
            (false, _) => haystack.as_bytes(),
            (true, Some(f)) => f.folded(haystack).as_bytes(),
            (true, None) => {
                owned = fold_haystack(haystack);
                owned.as_bytes()
            }
        };
        req.stages.iter().all(|s| s.is_match(hay))
    }

    /// `preg_match` without captures.
    pub fn is_match(&self, haystack: &str) -> Result<bool, RegexError> {
        self.is_match_in(haystack, None)
    }

    /// [`Regex::is_match`] with the haystack's ASCII-lowercased copy, if the caller has it.
    pub fn is_match_in(&self, haystack: &str, facts: Option<&HaystackFacts>) -> Result<bool, RegexError> {
        if !self.may_match(haystack, facts) {
            return Ok(false);
        }
        if let Some(found) = self.match_at_candidates(haystack) {
            return found;
        }
        let Some(start) = self.lower_bound(haystack) else {
            return Ok(false);
        };
        match self.engine(haystack, facts) {
            Engine::Fast(re) => Ok(re.is_match_at(haystack, start)),
            // Some match ends before the end of the haystack: PCRE2 accepts its path too.
            Engine::FastChecked(re, exact) => match re.shortest_match_at(haystack, start) {
                None => Ok(false),
                Some(end) if end < haystack.len() => Ok(true),
                Some(_) => Ok(exact.find_from_pos(haystack, start).map_err(runtime_err)?.is_some()),
            },
            Engine::Exact(re) if start == 0 => re.is_match(haystack).map_err(runtime_err),
            Engine::Exact(re) => Ok(re.find_from_pos(haystack, start).map_err(runtime_err)?.is_some()),
            Engine::None => Ok(false),
        }
    }

    /// For `\b(\w+)\s+\1`-like patterns: every place a match can start is known, and few;
    /// the exact engine tries only those. `None` when this does not apply.
    fn match_at_candidates(&self, haystack: &str) -> Option<Result<bool, RegexError>> {
        let inner = &*self.inner;
        let pre = inner.prefilter.as_ref()?;
        let rw = pre.repeated_word.filter(|rw| rw.leading && pre.can_skip)?;
        let exact = inner.exact.as_ref().filter(|_| inner.fast.is_none())?;
        let starts = repeated_word_starts(haystack, rw, MAX_CANDIDATES + 1);
        if starts.len() > MAX_CANDIDATES {
            return None;
        }
        for at in starts {
            let input = fancy_regex::RegexInput::new(haystack).from_pos(at).anchored(true);
            match exact.is_match_input(input) {
                Ok(true) => return Some(Ok(true)),
                Ok(false) => {}
                Err(e) => return Some(Err(runtime_err(e))),
            }
        }
        Some(Ok(false))
    }

    /// `None` when the prefilter rules a match out, else a byte offset (on a character
    /// boundary) before which no match starts.
    fn lower_bound(&self, haystack: &str) -> Option<usize> {
        match &self.inner.prefilter {
            Some(p) if p.only_final_newline && !haystack.ends_with('\n') => Some(0),
            Some(p) => p.lower_bound(haystack).filter(|&at| haystack.is_char_boundary(at)),
            None => Some(0),
        }
    }

    /// preg_match with $matches: None if no match; else the groups as preg_match fills
    /// $matches.
    pub fn captures(&self, haystack: &str) -> Result<Option<Captures>, RegexError> {
        self.captures_in(haystack, None)
    }

    /// [`Regex::captures`] with the haystack's ASCII-lowercased copy, if the caller has it.
    pub fn captures_in(&self, haystack: &str, facts: Option<&HaystackFacts>) -> Result<Option<Captures>, RegexError> {
        if !self.may_match(haystack, facts) {
            return Ok(None);
        }
        let Some(start) = self.lower_bound(haystack) else {
            return Ok(None);
        };
        let mut slots = Vec::new();
        if !self.captures_at(self.engine(haystack, facts), haystack, start, &mut slots)? {
            return Ok(None);
        }
        let last = slots.iter().rposition(Option::is_some).unwrap_or(0);
        let groups = slots
            .iter()
            .take(last + 1)
            .map(|s| s.and_then(|(a, b)| haystack.get(a..b)).map(str::to_owned))
            .collect();
        Ok(Some(Captures {
            groups,
            names: Arc::clone(&self.inner.names),
        }))
    }

    /// preg_replace($pattern, $replacement, $subject) with PHP's replacement syntax: `$n`,
    /// `${n}`, `\n` (n up to 99), `\\` and `\$` escapes, everything else literal.
    pub fn replace_all(&self, haystack: &str, replacement: &str) -> Result<String, RegexError> {
        self.replace_all_in(haystack, None, replacement)
    }

    /// [`Regex::replace_all`] with the haystack's ASCII-lowercased copy, if the caller has it.
    pub fn replace_all_in(
        &self,
        haystack: &str,
        facts: Option<&HaystackFacts>,
        replacement: &str,
    ) -> Result<String, RegexError> {
        if !self.may_match(haystack, facts) {
            return Ok(haystack.to_owned());
        }
        let parts = parse_replacement(replacement);
        if let Some(set) = &self.inner.single {
            // Byte by byte: an ASCII byte is one character, a non-ASCII character is never in
            // the (ASCII) table.
            let bytes = haystack.as_bytes();
            let mut out: Vec<u8> = Vec::with_capacity(haystack.len());
            let mut i = 0;
            if parts.is_empty() {
                // Deleting: copy every byte, advancing only past the kept ones (no branch on the
                // table, whose answers alternate unpredictably on text).
                let mut buf = vec![0u8; bytes.len()];
                let mut w = 0;
                // 1 for an ASCII byte that is kept (a table lookup, faster here than the
                // comparison it stands for).
                let mut keep = [0u8; 128];
                for (k, &t) in keep.iter_mut().zip(&set.table) {
                    *k = u8::from(t == set.negated);
                }
                let kept = |b: u8| usize::from(keep[usize::from(b & 0x7F)]);
                while let Some(&b) = bytes.get(i) {
                    // Eight ASCII bytes at a time, written into a window that has room for all.
                    if let (Some(chunk), Some(dst)) = (bytes.get(i..i + 8), buf.get_mut(w..w + 8)) {
                        if chunk.iter().all(u8::is_ascii) {
                            let mut j = 0;
                            for &c in chunk {
                                dst[j.min(7)] = c;
                                j += kept(c);
                            }
                            w += j;
                            i += 8;
                            continue;
                        }
                    }
                    if b.is_ascii() {
                        buf[w] = b;
                        w += kept(b);
                        i += 1;
                    } else {
                        let n = utf8_len(b);
                        if !set.negated {
                            buf[w..w + n].copy_from_slice(bytes.get(i..i + n).unwrap_or_default());
                            w += n;
                        }
                        i += n;
                    }
                }
                buf.truncate(w);
                return Ok(
                    String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
                );
            }
            while let Some(&b) = bytes.get(i) {
                if b.is_ascii() && set.table[usize::from(b)] == set.negated {
                    out.push(b);
                    i += 1;
                    continue;
                }
                let n = utf8_len(b);
                let hit = if b.is_ascii() { set.table[usize::from(b)] } else { false } != set.negated;
                let ch = bytes.get(i..i + n).unwrap_or_default();
                if hit {
                    for part in &parts {
                        match part {
                            ReplPart::Lit(s) => out.extend_from_slice(s.as_bytes()),
                            ReplPart::Group(0) => out.extend_from_slice(ch),
                            ReplPart::Group(_) => {}
                        }
                    }
                } else {
                    out.extend_from_slice(ch);
                }
                i += n;
            }
            // Whole characters and whole strings were copied: always valid UTF-8.
            return Ok(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()));
        }
        let mut out = String::with_capacity(haystack.len());
        let mut copied = 0;
        self.for_each_match(haystack, facts, |slots| {
            if let Some(Some((start, end))) = slots.first().copied() {
                out.push_str(haystack.get(copied..start).unwrap_or_default());
                for part in &parts {
                    match part {
                        ReplPart::Lit(s) => out.push_str(s),
                        ReplPart::Group(n) => {
                            if let Some(Some((a, b))) = slots.get(*n).copied() {
                                out.push_str(haystack.get(a..b).unwrap_or_default());
                            }
                        }
                    }
                }
                copied = end.max(copied);
            }
        })?;
        out.push_str(haystack.get(copied..).unwrap_or_default());
        Ok(out)
    }

    /// preg_match_all's return value (AbuseFilter's `rcount`).
    pub fn count_matches(&self, haystack: &str) -> Result<usize, RegexError> {
        self.count_matches_in(haystack, None)
    }

    /// [`Regex::count_matches`] with the haystack's ASCII-lowercased copy, if the caller has it.
    pub fn count_matches_in(&self, haystack: &str, facts: Option<&HaystackFacts>) -> Result<usize, RegexError> {
        if !self.may_match(haystack, facts) {
            return Ok(0);
        }
        if let Some(set) = &self.inner.single {
            let hits = haystack
                .bytes()
                .filter(|&b| set.table.get(usize::from(b)).copied().unwrap_or(false))
                .count();
            return Ok(if set.negated {
                haystack.chars().count() - hits
            } else {
                hits
            });
        }
        let mut n = 0;
        self.for_each_match(haystack, facts, |_| n += 1)?;
        Ok(n)
    }

    /// Number of capture groups in the pattern (not counting group 0).
    pub fn group_count(&self) -> usize {
        self.inner.group_count
    }

    /// Named groups with their numbers, in pattern order.
    pub fn group_names(&self) -> &[(String, usize)] {
        &self.inner.names
    }

    /// Whether the pattern matches the empty string (AbuseFilter warns 'match-empty-regex');
    /// a search on `""` that fails at run time counts as no match, as PHP's `=== 1` does.
    pub fn matches_empty(&self) -> bool {
        self.inner.matches_empty
    }

    fn engine(&self, haystack: &str, facts: Option<&HaystackFacts>) -> Engine<'_> {
        let inner = &*self.inner;
        if let Some(fast) = &inner.fast {
            let newline_ok = !inner.dep_final_newline || !haystack.ends_with('\n');
            let words_ok = match &inner.word_disagreement {
                None => true,
                Some(check) => !match facts {
                    Some(f) => *f
                        .word_disagreement
                        .get_or_init(|| has_word_disagreement(check, haystack)),
                    None => has_word_disagreement(check, haystack),
                },
            };
            if newline_ok && words_ok {
                if inner.dep_line_start && haystack.ends_with('\n') {
                    if let Some(exact) = &inner.exact {
                        return Engine::FastChecked(fast, exact);
                    }
                }
                return Engine::Fast(fast);
            }
        }
        match &inner.exact {
            Some(exact) => Engine::Exact(exact),
            // Unreachable by construction (build() always keeps an engine that is exact for
            // every haystack); falling back to the fast one is the least surprising choice.
            None => match &inner.fast {
                Some(fast) => Engine::Fast(fast),
                None => Engine::None,
            },
        }
    }

    /// Searches from byte offset `start` (earlier text still visible to lookbehind) and fills
    /// `slots` with every group's span.
    fn captures_at(
        &self,
        engine: Engine<'_>,
        haystack: &str,
        start: usize,
        slots: &mut Vec<Option<(usize, usize)>>,
    ) -> Result<bool, RegexError> {
        slots.clear();
        match engine {
            Engine::Fast(re) => {
                let mut locs = re.capture_locations();
                if re.captures_read_at(&mut locs, haystack, start).is_none() {
                    return Ok(false);
                }
                slots.extend((0..locs.len()).map(|i| locs.get(i)));
                Ok(true)
            }
            Engine::FastChecked(re, exact) => {
                let mut locs = re.capture_locations();
                match re.captures_read_at(&mut locs, haystack, start) {
                    None => Ok(false),
                    Some(m) if m.end() < haystack.len() => {
                        slots.extend((0..locs.len()).map(|i| locs.get(i)));
                        Ok(true)
                    }
                    Some(_) => fancy_captures(exact, haystack, start, slots),
                }
            }
            Engine::Exact(re) => fancy_captures(re, haystack, start, slots),
            Engine::None => Ok(false),
        }
    }

    /// PHP's preg_replace/preg_match_all loop: after an empty match it retries at the same
    /// offset anchored and non-empty, and only then moves one character on.
    fn for_each_match(
        &self,
        haystack: &str,
        facts: Option<&HaystackFacts>,
        mut f: impl FnMut(&[Option<(usize, usize)>]),
    ) -> Result<(), RegexError> {
        let Some(mut start) = self.lower_bound(haystack) else {
            return Ok(());
        };
        let engine = self.engine(haystack, facts);
        let mut slots = Vec::new();
        let mut after_empty = false;
        loop {
            let found = if after_empty {
                match &self.inner.retry {
                    Some(retry) => fancy_captures(retry, haystack, start, &mut slots)?,
                    None => false,
                }
            } else {
                self.captures_at(engine, haystack, start, &mut slots)?
            };
            if found {
                let Some(Some((s, e))) = slots.first().copied() else {
                    return Ok(());
                };
                f(&slots);
                after_empty = s == e;
                if e < start || (e == start && !after_empty) {
                    // Defensive: never loop without progress.
                    return Ok(());
                }
                start = e;
            } else if after_empty && start < haystack.len() {
                start += haystack
                    .get(start..)
                    .and_then(|rest| rest.chars().next())
                    .map_or(1, char::len_utf8);
                after_empty = false;
            } else {
                return Ok(());
            }
        }
    }
}

/// Whether `haystack` holds a character on which Rust's and PCRE2's `\b` disagree (`check`
/// finds them). It depends on the haystack alone: callers searching one haystack with many
/// patterns keep the answer in [`HaystackFacts`].
fn has_word_disagreement(check: &regex::Regex, haystack: &str) -> bool {
    // Only non-ASCII characters can be in the set: test each maximal run of them.
    let b = haystack.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while b.get(i..i + 32).is_some_and(<[u8]>::is_ascii) {
            i += 32;
        }
        match b.get(i) {
            Some(&c) if c.is_ascii() => i += 1,
            Some(_) => {
                let start = i;
                while b.get(i).is_some_and(|c| !c.is_ascii()) {
                    i += 1;
                }
                if haystack.get(start..i).is_some_and(|run| check.is_match(run)) {
                    return true;
                }
            }
            None => break,
        }
    }
    false
}

/// What the searches of one haystack can share, whatever the pattern: its ASCII-lowercased
/// copy (for caseless literal prefilters) and whether it holds characters on which the fast
/// engine's `\b` is inexact. Computed on first use; the caller keeps one per haystack (for
/// one action) and must pass it only with that haystack.
#[derive(Debug, Default)]
pub struct HaystackFacts {
    folded: std::sync::OnceLock<Box<str>>,
    word_disagreement: std::sync::OnceLock<bool>,
}

impl HaystackFacts {
    /// Facts not yet computed.
    pub fn new() -> HaystackFacts {
        HaystackFacts::default()
    }

    fn folded(&self, haystack: &str) -> &str {
        self.folded.get_or_init(|| fold_haystack(haystack).into_boxed_str())
    }
}

#[derive(Clone, Copy)]
enum Engine<'a> {
    Fast(&'a regex::Regex),
    /// The fast engine, exact unless its match reaches the end (then the exact engine).
    FastChecked(&'a regex::Regex, &'a fancy_regex::Regex),
    Exact(&'a fancy_regex::Regex),
    None,
}

fn runtime_err(_: fancy_regex::Error) -> RegexError {
    // Stack exhaustion in fancy-regex is the same kind of resource failure as PHP's
    // backtrack/JIT-stack errors, which AbuseFilter reports identically.
    RegexError::BacktrackLimit
}

fn fancy_captures(
    re: &fancy_regex::Regex,
    haystack: &str,
    start: usize,
    slots: &mut Vec<Option<(usize, usize)>>,
) -> Result<bool, RegexError> {
    slots.clear();
    match re.captures_from_pos(haystack, start).map_err(runtime_err)? {
        None => Ok(false),
        Some(caps) => {
            slots.extend((0..caps.len()).map(|i| caps.get(i).map(|m| (m.start(), m.end()))));
            Ok(true)
        }
    }
}

/// PHP `preg_quote($s)` with no delimiter argument (AbuseFilter's `rescape`).
pub fn preg_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '.' | '\\' | '+' | '*' | '?' | '[' | '^' | ']' | '$' | '(' | ')' | '{' | '}' | '=' | '!' | '<' | '>'
            | '|' | ':' | '-' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\000"),
            _ => out.push(c),
        }
    }
    out
}

/// The PCRE body AbuseFilter's `like` builds: `'^' . strtr(preg_quote($p, '#'), WILDCARD_MAP)
/// . '$'` (`#` is already quoted by `preg_quote`).
pub fn like_to_pcre_body(pattern: &str) -> String {
    const WILDCARD_MAP: [(&str, &str); 9] = [
        ("\\*", ".*"),
        ("\\+", "\\+"),
        ("\\-", "\\-"),
        ("\\.", "\\."),
        ("\\?", "."),
        ("\\[", "["),
        ("\\[\\!", "[^"),
        ("\\", "\\\\"),
        ("\\]", "]"),
    ];
    let quoted = preg_quote(pattern);
    let mut out = String::with_capacity(quoted.len() + 2);
    out.push('^');
    let mut rest = quoted.as_str();
    while !rest.is_empty() {
        // strtr(): at each position the longest key wins, replaced text is not rescanned.
        let best = WILDCARD_MAP
            .iter()
            .filter(|(k, _)| rest.starts_with(k))
            .max_by_key(|(k, _)| k.len());
        match best {
            Some((k, v)) => {
                out.push_str(v);
                rest = rest.get(k.len()..).unwrap_or_default();
            }
            None => {
                let mut chars = rest.chars();
                if let Some(c) = chars.next() {
                    out.push(c);
                }
                rest = chars.as_str();
            }
        }
    }
    out.push('$');
    out
}

/// A bounded, thread-safe cache of compiled patterns (compile errors included), keyed by
/// `(pattern, caseless)`; least recently used entries go first.
#[derive(Debug)]
pub struct RegexCache {
    capacity: usize,
    state: Mutex<CacheState>,
}

/// One pattern's compiled forms, by `kind * 2 + caseless as usize` (kinds: a munged `rlike`
/// pattern, a PCRE body, a `like` body), each with the tick of its last use.
type Slots = [Option<(u64, Result<Arc<Regex>, RegexError>)>; 6];

const MUNGED: usize = 0;
const BODY: usize = 1;
const LIKE: usize = 2;

#[derive(Debug, Default)]
struct CacheState {
    tick: u64,
    /// Keyed by the pattern text alone, so a lookup needs no allocation.
    map: crate::fasthash::FxMap<Box<str>, Slots>,
    entries: usize,
}

impl RegexCache {
    /// A cache holding at most `capacity` patterns (at least one).
    pub fn new(capacity: usize) -> RegexCache {
        RegexCache {
            capacity: capacity.max(1),
            state: Mutex::new(CacheState::default()),
        }
    }

    /// [`Regex::new`], memoised.
    pub fn get_or_compile(&self, pattern: &str, caseless: bool) -> Result<Arc<Regex>, RegexError> {
        self.get_or(MUNGED, pattern, caseless, || Regex::new(pattern, caseless))
    }

    /// [`Regex::from_pcre_body`], memoised separately from munged patterns.
    pub fn get_or_compile_body(&self, body: &str, caseless: bool) -> Result<Arc<Regex>, RegexError> {
        self.get_or(BODY, body, caseless, || Regex::from_pcre_body(body, caseless))
    }

    /// [`Regex::like`], memoised: AbuseFilter's `like`, including PHP's refusal of a pattern
    /// whose `#` ends the delimited pattern early.
    pub fn get_or_compile_like(&self, pattern: &str) -> Result<Arc<Regex>, RegexError> {
        let body = like_to_pcre_body(pattern);
        self.get_or(LIKE, &body, false, || Regex::from_like_body(&body))
    }

    /// Number of cached entries.
    pub fn len(&self) -> usize {
        self.lock().entries
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // A panic while holding the lock cannot leave the map inconsistent (every mutation is
        // a single insert/remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get_or(
        &self,
        kind: usize,
        pattern: &str,
        caseless: bool,
        compile: impl FnOnce() -> Result<Regex, RegexError>,
    ) -> Result<Arc<Regex>, RegexError> {
        let slot = kind * 2 + usize::from(caseless);
        {
            let mut st = self.lock();
            st.tick += 1;
            let tick = st.tick;
            if let Some(Some(entry)) = st.map.get_mut(pattern).and_then(|s| s.get_mut(slot)) {
                entry.0 = tick;
                return entry.1.clone();
            }
        }
        // Compile outside the lock so one slow pattern does not stall other threads.
        let result = compile().map(Arc::new);
        let mut st = self.lock();
        st.tick += 1;
        let tick = st.tick;
        let present = matches!(st.map.get(pattern).and_then(|s| s.get(slot)), Some(Some(_)));
        if st.entries >= self.capacity && !present {
            let oldest = st
                .map
                .iter()
                .flat_map(|(k, slots)| {
                    slots
                        .iter()
                        .enumerate()
                        .filter_map(move |(i, e)| e.as_ref().map(|(t, _)| (*t, k, i)))
                })
                .min_by_key(|(t, _, _)| *t)
                .map(|(_, k, i)| (k.clone(), i));
            if let Some((k, i)) = oldest {
                let now_empty = match st.map.get_mut(&k) {
                    Some(slots) => {
                        if let Some(e) = slots.get_mut(i) {
                            *e = None;
                        }
                        slots.iter().all(Option::is_none)
                    }
                    None => false,
                };
                if now_empty {
                    st.map.remove(&k);
                }
                st.entries -= 1;
            }
        }
        if !present {
            st.entries += 1;
        }
        let slots = st.map.entry(pattern.into()).or_default();
        if let Some(e) = slots.get_mut(slot) {
            *e = Some((tick, result.clone()));
        }
        result
    }
}

// ---------------------------------------------------------------------------------------------
// AbuseFilter's munging and PHP's delimiter scan
// ---------------------------------------------------------------------------------------------

/// AbuseFilter's `mungeRegexp` as on its current master: every `/` not already escaped gets a
/// backslash, and all backslashes before it are kept (`a\\\\/b` becomes `a\\\\\/b`). Release
/// 1.39 kept only the last backslash pair (`$1` of a repeated group); master fixed that and its
/// parser tests pin the fix, so we follow master. Then PHP's delimiter scan: a trailing odd
/// backslash escapes the closing `/`.
fn munge(raw: &str) -> Result<String, RegexError> {
    let mut out = String::with_capacity(raw.len() + 8);
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        if c == '/' || c == '\\' {
            let run = rest.bytes().take_while(|&b| b == b'\\').count();
            if rest.as_bytes().get(run) == Some(&b'/') {
                for _ in 0..run / 2 {
                    out.push_str("\\\\");
                }
                out.push_str("\\/");
                rest = rest.get(run + 1..).unwrap_or_default();
                continue;
            }
        }
        out.push(c);
        rest = rest.get(c.len_utf8()..).unwrap_or_default();
    }
    let trailing = out.bytes().rev().take_while(|&b| b == b'\\').count();
    if trailing % 2 == 1 {
        return err("No ending delimiter '/' found");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Replacement strings
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum ReplPart {
    Lit(String),
    Group(usize),
}

/// php_pcre_replace_impl's walk: `\` or `$` right after a literal backslash replaces it;
/// otherwise `preg_get_backref()` reads `$n`, `${n}`, `\n` with one or two digits.
fn parse_replacement(rep: &str) -> Vec<ReplPart> {
    let b = rep.as_bytes();
    let mut parts = Vec::new();
    let mut lit: Vec<u8> = Vec::new();
    let mut last_was_backslash = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\' || c == b'$' {
            if last_was_backslash {
                lit.pop();
                lit.push(c);
                i += 1;
                last_was_backslash = false;
                continue;
            }
            if let Some((n, next)) = get_backref(b, i) {
                if !lit.is_empty() {
                    parts.push(ReplPart::Lit(String::from_utf8_lossy(&lit).into_owned()));
                    lit.clear();
                }
                parts.push(ReplPart::Group(n));
                i = next;
                continue;
            }
        }
        lit.push(c);
        last_was_backslash = c == b'\\';
        i += 1;
    }
    if !lit.is_empty() {
        parts.push(ReplPart::Lit(String::from_utf8_lossy(&lit).into_owned()));
    }
    parts
}

fn get_backref(b: &[u8], at: usize) -> Option<(usize, usize)> {
    b.get(at + 1)?;
    let mut i = at;
    let brace = b.get(at) == Some(&b'$') && b.get(at + 1) == Some(&b'{');
    if brace {
        i += 1;
    }
    i += 1;
    let d1 = *b.get(i).filter(|d| d.is_ascii_digit())?;
    let mut n = usize::from(d1 - b'0');
    i += 1;
    if let Some(&d2) = b.get(i).filter(|d| d.is_ascii_digit()) {
        n = n * 10 + usize::from(d2 - b'0');
        i += 1;
    }
    if brace {
        if b.get(i) != Some(&b'}') {
            return None;
        }
        i += 1;
    }
    Some((n, i))
}

// ---------------------------------------------------------------------------------------------
// Pattern tree
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Node {
    Empty,
    Lit {
        c: char,
        caseless: bool,
    },
    /// `.` (or `\N` with `dotall == false`).
    Any {
        dotall: bool,
    },
    Class(Class),
    Assert(Assert),
    Keep,
    Fail,
    Linebreak {
        anycrlf: bool,
    },
    /// `\X`: an extended grapheme cluster, approximated (see `GRAPHEME`).
    Grapheme,
    Backref {
        target: Ref,
        caseless: bool,
    },
    Group {
        capture: bool,
        node: Box<Node>,
    },
    Atomic(Box<Node>),
    Look {
        ahead: bool,
        negate: bool,
        node: Box<Node>,
    },
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
        kind: RepKind,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RepKind {
    Greedy,
    Lazy,
    Possessive,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Assert {
    /// `^` without `m`, `\A`.
    Start,
    /// `$` without `m`, `\Z`: end, or before a final `\n`.
    End,
    /// `\z`.
    EndAbs,
    /// `^` with `m`: start, or after a `\n` that is not the last character.
    LineStart,
    /// `$` with `m`: end, or before any `\n`.
    LineEnd,
    /// `\G`.
    Continue,
    WordB,
    NotWordB,
    /// `[[:<:]]`.
    WordStart,
    /// `[[:>:]]`.
    WordEnd,
}

#[derive(Debug, Clone, PartialEq)]
enum Ref {
    Num(usize),
    Name(String),
}

#[derive(Debug, Clone)]
struct Class {
    negated: bool,
    caseless: bool,
    items: Vec<Item>,
}

#[derive(Debug, Clone)]
enum Item {
    Char(char),
    Range(char, char),
    Set(Set),
}

/// A predefined set in `regex` class syntax (usable inside `[...]`).
#[derive(Debug, Clone)]
struct Set {
    text: String,
    /// Closed under case folding, so folding it (as Rust's `(?i)` does) changes nothing even
    /// though PCRE2 never folds property-like items.
    fold_closed: bool,
}

// PCRE2 10.42 UCP definitions, in `regex` syntax.
/// The body of `\w`'s class as PCRE2 10.42 has it (UCP: letters, numbers, `_`), in `regex`
/// syntax.
fn w_body() -> &'static str {
    static W: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    W.get_or_init(|| format!("{}{}_", property_as_pcre("L"), property_as_pcre("N")))
}

/// `\w` as PCRE2 10.42 has it.
fn w_set() -> &'static str {
    static W: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    W.get_or_init(|| bracket(w_body(), false))
}
const S_BODY: &str = r"\p{Z}\t\n\x0B\x0C\r\x{85}\x{180E}";
const H_BODY: &str = r"\t\x20\xA0\x{1680}\x{180E}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}";
const V_BODY: &str = r"\n\x0B\x0C\r\x{85}\x{2028}\x{2029}";

fn set(text: impl Into<String>, fold_closed: bool) -> Set {
    Set {
        text: text.into(),
        fold_closed,
    }
}

fn bracket(body: &str, negated: bool) -> String {
    if negated {
        format!("[^{body}]")
    } else {
        format!("[{body}]")
    }
}

/// `\d \s \w \h \v` and their negations (lowercase letter selects the set).
fn escape_set(letter: char) -> Option<Set> {
    let neg = letter.is_ascii_uppercase();
    let s = match letter.to_ascii_lowercase() {
        'd' => set(bracket(&property_as_pcre("Nd"), neg), true),
        's' => set(bracket(S_BODY, neg), true),
        'w' => set(bracket(w_body(), neg), false),
        'h' => set(bracket(H_BODY, neg), true),
        'v' => set(bracket(V_BODY, neg), true),
        _ => return None,
    };
    Some(s)
}

fn posix_set(name: &str, neg: bool) -> Option<Set> {
    let p = property_as_pcre;
    let (body, closed) = match name {
        "alpha" => (p("L"), false),
        "lower" => (p("Ll"), false),
        "upper" => (p("Lu"), false),
        "alnum" => (format!("{}{}", p("L"), p("N")), false),
        "ascii" => (r"\x00-\x7F".to_string(), false),
        "blank" => (H_BODY.to_string(), true),
        "cntrl" => (p("Cc"), true),
        "digit" => (p("Nd"), true),
        "graph" => (
            format!(
                r"[^{}{}][{}--[\x{{61C}}\x{{180E}}\x{{2066}}-\x{{2069}}]]",
                p("Z"),
                p("C"),
                p("Cf")
            ),
            false,
        ),
        "print" => (
            format!(
                r"[^{}{}{}][{}--[\x{{61C}}\x{{2066}}-\x{{2069}}]]",
                p("Zl"),
                p("Zp"),
                p("C"),
                p("Cf")
            ),
            false,
        ),
        "punct" => (format!(r"{}[{}&&\x00-\x7F]", p("P"), p("S")), true),
        "space" => (S_BODY.to_string(), true),
        "word" => (w_body().to_string(), false),
        "xdigit" => ("0-9A-Fa-f".to_string(), true),
        _ => return None,
    };
    Some(set(bracket(&body, neg), closed))
}

#[rustfmt::skip]
const GENERAL_CATEGORIES: [&str; 38] = [
    "C", "Cc", "Cf", "Cn", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn",
    "N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm",
    "So", "Z", "Zl", "Zp", "Zs", "LC",
];

/// Binary properties PCRE2 10.42 accepts that the `regex` crate also knows (loose names).
#[rustfmt::skip]
const BOOL_PROPS: &[(&str, &str)] = &[
    ("ahex", "ASCII_Hex_Digit"), ("alpha", "Alphabetic"), ("alphabetic", "Alphabetic"),
    ("asciihexdigit", "ASCII_Hex_Digit"), ("bidic", "Bidi_Control"),
    ("bidicontrol", "Bidi_Control"), ("bidim", "Bidi_Mirrored"), ("bidimirrored", "Bidi_Mirrored"),
    ("cased", "Cased"), ("caseignorable", "Case_Ignorable"),
    ("changeswhencasefolded", "Changes_When_Casefolded"),
    ("changeswhencasemapped", "Changes_When_Casemapped"),
    ("changeswhenlowercased", "Changes_When_Lowercased"),
    ("changeswhentitlecased", "Changes_When_Titlecased"),
    ("changeswhenuppercased", "Changes_When_Uppercased"), ("ci", "Case_Ignorable"),
    ("cwcf", "Changes_When_Casefolded"), ("cwcm", "Changes_When_Casemapped"),
    ("cwl", "Changes_When_Lowercased"), ("cwt", "Changes_When_Titlecased"),
    ("cwu", "Changes_When_Uppercased"), ("dash", "Dash"),
    ("defaultignorablecodepoint", "Default_Ignorable_Code_Point"), ("dep", "Deprecated"),
    ("deprecated", "Deprecated"), ("di", "Default_Ignorable_Code_Point"), ("dia", "Diacritic"),
    ("diacritic", "Diacritic"), ("ebase", "Emoji_Modifier_Base"), ("ecomp", "Emoji_Component"),
    ("emod", "Emoji_Modifier"), ("emoji", "Emoji"), ("emojicomponent", "Emoji_Component"),
    ("emojimodifier", "Emoji_Modifier"), ("emojimodifierbase", "Emoji_Modifier_Base"),
    ("emojipresentation", "Emoji_Presentation"), ("epres", "Emoji_Presentation"),
    ("ext", "Extender"), ("extendedpictographic", "Extended_Pictographic"),
    ("extender", "Extender"), ("extpict", "Extended_Pictographic"),
    ("graphemebase", "Grapheme_Base"), ("graphemeextend", "Grapheme_Extend"),
    ("graphemelink", "Grapheme_Link"), ("grbase", "Grapheme_Base"), ("grext", "Grapheme_Extend"),
    ("grlink", "Grapheme_Link"), ("hex", "Hex_Digit"), ("hexdigit", "Hex_Digit"),
    ("idc", "ID_Continue"), ("idcontinue", "ID_Continue"), ("ideo", "Ideographic"),
    ("ideographic", "Ideographic"), ("ids", "ID_Start"), ("idsb", "IDS_Binary_Operator"),
    ("idsbinaryoperator", "IDS_Binary_Operator"), ("idst", "IDS_Trinary_Operator"),
    ("idstart", "ID_Start"), ("idstrinaryoperator", "IDS_Trinary_Operator"),
    ("joinc", "Join_Control"), ("joincontrol", "Join_Control"), ("loe", "Logical_Order_Exception"),
    ("logicalorderexception", "Logical_Order_Exception"), ("lower", "Lowercase"),
    ("lowercase", "Lowercase"), ("math", "Math"), ("nchar", "Noncharacter_Code_Point"),
    ("noncharactercodepoint", "Noncharacter_Code_Point"), ("patsyn", "Pattern_Syntax"),
    ("patternsyntax", "Pattern_Syntax"), ("patternwhitespace", "Pattern_White_Space"),
    ("patws", "Pattern_White_Space"), ("pcm", "Prepended_Concatenation_Mark"),
    ("prependedconcatenationmark", "Prepended_Concatenation_Mark"), ("qmark", "Quotation_Mark"),
    ("quotationmark", "Quotation_Mark"), ("radical", "Radical"),
    ("regionalindicator", "Regional_Indicator"), ("ri", "Regional_Indicator"),
    ("sd", "Soft_Dotted"), ("sentenceterminal", "Sentence_Terminal"),
    ("softdotted", "Soft_Dotted"), ("space", "White_Space"), ("sterm", "Sentence_Terminal"),
    ("term", "Terminal_Punctuation"), ("terminalpunctuation", "Terminal_Punctuation"),
    ("uideo", "Unified_Ideograph"), ("unifiedideograph", "Unified_Ideograph"),
    ("upper", "Uppercase"), ("uppercase", "Uppercase"),
    ("variationselector", "Variation_Selector"), ("vs", "Variation_Selector"),
    ("whitespace", "White_Space"), ("wspace", "White_Space"), ("xidc", "XID_Continue"),
    ("xidcontinue", "XID_Continue"), ("xids", "XID_Start"), ("xidstart", "XID_Start"),
];

/// Scripts PCRE2 10.42 (Unicode 14) knows, by loose name or ISO 15924 code.
#[rustfmt::skip]
const SCRIPTS: &[(&str, &str)] = &[
    ("adlam", "Adlam"), ("adlm", "Adlam"), ("aghb", "Caucasian_Albanian"), ("ahom", "Ahom"),
    ("anatolianhieroglyphs", "Anatolian_Hieroglyphs"), ("arab", "Arabic"), ("arabic", "Arabic"),
    ("armenian", "Armenian"), ("armi", "Imperial_Aramaic"), ("armn", "Armenian"),
    ("avestan", "Avestan"), ("avst", "Avestan"), ("bali", "Balinese"), ("balinese", "Balinese"),
    ("bamu", "Bamum"), ("bamum", "Bamum"), ("bass", "Bassa_Vah"), ("bassavah", "Bassa_Vah"),
    ("batak", "Batak"), ("batk", "Batak"), ("beng", "Bengali"), ("bengali", "Bengali"),
    ("bhaiksuki", "Bhaiksuki"), ("bhks", "Bhaiksuki"), ("bopo", "Bopomofo"),
    ("bopomofo", "Bopomofo"), ("brah", "Brahmi"), ("brahmi", "Brahmi"), ("brai", "Braille"),
    ("braille", "Braille"), ("bugi", "Buginese"), ("buginese", "Buginese"), ("buhd", "Buhid"),
    ("buhid", "Buhid"), ("cakm", "Chakma"), ("canadianaboriginal", "Canadian_Aboriginal"),
    ("cans", "Canadian_Aboriginal"), ("cari", "Carian"), ("carian", "Carian"),
    ("caucasianalbanian", "Caucasian_Albanian"), ("chakma", "Chakma"), ("cham", "Cham"),
    ("cher", "Cherokee"), ("cherokee", "Cherokee"), ("chorasmian", "Chorasmian"),
    ("chrs", "Chorasmian"), ("common", "Common"), ("copt", "Coptic"), ("coptic", "Coptic"),
    ("cpmn", "Cypro_Minoan"), ("cprt", "Cypriot"), ("cuneiform", "Cuneiform"),
    ("cypriot", "Cypriot"), ("cyprominoan", "Cypro_Minoan"), ("cyrillic", "Cyrillic"),
    ("cyrl", "Cyrillic"), ("deseret", "Deseret"), ("deva", "Devanagari"),
    ("devanagari", "Devanagari"), ("diak", "Dives_Akuru"), ("divesakuru", "Dives_Akuru"),
    ("dogr", "Dogra"), ("dogra", "Dogra"), ("dsrt", "Deseret"), ("dupl", "Duployan"),
    ("duployan", "Duployan"), ("egyp", "Egyptian_Hieroglyphs"),
    ("egyptianhieroglyphs", "Egyptian_Hieroglyphs"), ("elba", "Elbasan"), ("elbasan", "Elbasan"),
    ("elym", "Elymaic"), ("elymaic", "Elymaic"), ("ethi", "Ethiopic"), ("ethiopic", "Ethiopic"),
    ("geor", "Georgian"), ("georgian", "Georgian"), ("glag", "Glagolitic"),
    ("glagolitic", "Glagolitic"), ("gong", "Gunjala_Gondi"), ("gonm", "Masaram_Gondi"),
    ("goth", "Gothic"), ("gothic", "Gothic"), ("gran", "Grantha"), ("grantha", "Grantha"),
    ("greek", "Greek"), ("grek", "Greek"), ("gujarati", "Gujarati"), ("gujr", "Gujarati"),
    ("gunjalagondi", "Gunjala_Gondi"), ("gurmukhi", "Gurmukhi"), ("guru", "Gurmukhi"),
    ("han", "Han"), ("hang", "Hangul"), ("hangul", "Hangul"), ("hani", "Han"),
    ("hanifirohingya", "Hanifi_Rohingya"), ("hano", "Hanunoo"), ("hanunoo", "Hanunoo"),
    ("hatr", "Hatran"), ("hatran", "Hatran"), ("hebr", "Hebrew"), ("hebrew", "Hebrew"),
    ("hira", "Hiragana"), ("hiragana", "Hiragana"), ("hluw", "Anatolian_Hieroglyphs"),
    ("hmng", "Pahawh_Hmong"), ("hmnp", "Nyiakeng_Puachue_Hmong"), ("hung", "Old_Hungarian"),
    ("imperialaramaic", "Imperial_Aramaic"), ("inherited", "Inherited"),
    ("inscriptionalpahlavi", "Inscriptional_Pahlavi"),
    ("inscriptionalparthian", "Inscriptional_Parthian"), ("ital", "Old_Italic"),
    ("java", "Javanese"), ("javanese", "Javanese"), ("kaithi", "Kaithi"), ("kali", "Kayah_Li"),
    ("kana", "Katakana"), ("kannada", "Kannada"), ("katakana", "Katakana"),
    ("kayahli", "Kayah_Li"), ("khar", "Kharoshthi"), ("kharoshthi", "Kharoshthi"),
    ("khitansmallscript", "Khitan_Small_Script"), ("khmer", "Khmer"), ("khmr", "Khmer"),
    ("khoj", "Khojki"), ("khojki", "Khojki"), ("khudawadi", "Khudawadi"),
    ("kits", "Khitan_Small_Script"), ("knda", "Kannada"), ("kthi", "Kaithi"), ("lana", "Tai_Tham"),
    ("lao", "Lao"), ("laoo", "Lao"), ("latin", "Latin"), ("latn", "Latin"), ("lepc", "Lepcha"),
    ("lepcha", "Lepcha"), ("limb", "Limbu"), ("limbu", "Limbu"), ("lina", "Linear_A"),
    ("linb", "Linear_B"), ("lineara", "Linear_A"), ("linearb", "Linear_B"), ("lisu", "Lisu"),
    ("lyci", "Lycian"), ("lycian", "Lycian"), ("lydi", "Lydian"), ("lydian", "Lydian"),
    ("mahajani", "Mahajani"), ("mahj", "Mahajani"), ("maka", "Makasar"), ("makasar", "Makasar"),
    ("malayalam", "Malayalam"), ("mand", "Mandaic"), ("mandaic", "Mandaic"),
    ("mani", "Manichaean"), ("manichaean", "Manichaean"), ("marc", "Marchen"),
    ("marchen", "Marchen"), ("masaramgondi", "Masaram_Gondi"), ("medefaidrin", "Medefaidrin"),
    ("medf", "Medefaidrin"), ("meeteimayek", "Meetei_Mayek"), ("mend", "Mende_Kikakui"),
    ("mendekikakui", "Mende_Kikakui"), ("merc", "Meroitic_Cursive"),
    ("mero", "Meroitic_Hieroglyphs"), ("meroiticcursive", "Meroitic_Cursive"),
    ("meroitichieroglyphs", "Meroitic_Hieroglyphs"), ("miao", "Miao"), ("mlym", "Malayalam"),
    ("modi", "Modi"), ("mong", "Mongolian"), ("mongolian", "Mongolian"), ("mro", "Mro"),
    ("mroo", "Mro"), ("mtei", "Meetei_Mayek"), ("mult", "Multani"), ("multani", "Multani"),
    ("myanmar", "Myanmar"), ("mymr", "Myanmar"), ("nabataean", "Nabataean"),
    ("nand", "Nandinagari"), ("nandinagari", "Nandinagari"), ("narb", "Old_North_Arabian"),
    ("nbat", "Nabataean"), ("newa", "Newa"), ("newtailue", "New_Tai_Lue"), ("nko", "Nko"),
    ("nkoo", "Nko"), ("nshu", "Nushu"), ("nushu", "Nushu"),
    ("nyiakengpuachuehmong", "Nyiakeng_Puachue_Hmong"), ("ogam", "Ogham"), ("ogham", "Ogham"),
    ("olchiki", "Ol_Chiki"), ("olck", "Ol_Chiki"), ("oldhungarian", "Old_Hungarian"),
    ("olditalic", "Old_Italic"), ("oldnortharabian", "Old_North_Arabian"),
    ("oldpermic", "Old_Permic"), ("oldpersian", "Old_Persian"), ("oldsogdian", "Old_Sogdian"),
    ("oldsoutharabian", "Old_South_Arabian"), ("oldturkic", "Old_Turkic"),
    ("olduyghur", "Old_Uyghur"), ("oriya", "Oriya"), ("orkh", "Old_Turkic"), ("orya", "Oriya"),
    ("osage", "Osage"), ("osge", "Osage"), ("osma", "Osmanya"), ("osmanya", "Osmanya"),
    ("ougr", "Old_Uyghur"), ("pahawhhmong", "Pahawh_Hmong"), ("palm", "Palmyrene"),
    ("palmyrene", "Palmyrene"), ("pauc", "Pau_Cin_Hau"), ("paucinhau", "Pau_Cin_Hau"),
    ("perm", "Old_Permic"), ("phag", "Phags_Pa"), ("phagspa", "Phags_Pa"),
    ("phli", "Inscriptional_Pahlavi"), ("phlp", "Psalter_Pahlavi"), ("phnx", "Phoenician"),
    ("phoenician", "Phoenician"), ("plrd", "Miao"), ("prti", "Inscriptional_Parthian"),
    ("psalterpahlavi", "Psalter_Pahlavi"), ("qaac", "Coptic"), ("qaai", "Inherited"),
    ("rejang", "Rejang"), ("rjng", "Rejang"), ("rohg", "Hanifi_Rohingya"), ("runic", "Runic"),
    ("runr", "Runic"), ("samaritan", "Samaritan"), ("samr", "Samaritan"),
    ("sarb", "Old_South_Arabian"), ("saur", "Saurashtra"), ("saurashtra", "Saurashtra"),
    ("sgnw", "SignWriting"), ("sharada", "Sharada"), ("shavian", "Shavian"), ("shaw", "Shavian"),
    ("shrd", "Sharada"), ("sidd", "Siddham"), ("siddham", "Siddham"),
    ("signwriting", "SignWriting"), ("sind", "Khudawadi"), ("sinh", "Sinhala"),
    ("sinhala", "Sinhala"), ("sogd", "Sogdian"), ("sogdian", "Sogdian"), ("sogo", "Old_Sogdian"),
    ("sora", "Sora_Sompeng"), ("sorasompeng", "Sora_Sompeng"), ("soyo", "Soyombo"),
    ("soyombo", "Soyombo"), ("sund", "Sundanese"), ("sundanese", "Sundanese"),
    ("sylo", "Syloti_Nagri"), ("sylotinagri", "Syloti_Nagri"), ("syrc", "Syriac"),
    ("syriac", "Syriac"), ("tagalog", "Tagalog"), ("tagb", "Tagbanwa"), ("tagbanwa", "Tagbanwa"),
    ("taile", "Tai_Le"), ("taitham", "Tai_Tham"), ("taiviet", "Tai_Viet"), ("takr", "Takri"),
    ("takri", "Takri"), ("tale", "Tai_Le"), ("talu", "New_Tai_Lue"), ("tamil", "Tamil"),
    ("taml", "Tamil"), ("tang", "Tangut"), ("tangsa", "Tangsa"), ("tangut", "Tangut"),
    ("tavt", "Tai_Viet"), ("telu", "Telugu"), ("telugu", "Telugu"), ("tfng", "Tifinagh"),
    ("tglg", "Tagalog"), ("thaa", "Thaana"), ("thaana", "Thaana"), ("thai", "Thai"),
    ("tibetan", "Tibetan"), ("tibt", "Tibetan"), ("tifinagh", "Tifinagh"), ("tirh", "Tirhuta"),
    ("tirhuta", "Tirhuta"), ("tnsa", "Tangsa"), ("toto", "Toto"), ("ugar", "Ugaritic"),
    ("ugaritic", "Ugaritic"), ("unknown", "Unknown"), ("vai", "Vai"), ("vaii", "Vai"),
    ("vith", "Vithkuqi"), ("vithkuqi", "Vithkuqi"), ("wancho", "Wancho"), ("wara", "Warang_Citi"),
    ("warangciti", "Warang_Citi"), ("wcho", "Wancho"), ("xpeo", "Old_Persian"),
    ("xsux", "Cuneiform"), ("yezi", "Yezidi"), ("yezidi", "Yezidi"), ("yi", "Yi"), ("yiii", "Yi"),
    ("zanabazarsquare", "Zanabazar_Square"), ("zanb", "Zanabazar_Square"), ("zinh", "Inherited"),
    ("zyyy", "Common"), ("zzzz", "Unknown"),
];

/// Code point ranges, first and last included.
type Ranges = &'static [(u32, u32)];

/// Code points the `regex` crate's tables (Unicode 16) assign and PCRE2 10.42's (Unicode 14) do
/// not: PCRE2 has them in `Cn` (and `C`, and the script `Unknown`), and in no other property
/// but for the few [`PROPERTY_FIXES`] gives back (reserved emoji code points are
/// `Extended_Pictographic`).
/// Made as [`SCRIPT_FIXES`] is.
#[rustfmt::skip]
const ASSIGNED_SINCE_14: Ranges = &[
    (0x897, 0x897), (0xCF3, 0xCF3), (0xECE, 0xECE), (0x1B4E, 0x1B4F), (0x1B7F, 0x1B7F), (0x1C89, 
    0x1C8A), (0x2427, 0x2429), (0x2FFC, 0x2FFF), (0x31E4, 0x31E5), (0x31EF, 0x31EF), (0xA7CB, 
    0xA7CD), (0xA7DA, 0xA7DC), (0x105C0, 0x105F3), (0x10D40, 0x10D65), (0x10D69, 0x10D85), (0x10D8E, 
    0x10D8F), (0x10EC2, 0x10EC4), (0x10EFC, 0x10EFF), (0x1123F, 0x11241), (0x11380, 0x11389), 
    (0x1138B, 0x1138B), (0x1138E, 0x1138E), (0x11390, 0x113B5), (0x113B7, 0x113C0), (0x113C2, 
    0x113C2), (0x113C5, 0x113C5), (0x113C7, 0x113CA), (0x113CC, 0x113D5), (0x113D7, 0x113D8), 
    (0x113E1, 0x113E2), (0x116D0, 0x116E3), (0x11B00, 0x11B09), (0x11BC0, 0x11BE1), (0x11BF0, 
    0x11BF9), (0x11F00, 0x11F10), (0x11F12, 0x11F3A), (0x11F3E, 0x11F5A), (0x1342F, 0x1342F), 
    (0x13439, 0x13455), (0x13460, 0x143FA), (0x16100, 0x16139), (0x16D40, 0x16D79), (0x18CFF, 
    0x18CFF), (0x1B132, 0x1B132), (0x1B155, 0x1B155), (0x1CC00, 0x1CCF9), (0x1CD00, 0x1CEB3), 
    (0x1D2C0, 0x1D2D3), (0x1DF25, 0x1DF2A), (0x1E030, 0x1E06D), (0x1E08F, 0x1E08F), (0x1E4D0, 
    0x1E4F9), (0x1E5D0, 0x1E5FA), (0x1E5FF, 0x1E5FF), (0x1F6DC, 0x1F6DC), (0x1F774, 0x1F776), 
    (0x1F77B, 0x1F77F), (0x1F7D9, 0x1F7D9), (0x1F8B2, 0x1F8BB), (0x1F8C0, 0x1F8C1), (0x1FA75, 
    0x1FA77), (0x1FA87, 0x1FA89), (0x1FA8F, 0x1FA8F), (0x1FAAD, 0x1FAAF), (0x1FABB, 0x1FABF), 
    (0x1FAC6, 0x1FAC6), (0x1FACE, 0x1FACF), (0x1FADA, 0x1FADC), (0x1FADF, 0x1FADF), (0x1FAE8, 
    0x1FAE9), (0x1FAF7, 0x1FAF8), (0x1FBCB, 0x1FBEF), (0x2B739, 0x2B739), (0x2EBF0, 0x2EE5D), 
    (0x31350, 0x323AF)
];

/// The same for general categories and binary properties: where PCRE2 10.42 differs from the
/// `regex` crate on characters both assign. Made as [`SCRIPT_FIXES`] is. Sorted by name.
#[rustfmt::skip]
const PROPERTY_FIXES: &[(&str, Ranges, Ranges)] = &[
    ("Alphabetic", &[], &[(0x363, 0x36F), (0xC04, 0xC04), (0xF82, 0xF83), (0x1DD3, 0x1DE6), (0x11080, 0x11081)]),
    ("Bidi_Mirrored", &[], &[(0x2140, 0x2140), (0x2201, 0x2204), (0x2211, 0x2211), (0x2216, 0x2216), (0x221A, 0x221D), (0x2226, 0x2226), (0x222B, 0x2233), (0x2239, 0x2239), (0x223B, 0x223B), (0x223E, 0x2242), (0x2244, 0x2244), (0x2246, 0x224B), (0x225F, 0x2260), (0x2262, 0x2262), (0x226D, 0x226D), (0x228C, 0x228C), (0x22A7, 0x22A7), (0x22AA, 0x22AA), (0x22AC, 0x22AF), (0x22BE, 0x22BF), (0x22F5, 0x22F5), (0x22F8, 0x22F9), (0x22FF, 0x22FF), (0x2320, 0x2321), (0x27C0, 0x27C0), (0x27CC, 0x27CC), (0x27D3, 0x27D4), (0x299C, 0x299F), (0x29A2, 0x29A2), (0x29A6, 0x29A7), (0x29C2, 0x29C3), (0x29C9, 0x29C9), (0x29CE, 0x29CE), (0x29DC, 0x29DC), (0x29E1, 0x29E1), (0x29E3, 0x29E5), (0x29F4, 0x29F4), (0x29F6, 0x29F7), (0x2A0A, 0x2A1C), (0x2A1E, 0x2A21), (0x2A24, 0x2A24), (0x2A26, 0x2A26), (0x2A29, 0x2A29), (0x2A3E, 0x2A3E), (0x2A57, 0x2A58), (0x2A6A, 0x2A6D), (0x2A6F, 0x2A70), (0x2A73, 0x2A74), (0x2AA3, 0x2AA3), (0x2ADC, 0x2ADC), (0x2AE2, 0x2AE2), (0x2AE6, 0x2AE6), (0x2AF3, 0x2AF3), (0x2AFB, 0x2AFB), (0x2AFD, 0x2AFD), (0x1D6DB, 0x1D6DB), (0x1D715, 0x1D715), (0x1D74F, 0x1D74F), (0x1D789, 0x1D789), (0x1D7C3, 0x1D7C3)]),
    ("Case_Ignorable", &[(0x1171E, 0x1171E)], &[]),
    ("Cased", &[], &[(0x10FC, 0x10FC), (0xA7F2, 0xA7F4), (0xAB69, 0xAB69)]),
    ("Changes_When_Casemapped", &[], &[(0x19B, 0x19B), (0x264, 0x264)]),
    ("Changes_When_Titlecased", &[], &[(0x19B, 0x19B), (0x264, 0x264)]),
    ("Changes_When_Uppercased", &[], &[(0x19B, 0x19B), (0x264, 0x264)]),
    ("Diacritic", &[], &[(0xE3A, 0xE3A), (0x1734, 0x1734), (0x1A60, 0x1A60), (0x1BE6, 0x1BE6), (0x1BF2, 0x1BF3), (0xA806, 0xA806), (0xA82C, 0xA82C), (0x10A38, 0x10A3A), (0x10A3F, 0x10A3F), (0x1133B, 0x1133B)]),
    ("Extended_Pictographic", &[(0x1F6DC, 0x1F6DC), (0x1F774, 0x1F776), (0x1F77B, 0x1F77F), (0x1F7D9, 0x1F7D9), (0x1F8B2, 0x1F8BB), (0x1F8C0, 0x1F8C1), (0x1FA75, 0x1FA77), (0x1FA87, 0x1FA89), (0x1FA8F, 0x1FA8F), (0x1FAAD, 0x1FAAF), (0x1FABB, 0x1FABF), (0x1FAC6, 0x1FAC6), (0x1FACE, 0x1FACF), (0x1FADA, 0x1FADC), (0x1FADF, 0x1FADF), (0x1FAE8, 0x1FAE9), (0x1FAF7, 0x1FAF8)], &[]),
    ("Extender", &[], &[(0xA71, 0xA71), (0xAFB, 0xAFB), (0x11237, 0x11237)]),
    ("Grapheme_Base", &[(0xCC0, 0xCC0), (0xCC7, 0xCC8), (0xCCA, 0xCCB), (0x1715, 0x1715), (0x1734, 0x1734), (0x1B3B, 0x1B3B), (0x1B3D, 0x1B3D), (0x1B43, 0x1B44), (0x1BAA, 0x1BAA), (0x1BF2, 0x1BF3), (0xA953, 0xA953), (0xA9C0, 0xA9C0), (0x111C0, 0x111C0), (0x11235, 0x11235), (0x1134D, 0x1134D), (0x116B6, 0x116B6), (0x1193D, 0x1193D), (0x16FF0, 0x16FF1), (0x1D166, 0x1D166), (0x1D16D, 0x1D16D)], &[(0x1171E, 0x1171E)]),
    ("Grapheme_Extend", &[(0x1171E, 0x1171E)], &[(0xCC0, 0xCC0), (0xCC7, 0xCC8), (0xCCA, 0xCCB), (0x1715, 0x1715), (0x1734, 0x1734), (0x1B3B, 0x1B3B), (0x1B3D, 0x1B3D), (0x1B43, 0x1B44), (0x1BAA, 0x1BAA), (0x1BF2, 0x1BF3), (0xA953, 0xA953), (0xA9C0, 0xA9C0), (0x111C0, 0x111C0), (0x11235, 0x11235), (0x1134D, 0x1134D), (0x116B6, 0x116B6), (0x1193D, 0x1193D), (0x16FF0, 0x16FF1), (0x1D166, 0x1D166), (0x1D16D, 0x1D16D)]),
    ("ID_Continue", &[], &[(0x200C, 0x200D), (0x30FB, 0x30FB), (0xFF65, 0xFF65)]),
    ("Lowercase", &[], &[(0x10FC, 0x10FC), (0xA7F2, 0xA7F4), (0xAB69, 0xAB69)]),
    ("Mc", &[], &[(0x1171E, 0x1171E)]),
    ("Mn", &[(0x1171E, 0x1171E)], &[]),
    ("Pattern_Syntax", &[(0x2427, 0x2429)], &[]),
    ("Sentence_Terminal", &[], &[(0x17D4, 0x17D5), (0x2024, 0x2024), (0x2CF9, 0x2CFB), (0xFE12, 0xFE12), (0xFE15, 0xFE16)]),
    ("Terminal_Punctuation", &[(0x836, 0x836)], &[(0x2024, 0x2024), (0x2CF9, 0x2CFB), (0xFE12, 0xFE12), (0xFE15, 0xFE16)]),
    ("XID_Continue", &[], &[(0x200C, 0x200D), (0x30FB, 0x30FB), (0xFF65, 0xFF65)]),
];

/// `ranges` as the body of a `regex` class.
fn class_body(ranges: &[(u32, u32)]) -> String {
    ranges
        .iter()
        .map(|&(lo, hi)| format!(r"\x{{{lo:X}}}-\x{{{hi:X}}}"))
        .collect()
}

/// `\p{name}` (a general category, binary property, or `Script=…` / `Script_Extensions=…`, in
/// the `regex` crate's spelling) as PCRE2 10.42 has it, in `regex` syntax: the property with
/// the code points it must lose or gain, only those (the text stays short: patterns hold it
/// once per `\w`, four times per `\b` of the exact engine). Worked out once per name.
fn property_as_pcre(name: &str) -> String {
    use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};
    static CACHE: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(text) = cache.get(name) {
        return text.clone();
    }
    let base = format!(r"\p{{{name}}}");
    let class = |ranges: &[(u32, u32)]| {
        ClassUnicode::new(
            ranges
                .iter()
                .filter_map(|&(lo, hi)| Some(ClassUnicodeRange::new(char::from_u32(lo)?, char::from_u32(hi)?))),
        )
    };
    let have = match regex_syntax::parse(&format!("[{base}]")).map(|h| h.into_kind()) {
        Ok(regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(c))) => c,
        // Not a property the `regex` crate knows as a class: left as it is (it fails to
        // compile there, with its own message).
        _ => return base,
    };
    let new = class(ASSIGNED_SINCE_14);
    let (mut add, mut remove) = (ClassUnicode::empty(), ClassUnicode::empty());
    if matches!(name, "C" | "Cn") {
        add.union(&new);
        add.difference(&have);
    } else {
        remove.union(&have);
        remove.intersect(&new);
    }
    let fixes = if name.starts_with("Script") {
        SCRIPT_FIXES
    } else {
        PROPERTY_FIXES
    };
    if let Ok(i) = fixes.binary_search_by(|(k, _, _)| (*k).cmp(name)) {
        let (_, more, fewer) = fixes[i];
        add.union(&class(more));
        remove.union(&class(fewer));
    }
    let body = |c: &ClassUnicode| -> String {
        let ranges: Vec<(u32, u32)> = c
            .ranges()
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect();
        class_body(&ranges)
    };
    let mut out = if remove.ranges().is_empty() {
        base
    } else {
        format!("[{base}--[{}]]", body(&remove))
    };
    if !add.ranges().is_empty() {
        out = format!("[{out}{}]", body(&add));
    }
    cache.insert(name.to_string(), out.clone());
    out
}

/// Where PCRE2 10.42's script properties (Unicode 14) differ from the `regex` crate's (Unicode
/// 16) besides [`ASSIGNED_SINCE_14`]: per `Script=…` or `Script_Extensions=…` set, the code
/// points PCRE2 adds to it and those it leaves out (mostly script extensions changed since).
/// Made by comparing every code point with PHP's answers (`scripts/pcre-properties.php`); the
/// ignored test `unicode_properties_match_php` checks the result against them and prints what
/// to change when they differ. Sorted by key.
#[rustfmt::skip]
const SCRIPT_FIXES: &[(&str, Ranges, Ranges)] = &[
    ("Script=Common", &[], &[(0x1FA75, 0x1FA77), (0x1FAE8, 0x1FAE9)]),
    ("Script=Cyrillic", &[], &[(0x1C89, 0x1C8A)]),
    ("Script=Khitan_Small_Script", &[], &[(0x18CFF, 0x18CFF)]),
    ("Script=Latin", &[], &[(0xA7CB, 0xA7CD)]),
    ("Script_Extensions=Adlam", &[], &[(0x204F, 0x204F), (0x2E41, 0x2E41)]),
    ("Script_Extensions=Arabic", &[], &[(0x204F, 0x204F), (0x2E41, 0x2E41)]),
    ("Script_Extensions=Armenian", &[], &[(0x308, 0x308)]),
    ("Script_Extensions=Avestan", &[], &[(0xB7, 0xB7), (0x2E30, 0x2E31)]),
    ("Script_Extensions=Bengali", &[], &[(0x2BC, 0x2BC)]),
    ("Script_Extensions=Bopomofo", &[], &[(0x2C7, 0x2C7), (0x2C9, 0x2CB), (0x2D9, 0x2D9)]),
    ("Script_Extensions=Carian", &[], &[(0xB7, 0xB7), (0x205A, 0x205A), (0x205D, 0x205D), (0x2E31, 0x2E31)]),
    ("Script_Extensions=Caucasian_Albanian", &[], &[(0x304, 0x304), (0x331, 0x331), (0x35E, 0x35E)]),
    ("Script_Extensions=Cherokee", &[], &[(0x300, 0x302), (0x304, 0x304), (0x30B, 0x30C), (0x323, 0x324), (0x330, 0x331)]),
    ("Script_Extensions=Common", &[(0xB7, 0xB7), (0x2BC, 0x2BC), (0x2C7, 0x2C7), (0x2C9, 0x2CB), (0x2CD, 0x2CD), (0x2D7, 0x2D7), (0x2D9, 0x2D9), (0x374, 0x374), (0x60C, 0x60C), (0x61B, 0x61B), (0x61F, 0x61F), (0x640, 0x640), (0x964, 0x965), (0x10FB, 0x10FB), (0x16EB, 0x16ED), (0x1735, 0x1736), (0x1802, 0x1803), (0x1805, 0x1805), (0x1CD3, 0x1CD3), (0x1CE1, 0x1CE1), (0x1CE9, 0x1CEC), (0x1CEE, 0x1CF3), (0x1CF5, 0x1CF7), (0x1CFA, 0x1CFA), (0x202F, 0x202F), (0x204F, 0x204F), (0x205A, 0x205A), (0x205D, 0x205D), (0x2E17, 0x2E17), (0x2E30, 0x2E31), (0x2E3C, 0x2E3C), (0x2E41, 0x2E41), (0x2E43, 0x2E43), (0x2FF0, 0x2FFB), (0x3001, 0x3003), (0x3006, 0x3006), (0x3008, 0x3011), (0x3013, 0x301F), (0x3030, 0x3035), (0x3037, 0x3037), (0x303C, 0x303F), (0x309B, 0x309C), (0x30A0, 0x30A0), (0x30FB, 0x30FC), (0x3190, 0x319F), (0x31C0, 0x31E3), (0x3220, 0x3247), (0x3280, 0x32B0), (0x32C0, 0x32CB), (0x32FF, 0x32FF), (0x3358, 0x3370), (0x337B, 0x337F), (0x33E0, 0x33FE), (0xA700, 0xA707), (0xA830, 0xA839), (0xA92E, 0xA92E), (0xA9CF, 0xA9CF), (0xFD3E, 0xFD3F), (0xFE45, 0xFE46), (0xFF61, 0xFF65), (0xFF70, 0xFF70), (0xFF9E, 0xFF9F), (0x10100, 0x10102), (0x10107, 0x10133), (0x10137, 0x1013F), (0x102E1, 0x102FB), (0x1BCA0, 0x1BCA3), (0x1D360, 0x1D371), (0x1F250, 0x1F251)], &[(0x1FA75, 0x1FA77), (0x1FAE8, 0x1FAE9)]),
    ("Script_Extensions=Coptic", &[], &[(0xB7, 0xB7), (0x300, 0x300), (0x304, 0x305), (0x307, 0x307), (0x374, 0x375), (0x2E17, 0x2E17)]),
    ("Script_Extensions=Cyrillic", &[], &[(0x2BC, 0x2BC), (0x300, 0x302), (0x304, 0x304), (0x306, 0x306), (0x308, 0x308), (0x30B, 0x30B), (0x311, 0x311), (0x1C89, 0x1C8A)]),
    ("Script_Extensions=Devanagari", &[], &[(0x2BC, 0x2BC)]),
    ("Script_Extensions=Duployan", &[], &[(0xB7, 0xB7), (0x307, 0x308), (0x30A, 0x30A), (0x323, 0x324), (0x2E3C, 0x2E3C)]),
    ("Script_Extensions=Elbasan", &[], &[(0xB7, 0xB7), (0x305, 0x305)]),
    ("Script_Extensions=Ethiopic", &[], &[(0x30E, 0x30E)]),
    ("Script_Extensions=Georgian", &[], &[(0xB7, 0xB7), (0x589, 0x589), (0x205A, 0x205A), (0x2E31, 0x2E31)]),
    ("Script_Extensions=Glagolitic", &[], &[(0xB7, 0xB7), (0x303, 0x303), (0x305, 0x305), (0x589, 0x589), (0x10FB, 0x10FB), (0x205A, 0x205A)]),
    ("Script_Extensions=Gothic", &[], &[(0xB7, 0xB7), (0x304, 0x305), (0x308, 0x308), (0x331, 0x331)]),
    ("Script_Extensions=Greek", &[], &[(0xB7, 0xB7), (0x300, 0x301), (0x304, 0x304), (0x306, 0x306), (0x308, 0x308), (0x313, 0x313), (0x374, 0x374), (0x205D, 0x205D)]),
    ("Script_Extensions=Gunjala_Gondi", &[], &[(0xB7, 0xB7)]),
    ("Script_Extensions=Han", &[], &[(0xB7, 0xB7), (0x2FF0, 0x2FFB)]),
    ("Script_Extensions=Hebrew", &[], &[(0x307, 0x308)]),
    ("Script_Extensions=Inherited", &[(0x300, 0x30E), (0x310, 0x311), (0x313, 0x313), (0x320, 0x320), (0x323, 0x325), (0x32D, 0x32E), (0x330, 0x331), (0x342, 0x342), (0x345, 0x345), (0x358, 0x358), (0x35E, 0x35E), (0x363, 0x36F), (0x485, 0x486), (0x64B, 0x655), (0x670, 0x670), (0x951, 0x952), (0x1CD0, 0x1CD2), (0x1CD4, 0x1CE0), (0x1CE2, 0x1CE8), (0x1CED, 0x1CED), (0x1CF4, 0x1CF4), (0x1CF8, 0x1CF9), (0x1DC0, 0x1DC1), (0x1DF8, 0x1DF8), (0x1DFA, 0x1DFA), (0x20F0, 0x20F0), (0x302A, 0x302D), (0x3099, 0x309A), (0x102E0, 0x102E0), (0x1133B, 0x1133B)], &[]),
    ("Script_Extensions=Kaithi", &[], &[(0x2E31, 0x2E31)]),
    ("Script_Extensions=Kannada", &[], &[(0x1CD3, 0x1CD3)]),
    ("Script_Extensions=Katakana", &[], &[(0x305, 0x305), (0x323, 0x323)]),
    ("Script_Extensions=Khitan_Small_Script", &[], &[(0x18CFF, 0x18CFF)]),
    ("Script_Extensions=Latin", &[], &[(0xB7, 0xB7), (0x2BC, 0x2BC), (0x2C7, 0x2C7), (0x2C9, 0x2CB), (0x2CD, 0x2CD), (0x2D7, 0x2D7), (0x2D9, 0x2D9), (0x300, 0x30E), (0x310, 0x311), (0x313, 0x313), (0x320, 0x320), (0x323, 0x325), (0x32D, 0x32E), (0x330, 0x331), (0x358, 0x358), (0x35E, 0x35E), (0x1DF8, 0x1DF8), (0x2E17, 0x2E17), (0xA7CB, 0xA7CD)]),
    ("Script_Extensions=Lisu", &[], &[(0x2BC, 0x2BC), (0x2CD, 0x2CD), (0x300A, 0x300B)]),
    ("Script_Extensions=Lycian", &[], &[(0x205A, 0x205A)]),
    ("Script_Extensions=Lydian", &[], &[(0xB7, 0xB7), (0x2E31, 0x2E31)]),
    ("Script_Extensions=Mahajani", &[], &[(0xB7, 0xB7)]),
    ("Script_Extensions=Malayalam", &[], &[(0x1CF2, 0x1CF2)]),
    ("Script_Extensions=Meroitic_Hieroglyphs", &[], &[(0x205D, 0x205D)]),
    ("Script_Extensions=Mongolian", &[], &[(0x3001, 0x3002), (0x3008, 0x300B)]),
    ("Script_Extensions=Old_Hungarian", &[], &[(0x205A, 0x205A), (0x205D, 0x205D), (0x2E31, 0x2E31), (0x2E41, 0x2E41)]),
    ("Script_Extensions=Old_Permic", &[], &[(0xB7, 0xB7), (0x300, 0x300), (0x306, 0x308), (0x313, 0x313)]),
    ("Script_Extensions=Old_Turkic", &[], &[(0x205A, 0x205A), (0x2E30, 0x2E30)]),
    ("Script_Extensions=Osage", &[], &[(0x301, 0x301), (0x304, 0x304), (0x30B, 0x30B), (0x358, 0x358)]),
    ("Script_Extensions=Phags_Pa", &[], &[(0x202F, 0x202F), (0x3002, 0x3002)]),
    ("Script_Extensions=Runic", &[], &[(0x16EB, 0x16ED)]),
    ("Script_Extensions=Samaritan", &[], &[(0x2E31, 0x2E31)]),
    ("Script_Extensions=Sharada", &[], &[(0xA830, 0xA835), (0xA838, 0xA838)]),
    ("Script_Extensions=Shavian", &[], &[(0xB7, 0xB7)]),
    ("Script_Extensions=Sinhala", &[], &[(0x1CF2, 0x1CF2)]),
    ("Script_Extensions=Syriac", &[], &[(0x303, 0x304), (0x307, 0x308), (0x30A, 0x30A), (0x320, 0x320), (0x323, 0x325), (0x32D, 0x32E), (0x330, 0x330)]),
    ("Script_Extensions=Tai_Le", &[], &[(0x300, 0x301), (0x307, 0x308), (0x30C, 0x30C)]),
    ("Script_Extensions=Tangut", &[], &[(0x2FF0, 0x2FFB)]),
    ("Script_Extensions=Thai", &[], &[(0x2BC, 0x2BC), (0x2D7, 0x2D7), (0x303, 0x303), (0x331, 0x331)]),
    ("Script_Extensions=Tibetan", &[], &[(0x3008, 0x300B)]),
    ("Script_Extensions=Tifinagh", &[], &[(0x302, 0x302), (0x304, 0x304), (0x307, 0x307), (0x309, 0x309)]),
    ("Script_Extensions=Toto", &[], &[(0x2BC, 0x2BC)]),
];

/// `\p{Script=name}` (`extensions`: `Script_Extensions`) as PCRE2 10.42 has it, in `regex`
/// syntax. `Unknown`, which the `regex` crate does not know, is every code point in no other
/// script.
fn script_set(name: &str, extensions: bool) -> String {
    if name == "Unknown" {
        let known: String = SCRIPTS
            .iter()
            .map(|(_, s)| *s)
            .filter(|s| *s != "Unknown")
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|s| script_set(s, false))
            .collect();
        return format!("[^{known}]");
    }
    property_as_pcre(&format!(
        "{}={name}",
        if extensions { "Script_Extensions" } else { "Script" }
    ))
}

/// PCRE2's loose matching of property names: case, spaces, `_` and `-` are ignored.
fn loose(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn lookup(table: &[(&str, &'static str)], key: &str) -> Option<&'static str> {
    table
        .binary_search_by(|(k, _)| (*k).cmp(key))
        .ok()
        .and_then(|i| table.get(i))
        .map(|(_, v)| *v)
}

/// Translates the name inside `\p{…}` (without `^`) to a positive `regex` set.
fn property_set(raw: &str) -> Result<Set, RegexError> {
    let name = loose(raw);
    if let Some(pos) = name.find([':', '=']) {
        let (key, value) = (
            name.get(..pos).unwrap_or_default(),
            name.get(pos + 1..).unwrap_or_default(),
        );
        let script = lookup(SCRIPTS, value);
        return match (key, script) {
            ("sc" | "script", Some(s)) => Ok(set(script_set(s, false), false)),
            ("scx" | "scriptextensions", Some(s)) => Ok(set(script_set(s, true), false)),
            ("bc" | "bidiclass", _) => unsupported(&format!(r"\p{{{raw}}} (Bidi_Class)")),
            _ => err(format!(r"unknown property after \P or \p: {raw}")),
        };
    }
    let special = match name.as_str() {
        "any" => Some(set(r"\x{0}-\x{10FFFF}", true)),
        "l&" | "lc" => Some(set(property_as_pcre("LC"), false)),
        "xan" => Some(set(
            format!("[{}{}]", property_as_pcre("L"), property_as_pcre("N")),
            false,
        )),
        "xps" | "xsp" => Some(set(bracket(S_BODY, false), true)),
        "xwd" => Some(set(w_set(), false)),
        "xuc" => Some(set(r"[$@`\xA0-\x{D7FF}\x{E000}-\x{10FFFF}]", false)),
        "ascii" => Some(set(r"[\x00-\x7F]", false)),
        _ => None,
    };
    if let Some(s) = special {
        return Ok(s);
    }
    if name == "cs" {
        // Surrogates: PCRE2 knows the category, the `regex` crate does not (no string holds
        // one). It matches nothing, as in PHP on valid UTF-8.
        return Ok(set(r"[^\x{0}-\x{10FFFF}]", true));
    }
    if let Some(gc) = GENERAL_CATEGORIES.iter().find(|gc| gc.eq_ignore_ascii_case(&name)) {
        // `C` and `Cn` gain the characters assigned since Unicode 14, some of them cased: not
        // closed under folding then.
        let closed = matches!(gc.chars().next(), Some('N' | 'Z' | 'P')) || matches!(*gc, "Cc" | "Cf" | "Co");
        return Ok(set(property_as_pcre(gc), closed));
    }
    if let Some(s) = lookup(SCRIPTS, &name) {
        // PCRE2 10.40+: a bare script name means Script_Extensions, except for the three
        // pseudo-scripts, whose extensions would be their own script anyway in PCRE2's tables.
        let extensions = !matches!(s, "Common" | "Inherited" | "Unknown");
        return Ok(set(script_set(s, extensions), false));
    }
    if let Some(p) = lookup(BOOL_PROPS, &name) {
        return Ok(set(property_as_pcre(p), false));
    }
    err(format!(r"unknown property after \P or \p: {raw}"))
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    i: bool,
    m: bool,
    s: bool,
    x: bool,
    xx: bool,
    n: bool,
    ungreedy: bool,
    dupnames: bool,
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    flags: Flags,
    groups: usize,
    names: Vec<(String, usize)>,
    depth: usize,
    bsr_anycrlf: bool,
}

/// What the last parsed item allows a following quantifier to do.
enum Last {
    /// Nothing to quantify (start, `|`, assertion, option setting, another quantifier).
    None,
    /// `concat[idx]` may be quantified.
    Item(usize),
}

fn is_x_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r' | '\u{85}' | '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}'
    )
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, off: usize) -> Option<char> {
        self.chars.get(self.pos + off).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn looking_at(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(i, c)| self.peek_at(i) == Some(c))
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn parse_start_options(&mut self) -> Result<(), RegexError> {
        while self.looking_at("(*") {
            let save = self.pos;
            self.pos += 2;
            let mut name = String::new();
            while let Some(c) = self
                .peek()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '=')
            {
                name.push(c);
                self.pos += 1;
            }
            if !self.eat(')') {
                self.pos = save;
                return Ok(());
            }
            let head = name.split('=').next().unwrap_or_default();
            match head {
                "UTF" | "UTF8" | "UCP" | "NO_AUTO_POSSESS" | "NO_START_OPT" | "NO_DOTSTAR_ANCHOR" | "NO_JIT" | "LF"
                | "BSR_UNICODE" => {}
                "LIMIT_MATCH" | "LIMIT_DEPTH" | "LIMIT_HEAP" | "LIMIT_RECURSION" => {}
                "BSR_ANYCRLF" => self.bsr_anycrlf = true,
                "CR" | "CRLF" | "ANYCRLF" | "ANY" | "NUL" => {
                    return unsupported(&format!("(*{name}) newline convention"))
                }
                "NOTEMPTY" | "NOTEMPTY_ATSTART" => return unsupported(&format!("(*{name})")),
                _ => {
                    // Not a start option: a verb such as (*FAIL), parsed as an item.
                    self.pos = save;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Parses alternatives up to `)` (not consumed) or the end.
    fn parse_alt(&mut self, in_group: bool) -> Result<Node, RegexError> {
        let mut branches = Vec::new();
        let mut concat: Vec<Node> = Vec::new();
        let mut last = Last::None;
        loop {
            if self.flags.x {
                self.skip_x_space();
            }
            let Some(c) = self.peek() else {
                if in_group {
                    return err("missing closing parenthesis");
                }
                break;
            };
            match c {
                ')' => {
                    if in_group {
                        break;
                    }
                    return err("unmatched closing parenthesis");
                }
                '|' => {
                    self.pos += 1;
                    branches.push(Node::Concat(std::mem::take(&mut concat)));
                    last = Last::None;
                }
                '*' | '+' | '?' => {
                    self.pos += 1;
                    let (min, max) = match c {
                        '*' => (0, None),
                        '+' => (1, None),
                        _ => (0, Some(1)),
                    };
                    self.apply_quantifier(&mut concat, &mut last, min, max)?;
                }
                '{' => {
                    if let Some((min, max, len)) = self.brace_quantifier()? {
                        self.pos += len;
                        self.apply_quantifier(&mut concat, &mut last, min, max)?;
                    } else {
                        self.pos += 1;
                        concat.push(self.lit('{'));
                        last = Last::Item(concat.len() - 1);
                    }
                }
                _ => {
                    if let Some(item) = self.parse_item()? {
                        match item {
                            Parsed::Atom(node) => {
                                concat.push(node);
                                last = Last::Item(concat.len() - 1);
                            }
                            Parsed::Fixed(node) => {
                                concat.push(node);
                                last = Last::None;
                            }
                            Parsed::Transparent => {}
                            Parsed::OptionSet => last = Last::None,
                            Parsed::Quoted(chars) => {
                                for ch in chars {
                                    concat.push(self.lit(ch));
                                    last = Last::Item(concat.len() - 1);
                                }
                            }
                        }
                    }
                }
            }
        }
        if branches.is_empty() {
            return Ok(Node::Concat(concat));
        }
        branches.push(Node::Concat(concat));
        Ok(Node::Alt(branches))
    }

    fn lit(&self, c: char) -> Node {
        Node::Lit {
            c,
            caseless: self.flags.i,
        }
    }

    fn skip_x_space(&mut self) {
        loop {
            match self.peek() {
                Some(c) if is_x_space(c) => self.pos += 1,
                Some('#') => {
                    while let Some(c) = self.next() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                _ => return,
            }
        }
    }

    /// `{n}`, `{n,}`, `{n,m}` at the current `{`: (min, max, length in chars). Anything else
    /// (including PCRE2 10.42's `{,n}`) is a literal brace.
    fn brace_quantifier(&self) -> Result<Option<(u32, Option<u32>, usize)>, RegexError> {
        let mut i = 1;
        let digits = |i: &mut usize| -> Option<String> {
            let mut s = String::new();
            while let Some(c) = self.peek_at(*i).filter(char::is_ascii_digit) {
                s.push(c);
                *i += 1;
            }
            (!s.is_empty()).then_some(s)
        };
        let Some(a) = digits(&mut i) else {
            return Ok(None);
        };
        let (min_s, max_s) = match self.peek_at(i) {
            Some('}') => (a.clone(), Some(Some(a))),
            Some(',') => {
                i += 1;
                match digits(&mut i) {
                    Some(b) if self.peek_at(i) == Some('}') => (a, Some(Some(b))),
                    None if self.peek_at(i) == Some('}') => (a, Some(None)),
                    _ => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        let Some(max_s) = max_s else {
            return Ok(None);
        };
        let num = |s: &str| -> Result<u32, RegexError> {
            match s.parse::<u64>() {
                Ok(v) if v <= u64::from(MAX_REPEAT) => Ok(v as u32),
                _ => err("number too big in {} quantifier"),
            }
        };
        let min = num(&min_s)?;
        let max = match max_s {
            Some(s) => Some(num(&s)?),
            None => None,
        };
        if let Some(m) = max {
            if m < min {
                return err("numbers out of order in {} quantifier");
            }
        }
        Ok(Some((min, max, i + 1)))
    }

    fn apply_quantifier(
        &mut self,
        concat: &mut [Node],
        last: &mut Last,
        min: u32,
        max: Option<u32>,
    ) -> Result<(), RegexError> {
        let Last::Item(idx) = *last else {
            return err("quantifier does not follow a repeatable item");
        };
        // In extended mode PCRE2 skips white space and comments before a quantifier's `+` or
        // `?` too: `(?x)a{2} +` is `a{2}+`.
        if self.flags.x {
            self.skip_x_space();
        }
        let mut kind = if self.eat('+') {
            RepKind::Possessive
        } else if self.eat('?') {
            RepKind::Lazy
        } else {
            RepKind::Greedy
        };
        if self.flags.ungreedy {
            kind = match kind {
                RepKind::Greedy => RepKind::Lazy,
                RepKind::Lazy => RepKind::Greedy,
                RepKind::Possessive => RepKind::Possessive,
            };
        }
        let Some(slot) = concat.get_mut(idx) else {
            return err("quantifier does not follow a repeatable item");
        };
        let node = std::mem::replace(slot, Node::Empty);
        let node = match node {
            // PCRE2: a quantified assertion is optional at most once. A varying quantifier
            // keeps `max` above `min` (two zero-width matches are one) so that a lookbehind
            // holding a quantified lookbehind is still "not fixed length", as PCRE2 says (a
            // quantified lookahead measures 0: see `fixed_len`). `unrepeat_assertions` later
            // takes off the quantifiers that change nothing.
            Node::Look { .. } => Node::Repeat {
                node: Box::new(node),
                min: min.min(1),
                max: Some(if Some(min) == max { min.min(1) } else { 2 }),
                kind: if kind == RepKind::Possessive {
                    RepKind::Greedy
                } else {
                    kind
                },
            },
            other => Node::Repeat {
                node: Box::new(other),
                min,
                max,
                kind,
            },
        };
        *slot = node;
        *last = Last::None;
        Ok(())
    }

    fn parse_item(&mut self) -> Result<Option<Parsed>, RegexError> {
        let Some(c) = self.next() else {
            return Ok(None);
        };
        let parsed = match c {
            '(' => self.parse_group()?,
            '[' => self.parse_class()?,
            '.' => Parsed::Atom(Node::Any { dotall: self.flags.s }),
            '^' => Parsed::Fixed(Node::Assert(if self.flags.m {
                Assert::LineStart
            } else {
                Assert::Start
            })),
            '$' => Parsed::Fixed(Node::Assert(if self.flags.m { Assert::LineEnd } else { Assert::End })),
            '\\' => self.parse_escape()?,
            _ => Parsed::Atom(self.lit(c)),
        };
        Ok(Some(parsed))
    }

    fn parse_escape(&mut self) -> Result<Parsed, RegexError> {
        let Some(c) = self.next() else {
            return err("\\ at end of pattern");
        };
        let atom = |n: Node| Ok(Parsed::Atom(n));
        match c {
            '1'..='9' => {
                let start = self.pos - 1;
                let mut n: usize = 0;
                let mut p = start;
                while let Some(d) = self.chars.get(p).and_then(|d| d.to_digit(10)) {
                    n = n.saturating_mul(10).saturating_add(d as usize);
                    p += 1;
                }
                if n < 10 || c == '8' || c == '9' || n <= self.groups {
                    self.pos = p;
                    return atom(Node::Backref {
                        target: Ref::Num(n),
                        caseless: self.flags.i,
                    });
                }
                self.pos = start;
                let v = self.octal_digits(3);
                atom(self.lit(char_from(v)?))
            }
            '0' => {
                let v = self.octal_digits(2);
                atom(self.lit(char_from(v)?))
            }
            'g' => self.parse_g_ref(),
            'k' => {
                let name = match self.next() {
                    Some('<') => self.read_name('>')?,
                    Some('\'') => self.read_name('\'')?,
                    Some('{') => self.read_name('}')?,
                    _ => return err("\\k is not followed by a braced, angle-bracketed, or quoted name"),
                };
                atom(Node::Backref {
                    target: Ref::Name(name),
                    caseless: self.flags.i,
                })
            }
            'A' => Ok(Parsed::Fixed(Node::Assert(Assert::Start))),
            'z' => Ok(Parsed::Fixed(Node::Assert(Assert::EndAbs))),
            'Z' => Ok(Parsed::Fixed(Node::Assert(Assert::End))),
            'G' => Ok(Parsed::Fixed(Node::Assert(Assert::Continue))),
            'b' => Ok(Parsed::Fixed(Node::Assert(Assert::WordB))),
            'B' => Ok(Parsed::Fixed(Node::Assert(Assert::NotWordB))),
            'K' => Ok(Parsed::Fixed(Node::Keep)),
            'R' => atom(Node::Linebreak {
                anycrlf: self.bsr_anycrlf,
            }),
            'X' => atom(Node::Grapheme),
            'C' => unsupported("\\C (single code unit)"),
            'N' => {
                if self.peek() == Some('{') {
                    let v = self.braced_number("U+", 16)?;
                    atom(self.lit(char_from(v)?))
                } else {
                    atom(Node::Any { dotall: false })
                }
            }
            'Q' => {
                let mut chars = Vec::new();
                while let Some(q) = self.next() {
                    if q == '\\' && self.peek() == Some('E') {
                        self.pos += 1;
                        break;
                    }
                    chars.push(q);
                }
                Ok(if chars.is_empty() {
                    Parsed::Transparent
                } else {
                    Parsed::Quoted(chars)
                })
            }
            'E' => Ok(Parsed::Transparent),
            'p' | 'P' => {
                let s = self.parse_property(c == 'P')?;
                atom(Node::Class(Class {
                    negated: false,
                    caseless: self.flags.i,
                    items: vec![Item::Set(s)],
                }))
            }
            _ => match self.simple_escape(c)? {
                Some(Esc::Char(ch)) => atom(self.lit(ch)),
                Some(Esc::Set(s)) => atom(Node::Class(Class {
                    negated: false,
                    caseless: self.flags.i,
                    items: vec![Item::Set(s)],
                })),
                None => err(format!("unrecognized character follows \\: {c}")),
            },
        }
    }

    /// Escapes that mean the same inside and outside a class.
    fn simple_escape(&mut self, c: char) -> Result<Option<Esc>, RegexError> {
        let e = match c {
            'a' => Esc::Char('\x07'),
            'e' => Esc::Char('\x1B'),
            'f' => Esc::Char('\x0C'),
            'n' => Esc::Char('\n'),
            'r' => Esc::Char('\r'),
            't' => Esc::Char('\t'),
            'x' => {
                if self.peek() == Some('{') {
                    Esc::Char(char_from(self.braced_number("", 16)?)?)
                } else {
                    let mut v = 0u32;
                    for _ in 0..2 {
                        match self.peek().and_then(|d| d.to_digit(16)) {
                            Some(d) => {
                                v = v * 16 + d;
                                self.pos += 1;
                            }
                            None => break,
                        }
                    }
                    Esc::Char(char_from(v)?)
                }
            }
            'o' => {
                if self.peek() != Some('{') {
                    return err("missing opening brace after \\o");
                }
                Esc::Char(char_from(self.braced_number("", 8)?)?)
            }
            'c' => match self.next() {
                Some(x) if (' '..='~').contains(&x) => Esc::Char(char_from(u32::from(x.to_ascii_uppercase()) ^ 0x40)?),
                _ => return err("\\c must be followed by a printable ASCII character"),
            },
            'd' | 'D' | 's' | 'S' | 'w' | 'W' | 'h' | 'H' | 'v' | 'V' => match escape_set(c) {
                Some(s) => Esc::Set(s),
                None => return Ok(None),
            },
            _ if c.is_ascii_alphanumeric() => return Ok(None),
            _ => Esc::Char(c),
        };
        Ok(Some(e))
    }

    fn octal_digits(&mut self, max: usize) -> u32 {
        let mut v = 0;
        for _ in 0..max {
            match self.peek().and_then(|d| d.to_digit(8)) {
                Some(d) => {
                    v = v * 8 + d;
                    self.pos += 1;
                }
                None => break,
            }
        }
        v
    }

    /// `{digits}` after `\x`, `\o` or `\N` (with `prefix` such as `U+`).
    fn braced_number(&mut self, prefix: &str, radix: u32) -> Result<u32, RegexError> {
        if !self.eat('{') {
            return err("missing opening brace");
        }
        for p in prefix.chars() {
            if !self.eat(p) {
                return unsupported("\\N{name}");
            }
        }
        let mut v: u64 = 0;
        let mut any = false;
        loop {
            match self.next() {
                Some('}') if any => break,
                Some('}') => return err("digits missing in \\x{} or \\o{} or \\N{U+}"),
                Some(d) => match d.to_digit(radix) {
                    Some(d) => {
                        any = true;
                        v = v.saturating_mul(u64::from(radix)).saturating_add(u64::from(d));
                    }
                    None => return err("non-hex character in \\x{} (closing brace missing?)"),
                },
                None => return err("missing closing brace"),
            }
        }
        u32::try_from(v).or_else(|_| err("character code point value in \\x{} or \\o{} is too large"))
    }

    fn parse_g_ref(&mut self) -> Result<Parsed, RegexError> {
        let caseless = self.flags.i;
        let spec = match self.peek() {
            Some('<') | Some('\'') => return unsupported("\\g<…> subroutine call"),
            Some('{') => {
                self.pos += 1;
                let mut s = String::new();
                loop {
                    match self.next() {
                        Some('}') => break,
                        Some(ch) => s.push(ch),
                        None => return err("\\g is not followed by a braced, angle-bracketed, or quoted name/number"),
                    }
                }
                s
            }
            _ => {
                let mut s = String::new();
                if self.peek() == Some('-') || self.peek() == Some('+') {
                    s.extend(self.next());
                }
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    s.push(d);
                    self.pos += 1;
                }
                s
            }
        };
        let target = if let Some(rest) = spec.strip_prefix('-') {
            let n: usize = rest.parse().or_else(|_| err("a numbered reference must not be zero"))?;
            if n == 0 || n > self.groups {
                return err("reference to non-existent subpattern");
            }
            Ref::Num(self.groups + 1 - n)
        } else if let Some(rest) = spec.strip_prefix('+') {
            let n: usize = rest.parse().or_else(|_| err("a numbered reference must not be zero"))?;
            if n == 0 {
                return err("a numbered reference must not be zero");
            }
            Ref::Num(self.groups + n)
        } else if !spec.is_empty() && spec.chars().all(|c| c.is_ascii_digit()) {
            match spec.parse::<usize>() {
                Ok(0) | Err(_) => return err("a numbered reference must not be zero"),
                Ok(n) => Ref::Num(n),
            }
        } else if valid_name(&spec) {
            Ref::Name(spec)
        } else {
            return err("\\g is not followed by a braced, angle-bracketed, or quoted name/number");
        };
        Ok(Parsed::Atom(Node::Backref { target, caseless }))
    }

    fn read_name(&mut self, term: char) -> Result<String, RegexError> {
        let mut name = String::new();
        loop {
            match self.next() {
                Some(c) if c == term => break,
                Some(c) if c.is_alphanumeric() || c == '_' => name.push(c),
                Some(_) | None => return err("syntax error in subpattern name (missing terminator?)"),
            }
        }
        if name.is_empty() {
            return err("subpattern name expected");
        }
        if name.starts_with(|c: char| c.is_numeric()) {
            return err("subpattern name must start with a non-digit");
        }
        if name.len() > MAX_NAME_BYTES {
            return err("subpattern name is too long (maximum 32 code units)");
        }
        Ok(name)
    }

    fn parse_property(&mut self, negated: bool) -> Result<Set, RegexError> {
        let raw: String = match self.next() {
            Some('{') => {
                let mut s = String::new();
                loop {
                    match self.next() {
                        Some('}') => break,
                        Some(c) => s.push(c),
                        None => return err("malformed \\P or \\p sequence"),
                    }
                }
                s
            }
            Some(c) if c.is_ascii_alphabetic() => c.to_string(),
            _ => return err("malformed \\P or \\p sequence"),
        };
        let (neg2, name) = match raw.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, raw.as_str()),
        };
        if name.is_empty() {
            return err("malformed \\P or \\p sequence");
        }
        let s = property_set(name)?;
        if negated != neg2 {
            let text = if let Some(inner) = s.text.strip_prefix(r"\p") {
                format!(r"\P{inner}")
            } else {
                format!("[^{}]", s.text)
            };
            return Ok(set(text, s.fold_closed));
        }
        Ok(s)
    }

    fn parse_group(&mut self) -> Result<Parsed, RegexError> {
        if self.peek() == Some('*') {
            return self.parse_verb();
        }
        if !self.eat('?') {
            let capture = !self.flags.n;
            if capture {
                self.groups += 1;
            }
            let node = self.group_body()?;
            return Ok(Parsed::Atom(Node::Group {
                capture,
                node: Box::new(node),
            }));
        }
        let Some(c) = self.next() else {
            return err("missing closing parenthesis");
        };
        match c {
            '#' => {
                while let Some(ch) = self.next() {
                    if ch == ')' {
                        return Ok(Parsed::Transparent);
                    }
                }
                err("missing ) after (?# comment")
            }
            ':' => self.non_capture(),
            '|' => unsupported("(?| branch reset group"),
            '>' => Ok(Parsed::Atom(Node::Atomic(Box::new(self.group_body()?)))),
            '=' | '!' => self.look(true, c == '!'),
            '<' => match self.peek() {
                Some('=') | Some('!') => {
                    let negate = self.next() == Some('!');
                    self.look(false, negate)
                }
                Some('*') => unsupported("(?<* non-atomic lookbehind"),
                _ => self.named_group('>'),
            },
            '\'' => self.named_group('\''),
            'P' => match self.next() {
                Some('<') => self.named_group('>'),
                Some('=') => {
                    let name = self.read_name(')')?;
                    Ok(Parsed::Atom(Node::Backref {
                        target: Ref::Name(name),
                        caseless: self.flags.i,
                    }))
                }
                Some('>') => unsupported("(?P>name) subroutine call"),
                _ => err("unrecognized character after (?P"),
            },
            'R' | '&' | '0'..='9' | '+' => unsupported("recursion or subroutine call"),
            '-' if self.peek().is_some_and(|d| d.is_ascii_digit()) => unsupported("recursion or subroutine call"),
            '(' => unsupported("conditional group (?(…)…)"),
            'C' => unsupported("callout (?C…)"),
            '*' => unsupported("(?* non-atomic lookahead"),
            _ => {
                self.pos -= 1;
                self.option_setting()
            }
        }
    }

    fn non_capture(&mut self) -> Result<Parsed, RegexError> {
        let node = self.group_body()?;
        Ok(Parsed::Atom(Node::Group {
            capture: false,
            node: Box::new(node),
        }))
    }

    fn look(&mut self, ahead: bool, negate: bool) -> Result<Parsed, RegexError> {
        let node = self.group_body()?;
        Ok(Parsed::Atom(Node::Look {
            ahead,
            negate,
            node: Box::new(node),
        }))
    }

    fn named_group(&mut self, term: char) -> Result<Parsed, RegexError> {
        let name = self.read_name(term)?;
        self.groups += 1;
        if !self.flags.dupnames && self.names.iter().any(|(n, _)| *n == name) {
            return err("two named subpatterns have the same name (PCRE2_DUPNAMES not set)");
        }
        self.names.push((name, self.groups));
        let node = self.group_body()?;
        Ok(Parsed::Atom(Node::Group {
            capture: true,
            node: Box::new(node),
        }))
    }

    fn group_body(&mut self) -> Result<Node, RegexError> {
        self.depth += 1;
        if self.depth > NEST_LIMIT {
            return err("parentheses are too deeply nested");
        }
        let saved = self.flags;
        let node = self.parse_alt(true)?;
        self.flags = saved;
        self.depth -= 1;
        if !self.eat(')') {
            return err("missing closing parenthesis");
        }
        Ok(node)
    }

    fn option_setting(&mut self) -> Result<Parsed, RegexError> {
        let mut f = self.flags;
        let mut on = true;
        if self.eat('^') {
            f.i = false;
            f.m = false;
            f.n = false;
            f.s = false;
            f.x = false;
            f.xx = false;
        }
        let caret = self.chars.get(self.pos.wrapping_sub(1)) == Some(&'^');
        loop {
            let Some(c) = self.next() else {
                return err("missing closing parenthesis");
            };
            match c {
                '-' => {
                    if !on || caret {
                        return err("invalid hyphen in option setting");
                    }
                    on = false;
                }
                'i' => f.i = on,
                'm' => f.m = on,
                's' => f.s = on,
                'n' => f.n = on,
                'U' => f.ungreedy = on,
                'J' => f.dupnames = on,
                'x' => {
                    if on && self.peek() == Some('x') {
                        self.pos += 1;
                        f.xx = true;
                    } else if !on {
                        f.xx = false;
                    }
                    f.x = on;
                }
                ')' => {
                    self.flags = f;
                    return Ok(Parsed::OptionSet);
                }
                ':' => {
                    let saved = self.flags;
                    self.flags = f;
                    let r = self.non_capture();
                    self.flags = saved;
                    return r;
                }
                _ => return err("unrecognized character after (? or (?-"),
            }
        }
    }

    fn parse_verb(&mut self) -> Result<Parsed, RegexError> {
        self.pos += 1; // '*'
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_ascii_alphabetic() || *c == '_') {
            name.push(c);
            self.pos += 1;
        }
        if name.is_empty() {
            return err("quantifier does not follow a repeatable item");
        }
        match self.next() {
            Some(')') => match name.as_str() {
                "FAIL" | "F" => Ok(Parsed::Fixed(Node::Fail)),
                "ACCEPT" | "COMMIT" | "PRUNE" | "SKIP" | "THEN" | "MARK" => {
                    unsupported(&format!("(*{name}) backtracking verb"))
                }
                _ => err(format!("(*VERB) not recognized or malformed: {name}")),
            },
            Some(':') => {
                let (ahead, negate) = match name.as_str() {
                    "pla" | "positive_lookahead" => (true, false),
                    "nla" | "negative_lookahead" => (true, true),
                    "plb" | "positive_lookbehind" => (false, false),
                    "nlb" | "negative_lookbehind" => (false, true),
                    "atomic" => return Ok(Parsed::Atom(Node::Atomic(Box::new(self.group_body()?)))),
                    "napla"
                    | "non_atomic_positive_lookahead"
                    | "naplb"
                    | "non_atomic_positive_lookbehind"
                    | "sr"
                    | "script_run"
                    | "asr"
                    | "atomic_script_run" => return unsupported(&format!("(*{name}:")),
                    "MARK" | "PRUNE" | "SKIP" | "THEN" => {
                        return unsupported(&format!("(*{name}:…) backtracking verb"))
                    }
                    _ => return err(format!("(*VERB) not recognized or malformed: {name}")),
                };
                self.look(ahead, negate)
            }
            _ => err(format!("(*VERB) not recognized or malformed: {name}")),
        }
    }

    // -- character classes ---------------------------------------------------------------

    fn parse_class(&mut self) -> Result<Parsed, RegexError> {
        if self.looking_at("[:<:]]") || self.looking_at("[:>:]]") {
            let start = self.peek_at(2) == Some('<');
            self.pos += 6;
            return Ok(Parsed::Fixed(Node::Assert(if start {
                Assert::WordStart
            } else {
                Assert::WordEnd
            })));
        }
        if matches!(self.peek(), Some(':' | '.' | '=')) && self.posix_ahead() {
            return err("POSIX named classes are supported only within a class");
        }
        let negated = self.eat('^');
        let mut items: Vec<Item> = Vec::new();
        let mut first = true;
        loop {
            if self.flags.xx {
                while matches!(self.peek(), Some(' ' | '\t')) {
                    self.pos += 1;
                }
            }
            let Some(c) = self.next() else {
                return err("missing terminating ] for character class");
            };
            if c == ']' && !first {
                break;
            }
            first = false;
            let item = match c {
                '[' if matches!(self.peek(), Some(':' | '.' | '=')) && self.posix_ahead() => Some(self.parse_posix()?),
                '\\' => self.class_escape()?,
                _ => Some(ClassAtom::Char(c)),
            };
            let Some(item) = item else { continue };
            // A hyphen followed by anything but `]` makes a range.
            let is_range = self.peek() == Some('-') && self.peek_at(1).is_some() && self.peek_at(1) != Some(']');
            match item {
                ClassAtom::Set(s) => {
                    if is_range {
                        return err("invalid range in character class");
                    }
                    items.push(Item::Set(s));
                }
                ClassAtom::Quoted(chars) => items.extend(chars.into_iter().map(Item::Char)),
                ClassAtom::Char(lo) => {
                    if !is_range {
                        items.push(Item::Char(lo));
                        continue;
                    }
                    self.pos += 1; // '-'
                    let hi_c = self.next().unwrap_or(']');
                    let hi = match hi_c {
                        '[' if matches!(self.peek(), Some(':' | '.' | '=')) && self.posix_ahead() => {
                            return err("invalid range in character class");
                        }
                        '\\' => match self.class_escape()? {
                            Some(ClassAtom::Char(h)) => h,
                            Some(ClassAtom::Quoted(q)) => {
                                // `[a-\Qz\E]`: the first quoted char ends the range.
                                let mut q = q.into_iter();
                                let h = q.next().unwrap_or('\\');
                                if h < lo {
                                    return err("range out of order in character class");
                                }
                                items.push(Item::Range(lo, h));
                                items.extend(q.map(Item::Char));
                                continue;
                            }
                            Some(ClassAtom::Set(_)) => return err("invalid range in character class"),
                            None => {
                                items.push(Item::Char(lo));
                                items.push(Item::Char('-'));
                                continue;
                            }
                        },
                        h => h,
                    };
                    if hi < lo {
                        return err("range out of order in character class");
                    }
                    items.push(Item::Range(lo, hi));
                }
            }
        }
        Ok(Parsed::Atom(Node::Class(Class {
            negated,
            caseless: self.flags.i,
            items,
        })))
    }

    /// After `[` with `:`/`.`/`=` next: does a matching terminator (`:]`) follow before `]`?
    fn posix_ahead(&self) -> bool {
        let Some(term) = self.peek() else {
            return false;
        };
        let mut i = 1;
        while let Some(c) = self.peek_at(i) {
            if c == '\\' && matches!(self.peek_at(i + 1), Some(']' | '\\')) {
                i += 2;
                continue;
            }
            if c == '[' && matches!(self.peek_at(i + 1), Some(':' | '.' | '=')) {
                return false;
            }
            if c == ']' {
                return false;
            }
            if c == term && self.peek_at(i + 1) == Some(']') {
                return true;
            }
            i += 1;
        }
        false
    }

    fn parse_posix(&mut self) -> Result<ClassAtom, RegexError> {
        let Some(kind) = self.next() else {
            return err("missing terminating ] for character class");
        };
        if kind != ':' {
            return err("POSIX collating elements are not supported");
        }
        let neg = self.eat('^');
        let mut name = String::new();
        while let Some(c) = self.next() {
            if c == ':' && self.eat(']') {
                break;
            }
            name.push(c);
        }
        match posix_set(&name, neg) {
            Some(s) => Ok(ClassAtom::Set(s)),
            None => err("unknown POSIX class name"),
        }
    }

    fn class_escape(&mut self) -> Result<Option<ClassAtom>, RegexError> {
        let Some(c) = self.next() else {
            return err("\\ at end of pattern");
        };
        let atom = match c {
            'b' => ClassAtom::Char('\x08'),
            '0'..='7' => {
                self.pos -= 1;
                ClassAtom::Char(char_from(self.octal_digits(3))?)
            }
            '8' | '9' => ClassAtom::Char(c),
            'N' => return err("\\N is not supported in a class"),
            'B' | 'R' | 'X' => return err("escape sequence is invalid in character class"),
            'Q' => {
                let mut chars = Vec::new();
                while let Some(q) = self.next() {
                    if q == '\\' && self.peek() == Some('E') {
                        self.pos += 1;
                        break;
                    }
                    chars.push(q);
                }
                if chars.is_empty() {
                    return Ok(None);
                }
                ClassAtom::Quoted(chars)
            }
            'E' => return Ok(None),
            'p' | 'P' => ClassAtom::Set(self.parse_property(c == 'P')?),
            _ => match self.simple_escape(c)? {
                Some(Esc::Char(ch)) => ClassAtom::Char(ch),
                Some(Esc::Set(s)) => ClassAtom::Set(s),
                None => return err(format!("unrecognized character follows \\: {c}")),
            },
        };
        Ok(Some(atom))
    }
}

enum Parsed {
    /// Quantifiable item.
    Atom(Node),
    /// Item that a quantifier may not follow (assertions, `\K`, `(*FAIL)`).
    Fixed(Node),
    /// Comments, `\E`, empty `\Q\E`: invisible to quantifiers.
    Transparent,
    /// `(?i)` and friends: a following quantifier is an error.
    OptionSet,
    /// `\Q…\E`: literals, the last one quantifiable.
    Quoted(Vec<char>),
}

enum Esc {
    Char(char),
    Set(Set),
}

enum ClassAtom {
    Char(char),
    Set(Set),
    Quoted(Vec<char>),
}

fn char_from(v: u32) -> Result<char, RegexError> {
    if (0xD800..=0xDFFF).contains(&v) {
        return err("disallowed Unicode code point (>= 0xd800 && <= 0xdfff)");
    }
    char::from_u32(v).map_or_else(|| err("character code point value in \\x{} or \\o{} is too large"), Ok)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_BYTES
        && !s.starts_with(|c: char| c.is_numeric())
        && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

// ---------------------------------------------------------------------------------------------
// Post-parse checks
// ---------------------------------------------------------------------------------------------

struct Resolver<'a> {
    groups: usize,
    names: &'a [(String, usize)],
    /// Capture groups' sub-patterns by number (index 0 unused), for measuring backreferences.
    group_nodes: &'a [Node],
}

impl Resolver<'_> {
    /// Resolves named references to numbers and checks PCRE's structural rules.
    fn resolve(&self, node: &mut Node, in_look: bool, in_lookbehind: bool) -> Result<(), RegexError> {
        match node {
            Node::Backref { target, .. } => {
                let n = match target {
                    Ref::Num(n) => *n,
                    Ref::Name(name) => {
                        let mut hits = self.names.iter().filter(|(n, _)| n == name);
                        let Some((_, idx)) = hits.next() else {
                            return err("reference to non-existent subpattern");
                        };
                        if hits.next().is_some() {
                            return unsupported("backreference to a duplicated group name");
                        }
                        *idx
                    }
                };
                if n == 0 || n > self.groups {
                    return err("reference to non-existent subpattern");
                }
                // Inside a lookbehind PCRE2 10.42 takes a backreference to a group of fixed
                // length: the lookbehind is measured with it (below).
                *target = Ref::Num(n);
                Ok(())
            }
            Node::Keep if in_look => unsupported("\\K inside an assertion"),
            Node::Linebreak { .. } | Node::Grapheme if in_lookbehind => err("lookbehind assertion is not fixed length"),
            Node::Group { node, .. } | Node::Atomic(node) | Node::Repeat { node, .. } => {
                self.resolve(node, in_look, in_lookbehind)
            }
            Node::Look { ahead, node, .. } => {
                // A lookahead inside a lookbehind is zero-width: PCRE2 does not measure it.
                self.resolve(node, true, !*ahead)?;
                if !*ahead {
                    let branches: Vec<&Node> = match &**node {
                        Node::Alt(bs) => bs.iter().collect(),
                        other => vec![other],
                    };
                    if branches.iter().any(|b| self.width(b).is_none()) {
                        return err("lookbehind assertion is not fixed length");
                    }
                }
                Ok(())
            }
            Node::Concat(items) | Node::Alt(items) => items
                .iter_mut()
                .try_for_each(|n| self.resolve(n, in_look, in_lookbehind)),
            _ => Ok(()),
        }
    }

    /// [`fixed_len_with`] with this pattern's groups and names (references by name are
    /// resolved when the lookbehind's own contents were).
    fn width(&self, node: &Node) -> Option<usize> {
        fixed_len_with(node, self.group_nodes, 0)
    }
}

/// Length in characters if every path has the same one (PCRE2 10.42's lookbehind rule); a
/// backreference has none.
fn fixed_len(node: &Node) -> Option<usize> {
    fixed_len_with(node, &[], 0)
}

/// How deep backreferences are followed into the groups they name (a group referring to
/// itself, or two to each other, is not of fixed length).
const BACKREF_DEPTH: u32 = 8;

/// [`fixed_len`], where a backreference to group `n` has `groups[n]`'s length when it has
/// one (PCRE2 takes a backreference inside a lookbehind to a group of fixed length).
fn fixed_len_with(node: &Node, groups: &[Node], depth: u32) -> Option<usize> {
    let len = |n: &Node| fixed_len_with(n, groups, depth);
    match node {
        Node::Empty | Node::Assert(_) | Node::Keep | Node::Fail | Node::Look { .. } => Some(0),
        Node::Lit { .. } | Node::Any { .. } | Node::Class(_) => Some(1),
        Node::Linebreak { .. } | Node::Grapheme => None,
        Node::Backref {
            target: Ref::Num(n), ..
        } if depth < BACKREF_DEPTH => groups.get(*n).and_then(|g| fixed_len_with(g, groups, depth + 1)),
        Node::Backref { .. } => None,
        Node::Group { node, .. } | Node::Atomic(node) => len(node),
        Node::Concat(items) => items
            .iter()
            .try_fold(0usize, |acc, n| len(n).map(|l| acc.saturating_add(l))),
        Node::Alt(items) => {
            let mut lens = items.iter().map(len);
            let first = lens.next().flatten()?;
            lens.all(|l| l == Some(first)).then_some(first)
        }
        // PCRE2 skips any quantifier after a lookahead when it measures a lookbehind.
        Node::Repeat { node, .. } if matches!(**node, Node::Look { ahead: true, .. }) => Some(0),
        Node::Repeat { node, min, max, .. } => {
            if Some(*min) != *max {
                return None;
            }
            len(node).map(|l| l.saturating_mul(*min as usize))
        }
    }
}

/// Whether `node` holds a backreference outside any lookahead or lookbehind of its own.
fn has_backref(node: &Node) -> bool {
    match node {
        Node::Backref { .. } => true,
        Node::Group { node, .. } | Node::Atomic(node) | Node::Repeat { node, .. } => has_backref(node),
        Node::Concat(items) | Node::Alt(items) => items.iter().any(has_backref),
        _ => false,
    }
}

/// Takes the quantifier off an assertion where it changes nothing, once the tree has passed
/// PCRE's checks: a lookahead's quantifier, or a fixed count on any assertion, leaves the
/// assertion once or, with a minimum of 0, not at all. An assertion is zero-width, so one the
/// match may skip never stops it. (PCRE2 likewise ignores a quantifier after a lookahead when
/// it measures a lookbehind, and the backends would take a repeated lookaround inside a
/// lookbehind for one of variable length.) Kept as written when groups inside would show,
/// by their captures, whether it ran.
fn unrepeat_assertions(node: &mut Node) {
    match node {
        Node::Repeat {
            node: inner, min, max, ..
        } => {
            unrepeat_assertions(inner);
            // After parsing, a quantified assertion's `max` equals `min` only for a fixed count.
            if let Node::Look { ahead, .. } = **inner {
                if (ahead || Some(*min) == *max) && !has_capture(inner) {
                    let kept = if *min == 0 {
                        Node::Empty
                    } else {
                        std::mem::replace(&mut **inner, Node::Empty)
                    };
                    *node = kept;
                }
            }
        }
        Node::Group { node, .. } | Node::Atomic(node) | Node::Look { node, .. } => unrepeat_assertions(node),
        Node::Concat(items) | Node::Alt(items) => items.iter_mut().for_each(unrepeat_assertions),
        _ => {}
    }
}

/// Whether `node` holds a capturing group.
fn has_capture(node: &Node) -> bool {
    match node {
        Node::Group { capture: true, .. } => true,
        Node::Group { node, .. } | Node::Atomic(node) | Node::Look { node, .. } | Node::Repeat { node, .. } => {
            has_capture(node)
        }
        Node::Concat(items) | Node::Alt(items) => items.iter().any(has_capture),
        _ => false,
    }
}

fn contains_keep(node: &Node) -> bool {
    match node {
        Node::Keep => true,
        Node::Group { node, .. } | Node::Atomic(node) | Node::Repeat { node, .. } => contains_keep(node),
        Node::Look { .. } => false,
        Node::Concat(items) | Node::Alt(items) => items.iter().any(contains_keep),
        _ => false,
    }
}

/// (can match empty, can match non-empty, when it can match both: every empty-matching path
/// has lower priority than every non-empty one). The last property means PHP's non-empty retry
/// after an empty match can never succeed, so no retry engine is needed.
fn empty_info(node: &Node) -> (bool, bool, bool) {
    match node {
        Node::Empty | Node::Assert(_) | Node::Keep | Node::Look { .. } => (true, false, true),
        Node::Fail => (false, false, true),
        Node::Lit { .. } | Node::Any { .. } | Node::Class(_) | Node::Linebreak { .. } | Node::Grapheme => {
            (false, true, true)
        }
        // A backreference matches one fixed string: no alternative paths.
        Node::Backref { .. } => (true, true, true),
        Node::Group { node, .. } | Node::Atomic(node) => empty_info(node),
        Node::Concat(items) => {
            let mut nullable = true;
            let mut nonempty = false;
            let mut last_ok = true;
            for n in items {
                let (e, ne, ok) = empty_info(n);
                nonempty |= ne;
                last_ok &= ok || !e;
                nullable &= e;
            }
            (nullable, nonempty, !nullable || last_ok)
        }
        Node::Alt(items) => {
            let mut nullable = false;
            let mut nonempty = false;
            let mut ok = true;
            for n in items {
                let (e, ne, o) = empty_info(n);
                if nullable && ne {
                    // An earlier branch could match empty before this non-empty one.
                    ok = false;
                }
                ok &= o;
                nullable |= e;
                nonempty |= ne;
            }
            (nullable, nonempty, ok)
        }
        Node::Repeat { node, min, max, kind } => {
            let (e, ne, ok) = empty_info(node);
            let nullable = *min == 0 || e;
            let nonempty = ne && *max != Some(0);
            let lazy_prefers_empty = *kind == RepKind::Lazy && *min == 0 && ne;
            (
                nullable,
                nonempty,
                ok && !lazy_prefers_empty && !(*kind == RepKind::Lazy && e),
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Emission
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// `regex` crate: must not need anything non-regular.
    Fast,
    /// `fancy-regex`, exact for every haystack.
    Exact,
    /// `regex` crate, a necessary condition only: matches wherever the pattern can match (and
    /// possibly elsewhere). Assertions and lookaround are dropped, `$`/`^` widened to their
    /// multi-line forms, atomic groups and possessive quantifiers made ordinary, and a
    /// backreference replaced by its group's sub-pattern; each step only widens the set of
    /// matches.
    Relaxed,
}

/// Marker: the tree needs a construct the fast engine does not have.
struct NeedsExact;

#[derive(Default)]
struct Deps {
    final_newline: bool,
    /// Multi-line `^`: Rust's also matches after a final `\n`, PCRE2's does not.
    line_start: bool,
    word: bool,
}

/// `regex` syntax for one literal character, safe in and outside classes, for both engines.
fn push_char(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:X}}}", c as u32);
    }
}

/// True when simple case folding maps `c` only to itself.
fn case_invariant(c: char) -> bool {
    !c.is_alphabetic() && c.to_lowercase().eq([c]) && c.to_uppercase().eq([c])
}

fn item_invariant(item: &Item) -> bool {
    match item {
        Item::Char(c) => case_invariant(*c),
        Item::Range(a, b) => (*b as u32).saturating_sub(*a as u32) <= 512 && (*a..=*b).all(case_invariant),
        Item::Set(s) => s.fold_closed,
    }
}

/// The pairs added to simple case folding after Unicode 14 (U+0390/U+1FD3, U+03B0/U+1FE3,
/// U+FB05/U+FB06): PCRE2 10.42 does not fold them together, Rust's `(?i)` does.
const FOLDED_AFTER_14: [(u32, u32); 5] = [
    (0x0390, 0x0390),
    (0x03B0, 0x03B0),
    (0x1FD3, 0x1FD3),
    (0x1FE3, 0x1FE3),
    (0xFB05, 0xFB06),
];

/// The characters PCRE2 10.42 matches caselessly only as themselves while Rust's `(?i)`
/// (Unicode 16) gives them a pair: those whose case pair is newer than Unicode 14
/// ([`crate::normalize::CASED_AFTER_PHP`]) and [`FOLDED_AFTER_14`]. Sorted and apart.
fn no_pcre_pair_ranges() -> &'static [(u32, u32)] {
    static RANGES: std::sync::OnceLock<Vec<(u32, u32)>> = std::sync::OnceLock::new();
    RANGES.get_or_init(|| {
        let mut all = [&crate::normalize::CASED_AFTER_PHP[..], &FOLDED_AFTER_14[..]].concat();
        all.sort_unstable();
        all
    })
}

fn no_pcre_pair(c: char) -> bool {
    let c = u32::from(c);
    no_pcre_pair_ranges()
        .iter()
        .take_while(|&&(lo, _)| lo <= c)
        .any(|&(_, hi)| c <= hi)
}

/// Puts the range `a-b` into `folded` and `exact`: the characters of [`no_pcre_pair_ranges`]
/// into `exact`, the rest into `folded`.
fn split_no_pcre_pair(a: char, b: char, folded: &mut Vec<Item>, exact: &mut Vec<Item>) {
    let item = |lo: u32, hi: u32| match (char::from_u32(lo), char::from_u32(hi)) {
        (Some(l), Some(h)) if l == h => Some(Item::Char(l)),
        (Some(l), Some(h)) => Some(Item::Range(l, h)),
        _ => None,
    };
    let (mut at, end) = (u32::from(a), u32::from(b));
    for &(lo, hi) in no_pcre_pair_ranges() {
        if hi < at || lo > end {
            continue;
        }
        if lo > at {
            folded.extend(item(at, lo - 1));
        }
        exact.extend(item(lo.max(at), hi.min(end)));
        at = hi + 1;
        if at > end {
            return;
        }
    }
    folded.extend(item(at, end));
}

fn push_items(out: &mut String, items: &[&Item]) {
    for item in items {
        match item {
            Item::Char(c) => push_char(out, *c),
            Item::Range(a, b) => {
                push_char(out, *a);
                out.push('-');
                push_char(out, *b);
            }
            Item::Set(s) => out.push_str(&s.text),
        }
    }
}

fn class_text(items: &[&Item], negated: bool) -> String {
    let mut s = String::from(if negated { "[^" } else { "[" });
    push_items(&mut s, items);
    s.push(']');
    s
}

struct Emitter {
    target: Target,
    deps: Deps,
    /// Relaxed and exact targets: capture groups' sub-patterns by group number (index 0
    /// unused), for a backreference's expansion and its length.
    groups: Vec<Node>,
    /// Relaxed target: inside a backreference's expansion (no nested expansion).
    in_backref: bool,
}

/// Collects every capture group's sub-pattern, by number (PCRE numbers groups by the order of
/// their opening parentheses, a pre-order walk).
fn collect_groups(node: &Node, out: &mut Vec<Node>) {
    match node {
        Node::Group { capture, node } => {
            if *capture {
                out.push((**node).clone());
            }
            collect_groups(node, out);
        }
        Node::Atomic(node) | Node::Repeat { node, .. } | Node::Look { node, .. } => collect_groups(node, out),
        Node::Concat(items) | Node::Alt(items) => {
            for n in items {
                collect_groups(n, out);
            }
        }
        _ => {}
    }
}

/// `\b` for the exact engine, from PCRE2's `\w`: a word character behind (`=`) or not (`!`).
fn w_behind(op: char) -> String {
    format!("(?<{op}{})", w_set())
}

/// A word character ahead (`=`) or not (`!`).
fn w_ahead(op: char) -> String {
    format!("(?{op}{})", w_set())
}

impl Emitter {
    fn new(target: Target) -> Emitter {
        Emitter {
            target,
            deps: Deps::default(),
            groups: Vec::new(),
            in_backref: false,
        }
    }

    fn exact_only(&self) -> Result<(), NeedsExact> {
        if self.target == Target::Fast {
            Err(NeedsExact)
        } else {
            Ok(())
        }
    }

    fn emit(&mut self, node: &Node, out: &mut String) -> Result<(), NeedsExact> {
        match node {
            Node::Empty => {}
            Node::Lit { c, caseless } => {
                // Some characters Rust pairs have no pair in PCRE2 10.42 (see no_pcre_pair_ranges).
                if *caseless && !case_invariant(*c) && !no_pcre_pair(*c) {
                    out.push_str("(?i:");
                    push_char(out, *c);
                    out.push(')');
                } else {
                    push_char(out, *c);
                }
            }
            Node::Any { dotall } => out.push_str(if *dotall { r"(?s:.)" } else { r"[^\n]" }),
            Node::Class(class) => self.emit_class(class, out)?,
            Node::Assert(a) => self.emit_assert(*a, out)?,
            Node::Keep if self.target == Target::Relaxed => {}
            Node::Keep => {
                self.exact_only()?;
                out.push_str(r"\K");
            }
            Node::Fail => out.push_str(r"[^\x{0}-\x{10FFFF}]"),
            Node::Linebreak { anycrlf } if self.target == Target::Relaxed => {
                out.push_str(if *anycrlf {
                    r"(?:\r\n|[\n\r])"
                } else {
                    r"(?:\r\n|[\n\x0B\x0C\r\x{85}\x{2028}\x{2029}])"
                });
            }
            Node::Linebreak { anycrlf } => {
                self.exact_only()?;
                out.push_str(if *anycrlf {
                    r"(?>\r\n|[\n\r])"
                } else {
                    r"(?>\r\n|[\n\x0B\x0C\r\x{85}\x{2028}\x{2029}])"
                });
            }
            // Atomic in PCRE; the relaxed form needs no atomicity to stay a superset.
            Node::Grapheme if self.target == Target::Relaxed => {
                out.push_str("(?:");
                out.push_str(GRAPHEME);
                out.push(')');
            }
            Node::Grapheme => {
                self.exact_only()?;
                out.push_str("(?>");
                out.push_str(GRAPHEME);
                out.push(')');
            }
            Node::Backref { target, caseless } if self.target == Target::Relaxed => {
                let group = match target {
                    Ref::Num(n) => self.groups.get(*n).cloned(),
                    Ref::Name(_) => None,
                };
                match group {
                    // The captured text matched the group's sub-pattern; a caseless comparison
                    // (whose folding is the exact engine's) may accept other text: anything.
                    Some(g) if !*caseless && !self.in_backref => {
                        self.in_backref = true;
                        out.push_str("(?:");
                        let r = self.emit(&g, out);
                        out.push(')');
                        self.in_backref = false;
                        r?;
                    }
                    _ => out.push_str(r"(?s:.*)"),
                }
            }
            Node::Backref { target, caseless } => {
                self.exact_only()?;
                let n = match target {
                    Ref::Num(n) => *n,
                    Ref::Name(_) => 0,
                };
                let _ = write!(out, "(?{}:\\{n})", if *caseless { "i" } else { "-i" });
            }
            Node::Group { capture, node } => {
                out.push_str(if *capture && self.target != Target::Relaxed {
                    "("
                } else {
                    "(?:"
                });
                self.emit(node, out)?;
                out.push(')');
            }
            Node::Atomic(node) if self.target == Target::Relaxed => {
                out.push_str("(?:");
                self.emit(node, out)?;
                out.push(')');
            }
            Node::Atomic(node) => {
                self.exact_only()?;
                out.push_str("(?>");
                self.emit(node, out)?;
                out.push(')');
            }
            Node::Look { .. } if self.target == Target::Relaxed => {}
            Node::Look { ahead, negate, node } => {
                self.exact_only()?;
                if *ahead {
                    out.push_str(if *negate { "(?!" } else { "(?=" });
                    self.emit(node, out)?;
                    out.push(')');
                } else {
                    // fancy-regex wants one constant length per lookbehind; PCRE2 allows
                    // top-level branches of different lengths, so split them.
                    let branches: Vec<&Node> = match &**node {
                        Node::Alt(bs) => bs.iter().collect(),
                        other => vec![other],
                    };
                    out.push_str("(?:");
                    for (i, b) in branches.iter().enumerate() {
                        if i > 0 && !*negate {
                            out.push('|');
                        }
                        out.push_str(if *negate { "(?<!" } else { "(?<=" });
                        // fancy-regex gives a backreference no constant length. The branch has
                        // one (PCRE2's rule, checked when parsed): it is a lookahead from that
                        // many characters back, which ends where the lookbehind stands.
                        let width = has_backref(b).then(|| fixed_len_with(b, &self.groups, 0)).flatten();
                        match width {
                            Some(w) => {
                                out.push_str("(?=");
                                self.emit(b, out)?;
                                out.push(')');
                                if w > 0 {
                                    let _ = write!(out, "(?s:.){{{w}}}");
                                }
                            }
                            None => self.emit(b, out)?,
                        }
                        out.push(')');
                    }
                    out.push(')');
                }
            }
            Node::Concat(items) => {
                for n in items {
                    self.emit(n, out)?;
                }
            }
            Node::Alt(items) => {
                for (i, n) in items.iter().enumerate() {
                    if i > 0 {
                        out.push('|');
                    }
                    self.emit(n, out)?;
                }
            }
            Node::Repeat { node, min, max, kind } if fixed_len(node) == Some(0) => {
                // fancy-regex cannot repeat a zero-width item. Repeating one is the same as
                // matching it once when it is required (a minimum of 1 or more: `\b{2}` is
                // one `\b`), and as making it optional otherwise (PCRE2 stops a loop after an
                // empty iteration), which an alternation with an empty branch expresses.
                match (min, max, kind) {
                    (1.., _, _) => self.emit(node, out)?,
                    (_, Some(0), _) => {
                        out.push_str(r"(?:[^\x{0}-\x{10FFFF}]");
                        self.emit(node, out)?;
                        out.push_str("|)");
                    }
                    (_, _, RepKind::Lazy) => {
                        out.push_str("(?:|");
                        self.emit(node, out)?;
                        out.push(')');
                    }
                    _ => {
                        out.push_str("(?:");
                        self.emit(node, out)?;
                        out.push_str("|)");
                    }
                }
            }
            Node::Repeat { node, min, max, kind } => {
                let possessive = *kind == RepKind::Possessive && self.target != Target::Relaxed;
                if possessive {
                    self.exact_only()?;
                    out.push_str("(?>");
                }
                out.push_str("(?:");
                self.emit(node, out)?;
                out.push(')');
                match (min, max) {
                    (0, None) => out.push('*'),
                    (1, None) => out.push('+'),
                    (0, Some(1)) => out.push('?'),
                    (n, None) => {
                        let _ = write!(out, "{{{n},}}");
                    }
                    (n, Some(m)) if n == m => {
                        let _ = write!(out, "{{{n}}}");
                    }
                    (n, Some(m)) => {
                        let _ = write!(out, "{{{n},{m}}}");
                    }
                }
                match kind {
                    RepKind::Lazy => out.push('?'),
                    RepKind::Possessive if possessive => out.push(')'),
                    RepKind::Possessive | RepKind::Greedy => {}
                }
            }
        }
        Ok(())
    }

    fn emit_assert(&mut self, a: Assert, out: &mut String) -> Result<(), NeedsExact> {
        if self.target == Target::Relaxed {
            out.push_str(match a {
                Assert::Start => r"\A",
                Assert::EndAbs => r"\z",
                Assert::End | Assert::LineEnd => r"(?m:$)",
                Assert::LineStart => r"(?m:^)",
                Assert::Continue | Assert::WordB | Assert::NotWordB | Assert::WordStart | Assert::WordEnd => "",
            });
            return Ok(());
        }
        let fast = self.target == Target::Fast;
        let text = match a {
            Assert::Start => r"\A",
            Assert::EndAbs => r"\z",
            Assert::LineEnd => r"(?m:$)",
            Assert::Continue => {
                self.exact_only()?;
                r"\G"
            }
            Assert::End => {
                self.deps.final_newline = true;
                if fast {
                    r"\z"
                } else {
                    r"(?=\n?\z)"
                }
            }
            Assert::LineStart => {
                self.deps.line_start = true;
                if fast {
                    r"(?m:^)"
                } else {
                    r"(?:\A|(?<=\n)(?!\z))"
                }
            }
            Assert::WordB | Assert::NotWordB | Assert::WordStart | Assert::WordEnd => {
                self.deps.word = true;
                if fast {
                    match a {
                        Assert::WordB => r"\b",
                        Assert::NotWordB => r"\B",
                        Assert::WordStart => r"\b{start}",
                        _ => r"\b{end}",
                    }
                } else {
                    let s = match a {
                        Assert::WordB => {
                            format!(
                                "(?:{}{}|{}{})",
                                w_behind('='),
                                w_ahead('!'),
                                w_behind('!'),
                                w_ahead('=')
                            )
                        }
                        Assert::NotWordB => {
                            format!(
                                "(?:{}{}|{}{})",
                                w_behind('='),
                                w_ahead('='),
                                w_behind('!'),
                                w_ahead('!')
                            )
                        }
                        Assert::WordStart => format!("(?:{}{})", w_behind('!'), w_ahead('=')),
                        _ => format!("(?:{}{})", w_behind('='), w_ahead('!')),
                    };
                    out.push_str(&s);
                    return Ok(());
                }
            }
        };
        out.push_str(text);
        Ok(())
    }

    /// PCRE2 folds literal items of a caseless class but never property-like ones, while Rust's
    /// `(?i)` folds the whole class; so the two kinds are emitted separately.
    fn emit_class(&mut self, class: &Class, out: &mut String) -> Result<(), NeedsExact> {
        let all: Vec<&Item> = class.items.iter().collect();
        if !class.caseless {
            out.push_str(&class_text(&all, class.negated));
            return Ok(());
        }
        // Case-sensitive items: sets not closed under folding, and the characters PCRE2 10.42
        // gives no case pair while Rust's `(?i)` would (`no_pcre_pair`), split out of ranges.
        // The rest are folded.
        let (mut range_ci, mut range_cs) = (Vec::new(), Vec::new());
        let (mut cs, mut ci): (Vec<&Item>, Vec<&Item>) = (Vec::new(), Vec::new());
        for item in &class.items {
            match item {
                Item::Set(s) if !s.fold_closed => cs.push(item),
                Item::Char(c) if no_pcre_pair(*c) => cs.push(item),
                Item::Range(a, b) => split_no_pcre_pair(*a, *b, &mut range_ci, &mut range_cs),
                _ => ci.push(item),
            }
        }
        cs.extend(&range_cs);
        ci.extend(&range_ci);
        if cs.is_empty() {
            out.push_str("(?i:");
            out.push_str(&class_text(&ci, class.negated));
            out.push(')');
            return Ok(());
        }
        if ci.is_empty() {
            out.push_str(&class_text(&cs, class.negated));
            return Ok(());
        }
        if !class.negated {
            let _ = write!(out, "(?:{}|(?i:{}))", class_text(&cs, false), class_text(&ci, false));
            return Ok(());
        }
        // Negated: complement(CS ∪ fold(CI)). Items whose folding is trivial can join CS.
        let (inv, folded): (Vec<&Item>, Vec<&Item>) = ci.into_iter().partition(|i| item_invariant(i));
        let mut plain = cs;
        plain.extend(inv);
        if folded.is_empty() || self.target == Target::Relaxed {
            // Relaxed: without the lookahead the class only widens.
            out.push_str(&class_text(&plain, true));
            return Ok(());
        }
        self.exact_only()?;
        let _ = write!(
            out,
            "(?:(?!(?i:{})){})",
            class_text(&folded, false),
            class_text(&plain, true)
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Prefilter
// ---------------------------------------------------------------------------------------------

/// A necessary condition for a match, and a lower bound on where the leftmost match starts.
#[derive(Debug)]
struct Prefilter {
    /// The pattern relaxed (see [`Target::Relaxed`]): it has a match starting wherever the real
    /// pattern has one.
    relaxed: Option<regex::Regex>,
    /// The pattern requires `(G)\n{m,}` with `G` of `lo..=hi` characters.
    period: Option<Period>,
    /// The pattern requires `(\w+)\s+\n` (a word repeated after white space).
    repeated_word: Option<RepeatedWord>,
    /// Whether searching may start at the bound found (not with `\G`, which anchors at the
    /// search start).
    can_skip: bool,
    /// The fast engine is exact except on haystacks ending in `\n`: check only those.
    only_final_newline: bool,
}

#[derive(Debug, Clone, Copy)]
struct Period {
    lo: usize,
    hi: usize,
    reps: usize,
    caseless: bool,
}

impl Prefilter {
    /// `None`: the pattern cannot match `haystack`. Otherwise a byte offset no match starts
    /// before.
    fn lower_bound(&self, haystack: &str) -> Option<usize> {
        let mut lb = 0;
        if let Some(rw) = self.repeated_word {
            let starts = repeated_word_starts(haystack, rw, 1);
            let first = *starts.first()?;
            if rw.leading && self.can_skip {
                lb = first;
            }
        }
        if let Some(p) = &self.period {
            lb = p.first_candidate(haystack)?;
        }
        if let Some(relaxed) = &self.relaxed {
            if self.can_skip {
                lb = relaxed.find_at(haystack, lb)?.start();
            } else if !relaxed.is_match_at(haystack, lb) {
                return None;
            }
        }
        Some(if self.can_skip { lb } else { 0 })
    }
}

impl Period {
    /// Byte offset of the first place where `reps` copies of some `p`-character string
    /// (`lo <= p <= hi`) follow it: where every match of `(G)\n{reps,}` starts.
    fn first_candidate(&self, haystack: &str) -> Option<usize> {
        if haystack.is_ascii() {
            let b = haystack.as_bytes();
            if self.caseless {
                periodic_run(b, self.lo, self.hi, self.reps, |x, y| x.eq_ignore_ascii_case(&y))
            } else {
                periodic_run(b, self.lo, self.hi, self.reps, |x, y| x == y)
            }
        } else if self.caseless {
            // Caseless comparison of non-ASCII text follows the exact engine's folding: no
            // bound.
            Some(0)
        } else {
            // `p` characters are `p..=4p` bytes, and a string repeated is periodic in bytes
            // too: scan the bytes with every such period, then back up to a character start.
            let b = haystack.as_bytes();
            let mut at = periodic_run(b, self.lo, self.hi.saturating_mul(4), self.reps, |x, y| x == y)?;
            while at > 0 && !haystack.is_char_boundary(at) {
                at -= 1;
            }
            Some(at)
        }
    }
}

/// Index of the first `j` starting a run of `reps * p` positions with `s[j] == s[j + p]`, for
/// some `p` in `lo..=hi`.
fn periodic_run<T: Copy>(s: &[T], lo: usize, hi: usize, reps: usize, eq: impl Fn(T, T) -> bool) -> Option<usize> {
    if reps == 0 {
        return periodic_run_plain(s, lo, hi, reps, eq);
    }
    let mut best: Option<usize> = None;
    for p in lo.max(1)..=hi {
        // Every run of `need` positions `j` with `s[j] == s[j + p]` holds one of the checked
        // positions, `need` apart: only around a checked position that holds is the run
        // measured.
        let need = reps.saturating_mul(p);
        let m = s.len().saturating_sub(p);
        let limit = best.unwrap_or(usize::MAX);
        let same = |j: usize| eq(s[j], s[j + p]);
        let mut q = need - 1;
        while q < m {
            if !same(q) {
                q += need;
                continue;
            }
            let mut a = q;
            while a > 0 && same(a - 1) {
                a -= 1;
            }
            if a >= limit {
                break;
            }
            let mut end = q + 1;
            while end < m && end - a < need && same(end) {
                end += 1;
            }
            if end - a >= need {
                best = Some(a);
                break;
            }
            q = end + need;
        }
    }
    best
}

/// [`periodic_run`] position by position.
fn periodic_run_plain<T: Copy>(s: &[T], lo: usize, hi: usize, reps: usize, eq: impl Fn(T, T) -> bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for p in lo.max(1)..=hi {
        let need = reps.saturating_mul(p);
        let limit = best.unwrap_or(usize::MAX);
        let mut run = 0usize;
        for (j, (&x, &y)) in s.iter().zip(s.iter().skip(p)).enumerate() {
            if j - run >= limit {
                break;
            }
            if eq(x, y) {
                run += 1;
                if run >= need {
                    best = Some(j + 1 - run);
                    break;
                }
            } else {
                run = 0;
            }
        }
    }
    best
}

/// PCRE's `\X` follows Unicode's extended grapheme cluster rules (UAX #29). This is their
/// common core: CR LF; a lone CR, LF or other control character (a control takes no marks:
/// a spacing mark after U+206F is a cluster of its own); a run of pictographs, each with its
/// marks (PCRE2 10.42 joins two pictographs even without the joiner Unicode asks for between
/// them: `😀😀` and `©®` are one cluster each, and so is a ZWJ sequence); or one other
/// character with the combining marks, spacing marks and joiners that follow it. It differs
/// from PCRE only on Hangul jamo sequences, regional-indicator pairs and prepended marks,
/// which filters do not use `\X` for.
const GRAPHEME: &str = concat!(
    r"\r\n|[\r\n\p{gcb=Control}]",
    r"|(?:\p{Extended_Pictographic}[\p{gcb=Extend}\p{gcb=SpacingMark}\x{200D}]*)+",
    r"|[^\r\n\p{gcb=Control}][\p{gcb=Extend}\p{gcb=SpacingMark}\x{200D}]*"
);

/// Length range in characters of what `node` can match, when bounded and free of
/// backreferences.
fn len_range(node: &Node) -> Option<(usize, usize)> {
    match node {
        Node::Empty | Node::Assert(_) | Node::Keep | Node::Look { .. } => Some((0, 0)),
        Node::Fail => None,
        Node::Lit { .. } | Node::Any { .. } | Node::Class(_) => Some((1, 1)),
        Node::Linebreak { .. } => Some((1, 2)),
        Node::Backref { .. } | Node::Grapheme => None,
        Node::Group { node, .. } | Node::Atomic(node) => len_range(node),
        Node::Concat(items) => items.iter().try_fold((0usize, 0usize), |(a, b), n| {
            let (x, y) = len_range(n)?;
            Some((a.saturating_add(x), b.saturating_add(y)))
        }),
        Node::Alt(items) => {
            let mut lo = usize::MAX;
            let mut hi = 0;
            for n in items {
                let (x, y) = len_range(n)?;
                lo = lo.min(x);
                hi = hi.max(y);
            }
            (lo <= hi).then_some((lo, hi))
        }
        Node::Repeat { node, min, max, .. } => {
            let (x, y) = len_range(node)?;
            let max = (*max)?;
            Some((x.saturating_mul(*min as usize), y.saturating_mul(max as usize)))
        }
    }
}

fn count_captures(node: &Node) -> usize {
    let mut v = Vec::new();
    collect_groups(node, &mut v);
    v.len()
}

/// Finds `(G)\n` or `(G)\n{m,}` (m >= 1) on a path every match goes through; `seen` is the
/// number of capture groups opened before `node`.
fn find_period(node: &Node, seen: usize) -> Option<Period> {
    match node {
        Node::Group { capture, node } => find_period(node, seen + usize::from(*capture)),
        Node::Atomic(node) => find_period(node, seen),
        Node::Concat(items) => {
            let mut seen = seen;
            for (i, item) in items.iter().enumerate() {
                if let (Node::Group { capture: true, node: g }, Some(next)) = (item, items.get(i + 1)) {
                    let (backref, reps) = match next {
                        Node::Repeat { node, min, .. } => (&**node, *min as usize),
                        other => (other, 1),
                    };
                    if let Node::Backref {
                        target: Ref::Num(n),
                        caseless,
                    } = backref
                    {
                        if *n == seen + 1 && reps >= 1 && count_captures(g) == 0 {
                            if let Some((lo, hi)) = len_range(g) {
                                if lo >= 1 && hi <= 32 {
                                    return Some(Period {
                                        lo,
                                        hi,
                                        reps,
                                        caseless: *caseless,
                                    });
                                }
                            }
                        }
                    }
                }
                if let Some(p) = find_period(item, seen) {
                    return Some(p);
                }
                seen += count_captures(item);
            }
            None
        }
        _ => None,
    }
}

/// Length of the UTF-8 sequence a leading byte starts.
fn utf8_len(b: u8) -> usize {
    match b {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// A set of characters given by an ASCII table, or its complement.
#[derive(Debug)]
struct AsciiSet {
    table: [bool; 128],
    negated: bool,
}

/// The [`AsciiSet`] of a pattern that is one case-sensitive character or class of ASCII
/// characters and ranges (no capture group, no option that could widen it).
fn single_char(tree: &Node) -> Option<AsciiSet> {
    match tree {
        Node::Concat(items) if items.len() == 1 => single_char(items.first()?),
        Node::Group { capture: false, node } => single_char(node),
        Node::Lit { c, caseless } if c.is_ascii() && (!*caseless || case_invariant(*c)) => {
            let mut table = [false; 128];
            table[*c as usize] = true;
            Some(AsciiSet { table, negated: false })
        }
        Node::Class(Class {
            negated,
            caseless: false,
            items,
        }) => {
            let mut table = [false; 128];
            for item in items {
                let (a, b) = match item {
                    Item::Char(c) => (*c, *c),
                    Item::Range(a, b) => (*a, *b),
                    Item::Set(_) => return None,
                };
                if !a.is_ascii() || !b.is_ascii() || a > b {
                    return None;
                }
                for slot in table.get_mut(a as usize..=b as usize)? {
                    *slot = true;
                }
            }
            Some(AsciiSet {
                table,
                negated: *negated,
            })
        }
        _ => None,
    }
}

/// The nodes every match goes through in order, as far as that sequence is known: groups are
/// opened (a capture group is listed itself, then its content), a repetition of at least one
/// contributes its first iteration and ends the sequence. Returns false where it ended.
fn flatten_required<'a>(node: &'a Node, out: &mut Vec<&'a Node>) -> bool {
    match node {
        Node::Group {
            capture: false,
            node: inner,
        }
        | Node::Atomic(inner) => flatten_required(inner, out),
        Node::Group {
            capture: true,
            node: inner,
        } => {
            out.push(node);
            flatten_required(inner, out)
        }
        Node::Concat(items) => items.iter().all(|n| flatten_required(n, out)),
        Node::Repeat { node: inner, min, .. }
            if *min >= 1 && matches!(**inner, Node::Group { .. } | Node::Concat(_) | Node::Atomic(_)) =>
        {
            flatten_required(inner, out);
            false
        }
        other => {
            out.push(other);
            true
        }
    }
}

/// Number of the capture group `target` (a node of `tree`), PCRE's pre-order numbering.
fn group_number(tree: &Node, target: &Node) -> Option<usize> {
    fn walk(node: &Node, target: &Node, seen: &mut usize) -> Option<usize> {
        if let Node::Group { capture: true, .. } = node {
            *seen += 1;
            if std::ptr::eq(node, target) {
                return Some(*seen);
            }
        }
        match node {
            Node::Group { node, .. } | Node::Atomic(node) | Node::Repeat { node, .. } | Node::Look { node, .. } => {
                walk(node, target, seen)
            }
            Node::Concat(items) | Node::Alt(items) => items.iter().find_map(|n| walk(n, target, seen)),
            _ => None,
        }
    }
    walk(tree, target, &mut 0)
}

/// `node` without wrappers that change nothing: a one-item sequence, a non-capturing group.
fn single(node: &Node) -> &Node {
    match node {
        Node::Concat(items) if items.len() == 1 => items.first().map_or(node, single),
        Node::Group { capture: false, node } => single(node),
        other => other,
    }
}

/// Whether `node` is exactly the class `\w` (`word`) or `\s` (not `word`), PCRE2 UCP flavour.
fn is_escape_class(node: &Node, word: bool) -> bool {
    match node {
        Node::Class(Class {
            negated: false, items, ..
        }) => match items.as_slice() {
            [Item::Set(set)] => {
                if word {
                    set.text == w_set()
                } else {
                    set.text == bracket(S_BODY, false)
                }
            }
            _ => false,
        },
        _ => false,
    }
}

/// `(\w+)\s+\n`, possibly with `\b` right before the group and right after the reference.
#[derive(Debug, Clone, Copy)]
struct RepeatedWord {
    caseless: bool,
    boundary_before: bool,
    boundary_after: bool,
    /// Only assertions come before the group: a match starts where the group does.
    leading: bool,
}

/// At most this many candidate starts are tried one by one.
const MAX_CANDIDATES: usize = 64;

/// Finds `(\w+)\s+\n` on the path every match goes through.
fn find_repeated_word(tree: &Node) -> Option<RepeatedWord> {
    let mut seq = Vec::new();
    flatten_required(tree, &mut seq);
    for (i, node) in seq.iter().enumerate() {
        let Node::Group { capture: true, node: g } = node else {
            continue;
        };
        let Node::Repeat { node: w, min: 1.., .. } = single(g) else {
            continue;
        };
        if !is_escape_class(single(w), true) {
            continue;
        }
        // seq[i + 1] is the group's content, the repetition itself; group markers after it
        // are followed by their content.
        let mut rest = seq
            .iter()
            .skip(i + 2)
            .filter(|n| !matches!(n, Node::Group { capture: true, .. }));
        let (Some(Node::Repeat { node: sp, min, .. }), Some(Node::Backref { target, caseless })) =
            (rest.next(), rest.next())
        else {
            continue;
        };
        if *min >= 1 && is_escape_class(single(sp), false) && *target == Ref::Num(group_number(tree, node)?) {
            let is_b = |n: Option<&&Node>| matches!(n, Some(Node::Assert(Assert::WordB)));
            return Some(RepeatedWord {
                caseless: *caseless,
                boundary_before: i > 0 && is_b(seq.get(i - 1)),
                boundary_after: is_b(rest.next()),
                leading: seq.iter().take(i).all(|n| matches!(n, Node::Assert(_))),
            });
        }
    }
    None
}

/// Character kinds for [`has_repeated_word`].
const OTHER: u8 = 0;
const WORD: u8 = 1;
const SPACE: u8 = 2;

/// Classifies characters as PCRE2's UCP `\w`, `\s` or neither, with the same definitions as
/// the emitted patterns.
fn char_kinds() -> Option<&'static (regex::Regex, regex::Regex, [u8; 128])> {
    static KINDS: std::sync::OnceLock<Option<(regex::Regex, regex::Regex, [u8; 128])>> = std::sync::OnceLock::new();
    KINDS
        .get_or_init(|| {
            let word = regex::Regex::new(&format!(r"\A{}\z", w_set())).ok()?;
            let space = regex::Regex::new(&format!(r"\A{}\z", bracket(S_BODY, false))).ok()?;
            let mut ascii = [OTHER; 128];
            for (b, slot) in ascii.iter_mut().enumerate() {
                let mut buf = [0; 4];
                let c = char::from(b as u8).encode_utf8(&mut buf);
                if word.is_match(c) {
                    *slot = WORD;
                } else if space.is_match(c) {
                    *slot = SPACE;
                }
            }
            Some((word, space, ascii))
        })
        .as_ref()
}

/// Whether `haystack` has a string of `\w` characters followed by `\s` characters and the
/// same string again (caselessly: as far as this cheap test can tell). A necessary condition
/// for `(\w+)\s+\1`: the group ends where the white space starts, and the copy starts where
/// it ends, as the two classes are disjoint.
///
/// Returns the byte offsets where such a group can start, in order, at most `limit` of them
/// (`[0]` when the test cannot tell; `limit` entries, the first ones exact lower bounds, when
/// there may be more).
fn repeated_word_starts(haystack: &str, rw: RepeatedWord, limit: usize) -> Vec<usize> {
    let caseless = rw.caseless;
    let Some((word, space, ascii)) = char_kinds() else {
        return vec![0];
    };
    let b = haystack.as_bytes();
    let n = b.len();
    // The kind and UTF-8 length of the character at byte `i` (`(OTHER, 0)` at the end).
    let kind_at = |i: usize| -> (u8, usize) {
        match b.get(i) {
            Some(&c) if c.is_ascii() => (ascii[usize::from(c)], 1),
            Some(_) => match haystack.get(i..).and_then(|r| r.chars().next()) {
                Some(ch) => {
                    let mut buf = [0; 4];
                    let s = ch.encode_utf8(&mut buf);
                    let k = if word.is_match(s) {
                        WORD
                    } else if space.is_match(s) {
                        SPACE
                    } else {
                        OTHER
                    };
                    (k, ch.len_utf8())
                }
                None => (OTHER, 1),
            },
            None => (OTHER, 0),
        }
    };
    // Byte offset of the character before byte `i` (> 0).
    let prev_start = |i: usize| -> usize {
        let mut p = i.saturating_sub(1);
        while p > 0 && b.get(p).is_some_and(|&c| c & 0xC0 == 0x80) {
            p -= 1;
        }
        p
    };
    let same =
        |x: char, y: char| x == y || (caseless && (!x.is_ascii() || !y.is_ascii() || x.eq_ignore_ascii_case(&y)));
    let mut found = Vec::new();
    let mut prev_kind = OTHER;
    // Where the run of word characters before `j` starts.
    let mut word_start = 0;
    let mut j = 0;
    while j < n {
        (j, prev_kind, word_start) = ascii_scan_to_word_space(b, ascii, j, prev_kind, word_start, rw);
        let (kj, lj) = kind_at(j);
        if lj == 0 {
            break;
        }
        if kj != SPACE || prev_kind != WORD {
            if kj == WORD && prev_kind != WORD {
                word_start = j;
            }
            prev_kind = kj;
            j += lj.max(1);
            continue;
        }
        let a = word_start;
        let mut k = j;
        loop {
            let (kk, lk) = match b.get(k) {
                Some(&c) if c.is_ascii() => (ascii[usize::from(c)], 1),
                _ => kind_at(k),
            };
            if kk != SPACE || lk == 0 {
                break;
            }
            k += lk;
        }
        // The common case, decided on two bytes: the group can only start where the word
        // does, and its copy's first character differs.
        if rw.boundary_before {
            if let (Some(&x), Some(&y)) = (b.get(a), b.get(k)) {
                if x.is_ascii() && y.is_ascii() && !(x == y || (caseless && x.eq_ignore_ascii_case(&y))) && j - a <= 256
                {
                    j = k;
                    prev_kind = SPACE;
                    continue;
                }
            }
        }
        let word_chars = if j - a > 256 {
            haystack.get(a..j).map_or(0, |w| w.chars().count())
        } else {
            0
        };
        if word_chars > 256 {
            // Too long a word to compare every suffix: it could start anywhere in it.
            found.push(a);
            if !rw.boundary_before {
                found.resize(limit.max(found.len()), usize::MAX);
            }
            if found.len() >= limit {
                return found;
            }
            j = k;
            prev_kind = SPACE;
            continue;
        }
        // With `\b` before the group, it starts where the word does (its first character is a
        // word character).
        let last_start = if rw.boundary_before { a } else { prev_start(j) };
        let mut i = a;
        while i <= last_start {
            // Cheap rejection on the first bytes when both are ASCII.
            if let (Some(&x), Some(&y)) = (b.get(i), b.get(k)) {
                if x.is_ascii() && y.is_ascii() && !(x == y || (caseless && x.eq_ignore_ascii_case(&y))) {
                    i += 1;
                    continue;
                }
            }
            let group = haystack.get(i..j).unwrap_or_default();
            let mut copy = haystack.get(k..).unwrap_or_default().chars();
            let mut end = k;
            let mut last_word = false;
            let mut ok = true;
            for x in group.chars() {
                match copy.next() {
                    Some(y) if same(x, y) => {
                        last_word = kind_at(end).0 == WORD;
                        end += y.len_utf8();
                    }
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok && (!rw.boundary_after || last_word != (kind_at(end).0 == WORD)) {
                found.push(i);
                if found.len() >= limit {
                    return found;
                }
            }
            i += kind_at(i).1.max(1);
        }
        j = k;
        prev_kind = SPACE;
    }
    found
}

/// From byte `j` (after a character of kind `prev`), the first byte that is not ASCII or is
/// white space right after a word character, with the kind of the character before it.
#[inline(never)]
fn ascii_scan_to_word_space(
    b: &[u8],
    ascii: &[u8; 128],
    mut j: usize,
    mut prev: u8,
    mut word_start: usize,
    rw: RepeatedWord,
) -> (usize, u8, usize) {
    while let Some(&c) = b.get(j) {
        if !c.is_ascii() {
            break;
        }
        let k = ascii[usize::from(c)];
        if k == SPACE && prev == WORD {
            // Skip here what the caller would reject on two ASCII bytes: the word's first
            // and the first after the white space differ (the group starts with the word).
            let mut after = j;
            while b
                .get(after)
                .is_some_and(|&x| x.is_ascii() && ascii[usize::from(x)] == SPACE)
            {
                after += 1;
            }
            let rejected = rw.boundary_before
                && j - word_start <= 256
                && match (b.get(word_start), b.get(after)) {
                    (Some(&x), Some(&y)) if x.is_ascii() && y.is_ascii() => {
                        !(x == y || (rw.caseless && x.eq_ignore_ascii_case(&y)))
                    }
                    _ => false,
                };
            if !rejected {
                break;
            }
            prev = SPACE;
            j = after;
            continue;
        }
        if k == WORD && prev != WORD {
            word_start = j;
        }
        prev = k;
        j += 1;
    }
    (j, prev, word_start)
}

fn contains_continue(node: &Node) -> bool {
    match node {
        Node::Assert(Assert::Continue) => true,
        Node::Group { node, .. } | Node::Atomic(node) | Node::Repeat { node, .. } | Node::Look { node, .. } => {
            contains_continue(node)
        }
        Node::Concat(items) | Node::Alt(items) => items.iter().any(contains_continue),
        _ => false,
    }
}

/// A prefilter for `tree`, unless it would not narrow anything down. `groups` are its capture
/// groups' sub-patterns by number (see [`collect_groups`]); `fast_src` is the fast emission, if
/// any, to avoid a relaxed pattern identical to it.
fn build_prefilter(tree: &Node, groups: Vec<Node>, fast_src: &str, with_period: bool) -> Option<Prefilter> {
    let mut em = Emitter {
        groups,
        ..Emitter::new(Target::Relaxed)
    };
    let mut src = String::from("(?:");
    let relaxed = match em.emit(tree, &mut src) {
        Ok(()) => {
            src.push(')');
            if src == fast_src {
                None
            } else {
                // Too big a pattern just means no prefilter.
                compile_fast(&src).ok()
            }
        }
        Err(NeedsExact) => None,
    };
    let period = if with_period { find_period(tree, 0) } else { None };
    let repeated_word = if with_period { find_repeated_word(tree) } else { None };
    if relaxed.is_none() && period.is_none() && repeated_word.is_none() {
        return None;
    }
    Some(Prefilter {
        relaxed,
        period,
        repeated_word,
        can_skip: !contains_continue(tree),
        only_final_newline: false,
    })
}

// ---------------------------------------------------------------------------------------------
// Literal prefilter
// ---------------------------------------------------------------------------------------------

/// A set of byte strings one of which every match contains, searched with the `regex` crate's
/// SIMD literal searchers (far faster than any automaton over the whole haystack). When the
/// pattern has a caseless part, the literals and the haystack are compared ASCII-lowercased
/// (a byte-for-byte map, so every occurrence in the haystack stays one in the folded copy).
#[derive(Debug)]
struct Required {
    /// Each must find one of its strings (in order: cheap first).
    stages: Vec<LitSearcher>,
    folded: bool,
    literals: Vec<Vec<u8>>,
}

/// Finds whether any of a few literals occurs.
#[derive(Debug)]
enum LitSearcher {
    /// One literal: SIMD substring search.
    One(memchr::memmem::Finder<'static>),
    /// Up to 64: Teddy, used directly (through `AhoCorasick` it is sometimes left out, and
    /// the automaton then runs at a fraction of the speed).
    Packed(aho_corasick::packed::Searcher),
    Many(aho_corasick::AhoCorasick),
}

impl LitSearcher {
    fn is_match(&self, hay: &[u8]) -> bool {
        match self {
            LitSearcher::One(finder) => finder.find(hay).is_some(),
            LitSearcher::Packed(p) => p.find(hay).is_some(),
            LitSearcher::Many(ac) => ac.is_match(hay),
        }
    }
}

/// Bounds on the literal analysis: strings per set and bytes per string.
const LIT_MAX_SET: usize = 64;
const LIT_MAX_LEN: usize = 32;
/// Characters of a class enumerated at most (beyond that the class is unknown).
const LIT_MAX_CLASS: u32 = 20_000;

type LitSet = std::collections::BTreeSet<Vec<u8>>;

/// What the literal analysis knows about a node.
enum Lits {
    /// Exactly the strings the node can match (folded when folding).
    Exact(LitSet),
    /// Every match of the node contains one of these strings.
    Required(LitSet),
    Unknown,
}

/// The UTF-8 of `c`, folded as [`fold_haystack`] folds it when `fold`.
fn fold_char(c: char, fold: bool) -> Vec<u8> {
    let c = match c {
        '\u{17F}' if fold => 's',
        '\u{212A}' if fold => 'k',
        c if fold => c.to_ascii_lowercase(),
        c => c,
    };
    char_bytes(c)
}

/// The haystack the caseless literal prefilter compares: ASCII lowercased, and the only two
/// non-ASCII characters in the case-folding orbits of ASCII letters (long s, Kelvin sign)
/// replaced by theirs. Only used to test whether a literal occurs, so lengths may change.
fn fold_haystack(h: &str) -> String {
    let mut out = h.to_ascii_lowercase();
    if !h.is_ascii() {
        if out.contains('\u{17F}') {
            out = out.replace('\u{17F}', "s");
        }
        if out.contains('\u{212A}') {
            out = out.replace('\u{212A}', "k");
        }
    }
    out
}

fn char_bytes(c: char) -> Vec<u8> {
    let mut buf = [0u8; 4];
    c.encode_utf8(&mut buf).as_bytes().to_vec()
}

/// The characters a literal `c` matches (caseless: its case variants), `None` when they are
/// not known exactly. Only ASCII letters (and the non-ASCII characters that case-map to one)
/// get variants (Kelvin sign and long s are the only non-ASCII characters in the case-folding
/// orbits of ASCII letters, for PCRE2 and the `regex` crate alike); any other caseless letter
/// is unknown.
fn char_variants(c: char, caseless: bool) -> Option<Vec<char>> {
    if !caseless || case_invariant(c) {
        return Some(vec![c]);
    }
    let base = match c {
        '\u{212A}' => 'k',
        '\u{17F}' => 's',
        c if c.is_ascii_alphabetic() => c.to_ascii_lowercase(),
        _ => return None,
    };
    let mut v = vec![base, base.to_ascii_uppercase()];
    match base {
        'k' => v.push('\u{212A}'),
        's' => v.push('\u{17F}'),
        _ => {}
    }
    Some(v)
}

fn has_caseless(node: &Node) -> bool {
    match node {
        Node::Lit { caseless, .. } | Node::Backref { caseless, .. } => *caseless,
        Node::Class(class) => class.caseless,
        Node::Group { node, .. } | Node::Atomic(node) | Node::Repeat { node, .. } | Node::Look { node, .. } => {
            has_caseless(node)
        }
        Node::Concat(items) | Node::Alt(items) => items.iter().any(has_caseless),
        _ => false,
    }
}

/// How the literal analysis runs: folding (see [`fold_haystack`]), and up to which length a
/// longer shortest string makes a set better (beyond it, fewer strings do).
#[derive(Clone, Copy)]
struct Mode {
    fold: bool,
    cap: usize,
}

/// `a` is better than `b` as a required set: longer shortest string (up to 4 bytes, beyond
/// which strings are rare enough), then fewer strings (the searchers slow down with many,
/// above all when they share common first bytes, as a cross product's do).
fn better(a: &LitSet, b: &LitSet, cap: usize) -> bool {
    let min = |s: &LitSet| s.iter().map(Vec::len).min().unwrap_or(0).min(cap);
    (min(a), std::cmp::Reverse(a.len())) > (min(b), std::cmp::Reverse(b.len()))
}

/// Keeps `set` in `best` if it is usable (non-empty, no empty string) and better.
fn consider(m: Mode, best: &mut Option<LitSet>, set: LitSet) {
    if set.is_empty() || set.iter().any(Vec::is_empty) {
        return;
    }
    match best {
        Some(b) if !better(&set, b, m.cap) => {}
        _ => *best = Some(set),
    }
}

fn cross(a: &LitSet, b: &LitSet) -> Option<LitSet> {
    if a.len().saturating_mul(b.len()) > LIT_MAX_SET {
        return None;
    }
    let mut out = LitSet::new();
    for x in a {
        for y in b {
            if x.len() + y.len() > LIT_MAX_LEN {
                return None;
            }
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.insert(s);
        }
    }
    Some(out)
}

fn empty_only() -> LitSet {
    std::iter::once(Vec::new()).collect()
}

/// The class's characters as UTF-8 strings, or their two-byte prefixes when there are too many
/// (then only required, not exact).
fn class_lits(class: &Class, fold: bool) -> Lits {
    if class.negated {
        return Lits::Unknown;
    }
    let mut chars: Vec<char> = Vec::new();
    let mut total = 0u32;
    for item in &class.items {
        let (a, b) = match item {
            Item::Char(c) => (*c, *c),
            Item::Range(a, b) => (*a, *b),
            Item::Set(_) => return Lits::Unknown,
        };
        if a > b {
            continue;
        }
        total = total.saturating_add(u32::from(b) - u32::from(a) + 1);
        if total > LIT_MAX_CLASS {
            return Lits::Unknown;
        }
        for c in (u32::from(a)..=u32::from(b)).filter_map(char::from_u32) {
            match char_variants(c, class.caseless) {
                Some(v) => chars.extend(v),
                None => return Lits::Unknown,
            }
        }
    }
    let full: LitSet = chars.iter().map(|&c| fold_char(c, fold)).collect();
    if full.len() <= LIT_MAX_SET {
        return Lits::Exact(full);
    }
    for keep in [2, 1] {
        let prefixes: LitSet = full.iter().map(|s| s[..s.len().min(keep)].to_vec()).collect();
        if prefixes.len() <= LIT_MAX_SET {
            return Lits::Required(prefixes);
        }
    }
    Lits::Unknown
}

fn lits(node: &Node, m: Mode) -> Lits {
    match node {
        Node::Empty | Node::Assert(_) | Node::Keep | Node::Look { .. } => Lits::Exact(empty_only()),
        Node::Lit { c, caseless } => match char_variants(*c, *caseless) {
            Some(v) => Lits::Exact(v.into_iter().map(|c| fold_char(c, m.fold)).collect()),
            None => Lits::Unknown,
        },
        Node::Class(class) => class_lits(class, m.fold),
        Node::Any { .. } | Node::Fail | Node::Linebreak { .. } | Node::Grapheme | Node::Backref { .. } => Lits::Unknown,
        Node::Group { node, .. } | Node::Atomic(node) => lits(node, m),
        Node::Repeat { node, min, max, .. } => {
            if *min == 0 {
                // `x?`: the empty string or one match of `x`.
                return match (max, lits(node, m)) {
                    (Some(1), Lits::Exact(mut e)) => {
                        e.insert(Vec::new());
                        Lits::Exact(e)
                    }
                    _ => Lits::Unknown,
                };
            }
            match lits(node, m) {
                Lits::Exact(e) => {
                    if *max == Some(*min) && *min <= 8 {
                        let mut acc = Some(empty_only());
                        for _ in 0..*min {
                            acc = acc.and_then(|a| cross(&a, &e));
                        }
                        if let Some(acc) = acc {
                            return Lits::Exact(acc);
                        }
                    }
                    let mut best = None;
                    consider(m, &mut best, e);
                    best.map_or(Lits::Unknown, Lits::Required)
                }
                other => other,
            }
        }
        Node::Concat(items) => {
            let mut cur = empty_only();
            let mut exact = true;
            let mut best = None;
            for item in items {
                // `x{m,}` (or `x{m,n}`) of an exact `x`: the match goes on from the run before
                // it with `m` copies, and the run after it starts with `m` copies.
                if let Node::Repeat { node, min, max, .. } = item {
                    if *min >= 1 && *min <= 4 && *max != Some(*min) {
                        if let Lits::Exact(e) = lits(node, m) {
                            let mut copies = Some(empty_only());
                            for _ in 0..*min {
                                copies = copies.and_then(|c| cross(&c, &e));
                            }
                            if let Some(copies) = copies {
                                exact = false;
                                if let Some(c) = cross(&cur, &copies) {
                                    consider(m, &mut best, c);
                                } else {
                                    consider(m, &mut best, std::mem::take(&mut cur));
                                }
                                cur = copies;
                                continue;
                            }
                        }
                    }
                }
                match lits(item, m) {
                    Lits::Exact(e) => match cross(&cur, &e) {
                        Some(c) => {
                            // The piece alone is required too, and may be the better set.
                            consider(m, &mut best, e);
                            cur = c;
                        }
                        None => {
                            exact = false;
                            consider(m, &mut best, std::mem::replace(&mut cur, e));
                        }
                    },
                    Lits::Required(r) => {
                        exact = false;
                        consider(m, &mut best, std::mem::replace(&mut cur, empty_only()));
                        consider(m, &mut best, r);
                    }
                    Lits::Unknown => {
                        exact = false;
                        consider(m, &mut best, std::mem::replace(&mut cur, empty_only()));
                    }
                }
            }
            if exact {
                return Lits::Exact(cur);
            }
            consider(m, &mut best, cur);
            best.map_or(Lits::Unknown, Lits::Required)
        }
        Node::Alt(items) => {
            let mut union = LitSet::new();
            let mut exact = true;
            for item in items {
                match lits(item, m) {
                    Lits::Exact(e) => union.extend(e),
                    Lits::Required(r) => {
                        exact = false;
                        union.extend(r);
                    }
                    Lits::Unknown => return Lits::Unknown,
                }
                if union.len() > LIT_MAX_SET * 2 {
                    return Lits::Unknown;
                }
            }
            if exact && union.len() <= LIT_MAX_SET {
                Lits::Exact(union)
            } else if union.iter().any(Vec::is_empty) {
                Lits::Unknown
            } else {
                Lits::Required(union)
            }
        }
    }
}

/// The pattern needs `min` consecutive characters of one set on every match path (one class
/// repeated, or the union of all a match consumes: see [`build_whole_run`]), so a window of
/// `min` bytes all in `table` is necessary (bytes of non-ASCII characters are in it unless the
/// set has no non-ASCII character).
#[derive(Debug)]
struct MinRun {
    table: [bool; 256],
    min: usize,
}

/// A run shorter than this is too common to be worth a scan.
const MIN_RUN_WORTH: u32 = 4;

impl MinRun {
    /// Whether `b` has `min` consecutive bytes in the table. Every such window holds one of
    /// the positions checked (`min` apart), so only around those is a run measured.
    fn found(&self, b: &[u8]) -> bool {
        let m = self.min;
        if m == 0 {
            return true;
        }
        let is_in = |i: usize| b.get(i).is_some_and(|&c| self.table[usize::from(c)]);
        let mut q = m - 1;
        while q < b.len() {
            if !is_in(q) {
                q += m;
                continue;
            }
            let mut a = q;
            while a > 0 && q + 1 - a < m && is_in(a - 1) {
                a -= 1;
            }
            let mut end = q + 1;
            while end - a < m && is_in(end) {
                end += 1;
            }
            if end - a >= m {
                return true;
            }
            q = end + m;
        }
        false
    }
}

/// The longest `X{m,}` with `X` one character (class) that every match goes through.
fn build_min_run(tree: &Node) -> Option<MinRun> {
    let mut nodes = Vec::new();
    flatten_required(tree, &mut nodes);
    let mut best: Option<MinRun> = None;
    for node in nodes {
        let Node::Repeat { node: x, min, .. } = node else {
            continue;
        };
        if *min < MIN_RUN_WORTH || best.as_ref().is_some_and(|b| b.min >= *min as usize) {
            continue;
        }
        if !matches!(**x, Node::Class(_) | Node::Lit { .. } | Node::Any { .. }) {
            continue;
        }
        if let Some(table) = run_table(&[x]) {
            best = Some(MinRun {
                table,
                min: *min as usize,
            });
        }
    }
    best
}

/// The byte table of the characters that one of the one-character nodes `parts` matches
/// (bytes of non-ASCII characters are in it unless none of the parts matches such a character).
fn run_table(parts: &[&Node]) -> Option<[bool; 256]> {
    let mut em = Emitter::new(Target::Fast);
    let alternatives = parts
        .iter()
        .map(|part| {
            let mut one = String::new();
            em.emit(part, &mut one).ok().map(|()| one)
        })
        .collect::<Option<std::collections::BTreeSet<String>>>()?;
    let src = format!(r"\A(?:{})\z", alternatives.into_iter().collect::<Vec<_>>().join("|"));
    let one = compile_fast(&src).ok()?;
    let mut table = [may_match_non_ascii(&src); 256];
    for (b, slot) in table.iter_mut().enumerate().take(128) {
        let mut buf = [0u8; 4];
        *slot = one.is_match(char::from(b as u8).encode_utf8(&mut buf));
    }
    Some(table)
}

/// Lower-case ASCII letters a whole-match run's set may hold at most. Prose is made of runs of
/// lower-case letters: with more of them in the set, the scan would measure a run at almost
/// every byte it looks at and rule nothing out.
const WHOLE_RUN_MAX_LOWER: usize = 4;

/// When every character a match consumes is matched by one of a few one-character parts (a
/// literal or class), the whole match is one run of at least the pattern's shortest match
/// length of such characters: `\b[A-Z]{2,}(\s+[A-Z]{2,}){5,}\b` needs 17 bytes in a row that
/// are capitals or spaces, which ordinary text seldom has.
fn build_whole_run(tree: &Node) -> Option<MinRun> {
    /// The shortest match of `node` in characters, collecting its consuming parts; `None` when
    /// some part is not a literal or class: `\R`, `\X` and back-references, whose characters
    /// are not known one by one; `(*FAIL)`; and `.`, left out by choice since it matches
    /// nearly everything and would leave nothing to rule out.
    fn walk<'a>(node: &'a Node, parts: &mut Vec<&'a Node>) -> Option<u32> {
        match node {
            Node::Empty | Node::Assert(_) | Node::Keep | Node::Look { .. } => Some(0),
            Node::Lit { .. } | Node::Class(_) => {
                parts.push(node);
                Some(1)
            }
            Node::Group { node, .. } | Node::Atomic(node) => walk(node, parts),
            Node::Concat(items) => items
                .iter()
                .try_fold(0u32, |sum, n| Some(sum.saturating_add(walk(n, parts)?))),
            Node::Alt(branches) if !branches.is_empty() => branches
                .iter()
                .try_fold(u32::MAX, |least, n| Some(least.min(walk(n, parts)?))),
            Node::Repeat { node, min, .. } => Some(walk(node, parts)?.saturating_mul(*min)),
            Node::Alt(_)
            | Node::Fail
            | Node::Any { .. }
            | Node::Linebreak { .. }
            | Node::Grapheme
            | Node::Backref { .. } => None,
        }
    }
    let mut parts = Vec::new();
    let min = walk(tree, &mut parts)?;
    if min < 2 * MIN_RUN_WORTH || parts.is_empty() {
        return None;
    }
    let table = run_table(&parts)?;
    if table[usize::from(b'a')..=usize::from(b'z')]
        .iter()
        .filter(|&&t| t)
        .count()
        > WHOLE_RUN_MAX_LOWER
    {
        return None;
    }
    Some(MinRun {
        table,
        min: min as usize,
    })
}

/// Whether the pattern `src` (the `regex` crate's syntax, as [`compile_fast`] reads it) can
/// match a non-ASCII character anywhere; `true` when it cannot tell.
fn may_match_non_ascii(src: &str) -> bool {
    use regex_syntax::hir::{Class, Hir, HirKind};
    fn walk(h: &Hir) -> bool {
        match h.kind() {
            HirKind::Empty | HirKind::Look(_) => false,
            HirKind::Literal(l) => !l.0.is_ascii(),
            HirKind::Class(Class::Unicode(c)) => c.ranges().iter().any(|r| !r.end().is_ascii()),
            HirKind::Class(Class::Bytes(c)) => c.ranges().iter().any(|r| !r.end().is_ascii()),
            HirKind::Repetition(r) => walk(&r.sub),
            HirKind::Capture(c) => walk(&c.sub),
            HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(walk),
        }
    }
    regex_syntax::ParserBuilder::new()
        .nest_limit(NEST_LIMIT as u32 * 4)
        .build()
        .parse(src)
        .map_or(true, |h| walk(&h))
}

/// Sets larger than this are worth replacing by a smaller one found deeper in the tree.
const LIT_GOOD_SET: usize = 8;

/// The best required set of `node`: its own, or, when that is large (a cross product such
/// as `(is|was) an? (word|…)`), one of a piece every match goes through.
fn best_required(node: &Node, m: Mode) -> Option<LitSet> {
    let mut best = None;
    if let Lits::Exact(s) | Lits::Required(s) = lits(node, m) {
        consider(m, &mut best, s);
    }
    if best.as_ref().is_some_and(|b| b.len() <= LIT_GOOD_SET) {
        return best;
    }
    match node {
        Node::Group { node, .. } | Node::Atomic(node) => {
            if let Some(r) = best_required(node, m) {
                consider(m, &mut best, r);
            }
        }
        Node::Repeat { node, min, .. } if *min >= 1 => {
            if let Some(r) = best_required(node, m) {
                consider(m, &mut best, r);
            }
        }
        Node::Concat(items) => {
            for item in items {
                if let Some(r) = best_required(item, m) {
                    consider(m, &mut best, r);
                }
            }
        }
        Node::Alt(items) => {
            let mut union = LitSet::new();
            for item in items {
                match best_required(item, m) {
                    Some(r) if union.len() + r.len() <= LIT_MAX_SET * 2 => union.extend(r),
                    _ => return best,
                }
            }
            consider(m, &mut best, union);
        }
        _ => {}
    }
    best
}

/// The literal prefilter of `tree`, when the analysis finds one.
fn build_required(tree: &Node) -> Option<Required> {
    let fold = has_caseless(tree);
    // Two sets when they differ: one of few strings, cheap to search, then (if its strings
    // occur) the most selective one, whose long strings (`my school`…) rarely occur by chance.
    let quick = best_required(tree, Mode { fold, cap: 4 }).map(without_superstrings)?;
    let mut stages = vec![searcher(&quick)?];
    let mut literals: Vec<Vec<u8>> = quick.iter().cloned().collect();
    let selective = best_required(tree, Mode { fold, cap: usize::MAX }).map(without_superstrings);
    if let Some(sel) = selective.filter(|s| *s != quick) {
        if let Some(st) = searcher(&sel) {
            stages.push(st);
            literals.extend(sel);
        }
    }
    Some(Required {
        stages,
        folded: fold,
        literals,
    })
}

/// `set` without the strings that contain another of it (`fart` covers `farts`).
fn without_superstrings(mut set: LitSet) -> LitSet {
    let all: Vec<Vec<u8>> = set.iter().cloned().collect();
    set.retain(|l| {
        !all.iter()
            .any(|o| o.len() < l.len() && memchr::memmem::find(l, o).is_some())
    });
    set
}

/// Whether any of `literals` (none empty) occurs in a haystack: one SIMD pass for all of them
/// (Teddy), for callers outside this module (`contains_any`).
#[derive(Debug)]
pub(crate) struct AnyLiteral(LitSearcher);

impl AnyLiteral {
    /// `None` when `literals` is empty or holds an empty string.
    pub(crate) fn new(literals: &[Vec<u8>]) -> Option<AnyLiteral> {
        let set: LitSet = literals.iter().cloned().collect();
        searcher(&set).map(AnyLiteral)
    }

    /// Whether one of the literals occurs in `hay`.
    pub(crate) fn is_match(&self, hay: &[u8]) -> bool {
        self.0.is_match(hay)
    }
}

/// A searcher for `set`, unless it is empty or holds the empty string (no condition then).
fn searcher(set: &LitSet) -> Option<LitSearcher> {
    if set.is_empty() || set.iter().any(Vec::is_empty) {
        return None;
    }
    if let (Some(one), 1) = (set.first(), set.len()) {
        return Some(LitSearcher::One(memchr::memmem::Finder::new(one).into_owned()));
    }
    if let Some(p) = aho_corasick::packed::Config::new().builder().extend(set.iter()).build() {
        return Some(LitSearcher::Packed(p));
    }
    Some({
        LitSearcher::Many(
            aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostFirst)
                .build(set)
                .ok()?,
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------

/// Characters in exactly one of Rust's `\w` and PCRE2's UCP `\w`: where Rust's `\b` would
/// disagree.
fn word_disagreement() -> String {
    let w = w_set();
    format!(r"[[\w--{w}][{w}--\w]]")
}

fn compile_fast(pattern: &str) -> Result<regex::Regex, RegexError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .nest_limit(NEST_LIMIT as u32 * 4)
        .build()
        .or_else(|e| err(format!("pattern cannot be compiled: {e}")))
}

fn compile_exact(pattern: &str, not_empty: bool) -> Result<fancy_regex::Regex, RegexError> {
    fancy_regex::RegexBuilder::new(pattern)
        .backtrack_limit(BACKTRACK_LIMIT)
        .delegate_size_limit(SIZE_LIMIT)
        .delegate_dfa_size_limit(DFA_SIZE_LIMIT)
        .max_prog_size(SIZE_LIMIT / 16)
        .find_not_empty(not_empty)
        .build()
        .or_else(|e| err(format!("pattern cannot be compiled: {e}")))
}

fn build(body: &str, caseless: bool) -> Result<Regex, RegexError> {
    let mut parser = Parser {
        chars: body.chars().collect(),
        pos: 0,
        flags: Flags {
            i: caseless,
            ..Flags::default()
        },
        groups: 0,
        names: Vec::new(),
        depth: 0,
        bsr_anycrlf: false,
    };
    parser.parse_start_options()?;
    let mut tree = parser.parse_alt(false)?;
    let mut group_nodes = vec![Node::Empty];
    collect_groups(&tree, &mut group_nodes);
    let resolver = Resolver {
        groups: parser.groups,
        names: &parser.names,
        group_nodes: &group_nodes,
    };
    resolver.resolve(&mut tree, false, false)?;
    unrepeat_assertions(&mut tree);

    let (nullable, _, empty_last) = empty_info(&tree);

    let mut fast_em = Emitter::new(Target::Fast);
    let mut fast_src = String::from("(?:");
    let fast_ok = fast_em.emit(&tree, &mut fast_src).is_ok();
    fast_src.push(')');

    // With `\K` a match that consumed text can still be reported empty.
    let needs_retry = (nullable || contains_keep(&tree)) && (!fast_ok || !empty_last);
    let needs_exact =
        !fast_ok || fast_em.deps.final_newline || fast_em.deps.line_start || fast_em.deps.word || needs_retry;

    let fast = if fast_ok { Some(compile_fast(&fast_src)?) } else { None };
    // The capture groups' sub-patterns, for the exact and relaxed emitters (a prefilter is
    // built only where the exact engine is).
    let mut groups = vec![Node::Empty];
    let (exact, retry) = if needs_exact {
        collect_groups(&tree, &mut groups);
        let mut em = Emitter {
            groups,
            ..Emitter::new(Target::Exact)
        };
        let mut src = String::from("(?:");
        if em.emit(&tree, &mut src).is_err() {
            return err("internal: exact emission failed");
        }
        src.push(')');
        groups = std::mem::take(&mut em.groups);
        let exact = compile_exact(&src, false)?;
        let retry = if needs_retry {
            // Fails only for a pattern that can never match non-empty: nothing to retry then.
            compile_exact(&format!(r"\G{src}"), true).ok()
        } else {
            None
        };
        (Some(exact), retry)
    } else {
        (None, None)
    };
    let prefilter = if !fast_ok || fast_em.deps.final_newline || fast_em.deps.word || needs_retry {
        debug_assert!(needs_exact, "the groups are collected with the exact emission");
        build_prefilter(&tree, groups, &fast_src, !fast_ok).map(|mut p| {
            p.only_final_newline = fast_ok && !fast_em.deps.word && !needs_retry;
            p
        })
    } else {
        None
    };
    let word_disagreement = if fast.is_some() && fast_em.deps.word {
        Some(compile_fast(&word_disagreement())?)
    } else {
        None
    };
    let mut regex = Regex {
        inner: Arc::new(Inner {
            fast,
            exact,
            retry,
            dep_final_newline: fast_em.deps.final_newline,
            dep_line_start: fast_em.deps.line_start,
            word_disagreement,
            prefilter,
            single: single_char(&tree),
            required: build_required(&tree),
            min_run: build_min_run(&tree),
            whole_run: build_whole_run(&tree),
            group_count: parser.groups,
            names: parser.names.into(),
            matches_empty: false,
        }),
    };
    let matches_empty = regex.is_match("").unwrap_or(false);
    if let Some(inner) = Arc::get_mut(&mut regex.inner) {
        inner.matches_empty = matches_empty;
    }
    Ok(regex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Expected values below were produced by PHP 8.2 / PCRE2 10.42 running AbuseFilter's
    /// `mungeRegexp` and `preg_match($pattern, $subject, $matches)`; `None` = preg_match
    /// returned false, `Some(&[])` = no match, otherwise `$matches` in PHP's key order.
    type MatchCase = (
        &'static str,
        bool,
        &'static str,
        Option<&'static [(&'static str, &'static str)]>,
    );

    const MATCH_CASES: &[MatchCase] = &[
        // Case pairs newer than Unicode 14 (U+0264/U+A7CB, U+019B/U+A7DC, U+1C89/U+1C8A) are
        // none for PCRE2 10.42: a caseless literal matches only itself.
        ("\u{A7CB}", true, "\u{264}", Some(&[])),
        ("\u{264}", true, "\u{A7CB}\u{264}", Some(&[("0", "\u{264}")])),
        ("\u{19B}", true, "\u{A7DC}", Some(&[])),
        ("\u{1C89}", true, "\u{1C8A}", Some(&[])),
        ("x\u{264}y", true, "X\u{264}Y", Some(&[("0", "X\u{264}Y")])),
        // In a caseless class too, as items, in ranges and beside other items (checked with
        // af-oracle, as were 216 generated cases over every such pair).
        ("[\u{264}]", true, "\u{A7CB}", Some(&[])),
        ("[\u{A7CB}]", true, "\u{264}", Some(&[])),
        ("[\u{264}]", true, "\u{264}", Some(&[("0", "\u{264}")])),
        ("[\u{250}-\u{2AF}]", true, "\u{A7CB}", Some(&[])),
        ("[\u{250}-\u{2AF}]", true, "\u{2C6F}", Some(&[("0", "\u{2C6F}")])),
        ("[^\u{264}]", true, "\u{A7CB}", Some(&[("0", "\u{A7CB}")])),
        ("[^\u{250}-\u{2AF}]", true, "\u{2C6F}", Some(&[])),
        ("[\u{19B}x]", true, "\u{A7DC}", Some(&[])),
        ("[\u{264}\\p{Lu}]", true, "\u{A7CB}", Some(&[])),
        ("[^\u{264}\\d]", true, "\u{A7CB}", Some(&[("0", "\u{A7CB}")])),
        // A backreference inside a lookbehind, to a group of fixed length (PCRE2 10.42 takes
        // it; checked with af-oracle): before the group is set it fails, as anywhere.
        ("(ab)(?<=\\1\\1)", false, "abab", Some(&[("0", "ab"), ("1", "ab")])),
        ("(a)(?<!\\1)b", false, "ab", Some(&[])),
        ("(x)(?<!\\1a)b", false, "xb", Some(&[("0", "xb"), ("1", "x")])),
        ("(?<=\\1(a))b", false, "ab", Some(&[])),
        ("(a|b)(?<=\\1)a", false, "ba", Some(&[("0", "ba"), ("1", "b")])),
        ("(?<=(ab)\\1)", false, "abab", Some(&[("0", ""), ("1", "ab")])),
        (
            "(\u{E9}1)(?<=\\1)\u{E9}",
            false,
            "\u{E9}1\u{E9}",
            Some(&[("0", "\u{E9}1\u{E9}"), ("1", "\u{E9}1")]),
        ),
        ("(a+)(?<=\\1)b", false, "ab", None),
        // Pairs added to simple case folding after Unicode 14 are none for PCRE2 10.42 either.
        ("\u{390}", true, "\u{1FD3}", Some(&[])),
        ("\u{1FE3}", true, "\u{3B0}", Some(&[])),
        ("[\u{FB05}]", true, "\u{FB06}", Some(&[])),
        ("[^\u{1FD3}]", true, "\u{390}", Some(&[("0", "\u{390}")])),
        // \w, \d, \b and POSIX classes as of Unicode 14: U+A7CB (a Unicode 16 letter) and
        // U+1E4F1 (a Unicode 15 digit) are unassigned for PCRE2 10.42.
        (r#"\w"#, false, "\u{A7CB}", Some(&[])),
        (r#"\w"#, true, "\u{A7CB}", Some(&[])),
        (r#"\d"#, false, "\u{1E4F1}", Some(&[])),
        (r#"\D"#, false, "\u{1E4F1}", Some(&[("0", "\u{1E4F1}")])),
        (r#"\bx\b"#, false, "x\u{A7CB}", Some(&[("0", "x")])),
        (r#"\b\w+\b"#, false, "\u{A7CB}ab", Some(&[("0", "ab")])),
        (r#"[[:alpha:]]"#, false, "\u{A7CB}", Some(&[])),
        (r#"[[:graph:]]"#, false, "\u{1FA77}", Some(&[])),
        // Categories as of Unicode 14: U+1FA77 (a Unicode 15 emoji) is unassigned for PCRE2
        // 10.42, so in Cn and not So; U+1DD3 was not Alphabetic then; \p{Cs} matches nothing.
        (r#"\p{So}"#, false, "\u{1FA77}", Some(&[])),
        (r#"\p{Cn}"#, false, "a\u{1FA77}", Some(&[("0", "\u{1FA77}")])),
        (r#"^\P{So}+$"#, false, "x\u{1FA77}", Some(&[("0", "x\u{1FA77}")])),
        (r#"\p{Cn}"#, true, "\u{264}\u{A7CB}", Some(&[("0", "\u{A7CB}")])),
        (r#"\p{Alphabetic}"#, false, "\u{1DD3}", Some(&[])),
        (r#"\p{Cs}"#, false, "a", Some(&[])),
        (r#"[^\p{Cs}]"#, false, "a", Some(&[("0", "a")])),
        // Scripts as of Unicode 14: U+00B7 gained Greek among its script extensions later,
        // U+0342 had it; CJK Extension H (U+31350) and U+1E030 came with Unicode 15, and
        // U+1F6DC with 15 too, so PCRE2 10.42 puts them in Unknown (which also holds private
        // use and unassigned code points).
        (r#"\p{Greek}"#, false, "·", Some(&[])),
        (r#"\p{Greek}"#, false, "\u{342}", Some(&[("0", "\u{342}")])),
        (r#"[^\p{Greek}]"#, false, "·", Some(&[("0", "·")])),
        (r#"\p{Han}"#, false, "\u{31350}\u{4e00}", Some(&[("0", "\u{4e00}")])),
        (r#"\p{sc:Cyrillic}"#, false, "\u{1E030}", Some(&[])),
        (r#"\p{Common}"#, false, "\u{1F6DC}", Some(&[])),
        (r#"\p{Unknown}"#, false, "a\u{378}", Some(&[("0", "\u{378}")])),
        (r#"\p{Unknown}"#, false, "\u{E000}", Some(&[("0", "\u{E000}")])),
        (r#"\p{Zzzz}"#, false, "a\u{1F6DC}", Some(&[("0", "\u{1F6DC}")])),
        // \w is Unicode under /u (UCP)
        (r#"\w+"#, false, "é_ü1", Some(&[("0", "é_ü1")])),
        // \w excludes combining marks in PCRE2 10.42
        (r#"\w+"#, false, "e\u{301}t", Some(&[("0", "e")])),
        // \w includes other numbers
        (r#"\w+"#, false, "x²½", Some(&[("0", "x²½")])),
        // \d is \p{Nd}
        (r#"\d+"#, false, "a٣٤5", Some(&[("0", "٣٤5")])),
        // \s includes NBSP and U+180E
        (r#"\s+"#, false, "a\u{a0}\u{180e}b", Some(&[("0", "\u{a0}\u{180e}")])),
        // \h
        (r#"\h+"#, false, "a \t　b", Some(&[("0", " \t　")])),
        // \v
        (r#"\v+"#, false, "a\u{b}\u{2028}b", Some(&[("0", "\u{b}\u{2028}")])),
        // \W
        (r#"\W+"#, false, "ab, cd", Some(&[("0", ", ")])),
        // \b around non-ASCII word
        (r#"\bé\b"#, false, "x é y", Some(&[("0", "é")])),
        // \b vs combining mark (exact path)
        (r#"t\b"#, false, "e\u{301}t", Some(&[("0", "t")])),
        // \b before combining mark
        (r#"e\b"#, false, "e\u{301}t", Some(&[("0", "e")])),
        // \B
        (r#"\Bb"#, false, "ab b", Some(&[("0", "b")])),
        // class with \w and hyphen
        (r#"[\w-]+"#, false, "a-é_b c", Some(&[("0", "a-é_b")])),
        // negated class of escapes
        (r#"[^\w\s]+"#, false, "ab !?, c", Some(&[("0", "!?,")])),
        // POSIX alpha is \p{L}
        (r#"[[:alpha:]]+"#, false, "1éa2", Some(&[("0", "éa")])),
        // POSIX punct adds ASCII symbols only
        (r#"[[:punct:]]+"#, false, "a$+¡€b", Some(&[("0", "$+¡")])),
        // POSIX space equals \s
        (
            r#"[[:space:]]+"#,
            false,
            "a\u{85}\u{180e}b",
            Some(&[("0", "\u{85}\u{180e}")]),
        ),
        // POSIX outside class is an error
        (r#"[:alpha:]"#, false, "a", None),
        // word start [[:<:]]
        (r#"[[:<:]]b"#, false, "ab b", Some(&[("0", "b")])),
        // dot excludes only \n
        (r#"a.c"#, false, "a\rc", Some(&[("0", "a\rc")])),
        // dot is a code point
        (r#"^.$"#, false, "😀", Some(&[("0", "😀")])),
        // $ before final newline
        (r#"a$"#, false, "a\n", Some(&[("0", "a")])),
        // $ not before inner newline
        (r#"a$"#, false, "a\nb", Some(&[])),
        // $ not before two newlines
        (r#"a$"#, false, "a\n\n", Some(&[])),
        // \z is the very end
        (r#"a\z"#, false, "a\n", Some(&[])),
        // \Z like $
        (r#"a\Z"#, false, "a\n", Some(&[("0", "a")])),
        // ^ only at start
        (r#"^b"#, false, "a\nb", Some(&[])),
        // (?m)^ after newline
        (r#"(?m)^b"#, false, "a\nb", Some(&[("0", "b")])),
        // (?m)^ not after final newline
        (r#"(?m)^$"#, false, "a\n", Some(&[])),
        // (?m)$ before every newline
        (r#"(?m)a$"#, false, "a\nb", Some(&[("0", "a")])),
        // (?s) dot matches newline
        (r#"(?s)a.b"#, false, "a\nb", Some(&[("0", "a\nb")])),
        // caseless ASCII
        (r#"abc"#, true, "xABCx", Some(&[("0", "ABC")])),
        // caseless Kelvin sign
        (r#"k"#, true, "K", Some(&[("0", "K")])),
        // caseless long s
        (r#"S"#, true, "ſ", Some(&[("0", "ſ")])),
        // caseless final sigma
        (r#"σ"#, true, "ς", Some(&[("0", "ς")])),
        // caseless sharp s / capital sharp s
        (r#"ß"#, true, "ẞ", Some(&[("0", "ẞ")])),
        // no multi-char folding
        (r#"straße"#, true, "STRASSE", Some(&[])),
        // dotted I is not i
        (r#"i"#, true, "İ", Some(&[])),
        // titlecase dz
        (r#"ǅ"#, true, "ǆ", Some(&[("0", "ǆ")])),
        // caseless does not touch \p{Lu}
        (r#"\p{Lu}"#, true, "a", Some(&[])),
        // caseless does not touch [:upper:]
        (r#"[[:upper:]]"#, true, "a", Some(&[])),
        // caseless \w excludes U+0345
        (r#"\w"#, true, "\u{345}", Some(&[])),
        // caseless negated mixed class
        (r#"[^\p{Lu}a]"#, true, "A", Some(&[])),
        // caseless negated mixed class 2
        (r#"[^\p{Ll}a]+"#, true, "A1b", Some(&[("0", "1")])),
        // caseless positive mixed class
        (r#"[\p{Lu}a]+"#, true, "bAaB", Some(&[("0", "AaB")])),
        // inline caseless scoped
        (r#"(?i:a)b"#, false, "Ab", Some(&[("0", "Ab")])),
        // inline caseless off
        (r#"(?i)a(?-i)b"#, false, "AB", Some(&[])),
        // option in branch persists to next branch
        (r#"a(?i)b|c"#, false, "C", Some(&[("0", "C")])),
        // lookahead
        (r#"foo(?=bar)"#, false, "foobaz foobar", Some(&[("0", "foo")])),
        // negative lookahead
        (r#"foo(?!bar)\w+"#, false, "foobar fooqux", Some(&[("0", "fooqux")])),
        // lookbehind with branches of different lengths
        (r#"(?<=ab|c)d"#, false, "abd", Some(&[("0", "d")])),
        // negative lookbehind
        (r#"(?<!a)b"#, false, "ab cb", Some(&[("0", "b")])),
        // variable lookbehind is an error
        (r#"(?<=a+)b"#, false, "ab", None),
        // lookbehind nested alternation must be same length
        (r#"(?<=(?:ab|c))e"#, false, "abe", None),
        // quantified lookahead
        (r#"(?=(a))?\w"#, false, "ab", Some(&[("0", "a"), ("1", "a")])),
        // a lookahead's quantifier leaves a lookbehind holding it fixed-length
        (r#"(?<=i(?=a)+)a"#, false, "ia", Some(&[("0", "a")])),
        (r#"(?<=i(?=a)*)a"#, false, "ia", Some(&[("0", "a")])),
        (r#"(?<=i(?=b){2,})b"#, false, "ib", Some(&[("0", "b")])),
        (r#"(?<=i(?!b)+)b"#, false, "ib", Some(&[])),
        (r#"(?<=i(?=(b))+)b"#, false, "ib", Some(&[("0", "b"), ("1", "b")])),
        (
            r#"\s(?<=İ(?=[a-z])++)??"#,
            true,
            "Å\u{3000}x",
            Some(&[("0", "\u{3000}")]),
        ),
        // ... a nested lookbehind's varying quantifier does not; a fixed count does
        (r#"(?<=i(?<!x)*)b"#, false, "ib", None),
        (r#"(?<=(?<=i)?)b"#, false, "ib", None),
        (r#"(?<=i(?<=i){0})b"#, false, "ib", Some(&[("0", "b")])),
        (r#"(?<=i(?<=i){2})b"#, false, "ib", Some(&[("0", "b")])),
        // ... nor does a quantified group holding only a lookahead
        (r#"(?<=i(?:(?=b))+)b"#, false, "ib", None),
        // a zero-width item repeated at least twice is still required (the exact engine
        // runs: ⓑ is a word character for Rust, not for PCRE2)
        (r#"\h(?:\b){2}"#, false, " ⓑ", Some(&[])),
        (r#"\h(?>(?>\b){2,}o*+){2,}"#, true, " ⓑ", Some(&[])),
        (r#"a(?:\b){2}"#, false, "a ⓑ", Some(&[("0", "a")])),
        // a lookahead inside a lookbehind may hold what has no fixed length; a lookbehind
        // inside that lookahead may not
        (r#"(?<=a(?=b\X+))b"#, false, "ab", Some(&[])),
        (r#"(?<=a(?=\R?b))b"#, false, "ab", Some(&[("0", "b")])),
        (r#"(?<=a(?=b(?<=\X)))b"#, false, "ab", None),
        (r#"(?<=a(?=(b)\1))b"#, false, "abb", Some(&[("0", "b"), ("1", "b")])),
        // extended mode: space between a quantifier and its `+` or `?`
        (r#"(?x)(?<!a{2} +$)b"#, false, "ab", Some(&[("0", "b")])),
        (r#"(?x)^a{2} +$"#, false, "aa", Some(&[("0", "aa")])),
        (r#"(?x)a* +b"#, false, "aab", Some(&[("0", "aab")])),
        (r#"(?x)^a{2} ?$"#, false, "aaa", Some(&[])),
        (r#"(?x)^a + $"#, false, "aaa", Some(&[("0", "aaa")])),
        // ... and what would refuse the assertion still refuses the pattern when the
        // quantifier lets the match skip it
        (r#"a(?=b\1)*"#, false, "ab", None),
        (r#"(?!1*(?<!K\W{2,}))?\pL"#, false, "ς", None),
        // an assertion repeated {0} is never tried; its groups stay unset
        (r#"a(?=(b)){0}b"#, false, "ab", Some(&[("0", "ab")])),
        // backreference
        (r#"(\w)\1"#, false, "abccd", Some(&[("0", "cc"), ("1", "c")])),
        // caseless backreference
        (r#"(a)\1"#, true, "aA", Some(&[("0", "aA"), ("1", "a")])),
        // backreference to unset group fails
        (r#"(a)?\1"#, false, "b", Some(&[])),
        // forward reference compiles
        (r#"\1(a)"#, false, "a", Some(&[])),
        // named backreference forms
        (
            r#"(?<x>a)\k<x>\k{x}\g{x}(?P=x)\k'x'"#,
            false,
            "aaaaaa",
            Some(&[("0", "aaaaaa"), ("x", "a"), ("1", "a")]),
        ),
        // relative backreference
        (
            r#"(a)(b)\g{-2}"#,
            false,
            "aba",
            Some(&[("0", "aba"), ("1", "a"), ("2", "b")]),
        ),
        // missing group is an error
        (r#"(a)\2"#, false, "aa", None),
        // possessive quantifier
        (r#"a++a"#, false, "aaa", Some(&[])),
        // possessive optional
        (r#"\d?+\d"#, false, "1", Some(&[])),
        // atomic group
        (r#"(?>ab|a)c"#, false, "ac", Some(&[("0", "ac")])),
        // atomic group success
        (r#"(?>ab|a)c"#, false, "abc", Some(&[("0", "abc")])),
        // \R is atomic
        (r#"\R\n"#, false, "\r\n", Some(&[])),
        // \R matches CRLF
        (r#"a\Rb"#, false, "a\r\nb", Some(&[("0", "a\r\nb")])),
        // \K resets match start
        (r#"foo\Kbar"#, false, "foobar", Some(&[("0", "bar")])),
        // named groups appear by name and index
        (
            r#"(?<y>a)(b)?(?<z>c)?(d)?"#,
            false,
            "ac",
            Some(&[("0", "ac"), ("y", "a"), ("1", "a"), ("2", ""), ("z", "c"), ("3", "c")]),
        ),
        // trailing unmatched groups omitted
        (r#"(a)(b)?(c)?"#, false, "a", Some(&[("0", "a"), ("1", "a")])),
        // middle unmatched group is empty string
        (r#"(a)?(b)"#, false, "b", Some(&[("0", "b"), ("1", ""), ("2", "b")])),
        // P and quote named syntax
        (
            r#"(?P<y>a)(?'w'b)"#,
            false,
            "ab",
            Some(&[("0", "ab"), ("y", "a"), ("1", "a"), ("w", "b"), ("2", "b")]),
        ),
        // duplicate names need (?J)
        (r#"(?<y>a)|(?<y>b)"#, false, "b", None),
        // (?J) duplicate names
        (
            r#"(?J)(?<y>a)|(?<y>b)"#,
            false,
            "b",
            Some(&[("0", "b"), ("y", "b"), ("1", ""), ("2", "b")]),
        ),
        // (?n) no auto capture
        (
            r#"(?n)(a)(?<x>b)"#,
            false,
            "ab",
            Some(&[("0", "ab"), ("x", "b"), ("1", "b")]),
        ),
        // (?U) swaps greediness
        (r#"(?U)a+"#, false, "aaa", Some(&[("0", "a")])),
        // (?x) extended
        ("(?x) a b # comment\n c", false, "abc", Some(&[("0", "abc")])),
        // (?x) keeps class spaces
        (r#"(?x)[ ]"#, false, " ", Some(&[("0", " ")])),
        // (?xx) drops class spaces
        (r#"(?xx)[ a]"#, false, " ", Some(&[])),
        // comment is transparent to quantifier
        (r#"a(?#x)+"#, false, "aaa", Some(&[("0", "aaa")])),
        // \Q...\E
        (r#"\Qa.b\E+"#, false, "a.bb", Some(&[("0", "a.bb")])),
        // \Q in class
        (r#"[\Q]\E]"#, false, "]", Some(&[("0", "]")])),
        // {,n} is literal in 10.42
        (r#"a{,3}"#, false, "a{,3}", Some(&[("0", "a{,3}")])),
        // unfinished brace is literal
        (r#"x{1,2"#, false, "x{1,2", Some(&[("0", "x{1,2")])),
        // brace with space is literal
        (r#"x{ 1 }"#, false, "x{ 1 }", Some(&[("0", "x{ 1 }")])),
        // quantifier bounds
        (r#"a{2,3}"#, false, "aaaa", Some(&[("0", "aaa")])),
        // lazy brace
        (r#"a{2,}?"#, false, "aaaa", Some(&[("0", "aa")])),
        // hex escapes
        (r#"\x41\x{42}\x{1F600}"#, false, "AB😀", Some(&[("0", "AB😀")])),
        // \x with no digits is NUL
        (r#"a\x"#, false, "a\u{0}", Some(&[("0", "a\u{0}")])),
        // octal and \0
        (r#"\101\0\o{102}"#, false, "A\u{0}B", Some(&[("0", "A\u{0}B")])),
        // \18 is octal 1 then 8 without groups
        (r#"\18"#, false, "\u{1}8", Some(&[("0", "\u{1}8")])),
        // \cX control
        (r#"\cA\c1"#, false, "\u{1}q", Some(&[("0", "\u{1}q")])),
        // \N{U+...}
        (r#"\N{U+41}"#, false, "A", Some(&[("0", "A")])),
        // \N is non-newline
        (r#"a\N"#, false, "a\n", Some(&[])),
        // escaped non-alphanumeric is literal
        (r#"\_\é"#, false, "_é", Some(&[("0", "_é")])),
        // unknown escape is an error
        (r#"\i"#, false, "i", None),
        // \L is an error
        (r#"\L"#, false, "L", None),
        // \p{Greek} means script extensions
        (r#"\p{Greek}"#, false, "\u{345}", Some(&[("0", "\u{345}")])),
        // \p{sc=Greek} means script
        (r#"\p{sc=Greek}"#, false, "\u{345}", Some(&[])),
        // \p{L&}
        (r#"\p{L&}+"#, false, "aB1", Some(&[("0", "aB")])),
        // \pL short form
        (r#"\pL+"#, false, "ab1", Some(&[("0", "ab")])),
        // \p{^L} negation
        (r#"\p{^L}+"#, false, "ab12", Some(&[("0", "12")])),
        // loose property names
        (r#"\p{ l_u }"#, false, "aB", Some(&[("0", "B")])),
        // long category names are unknown
        (r#"\p{Letter}"#, false, "a", None),
        // Is prefix is unknown
        (r#"\p{IsGreek}"#, false, "α", None),
        // Unicode 15 script unknown to 10.42
        (r#"\p{Kawi}"#, false, "a", None),
        // binary property
        (r#"\p{Alphabetic}+"#, false, "ab1", Some(&[("0", "ab")])),
        // class range
        (r#"[a-c]+"#, false, "xabcd", Some(&[("0", "abc")])),
        // class range out of order
        (r#"[z-a]"#, false, "a", None),
        // class escape range error
        (r#"[\d-z]"#, false, "-", None),
        // hyphen after class escape at end
        (r#"[\d-]+"#, false, "1-2", Some(&[("0", "1-2")])),
        // hyphen after range is literal
        (r#"[a-c-e]+"#, false, "b-e", Some(&[("0", "b-e")])),
        // ] first is literal
        (r#"[]a]+"#, false, "a]", Some(&[("0", "a]")])),
        // negated ] first
        (r#"[^]a]"#, false, "]ab", Some(&[("0", "b")])),
        // \b in class is backspace
        (r#"[\b]"#, false, "\u{8}", Some(&[("0", "\u{8}")])),
        // \B in class is an error
        (r#"[\B]"#, false, "B", None),
        // collating element error
        (r#"[[.a.]]"#, false, "a", None),
        // unknown POSIX class
        (r#"[[:foo:]]"#, false, "a", None),
        // surrogate escape is an error
        (r#"\x{d800}"#, false, "a", None),
        // too large code point
        (r#"\x{110000}"#, false, "a", None),
        // unclosed group
        (r#"("#, false, "", None),
        // unclosed class
        (r#"[a"#, false, "", None),
        // reversed bounds
        (r#"a{2,1}"#, false, "aa", None),
        // nothing to repeat
        (r#"*a"#, false, "a", None),
        // double quantifier
        (r#"a**"#, false, "a", None),
        // assertion not repeatable
        (r#"\b*"#, false, "a", None),
        // option setting not repeatable
        (r#"(?i)*a"#, false, "a", None),
        // repeat count too big
        (r#"a{65536}"#, false, "a", None),
        // unmatched closing parenthesis
        (r#"a)"#, false, "a", None),
        // unknown option letter
        (r#"(?z)a"#, false, "a", None),
        // name must not start with digit
        (r#"(?<1a>a)"#, false, "a", None),
        // (*FAIL)
        (r#"(*FAIL)|b"#, false, "ab", Some(&[("0", "b")])),
        // start-of-pattern options ignored
        (r#"(*UTF)(*UCP)a"#, false, "a", Some(&[("0", "a")])),
        // empty pattern
        (r#""#, false, "abc", Some(&[("0", "")])),
        // empty alternative
        (r#"a|"#, false, "b", Some(&[("0", "")])),
        // slash is escaped by munging
        (r#"a/b"#, false, "a/b", Some(&[("0", "a/b")])),
        // escaped slash stays
        (r#"a\/b"#, false, "a/b", Some(&[("0", "a/b")])),
        // double backslash then slash
        (r#"a\\/b"#, false, "a\\/b", Some(&[("0", "a\\/b")])),
        // four backslashes then slash: 1.39's PHP loses a pair here; master keeps them all
        // (we follow master, see `munge`)
        (r#"a\\\\/b"#, false, "a\\\\/b", Some(&[("0", "a\\\\/b")])),
        (r#"a\\\\/b"#, false, "a\\/b", Some(&[])),
        // trailing backslash: no ending delimiter
        (r#"a\"#, false, "a", None),
        // slash in class
        (r#"[/]"#, false, "/", Some(&[("0", "/")])),
        // alternation precedence
        (r#"^a|b$"#, false, "xb", Some(&[("0", "b")])),
        // lazy quantifier captures
        (
            r#"(a+?)(a*)"#,
            false,
            "aaa",
            Some(&[("0", "aaa"), ("1", "a"), ("2", "aa")]),
        ),
        // captures of repeated group keep last iteration
        (r#"(?:(a)|b)+"#, false, "ab", Some(&[("0", "ab"), ("1", "a")])),
        // alternation priority is leftmost-first
        (
            r#"(a|ab)(c|bcd)(d*)"#,
            false,
            "abcd",
            Some(&[("0", "abcd"), ("1", "a"), ("2", "bcd"), ("3", "")]),
        ),
    ];

    fn key_str(k: &MatchKey) -> String {
        match k {
            MatchKey::Index(i) => i.to_string(),
            MatchKey::Name(n) => n.clone(),
        }
    }

    fn php_match(pattern: &str, caseless: bool, subject: &str) -> Option<Vec<(String, String)>> {
        let re = Regex::new(pattern, caseless).ok()?;
        let caps = re.captures(subject).ok()?;
        Some(caps.map_or_else(Vec::new, |c| {
            c.php_matches().into_iter().map(|(k, v)| (key_str(&k), v)).collect()
        }))
    }

    #[test]
    fn preg_match_cases_agree_with_php() {
        let mut failures = Vec::new();
        for (pattern, caseless, subject, expected) in MATCH_CASES {
            let got = php_match(pattern, *caseless, subject);
            let want = expected.map(|e| {
                e.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<Vec<_>>()
            });
            if got != want {
                failures.push(format!(
                    "{pattern:?} ci={caseless} {subject:?}: got {got:?}, PHP {want:?}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(MATCH_CASES.len() >= 60);
    }

    /// (pattern, caseless, replacement, subject, preg_replace result, preg_match_all count),
    /// all from PHP.
    type ReplaceCase = (
        &'static str,
        bool,
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<usize>,
    );

    const REPLACE_CASES: &[ReplaceCase] = &[
        (
            r#"(a)(b)?"#,
            false,
            "[$1|$2|${1}x|\\1|\\\\1|$11|${11}|$0|\\0|$|\\$1|$a]",
            "ab",
            Some("[a|b|ax|a|\\1|||ab|ab|$|$1|$a]"),
            Some(1),
        ),
        (
            r#"(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)"#,
            false,
            "$11|${1}1|\\11|$011|${001}|$001",
            "abcdefghijk",
            Some("k|a1|k|a1|${001}|abcdefghijk1"),
            Some(1),
        ),
        (
            r#"(?<n>a)"#,
            false,
            "${n}|$n|\\k<n>",
            "a",
            Some("${n}|$n|\\k<n>"),
            Some(1),
        ),
        (r#"x*"#, false, "-", "abc", Some("-a-b-c-"), Some(4)),
        (r#"x*?"#, false, "-", "xx", Some("-----"), Some(5)),
        (r#"a|"#, false, "-", "bab", Some("-b--b-"), Some(4)),
        (r#"(|x)"#, false, "-", "xx", Some("-----"), Some(5)),
        (r#"\b"#, false, "|", "ab cd", Some("|ab| |cd|"), Some(4)),
        (r#"\b"#, false, "|", "é a", Some("|é| |a|"), Some(4)),
        (r#"$"#, false, "|", "ab\n", Some("ab|\n|"), Some(2)),
        (r#"(?m)$"#, false, "|", "ab\ncd\n", Some("ab|\ncd|\n|"), Some(3)),
        (r#"(?m)^"#, false, "|", "ab\ncd\n", Some("|ab\n|cd\n"), Some(2)),
        (r#"a\K"#, false, "|", "aaa", Some("a|a|a|"), Some(3)),
        (r#"\Ga"#, false, "-", "aab", Some("--b"), Some(2)),
        (r#"(?=a)"#, false, "-", "aa", Some("-a-a"), Some(2)),
        (r#"\s+"#, false, " ", "a \u{a0}\t b", Some("a b"), Some(1)),
        (
            r#"(\w+)@(\w+)"#,
            true,
            "$2 at $1",
            "Mail: Foo@Bar.org",
            Some("Mail: Bar at Foo.org"),
            Some(1),
        ),
        (r#"é"#, true, "e", "ÉéÈ", Some("eeÈ"), Some(2)),
        (r#"(a)|b"#, false, "[$1]", "ab", Some("[a][]"), Some(2)),
        (r#"(?<=a)b"#, false, "X", "abab cb", Some("aXaX cb"), Some(2)),
        (r#"(.)\1"#, false, "<$1>", "aabbc", Some("<a><b>c"), Some(2)),
        (r#"/"#, false, "\\", "a/b/c", Some("a\\b\\c"), Some(2)),
    ];

    #[test]
    fn preg_replace_and_count_agree_with_php() {
        let mut failures = Vec::new();
        for (pattern, caseless, rep, subject, want, want_count) in REPLACE_CASES {
            let re = Regex::new(pattern, *caseless);
            let got = re.as_ref().ok().and_then(|r| r.replace_all(subject, rep).ok());
            let count = re.as_ref().ok().and_then(|r| r.count_matches(subject).ok());
            if got.as_deref() != *want || count != *want_count {
                failures.push(format!(
                    "{pattern:?} {rep:?} {subject:?}: got {got:?}/{count:?}, PHP {want:?}/{want_count:?}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn munging_matches_abusefilter() {
        // Outputs of FilterEvaluator::mungeRegexp without the delimiters.
        assert_eq!(munge("a/b").ok().as_deref(), Some(r"a\/b"));
        assert_eq!(munge(r"a\/b").ok().as_deref(), Some(r"a\/b"));
        assert_eq!(munge(r"a\\/b").ok().as_deref(), Some(r"a\\\/b"));
        assert_eq!(munge(r"a\\\/b").ok().as_deref(), Some(r"a\\\/b"));
        assert_eq!(munge(r"a\\\\/b").ok().as_deref(), Some(r"a\\\\\/b"));
        assert_eq!(munge(r"//").ok().as_deref(), Some(r"\/\/"));
        assert_eq!(munge(r"a\b\\c").ok().as_deref(), Some(r"a\b\\c"));
        assert!(munge("a\\").is_err());
        assert!(munge("a\\\\\\").is_err());
        assert_eq!(munge("a\\\\").ok().as_deref(), Some("a\\\\"));
    }

    #[test]
    fn preg_quote_matches_php() {
        assert_eq!(
            preg_quote("a.b\\c+*?[^]$(){}=!<>|:-#/ \0z"),
            "a\\.b\\\\c\\+\\*\\?\\[\\^\\]\\$\\(\\)\\{\\}\\=\\!\\<\\>\\|\\:\\-\\#/ \\000z"
        );
    }

    #[test]
    fn rescape_round_trips_through_master_munging() {
        // 1.39's munging dropped a backslash here; master (which we follow) keeps them all.
        let re = Regex::new(&preg_quote("0\\\\/"), false);
        assert_eq!(re.as_ref().map(|r| r.is_match("0\\\\/")).ok(), Some(Ok(true)));
        assert_eq!(re.as_ref().map(|r| r.is_match("0\\/")).ok(), Some(Ok(false)));
    }

    #[test]
    fn like_matches_php() {
        // keywordLike's pattern bodies and results, from PHP.
        assert_eq!(like_to_pcre_body("a*b?"), "^a.*b.$");
        assert_eq!(like_to_pcre_body("[!a-c]x"), "^[^a\\-c]x$");
        assert_eq!(like_to_pcre_body("a\\b"), "^a\\\\\\\\b$");
        assert_eq!(like_to_pcre_body("1+1=2"), "^1\\+1\\\\=2$");
        let is = |p: &str, s: &str| Regex::like(p).and_then(|r| r.is_match(s)).unwrap_or(false);
        assert!(is("a*b?", "axxb?"));
        assert!(!is("a*b?", "ab"));
        assert!(is("[!a-c]x", "dx"));
        assert!(!is("[!a-c]x", "ax"));
        assert!(is("a\\b", "a\\\\b"));
        assert!(!is("a\\b", "a\\b"));
        assert!(!is("1+1=2", "1+1=2"));
        assert!(is("[abc]", "b"));
        // `#` becomes `\\#`, which ends PHP's `#…#u` delimiters early: preg_match fails.
        assert!(Regex::like("x#y/z").is_err());
    }

    #[test]
    fn matches_empty_matches_php() {
        // preg_match("/$p/u", '') === 1 in PHP.
        for (p, want) in [
            ("a", false),
            ("", true),
            ("a*", true),
            ("(?:)", true),
            ("a|", true),
            (r"\b", false),
            ("^$", true),
            ("(a)?", true),
            ("x{0}", true),
            ("(?=a)", false),
            ("[^a]*", true),
            (r"\w+", false),
        ] {
            let re = Regex::new(p, false);
            assert_eq!(re.map(|r| r.matches_empty()).ok(), Some(want), "{p}");
        }
    }

    /// Every Unicode property (general categories, binary properties, scripts as `\p{X}`,
    /// `\p{sc:X}` and `\p{scx:X}`), escape (`\w`…) and POSIX class against PHP's answers for
    /// every code point, as
    /// `scripts/pcre-properties.php` prints them into the file named by
    /// `WIKIGUARD_PCRE_PROPERTIES`. On a difference it prints, per property, the code points the
    /// tables ([`ASSIGNED_SINCE_14`], [`PROPERTY_FIXES`], [`SCRIPT_FIXES`]) must add or remove.
    /// Ignored: it needs PHP's output (`php scripts/pcre-properties.php > F`).
    #[test]
    #[ignore]
    fn unicode_properties_match_php() {
        let path =
            std::env::var("WIKIGUARD_PCRE_PROPERTIES").expect("WIKIGUARD_PCRE_PROPERTIES names the probe's output");
        let php: std::collections::BTreeMap<String, Vec<(u32, u32)>> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let ranges_of = |text: &str| -> Vec<(u32, u32)> {
            let hir = regex_syntax::ParserBuilder::new()
                .build()
                .parse(&format!("[{text}]"))
                .unwrap();
            match hir.kind() {
                regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(c)) => c
                    .ranges()
                    .iter()
                    .map(|r| (u32::from(r.start()), u32::from(r.end())))
                    .collect(),
                // A one-character class (`\p{Zl}`).
                regex_syntax::hir::HirKind::Literal(l) => std::str::from_utf8(&l.0)
                    .unwrap()
                    .chars()
                    .map(|c| (u32::from(c), u32::from(c)))
                    .collect(),
                // The empty class (`\p{Cs}`).
                regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Bytes(b)) if b.ranges().is_empty() => {
                    Vec::new()
                }
                other => panic!("not a class: {other:?}"),
            }
        };
        // Code point sets as sorted vectors (surrogates are never in either).
        let expand = |rs: &[(u32, u32)]| -> Vec<u32> {
            rs.iter()
                .flat_map(|&(lo, hi)| lo..=hi)
                .filter(|c| !(0xD800..=0xDFFF).contains(c))
                .collect()
        };
        let mut bad = Vec::new();
        for (key, want) in &php {
            let set = if let Some(letter) = key.strip_prefix('\\') {
                escape_set(letter.chars().next().unwrap()).unwrap()
            } else if let Some(posix) = key.strip_prefix("[[:").and_then(|k| k.strip_suffix(":]]")) {
                match posix.strip_prefix('^') {
                    Some(name) => posix_set(name, true).unwrap(),
                    None => posix_set(posix, false).unwrap(),
                }
            } else {
                property_set(key).unwrap()
            };
            let ours = expand(&ranges_of(&set.text));
            let want = expand(want);
            if ours != want {
                let (w, o): (std::collections::BTreeSet<u32>, std::collections::BTreeSet<u32>) =
                    (want.into_iter().collect(), ours.into_iter().collect());
                let add: Vec<u32> = w.difference(&o).copied().collect();
                let remove: Vec<u32> = o.difference(&w).copied().collect();
                bad.push(format!("{key}: add {add:X?}, remove {remove:X?}"));
            }
        }
        assert!(
            bad.is_empty(),
            "{} properties differ from PHP's:\n{}",
            bad.len(),
            bad.join("\n")
        );
    }

    #[test]
    fn group_count_and_names() {
        let re = Regex::new(r"(a)(?:b)(?<n>c)(?=(d))\((?#x)", false);
        assert_eq!(re.as_ref().map(Regex::group_count).ok(), Some(3));
        assert_eq!(
            re.as_ref().map(|r| r.group_names().to_vec()).ok(),
            Some(vec![("n".to_owned(), 2)])
        );
        assert_eq!(
            Regex::new("(?n)(a)(?<x>b)", false).map(|r| r.group_count()).ok(),
            Some(1)
        );
    }

    #[test]
    fn engine_choice_does_not_change_results() {
        // `\b`/`$` patterns run on `regex` for most haystacks and on fancy-regex for the others.
        let re = Regex::new(r"\bfoo\b", false);
        let re = re.as_ref().ok();
        assert_eq!(re.map(|r| r.is_match("a foo b").ok()), Some(Some(true)));
        assert_eq!(re.map(|r| r.is_match("a foo\u{301} b").ok()), Some(Some(true)));
        assert_eq!(re.map(|r| r.is_match("a ²foo b").ok()), Some(Some(false)));
        assert_eq!(re.map(|r| r.is_match("a foo b\n").ok()), Some(Some(true)));
        let re = Regex::new(r"b$", false);
        let re = re.as_ref().ok();
        assert_eq!(re.map(|r| r.count_matches("ab\nab\n").ok()), Some(Some(1)));
        assert_eq!(re.map(|r| r.count_matches("ab\nab").ok()), Some(Some(1)));
    }

    #[allow(clippy::needless_range_loop)]
    fn repeated_word_starts_slow(haystack: &str, rw: RepeatedWord, limit: usize) -> Vec<usize> {
        let caseless = rw.caseless;
        let Some((word, space, ascii)) = char_kinds() else {
            return vec![0];
        };
        let (offsets, chars): (Vec<usize>, Vec<char>) = haystack.char_indices().unzip();
        let mut found = Vec::new();
        let kinds: Vec<u8> = chars
            .iter()
            .map(|&c| match ascii.get(c as usize) {
                Some(&k) => k,
                None => {
                    let mut buf = [0; 4];
                    let s = c.encode_utf8(&mut buf);
                    if word.is_match(s) {
                        WORD
                    } else if space.is_match(s) {
                        SPACE
                    } else {
                        OTHER
                    }
                }
            })
            .collect();
        let same =
            |x: char, y: char| x == y || (caseless && (!x.is_ascii() || !y.is_ascii() || x.eq_ignore_ascii_case(&y)));
        let n = chars.len();
        let mut j = 1;
        while j < n {
            if kinds[j] != SPACE || kinds[j - 1] != WORD {
                j += 1;
                continue;
            }
            let mut a = j;
            while a > 0 && kinds[a - 1] == WORD {
                a -= 1;
            }
            let mut k = j;
            while k < n && kinds[k] == SPACE {
                k += 1;
            }
            if j - a > 256 {
                // Too long a word to compare every suffix: it could start anywhere in it.
                found.push(offsets.get(a).copied().unwrap_or(0));
                if !rw.boundary_before {
                    found.resize(limit.max(found.len()), usize::MAX);
                }
                if found.len() >= limit {
                    return found;
                }
                j = k;
                continue;
            }
            let is_word = |at: usize| kinds.get(at) == Some(&WORD);
            // With `\b` before the group, it starts where the word does (its first character is a
            // word character).
            let last_start = if rw.boundary_before { a } else { j - 1 };
            for i in a..=last_start {
                let len = j - i;
                let end = k + len;
                if end <= n
                    && (0..len).all(|t| same(chars[i + t], chars[k + t]))
                    && (!rw.boundary_after || is_word(end - 1) != is_word(end))
                {
                    found.push(offsets.get(i).copied().unwrap_or(0));
                    if found.len() >= limit {
                        return found;
                    }
                }
            }
            j = k;
        }
        found
    }

    /// The same pattern without the shortcuts (prefilter, single-character path, checked fast
    /// path): the exact engine whenever it exists.
    fn reference(re: &Regex) -> Regex {
        let i = &*re.inner;
        Regex {
            inner: Arc::new(Inner {
                fast: if i.exact.is_some() { None } else { i.fast.clone() },
                exact: i.exact.clone(),
                retry: i.retry.clone(),
                dep_final_newline: false,
                dep_line_start: false,
                word_disagreement: None,
                prefilter: None,
                single: None,
                required: None,
                min_run: None,
                whole_run: None,
                group_count: i.group_count,
                names: Arc::clone(&i.names),
                matches_empty: i.matches_empty,
            }),
        }
    }

    #[test]
    fn shortcuts_do_not_change_results() {
        let patterns = [
            r"(.)\1{10,}",
            r"(.{2,6})\1{8,}",
            r"(?i)(.{2,3})\1{2,}",
            r"\b(\w+)(\s+\1\b){2,}",
            r"(?m)^\+.*\b(penis|poop|gay)\b",
            r"\b(viagra|cialis)\b",
            r"(?m)^=+[^=\n]+=+\s*$",
            r"(?m)^\| \d{4} \|",
            r"(?m)^$",
            r"(?m)\n^",
            r"(^|\s)(:-?\)|<3)(\s|$)",
            r"a$",
            r"(?=foo)\w+",
            r"(?<!x)bar\b",
            r"(?>a+)b",
            r"a++b",
            r"\Gab",
            r"[^A-Z]",
            r"[^A-Za-z]",
            r"x",
            r"(?i)[^k]",
            r"\Kb",
            r"(a)(?i:\1)",
            r"(\w+)\s+\1",
            r"\b(\w+)\s+\1\b",
            r"^(\w+)\s+\1",
            r"x(\w+)\s+\1",
            r"\b(\w+)(?:\s+\1\b)+",
            r"\b[b-df-hj-np-tv-xz]{7,}\b",
            r"[a-z]{4,}",
            r"[^a]{5,}",
            r"\w{4,}",
            r"\b[A-Z]{2,}(\s+[A-Z]{2,}){5,}\b",
            r"(\+\d{1,3}[ .-]?)?\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b",
            r"(?=\d)[\d ]{8,}(?<=\d)",
            r"(ab|c){4}x?",
        ];
        let long_word = format!("{0} {0} {1}x {1}", "w".repeat(300), "v".repeat(280));
        let haystacks = [
            "",
            "aaaaaaaaaaaa",
            "xx lollollollollollollollollol yy",
            "abcABCabc",
            "the the the dog",
            "The the THE the end\n",
            "+ some penis here\n- gay\n",
            "+ pénis\u{301} poop\n",
            "buy viagra now",
            "== Head ==\n| 2001 || 5 ||\n",
            "x\n\n",
            "\n",
            "smile :) <3\n",
            "ab\nab\n",
            "foobar xbar ybar",
            "aaab ab",
            "ÀÉ ÎÕ ñ k K \u{212A}",
            "aA aa",
            "this is it\nIt",
            "is is",
            "xab ab",
            "Straße STRASSE straße",
            "ǅa ǆa ǆA",
            "k \u{212A} K",
            "éé éé x",
            "a_1 a_1\u{301}",
            "a\u{2003}a",
            "bcdăfghjkl bcdfghjk",
            "ſſſſ kkk\u{212A} abc\u{212A}d",
            "THE QUICK BROWN FOX JUMPS OVER it; ONE TWO THREE FOUR FIVE\u{a0}SIX",
            "call +1 555-123-4567 or (555) 123 4567, 555.123.4567x",
            "12345678 1 2 3 4 5 6 abcabababcx ccccx",
            "ABCDEFGHijklmnopQRSTUVWXyzé0123456789ÀBCDEFGHIJ\u{212A}KLMNOPQRSTUVWXYZabcdefgh",
            &long_word,
        ];
        for (p, ci) in patterns.iter().flat_map(|p| [(*p, false), (*p, true)]) {
            let Ok(re) = Regex::new(p, ci) else {
                panic!("{p} does not compile");
            };
            let r = reference(&re);
            for h in haystacks {
                assert_eq!(re.is_match(h), r.is_match(h), "is_match {p:?} {h:?}");
                assert_eq!(re.captures(h), r.captures(h), "captures {p:?} {h:?}");
                assert_eq!(re.count_matches(h), r.count_matches(h), "count {p:?} {h:?}");
                assert_eq!(
                    re.replace_all(h, "<$0>"),
                    r.replace_all(h, "<$0>"),
                    "replace {p:?} {h:?}"
                );
                assert_eq!(re.replace_all(h, ""), r.replace_all(h, ""), "delete {p:?} {h:?}");
            }
        }
    }

    #[test]
    fn shortcuts_are_found() {
        let has = |p: &str, ci: bool, f: fn(&Prefilter) -> bool| {
            Regex::new(p, ci)
                .ok()
                .and_then(|r| r.inner.prefilter.as_ref().map(f))
                .unwrap_or(false)
        };
        assert!(has(r"\b(\w+)(\s+\1\b){4,}", true, |p| p
            .repeated_word
            .is_some_and(|rw| rw.leading && rw.boundary_before && rw.boundary_after)));
        assert!(has(r"(.{2,6})\1{8,}", false, |p| p.period.is_some()));
        assert!(has(r"(.)\1{10,}", false, |p| p.period.is_some()));
        assert!(has(r"\b(viagra|cialis)\b", true, |p| p.relaxed.is_some()));
        assert!(Regex::new("[^A-Z]", false).is_ok_and(|r| r.inner.single.is_some()));
    }

    #[test]
    fn whole_match_runs_rule_out_ordinary_text() {
        let run = |p: &str| {
            Regex::new(p, false)
                .ok()
                .and_then(|r| r.inner.whole_run.as_ref().map(|m| m.min))
        };
        assert_eq!(run(r"\b[A-Z]{2,}(\s+[A-Z]{2,}){5,}\b"), Some(17));
        assert_eq!(run(r"(\+\d{1,3}[ .-]?)?\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b"), Some(12));
        // Too short, too wide a set, or a part that is not one character of a set: none.
        assert_eq!(run(r"[A-Z]{2,}"), None);
        assert_eq!(run(r"[^x]{20}"), None);
        assert_eq!(run(r"\b(buy|cheap|online) now\b"), None);
        assert_eq!(run(r"a.{10}b"), None);
        assert_eq!(run(r"(a)\1{10}"), None);
        let text = "The Treaty of 1888 was signed by the UK and FRANCE. Call 555 0100 for more.\n";
        let re = Regex::new(r"\b[A-Z]{2,}(\s+[A-Z]{2,}){5,}\b", false).expect("compiles");
        assert!(!re.may_match(&text.repeat(50), None));
        assert!(re.may_match("so THIS IS A VERY LOUD LINE", None));
    }

    #[test]
    fn runs_of_an_ascii_set_skip_non_ascii_text() {
        let run = |p: &str, ci: bool| {
            Regex::new(p, ci)
                .ok()
                .and_then(|r| r.inner.min_run.as_ref().map(|m| m.table))
        };
        // No consonant run of 7 here, though 7 bytes in a row are consonants or non-ASCII.
        let table = run(r"\b[b-df-hj-np-tv-xz]{7,}\b", false).expect("a run");
        assert!(!table[0xC4] && !table[usize::from(b'a')] && table[usize::from(b'b')]);
        let re = Regex::new(r"\b[b-df-hj-np-tv-xz]{7,}\b", false).expect("compiles");
        assert!(!re.may_match("ngșțșbcd and ăăăă", None));
        // Caseless `k` also matches the Kelvin sign, and `.` anything: their runs keep
        // non-ASCII bytes.
        assert!(run("[a-z]{4,}", true).is_some_and(|t| t[0xE2]));
        assert!(run(".{5,}", false).is_some_and(|t| t[0xC4]));
        assert!(run(r"\w{5,}", false).is_some_and(|t| t[0xC4]));
    }

    fn quick<T>(f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
        r
    }

    #[test]
    fn catastrophic_patterns_return_quickly() {
        let long_a = "a".repeat(100_000);
        let words = "aaa ".repeat(25_000);
        // Linear engine: correct answers, no blow-up.
        let r = quick(|| Regex::new(r"(a+)+$", false).and_then(|r| r.is_match(&format!("{long_a}!"))));
        assert_eq!(r, Ok(false));
        let r = quick(|| Regex::new(r"(\w+\s?)*!", false).and_then(|r| r.is_match(&words)));
        assert_eq!(r, Ok(false));
        let r = quick(|| Regex::new(r"(a|aa)+$", false).and_then(|r| r.count_matches(&format!("{long_a}b"))));
        assert_eq!(r, Ok(0));
        // Backtracking engine: the budget stops it.
        let long_a_bang = format!("{long_a}!");
        let r = quick(|| Regex::new(r"^(\w+\s?)*(?<=q)!", false).and_then(|r| r.is_match(&long_a_bang)));
        assert_eq!(r, Err(RegexError::BacktrackLimit));
        // Without the `!` the prefilter rules a match out before the backtracking starts (PHP
        // reports PREG_BACKTRACK_LIMIT_ERROR here: a documented approximation).
        let r = quick(|| Regex::new(r"^(\w+\s?)*(?<=q)!", false).and_then(|r| r.is_match(&long_a)));
        assert_eq!(r, Ok(false));
        let r = quick(|| Regex::new(r"(a+)+\1!", false).and_then(|r| r.is_match(&long_a)));
        assert!(matches!(r, Ok(false) | Err(RegexError::BacktrackLimit)), "{r:?}");
        let r = quick(|| Regex::new(r"(?=(a|a)*b)", false).and_then(|r| r.replace_all(&long_a, "x")));
        assert!(matches!(r, Ok(_) | Err(RegexError::BacktrackLimit)), "{r:?}");
    }

    #[test]
    fn huge_or_deep_patterns_are_compile_errors_not_crashes() {
        assert!(matches!(
            Regex::new(r"\w{60000}\w{60000}", false),
            Err(RegexError::Compile { .. })
        ));
        let deep_ok = format!("{}a{}", "(?:".repeat(NEST_LIMIT), ")".repeat(NEST_LIMIT));
        assert!(quick(|| Regex::new(&deep_ok, false)).is_ok());
        let deep_bad = format!("{}a{}", "(".repeat(NEST_LIMIT + 1), ")".repeat(NEST_LIMIT + 1));
        assert!(matches!(Regex::new(&deep_bad, false), Err(RegexError::Compile { .. })));
        let deep_fancy = format!("{}a{}\\1", "(".repeat(NEST_LIMIT), ")".repeat(NEST_LIMIT));
        let _ = quick(|| Regex::new(&deep_fancy, false).and_then(|r| r.is_match("aa")));
    }

    #[test]
    fn unsupported_constructs_are_named() {
        for p in [
            r"\C",
            "(?|(a)|(b))",
            "(?R)",
            "(?1)(a)",
            r"(a)\g<1>",
            "(?(1)a|b)(a)",
            "(*ACCEPT)",
            "(*CRLF)a",
            r"(?=a\K)",
        ] {
            match Regex::new(p, false) {
                Err(RegexError::Compile { message }) => {
                    assert!(message.contains("unsupported"), "{p}: {message}")
                }
                other => panic!("{p}: {other:?}"),
            }
        }
    }

    #[test]
    fn grapheme_clusters_keep_their_marks() {
        let re = Regex::new(r"^\X\X$", false).ok();
        assert!(re.as_ref().is_some_and(|r| r.is_match("e\u{301}x").ok() == Some(true)));
        assert!(re.as_ref().is_some_and(|r| r.is_match("\r\nx").ok() == Some(true)));
        assert!(re.as_ref().is_some_and(|r| r.is_match("e\u{301}").ok() == Some(false)));
        // Pictographs run together in PCRE2 10.42, with or without a joiner between them.
        let one = Regex::new(r"^\X$", false).ok();
        for text in [
            "\u{1F600}\u{1F600}",
            "\u{a9}\u{ae}",
            "\u{1F600}\u{301}\u{1F600}",
            "\u{24C2}\u{24C2}",
        ] {
            assert!(
                one.as_ref().is_some_and(|r| r.is_match(text).ok() == Some(true)),
                "{text:?}"
            );
        }
        assert!(one
            .as_ref()
            .is_some_and(|r| r.is_match("\u{24C2}a").ok() == Some(false)));
        // A control character takes no marks (PCRE2: U+206F then a spacing mark is two).
        assert!(re
            .as_ref()
            .is_some_and(|r| r.is_match("\u{206f}\u{93e}").ok() == Some(true)));
        assert!(re.as_ref().is_some_and(|r| r.is_match("\n\u{301}").ok() == Some(true)));
        // Atomic: the marks cannot be given back to a following `\p{M}`.
        let atomic = Regex::new(r"^\X\p{M}", false).ok();
        assert!(atomic.is_some_and(|r| r.is_match("e\u{301}").ok() == Some(false)));
    }

    #[test]
    fn cache_is_bounded_and_caches_errors() {
        let cache = RegexCache::new(2);
        let a = cache.get_or_compile("a", false);
        assert!(a.is_ok());
        assert!(cache.get_or_compile("(", false).is_err());
        assert!(cache.get_or_compile("(", false).is_err());
        assert_eq!(cache.len(), 2);
        let _ = cache.get_or_compile("a", false);
        let _ = cache.get_or_compile("b", true);
        assert_eq!(cache.len(), 2);
        let again = cache.get_or_compile("a", false);
        assert!(matches!((&a, &again), (Ok(x), Ok(y)) if Arc::ptr_eq(x, y)));
        assert!(cache.get_or_compile_body("#", false).is_ok());
    }

    #[test]
    fn shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Regex>();
        assert_send_sync::<RegexCache>();
        assert_send_sync::<Captures>();
        let cache = Arc::new(RegexCache::new(8));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || {
                    cache
                        .get_or_compile(r"\bx\d\b", i % 2 == 0)
                        .and_then(|r| r.is_match("a x1 b"))
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().ok(), Some(Ok(true)));
        }
    }

    mod props {
        use super::super::*;
        use super::reference;
        use proptest::prelude::*;

        fn literal_pattern_strategy() -> impl Strategy<Value = String> {
            let atoms = prop::sample::select(vec![
                "a",
                "b",
                "k",
                "K",
                "s",
                "S",
                "\u{212A}",
                "\u{17F}",
                "é",
                "É",
                ":",
                "\\)",
                "(?i)",
                "(?-i)",
                "(?i:",
                "(",
                ")",
                "(?:",
                "(?=",
                "(?<=",
                "(?!",
                "|",
                "?",
                "*",
                "+",
                "{2}",
                "{0,1}",
                "{1,2}",
                "[ab]",
                "[a-c]",
                "[kK]",
                "[sé]",
                "[^a]",
                "\\b",
                ".",
                "\\s",
                "\\w",
                "^",
                "$",
                "\\1",
                "\\K",
                "{4,}",
                "{5}",
                "[^\\s]{4,}",
                "[[:alpha:]]{4,}",
                "[\\x{400}-\\x{4ff}]",
            ]);
            prop::collection::vec(atoms, 0..8).prop_map(|v| v.concat())
        }

        fn pattern_strategy() -> impl Strategy<Value = String> {
            let atoms = prop::sample::select(vec![
                "a",
                "b",
                ".",
                "\\",
                "/",
                "(",
                ")",
                "(?:",
                "(?=",
                "(?<=",
                "(?<!",
                "(?>",
                "[",
                "]",
                "^",
                "$",
                "|",
                "*",
                "+",
                "?",
                "{",
                "}",
                "{2}",
                "{1,3}",
                "\\w",
                "\\b",
                "\\1",
                "\\k<n>",
                "(?<n>",
                "\\p{L}",
                "\\Q",
                "\\E",
                "-",
                "é",
                "(?i)",
                "(?x)",
                "#",
                " ",
                "\n",
                "\\x{41}",
                "[:alpha:]",
                "\\R",
                "\\K",
                "\\G",
                "(*F)",
                "++",
                "*?",
                "\\d",
                "\\s",
                "\\",
            ]);
            prop::collection::vec(atoms, 0..12).prop_map(|v| v.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]

            /// The split of a caseless class's range gives back every character of the range
            /// once: those PCRE2 gives no case pair on the exact side, the rest on the folded
            /// side.
            #[test]
            fn a_range_splits_into_folded_and_exact_characters(
                lo in prop_oneof![0u32..0x3C0, 0x1C80u32..0x1CA0, 0x1FC0u32..0x1FF0, 0xA7C0u32..0xA7E0, 0xFB00u32..0xFB10, 0x10D40u32..0x10D90, 0x16E90u32..0x16EE0],
                len in 0u32..0x60,
            ) {
                let (a, b) = (char::from_u32(lo).unwrap(), char::from_u32(lo + len).unwrap());
                let (mut folded, mut exact) = (Vec::new(), Vec::new());
                split_no_pcre_pair(a, b, &mut folded, &mut exact);
                let chars = |items: &[Item]| -> Vec<u32> {
                    let mut v: Vec<u32> = items
                        .iter()
                        .flat_map(|i| match i {
                            Item::Char(c) => u32::from(*c)..=u32::from(*c),
                            Item::Range(x, y) => u32::from(*x)..=u32::from(*y),
                            Item::Set(_) => panic!("a range splits into characters and ranges"),
                        })
                        .collect();
                    v.sort_unstable();
                    v
                };
                let (f, e) = (chars(&folded), chars(&exact));
                let after = |c: &u32| no_pcre_pair(char::from_u32(*c).unwrap());
                prop_assert!(f.iter().all(|c| !after(c)));
                prop_assert!(e.iter().all(after));
                let mut all = [f, e].concat();
                all.sort_unstable();
                prop_assert_eq!(all, (lo..=lo + len).collect::<Vec<u32>>());
            }

            #[test]
            fn never_panics_on_arbitrary_strings(p in ".{0,16}", h in ".{0,24}", ci in any::<bool>()) {
                if let Ok(re) = Regex::new(&p, ci) {
                    let _ = re.is_match(&h);
                    let _ = re.captures(&h);
                    let _ = re.replace_all(&h, "$1\\2${3}");
                    let _ = re.count_matches(&h);
                }
                let _ = Regex::like(&p).map(|r| r.is_match(&h));
            }

            #[test]
            fn never_panics_on_regex_like_strings(p in pattern_strategy(), h in "[ab é\n]{0,12}", ci in any::<bool>()) {
                if let Ok(re) = Regex::new(&p, ci) {
                    let _ = re.is_match(&h);
                    if let Ok(Some(c)) = re.captures(&h) {
                        prop_assert!(c.len() <= re.group_count() + 1);
                        let _ = c.php_matches();
                    }
                    let _ = re.replace_all(&h, "<$0>");
                }
            }

            #[test]
            fn periodic_run_skips_like_the_plain_scan(
                s in "[ab]{0,40}|[abc]{0,60}",
                lo in 1usize..4,
                span in 0usize..4,
                reps in 1usize..5,
            ) {
                let b = s.as_bytes();
                prop_assert_eq!(
                    periodic_run(b, lo, lo + span, reps, |x, y| x == y),
                    periodic_run_plain(b, lo, lo + span, reps, |x, y| x == y)
                );
            }

            #[test]
            fn repeated_word_scan_matches_the_char_array_version(
                h in "[ab\u{e9}\u{301}\u{212A}kK ,\t]{0,20}",
                ci in any::<bool>(),
                before in any::<bool>(),
                after in any::<bool>(),
                limit in 1usize..6,
            ) {
                let rw = RepeatedWord { caseless: ci, boundary_before: before, boundary_after: after, leading: true };
                prop_assert_eq!(repeated_word_starts(&h, rw, limit), super::repeated_word_starts_slow(&h, rw, limit));
            }

            /// Longer haystacks, mostly ASCII: the ASCII scan's fast paths, white space
            /// running far, and words longer than 256 characters.
            #[test]
            fn repeated_word_scan_matches_on_long_haystacks(
                parts in proptest::collection::vec(
                    prop_oneof![
                        "[aAbB]{1,3}",
                        Just(" ".to_string()),
                        Just("\t \n".to_string()),
                        Just(",".to_string()),
                        Just("\u{e9}".to_string()),
                        "[ab]{60,70}",
                        "a{250,262}",
                        " {60,70}",
                    ],
                    0..40,
                ),
                ci in any::<bool>(),
                before in any::<bool>(),
                after in any::<bool>(),
                limit in 1usize..6,
            ) {
                let h = parts.concat();
                let rw = RepeatedWord { caseless: ci, boundary_before: before, boundary_after: after, leading: true };
                prop_assert_eq!(repeated_word_starts(&h, rw, limit), super::repeated_word_starts_slow(&h, rw, limit));
            }

            /// The literal prefilter never rules out a haystack the engines would match.
            #[test]
            fn literal_prefilter_is_a_necessary_condition(
                p in literal_pattern_strategy(),
                h in "[abkKsS\u{212A}\u{17F}éÉ:) \nд]{0,14}",
                ci in any::<bool>(),
            ) {
                if let Ok(re) = Regex::new(&p, ci) {
                    let r = reference(&re);
                    prop_assert_eq!(re.is_match(&h), r.is_match(&h), "is_match {:?} {:?}", p, h);
                    prop_assert_eq!(re.count_matches(&h), r.count_matches(&h), "count {:?} {:?}", p, h);
                    prop_assert_eq!(re.replace_all(&h, "<$0>"), r.replace_all(&h, "<$0>"), "replace {:?} {:?}", p, h);
                }
            }

            #[test]
            fn preg_quote_matches_literally(s in ".{0,24}", prefix in "[a-z]{0,3}", ci in any::<bool>()) {
                let hay = format!("{prefix}{s}");
                let re = Regex::from_pcre_body(&preg_quote(&s), ci);
                prop_assert!(re.is_ok(), "{:?}", re);
                if let Ok(re) = re {
                    let caps = re.captures(&hay);
                    prop_assert!(matches!(&caps, Ok(Some(c)) if c.get(0) == Some(s.as_str()) || ci), "{:?}", caps);
                    prop_assert_eq!(re.is_match(&hay), Ok(true));
                }
                // Through AbuseFilter's munging (`rlike rescape(s)`) too.
                prop_assert_eq!(Regex::new(&preg_quote(&s), ci).and_then(|r| r.is_match(&hay)), Ok(true));
            }
        }
    }
}
