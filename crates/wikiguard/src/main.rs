//! The `wikiguard` binary: parses the command line, runs the command, maps errors to exit codes.
//! Everything it does lives in the library crates; this file only wires them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc: a check allocates on the thread that parses it and
/// frees some of it on others (the store's writer, the recent-actions recorder), and glibc's
/// arenas then took 9% of the service's CPU time and their locks a context switch per check.
/// Six interleaved rounds of `bench/check-http.sh` (medians): a 5 KB check 0.92 -> 0.86 ms of
/// CPU and 4.9 -> 3.9 switches, a 50 KB check 2.40 -> 2.14 ms and p50 2.6 -> 2.2 ms; the
/// single-threaded `filter bench` within its noise (5 KB 0.168 ms either way). The price is
/// memory: after 10 s of 5 KB checks the service held 98 MB resident instead of 55 MB (50 KB:
/// 137 MB instead of 83 MB), per-thread heaps kept for reuse.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod accounts_api;
mod config;
mod filter_cmd;
mod filters;
mod gate_cmd;
mod gate_proxy;
mod gate_redis;
mod gate_upstream;
mod metrics;
mod passkeys_api;
mod recent;
mod serve;
mod server;

#[derive(Parser)]
#[command(
    name = "wikiguard",
    version,
    about = "The safety and integrity layer for MediaWiki wikis"
)]
struct Cli {
    /// The configuration file (default: none; every key has a default, `WIKIGUARD_…`
    /// environment variables override).
    #[arg(long, global = true, env = "WIKIGUARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: the check API MediaWiki calls, filter management, metrics.
    Serve,
    /// Work with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the gate alone: bot defence in front of MediaWiki (a reverse proxy).
    #[command(args_conflicts_with_subcommands = true)]
    Gate {
        #[command(subcommand)]
        explain: Option<GateCommand>,
        #[command(flatten)]
        flags: GateArgs,
    },
    /// The breached-password list.
    #[command(subcommand)]
    Passwords(PasswordsCommand),
    /// Bring data from MediaWiki into wikiguard's store.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Work with rules in the AbuseFilter language.
    #[command(subcommand)]
    Filter(FilterCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file (with the environment applied) and explain what it sets.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

#[derive(clap::Args, Default)]
struct GateArgs {
    /// Address to listen on (e.g. 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<String>,
    /// The wiki to forward to (http://host:port).
    #[arg(long)]
    upstream: Option<String>,
    /// A policy TOML file (default: the built-in policy, docs/gate-policy.md).
    #[arg(long)]
    policy: Option<String>,
    /// A reverse proxy in front of the gate whose X-Forwarded-For is believed (CIDR); repeatable.
    #[arg(long = "trusted-proxy")]
    trusted_proxy: Vec<String>,
    /// Redis URL for rate-limit counters shared by several gates.
    #[arg(long)]
    redis: Option<String>,
    /// Decide and log, but let every request through.
    #[arg(long)]
    shadow: bool,
}

impl GateArgs {
    fn flags(&self) -> gate_cmd::GateFlags {
        gate_cmd::GateFlags {
            listen: self.listen.clone(),
            upstream: self.upstream.clone(),
            policy: self.policy.clone(),
            trusted_proxies: self.trusted_proxy.clone(),
            redis: self.redis.clone(),
            shadow: self.shadow,
        }
    }
}

#[derive(Subcommand)]
enum GateCommand {
    /// Show which rules match a request, its class, cost, tier, the limiter state and the decision.
    Explain {
        /// The method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// The request target, e.g. "/w/index.php?title=X&action=history".
        #[arg(long)]
        url: String,
        /// A request header, `Name: value`; repeatable.
        #[arg(long = "header")]
        headers: Vec<String>,
        /// The client's IP address.
        #[arg(long, default_value = "192.0.2.1")]
        client_ip: String,
        /// The policy to explain (default: the configured one, else the built-in policy).
        #[arg(long)]
        policy: Option<String>,
    },
}

#[derive(Subcommand)]
enum PasswordsCommand {
    /// Write a generated list in the Pwned Passwords format (for trying the import and the
    /// checks without downloading the real list).
    Sample {
        /// Where to write it.
        out: PathBuf,
        /// How many hashes.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
    },
    /// Index a Pwned Passwords file (`SHA1:COUNT` lines, or a folder of range files) into the data directory.
    Import {
        /// The downloaded list.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Import OATHAuth's TOTP enrolments (its `oathauth_devices` or `oathauth_users` rows, as JSON).
    Oathauth {
        /// The rows, as a JSON array, or the wiki's SQLite database file itself.
        file: PathBuf,
        /// With JSON rows: the wiki's user ids and names (`[{"user_id", "user_name"}]`).
        #[arg(long)]
        users: Option<PathBuf>,
    },
    /// Import filters from AbuseFilter's API (`list=abusefilters` with
    /// `abfprop=id|description|pattern|actions|hits|comments|lasteditor|lastedittime|status|private`).
    Abusefilter {
        /// The API answer, as JSON.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum FilterCommand {
    /// Evaluate a rule and print its value as one JSON line (exit 2: syntax error, 1: evaluation error).
    Eval {
        /// A JSON object of variable values (a number with a `.` is a float).
        #[arg(long)]
        vars: Option<PathBuf>,
        /// An Equivset JSON file for ccnorm/norm (default: the built-in confusables table).
        #[arg(long)]
        equivset: Option<PathBuf>,
        /// The rule, or `-` to read it from standard input.
        expr: String,
    },
    /// Print a rule's syntax errors and static-check findings, one per line with line and column.
    Check {
        /// The rule file (`-` for standard input).
        file: PathBuf,
    },
    /// Run an AbuseFilter parser-test folder (`*.t`, optional `*.r`); ends with `N passed, M failed`.
    Conformance {
        /// An Equivset JSON file for ccnorm/norm.
        #[arg(long)]
        equivset: Option<PathBuf>,
        /// The folder of cases.
        dir: PathBuf,
    },
    /// Run filters over a file of recorded actions (one check-API JSON object a line) and
    /// print the hits, to try a change on real traffic before enabling it.
    Test {
        /// A rule file, a filter JSON object or array, or an AbuseFilter API export.
        filter_file: PathBuf,
        /// The recorded actions, JSON lines.
        #[arg(long)]
        against: PathBuf,
        /// An Equivset JSON file for ccnorm/norm.
        #[arg(long)]
        equivset: Option<PathBuf>,
    },
    /// Time a folder of `*.af` filters on one action's variables; prints one JSON line.
    Bench {
        /// Folder of filters, one rule per `*.af` file.
        #[arg(long)]
        filters: PathBuf,
        /// JSON object of the action's variables.
        #[arg(long, required_unless_present = "action", conflicts_with = "action")]
        vars: Option<PathBuf>,
        /// Or an action as `POST /v1/check` takes it: the variables are then computed from
        /// it on every iteration as the service computes them (diff, links…), and timed
        /// with the filters.
        #[arg(long)]
        action: Option<PathBuf>,
        /// How many times to evaluate all filters.
        #[arg(long, default_value_t = 100)]
        iterations: usize,
        /// Also print the N costliest filters to standard error: each one's time within the run (after the filters before it) and alone (on a fresh action).
        #[arg(long, default_value_t = 0)]
        profile: usize,
        /// Write this many MiB of other memory before each timed evaluation (and each profiled one), so that it starts with cold CPU caches, as a check in the service does; 0 keeps them warm.
        #[arg(long, default_value_t = 0, value_name = "MIB")]
        evict_mib: usize,
        /// An Equivset JSON file for ccnorm/norm.
        #[arg(long)]
        equivset: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    let printed = |r: anyhow::Result<String>| {
        r.map(|text| {
            print!("{text}");
            ExitCode::SUCCESS
        })
    };
    let result = match cli.command {
        Command::Serve => serve::serve(config).map(|()| ExitCode::SUCCESS),
        Command::Passwords(PasswordsCommand::Sample { out, count }) => printed(
            wikiguard_accounts::breach::write_sample_list(&out, count, 1)
                .map(|r| format!("wrote {} generated hashes to {}\n", r.len(), out.display()))
                .map_err(|e| anyhow::anyhow!("{}: {e}", out.display())),
        ),
        Command::Passwords(PasswordsCommand::Import { file }) => {
            printed(serve::settings(config, false).and_then(|s| accounts_api::import_passwords(&s, &file)))
        }
        Command::Gate { explain: None, flags } => gate_cmd::run(config, &flags.flags()).map(|()| ExitCode::SUCCESS),
        Command::Gate {
            explain:
                Some(GateCommand::Explain {
                    method,
                    url,
                    headers,
                    client_ip,
                    policy,
                }),
            flags,
        } => {
            let mut f = flags.flags();
            if policy.is_some() {
                f.policy = policy;
            }
            printed(gate_cmd::explain(config, &f, &method, &url, &headers, &client_ip))
        }
        Command::Config(ConfigCommand::Check { file }) => printed(config::check_command(&file)),
        Command::Import(ImportCommand::Abusefilter { file }) => printed(serve::import_abusefilter(config, &file)),
        Command::Import(ImportCommand::Oathauth { file, users }) => printed(
            serve::settings(config, false).and_then(|s| accounts_api::import_oathauth(&s, &file, users.as_deref())),
        ),
        Command::Filter(FilterCommand::Test {
            filter_file,
            against,
            equivset,
        }) => printed(serve::filter_test(&filter_file, &against, equivset.as_deref())),
        Command::Filter(FilterCommand::Eval { vars, equivset, expr }) => {
            filter_cmd::eval(&expr, vars.as_deref(), equivset.as_deref())
        }
        Command::Filter(FilterCommand::Check { file }) => filter_cmd::check(&file),
        Command::Filter(FilterCommand::Conformance { equivset, dir }) => {
            filter_cmd::conformance(&dir, equivset.as_deref())
        }
        Command::Filter(FilterCommand::Bench {
            filters,
            vars,
            action,
            iterations,
            profile,
            evict_mib,
            equivset,
        }) => {
            let input = match (vars, action) {
                (_, Some(a)) => filter_cmd::BenchInput::Action(a),
                (Some(v), None) => filter_cmd::BenchInput::Vars(v),
                (None, None) => unreachable!("clap requires --vars or --action"),
            };
            filter_cmd::bench(&filters, &input, iterations, profile, evict_mib, equivset.as_deref())
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wikiguard: {e:#}");
            ExitCode::from(filter_cmd::EXIT_SYNTAX)
        }
    }
}
