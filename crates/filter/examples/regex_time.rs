//! Times one AbuseFilter regex on a variable of an action: `regex_time VARS.json VAR PATTERN [i]`.
use std::time::Instant;
use wikiguard_filter::{pcre, Value};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a[1]).unwrap_or_default()).unwrap_or_default();
    let hay = Value::from_json(&json[&a[2]]).to_php_string();
    let caseless = a.get(4).is_some_and(|s| s == "i");
    let re = match pcre::Regex::new(&a[3], caseless) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    println!("prefilter {:?}", re.prefilter_literals());
    let n = 2000;
    let mut r = false;
    let t = Instant::now();
    for _ in 0..n {
        r = re.is_match(&hay).unwrap_or(false);
    }
    println!(
        "pcre {} us  match={r}  len={}",
        t.elapsed().as_secs_f64() * 1e6 / n as f64,
        hay.len()
    );
    let p = if caseless {
        format!("(?i){}", a[3])
    } else {
        a[3].clone()
    };
    if let Ok(rr) = regex::Regex::new(&p) {
        let t = Instant::now();
        for _ in 0..n {
            r = rr.is_match(&hay);
        }
        println!("regex {} us  match={r}", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
}
