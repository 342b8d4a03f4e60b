//! The line alignment of MediaWiki's `DiffEngine`, reimplemented so that `edit_diff`,
//! `added_lines` and `removed_lines` pick the same lines as AbuseFilter where several minimal
//! alignments exist.
//!
//! The steps are MediaWiki's: equal leading and trailing lines are set aside; lines that occur
//! only on one side are changed by definition and left out of the search; the rest goes to a
//! divide-and-conquer Myers search for a middle snake (Myers 1986, "An O(ND) difference
//! algorithm"), which gives up at a bound on the number of differences for large inputs and
//! then splits at the furthest-reaching diagonal; finally GNU diff's boundary shifting slides
//! each changed run so that runs merge and end where a run of equal lines starts.

use std::cmp::Ordering;
use std::collections::HashMap;

use wikiguard_filter::smart_str_compare;

/// Inputs with more line pairs than this get a bound on the number of differences.
const TOO_LONG: i64 = 2_000_000;
/// The bound: (lines / 2) to this power minus one.
const POW_LIMIT: f64 = 1.45;

/// Which lines of `from` are removed and which of `to` are added.
pub(crate) fn changed_lines(from: &[&str], to: &[&str]) -> (Vec<bool>, Vec<bool>) {
    let (m, n) = (from.len(), to.len());
    let mut removed = vec![true; m];
    let mut added = vec![true; n];
    let mut i = 0;
    while i < m && i < n && from[i] == to[i] {
        removed[i] = false;
        added[i] = false;
        i += 1;
    }
    let mut j = 1;
    while i + j <= m && i + j <= n && from[m - j] == to[n - j] {
        removed[m - j] = false;
        added[n - j] = false;
        j += 1;
    }
    let (from_mid, to_mid) = (i..m + 1 - j, i..n + 1 - j);
    // Each middle line is hashed once: distinct lines get numbers, and what each side holds
    // is a flag per number. The lines are the editor's, so the hash is randomly seeded, and
    // afresh for each table (foldhash's per-map seed): colliding lines would have to be found
    // without ever seeing a hash, which foldhash makes hard though not impossible (it claims
    // only minimal flooding resistance), and it runs at several times SipHash's speed.
    let mut number: HashMap<&str, usize, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(from_mid.len(), foldhash::fast::RandomState::default());
    let from_numbers: Vec<usize> = from[from_mid.clone()]
        .iter()
        .map(|&line| {
            let next = number.len();
            *number.entry(line).or_insert(next)
        })
        .collect();
    let mut in_to = vec![false; number.len()];
    let (mut xs, mut x_index, mut ys, mut y_index) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for k in to_mid {
        if let Some(&id) = number.get(to[k]) {
            ys.push(to[k]);
            y_index.push(k);
            in_to[id] = true;
        }
    }
    for (k, id) in from_mid.zip(from_numbers) {
        if in_to[id] {
            xs.push(from[k]);
            x_index.push(k);
        }
    }
    let mut search = Search::new(&xs, &ys);
    search.run();
    for (k, r) in search.removed.iter().enumerate() {
        if !r {
            removed[x_index[k]] = false;
        }
    }
    for (k, a) in search.added.iter().enumerate() {
        if !a {
            added[y_index[k]] = false;
        }
    }
    shift_boundaries(from, &mut removed, &added);
    shift_boundaries(to, &mut added, &removed);
    (removed, added)
}

/// The state of the middle-snake search. Indices are `i64` because the algorithm moves
/// through negative diagonals; the `V` vectors are shared by all recursive calls, as in
/// MediaWiki (their stale entries can steer later calls).
struct Search<'a> {
    from: &'a [&'a str],
    to: &'a [&'a str],
    removed: Vec<bool>,
    added: Vec<bool>,
    max_differences: i64,
    v: [Vec<i64>; 2],
    snake: [i64; 3],
}

fn at(v: &[i64], i: i64) -> i64 {
    usize::try_from(i).ok().and_then(|i| v.get(i).copied()).unwrap_or(0)
}

fn put(v: &mut Vec<i64>, i: i64, x: i64) {
    if let Ok(i) = usize::try_from(i) {
        if i >= v.len() {
            v.resize(i + 1, 0);
        }
        v[i] = x;
    }
}

