//! Merging a LoRA adapter into a Q4_0 copy of the base model, once per
//! (model, adapter) pair, kept in the cache directory.
//!
//! Why: llama.cpp applies an adapter at run time as two extra matrix
//! products per adapted weight (7 per layer), which on a 135M model costs a
//! third of the decoding speed; and Q4_0, unlike the base's Q4_1, has
//! llama.cpp's repacked AVX2/NEON kernels, single-token and batched. Measured
//! with `cargo bench --bench llm_throughput` on 2 cores (raw decoding,
//! tokens/s, 1 and 16 sequences): base Q4_1 + run-time adapter 76 / 192,
//! merged Q4_1 116 / 186, merged Q8_0 103 / 225, merged Q4_0 169 / 322.
//!
//! The merged weight is `W + (alpha / rank) · B·A`, as llama.cpp computes the
//! adapter's contribution (`llama-adapter.cpp`), then quantized to Q4_0 as
//! ggml does (candle's port of `quantize_row_q4_0_ref`). Tensors the adapter
//! does not touch (norms, the Q8_0 embedding) are copied unchanged.
//! Requantizing costs a little accuracy; `docs/eval.md` measures it, and
//! `--no-merge` keeps the exact run-time adapter.

use crate::cache::Cache;
use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

/// Changes whenever the merged file's content would: part of its file name
/// and of every proposal cache key made with a merged model.
pub const MERGE_VERSION: &str = "lora-merge-q4_0/1";

/// The merged model for `base` + `adapter` (given with their sha256), built
/// into `cache`'s `models/` directory unless it is already there. Written
/// to a temporary file and renamed, so an interrupted merge leaves nothing.
pub fn merged_model(
    base: &Path,
    base_sha256: &str,
    adapter: &Path,
    adapter_sha256: &str,
    cache: &Cache,
) -> Result<PathBuf> {
    let mut h = Sha256::new();
    for part in [MERGE_VERSION, base_sha256, adapter_sha256] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let id: String = h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = cache.dir().join("models");
    let path = dir.join(format!("merged-{id}.gguf"));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        merge_into(base, adapter, &mut w)?;
        std::io::Write::flush(&mut w)?;
    }
    tmp.persist(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn read_gguf(path: &Path) -> Result<(gguf_file::Content, BufReader<File>)> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut r = BufReader::new(f);
    let content = gguf_file::Content::read(&mut r)
        .with_context(|| format!("reading GGUF {}", path.display()))?;
    Ok((content, r))
}

/// Write the merged GGUF of `base` and `adapter` to `out`.
pub fn merge_into<W: std::io::Write + std::io::Seek>(
    base: &Path,
    adapter: &Path,
    out: &mut W,
) -> Result<()> {
    let cpu = Device::Cpu;
    let (model, mut model_r) = read_gguf(base)?;
    let (lora, mut lora_r) = read_gguf(adapter)?;
    let text = |c: &gguf_file::Content, k: &str| {
        c.metadata
            .get(k)
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default()
    };
    if text(&lora, "general.type") != "adapter" || text(&lora, "adapter.type") != "lora" {
        bail!("{} is not a LoRA adapter GGUF", adapter.display());
    }
    let alpha = lora
        .metadata
        .get("adapter.lora.alpha")
        .map_or(Ok(0.0), |v| v.to_f32())
        .context("adapter.lora.alpha")?;

    // Tensors in file order, so the merged file lays them out as the base does.
    let mut names: Vec<&String> = model.tensor_infos.keys().collect();
    names.sort_by_key(|n| model.tensor_infos[*n].offset);
    let mut merged_count = 0;
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let weight = model
            .tensor(&mut model_r, name, &cpu)
            .with_context(|| format!("reading tensor {name}"))?;
        let (a, b) = (format!("{name}.lora_a"), format!("{name}.lora_b"));
        if !lora.tensor_infos.contains_key(&a) {
            tensors.push((name.clone(), weight));
            continue;
        }
        let read = |r: &mut BufReader<File>, n: &str| -> Result<candle_core::Tensor> {
            Ok(lora
                .tensor(r, n, &cpu)
                .with_context(|| format!("reading adapter tensor {n}"))?
                .dequantize(&cpu)?)
        };
        // ggml shapes (innermost first): lora_a [in, rank], lora_b [rank, out];
        // candle's dims are the reverse: A is rank × in, B is out × rank.
        let lora_a = read(&mut lora_r, &a)?;
        let lora_b = read(&mut lora_r, &b)?;
        let rank = lora_a.dims()[0];
        let scale = if alpha == 0.0 {
            1.0
        } else {
            alpha as f64 / rank as f64
        };
        let w = weight.dequantize(&cpu)?;
        let delta = (lora_b.matmul(&lora_a)? * scale)?;
        if delta.dims() != w.dims() {
            bail!(
                "adapter tensor {name}: B·A is {:?}, the weight {:?}",
                delta.dims(),
                w.dims()
            );
        }
        let sum = (w + delta)?;
        if sum.dims().last().copied().unwrap_or(0) % GgmlDType::Q4_0.block_size() != 0 {
            bail!("tensor {name}: rows are not a multiple of Q4_0's block");
        }
        tensors.push((name.clone(), QTensor::quantize(&sum, GgmlDType::Q4_0)?));
        merged_count += 1;
    }
    let adapted = lora
        .tensor_infos
        .keys()
        .filter(|n| n.ends_with(".lora_a"))
        .count();
    if merged_count != adapted {
        bail!(
            "the adapter adapts {adapted} tensors, {merged_count} of them are in {}",
            base.display()
        );
    }

    let mut metadata: Vec<(String, Value)> = model
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Sorted: the same inputs give the same bytes.
    metadata.sort_by(|x, y| x.0.cmp(&y.0));
    for (k, v) in metadata.iter_mut() {
        if k == "general.file_type" {
            *v = Value::U32(2); // LLAMA_FTYPE_MOSTLY_Q4_0
        }
    }
    let meta: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    gguf_file::write(out, &meta, &refs).context("writing the merged model")?;
    Ok(())
}
