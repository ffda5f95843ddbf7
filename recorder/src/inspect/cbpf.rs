//! A classic-BPF interpreter for seccomp programs over `struct
//! seccomp_data`, run for one (syscall number, audit arch) with the
//! instruction pointer and the six arguments unknown: a jump that depends
//! on them takes both ways, so the result is every return value some
//! argument values can reach. seccomp programs only jump forward, so this
//! ends; a budget bounds the paths.
//!
//! Instruction set and semantics: the kernel's `seccomp_check_filter` and
//! `bpf_convert_filter` (net/core/filter.c), Documentation/networking/filter.rst.

use std::collections::BTreeSet;

/// One instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    /// Decodes the kernel's 8-byte layout (host byte order).
    pub fn parse_all(bytes: &[u8]) -> Vec<Insn> {
        bytes
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect()
    }
}

/// `sizeof(struct seccomp_data)`.
const DATA_LEN: u32 = 64;
/// Paths explored per evaluation before giving up.
const BUDGET: usize = 1 << 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Val {
    Known(u32),
    /// Depends on the arguments or the instruction pointer.
    Unknown,
}

/// Every return value the program can reach for syscall `nr` on audit
/// architecture `arch`; `None` when the program is malformed (a jump out
/// of it, an unknown instruction) or too branchy to explore.
pub fn outcomes(prog: &[Insn], nr: u32, arch: u32) -> Option<BTreeSet<u32>> {
    let mut results = BTreeSet::new();
    let mut stack = vec![(0usize, Val::Known(0), Val::Known(0), [Val::Known(0); 16])];
    let mut paths = 0usize;
    while let Some((mut pc, mut a, mut x, mut mem)) = stack.pop() {
        paths += 1;
        if paths > BUDGET {
            return None;
        }
        loop {
            let insn = *prog.get(pc)?;
            let class = insn.code & 0x07;
            let k = insn.k;
            match class {
                // BPF_LD
                0x00 => {
                    a = match insn.code {
                        // LD W ABS
                        0x20 => load(k, nr, arch)?,
                        // LD H/B ABS: parts of a word
                        0x28 | 0x30 => Val::Unknown,
                        // LD W LEN
                        0x80 => Val::Known(DATA_LEN),
                        // LD IMM
                        0x00 => Val::Known(k),
                        // LD MEM
                        0x60 => *mem.get(k as usize)?,
                        _ => return None,
                    };
                }
                // BPF_LDX
                0x01 => {
                    x = match insn.code {
                        0x01 => Val::Known(k),
                        0x81 => Val::Known(DATA_LEN),
                        0x61 => *mem.get(k as usize)?,
                        _ => return None,
                    };
                }
                // BPF_ST, BPF_STX
                0x02 => *mem.get_mut(k as usize)? = a,
                0x03 => *mem.get_mut(k as usize)? = x,
                // BPF_ALU
                0x04 => {
                    let operand = if insn.code & 0x08 != 0 { x } else { Val::Known(k) };
                    a = alu(insn.code & 0xf0, a, operand)?;
                }
                // BPF_JMP
                0x05 => {
                    let op = insn.code & 0xf0;
                    if op == 0x00 {
                        pc = pc.checked_add(1 + k as usize)?;
                        continue;
                    }
                    let operand = if insn.code & 0x08 != 0 { x } else { Val::Known(k) };
                    let taken = match (a, operand) {
                        (Val::Known(a), Val::Known(b)) => Some(match op {
                            0x10 => a == b,
                            0x20 => a > b,
                            0x30 => a >= b,
                            0x40 => a & b != 0,
                            _ => return None,
                        }),
                        _ => None,
                    };
                    let t = pc + 1 + usize::from(insn.jt);
                    let f = pc + 1 + usize::from(insn.jf);
                    match taken {
                        Some(true) => pc = t,
                        Some(false) => pc = f,
                        None => {
                            stack.push((f, a, x, mem));
                            pc = t;
                        }
                    }
                    continue;
                }
                // BPF_RET
                0x06 => {
                    match insn.code & 0x18 {
                        0x00 => {
                            results.insert(k);
                        }
                        0x10 => match a {
                            Val::Known(v) => {
                                results.insert(v);
                            }
                            Val::Unknown => return None,
                        },
                        _ => return None,
                    }
                    break;
                }
                // BPF_MISC: TAX, TXA
                0x07 => match insn.code & 0xf8 {
                    0x00 => x = a,
                    0x80 => a = x,
                    _ => return None,
                },
                _ => return None,
            }
            pc += 1;
        }
    }
    Some(results)
}

fn load(offset: u32, nr: u32, arch: u32) -> Option<Val> {
    match offset {
        0 => Some(Val::Known(nr)),
        4 => Some(Val::Known(arch)),
        // instruction_pointer (8..16) and args[6] (16..64)
        8..=60 if offset.is_multiple_of(4) => Some(Val::Unknown),
        _ => None,
    }
}

