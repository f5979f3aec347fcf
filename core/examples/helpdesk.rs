//! The help-desk scenario end to end (`make demo`): the platform mints one agent per ticket,
//! agents act within their scopes and tenant, a rogue refund is denied with a clear cause, a
//! revocation cuts off an agent and its sub-agent mid-task, and a policy change is picked up
//! live.

use ambit::{AgentSpec, Authorizer, Decision, Request};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk");
    // Work on a copy so the live policy edit below leaves the repository alone.
    let dir = copy_fixture(&fixture)?;
    let log = dir.join("audit.jsonl");
    let audit = ambit::Audit::builder().file(&log, ambit::audit::FileOptions::default()).build()?;
    let authz = Authorizer::builder().dir(&dir).audit(audit).build()?;
    println!(
        "loaded {} policies from {} (version {})\n",
        authz.policy_ids().len(),
        fixture.display(),
        authz.policy_version()
    );

    let acme = tenant("acme");
    println!("== the platform mints an agent for ticket 4711");
    let agent = authz.mint_agent(
        &AgentSpec::new(r#"Helpdesk::Service::"helpdesk""#, "ticket-4711", 900)
            .scopes(["read_ticket", "reply_ticket", "issue_refund"])
            .resources([r#"Helpdesk::Ticket::"4711""#])
            .attributes(acme.clone()),
    )?;
    println!("minted {} (scopes {:?}, expires at {})\n", agent.uid(), agent.scopes(), agent.expires_at());

    let ticket = r#"Helpdesk::Ticket::"4711""#;
    show(&authz, "agent reads its ticket", &Request::new(agent.uid(), "read_ticket", ticket))?;
    show(
        &authz,
        "agent refunds 120",
        &Request::new(agent.uid(), "issue_refund", ticket).with_context(json!({ "amount": 120 })),
    )?;
    show(
        &authz,
        "rogue: agent refunds 900, above the agent cap",
        &Request::new(agent.uid(), "issue_refund", ticket).with_context(json!({ "amount": 900 })),
    )?;
    show(
        &authz,
        "agent reads a ticket outside its confinement",
        &Request::new(agent.uid(), "read_ticket", r#"Helpdesk::Ticket::"9001""#),
    )?;
    show(
        &authz,
        "a manager refunds 2000 herself",
        &Request::new(r#"Helpdesk::User::"alice""#, "issue_refund", ticket).with_context(json!({ "amount": 2000 })),
    )?;

    println!("== the agent delegates drafting a reply to a sub-agent (narrower scopes)");
    let sub = authz.mint_agent(
        &AgentSpec::new(agent.uid(), "draft-reply", 300).scopes(["reply_ticket"]).attributes(acme.clone()),
    )?;
    println!("minted {} under {}\n", sub.uid(), agent.uid());
    show(&authz, "sub-agent replies", &Request::new(sub.uid(), "reply_ticket", ticket))?;
    show(
        &authz,
        "sub-agent tries a refund it was never given",
        &Request::new(sub.uid(), "issue_refund", ticket).with_context(json!({ "amount": 10 })),
    )?;
    match authz.mint_agent(&AgentSpec::new(sub.uid(), "escalate", 300).scopes(["issue_refund"])) {
        Ok(a) => println!("UNEXPECTED: minted {}", a.uid()),
        Err(e) => println!("minting a wider sub-sub-agent fails: {}: {e}\n", e.code()),
    }

    println!("== who delegated what to whom");
    print_tree(&authz.delegation_tree(r#"Helpdesk::Service::"helpdesk""#)?, 0);
    println!();

    println!("== the ticket agent misbehaves: revoke it mid-task");
    let cut = authz.revoke(agent.uid())?;
    println!("revoked {cut} identities (the agent and its sub-agent)\n");
    show(&authz, "sub-agent replies after revocation", &Request::new(sub.uid(), "reply_ticket", ticket))?;

    println!("== policy change picked up live: agent refund cap lowered from 500 to 100");
    let fresh = authz.mint_agent(
        &AgentSpec::new(r#"Helpdesk::Service::"helpdesk""#, "ticket-4711-retry", 900)
            .scopes(["issue_refund"])
            .attributes(acme),
    )?;
    let refund = Request::new(fresh.uid(), "issue_refund", ticket).with_context(json!({ "amount": 120 }));
    show(&authz, "new agent refunds 120 (cap 500)", &refund)?;
    let refunds = dir.join("refunds.cedar");
    let text = std::fs::read_to_string(&refunds)?.replace("context.amount > 500", "context.amount > 100");
    std::fs::write(&refunds, text)?;
    let outcome = authz.reload()?;
    println!("reloaded: version {} (generation {})\n", outcome.version, outcome.generation);
    show(&authz, "new agent refunds 120 (cap 100)", &refund)?;

    std::fs::write(dir.join("broken.cedar"), "permit(principal, action resource);")?;
    match authz.reload() {
        Ok(_) => println!("UNEXPECTED: a broken policy file loaded"),
        Err(e) => {
            println!("a broken edit is rejected ({}), still serving {}:\n  {e}\n", e.code(), authz.policy_version());
        }
    }
    verify_log(&authz, &log)?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn verify_log(authz: &Authorizer, log: &Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("== the audit trail: every decision and lifecycle event, hash-chained");
    if let Some(audit) = authz.audit() {
        audit.flush();
    }
    let report = ambit::audit::verify(&[log.to_path_buf()])?;
    println!(
        "{}: {} records verified, last sequence {} hash {}",
        log.display(),
        report.records,
        report.last_seq,
        report.last_hash
    );
    if !report.ok {
        return Err(format!("audit log does not verify: {:?}", report.problem).into());
    }
    Ok(())
}

fn print_tree(node: &ambit::DelegationNode, depth: usize) {
    let pad = "  ".repeat(depth);
    match node.agent() {
        Some(a) => {
            println!("{pad}{} task={} scopes={:?} expires_at={}", node.uid(), a.task(), a.scopes(), a.expires_at());
        }
        None => println!("{pad}{}", node.uid()),
    }
    for child in node.children() {
        print_tree(child, depth + 1);
    }
}

fn tenant(id: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("tenant".into(), json!({ "__entity": { "type": "Helpdesk::Tenant", "id": id } }));
    m
}

fn show(authz: &Authorizer, what: &str, request: &Request) -> Result<Decision, ambit::Error> {
    let d = authz.authorize(request)?;
    let verdict = if d.allowed() { "ALLOW" } else { "DENY " };
    println!("{verdict} {what}");
    println!("      chain:   {}", d.chain().join(" -> "));
    if let Some(cause) = d.deny_cause() {
        let hop = d.deny_hop().and_then(|i| d.chain().get(i)).map_or(String::new(), |h| format!(" at {h}"));
        println!("      cause:   {cause}{hop}");
    }
    if !d.reasons().is_empty() {
        println!("      reasons: {}", d.reasons().join(", "));
    }
    println!("      policy:  {}  decision {}\n", d.policy_version(), d.decision_id());
    Ok(d)
}

fn copy_fixture(from: &Path) -> std::io::Result<PathBuf> {
    let to = std::env::temp_dir().join(format!("ambit-demo-{}", std::process::id()));
    std::fs::create_dir_all(&to)?;
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, to.join(name))?;
        }
    }
    Ok(to)
}
