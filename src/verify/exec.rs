//! Running one block on one machine state in Unicorn and capturing what it
//! did: the exit it took (or the fault), its registers, and every byte it
//! wrote.
//!
//! Creating an engine costs far more than running a small block, so each
//! worker thread keeps one [`Engine`] and reuses it: the data region is mapped
//! once, a batch's code is loaded once, and after each run only the bytes the
//! block wrote are put back.
//!
//! Runs stop at the `brk` that [`super::assemble`] puts on every exit pad
//! (the fall-through end and each branch-target label), not through Unicorn's
//! exit addresses (`ctl_exits` or `emu_start`'s `until`): after every
//! `emu_start`, Unicorn invalidates the translated code just before each exit
//! address, so with exits the block was translated again on every run, and
//! with a whole batch's exits registered that invalidation alone cost
//! ~20 µs per run. A `brk` stop keeps the translation cached. `brk` is refused
//! in blocks ([`super::support`]), so an exception whose PC is one of the
//! job's exit pads can only be that pad.

use super::assemble::{Image, CODE_BASE, CODE_SIZE, SYMBOL_DATA};
use super::state::{MachineState, DATA_BASE, DATA_SIZE};
use std::ffi::c_void;
use std::sync::Arc;
use unicorn_engine::{uc_error as UcError, Arch, HookType, Mode, Prot, RegisterARM64, Unicorn};

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Fell off the end of the block.
    FallThrough,
    /// Branched to the exit label with this name.
    Label(String),
    /// Faulted (unmapped access, undefined instruction...) or left the block
    /// some other way.
    Fault(String),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::FallThrough => f.write_str("falls through"),
            Exit::Label(l) => write!(f, "branches to {l}"),
            Exit::Fault(r) => write!(f, "faults ({r})"),
        }
    }
}

fn fault(e: UcError) -> Exit {
    Exit::Fault(format!("{e:?}").to_lowercase().replace('_', " "))
}

/// What one run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub exit: Exit,
    pub x: [u64; 31],
    pub sp: u64,
    pub nzcv: u64,
    /// Vector registers, read only when the blocks use SIMD/FP registers.
    pub v: Option<Box<[u128; 32]>>,
    /// Every byte written, by address (sorted, one entry per address), with
    /// its final value.
    pub writes: Vec<(u64, u8)>,
}

/// The addresses a block starts at and may stop at.
pub struct Entry<'a> {
    pub start: u64,
    pub end: u64,
    pub exits: &'a [(u64, String)],
    /// The job's data symbols (see [`super::assemble::SYMBOL_DATA`]).
    pub data: &'a [u64],
}

type Uc = Unicorn<'static, Vec<(u64, usize)>>;

/// One Unicorn instance with the sandbox mapped.
pub struct Engine {
    uc: Uc,
    /// Identity of the loaded image (its address) and data pattern.
    loaded_image: usize,
    pattern: Arc<Vec<u8>>,
    image: Option<Arc<Image>>,
}

const X_IDS: [RegisterARM64; 31] = {
    use RegisterARM64::*;
    [
        X0, X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12, X13, X14, X15, X16, X17, X18, X19,
        X20, X21, X22, X23, X24, X25, X26, X27, X28, X29, X30,
    ]
};

fn q_id(n: usize) -> i32 {
    RegisterARM64::Q0 as i32 + n as i32
}

impl Engine {
    /// A fresh engine with the data region mapped and filled with `pattern`.
    pub fn new(pattern: Arc<Vec<u8>>) -> anyhow::Result<Engine> {
        let err = |what: &str, e| anyhow::anyhow!("unicorn: {what}: {e:?}");
        let mut uc: Uc = Unicorn::new_with_data(Arch::ARM64, Mode::ARM, Vec::new())
            .map_err(|e| err("open", e))?;
        uc.mem_map(CODE_BASE, CODE_SIZE, Prot::ALL)
            .map_err(|e| err("map code", e))?;
        uc.mem_map(DATA_BASE, DATA_SIZE, Prot::READ | Prot::WRITE)
            .map_err(|e| err("map data", e))?;
        uc.mem_write(DATA_BASE, &pattern)
            .map_err(|e| err("fill data", e))?;
        uc.add_mem_hook(HookType::MEM_WRITE, 1, 0, |uc, _, addr, size, _| {
            uc.get_data_mut().push((addr, size));
            true
        })
        .map_err(|e| err("hook", e))?;
        Ok(Engine {
            uc,
            loaded_image: 0,
            pattern,
            image: None,
        })
    }

    /// The data pattern this engine was filled with.
    pub fn pattern(&self) -> &Arc<Vec<u8>> {
        &self.pattern
    }

