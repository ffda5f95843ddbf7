//! What an executable or shared library says about the calls it can make:
//! its dynamic imports and `DT_NEEDED` libraries, and for static and Go
//! binaries the syscall numbers written next to `syscall` instructions and
//! the Go function names. Parsed with `object` (already in the tree for the
//! BPF object test); nothing here runs the file.

use object::{
    Endianness, Object as _, ObjectSection as _, ObjectSymbol as _, SectionFlags,
    elf::{DT_NEEDED, DT_RPATH, DT_RUNPATH, EM_386, EM_AARCH64, EM_X86_64, PT_INTERP, SHF_EXECINSTR},
    read::elf::{Dyn as _, ElfFile, FileHeader, ProgramHeader as _},
};

use crate::syscalls::Arch;

/// What one ELF file offers to the analysis.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElfFacts {
    /// The architecture its code runs as (`None`: a machine recorder has no table for).
    pub arch: Option<Arch>,
    /// `PT_INTERP` is present: the dynamic loader runs it.
    pub dynamic: bool,
    /// Undefined dynamic function symbols (what it imports).
    pub imports: Vec<String>,
    /// `DT_NEEDED` entries, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH`, else `DT_RPATH`, split at `:`.
    pub runpath: Vec<String>,
    /// A Go binary (`.go.buildinfo` or `.gopclntab`).
    pub go: bool,
    /// Go: every function name in `.gopclntab`.
    pub go_functions: Vec<String>,
    /// Syscall numbers loaded right before a `syscall`/`svc #0` instruction,
    /// with the address of the first such site.
    pub raw_syscalls: Vec<(u32, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("malformed ELF: {0}")]
    Malformed(#[from] object::Error),
}

/// Parses `data` (a whole file).
pub fn facts(data: &[u8]) -> Result<ElfFacts, ElfError> {
    if data.get(..4) != Some(b"\x7fELF") {
        return Err(ElfError::NotElf);
    }
    match data.get(4) {
        Some(2) => read::<object::elf::FileHeader64<Endianness>>(data),
        Some(1) => read::<object::elf::FileHeader32<Endianness>>(data),
        _ => Err(ElfError::NotElf),
    }
}

fn read<'d, H: FileHeader<Endian = Endianness>>(data: &'d [u8]) -> Result<ElfFacts, ElfError> {
    let file = ElfFile::<'d, H, &'d [u8]>::parse(data)?;
    let endian = file.endian();
    let machine = file.elf_header().e_machine(endian);
    let arch = match (machine, file.is_64()) {
        (EM_X86_64, true) => Some(Arch::X86_64),
        (EM_X86_64, false) => Some(Arch::X32),
        (EM_386, _) => Some(Arch::X86),
        (EM_AARCH64, _) => Some(Arch::Aarch64),
        _ => None,
    };
    let mut facts = ElfFacts { arch, ..ElfFacts::default() };
    facts.dynamic = file.elf_program_headers().iter().any(|p| p.p_type(endian) == PT_INTERP);
    let mut imports: Vec<String> = file
        .dynamic_symbols()
        .filter(|s| s.is_undefined() && s.kind() != object::SymbolKind::Data)
        .filter_map(|s| s.name().ok().map(str::to_owned))
        .filter(|n| !n.is_empty())
        .collect();
    imports.sort();
    imports.dedup();
    facts.imports = imports;

    let sections = file.elf_section_table();
    if let Some((entries, link)) = sections.dynamic(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        let mut rpath = Vec::new();
        for entry in entries {
            let tag = entry.tag(endian);
            let value = |e: &H::Dyn| -> Option<String> {
                let offset = u32::try_from(e.val(endian)).ok()?;
                strings.get(offset).ok().map(|s| String::from_utf8_lossy(s).into_owned())
            };
            match tag {
                DT_NEEDED => facts.needed.extend(value(entry)),
                DT_RUNPATH => facts.runpath = value(entry).map(split_path).unwrap_or_default(),
                DT_RPATH => rpath = value(entry).map(split_path).unwrap_or_default(),
                _ => {}
            }
        }
        if facts.runpath.is_empty() {
            facts.runpath = rpath;
        }
    }

    facts.go = file.section_by_name(".go.buildinfo").is_some() || file.section_by_name(".gopclntab").is_some();
    if let Some(section) = file.section_by_name(".gopclntab") {
        facts.go_functions = super::go::function_names(section.data()?);
    }
    // Raw syscall sites matter where no libc import says what a call is for:
    // static binaries and Go (which makes its syscalls itself).
    if !facts.dynamic || facts.go {
        let mut sites = std::collections::BTreeMap::new();
        for section in file.sections() {
            let exec =
                matches!(section.flags(), SectionFlags::Elf { sh_flags } if sh_flags & u64::from(SHF_EXECINSTR) != 0);
            if !exec {
                continue;
            }
            let code = section.data()?;
            for (nr, offset) in syscall_sites(code, arch) {
                sites.entry(nr).or_insert(section.address() + offset as u64);
            }
        }
        facts.raw_syscalls = sites.into_iter().collect();
    }
    Ok(facts)
}

