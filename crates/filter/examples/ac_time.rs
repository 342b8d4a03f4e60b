//! Times aho-corasick and memmem over a variable's lowercased text: `ac_time VARS.json VAR LIT...`.
use std::time::Instant;
use wikiguard_filter::Value;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a[1]).unwrap_or_default()).unwrap_or_default();
    let hay = Value::from_json(&json[&a[2]]).to_php_string().to_ascii_lowercase();
    let lits: Vec<&str> = a[3..].iter().map(String::as_str).collect();
    let n = 5000;
    for kind in [
        aho_corasick::MatchKind::LeftmostFirst,
        aho_corasick::MatchKind::Standard,
    ] {
        let Ok(ac) = aho_corasick::AhoCorasick::builder().match_kind(kind).build(&lits) else {
            return;
        };
        let t = Instant::now();
        let mut r = false;
        for _ in 0..n {
            r = ac.is_match(hay.as_bytes());
        }
        println!(
            "{kind:?} {:?} {} us {r}",
            ac.kind(),
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
    if let Some(ps) = aho_corasick::packed::Config::new()
        .builder()
        .extend(lits.iter())
        .build()
    {
        let t = Instant::now();
        let mut r = false;
        for _ in 0..n {
            r = ps.find(hay.as_bytes()).is_some();
        }
        println!(
            "packed {} us {r} minlen {}",
            t.elapsed().as_secs_f64() * 1e6 / n as f64,
            ps.minimum_len()
        );
    }
    let fs: Vec<_> = lits.iter().map(|l| memchr::memmem::Finder::new(l.as_bytes())).collect();
    let t = Instant::now();
    let mut r = false;
    for _ in 0..n {
        r = fs.iter().any(|f| f.find(hay.as_bytes()).is_some());
    }
    println!("memmem {} us {r}", t.elapsed().as_secs_f64() * 1e6 / n as f64);
}
