//! Unified diffs of patched files.

use similar::TextDiff;

/// A unified diff from `before` to `after`, labelled with `name` on both sides
/// (`a/NAME`, `b/NAME`, as git shows it). Empty when nothing changed.
pub fn unified(name: &str, before: &str, after: &str) -> String {
    if before == after {
        return String::new();
    }
    TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn diff_shows_changed_lines_only() {
        let d = super::unified("f.s", "a\nb\nc\n", "a\nB\nc\n");
        assert!(d.starts_with("--- a/f.s\n+++ b/f.s\n"), "{d}");
        assert!(d.contains("-b\n+B\n"));
        assert_eq!(super::unified("f.s", "x", "x"), "");
    }
}
