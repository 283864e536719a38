//! Reading AArch64 ELF files with `goblin`: the executable sections, the
//! symbols and mapping symbols in them, relocations and `.eh_frame` FDEs —
//! everything the decoder needs to find code, data and entry points.
//!
//! Only ELF64 little-endian AArch64 is accepted; anything else is one clear
//! [`ElfError`]. Every offset taken from the file is bounds-checked, so a
//! corrupt file is an error rather than a panic.

use goblin::elf::{header, section_header, sym, Elf};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Why a file cannot be read as an AArch64 ELF.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not an ELF file")]
    NotElf,
    #[error("32-bit ELF: peephole reads 64-bit AArch64 ELF only")]
    Not64Bit,
    #[error("big-endian ELF: peephole reads little-endian AArch64 ELF only")]
    BigEndian,
    #[error("ELF for machine {0} ({1}), not AArch64")]
    WrongMachine(u16, &'static str),
    #[error("ELF type {0} is not a relocatable object, executable or shared library")]
    WrongType(u16),
    #[error("truncated or corrupt ELF: {0}")]
    Corrupt(String),
}

/// What kind of ELF file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `.o`: addresses are synthetic (see [`CodeSection::addr`]).
    Relocatable,
    /// `ET_EXEC`: fixed addresses.
    Executable,
    /// `ET_DYN`: shared library or PIE.
    Shared,
}

/// An executable section with its bytes in the file.
#[derive(Clone, Debug)]
pub struct CodeSection {
    /// Section header index.
    pub index: usize,
    pub name: String,
    /// Address of its first byte. In objects every section starts at 0, so
    /// we give each a distinct synthetic base to keep addresses unique.
    pub addr: u64,
    /// File offset of its first byte.
    pub offset: u64,
    pub size: u64,
}

/// A defined symbol in an executable section.
#[derive(Clone, Debug)]
pub struct Symbol {
    pub name: String,
    pub addr: u64,
    pub size: u64,
    pub is_func: bool,
    pub is_global: bool,
}

/// Where a relocated branch goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelocTarget {
    /// Into one of our code sections.
    Addr(u64),
    /// Somewhere else (undefined or non-code symbol).
    Extern(String),
}

/// A parsed AArch64 ELF file.
#[derive(Clone, Debug)]
pub struct Binary {
    /// Where it came from (for messages); `None` when loaded from bytes.
    pub path: Option<PathBuf>,
    pub bytes: Vec<u8>,
    pub kind: Kind,
    pub sections: Vec<CodeSection>,
    /// Defined symbols in code sections, sorted by address (no mapping symbols).
    pub symbols: Vec<Symbol>,
    /// Mapping symbols: address → is code (`$x`) or data (`$d`).
    pub mapping: BTreeMap<u64, bool>,
    /// `[start, end)` of each function described by an `.eh_frame` FDE.
    pub fde_ranges: Vec<(u64, u64)>,
    /// Code addresses whose word carries a relocation (objects).
    pub reloc_sites: BTreeMap<u64, RelocTarget>,
    /// Code addresses named by relocations or by pointer-sized data: entry
    /// points that may be reached from outside the code.
    pub entry_points: BTreeSet<u64>,
}

/// Whether `bytes` start like an ELF file (any class or machine).
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

fn machine_name(m: u16) -> &'static str {
    match m {
        header::EM_X86_64 => "x86-64",
        header::EM_386 => "x86",
        header::EM_ARM => "32-bit Arm",
        header::EM_RISCV => "RISC-V",
        header::EM_PPC64 => "PowerPC64",
        _ => "unknown",
    }
}

/// Check the identification bytes before handing the file to goblin, so the
/// common mistakes get a specific message.
fn check_ident(b: &[u8]) -> Result<(), ElfError> {
    if !is_elf(b) {
        return Err(ElfError::NotElf);
    }
    if b.len() < 64 {
        return Err(ElfError::Corrupt(format!(
            "{} bytes is shorter than an ELF64 header",
            b.len()
        )));
    }
    match b[header::EI_CLASS] {
        header::ELFCLASS64 => {}
        header::ELFCLASS32 => return Err(ElfError::Not64Bit),
        c => return Err(ElfError::Corrupt(format!("bad ELF class {c}"))),
    }
    match b[header::EI_DATA] {
        header::ELFDATA2LSB => {}
        header::ELFDATA2MSB => return Err(ElfError::BigEndian),
        d => return Err(ElfError::Corrupt(format!("bad ELF data encoding {d}"))),
    }
    let machine = u16::from_le_bytes([b[18], b[19]]);
    if machine != header::EM_AARCH64 {
        return Err(ElfError::WrongMachine(machine, machine_name(machine)));
    }
    Ok(())
}

