//! `gen`: writes a generated cluster and its traffic to files.
//!
//! ```text
//! cargo run --release --example gen -- --ingresses N [--seed S] [--out DIR]
//! ```
//!
//! Generates N Ingresses and two request mixes with the workload generator the `scale` bench
//! uses (`benches/support/corpus.rs`; the same N and S always give the same files) and writes
//!
//! - `DIR/ingresses.yaml`: the Ingresses, one YAML document each;
//! - `DIR/hot.jsonl`: 256 requests for a handful of hosts;
//! - `DIR/cold.jsonl`: 65 536 requests spread over every host, misses and requests that need
//!   canonicalising included;
//!
//! the requests one JSON object per line (`{"host": ..., "path": ...}`), as `examples/route`
//! reads them. DIR defaults to `target/corpus`, S to the seed of the published figures. It
//! prints the counts (Ingresses, hosts, paths, requests). For example:
//!
//! ```text
//! cargo run --release --example gen -- --ingresses 1000
//! cargo run --release --example route -- target/corpus/ingresses.yaml < target/corpus/hot.jsonl
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

#[path = "../benches/support/corpus.rs"]
mod corpus;

const USAGE: &str = "usage: gen --ingresses N [--seed S] [--out DIR]";

/// The command line.
struct Args {
    /// How many Ingresses to generate.
    ingresses: usize,
    /// The generator's seed.
    seed: u64,
    /// Where to write the files.
    out: PathBuf,
}

/// Reads the command line; `Err` is the message to print.
fn parse_args() -> Result<Args, String> {
    let mut ingresses = None;
    let mut seed = corpus::SEED;
    let mut out = PathBuf::from("target/corpus");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if arg.starts_with("--") => (flag.to_owned(), Some(value.into())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--ingresses" => {
                let text = value()?;
                let n = text
                    .parse()
                    .map_err(|e| format!("--ingresses {text:?}: {e}"))?;
                ingresses = Some(n);
            }
            "--seed" => {
                let text = value()?;
                seed = text.parse().map_err(|e| format!("--seed {text:?}: {e}"))?;
            }
            "--out" => out = PathBuf::from(value()?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
        }
    }
    let ingresses = ingresses.ok_or_else(|| format!("--ingresses is required\n{USAGE}"))?;
    Ok(Args {
        ingresses,
        seed,
        out,
    })
}

/// Generates the corpus and writes its three files.
fn run() -> Result<(), String> {
    let args = parse_args()?;
    let corpus = corpus::generate(args.ingresses, args.seed);
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let files = [
        ("ingresses.yaml", corpus::to_yaml(&corpus.ingresses)),
        ("hot.jsonl", corpus::to_jsonl(&corpus.hot)),
        ("cold.jsonl", corpus::to_jsonl(&corpus.cold)),
    ];
    for (name, text) in files {
        let path = args.out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let stats = corpus.stats();
    println!(
        "{} Ingresses, {} hosts ({} wildcards), {} paths; {} hot and {} cold requests in {}",
        stats.ingresses,
        stats.hosts,
        stats.wildcard_hosts,
        stats.paths,
        corpus.hot.len(),
        corpus.cold.len(),
        args.out.display()
    );
    println!("hot: {}", corpus::composition(&corpus.hot));
    println!("cold: {}", corpus::composition(&corpus.cold));
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gen: {message}");
            ExitCode::from(2)
        }
    }
}
