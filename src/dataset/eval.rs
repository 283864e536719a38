//! Evaluation on the held-out split, with the reference study's metrics
//! (BLEU, exact match, syntactic correctness, IO equivalence) plus what
//! matters to us: how often a verified improving rewrite was found, cycles
//! saved, and time per block; and a taxonomy of rejected proposals.

use super::Example;
use crate::asm::Insn;
use crate::cost::{Cost, CostModel};
use crate::pipeline::search::{judge, Placement, Trial, Verify};
use crate::propose::{Proposer, Window};
use crate::prove::{ProofConfig, Prover};
use crate::semantics::effects;
use crate::verify::{Verdict, Verifier};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// One proposer's answer to one example.
pub struct Answer {
    /// `None`: no parsable answer (unfinished: cut at the token budget or
    /// stopped by the grammar).
    pub rewrite: Option<Option<Vec<Insn>>>,
    /// The answer as text (the model's as decoded; the rule proposer's
    /// rewrite), kept for `eval --dump`.
    pub raw: String,
    /// Why the answer did not parse (unfinished, unparsable), for `--dump`.
    pub error: Option<String>,
}

/// A row of the table.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Row {
    pub name: String,
    pub examples: usize,
    pub bleu: f64,
    pub exact_match: f64,
    pub syntactic: f64,
    pub io_equivalent: f64,
    pub improved: f64,
    pub cycles_saved: f64,
    pub seconds_per_block: f64,
    pub rejected: BTreeMap<String, usize>,
    /// Estimated cycles saved by a verified improving rewrite, per example
    /// (0 where none): to count the examples where one proposer beats another.
    pub saved_each: Vec<f64>,
    /// What became of each example's answer: `no change`, `equivalent`,
    /// `improved`, `unfinished` or the rejection cause (`classify`, where
    /// `not an instruction` is a line the assembler rejects).
    pub outcome_each: Vec<&'static str>,
    /// Each example's `Answer::raw` and `Answer::error`, for `eval --dump`.
    #[serde(skip)]
    pub answer_each: Vec<String>,
    #[serde(skip)]
    pub error_each: Vec<Option<String>>,
}

fn tokens(lines: &[String]) -> Vec<String> {
    lines
        .join(" ; ")
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Corpus BLEU-4 with brevity penalty (add-one smoothing for short texts).
pub fn bleu(pairs: &[(Vec<String>, Vec<String>)]) -> f64 {
    let (mut hyp_len, mut ref_len) = (0usize, 0usize);
    let mut matches = [0usize; 4];
    let mut totals = [0usize; 4];
    for (h, r) in pairs {
        hyp_len += h.len();
        ref_len += r.len();
        for n in 1..=4 {
            let grams = |v: &Vec<String>| {
                let mut m: BTreeMap<Vec<String>, usize> = BTreeMap::new();
                for w in v.windows(n) {
                    *m.entry(w.to_vec()).or_default() += 1;
                }
                m
            };
            let (hg, rg) = (grams(h), grams(r));
            totals[n - 1] += h.len().saturating_sub(n - 1);
            matches[n - 1] += hg
                .iter()
                .map(|(g, c)| (*c).min(*rg.get(g).unwrap_or(&0)))
                .sum::<usize>();
        }
    }
    if hyp_len == 0 {
        return 0.0;
    }
    let logp: f64 = (0..4)
        .map(|i| ((matches[i] as f64 + 1.0) / (totals[i] as f64 + 1.0)).ln())
        .sum::<f64>()
        / 4.0;
    let bp = if hyp_len > ref_len {
        1.0
    } else {
        (1.0 - ref_len as f64 / hyp_len as f64).exp()
    };
    100.0 * bp * logp.exp()
}

/// Why a rejected proposal was wrong, from the validator's counterexample.
pub fn classify(v: &Verdict, window: &[Insn], cand: &[Insn]) -> &'static str {
    let d = match v {
        Verdict::Counterexample { description } => description.as_str(),
        Verdict::Invalid { .. } => return "not an instruction",
        Verdict::Unsupported { .. } => return "unsupported",
        Verdict::Equivalent { .. } => return "none",
    };
    let what = d.split("; ").nth(1).unwrap_or(d);
    if what.starts_with("exit differs") || what.starts_with("NZCV") {
        return "flags changed";
    }
    if what.contains("candidate does not write") {
        return "dropped side effect";
    }
    if what.starts_with("memory") {
        return "memory aliasing";
    }
    let reg = what.split_whitespace().next().unwrap_or("");
    if let Ok(loc) = reg.parse::<crate::semantics::Loc>() {
        let wrote = |b: &[Insn]| b.iter().any(|i| effects(i).writes.contains(loc));
        if wrote(window) && !wrote(cand) {
            return "liveness violated";
        }
    }
    "wrong register or value"
}

