//! `wikiguard filter …`: evaluate, check, run the conformance corpus, benchmark.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use wikiguard_filter::{Engine, Equivset, Error, Evaluator, Program, Value, Variables};

/// Exit code for a rule AbuseFilter would refuse (and for usage errors, as clap does).
pub const EXIT_SYNTAX: u8 = 2;
/// Exit code for a rule that failed while it ran.
pub const EXIT_EVAL: u8 = 1;

/// Builds the engine, with the operator's Equivset file if given.
pub fn engine(equivset: Option<&Path>) -> Result<Engine> {
    let engine = Engine::new();
    Ok(match equivset {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the Equivset file {}", path.display()))?;
            let table = Equivset::from_json(&text)
                .with_context(|| format!("{} is not an Equivset JSON file", path.display()))?;
            engine.with_equivset(table)
        }
        None => engine,
    })
}

/// Reads `--vars`: a JSON object of variable values.
pub fn read_vars(path: Option<&Path>) -> Result<HashMap<String, Value>> {
    let Some(path) = path else { return Ok(HashMap::new()) };
    let serde_json::Value::Object(map) = read_json(path)? else {
        bail!(
            "{} must hold a JSON object of variable values, e.g. {{\"user_editcount\": 5}}",
            path.display()
        );
    };
    Ok(map
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), Value::from_json(&v)))
        .collect())
}

fn read_rule(expr: &str) -> Result<String> {
    if expr == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading the rule from stdin")?;
        Ok(s)
    } else {
        Ok(expr.to_string())
    }
}

/// `wikiguard filter eval`.
pub fn eval(expr: &str, vars: Option<&Path>, equivset: Option<&Path>) -> Result<ExitCode> {
    let engine = engine(equivset)?;
    let vars = read_vars(vars)?;
    let rule = read_rule(expr)?;
    match wikiguard_filter::evaluate(&engine, &rule, vars) {
        Ok(outcome) => {
            println!("{}", outcome.value.to_json_text());
            Ok(ExitCode::SUCCESS)
        }
        Err(Error::Syntax(e)) => {
            eprintln!("{e} [{}]", e.code);
            Ok(ExitCode::from(EXIT_SYNTAX))
        }
        Err(Error::Eval(e)) => {
            eprintln!("{e} [{}]", e.code);
            Ok(ExitCode::from(EXIT_EVAL))
        }
    }
}

