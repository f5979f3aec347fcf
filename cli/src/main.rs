//! `ambit`: validate policy directories, decide requests, and run decision vectors.

use ambit::{Authorizer, Request};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ambit",
    version,
    about = "Authorization for AI agents: Cedar policies over agent identities and delegation chains"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and validate a policy directory (schema, policies, entities)
    #[command(after_help = "Example:\n  ambit validate policies/helpdesk\n\nExit code 0 when valid, 1 otherwise.")]
    Validate {
        /// Directory with *.cedarschema, *.cedar and an optional entities.json
        dir: PathBuf,
    },
    /// Decide one request and print the decision as JSON
    #[command(
        after_help = "Example:\n  echo '{\"principal\": \"Helpdesk::User::\\\"alice\\\"\", \"action\": \"read_ticket\", \"resource\": \"Helpdesk::Ticket::\\\"4711\\\"\"}' \\\n    | ambit authorize policies/helpdesk --request -\n\nExit code 0 when allowed, 2 when denied, 1 on error."
    )]
    Authorize {
        /// Policy directory
        dir: PathBuf,
        /// Request JSON file, or - for standard input
        #[arg(long)]
        request: String,
    },
    /// Run decision vector files and report pass/fail per case
    #[command(
        after_help = "Example:\n  ambit test tests/vectors\n  ambit test tests/vectors/helpdesk.json --root .\n\nFixture paths in vector files are relative to --root (default: the current directory).\nExit code 0 when every case passes, 1 otherwise."
    )]
    Test {
        /// Vector files, or directories of them
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Directory that fixture paths are relative to
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = std::io::stdout().is_terminal();
    match run(cli.command, color) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error[{}]: {e}", e.code());
            if let Some(loc) = e.location() {
                if !loc.excerpt().is_empty() {
                    eprintln!("  {}\n  {}^", loc.excerpt(), " ".repeat(loc.column().saturating_sub(1)));
                }
            }
            ExitCode::from(1)
        }
    }
}

fn run(command: Command, color: bool) -> ambit::Result<ExitCode> {
    match command {
        Command::Validate { dir } => {
            let authz = Authorizer::from_dir(&dir)?;
            println!(
                "{}: {} policies valid (version {})",
                dir.display(),
                authz.policy_ids().len(),
                authz.policy_version()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Authorize { dir, request } => {
            let authz = Authorizer::from_dir(&dir)?;
            let request = read_request(&request)?;
            let decision = authz.authorize(&request)?;
            println!("{}", serde_json::to_string_pretty(&decision.to_json()).unwrap_or_default());
            Ok(if decision.allowed() { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        Command::Test { paths, root } => run_vectors(&paths, &root, color),
    }
}

fn read_request(source: &str) -> ambit::Result<Request> {
    let text = if source == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| ambit::Error::from(ambit::error::IoError::stdin(&e)))?;
        s
    } else {
        std::fs::read_to_string(source)
            .map_err(|e| ambit::Error::from(ambit::error::IoError::new(Path::new(source), &e)))?
    };
    Request::from_json(&text)
}

fn run_vectors(paths: &[PathBuf], root: &Path, color: bool) -> ambit::Result<ExitCode> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(ambit::vector::find_files(p)?);
        } else {
            files.push(p.clone());
        }
    }
    let (green, red, reset) = if color { ("\x1b[32m", "\x1b[31m", "\x1b[0m") } else { ("", "", "") };
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        for result in ambit::vector::run_file(file, root)? {
            match result.failure {
                None => {
                    passed += 1;
                    println!("{green}pass{reset} {}", result.name);
                }
                Some(why) => {
                    failed += 1;
                    println!("{red}FAIL{reset} {}\n     {why}", result.name);
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if passed + failed == 0 {
        eprintln!("error: no vector cases found");
        return Ok(ExitCode::from(1));
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