fn alu(op: u16, a: Val, b: Val) -> Option<Val> {
    if op == 0x80 {
        // NEG
        return Some(match a {
            Val::Known(v) => Val::Known(v.wrapping_neg()),
            Val::Unknown => Val::Unknown,
        });
    }
    let (Val::Known(a), Val::Known(b)) = (a, b) else {
        // AND with 0 is 0 whatever the value.
        if op == 0x50 && (a == Val::Known(0) || b == Val::Known(0)) {
            return Some(Val::Known(0));
        }
        return Some(Val::Unknown);
    };
    Some(Val::Known(match op {
        0x00 => a.wrapping_add(b),
        0x10 => a.wrapping_sub(b),
        0x20 => a.wrapping_mul(b),
        0x30 => a.checked_div(b)?,
        0x40 => a | b,
        0x50 => a & b,
        0x60 => a.checked_shl(b).unwrap_or(0),
        0x70 => a.checked_shr(b).unwrap_or(0),
        0x90 => a.checked_rem(b)?,
        0xa0 => a ^ b,
        _ => return None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64: u32 = 0xc000_003e;
    const I386: u32 = 0x4000_0003;
    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    #[test]
    fn a_hand_written_filter() {
        // if arch != x86_64: kill; if nr == 0 (read): allow;
        // if nr == 41 (socket) and arg0 == 1: allow; else EPERM
        let prog = [
            insn(0x20, 0, 0, 4),
            insn(0x15, 1, 0, X86_64),
            insn(0x06, 0, 0, 0),
            insn(0x20, 0, 0, 0),
            insn(0x15, 0, 1, 0),
            insn(0x06, 0, 0, ALLOW),
            insn(0x15, 0, 3, 41),
            insn(0x20, 0, 0, 16),
            insn(0x15, 0, 1, 1),
            insn(0x06, 0, 0, ALLOW),
            insn(0x06, 0, 0, EPERM),
        ];
        assert_eq!(outcomes(&prog, 0, X86_64), Some(BTreeSet::from([ALLOW])));
        assert_eq!(outcomes(&prog, 41, X86_64), Some(BTreeSet::from([ALLOW, EPERM])));
        assert_eq!(outcomes(&prog, 1, X86_64), Some(BTreeSet::from([EPERM])));
        assert_eq!(outcomes(&prog, 0, I386), Some(BTreeSet::from([0])));
        // A jump past the end is refused, not followed.
        assert_eq!(outcomes(&[insn(0x05, 0, 0, 5)], 0, X86_64), None);
    }

    /// A filter libseccomp (the library runc and crun compile profiles
    /// with) generated, evaluated for every syscall of both ABIs.
    #[test]
    fn agrees_with_libseccomp_generated_programs() {
        use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
        let mut ctx = ScmpFilterContext::new(ScmpAction::Errno(1)).expect("filter");
        ctx.add_arch(ScmpArch::X86).expect("x86");
        for name in ["read", "write", "exit_group", "futex"] {
            ctx.add_rule(ScmpAction::Allow, ScmpSyscall::from_name(name).expect("name")).expect("rule");
        }
        ctx.add_rule_conditional(
            ScmpAction::Allow,
            ScmpSyscall::from_name("socket").expect("socket"),
            &[ScmpArgCompare::new(0, ScmpCompareOp::Equal, 1)],
        )
        .expect("socket rule");
        ctx.add_rule(ScmpAction::Errno(38), ScmpSyscall::from_name("clone3").expect("clone3")).expect("clone3");
        let mut file = tempfile::tempfile().expect("tmp");
        ctx.export_bpf(&mut file).expect("export");
        use std::io::{Read as _, Seek as _};
        file.rewind().expect("rewind");
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).expect("read");
        let prog = Insn::parse_all(&bytes);
        assert!(prog.len() > 10, "{} instructions", prog.len());
        for (arch, audit) in [(crate::syscalls::Arch::X86_64, X86_64), (crate::syscalls::Arch::X86, I386)] {
            for nr in 0..460 {
                let Some(name) = arch.name_of(nr) else { continue };
                let got = outcomes(&prog, nr, audit).expect("evaluates");
                let want: BTreeSet<u32> = match name {
                    "read" | "write" | "exit_group" | "futex" => BTreeSet::from([ALLOW]),
                    // On ia32 libseccomp also adds the rule to socketcall
                    // (call number SYS_SOCKET), the multiplexer old libcs use.
                    "socket" => BTreeSet::from([ALLOW, EPERM]),
                    "socketcall" if arch == crate::syscalls::Arch::X86 => BTreeSet::from([ALLOW, EPERM]),
                    "clone3" => BTreeSet::from([0x0005_0000 | 38]),
                    _ => BTreeSet::from([EPERM]),
                };
                assert_eq!(got, want, "{name} ({nr}) on {arch:?}");
            }
        }
        // An architecture the filter does not list: libseccomp's bad-arch
        // action (kill the thread).
        assert_eq!(outcomes(&prog, 0, 0xc000_00b7), Some(BTreeSet::from([0])));
    }
}