/// `wikiguard filter check FILE`: AbuseFilter's refusals, then our warnings, one a line.
pub fn check(file: &Path) -> Result<ExitCode> {
    let rule = if file == Path::new("-") {
        read_rule("-")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let name = file.display();
    match Program::parse(&rule) {
        Err(e) => {
            println!(
                "{name}:{}:{}: error[{}]: {}",
                e.position.line, e.position.column, e.code, e.message
            );
            Ok(ExitCode::from(EXIT_SYNTAX))
        }
        Ok(p) => {
            let a = p.analysis();
            for w in &a.warnings {
                println!(
                    "{name}:{}:{}: warning[{}]: {}",
                    w.position.line, w.position.column, w.code, w.message
                );
            }
            let vars: Vec<&str> = a.variables.iter().map(String::as_str).collect();
            println!("{name}: reads [{}]; cost {}", vars.join(", "), a.cost);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `wikiguard filter conformance DIR`: every `NAME.t` must evaluate to true, or to what `NAME.r` says.
pub fn conformance(dir: &Path, equivset: Option<&Path>) -> Result<ExitCode> {
    let engine = engine(equivset)?;
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the conformance folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "t"))
        .collect();
    cases.sort();
    if cases.is_empty() {
        bail!("{} holds no *.t cases", dir.display());
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for case in &cases {
        let name = case
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rule = std::fs::read_to_string(case).with_context(|| format!("reading {}", case.display()))?;
        let rule = rule.trim_matches(|c: char| " \t\n\r\0\x0B".contains(c));
        let expected = match std::fs::read_to_string(case.with_extension("r")) {
            Ok(r) => r.trim() == "MATCH",
            Err(_) => true,
        };
        let got = wikiguard_filter::evaluate(&engine, rule, HashMap::<String, Value>::new());
        match got {
            Ok(o) if o.matched == expected => passed += 1,
            Ok(o) => {
                failed += 1;
                println!(
                    "FAIL {name}: evaluated to {} ({}), expected {expected}",
                    o.value.to_json_text(),
                    o.matched
                );
            }
            Err(e) => {
                failed += 1;
                let e = match e {
                    Error::Syntax(e) => format!("syntax error [{}] {e}", e.code),
                    Error::Eval(e) => format!("evaluation error [{}] {e}", e.code),
                };
                println!("FAIL {name}: {e}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What `wikiguard filter bench` evaluates the filters on.
pub enum BenchInput {
    /// A JSON object of variable values, given as they are.
    Vars(PathBuf),
    /// An action as `POST /v1/check` takes it; its variables are computed on every
    /// iteration, lazily, as the service computes them.
    Action(PathBuf),
}

/// Where a bench iteration's variables come from.
enum Source {
    Vars(HashMap<String, Value>),
    Action(Box<wikiguard_check::Action>),
}

impl Source {
    /// The variables of a new action: the given ones, or the action's, computed afresh.
    fn fresh(&mut self, now: i64) -> Fresh<'_> {
        match self {
            Source::Vars(vars) => Fresh::Vars(vars),
            Source::Action(action) => Fresh::Action(wikiguard_check::ActionVars::new(action, now)),
        }
    }
}

/// One iteration's variables (an enum, so the timed loop makes no allocation for them and
/// reads them without a virtual call).
enum Fresh<'a> {
    Vars(&'a mut HashMap<String, Value>),
    Action(wikiguard_check::ActionVars<'a>),
}

impl Variables for Fresh<'_> {
    fn get(&mut self, name: &str) -> Option<Value> {
        match self {
            Fresh::Vars(v) => v.get(name),
            Fresh::Action(a) => a.get(name),
        }
    }
}

/// Reads a JSON file, naming it in the errors.
fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// One bench filter on `ev`, its errors named by the filter's file.
fn eval_filter<V: Variables>(ev: &mut Evaluator<'_, V>, stem: &str, p: &Program) -> Result<wikiguard_filter::Outcome> {
    ev.eval(p).map_err(|e| anyhow::anyhow!("{stem}: {e} [{}]", e.code))
}

/// Memory written between two timed evaluations, so that they start with the CPU caches as a
/// check in the service finds them: the HTTP request, the store's writes and the other
/// checks since have pushed the rules, automata and tables out.
struct Evictor {
    junk: Vec<u8>,
    round: u8,
}

impl Evictor {
    fn new(mib: usize) -> Evictor {
        Evictor {
            junk: vec![0; mib << 20],
            round: 0,
        }
    }

    /// Writes a byte of every cache line of the buffer (nothing when it is empty).
    fn evict(&mut self) {
        self.round = self.round.wrapping_add(1);
        for b in self.junk.iter_mut().step_by(64) {
            *b = self.round;
        }
        std::hint::black_box(&self.junk);
    }
}

/// The median of `times` in milliseconds (the mean of the middle two for an even count); 0
/// for none. A burst of the host's noise moves the mean of a run but hardly its median.
fn median_ms(times: &mut [Duration]) -> f64 {
    times.sort_unstable();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    match times.len() {
        0 => 0.0,
        n if n % 2 == 1 => ms(&times[n / 2]),
        n => (ms(&times[n / 2 - 1]) + ms(&times[n / 2])) / 2.0,
    }
}

/// `wikiguard filter bench`: evaluates every `*.af` filter of a folder on one action's
/// variables, `iterations` times, each time as a new action (fresh caches), and prints one
/// JSON line with the mean time for all filters. With `evict_mib`, that much memory is
/// written before each evaluation (untimed), so the caches are as cold as in the service.
pub fn bench(
    filters: &Path,
    input: &BenchInput,
    iterations: usize,
    profile: usize,
    evict_mib: usize,
    equivset: Option<&Path>,
) -> Result<ExitCode> {
    let engine = engine(equivset)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(filters)
        .with_context(|| format!("reading {}", filters.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "af"))
        .collect();
    files.sort();
    let mut programs = Vec::with_capacity(files.len());
    for f in &files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let p = Program::parse(text.trim()).map_err(|e| anyhow::anyhow!("{}: {e} [{}]", f.display(), e.code))?;
        let stem = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        programs.push((stem, p));
    }
    let mut source = match input {
        BenchInput::Vars(path) => Source::Vars(read_vars(Some(path))?),
        BenchInput::Action(path) => {
            let action = wikiguard_check::Action::from_json_value(read_json(path)?)
                .map_err(|e| anyhow::anyhow!("{}: not an action as /v1/check takes it: {e}", path.display()))?;
            Source::Action(Box::new(action))
        }
    };
    // One fixed "now", so user_age and the like do not change between iterations.
    let now = crate::server::unix_now();
    let iterations = iterations.max(1);
    let mut matched = Vec::new();
    // One action through every filter: the matches recorded if asked, and each filter's time
    // added to `in_run` if given (only the profile asks).
    let mut run = |mut matched: Option<&mut Vec<String>>, mut in_run: Option<&mut [f64]>| -> Result<()> {
        let mut vars = source.fresh(now);
        let mut ev = Evaluator::new(&engine, &mut vars);
        for (i, (stem, p)) in programs.iter().enumerate() {
            let t = in_run.is_some().then(Instant::now);
            let o = eval_filter(&mut ev, stem, p)?;
            if let (Some(t), Some(totals)) = (t, in_run.as_deref_mut()) {
                totals[i] += t.elapsed().as_secs_f64();
            }
            if let Some(m) = matched.as_deref_mut().filter(|_| o.matched) {
                m.push(stem.clone());
            }
        }
        Ok(())
    };
    run(Some(&mut matched), None)?;
    let mut evictor = Evictor::new(evict_mib);
    // Each iteration timed on its own, so the eviction before it is not (two clock reads
    // against an evaluation of hundreds of microseconds).
    let mut each = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        evictor.evict();
        let start = Instant::now();
        run(None, None)?;
        each.push(start.elapsed());
    }
    let ms_each = each.iter().sum::<Duration>().as_secs_f64() * 1000.0 / iterations as f64;
    let ms_median = median_ms(&mut each);
    if profile > 0 {
        // In the run: each filter's share of a whole evaluation, after the filters before it
        // (what it adds, as AbuseFilter's per-filter profiling shows it). Alone: each filter on
        // a fresh action, so cached variables and builtin results do not hide its own cost.
        let mut in_run = vec![0.0f64; programs.len()];
        for _ in 0..iterations {
            evictor.evict();
            run(None, Some(&mut in_run))?;
        }
        let mut times: Vec<(f64, f64, &str)> = Vec::new();
        for ((stem, p), run_total) in programs.iter().zip(&in_run) {
            let t = Instant::now();
            for _ in 0..iterations {
                eval_filter(&mut Evaluator::new(&engine, &mut source.fresh(now)), stem, p)?;
            }
            let per = |s: f64| s * 1000.0 / iterations as f64;
            times.push((per(*run_total), per(t.elapsed().as_secs_f64()), stem));
        }
        times.sort_by(|a, b| b.0.total_cmp(&a.0));
        eprintln!("   in run      alone  filter");
        for (run_ms, alone_ms, stem) in times.iter().take(profile) {
            eprintln!("{run_ms:9.4} {alone_ms:9.4} ms  {stem}");
        }
    }
    matched.sort();
    let line = serde_json::json!({
        "engine": "wikiguard",
        "filters": programs.len(),
        "iterations": iterations,
        "evict_mib": evict_mib,
        "ms_each": ms_each,
        "ms_median": ms_median,
        "matched": matched,
    });
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_time_or_the_mean_of_the_middle_two() {
        let ms = |v: &[u64]| median_ms(&mut v.iter().map(|&m| Duration::from_millis(m)).collect::<Vec<_>>());
        assert_eq!(ms(&[]), 0.0);
        assert_eq!(ms(&[7]), 7.0);
        assert_eq!(ms(&[9, 1, 5]), 5.0);
        assert_eq!(ms(&[40, 1, 3, 2]), 2.5, "an outlier moves the mean, not the median");
    }
}
