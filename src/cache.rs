//! A content-addressed on-disk cache.
//!
//! Expensive answers (LLM proposals, validator verdicts, file hashes) are
//! stored under a key that hashes *everything* the answer depends on, so a
//! stale entry can never be returned: when an input changes, the key changes.
//! Entries are JSON files written atomically (temporary file + rename), so a
//! crash or a concurrent run never leaves a half-written entry behind; an
//! unreadable entry is treated as a miss.
//!
//! Layout: `<dir>/<namespace>/<first two hex digits>/<rest of the key>.json`.
//! The directory is `$PEEPHOLE_CACHE_DIR`, else `$XDG_CACHE_HOME/peephole`,
//! else `~/.cache/peephole`.

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Environment variable that overrides the cache directory (tests point it at
/// a temporary directory).
pub const CACHE_DIR_ENV: &str = "PEEPHOLE_CACHE_DIR";

/// A hex SHA-256 naming one cache entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds a [`CacheKey`] from named fields. Each field is length-prefixed, so
/// `("ab", "c")` and `("a", "bc")` give different keys.
#[derive(Clone)]
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    /// `kind` names what is being cached (and its schema version), so that
    /// different kinds of entries never share a key.
    pub fn new(kind: &str) -> Self {
        KeyBuilder(Sha256::new()).field("kind", kind)
    }

    pub fn field(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        let value = value.as_ref();
        for part in [name.as_bytes(), value] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
        self
    }

    pub fn finish(self) -> CacheKey {
        CacheKey(hex(&self.0.finalize()))
    }
}

/// The on-disk cache rooted at one directory.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The user's cache directory (see the module docs). Created lazily on
    /// the first write.
    pub fn open_default() -> Result<Cache> {
        Ok(Cache::at(default_dir()?))
    }

    pub fn at(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, namespace: &str, key: &CacheKey) -> Result<PathBuf> {
        if namespace.is_empty()
            || !namespace
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            bail!("cache namespace `{namespace}` must be lower-case letters, digits and `-`");
        }
        let k = key.as_str();
        Ok(self
            .dir
            .join(namespace)
            .join(&k[..2])
            .join(format!("{}.json", &k[2..])))
    }

    /// The stored value, or `None` when absent or unreadable (a corrupt entry
    /// is a miss, never an error: it will be overwritten).
    pub fn get<T: DeserializeOwned>(&self, namespace: &str, key: &CacheKey) -> Option<T> {
        let path = self.entry_path(namespace, key).ok()?;
        let bytes = fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Store `value` atomically.
    pub fn put<T: Serialize>(&self, namespace: &str, key: &CacheKey, value: &T) -> Result<()> {
        let path = self.entry_path(namespace, key)?;
        let bytes = serde_json::to_vec(value).context("serializing a cache entry")?;
        write_atomically(&path, &bytes)
            .with_context(|| format!("writing cache entry {}", path.display()))
    }

    /// SHA-256 of a file, remembered by (canonical path, size, mtime) so that
    /// large files (models) are hashed once, not on every run.
    pub fn file_sha256(&self, path: &Path) -> Result<String> {
        let canon =
            fs::canonicalize(path).with_context(|| format!("reading {}", path.display()))?;
        let meta = fs::metadata(&canon).with_context(|| format!("reading {}", canon.display()))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let key = KeyBuilder::new("file-sha256/1")
            .field("path", canon.as_os_str().as_encoded_bytes())
            .field("size", meta.len().to_string())
            .field("mtime", mtime.to_string())
            .finish();
        if let Some(h) = self.get::<String>("file-sha256", &key) {
            return Ok(h);
        }
        let h = sha256_file(&canon)?;
        // A cache that cannot be written only costs time: the hash is right.
        let _ = self.put("file-sha256", &key, &h);
        Ok(h)
    }
}

fn default_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os(CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("peephole"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".cache").join("peephole")),
        None => bail!("no cache directory: set {CACHE_DIR_ENV}, XDG_CACHE_HOME or HOME"),
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory and
/// a rename, so readers see either the old content or the new, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("path has no parent directory")?;
    fs::create_dir_all(dir)?;
    crate::report::write_atomic(path, bytes)
}

/// SHA-256 of a file's content, as lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_fields() {
        let a = KeyBuilder::new("t")
            .field("a", "ab")
            .field("b", "c")
            .finish();
        let b = KeyBuilder::new("t")
            .field("a", "a")
            .field("b", "bc")
            .finish();
        let c = KeyBuilder::new("t")
            .field("a", "ab")
            .field("b", "c")
            .finish();
        assert_ne!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.as_str().len(), 64);
    }

    #[test]
    fn round_trip_and_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let k = KeyBuilder::new("t").field("x", "1").finish();
        assert_eq!(cache.get::<Vec<String>>("proposals", &k), None);
        cache
            .put("proposals", &k, &vec!["mov x0, x1".to_string()])
            .unwrap();
        assert_eq!(
            cache.get::<Vec<String>>("proposals", &k),
            Some(vec!["mov x0, x1".to_string()])
        );
        // No temporary files left behind.
        let entry = cache.entry_path("proposals", &k).unwrap();
        let siblings = fs::read_dir(entry.parent().unwrap()).unwrap().count();
        assert_eq!(siblings, 1);
        assert!(cache.put("Bad/ns", &k, &1).is_err());
    }

    #[test]
    fn corrupt_entry_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let k = KeyBuilder::new("t").finish();
        let p = cache.entry_path("v", &k).unwrap();
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, b"{not json").unwrap();
        assert_eq!(cache.get::<u32>("v", &k), None);
    }

    #[test]
    fn file_hash_is_remembered_and_tracks_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("c"));
        let f = dir.path().join("f.bin");
        fs::write(&f, b"abc").unwrap();
        let h = cache.file_sha256(&f).unwrap();
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(cache.file_sha256(&f).unwrap(), h);
        fs::write(&f, b"abcd").unwrap();
        assert_ne!(cache.file_sha256(&f).unwrap(), h);
    }
}