impl<'a> Search<'a> {
    fn new(from: &'a [&'a str], to: &'a [&'a str]) -> Self {
        let (m, n) = (from.len(), to.len());
        Search {
            from,
            to,
            removed: vec![true; m],
            added: vec![true; n],
            max_differences: 0,
            v: [vec![0; m + n + 1], vec![0; m + n + 1]],
            snake: [0; 3],
        }
    }

    fn eq(&self, x: i64, y: i64) -> bool {
        match (usize::try_from(x), usize::try_from(y)) {
            (Ok(x), Ok(y)) => matches!((self.from.get(x), self.to.get(y)), (Some(a), Some(b)) if a == b),
            _ => false,
        }
    }

    fn unmark(&mut self, x: i64, y: i64) {
        if let Some(r) = usize::try_from(x).ok().and_then(|x| self.removed.get_mut(x)) {
            *r = false;
        }
        if let Some(a) = usize::try_from(y).ok().and_then(|y| self.added.get_mut(y)) {
            *a = false;
        }
    }

    fn run(&mut self) {
        let (m, n) = (self.from.len() as i64, self.to.len() as i64);
        if m == 0 || n == 0 {
            return;
        }
        self.max_differences = (m + n + 1) / 2;
        if m.saturating_mul(n) > TOO_LONG {
            self.max_differences = (self.max_differences as f64).powf(POW_LIMIT - 1.0).floor() as i64;
        }
        let max = m.min(n);
        let mut forward = 0;
        while forward < max && self.eq(forward, forward) {
            self.unmark(forward, forward);
            forward += 1;
        }
        let (mut back1, mut back2) = (m - 1, n - 1);
        while back1 >= forward && back2 >= forward && self.eq(back1, back2) {
            self.unmark(back1, back2);
            back1 -= 1;
            back2 -= 1;
        }
        self.lcs(forward, back1, forward, back2);
    }

    fn lcs(&mut self, bottom1: i64, top1: i64, bottom2: i64, top2: i64) -> i64 {
        if bottom1 > top1 || bottom2 > top2 {
            return 0;
        }
        let d = self.middle_snake(bottom1, top1, bottom2, top2);
        let [sx, sy, len] = self.snake;
        for i in 0..len {
            self.unmark(sx + i, sy + i);
        }
        if d > 1 {
            len + self.lcs(bottom1, sx - 1, bottom2, sy - 1) + self.lcs(sx + len, top1, sy + len, top2)
        } else if d == 1 {
            // One difference: the lines before the snake on the longer side's diagonal match.
            let max = (sx - bottom1).min(sy - bottom2);
            for i in 0..max {
                self.unmark(bottom1 + i, bottom2 + i);
            }
            max + len
        } else {
            len
        }
    }

    /// Finds the middle snake of the box and leaves it in `self.snake` (start x, start y,
    /// length); returns the number of differences (5 when the bound stopped the search).
    fn middle_snake(&mut self, bottom1: i64, top1: i64, bottom2: i64, top2: i64) -> i64 {
        let big_n = top1 - bottom1 + 1;
        let big_m = top2 - bottom2 + 1;
        let delta = big_n - big_m;
        let max_abs_x = big_n + bottom1;
        let max_abs_y = big_m + bottom2;
        let limit = self.max_differences.min((big_n + big_m + 1) / 2);
        let mut add_forward = big_m & 1;
        let mut add_backward = big_n & 1;
        let (mut start_forward, mut end_forward) = (-big_m, big_n);
        let (mut start_backward, mut end_backward) = (-big_n, big_m);
        let (lm1, lp1) = (limit - 1, limit + 1);
        put(&mut self.v[0], lp1, 0);
        put(&mut self.v[1], lm1, big_n);
        let odd = delta & 1 == 1;
        for d in 0..=limit {
            // Forward paths.
            let start_diag = (add_forward + start_forward).max(-d);
            let end_diag = end_forward.min(d);
            add_forward = 1 - add_forward;
            let mut k = start_diag;
            while k <= end_diag {
                let mut x = if k == -d || (k < d && at(&self.v[0], lm1 + k) < at(&self.v[0], lp1 + k)) {
                    at(&self.v[0], lp1 + k)
                } else {
                    at(&self.v[0], lm1 + k) + 1
                };
                let (mut abs_x, mut abs_y) = (x + bottom1, x - k + bottom2);
                self.snake[0] = abs_x;
                self.snake[1] = abs_y;
                while abs_x < max_abs_x && abs_y < max_abs_y && self.eq(abs_x, abs_y) {
                    abs_x += 1;
                    abs_y += 1;
                }
                x = abs_x - bottom1;
                self.snake[2] = abs_x - self.snake[0];
                put(&mut self.v[0], limit + k, x);
                if odd && k > delta - d && k < delta + d && x >= at(&self.v[1], limit + k - delta) {
                    return 2 * d - 1;
                }
                if x >= big_n && end_forward > k - 1 {
                    end_forward = k - 1;
                } else if abs_y - bottom2 >= big_m {
                    start_forward = k + 1;
                    add_forward = 0;
                }
                k += 2;
            }
            // Backward paths.
            let start_diag = (add_backward + start_backward).max(-d);
            let end_diag = end_backward.min(d);
            add_backward = 1 - add_backward;
            let mut k = start_diag;
            while k <= end_diag {
                let mut x = if k == d || (k != -d && at(&self.v[1], lm1 + k) < at(&self.v[1], lp1 + k)) {
                    at(&self.v[1], lm1 + k)
                } else {
                    at(&self.v[1], lp1 + k) - 1
                };
                let mut y = x - k - delta;
                self.snake[2] = 0;
                while x > 0 && y > 0 && self.eq(x + bottom1 - 1, y + bottom2 - 1) {
                    x -= 1;
                    y -= 1;
                    self.snake[2] += 1;
                }
                put(&mut self.v[1], limit + k, x);
                if !odd && k >= -delta - d && k <= d - delta && x <= at(&self.v[0], limit + k + delta) {
                    self.snake[0] = bottom1 + x;
                    self.snake[1] = bottom2 + y;
                    return 2 * d;
                }
                if x <= 0 {
                    start_backward = k + 1;
                    add_backward = 0;
                } else if y <= 0 && end_backward > k - 1 {
                    end_backward = k - 1;
                }
                k += 2;
            }
        }
        // Too many differences: split at the diagonal that got furthest.
        let (x, y) = self.most_progress(big_m, big_n, limit);
        self.snake = [bottom1 + x, bottom2 + y, 0];
        5
    }

    fn most_progress(&self, big_m: i64, big_n: i64, limit: i64) -> (i64, i64) {
        let delta = big_n - big_m;
        let forward_start = if (big_m & 1) == (limit & 1) {
            (-big_m).max(-limit)
        } else {
            (1 - big_m).max(-limit)
        };
        let forward_end = big_n.min(limit);
        let backward_start = if (big_n & 1) == (limit & 1) {
            (-big_n).max(-limit)
        } else {
            (1 - big_n).max(-limit)
        };
        let backward_end = -big_m.min(limit);
        // Candidates of equal progress; the middle one wins.
        let mut best: Vec<(i64, i64)> = vec![(0, 0)];
        let mut best_progress = 0;
        let mut k = forward_start;
        while k <= forward_end {
            let x = at(&self.v[0], limit + k);
            let y = x - k;
            if x <= big_n && y <= big_m {
                let progress = x + y;
                if progress > best_progress {
                    best = vec![(x, y)];
                    best_progress = progress;
                } else if progress == best_progress {
                    best.push((x, y));
                }
            }
            k += 2;
        }
        let mut forward_best = true;
        let mut k = backward_start;
        while k <= backward_end {
            let x = at(&self.v[1], limit + k);
            let y = x - k - delta;
            if x >= 0 && y >= 0 {
                let progress = big_n - x + big_m - y;
                if progress > best_progress {
                    best = vec![(x, y)];
                    best_progress = progress;
                    forward_best = false;
                } else if progress == best_progress && !forward_best {
                    best.push((x, y));
                }
            }
            k += 2;
        }
        best[(best.len() - 1) / 2]
    }
}

