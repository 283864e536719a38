//! Proof answers behind a cache keyed by the query's text, as Souper and
//! Alive2 keep theirs: the key is the SMT-LIB the semantics produced, so a
//! change to the semantics (a fixed bug) changes the key, and an answer
//! proved under old semantics is never served.
//!
//! Only definite answers are kept (a proof, a counterexample): a timeout
//! depends on the machine and its load, and a later run may do better.

use super::Proof;
use crate::asm::Insn;
use crate::cache::{Cache, CacheKey, KeyBuilder};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Answers of this process (queries repeat across windows and rounds).
fn memo() -> &'static Mutex<HashMap<CacheKey, Proof>> {
    static MEMO: OnceLock<Mutex<HashMap<CacheKey, Proof>>> = OnceLock::new();
    MEMO.get_or_init(Default::default)
}

const NAMESPACE: &str = "proofs";

/// The cache: this process's answers, then the on-disk cache when given.
#[derive(Clone, Debug, Default)]
pub struct ProofCache {
    pub disk: Option<Cache>,
}

impl ProofCache {
    /// The key of a query. The original's text is part of it because a
    /// counterexample is described with the registers the original names.
    pub fn key(query: &str, original: &[Insn]) -> CacheKey {
        let text: Vec<String> = original.iter().map(|i| i.to_string()).collect();
        KeyBuilder::new("proof-1")
            .field("query", query)
            .field("original", text.join("\n"))
            .finish()
    }

    pub fn get(&self, key: &CacheKey) -> Option<Proof> {
        if let Some(p) = memo().lock().ok()?.get(key) {
            return Some(p.clone());
        }
        let p: Proof = self.disk.as_ref()?.get(NAMESPACE, key)?;
        if let Ok(mut m) = memo().lock() {
            m.insert(key.clone(), p.clone());
        }
        Some(p)
    }

    pub fn put(&self, key: &CacheKey, p: &Proof) {
        if matches!(p, Proof::Unknown { .. }) {
            return;
        }
        if let Ok(mut m) = memo().lock() {
            m.insert(key.clone(), p.clone());
        }
        if let Some(d) = &self.disk {
            // A cache that cannot be written only costs time.
            let _ = d.put(NAMESPACE, key, p);
        }
    }
}