impl Binary {
    /// Read and parse a file.
    pub fn load(path: &Path) -> Result<Binary, ElfError> {
        let bytes = std::fs::read(path).map_err(|source| ElfError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut b = Binary::from_bytes(bytes)?;
        b.path = Some(path.to_path_buf());
        Ok(b)
    }

    /// Parse bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Binary, ElfError> {
        check_ident(&bytes)?;
        // goblin is meant not to panic on bad input; this is a second line of
        // defence so a reader bug becomes an error, not a crash.
        let parsed = std::panic::catch_unwind(|| parse(&bytes));
        let mut b = match parsed {
            Ok(r) => r?,
            Err(_) => return Err(ElfError::Corrupt("malformed headers".into())),
        };
        b.bytes = bytes;
        Ok(b)
    }

    /// The code section holding `addr`.
    pub fn section_of(&self, addr: u64) -> Option<&CodeSection> {
        self.sections
            .iter()
            .find(|s| addr >= s.addr && addr - s.addr < s.size)
    }

    /// File offset of code address `addr`.
    pub fn offset_of(&self, addr: u64) -> Option<usize> {
        self.section_of(addr)
            .map(|s| (s.offset + (addr - s.addr)) as usize)
    }

    /// The bytes of a code section.
    pub fn section_bytes(&self, s: &CodeSection) -> &[u8] {
        &self.bytes[s.offset as usize..(s.offset + s.size) as usize]
    }