/// PHP's `==` between two strings: numeric strings compare as numbers ("1" == "01").
fn php_loose_eq(a: &str, b: &str) -> bool {
    a == b || smart_str_compare(a, b) == Ordering::Equal
}

/// GNU diff's boundary shifting, as MediaWiki applies it: each run of changed lines in
/// `changed` slides up while the line before it equals its last line, then down while its
/// first line equals the line after it, merging with neighbouring runs; it ends up as low as
/// possible, or aligned with a run of changes on the other side (`other`).
fn shift_boundaries(lines: &[&str], changed: &mut [bool], other: &[bool]) {
    let len = lines.len() as i64;
    let other_len = other.len() as i64;
    let ch = |c: &[bool], i: i64| usize::try_from(i).ok().and_then(|i| c.get(i).copied()).unwrap_or(false);
    let line = |i: i64| {
        usize::try_from(i)
            .ok()
            .and_then(|i| lines.get(i).copied())
            .unwrap_or("")
    };
    let set = |c: &mut [bool], i: i64, v: bool| {
        if let Some(x) = usize::try_from(i).ok().and_then(|i| c.get_mut(i)) {
            *x = v;
        }
    };
    let (mut i, mut j): (i64, i64) = (0, 0);
    loop {
        // Scan forward to the next changed run, keeping j in step on the other side.
        while j < other_len && ch(other, j) {
            j += 1;
        }
        while i < len && !ch(changed, i) {
            i += 1;
            j += 1;
            while j < other_len && ch(other, j) {
                j += 1;
            }
        }
        if i == len {
            break;
        }
        let mut start = i;
        i += 1;
        while i < len && ch(changed, i) {
            i += 1;
        }
        let mut corresponding;
        loop {
            let run_length = i - start;
            // Slide up while the line before the run equals its last line.
            while start > 0 && php_loose_eq(line(start - 1), line(i - 1)) {
                start -= 1;
                set(changed, start, true);
                i -= 1;
                set(changed, i, false);
                while start > 0 && ch(changed, start - 1) {
                    start -= 1;
                }
                loop {
                    j -= 1;
                    if !ch(other, j) {
                        break;
                    }
                }
            }
            corresponding = if j < other_len { i } else { len };
            // Slide down while the run's first line equals the line after it.
            while i < len && php_loose_eq(line(start), line(i)) {
                set(changed, start, false);
                start += 1;
                set(changed, i, true);
                i += 1;
                while i < len && ch(changed, i) {
                    i += 1;
                }
                j += 1;
                if j < other_len && ch(other, j) {
                    corresponding = i;
                    while j < other_len && ch(other, j) {
                        j += 1;
                    }
                }
            }
            if run_length == i - start {
                break;
            }
        }
        // Move back to the last point where the run lined up with changes on the other side.
        while corresponding < i {
            start -= 1;
            set(changed, start, true);
            i -= 1;
            set(changed, i, false);
            loop {
                j -= 1;
                if !ch(other, j) {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_equality_of_lines_as_php() {
        assert!(php_loose_eq("== History ==", "== History =="));
        assert!(php_loose_eq("10", "1e1"));
        assert!(php_loose_eq(" 1", "1.0"));
        assert!(!php_loose_eq("abc", "ABC"));
        assert!(!php_loose_eq("", "0"));
        assert!(!php_loose_eq("1 apple", "1"));
    }

    /// PHP's `==` between two strings as the filter language's values compare them.
    fn php_loose_eq_in_full(a: &str, b: &str) -> bool {
        a == b || wikiguard_filter::Value::from(a).php_compare(&wikiguard_filter::Value::from(b)) == Ordering::Equal
    }

    proptest::proptest! {
        /// The comparison of lines agrees with PHP's comparison of the values.
        #[test]
        fn the_numeric_shortcut_agrees(
            a in "[ \t]{0,2}[-+.]?[0-9a-e.]{0,4}[ \t]{0,2}",
            b in "[ \t]{0,2}[-+.]?[0-9a-e.]{0,4}[ \t]{0,2}",
        ) {
            proptest::prop_assert_eq!(php_loose_eq(&a, &b), php_loose_eq_in_full(&a, &b));
        }
    }
}
