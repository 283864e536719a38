//! Reading `llvm-mca`'s text report: per-region summaries and assembler
//! errors.

use std::collections::HashMap;

/// The summary numbers of one code region.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegionSummary {
    pub iterations: u64,
    pub instructions: u64,
    pub total_cycles: u64,
}

/// Region summaries by region name, from the default (summary) view.
pub fn parse_regions(report: &str) -> anyhow::Result<HashMap<String, RegionSummary>> {
    let mut out = HashMap::new();
    let mut current: Option<(String, [Option<u64>; 3])> = None;
    let finish = |cur: Option<(String, [Option<u64>; 3])>,
                  out: &mut HashMap<String, RegionSummary>| {
        if let Some((name, [Some(iterations), Some(instructions), Some(total_cycles)])) = cur {
            out.insert(
                name,
                RegionSummary {
                    iterations,
                    instructions,
                    total_cycles,
                },
            );
        }
    };
    for line in report.lines() {
        let line = line.trim();
        if let Some(name) = region_header(line) {
            finish(current.take(), &mut out);
            current = Some((name.to_string(), [None; 3]));
            continue;
        }
        let Some((_, fields)) = current.as_mut() else {
            continue;
        };
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "Iterations" => 0,
            "Instructions" => 1,
            "Total Cycles" => 2,
            _ => continue,
        };
        if fields[slot].is_none() {
            fields[slot] = Some(
                value
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("llvm-mca report: bad number in `{line}`"))?,
            );
        }
    }
    finish(current.take(), &mut out);
    Ok(out)
}

/// `[3] Code Region - b7` gives `b7`.
fn region_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let (idx, rest) = rest.split_once(']')?;
    if idx.is_empty() || !idx.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(rest.trim().strip_prefix("Code Region -")?.trim())
}

/// One assembler diagnostic: 1-based line of the input, and the message.
#[derive(Clone, Debug, PartialEq)]
pub struct InputError {
    pub line: usize,
    pub message: String,
}

/// The `FILE:LINE:COL: error: MESSAGE` diagnostics in `stderr`.
pub fn parse_errors(stderr: &str, input_path: &str) -> Vec<InputError> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(input_path)?.strip_prefix(':')?;
            let mut parts = rest.splitn(3, ':');
            let line = parts.next()?.trim().parse().ok()?;
            let _col = parts.next()?;
            let message = parts
                .next()?
                .trim()
                .strip_prefix("error:")?
                .trim()
                .to_string();
            Some(InputError { line, message })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
[0] Code Region - b0

Iterations:        100
Instructions:      200
Total Cycles:      404
Total uOps:        200

[1] Code Region - b3

Iterations:        100
Instructions:      100
Total Cycles:      103
";

    #[test]
    fn regions_parse() {
        let r = parse_regions(REPORT).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r["b0"],
            RegionSummary {
                iterations: 100,
                instructions: 200,
                total_cycles: 404
            }
        );
        assert_eq!(r["b3"].total_cycles, 103);
    }

    #[test]
    fn errors_parse() {
        let e = parse_errors(
            "/tmp/x.s:5:1: error: unrecognized instruction mnemonic\nfoo x0\n^\nerror: Assembly input parsing had errors\n",
            "/tmp/x.s",
        );
        assert_eq!(
            e,
            vec![InputError {
                line: 5,
                message: "unrecognized instruction mnemonic".into()
            }]
        );
    }
}