/// Evaluate answers (one per example) against the examples' targets.
pub fn score(
    name: &str,
    examples: &[&Example],
    answers: &[Answer],
    seconds: f64,
    verifier: &Verifier,
    cost: &dyn CostModel,
) -> anyhow::Result<Row> {
    let windows: Vec<Window> = examples.iter().map(|e| e.window()).collect();
    let mut row = Row {
        name: name.into(),
        examples: examples.len(),
        saved_each: vec![0.0; examples.len()],
        outcome_each: vec!["unfinished"; examples.len()],
        answer_each: answers.iter().map(|a| a.raw.clone()).collect(),
        error_each: answers.iter().map(|a| a.error.clone()).collect(),
        ..Row::default()
    };
    let mut bleu_pairs = Vec::new();
    let (mut em, mut syn, mut io, mut improved) = (0usize, 0usize, 0usize, 0usize);
    let mut saved = 0.0;
    // Candidates that change something are verified and costed in one batch.
    let mut jobs = Vec::new();
    let mut job_of = Vec::new();
    for (k, a) in answers.iter().enumerate() {
        let target = examples[k]
            .target
            .clone()
            .unwrap_or_else(|| examples[k].window.clone());
        match &a.rewrite {
            None => bleu_pairs.push((Vec::new(), tokens(&target))),
            Some(r) => {
                syn += 1;
                let out: Vec<String> = match r {
                    Some(insns) => insns.iter().map(|i| i.to_string()).collect(),
                    None => examples[k].window.clone(),
                };
                if r.as_ref().map(|_| out.clone()) == examples[k].target
                    || (r.is_none() && examples[k].target.is_none())
                {
                    em += 1;
                }
                bleu_pairs.push((tokens(&out), tokens(&target)));
                match r {
                    Some(insns) => {
                        job_of.push(k);
                        jobs.push((k, insns.clone()));
                    }
                    None => {
                        io += 1; // "no change" is trivially equivalent
                        row.outcome_each[k] = "no change";
                    }
                }
            }
        }
    }
    // Judged as the search judges its candidates (same acceptance rule),
    // except that every answer is verified, not only the faster ones, and
    // by the tests alone (as evaluation always was: no proofs).
    let trials: Vec<Trial> = jobs
        .iter()
        .map(|(k, c)| Trial {
            window: &windows[*k],
            candidate: c,
            current: Cost {
                cycles: examples[*k].cycles_before,
                instructions: windows[*k].insns.len(),
            },
            placement: Placement::Free,
        })
        .collect();
    let tests_only = ProofConfig {
        timeout_ms: 0,
        require: false,
    };
    let prover = Prover::new(tests_only.timeout_ms);
    let judged = judge(verifier, &prover, cost, &trials, Verify::All)?;
    for (((k, cand), t), j) in jobs.iter().zip(&trials).zip(&judged) {
        let v = j.verdict().expect("every answer verified");
        if v.is_equivalent() {
            io += 1;
            row.outcome_each[*k] = "equivalent";
            if j.accepts(&t.current, &tests_only) {
                let c = j.cost.expect("accepted, so costed");
                improved += 1;
                saved += t.current.cycles - c.cycles;
                row.saved_each[*k] = t.current.cycles - c.cycles;
                row.outcome_each[*k] = "improved";
            }
        } else {
            let cause = classify(v, &windows[*k].insns, cand);
            row.outcome_each[*k] = cause;
            *row.rejected.entry(cause.to_string()).or_default() += 1;
        }
    }
    let unfinished = answers.iter().filter(|a| a.rewrite.is_none()).count();
    if unfinished > 0 {
        *row.rejected.entry("unfinished".into()).or_default() += unfinished;
    }
    let n = examples.len().max(1) as f64;
    row.bleu = bleu(&bleu_pairs);
    row.exact_match = 100.0 * em as f64 / n;
    row.syntactic = 100.0 * syn as f64 / n;
    row.io_equivalent = 100.0 * io as f64 / n;
    row.improved = 100.0 * improved as f64 / n;
    row.cycles_saved = saved / n;
    row.seconds_per_block = seconds / n;
    Ok(row)
}

