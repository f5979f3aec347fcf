//! `ambit`: validate policy directories, decide requests, and run decision vectors.

use ambit::{Authorizer, Request};
use std::io::Write as _;

/// `println!` that ends the program quietly when standard output is gone (`ambit test | head
/// -1`): a closed pipe is the reader's choice, not an error, and never a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}
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
        /// Mint agents first (a mint spec JSON file, or `parent,task,scope+scope,ttl`; repeat for
        /// a chain, each minted under the previous); `$agent` in the request is the last one
        #[arg(long)]
        agent: Vec<String>,
    },
    /// Decide one request and explain it: per hop, the policies that applied and the rule that ended it
    #[command(
        after_help = "Example:\n  ambit explain policies/helpdesk --request request.json\n  ambit explain policies/helpdesk --request - --json < request.json\n\nExit code 0 when allowed, 2 when denied, 1 on error."
    )]
    Explain {
        /// Policy directory
        dir: PathBuf,
        /// Request JSON file, or - for standard input
        #[arg(long)]
        request: String,
        /// Mint agents first (a mint spec JSON file, or `parent,task,scope+scope,ttl`; repeat for
        /// a chain, each minted under the previous); `$agent` in the request is the last one
        #[arg(long)]
        agent: Vec<String>,
        /// Print the explanation as JSON
        #[arg(long)]
        json: bool,
    },
    /// Verify or read hash-chained audit logs
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Revoke a principal or agent across a fleet: appended to its Redis feed, so every member
    /// denies it within its staleness bound
    #[command(
        after_help = "Example:\n  ambit revoke --fleet redis://127.0.0.1:6379/0 --policies policies/helpdesk 'Helpdesk::User::\"alice\"'\n\nPrints how many identities were newly cut off. Exit code 0 when the feed took it, 1 otherwise."
    )]
    Revoke {
        /// The entity uid to revoke
        uid: String,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// The fleet feed as a member sees it
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// Run decision vector files and report pass/fail per case
    #[command(
        after_help = "Example:\n  ambit test tests/vectors\n  ambit test tests/vectors/helpdesk.json --root .\n  ambit test --policies app/ app/tests.json      (Cedar CLI run-tests file)\n  ambit test --policies app/ app/                (ALLOW/ and DENY/ request folders)\n\nWithout --policies, paths are ambit vector files. With --policies, paths are Cedar's own test\nformats, decided against that policy directory: a `cedar run-tests` JSON file (each test with its\nrequest, optional entities, decision and reasons), a folder with ALLOW/ and DENY/ request files,\nor a requests.json of {name, expect, principal, action, resource, context}.\nExit code 0 when every case passes, 1 otherwise."
    )]
    Test {
        /// Vector files, or directories of them (with --policies: Cedar test files or folders)
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Directory that fixture paths are relative to
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// Run Cedar's test formats against this policy directory
        #[arg(long)]
        policies: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct FleetArgs {
    /// The fleet's Redis (`redis://host:port/db`)
    #[arg(long = "fleet", value_name = "REDIS_URL")]
    redis_url: String,
    /// The fleet's stream
    #[arg(long, default_value = "ambit")]
    stream: String,
    /// The policy directory the fleet's members use (for the agent type and the schema)
    #[arg(long, default_value = ".")]
    policies: PathBuf,
}

impl FleetArgs {
    fn join(&self) -> ambit::Result<Authorizer> {
        let mut options = ambit::wire::FleetOptions::redis(self.redis_url.clone());
        options.stream = Some(self.stream.clone());
        Authorizer::builder().dir(&self.policies).fleet(&options).build()
    }
}

#[derive(Subcommand)]
enum FleetCommand {
    /// Join the feed, catch up, and print what this member knows (JSON)
    #[command(
        after_help = "Example:\n  ambit fleet status --fleet redis://127.0.0.1:6379/0 --policies policies/helpdesk\n\nExit code 0 when caught up, 1 otherwise."
    )]
    Status {
        #[command(flatten)]
        fleet: FleetArgs,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain across files (oldest segment first); report the first bad record
    #[command(
        after_help = "Example:\n  ambit audit verify audit.jsonl.1 audit.jsonl.2 audit.jsonl\n\nPrints the last sequence number and hash, to compare with an external anchor.\nExit code 0 when the chain verifies, 1 otherwise."
    )]
    Verify {
        /// Log files, in chain order
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The files continue a chain whose archived part ended at this record (`SEQ:HASH`);
        /// without it the chain must start at its genesis record
        #[arg(long)]
        after: Option<String>,
        /// A record known to be in the log (`SEQ:HASH`, a checkpoint taken earlier)
        #[arg(long)]
        checkpoint: Option<String>,
    },
    /// Pretty-print the last records of a log
    #[command(after_help = "Example:\n  ambit audit tail audit.jsonl -n 20")]
    Tail {
        /// Log file
        file: PathBuf,
        /// How many records
        #[arg(short, default_value_t = 10)]
        n: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = std::io::stdout().is_terminal();
    match run(cli.command, color) {
        Ok(code) => code,
        Err(e) => {
            let validation = match &e {
                ambit::Error::Validation(v) => Some(v),
                ambit::Error::Reload(r) => match r.cause() {
                    ambit::Error::Validation(v) => Some(v),
                    _ => None,
                },
                _ => None,
            };
            if let Some(v) = validation {
                // every validation error, each with its own location
                for (message, loc) in v.errors() {
                    match loc {
                        Some(loc) => eprintln!("error[{}]: {loc}: {message}", e.code()),
                        None => eprintln!("error[{}]: {message}", e.code()),
                    }
                    excerpt(loc);
                }
            } else {
                eprintln!("error[{}]: {e}", e.code());
                excerpt(e.location());
            }
            ExitCode::from(1)
        }
    }
}

