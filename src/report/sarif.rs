//! SARIF 2.1.0 output for code-scanning UIs: one result per verified rewrite,
//! saying whether it was proved or only tested.

use crate::patch::Rewrite;
use crate::prove::Evidence;
use serde_json::{json, Value};

/// A SARIF log for rewrites found in each file.
pub fn log(files: &[(String, Vec<Rewrite>)]) -> Value {
    let mut results = Vec::new();
    for (path, rewrites) in files {
        for r in rewrites {
            let first = *r.lines.first().unwrap_or(&1);
            let last = *r.lines.last().unwrap_or(&first);
            results.push(json!({
                "ruleId": "verified-peephole",
                "level": "note",
                "message": { "text": format!(
                    "Verified faster equivalent ({} tests, {}; est. {:.2} -> {:.2} cycles, by {}): {}",
                    r.tests, r.evidence, r.cycles_before, r.cycles_after, r.proposer, r.after.join("; ")) },
                "locations": [{ "physicalLocation": {
                    "artifactLocation": { "uri": path },
                    "region": { "startLine": first, "endLine": last }
                }}],
                "properties": {
                    "function": r.function, "before": r.before, "after": r.after,
                    "cycles_before": r.cycles_before, "cycles_after": r.cycles_after,
                    "evidence": if r.evidence.is_proved() { "proved" } else { "tested" },
                    "not_proved": match &r.evidence {
                        Evidence::Tested { not_proved } => Some(not_proved),
                        Evidence::Proved => None,
                    },
                }
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "peephole",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": [{
                    "id": "verified-peephole",
                    "shortDescription": { "text": "A faster instruction sequence, verified equivalent by differential execution and, where it says proved, by an SMT proof" }
                }]
            }},
            "results": results
        }]
    })
}