/// Answers of a proposer: its first candidate, or "no change".
pub fn answers_of(p: &dyn Proposer, examples: &[&Example]) -> anyhow::Result<(Vec<Answer>, f64)> {
    let windows: Vec<Window> = examples.iter().map(|e| e.window()).collect();
    let t = Instant::now();
    let cands = p.propose(&windows)?;
    let secs = t.elapsed().as_secs_f64();
    let answers = cands
        .into_iter()
        .map(|c| {
            let rewrite = c.into_iter().next().map(|c| c.insns);
            Answer {
                raw: match &rewrite {
                    Some(insns) => insns.iter().map(|i| format!("{i}\n")).collect(),
                    None => "no change\n".into(),
                },
                rewrite: Some(rewrite),
                error: None,
            }
        })
        .collect();
    Ok((answers, secs))
}

/// Every row's answer to every example with its outcome, one JSON object
/// per line (for `eval --dump`).
pub fn dump_jsonl(rows: &[Row], examples: &[&Example]) -> String {
    let mut out = String::new();
    for row in rows {
        for (k, e) in examples.iter().enumerate() {
            let line = serde_json::json!({
                "row": row.name,
                "subset": e.subset,
                "program": e.program,
                "window": e.window,
                "live_out": e.live_out,
                "target": e.target,
                "answer": row.answer_each.get(k),
                "error": row.error_each.get(k),
                "outcome": row.outcome_each.get(k),
                "cycles_saved": row.saved_each.get(k),
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
    }
    out
}

/// Examples where `row` found a verified improvement that saves more
/// estimated cycles than what `other` found (including where `other` found
/// none; ties by instruction count are not counted).
pub fn beats(row: &Row, other: &Row) -> usize {
    row.saved_each
        .iter()
        .zip(&other.saved_each)
        .filter(|(a, b)| **a > **b + 1e-9)
        .count()
}

/// The table as Markdown.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| proposer | n | BLEU | exact match % | syntactic % | IO-equivalent % | verified improvement % | est. cycles saved / block | better than rules (blocks) | s / block |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let rules = rows.iter().find(|r| r.name == "rule proposer");
    for r in rows {
        let better = match rules {
            Some(rl) if rl.name != r.name => beats(r, rl).to_string(),
            _ => "–".into(),
        };
        s.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.3} | {better} | {:.3} |\n",
            r.name,
            r.examples,
            r.bleu,
            r.exact_match,
            r.syntactic,
            r.io_equivalent,
            r.improved,
            r.cycles_saved,
            r.seconds_per_block
        ));
    }
    s.push_str("\n\"better than rules\": blocks where the proposer's verified rewrite saves more estimated cycles than the rule proposer's (one proposal each, no fixed point).\n");
    s.push_str("\nRejected proposals by cause:\n\n| proposer | cause | count |\n|---|---|---|\n");
    for r in rows {
        for (k, v) in &r.rejected {
            s.push_str(&format!("| {} | {k} | {v} |\n", r.name));
        }
    }
    s
}

/// The teacher's saving on an example: what its verified target saves, if
/// it is an improvement (`None`: no improvement is known there).
fn teacher_saving(e: &Example) -> Option<f64> {
    e.improves().then_some(e.cycles_before - e.cycles_after)
}