    /// Make `image` the code in memory (no-op if it already is).
    pub fn load(&mut self, image: &Arc<Image>) -> anyhow::Result<()> {
        let id = Arc::as_ptr(image) as usize;
        if self.loaded_image == id && self.image.as_ref().is_some_and(|i| Arc::ptr_eq(i, image)) {
            return Ok(());
        }
        for (addr, bytes) in &image.segments {
            self.uc
                .mem_write(*addr, bytes)
                .map_err(|e| anyhow::anyhow!("unicorn: load code: {e:?}"))?;
        }
        // `mem_write` does not invalidate translated code. Drop every
        // translation of the code region, not with `ctl_flush_tb`: in
        // libunicorn 2.0.1 a flush zeroes the whole 1 GiB translation buffer
        // (tens of milliseconds or more).
        self.uc
            .ctl_remove_cache(CODE_BASE, CODE_BASE + CODE_SIZE)
            .map_err(|e| anyhow::anyhow!("unicorn: drop translations: {e:?}"))?;
        self.loaded_image = id;
        self.image = Some(image.clone());
        Ok(())
    }

    fn write_regs(&mut self, s: &MachineState, with_v: bool) {
        let h = self.uc.get_handle();
        let mut ids: Vec<i32> = X_IDS.iter().map(|r| *r as i32).collect();
        let mut vals: Vec<u64> = s.x.to_vec();
        ids.extend([RegisterARM64::SP as i32, RegisterARM64::NZCV as i32]);
        vals.extend([s.sp, s.nzcv]);
        if with_v {
            ids.extend([RegisterARM64::FPCR as i32, RegisterARM64::FPSR as i32]);
            vals.extend([s.fpcr, s.fpsr]);
        }
        let mut ptrs: Vec<*mut c_void> = vals
            .iter_mut()
            .map(|v| v as *mut u64 as *mut c_void)
            .collect();
        let mut vbuf = s.v;
        if with_v {
            for (n, q) in vbuf.iter_mut().enumerate() {
                ids.push(q_id(n));
                ptrs.push(q as *mut u128 as *mut c_void);
            }
        }
        // SAFETY: every pointer refers to a live value of the register's size
        // (8 bytes for x/sp/nzcv/fpcr/fpsr, 16 for q) for the call's duration.
        unsafe {
            unicorn_engine::uc_reg_write_batch(h, ids.as_ptr(), ptrs.as_ptr(), ids.len() as i32);
        }
    }

    fn read_regs(&self, with_v: bool) -> ([u64; 31], u64, u64, Option<Box<[u128; 32]>>) {
        let h = self.uc.get_handle();
        let mut x = [0u64; 33];
        let mut ids: Vec<i32> = X_IDS.iter().map(|r| *r as i32).collect();
        ids.extend([RegisterARM64::SP as i32, RegisterARM64::NZCV as i32]);
        let mut ptrs: Vec<*mut c_void> =
            x.iter_mut().map(|v| v as *mut u64 as *mut c_void).collect();
        let mut v = Box::new([0u128; 32]);
        if with_v {
            for (n, q) in v.iter_mut().enumerate() {
                ids.push(q_id(n));
                ptrs.push(q as *mut u128 as *mut c_void);
            }
        }
        // SAFETY: as in `write_regs`; the buffers outlive the call.
        unsafe {
            unicorn_engine::uc_reg_read_batch(h, ids.as_ptr(), ptrs.as_mut_ptr(), ids.len() as i32);
        }
        let mut xs = [0u64; 31];
        xs.copy_from_slice(&x[..31]);
        (xs, x[31], x[32] & 0xf000_0000, with_v.then_some(v))
    }

    /// Run the block at `entry` on `state`, then put memory back as it was.
    pub fn run(&mut self, entry: &Entry, state: &MachineState, with_v: bool) -> Outcome {
        self.write_regs(state, with_v);
        for &at in entry.data {
            let _ = self
                .uc
                .mem_write(at, &super::state::symbol_data(state, at, SYMBOL_DATA));
        }
        self.uc.get_data_mut().clear();
        // No `until`, count or timeout: the block stops at an exit pad's
        // `brk` (an exception) or faults.
        let res = self.uc.emu_start(entry.start, 0, 0, 0);
        let pc = self.uc.pc_read().unwrap_or(0);
        let at_exit = || {
            if pc == entry.end {
                Some(Exit::FallThrough)
            } else {
                entry
                    .exits
                    .iter()
                    .find(|(a, _)| *a == pc)
                    .map(|(_, name)| Exit::Label(name.clone()))
            }
        };
        let exit = match res {
            Err(UcError::EXCEPTION) => at_exit().unwrap_or_else(|| fault(UcError::EXCEPTION)),
            Err(e) => fault(e),
            Ok(()) => Exit::Fault(format!("stopped at {pc:#x}, outside the block")),
        };
        let (x, sp, nzcv, v) = self.read_regs(with_v);
        let writes = self.collect_writes();
        // Back to the image's zeros, so that a load past a symbol's bytes
        // (into another job's) reads the same whatever ran before.
        for &at in entry.data {
            let _ = self.uc.mem_write(at, &[0; SYMBOL_DATA]);
        }
        Outcome {
            exit,
            x,
            sp,
            nzcv,
            v,
            writes,
        }
    }