fn split_path(value: String) -> Vec<String> {
    value.split(':').filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

/// How far before a `syscall` instruction the number may be loaded.
const WINDOW: usize = 24;

/// Syscall numbers a code section loads right before a syscall instruction:
/// x86_64 `mov $N, %eax` (`b8 imm32`) within [`WINDOW`] bytes before
/// `syscall` (`0f 05`); aarch64 `mov x8, #N` (`movz`) before `svc #0`.
/// Byte patterns, not a disassembly: a number is only as likely as its
/// pattern, which is why the report calls these sites, not calls.
pub fn syscall_sites(code: &[u8], arch: Option<Arch>) -> Vec<(u32, usize)> {
    let mut out = Vec::new();
    match arch {
        Some(Arch::X86_64) => {
            for i in 0..code.len().saturating_sub(1) {
                if code[i] != 0x0f || code[i + 1] != 0x05 {
                    continue;
                }
                let start = i.saturating_sub(WINDOW);
                // The nearest `mov $imm32, %eax` that ends before the syscall.
                let found = (start..i.saturating_sub(4)).rev().find_map(|j| {
                    (code[j] == 0xb8).then(|| u32::from_le_bytes([code[j + 1], code[j + 2], code[j + 3], code[j + 4]]))
                });
                if let Some(nr) = found.filter(|nr| *nr < 1024) {
                    out.push((nr, i));
                }
            }
        }
        Some(Arch::Aarch64) => {
            let words: Vec<u32> = code.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            for (i, w) in words.iter().enumerate() {
                if *w != 0xd400_0001 {
                    continue;
                }
                let found = (i.saturating_sub(WINDOW / 4)..i).rev().find_map(|j| {
                    let w = words[j];
                    // movz x8/w8, #imm16
                    ((w & 0x7f80_001f) == 0x5280_0008).then_some((w >> 5) & 0xffff)
                });
                if let Some(nr) = found.filter(|nr| *nr < 1024) {
                    out.push((nr, i * 4));
                }
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_number_before_a_syscall_instruction() {
        // mov $57,%eax ; syscall  (fork) ; then mov $0x3c,%eax ; xor edi,edi ; syscall
        let code = [0xb8, 57, 0, 0, 0, 0x0f, 0x05, 0x90, 0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05];
        let sites = syscall_sites(&code, Some(Arch::X86_64));
        assert_eq!(sites.iter().map(|s| s.0).collect::<Vec<_>>(), [57, 60]);
        // A syscall with no number in reach is not guessed.
        assert!(syscall_sites(&[0x90, 0x0f, 0x05], Some(Arch::X86_64)).is_empty());
    }

    #[test]
    fn aarch64_movz_then_svc() {
        // mov x8, #220 (clone) ; svc #0
        let movz = 0xd280_0008u32 | (220 << 5);
        let mut code = movz.to_le_bytes().to_vec();
        code.extend(0xd400_0001u32.to_le_bytes());
        assert_eq!(syscall_sites(&code, Some(Arch::Aarch64)), [(220, 4)]);
    }

    #[test]
    fn not_elf_is_refused() {
        assert!(matches!(facts(b"#!/bin/sh\n"), Err(ElfError::NotElf)));
    }

    #[test]
    fn reads_this_test_binary() {
        let me = std::fs::read("/proc/self/exe").expect("read self");
        let f = facts(&me).expect("parse self");
        assert!(f.dynamic, "test binaries are dynamically linked");
        assert!(f.needed.iter().any(|n| n.starts_with("libc.so")), "{:?}", f.needed);
        assert!(f.imports.iter().any(|n| n == "write" || n == "malloc"), "{:?}", &f.imports[..10.min(f.imports.len())]);
    }
}
