//! The line diff behind `edit_diff`, `added_lines` and `removed_lines`, in the unified format
//! MediaWiki's `UnifiedDiffFormatter` writes (two lines of context, `@@ -x,n +y,m @@` headers).
//!
//! The alignment is MediaWiki's own algorithm (see `mwdiff`), so where several minimal
//! alignments exist the same lines are reported added and removed as in AbuseFilter;
//! `tests/mediawiki_diff.rs` checks this against output of MediaWiki's PHP classes.

/// One run of MediaWiki's diff: lines kept, removed, added, or replaced.
enum Edit<'a> {
    Copy(&'a [&'a str]),
    Delete(&'a [&'a str]),
    Add(&'a [&'a str]),
    Change(&'a [&'a str], &'a [&'a str]),
}

impl<'a> Edit<'a> {
    fn orig(&self) -> &'a [&'a str] {
        match self {
            Edit::Copy(o) | Edit::Delete(o) | Edit::Change(o, _) => o,
            Edit::Add(_) => &[],
        }
    }
    fn closing(&self) -> &'a [&'a str] {
        match self {
            Edit::Copy(c) | Edit::Add(c) | Edit::Change(_, c) => c,
            Edit::Delete(_) => &[],
        }
    }
}

/// AbuseFilter splits on "\n" and treats an empty text as no lines at all (T74329): a text
/// ending in a newline therefore has a last, empty line.
fn split_lines(text: &str) -> Vec<&str> {
    if text.is_empty() {
        Vec::new()
    } else {
        lines(text).collect()
    }
}

/// `text.split('\n')`, with the newlines found by memchr's vector search: a page's lines are
/// long enough that it beats the standard library's byte-at-a-time split.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut newlines = memchr::memchr_iter(b'\n', text.as_bytes());
    std::iter::from_fn(move || {
        let from = start;
        if from > text.len() {
            return None;
        }
        let end = newlines.next().unwrap_or(text.len());
        start = end + 1;
        // Both ends are at a newline or the text's end: character boundaries.
        Some(&text[from..end])
    })
}