    /// Bytes written by the last run, then restore them from the pristine
    /// image or pattern.
    fn collect_writes(&mut self) -> Vec<(u64, u8)> {
        let log = std::mem::take(self.uc.get_data_mut());
        if log.is_empty() {
            return Vec::new();
        }
        let mut addrs: Vec<u64> = log
            .iter()
            .flat_map(|&(a, n)| (0..n as u64).map(move |i| a.wrapping_add(i)))
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        let mut out = Vec::with_capacity(addrs.len());
        let mut i = 0;
        while i < addrs.len() {
            // A run of consecutive addresses.
            let mut j = i + 1;
            while j < addrs.len() && addrs[j] == addrs[j - 1] + 1 {
                j += 1;
            }
            let (start, len) = (addrs[i], j - i);
            let mut buf = vec![0u8; len];
            if self.uc.mem_read(start, &mut buf).is_ok() {
                out.extend(buf.iter().enumerate().map(|(k, b)| (start + k as u64, *b)));
            }
            let pristine = self.pristine(start, len);
            let _ = self.uc.mem_write(start, &pristine);
            // `mem_write` does not invalidate translated code: a store into
            // the code region may have left a translation of the modified
            // bytes cached, which must not run as the restored bytes.
            let end = start.saturating_add(len as u64);
            if start < CODE_BASE + CODE_SIZE && end > CODE_BASE {
                let _ = self
                    .uc
                    .ctl_remove_cache(start.max(CODE_BASE), end.min(CODE_BASE + CODE_SIZE));
            }
            i = j;
        }
        self.uc.get_data_mut().clear();
        out
    }

    fn pristine(&self, start: u64, len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|k| {
                let a = start + k;
                if (DATA_BASE..DATA_BASE + DATA_SIZE).contains(&a) {
                    return self.pattern[(a - DATA_BASE) as usize];
                }
                if let Some(img) = &self.image {
                    for (base, bytes) in &img.segments {
                        if a >= *base && a < base + bytes.len() as u64 {
                            return bytes[(a - base) as usize];
                        }
                    }
                }
                0
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Verdict, Verifier, VerifyConfig};
    use crate::semantics::LocSet;
    use crate::verify::tests::block;

    /// Translations are cached across runs, so one engine that loads a new
    /// image at the same addresses, or whose block rewrote code, must not
    /// run stale translations.
    #[test]
    fn reused_engine_runs_the_current_code() {
        let v = Verifier::new(VerifyConfig { tests: 50, seed: 7 }).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let orig = block(&["add x0, x1, x2"]);
        pool.install(|| {
            for _ in 0..2 {
                let same = block(&["add x0, x2, x1"]);
                assert!(v.check(&orig, &same, LocSet::ALL).unwrap().is_equivalent());
                let differs = block(&["sub x0, x1, x2"]);
                assert!(matches!(
                    v.check(&orig, &differs, LocSet::ALL).unwrap(),
                    Verdict::Counterexample { .. }
                ));
            }
        });
    }

    /// A store into the code region (the bytes just before a symbol's data
    /// area): the bytes are restored and the stale-translation guard runs on
    /// every test. A smoke test: the layout decides what those bytes are.
    #[test]
    fn code_written_by_a_run_is_not_run_again() {
        let v = Verifier::new(VerifyConfig { tests: 50, seed: 7 }).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        // x9 = address of `d`; the store overwrites the 8 bytes before the
        // data, which belong to this job's code area (pads / alignment).
        let b = block(&[
            "adrp x9, d",
            "add x9, x9, :lo12:d",
            "stur xzr, [x9, #-8]",
            "add x0, x1, x2",
        ]);
        pool.install(|| {
            let r = v.check(&b, &b, LocSet::ALL).unwrap();
            assert!(
                matches!(r, Verdict::Equivalent { .. } | Verdict::Unsupported { .. }),
                "{r:?}"
            );
        });
    }
}
