//! Timestamps and durations as MediaWiki writes them, parsed without a date crate.

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 9 {
        return None;
    }
    s.parse().ok()
}

fn unix(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > days_in_month || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Parses MediaWiki's 14-digit form (`20240131235959`, UTC) or ISO 8601
/// (`2024-01-31T23:59:59Z`, optional fraction, `Z` or `±hh:mm` offset, a space for `T`)
/// into Unix seconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()) {
        let n = |a: usize, b: usize| digits(&s[a..b]);
        return unix(n(0, 4)?, n(4, 6)?, n(6, 8)?, n(8, 10)?, n(10, 12)?, n(12, 14)?);
    }
    if !s.is_ascii() || s.len() < 10 {
        return None;
    }
    let (date, rest) = s.split_at(10);
    let b = date.as_bytes();
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (digits(&date[0..4])?, digits(&date[5..7])?, digits(&date[8..10])?);
    if rest.is_empty() {
        return unix(y, mo, d, 0, 0, 0);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    if rest.len() < 8 || rest.as_bytes()[2] != b':' || rest.as_bytes()[5] != b':' {
        return None;
    }
    let (h, mi, sec) = (digits(&rest[0..2])?, digits(&rest[3..5])?, digits(&rest[6..8])?);
    let mut tail = &rest[8..];
    if let Some(frac) = tail.strip_prefix(['.', ',']) {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        tail = &frac[n..];
    }
    let offset = match tail {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match tail.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let t = &tail[1..];
            let (oh, om) = match t.len() {
                2 => (digits(t)?, 0),
                4 => (digits(&t[0..2])?, digits(&t[2..4])?),
                5 if t.as_bytes()[2] == b':' => (digits(&t[0..2])?, digits(&t[3..5])?),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(unix(y, mo, d, h, mi, sec)? - offset)
}

/// What a block or autopromotion duration means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duration {
    /// Never expires.
    Infinite,
    /// Lasts this many seconds from now.
    Seconds(u64),
    /// Ends at this Unix time.
    Until(i64),
}

impl Duration {
    /// Seconds from `now` (`u64::MAX` for infinite), for comparing blocks.
    pub fn seconds_from(self, now: i64) -> u64 {
        match self {
            Duration::Infinite => u64::MAX,
            Duration::Seconds(s) => s,
            Duration::Until(t) => u64::try_from(t.saturating_sub(now)).unwrap_or(0),
        }
    }
}

/// Parses the durations MediaWiki's block form offers: `indefinite`/`infinite`/`infinity`/`never`,
/// relative English (`1 day`, `3 hours`, `2 weeks 1 day`, `1 month`), or an absolute timestamp
/// (14-digit or ISO 8601). A month counts 30 days and a year 365 (MediaWiki's `strtotime`
/// counts calendar months; only comparisons between blocks use these numbers here).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let t = s.trim().to_ascii_lowercase();
    if matches!(t.as_str(), "indefinite" | "infinite" | "infinity" | "never") {
        return Some(Duration::Infinite);
    }
    if let Some(ts) = parse_timestamp(&t) {
        return Some(Duration::Until(ts));
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return None;
    }
    let mut total: u64 = 0;
    for pair in words.chunks(2) {
        let n: u64 = pair[0].parse().ok()?;
        let unit = pair[1].trim_end_matches(',');
        let unit = unit.strip_suffix('s').filter(|u| !u.is_empty()).unwrap_or(unit);
        let secs: u64 = match unit {
            "sec" | "second" => 1,
            "min" | "minute" => 60,
            "hour" => 3600,
            "day" => 86_400,
            "week" => 7 * 86_400,
            "fortnight" => 14 * 86_400,
            "month" => 30 * 86_400,
            "year" => 365 * 86_400,
            _ => return None,
        };
        total = total.saturating_add(n.saturating_mul(secs));
    }
    Some(Duration::Seconds(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("19700101000000"), Some(0));
        assert_eq!(parse_timestamp("20240131235959"), Some(1_706_745_599));
        assert_eq!(parse_timestamp("2024-01-31T23:59:59Z"), Some(1_706_745_599));
        assert_eq!(parse_timestamp("2024-01-31T23:59:59.123Z"), Some(1_706_745_599));
        assert_eq!(parse_timestamp("2024-02-01T00:59:59+01:00"), Some(1_706_745_599));
        assert_eq!(parse_timestamp("2024-01-31 23:59:59"), Some(1_706_745_599));
        assert_eq!(parse_timestamp("2024-02-29"), Some(1_709_164_800));
        assert_eq!(parse_timestamp("2023-02-29"), None);
        assert_eq!(parse_timestamp("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2024-01-31T23:59"), None);
        assert_eq!(parse_timestamp("é"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("indefinite"), Some(Duration::Infinite));
        assert_eq!(parse_duration("Infinite"), Some(Duration::Infinite));
        assert_eq!(parse_duration("1 day"), Some(Duration::Seconds(86_400)));
        assert_eq!(parse_duration("3 hours"), Some(Duration::Seconds(10_800)));
        assert_eq!(parse_duration("2 weeks 1 day"), Some(Duration::Seconds(15 * 86_400)));
        assert_eq!(parse_duration("20300101000000"), Some(Duration::Until(1_893_456_000)));
        assert_eq!(parse_duration("3 parsecs"), None);
        assert_eq!(parse_duration("day"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(Duration::Until(10).seconds_from(20), 0);
    }
}
