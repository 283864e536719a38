//! The rewrite database: what a search found (or that it found nothing) for
//! a sub-window's canonical form, kept in the cache directory so the same
//! shape anywhere later is answered without a search (Bansal & Aiken's
//! peephole superoptimizer keeps one too), and exportable as rules.

use crate::cache::{Cache, CacheKey, KeyBuilder};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Cache namespace of the database.
pub const NAMESPACE: &str = "synth-db";

/// One database entry.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Learned {
    /// The sequences found, in canonical registers (`x0`… by first use,
    /// the branch target written `L`); empty when the search found none.
    pub found: Vec<Vec<String>>,
    /// The first instance met: its instructions in real registers ...
    pub original: Vec<String>,
    /// ... what was live after it ...
    pub live_out: String,
    /// ... and its replacements in the same registers (for `synth export`).
    pub replacements: Vec<Vec<String>>,
}

/// Answers remembered in memory per run, at most (then it starts over):
/// each holds only the sequences found, ~100 bytes.
const MEMORY_ENTRIES: usize = 1 << 18;

/// The database over a cache directory (none: this run's answers only).
#[derive(Clone, Debug, Default)]
pub struct RewriteDb {
    cache: Option<Cache>,
    /// This run's answers, with or without a cache directory: a shape met
    /// again in the same run, or by a window's second pass, is not searched
    /// again (the second pass reaches further only because of this).
    memory: Arc<Mutex<HashMap<String, Vec<Vec<String>>>>>,
}

impl RewriteDb {
    pub fn new(cache: Option<Cache>) -> Self {
        RewriteDb {
            cache,
            memory: Default::default(),
        }
    }

    /// The key of a canonical problem searched at one length with one budget.
    pub fn key(canonical: &str, len: usize, budget: &str) -> CacheKey {
        KeyBuilder::new("synth-db-1")
            .field("problem", canonical)
            .field("len", len.to_string())
            .field("budget", budget)
            .finish()
    }

    pub fn get(&self, key: &CacheKey) -> Option<Learned> {
        let remembered = self
            .memory
            .lock()
            .expect("db memory")
            .get(key.as_str())
            .cloned();
        match remembered {
            Some(found) => Some(Learned {
                found,
                ..Learned::default()
            }),
            None => self.cache.as_ref()?.get(NAMESPACE, key),
        }
    }

    /// Remember an answer; a cache that cannot be written only costs speed.
    pub fn put(&self, key: &CacheKey, value: &Learned) {
        let mut memory = self.memory.lock().expect("db memory");
        if memory.len() >= MEMORY_ENTRIES {
            memory.clear();
        }
        memory.insert(key.as_str().to_string(), value.found.clone());
        drop(memory);
        if let Some(c) = &self.cache {
            let _ = c.put(NAMESPACE, key, value);
        }
    }

    /// Every entry with a rewrite, for export.
    pub fn entries(&self) -> Vec<Learned> {
        let Some(c) = &self.cache else {
            return Vec::new();
        };
        let mut out: Vec<Learned> = walkdir::WalkDir::new(c.dir().join(NAMESPACE))
            .into_iter()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .filter(|l: &Learned| !l.replacements.is_empty())
            .collect();
        // Per instance, the entry with the shortest rewrite first.
        let shortest = |l: &Learned| l.replacements.iter().map(Vec::len).min().unwrap_or(0);
        out.sort_by(|a, b| {
            (&a.original, &a.live_out, shortest(a)).cmp(&(&b.original, &b.live_out, shortest(b)))
        });
        out.dedup_by(|a, b| a.original == b.original && a.live_out == b.live_out);
        out
    }
}