/// Metrics that a "no change" answer cannot game (issue [distill]): on the
/// examples where the dataset's teacher (rules, synth) knows a verified
/// improvement, how often each row finds one, matches or beats the
/// teacher's saving, proposes something wrong, or gives no answer; and on
/// the others, how often a proposal fails verification.
pub fn improvable_markdown(rows: &[Row], examples: &[&Example]) -> String {
    let known: Vec<Option<f64>> = examples.iter().map(|e| teacher_saving(e)).collect();
    let improvable = known.iter().flatten().count();
    let others = known.len() - improvable;
    let pct = |k: usize, n: usize| 100.0 * k as f64 / n.max(1) as f64;
    let mut s = format!(
        "\nOn the {improvable} examples with a known verified improvement (the teacher's target), and the {others} without:\n\n\
         | proposer | improvement found % | teacher matched or beaten % | wrong % | not an answer % | no change % | wrong where none is known % |\n|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let (mut found, mut matched, mut wrong, mut none, mut same, mut wrong_other) =
            (0, 0, 0, 0, 0, 0);
        for (k, teacher) in known.iter().enumerate() {
            let outcome = r.outcome_each.get(k).copied().unwrap_or("unfinished");
            let no_answer = matches!(outcome, "unfinished" | "not an instruction");
            // Rejected by the validator; `unsupported` (it could not run the
            // block) is neither wrong nor right.
            let is_wrong = !no_answer
                && !matches!(
                    outcome,
                    "improved" | "equivalent" | "no change" | "unsupported"
                );
            let Some(t) = teacher else {
                wrong_other += is_wrong as usize;
                continue;
            };
            found += (outcome == "improved") as usize;
            matched += (outcome == "improved" && r.saved_each[k] >= t - 1e-9) as usize;
            wrong += is_wrong as usize;
            none += no_answer as usize;
            same += (outcome == "no change") as usize;
        }
        s.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            r.name,
            pct(found, improvable),
            pct(matched, improvable),
            pct(wrong, improvable),
            pct(none, improvable),
            pct(same, improvable),
            pct(wrong_other, others),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, saved: &[f64]) -> Row {
        Row {
            name: name.into(),
            saved_each: saved.to_vec(),
            ..Row::default()
        }
    }

    #[test]
    fn beats_counts_only_strictly_larger_savings() {
        let rules = row("rule proposer", &[0.0, 0.5, 0.5, 0.0]);
        let llm = row("llm", &[0.3, 0.5, 0.2, 0.0]);
        // Block 0: found where the rules found nothing; block 1 ties; block 2 worse.
        assert_eq!(beats(&llm, &rules), 1);
        assert_eq!(beats(&rules, &llm), 1);
        let md = markdown(&[llm, rules]);
        assert!(md.contains("| llm | 0 |"), "{md}");
        assert!(
            md.lines()
                .any(|l| l.starts_with("| llm ") && l.contains(" | 1 | ")),
            "{md}"
        );
    }

    fn example(target: Option<&str>, before: f64, after: f64) -> Example {
        Example {
            program: "p".into(),
            split: "test".into(),
            subset: "general".into(),
            origin: "synth".into(),
            window: vec!["mov x0, x1".into(), "add x0, x0, #1".into()],
            live_out: "x0".into(),
            target: target.map(|t| vec![t.to_string()]),
            trace: String::new(),
            cycles_before: before,
            cycles_after: after,
        }
    }

    #[test]
    fn no_change_scores_nothing_where_an_improvement_is_known() {
        let ex = [
            example(Some("add x0, x1, #1"), 2.0, 1.0),
            example(Some("add x0, x1, #1"), 2.0, 1.0),
            example(None, 1.0, 1.0),
        ];
        let refs: Vec<&Example> = ex.iter().collect();
        let mut r = row("llm", &[1.0, 0.0, 0.0]);
        r.outcome_each = vec!["improved", "no change", "wrong register or value"];
        let md = improvable_markdown(&[r], &refs);
        // One of two improvable examples found and matched; the third, with
        // no known improvement, got a wrong proposal.
        assert!(
            md.contains("| llm | 50.0 | 50.0 | 0.0 | 0.0 | 50.0 | 100.0 |"),
            "{md}"
        );
    }
}