fn revoke_in_fleet(uid: &str, fleet: &FleetArgs) -> ambit::Result<ExitCode> {
    let authz = fleet.join()?;
    let count = authz.revoke(uid)?;
    out!("revoked {uid}: {count} cut off across the fleet");
    Ok(ExitCode::SUCCESS)
}

fn fleet_status(fleet: &FleetArgs) -> ambit::Result<ExitCode> {
    let authz = fleet.join()?;
    let Some(status) = authz.fleet_status() else { return Ok(ExitCode::from(1)) };
    let mut json = serde_json::to_value(&status).unwrap_or_default();
    if let Some(o) = json.as_object_mut() {
        o.insert("agents".into(), authz.agent_count().into());
    }
    out!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
    Ok(if status.stale { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn excerpt(loc: Option<&ambit::error::Location>) {
    if let Some(loc) = loc {
        if !loc.excerpt().is_empty() {
            eprintln!("  {}\n  {}^", loc.excerpt(), " ".repeat(loc.column().saturating_sub(1)));
        }
    }
}

fn run(command: Command, color: bool) -> ambit::Result<ExitCode> {
    match command {
        Command::Validate { dir } => {
            let authz = Authorizer::from_dir(&dir)?;
            let (read, skipped) = authz.source_files();
            let names = |files: &[PathBuf]| {
                files
                    .iter()
                    .filter_map(|f| f.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out!("read: {}", names(&read));
            if !skipped.is_empty() {
                out!("skipped (not a schema, policy, entities or links file): {}", names(&skipped));
            }
            out!("{}: {} policies valid (version {})", dir.display(), authz.policy_ids().len(), authz.policy_version());
            Ok(ExitCode::SUCCESS)
        }
        Command::Revoke { uid, fleet } => revoke_in_fleet(&uid, &fleet),
        Command::Fleet { command: FleetCommand::Status { fleet } } => fleet_status(&fleet),
        Command::Authorize { dir, request, agent } => {
            let authz = Authorizer::from_dir(&dir)?;
            let request = with_agents(&authz, &agent, read_request(&request)?)?;
            let decision = authz.authorize(&request)?;
            out!("{}", serde_json::to_string_pretty(&decision.to_json()).unwrap_or_default());
            Ok(if decision.allowed() { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        Command::Explain { dir, request, json, agent } => {
            let authz = Authorizer::from_dir(&dir)?;
            let e = authz.explain(&with_agents(&authz, &agent, read_request(&request)?)?)?;
            if json {
                out!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
            } else {
                print_explanation(&e, color);
            }
            Ok(if e.decision.allowed() { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        Command::Audit { command: AuditCommand::Verify { files, after, checkpoint } } => {
            let mut options = ambit::audit::VerifyOptions::default();
            if let Some(a) = after {
                options = options.after(a.parse()?);
            }
            if let Some(c) = checkpoint {
                options = options.checkpoint(c.parse()?);
            }
            let report = ambit::audit::verify_opts(&files, &options)?;
            if report.records == 0 && report.ok {
                eprintln!(
                    "error: no audit records in {}",
                    files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
                );
                return Ok(ExitCode::from(1));
            }
            if report.ok {
                out!("ok: {} records verified", report.records);
            } else {
                out!(
                    "FAILED at sequence {}: {}",
                    report.first_bad_seq.unwrap_or_default(),
                    report.problem.as_deref().unwrap_or("")
                );
                out!("{} records verified before it", report.records);
            }
            out!("last sequence {} hash {}", report.last_seq, report.last_hash);
            out!("{}", if report.closed { "closed cleanly" } else { "not closed (still being written, or cut short)" });
            Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Audit { command: AuditCommand::Tail { file, n } } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| ambit::Error::from(ambit::error::IoError::new(&file, &e)))?;
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let shown = &lines[lines.len().saturating_sub(n)..];
            let mut unreadable = 0;
            for line in shown {
                if let Ok(r) = serde_json::from_str::<ambit::AuditRecord>(line) {
                    out!("{}", describe(&r));
                } else {
                    unreadable += 1;
                    out!("(not an audit record) {}", line.chars().take(120).collect::<String>());
                }
            }
            if !shown.is_empty() && unreadable == shown.len() {
                return Err(ambit::wire::invalid_value(format!("`{}` is not an audit log", file.display())));
            }
            Ok(if unreadable == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Test { paths, root, policies: Some(dir) } => {
            let _ = root;
            run_cedar_tests(&dir, &paths, color)
        }
        Command::Test { paths, root, policies: None } => run_vectors(&paths, &root, color),
    }
}

/// Mints the `--agent` specs in order (each after the first under the one before, unless its
/// spec names a parent of its own) and puts the last agent's uid where the request says `$agent`.
fn with_agents(authz: &Authorizer, specs: &[String], request: Request) -> ambit::Result<Request> {
    let mut last: Option<String> = None;
    for spec in specs {
        let mut value: serde_json::Value = if Path::new(spec).is_file() {
            let text = std::fs::read_to_string(spec)
                .map_err(|e| ambit::Error::from(ambit::error::IoError::new(Path::new(spec), &e)))?;
            ambit::wire::json_from_text(&text, spec)?
        } else {
            let parts: Vec<&str> = spec.splitn(4, ',').collect();
            let [parent, task, scopes, ttl] = parts.as_slice() else {
                return Err(ambit::wire::invalid_value(format!(
                    "`--agent {spec}`: expected parent,task,scope+scope,ttl or a JSON file"
                )));
            };
            let ttl: u64 = ttl.trim().parse().map_err(|_| {
                ambit::wire::invalid_value(format!("`--agent {spec}`: the ttl is not a number of seconds"))
            })?;
            let parent = if parent.is_empty() { last.clone().unwrap_or_default() } else { (*parent).to_owned() };
            serde_json::json!({ "parent": parent, "task": task, "scopes": scopes.split('+').filter(|s| !s.is_empty()).collect::<Vec<_>>(), "ttl_seconds": ttl })
        };
        if let (Some(prev), Some(p)) = (&last, value.get("parent").and_then(|p| p.as_str())) {
            if p == "$agent" {
                value["parent"] = serde_json::Value::String(prev.clone());
            }
        }
        let spec: ambit::AgentSpec =
            serde_json::from_value(value).map_err(|e| ambit::wire::invalid_value(format!("not a mint spec: {e}")))?;
        let agent = authz.mint_agent(&spec)?;
        eprintln!("minted {} (chain {})", agent.uid(), agent.chain().join(" -> "));
        last = Some(agent.uid().to_owned());
    }
    let Some(uid) = last else { return Ok(request) };
    let mut v = serde_json::to_value(&request).map_err(|e| ambit::wire::invalid_value(e.to_string()))?;
    for key in ["principal", "resource"] {
        if v.get(key).and_then(|x| x.as_str()) == Some("$agent") {
            v[key] = serde_json::Value::String(uid.clone());
        }
    }
    if let Some(list) = v.get_mut("on_behalf_of").and_then(|l| l.as_array_mut()) {
        for d in list.iter_mut() {
            if d.as_str() == Some("$agent") {
                *d = serde_json::Value::String(uid.clone());
            }
        }
    }
    serde_json::from_value(v).map_err(|e| ambit::wire::invalid_value(e.to_string()))
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
                    out!("{green}pass{reset} {}", result.name);
                }
                Some(why) => {
                    failed += 1;
                    out!("{red}FAIL{reset} {}\n     {why}", result.name);
                }
            }
        }
    }
    out!("{passed} passed, {failed} failed");
    if passed + failed == 0 {
        eprintln!("error: no vector cases found");
        return Ok(ExitCode::from(1));
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// One Cedar test case: the request, its own entities (a `run-tests` case may bring them), and
/// the expected decision and, where given, reasons.
struct CedarCase {
    name: String,
    request: serde_json::Value,
    entities: Option<serde_json::Value>,
    allow: bool,
    reasons: Option<Vec<String>>,
}

fn cedar_cases(path: &Path) -> ambit::Result<Vec<CedarCase>> {
    let io = |p: &Path, e: &std::io::Error| ambit::Error::from(ambit::error::IoError::new(p, e));
    let read_json = |p: &Path| -> ambit::Result<serde_json::Value> {
        let text = std::fs::read_to_string(p).map_err(|e| io(p, &e))?;
        ambit::wire::json_from_text(&text, &p.display().to_string())
    };
    let mut out = Vec::new();
    if path.is_dir() {
        for (folder, allow) in [("ALLOW", true), ("DENY", false)] {
            let dir = path.join(folder);
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
            files.sort();
            for f in files {
                out.push(CedarCase {
                    name: format!(
                        "{folder}/{}",
                        f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
                    ),
                    request: read_json(&f)?,
                    entities: None,
                    allow,
                    reasons: None,
                });
            }
        }
        return Ok(out);
    }
    let value = read_json(path)?;
    let items = value.as_array().cloned().unwrap_or_default();
    for (i, item) in items.into_iter().enumerate() {
        let name = item.get("name").and_then(|n| n.as_str()).map_or_else(|| format!("#{i}"), str::to_owned);
        if let Some(request) = item.get("request") {
            // `cedar run-tests`: { name, request, entities?, decision, reason?, num_errors? }
            let allow = item.get("decision").and_then(|d| d.as_str()).is_some_and(|d| d.eq_ignore_ascii_case("allow"));
            let reasons = item
                .get("reason")
                .and_then(|r| r.as_array())
                .map(|r| r.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect::<Vec<_>>());
            out.push(CedarCase {
                name,
                request: request.clone(),
                entities: item.get("entities").cloned(),
                allow,
                reasons,
            });
        } else {
            // requests.json: { name, expect: ALLOW | DENY, principal, action, resource, context }
            let allow = item.get("expect").and_then(|d| d.as_str()).is_some_and(|d| d.eq_ignore_ascii_case("allow"));
            let mut request = item.clone();
            if let Some(map) = request.as_object_mut() {
                map.remove("name");
                map.remove("expect");
            }
            out.push(CedarCase { name, request, entities: None, allow, reasons: None });
        }
    }
    Ok(out)
}

fn run_cedar_tests(dir: &Path, paths: &[PathBuf], color: bool) -> ambit::Result<ExitCode> {
    let (green, red, reset) = if color { ("\x1b[32m", "\x1b[31m", "\x1b[0m") } else { ("", "", "") };
    let shared = Authorizer::from_dir(dir)?;
    let (mut passed, mut failed) = (0, 0);
    for path in paths {
        for case in cedar_cases(path)? {
            let outcome = (|| -> ambit::Result<Option<String>> {
                let request: Request = serde_json::from_value(case.request.clone())
                    .map_err(|e| ambit::wire::invalid_value(format!("not a request: {e}")))?;
                let own;
                let authz = match &case.entities {
                    // a case's own entities replace the directory's, as `cedar run-tests` uses them
                    Some(entities) => {
                        own = Authorizer::builder().dir(dir).build()?;
                        own.replace_entities(&entities.to_string())?;
                        &own
                    }
                    None => &shared,
                };
                let d = authz.authorize(&request)?;
                if d.allowed() != case.allow {
                    return Ok(Some(format!("expected {}, got {}", allow_word(case.allow), allow_word(d.allowed()))));
                }
                if let Some(want) = &case.reasons {
                    let mut got = d.reasons().to_vec();
                    let mut want = want.clone();
                    got.sort();
                    want.sort();
                    if got != want {
                        return Ok(Some(format!("reasons: expected {want:?}, got {got:?}")));
                    }
                }
                Ok(None)
            })();
            match outcome {
                Ok(None) => {
                    passed += 1;
                    out!("{green}pass{reset} {}: {}", path.display(), case.name);
                }
                Ok(Some(why)) => {
                    failed += 1;
                    out!("{red}FAIL{reset} {}: {}\n     {why}", path.display(), case.name);
                }
                Err(e) => {
                    failed += 1;
                    out!("{red}FAIL{reset} {}: {}\n     error {}: {e}", path.display(), case.name, e.code());
                }
            }
        }
    }
    out!("{passed} passed, {failed} failed");
    if passed + failed == 0 {
        eprintln!("error: no test cases found");
        return Ok(ExitCode::from(1));
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn allow_word(allowed: bool) -> &'static str {
    if allowed {
        "ALLOW"
    } else {
        "DENY"
    }
}

fn print_explanation(e: &ambit::Explanation, color: bool) {
    let (green, red, dim, reset) =
        if color { ("\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[0m") } else { ("", "", "", "") };
    let d = &e.decision;
    let verdict = if d.allowed() { format!("{green}ALLOW{reset}") } else { format!("{red}DENY{reset}") };
    out!("{verdict} {}", e.summary);
    out!("{dim}action {}  resource {}  policy {}{reset}", d.action(), d.resource(), d.policy_version());
    for h in &e.hops {
        let mark = if !h.evaluated {
            "not evaluated"
        } else if h.allowed {
            "allowed"
        } else {
            "denied"
        };
        out!("hop {} {}: {mark}", h.hop, h.principal);
        for p in &h.policies {
            let err = p.error.as_ref().map_or(String::new(), |e| format!(" ({e})"));
            out!("    {:<6} {:<14} {}{err}", p.effect, p.outcome, p.id);
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm UTC` from milliseconds since the epoch (civil-from-days, so no
/// date crate is needed for a log viewer).
fn human_time(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

fn describe(r: &ambit::AuditRecord) -> String {
    use ambit::AuditEvent as E;
    let what = match &r.event {
        E::Decision { allowed, deny_cause, chain, action, resource, reasons, .. } => format!(
            "{} {} {action} {resource} ({}{})",
            if *allowed { "ALLOW" } else { "DENY" },
            chain.join(" -> "),
            deny_cause.map_or_else(|| "allowed".to_owned(), |c| c.code().to_owned()),
            if reasons.is_empty() { String::new() } else { format!(": {}", reasons.join(", ")) }
        ),
        E::RequestFailed { code, principal, action, resource, .. } => {
            format!("FAILED {code} {principal} {action} {resource}")
        }
        E::Linked { link_id, template_id, .. } => format!("linked {link_id} (template {template_id})"),
        E::Unlinked { link_id, .. } => format!("unlinked {link_id}"),
        E::Closed { dropped } => format!("closed ({dropped} dropped)"),
        E::AgentMinted { uid, parent, scopes, expires_at, .. } => {
            format!("minted {uid} by {parent} scopes {scopes:?} expires {expires_at}")
        }
        E::Revoked { uid, count } => format!("revoked {uid} ({count} cut off)"),
        E::Reinstated { uid } => format!("reinstated {uid}"),
        E::ReloadSucceeded { version, generation } => format!("reloaded {version} (generation {generation})"),
        E::ReloadFailed { code, error } => format!("reload failed {code}: {error}"),
        E::RecordsDropped { total } => format!("{total} records dropped so far"),
        E::TornTailDiscarded { bytes } => format!("torn tail of {bytes} bytes discarded on restart"),
        other => format!("{other:?}"),
    };
    format!("#{} {} {what}", r.seq, human_time(r.ts))
}
