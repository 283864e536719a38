//! `peephole eval --answers ... --dump ...`: completions made elsewhere are
//! scored by the validator and every answer's outcome is written out, with
//! the two kinds of bad answer told apart (cut short vs not an instruction).

use std::process::Command;

/// `peephole eval` on `examples.jsonl` and `answers.jsonl` in `dir`, with
/// `extra` arguments: its output, and the dump of every answer's outcome.
fn eval_answers(dir: &std::path::Path, extra: &[&str]) -> (std::process::Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_peephole"))
        .current_dir(dir)
        .args([
            "eval",
            "--examples",
            "examples.jsonl",
            "--answers",
            "answers.jsonl",
            "--dump",
            "dump.jsonl",
            "--tests",
            "200",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = std::fs::read_to_string(dir.join("dump.jsonl")).unwrap();
    (out, dump)
}

#[test]
fn answers_are_scored_and_dumped_with_their_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let example = serde_json::json!({
        "program": "t", "split": "test", "subset": "store-reload", "origin": "augment",
        "window": ["str w0, [sp, 12]", "ldr w0, [sp, 12]", "add w0, w0, 1"],
        "live_out": "x0,sp,mem",
        "target": ["str w0, [sp, 12]", "add w0, w0, 1"],
        "trace": "", "cycles_before": 5.0, "cycles_after": 1.0,
    });
    let examples: String = (0..4).map(|_| format!("{example}\n")).collect();
    std::fs::write(dir.path().join("examples.jsonl"), examples).unwrap();
    let answer = |id: usize, completion: &str| {
        serde_json::json!({"row": "ft-direct", "prompt_id": id.to_string(),
                           "completion": completion, "seconds": 0.1})
        .to_string()
            + "\n"
    };
    let answers = [
        answer(0, "rewrite:\nstr w0, [sp, 12]\nadd w0, w0, 1\n"),
        answer(1, "rewrite:\nstr w0, [sp, 12]\nmov w0, w0, 1\n"),
        answer(2, "rewrite:\nstr w0, [sp, 12]\nadd w0, w0, 2\n"),
        answer(3, "rewrite:\nstr w0, [sp"),
    ]
    .concat();
    std::fs::write(dir.path().join("answers.jsonl"), answers).unwrap();
    let (out, dump) = eval_answers(dir.path(), &[]);
    let outcomes: Vec<String> = dump
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["row"] == "fine-tuned, direct")
        .map(|v| v["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes.len(), 4, "{dump}");
    assert!(
        outcomes[0] == "improved" || outcomes[0] == "equivalent",
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], "not an instruction");
    assert_eq!(outcomes[2], "wrong register or value");
    assert_eq!(outcomes[3], "unfinished");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("| fine-tuned, direct | 4 |"), "{table}");
}

#[test]
fn repair_puts_a_field_right_and_scores_both_rows() {
    let dir = tempfile::tempdir().unwrap();
    let example = serde_json::json!({
        "program": "t", "split": "test", "subset": "general", "origin": "synth",
        "window": ["lsl x8, x8, #28", "asr x8, x8, #46", "sxtw x0, w8"],
        "live_out": "x0,x8,sp",
        "target": ["sbfx x8, x8, #18, #18", "sxtw x0, w8"],
        "trace": "", "cycles_before": 3.0, "cycles_after": 2.0,
    });
    std::fs::write(dir.path().join("examples.jsonl"), format!("{example}\n")).unwrap();
    // One bit-field field off, as the fine-tuned model answered it.
    let answer = serde_json::json!({"row": "ft-direct", "prompt_id": "0",
        "completion": "rewrite:\nsbfx x8, x8, #21, #18\nsxtw x0, w8\n", "seconds": 0.1});
    std::fs::write(dir.path().join("answers.jsonl"), format!("{answer}\n")).unwrap();
    let (_, dump) = eval_answers(dir.path(), &["--repair"]);
    let outcome = |row: &str| -> String {
        dump.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["row"] == row)
            .map(|v| v["outcome"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        outcome("fine-tuned, direct"),
        "wrong register or value",
        "{dump}"
    );
    assert_eq!(
        outcome("fine-tuned, direct, repaired by search"),
        "improved",
        "{dump}"
    );
}