    /// The instruction word at code address `addr`.
    pub fn word_at(&self, addr: u64) -> Option<u32> {
        let off = self.offset_of(addr)?;
        let w = self.bytes.get(off..off + 4)?;
        Some(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
    }
}

fn corrupt(e: impl std::fmt::Display) -> ElfError {
    ElfError::Corrupt(e.to_string())
}

fn parse(bytes: &[u8]) -> Result<Binary, ElfError> {
    let elf = Elf::parse(bytes).map_err(corrupt)?;
    let kind = match elf.header.e_type {
        header::ET_REL => Kind::Relocatable,
        header::ET_EXEC => Kind::Executable,
        header::ET_DYN => Kind::Shared,
        t => return Err(ElfError::WrongType(t)),
    };
    let rel = kind == Kind::Relocatable;

    // Code sections, with synthetic bases in objects.
    let mut sections = Vec::new();
    let mut base: u64 = 0;
    // Section index → base address, for every allocated section (objects
    // need it to resolve relocation targets).
    for (index, sh) in elf.section_headers.iter().enumerate() {
        let exec = sh.sh_flags & u64::from(section_header::SHF_EXECINSTR) != 0;
        if !exec || sh.sh_type == section_header::SHT_NOBITS || sh.sh_size == 0 {
            continue;
        }
        let end = sh
            .sh_offset
            .checked_add(sh.sh_size)
            .filter(|&e| e <= bytes.len() as u64)
            .ok_or_else(|| corrupt(format!("section {index} extends past the end of the file")))?;
        let _ = end;
        let name = elf
            .shdr_strtab
            .get_at(sh.sh_name)
            .unwrap_or("?")
            .to_string();
        let addr = if rel {
            let a = base;
            base = (base + sh.sh_size + 0xfff) & !0xfff;
            a
        } else {
            sh.sh_addr
        };
        if addr.checked_add(sh.sh_size).is_none() {
            return Err(corrupt(format!("section {index} wraps the address space")));
        }
        sections.push(CodeSection {
            index,
            name,
            addr,
            offset: sh.sh_offset,
            size: sh.sh_size,
        });
    }
    let base_of = |shndx: usize| sections.iter().find(|s| s.index == shndx).map(|s| s.addr);
    let in_code = |a: u64| sections.iter().any(|s| a >= s.addr && a - s.addr < s.size);

    // Symbols and mapping symbols.
    let mut symbols = Vec::new();
    let mut mapping = BTreeMap::new();
    for s in elf.syms.iter() {
        let Some(base) = base_of(s.st_shndx) else {
            continue;
        };
        let name = elf.strtab.get_at(s.st_name).unwrap_or("");
        let addr = if rel {
            base.wrapping_add(s.st_value)
        } else {
            s.st_value
        };
        if name == "$x" || name.starts_with("$x.") {
            mapping.insert(addr, true);
        } else if name == "$d" || name.starts_with("$d.") {
            mapping.insert(addr, false);
        } else if !name.is_empty()
            && s.st_type() != sym::STT_SECTION
            && s.st_type() != sym::STT_FILE
            && in_code(addr)
        {
            symbols.push(Symbol {
                name: name.to_string(),
                addr,
                size: s.st_size,
                is_func: s.st_type() == sym::STT_FUNC,
                is_global: s.st_bind() != sym::STB_LOCAL,
            });
        }
    }
    // Dynamic symbols matter for stripped shared libraries.
    for s in elf.dynsyms.iter() {
        if s.st_type() != sym::STT_FUNC || s.st_shndx == 0 || !in_code(s.st_value) {
            continue;
        }
        let name = elf.dynstrtab.get_at(s.st_name).unwrap_or("");
        if !name.is_empty() && !symbols.iter().any(|x: &Symbol| x.addr == s.st_value) {
            symbols.push(Symbol {
                name: name.to_string(),
                addr: s.st_value,
                size: s.st_size,
                is_func: true,
                is_global: true,
            });
        }
    }
    symbols.sort_by(|a, b| {
        (a.addr, !a.is_func, !a.is_global).cmp(&(b.addr, !b.is_func, !b.is_global))
    });

    let mut reloc_sites = BTreeMap::new();
    let mut entry_points = BTreeSet::new();
    if rel {
        for (reloc_idx, relocs) in &elf.shdr_relocs {
            let target_sec = elf
                .section_headers
                .get(*reloc_idx)
                .map(|h| h.sh_info as usize)
                .unwrap_or(usize::MAX);
            let site_base = base_of(target_sec);
            for r in relocs.iter() {
                let Some(sym) = elf.syms.get(r.r_sym) else {
                    continue;
                };
                let addend = r.r_addend.unwrap_or(0);
                let target = match base_of(sym.st_shndx) {
                    Some(b) => {
                        let a = b.wrapping_add(sym.st_value).wrapping_add(addend as u64);
                        if in_code(a) {
                            entry_points.insert(a);
                        }
                        RelocTarget::Addr(a)
                    }
                    None => {
                        let name = elf.strtab.get_at(sym.st_name).unwrap_or("");
                        RelocTarget::Extern(name.to_string())
                    }
                };
                if let Some(b) = site_base {
                    reloc_sites.insert(b.wrapping_add(r.r_offset) & !3, target);
                }
            }
        }
    } else {
        // Pointers to code: RELATIVE relocations (PIE, shared) and
        // pointer-sized values in allocated data (non-PIE function pointers,
        // absolute jump tables). Extra entry points only make blocks smaller.
        for r in elf.dynrelas.iter() {
            if let Some(a) = r.r_addend {
                if in_code(a as u64) {
                    entry_points.insert(a as u64);
                }
            }
        }
        for sh in elf.section_headers.iter() {
            let alloc = sh.sh_flags & u64::from(section_header::SHF_ALLOC) != 0;
            let exec = sh.sh_flags & u64::from(section_header::SHF_EXECINSTR) != 0;
            if !alloc || exec || sh.sh_type == section_header::SHT_NOBITS {
                continue;
            }
            let Some(data) = bytes
                .get(sh.sh_offset as usize..)
                .and_then(|d| d.get(..sh.sh_size as usize))
            else {
                continue;
            };
            for w in data.chunks_exact(8) {
                let v = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
                if v.is_multiple_of(4) && in_code(v) {
                    entry_points.insert(v);
                }
            }
        }
    }

    let fde_ranges = if rel {
        Vec::new()
    } else {
        eh_frame_ranges(&elf, bytes)
    };

    Ok(Binary {
        path: None,
        bytes: Vec::new(),
        kind,
        sections,
        symbols,
        mapping,
        fde_ranges,
        reloc_sites,
        entry_points,
    })
}

/// Function ranges from `.eh_frame` FDEs (for stripped binaries). A section
/// we cannot parse yields what was read before the problem.
fn eh_frame_ranges(elf: &Elf, bytes: &[u8]) -> Vec<(u64, u64)> {
    use gimli::{BaseAddresses, CieOrFde, EhFrame, LittleEndian, UnwindSection};
    let mut out = Vec::new();
    let Some(sh) = elf
        .section_headers
        .iter()
        .find(|h| elf.shdr_strtab.get_at(h.sh_name) == Some(".eh_frame"))
    else {
        return out;
    };
    let Some(data) = bytes
        .get(sh.sh_offset as usize..)
        .and_then(|d| d.get(..sh.sh_size as usize))
    else {
        return out;
    };
    let eh = EhFrame::new(data, LittleEndian);
    let bases = BaseAddresses::default().set_eh_frame(sh.sh_addr);
    let mut entries = eh.entries(&bases);
    while let Ok(Some(entry)) = entries.next() {
        if let CieOrFde::Fde(partial) = entry {
            if let Ok(fde) = partial.parse(EhFrame::cie_from_offset) {
                let start = fde.initial_address();
                out.push((start, start.wrapping_add(fde.len())));
            }
        }
    }
    out
}