/// MediaWiki's edit list: runs of equal lines alternate with changes, where every deletion
/// and addition between two equal runs forms one change (deleted lines first).
fn edits<'a>(old: &'a [&'a str], new: &'a [&'a str]) -> Vec<Edit<'a>> {
    let (removed, added) = crate::mwdiff::changed_lines(old, new);
    let (n_old, n_new) = (old.len(), new.len());
    let mut out = Vec::new();
    let (mut xi, mut yi) = (0, 0);
    while xi < n_old || yi < n_new {
        let (x0, y0) = (xi, yi);
        while xi < n_old && yi < n_new && !removed[xi] && !added[yi] {
            xi += 1;
            yi += 1;
        }
        if xi > x0 {
            out.push(Edit::Copy(&old[x0..xi]));
        }
        let x1 = xi;
        while xi < n_old && removed[xi] {
            xi += 1;
        }
        let y1 = yi;
        while yi < n_new && added[yi] {
            yi += 1;
        }
        let (del, add) = (&old[x1..xi], &new[y1..yi]);
        match (del.is_empty(), add.is_empty()) {
            (false, false) => out.push(Edit::Change(del, add)),
            (false, true) => out.push(Edit::Delete(del)),
            (true, false) => out.push(Edit::Add(add)),
            // Cannot happen for consistent flags; stop rather than loop forever.
            (true, true) if xi == x0 && yi == y0 => break,
            (true, true) => {}
        }
    }
    out
}

fn write_block(out: &mut String, xbeg: usize, xlen: usize, ybeg: usize, ylen: usize, block: &[Edit<'_>]) {
    out.push_str(&format!("@@ -{xbeg},{xlen} +{ybeg},{ylen} @@\n"));
    let mut lines = |lines: &[&str], prefix: char| {
        for l in lines {
            out.push(prefix);
            out.push_str(l);
            out.push('\n');
        }
    };
    for e in block {
        match e {
            Edit::Copy(o) => lines(o, ' '),
            Edit::Add(n) => lines(n, '+'),
            Edit::Delete(o) => lines(o, '-'),
            Edit::Change(o, n) => {
                lines(o, '-');
                lines(n, '+');
            }
        }
    }
}

/// `edit_diff`: the unified diff of `old` to `new`, as AbuseFilter computes it.
pub fn unified_diff(old: &str, new: &str) -> String {
    const LEAD: usize = 2;
    const TRAIL: usize = 2;
    let (old_lines, new_lines) = (split_lines(old), split_lines(new));
    let edits = edits(&old_lines, &new_lines);
    let mut out = String::new();
    let (mut xi, mut yi) = (1usize, 1usize);
    let (mut x0, mut y0) = (0usize, 0usize);
    let mut block: Option<Vec<Edit<'_>>> = None;
    let mut context: &[&str] = &[];
    for edit in edits {
        let (olen, clen) = (edit.orig().len(), edit.closing().len());
        if let Edit::Copy(orig) = edit {
            if let Some(mut b) = block.take() {
                if orig.len() <= LEAD + TRAIL {
                    // A short equal run stays inside the block (at the very end of the diff
                    // all of it is shown, up to four lines, as MediaWiki does).
                    b.push(Edit::Copy(orig));
                    block = Some(b);
                } else {
                    b.push(Edit::Copy(&orig[..TRAIL]));
                    write_block(&mut out, x0, TRAIL + xi - x0, y0, TRAIL + yi - y0, &b);
                }
            }
            context = orig;
        } else {
            let b = block.get_or_insert_with(|| {
                let ctx = &context[context.len().saturating_sub(LEAD)..];
                x0 = xi - ctx.len();
                y0 = yi - ctx.len();
                let mut b = Vec::new();
                if !ctx.is_empty() {
                    b.push(Edit::Copy(ctx));
                }
                b
            });
            b.push(edit);
        }
        xi += olen;
        yi += clen;
    }
    if let Some(b) = block {
        write_block(&mut out, x0, xi - x0, y0, yi - y0, &b);
    }
    out
}

/// AbuseFilter's `diff-split`: the lines of `diff` that start with `prefix`, without it.
pub fn split_diff(diff: &str, prefix: char) -> Vec<String> {
    lines(diff)
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_page() {
        let d = unified_diff("", "a\nb");
        assert_eq!(d, "@@ -1,0 +1,2 @@\n+a\n+b\n");
        assert_eq!(split_diff(&d, '+'), ["a", "b"]);
        assert!(split_diff(&d, '-').is_empty());
    }

    #[test]
    fn blanking() {
        let d = unified_diff("a\nb", "");
        assert_eq!(d, "@@ -1,2 +1,0 @@\n-a\n-b\n");
        assert_eq!(split_diff(&d, '-'), ["a", "b"]);
    }

    #[test]
    fn identical_texts_have_no_diff() {
        assert_eq!(unified_diff("a\nb\n", "a\nb\n"), "");
        assert_eq!(unified_diff("", ""), "");
    }

    #[test]
    fn trailing_newline_is_an_empty_line() {
        // "a" → "a\n" adds one empty line.
        let d = unified_diff("a", "a\n");
        assert_eq!(d, "@@ -1,1 +1,2 @@\n a\n+\n");
        assert_eq!(split_diff(&d, '+'), [""]);
        let d = unified_diff("", "x\n");
        assert_eq!(d, "@@ -1,0 +1,2 @@\n+x\n+\n");
    }

    #[test]
    fn change_with_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10";
        assert_eq!(unified_diff(old, new), "@@ -3,5 +3,5 @@\n 3\n 4\n-5\n+five\n 6\n 7\n");
    }

    #[test]
    fn short_trailing_run_is_shown_whole() {
        // Four equal lines at the end stay in the block (MediaWiki's formatter does this).
        let d = unified_diff("a\n1\n2\n3\n4", "b\n1\n2\n3\n4");
        assert_eq!(d, "@@ -1,5 +1,5 @@\n-a\n+b\n 1\n 2\n 3\n 4\n");
    }

    #[test]
    fn two_blocks_and_merged_blocks() {
        let old = "a\n1\n2\n3\n4\n5\nb";
        let new = "A\n1\n2\n3\n4\n5\nB";
        assert_eq!(
            unified_diff(old, new),
            "@@ -1,3 +1,3 @@\n-a\n+A\n 1\n 2\n@@ -5,3 +5,3 @@\n 4\n 5\n-b\n+B\n"
        );
        // With only four lines between, the two changes share a block.
        let old = "a\n1\n2\n3\n4\nb";
        let new = "A\n1\n2\n3\n4\nB";
        assert_eq!(
            unified_diff(old, new),
            "@@ -1,6 +1,6 @@\n-a\n+A\n 1\n 2\n 3\n 4\n-b\n+B\n"
        );
    }

    #[test]
    fn insertion_in_the_middle() {
        let d = unified_diff("a\nb\nc\nd\ne\nf", "a\nb\nc\nX\nd\ne\nf");
        assert_eq!(d, "@@ -2,5 +2,6 @@\n b\n c\n+X\n d\n e\n f\n");
    }

    #[test]
    fn large_inputs_use_the_bounded_search() {
        // Beyond 2,000,000 line pairs MediaWiki bounds the number of differences; the result
        // is still a valid diff of the two texts.
        let mut seed = 1u64;
        let mut line = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            format!("l{}", (seed >> 33) % 40)
        };
        let old: Vec<String> = (0..3000).map(|_| line()).collect();
        let new: Vec<String> = (0..3000).map(|_| line()).collect();
        let d = unified_diff(&old.join("\n"), &new.join("\n"));
        let added = split_diff(&d, '+');
        let removed = split_diff(&d, '-');
        assert!(added.len() <= 3000 && removed.len() <= 3000);
        assert_eq!(
            3000 - removed.len(),
            3000 - added.len(),
            "kept lines are kept on both sides"
        );
    }

    #[test]
    fn lines_that_look_like_diff_syntax() {
        let d = unified_diff("", "+x\n-y\n@@");
        assert_eq!(split_diff(&d, '+'), ["+x", "-y", "@@"]);
        assert!(split_diff(&d, '-').is_empty());
    }

    proptest::proptest! {
        /// The vector line split gives exactly what `split('\n')` gives, on any text
        /// (newlines at either end, runs of them, multi-byte characters next to them).
        #[test]
        fn lines_match_the_standard_split(text in "[a\n\u{e9}\u{1F600} ]{0,40}") {
            let ours: Vec<&str> = lines(&text).collect();
            let std: Vec<&str> = text.split('\n').collect();
            proptest::prop_assert_eq!(ours, std);
        }
    }
}
