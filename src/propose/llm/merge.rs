//! Merging a LoRA adapter into a quantized copy of the base model, once per
//! (model, adapter) pair, kept in the cache directory.
//!
//! Why: llama.cpp applies an adapter at run time as two extra matrix
//! products per adapted weight (7 per layer), which on a 135M model costs a
//! third of the decoding speed. Merged, the model decodes faster than the
//! base alone does with the adapter. Measured with `cargo bench --bench
//! llm_throughput` on 2 cores (raw decoding, tokens/s, 1 and 16 sequences):
//! base Q4_1 + run-time adapter 76 / 192; merged into Q4_1 116 / 186, into
//! Q8_0 103 / 225, into Q4_0 169 / 322 (the one 4-bit type this llama.cpp
//! repacks for its fast CPU kernels).
//!
//! Which type: the one the adapter was trained for. An adapter trained
//! quantization-aware (`tools/finetune/train.py --qat q4_0`, as the shipped
//! one is) says so in its `peephole.merge.type` key and is merged at that
//! type: it was trained on exactly the rounded weights this writes. Any
//! other adapter is merged into Q8_0: its change to a weight is mostly
//! smaller than a 4-bit step, so requantizing to 4 bits rounds the
//! fine-tuning away (an adapter trained without it fell from 93.5% to 45.5%
//! IO-equivalent, direct, and from 92.0% to 34.0%, chain-of-code, merged
//! into Q4_0), while Q8_0's steps are 16 times finer (docs/eval.md).
//!
//! The merged weight is `W + (alpha / rank) · B·A`, as llama.cpp computes the
//! adapter's contribution (`llama-adapter.cpp`), then quantized as ggml does
//! (candle's ports of `quantize_row_q8_0_ref` / `quantize_row_q4_0_ref`; its
//! Q4_0 output was checked byte for byte against gguf-py's, which
//! `tools/finetune/check_qat.py` checks training's rounding against).
//! Tensors the adapter does not touch (norms, the Q8_0 embedding) are copied
//! unchanged. `--no-merge` keeps the run-time adapter.

use crate::cache::{Cache, KeyBuilder};
use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

/// Changes whenever the merged file's content would: part of its file name
/// and of every proposal cache key made with a merged model.
pub const MERGE_VERSION: &str = "lora-merge/2";

/// The adapter GGUF key naming the type it was trained to be merged at
/// (written by `tools/finetune/export_lora_gguf.py`).
pub const MERGE_TYPE_KEY: &str = "peephole.merge.type";

/// The type of the merged weights for this adapter, with the value of
/// `general.file_type` that says so: what its `peephole.merge.type` names, else
/// Q8_0 (fine enough for any adapter).
fn merged_type(lora: &gguf_file::Content, adapter: &Path) -> Result<(GgmlDType, u32)> {
    match declared_merge_type(lora) {
        None => Ok((GgmlDType::Q8_0, 7)), // LLAMA_FTYPE_MOSTLY_Q8_0
        Some(Ok(t)) if t == "q4_0" => Ok((GgmlDType::Q4_0, 2)), // LLAMA_FTYPE_MOSTLY_Q4_0
        Some(Ok(t)) if t == "q8_0" => Ok((GgmlDType::Q8_0, 7)),
        Some(other) => bail!(
            "{}: {MERGE_TYPE_KEY} = {:?} is not a type peephole merges into (q4_0, q8_0)",
            adapter.display(),
            other.map_or("(not a string)", String::as_str)
        ),
    }
}

/// The adapter's `peephole.merge.type` value, if it has one (an error if it
/// is not a string). The one place that reads the key.
fn declared_merge_type(lora: &gguf_file::Content) -> Option<candle_core::Result<&String>> {
    lora.metadata.get(MERGE_TYPE_KEY).map(|v| v.to_string())
}

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
    let key = KeyBuilder::new(MERGE_VERSION)
        .field("base", base_sha256)
        .field("adapter", adapter_sha256)
        .finish();
    let id = &key.as_str()[..24];
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

/// Fail with one clear message unless `path` is a llama.cpp LoRA adapter
/// GGUF. Why before loading: llama.cpp's own refusal says only "null result".
/// Returns the type the adapter says it was trained to be merged into
/// (`peephole.merge.type`), if any: applied at run time instead, such an
/// adapter runs on weights it was not trained for.
pub fn check_adapter(path: &Path) -> Result<Option<String>> {
    let (content, _) = read_gguf(path)?;
    ensure_lora(&content, path)?;
    Ok(declared_merge_type(&content).and_then(|t| t.ok()).cloned())
}

