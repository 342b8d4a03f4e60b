//! Times a bytes regex (literal prefilter candidates) on a variable: `lit_time VARS.json VAR PATTERN [lower]`.
use std::time::Instant;
use wikiguard_filter::Value;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a[1]).unwrap_or_default()).unwrap_or_default();
    let mut hay = Value::from_json(&json[&a[2]]).to_php_string();
    if a.get(4).is_some_and(|s| s == "lower") {
        hay.make_ascii_lowercase();
    }
    let Ok(re) = regex::bytes::Regex::new(&a[3]) else {
        return;
    };
    let n = 5000;
    let mut r = false;
    let t = Instant::now();
    for _ in 0..n {
        r = re.is_match(hay.as_bytes());
    }
    println!(
        "{} us  match={r}  len={}",
        t.elapsed().as_secs_f64() * 1e6 / n as f64,
        hay.len()
    );
    let t = Instant::now();
    let mut h2 = String::new();
    for _ in 0..n {
        h2 = hay.to_ascii_lowercase();
    }
    println!(
        "lowercase {} us {}",
        t.elapsed().as_secs_f64() * 1e6 / n as f64,
        h2.len()
    );
}
