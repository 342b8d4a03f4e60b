//! Where the time of a folder of filters goes on one action, filter by filter, *within* one
//! action (so per-action caches are shared as in production), summed over iterations.
//!
//! `cargo run --release -p wikiguard-filter --example filter_profile -- FILTERS_DIR VARS.json [ITERATIONS] [TOP]`

use std::collections::HashMap;
use std::time::Instant;

use wikiguard_filter::{Engine, Evaluator, Program, Value};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: filter_profile FILTERS_DIR VARS.json [ITERATIONS] [TOP]");
        std::process::exit(2);
    }
    let iterations: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(200);
    let top: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(40);
    let mut files: Vec<_> = std::fs::read_dir(&args[1])
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|x| x == "af"));
    files.sort();
    let programs: Vec<(String, Program)> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            let p = Program::parse(text.trim()).ok()?;
            Some((f.file_stem()?.to_string_lossy().into_owned(), p))
        })
        .collect();
    let json: serde_json::Value = std::fs::read_to_string(&args[2])
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut vars: HashMap<String, Value> = HashMap::new();
    if let serde_json::Value::Object(o) = &json {
        for (k, v) in o {
            vars.insert(k.clone(), Value::from_json(v));
        }
    }
    let engine = Engine::new();
    let mut times = vec![0f64; programs.len()];
    let mut total = 0f64;
    for it in 0..=iterations {
        let start = Instant::now();
        let mut ev = Evaluator::new(&engine, &mut vars);
        for (i, (_, p)) in programs.iter().enumerate() {
            let t = Instant::now();
            let _ = ev.eval(p);
            if it > 0 {
                times[i] += t.elapsed().as_secs_f64();
            }
        }
        if it > 0 {
            total += start.elapsed().as_secs_f64();
        }
    }
    let n = iterations as f64;
    println!("total {:.4} ms per action", total * 1000.0 / n);
    let mut order: Vec<usize> = (0..programs.len()).collect();
    order.sort_by(|&a, &b| times[b].total_cmp(&times[a]));
    for &i in order.iter().take(top) {
        println!("{:9.4} ms  {}", times[i] * 1000.0 / n, programs[i].0);
    }
}