fn ensure_lora(c: &gguf_file::Content, path: &Path) -> Result<()> {
    let text = |k: &str| {
        c.metadata
            .get(k)
            .and_then(|v| v.to_string().ok())
            .map_or("(none)", String::as_str)
    };
    let (kind, adapter) = (text("general.type"), text("adapter.type"));
    if kind != "adapter" || adapter != "lora" {
        bail!(
            "{} is not a LoRA adapter GGUF (general.type = {kind}, adapter.type = {adapter})",
            path.display()
        );
    }
    Ok(())
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
    ensure_lora(&lora, adapter)?;
    let (merged_type, file_type) = merged_type(&lora, adapter)?;
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
        if sum.dims().last().copied().unwrap_or(0) % merged_type.block_size() != 0 {
            bail!("tensor {name}: rows are not a multiple of {merged_type:?}'s block");
        }
        tensors.push((name.clone(), QTensor::quantize(&sum, merged_type)?));
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
            *v = Value::U32(file_type);
        }
    }
    let meta: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    gguf_file::write(out, &meta, &refs).context("writing the merged model")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    fn write(path: &Path, meta: &[(&str, Value)], tensors: &[(&str, QTensor)]) {
        let mut f = File::create(path).unwrap();
        let meta: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
        let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (*k, v)).collect();
        gguf_file::write(&mut f, &meta, &tensors).unwrap();
    }

    fn ramp(rows: usize, cols: usize, scale: f32) -> Tensor {
        let v: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * scale)
            .collect();
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }

    /// A base with a 4 × 64 Q4_1 weight (out × in) and a norm, and a rank-2
    /// adapter on the weight (alpha 4, so scale 2), `merge_type` written as
    /// its `peephole.merge.type` if given. Returns the two paths and the
    /// merged weight's exact value, W + 2·B·A from the stored (rounded) W, A, B.
    fn base_and_adapter(dir: &Path, merge_type: Option<&str>) -> (PathBuf, PathBuf, Tensor) {
        let (out, inp, rank) = (4, 64, 2);
        let w = QTensor::quantize(&ramp(out, inp, 0.5), GgmlDType::Q4_1).unwrap();
        let norm =
            QTensor::quantize(&ramp(1, inp, 1.0).flatten_all().unwrap(), GgmlDType::F32).unwrap();
        let base = dir.join("base.gguf");
        let exact = |q: &QTensor| q.dequantize(&Device::Cpu).unwrap();
        let (a, b) = (
            QTensor::quantize(&ramp(rank, inp, 0.1), GgmlDType::F16).unwrap(),
            QTensor::quantize(&ramp(out, rank, 0.2), GgmlDType::F16).unwrap(),
        );
        let want = (exact(&w) + (exact(&b).matmul(&exact(&a)).unwrap() * 2.0).unwrap()).unwrap();
        write(
            &base,
            &[
                ("general.architecture", Value::String("llama".into())),
                ("general.file_type", Value::U32(3)),
            ],
            &[("blk.0.attn_q.weight", w), ("blk.0.attn_norm.weight", norm)],
        );
        let adapter = dir.join("lora.gguf");
        let mut meta = vec![
            ("general.type", Value::String("adapter".into())),
            ("adapter.type", Value::String("lora".into())),
            ("adapter.lora.alpha", Value::F32(4.0)),
        ];
        if let Some(t) = merge_type {
            meta.push((MERGE_TYPE_KEY, Value::String(t.into())));
        }
        write(
            &adapter,
            &meta,
            &[
                ("blk.0.attn_q.weight.lora_a", a),
                ("blk.0.attn_q.weight.lora_b", b),
            ],
        );
        (base, adapter, want)
    }

    /// An ordinary adapter merges to W + 2·B·A in Q8_0, within Q8_0's
    /// rounding; the tensor the adapter does not touch is copied byte for
    /// byte; the merge is built once.
    #[test]
    fn merged_weight_is_w_plus_scaled_ba() {
        let dir = tempfile::tempdir().unwrap();
        let (base, adapter, want) = base_and_adapter(dir.path(), None);
        assert_eq!(check_adapter(&adapter).unwrap(), None);
        let refused = format!("{:#}", check_adapter(&base).unwrap_err());
        assert!(
            refused.contains("is not a LoRA adapter GGUF (general.type = (none)"),
            "{refused}"
        );
        let cache = Cache::at(dir.path().join("cache"));
        let merged = merged_model(&base, "b", &adapter, "a", &cache).unwrap();
        assert_eq!(
            merged_model(&base, "b", &adapter, "a", &cache).unwrap(),
            merged
        );

        let (content, mut r) = read_gguf(&merged).unwrap();
        assert_eq!(content.metadata["general.file_type"].to_u32().unwrap(), 7);
        let q = content
            .tensor(&mut r, "blk.0.attn_q.weight", &Device::Cpu)
            .unwrap();
        assert_eq!(q.dtype(), GgmlDType::Q8_0);
        assert_eq!(q.shape().dims(), &[4, 64]);
        let got: Vec<Vec<f32>> = q.dequantize(&Device::Cpu).unwrap().to_vec2().unwrap();
        let want: Vec<Vec<f32>> = want.to_vec2().unwrap();
        for (g, e) in got.iter().flatten().zip(want.iter().flatten()) {
            // Q8_0 steps are max|x| / 127 of a 32-value block; |x| < 0.6 here.
            assert!((g - e).abs() <= 0.6 / 127.0 / 2.0 + 1e-4, "{g} vs {e}");
        }
        let (n0, mut r0) = read_gguf(&base).unwrap();
        let before = n0
            .tensor(&mut r0, "blk.0.attn_norm.weight", &Device::Cpu)
            .unwrap();
        let after = content
            .tensor(&mut r, "blk.0.attn_norm.weight", &Device::Cpu)
            .unwrap();
        assert_eq!(before.data().unwrap(), after.data().unwrap());
    }

    /// An adapter trained quantization-aware for Q4_0 is merged into exactly
    /// the Q4_0 weights it was trained on (ggml's rounding of W + 2·B·A, byte
    /// for byte); a type peephole does not merge into is refused by name.
    #[test]
    fn an_adapter_trained_for_q4_0_is_merged_into_q4_0() {
        let dir = tempfile::tempdir().unwrap();
        let (base, adapter, want) = base_and_adapter(dir.path(), Some("q4_0"));
        assert_eq!(check_adapter(&adapter).unwrap().as_deref(), Some("q4_0"));
        let mut merged = std::io::Cursor::new(Vec::new());
        merge_into(&base, &adapter, &mut merged).unwrap();
        merged.set_position(0);
        let content = gguf_file::Content::read(&mut merged).unwrap();
        assert_eq!(content.metadata["general.file_type"].to_u32().unwrap(), 2);
        let q = content
            .tensor(&mut merged, "blk.0.attn_q.weight", &Device::Cpu)
            .unwrap();
        assert_eq!(q.dtype(), GgmlDType::Q4_0);
        let expected = QTensor::quantize(&want, GgmlDType::Q4_0).unwrap();
        assert_eq!(q.data().unwrap(), expected.data().unwrap());

        let other = tempfile::tempdir().unwrap();
        let (base, adapter, _) = base_and_adapter(other.path(), Some("q2_k"));
        let err = merge_into(&base, &adapter, &mut std::io::Cursor::new(Vec::new())).unwrap_err();
        assert!(
            format!("{err:#}")
                .contains("peephole.merge.type = \"q2_k\" is not a type peephole merges into"),
            "{err:#}"
        );
    }

    #[test]
    fn an_adapter_for_another_model_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.gguf");
        write(
            &base,
            &[("general.architecture", Value::String("llama".into()))],
            &[(
                "blk.0.attn_q.weight",
                QTensor::quantize(&ramp(4, 64, 0.5), GgmlDType::Q4_1).unwrap(),
            )],
        );
        let adapter = dir.path().join("lora.gguf");
        write(
            &adapter,
            &[
                ("general.type", Value::String("adapter".into())),
                ("adapter.type", Value::String("lora".into())),
            ],
            &[
                (
                    "blk.7.ffn_up.weight.lora_a",
                    QTensor::quantize(&ramp(2, 64, 0.1), GgmlDType::F16).unwrap(),
                ),
                (
                    "blk.7.ffn_up.weight.lora_b",
                    QTensor::quantize(&ramp(4, 2, 0.1), GgmlDType::F16).unwrap(),
                ),
            ],
        );
        let cache = Cache::at(dir.path().join("cache"));
        let err = merged_model(&base, "b", &adapter, "a", &cache).unwrap_err();
        assert!(
            format!("{err:#}").contains("the adapter adapts 1 tensors, 0 of them"),
            "{err:#}"
        );
        // Nothing half-written is left behind.
        let left = std::fs::read_dir(dir.path().join("cache/models"))
            .unwrap()
            .count();
        assert_eq!(left, 0);
    }
}
