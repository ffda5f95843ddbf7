//! Byte offsets of struct members from the kernel's BTF (/sys/kernel/btf/vmlinux). aya's Rust
//! BPF side has no CO-RE relocations, so the loader reads the few offsets the programs need
//! here and passes them as globals. Enough of the BTF format (linux/btf.h, "BTF Type and
//! String Encoding") to walk struct/union members, through anonymous structs/unions and
//! typedefs. aya-obj parses BTF too, but keeps members private; the `btf` crate takes up to a
//! second on the kernel's 5 MiB (docs/abi-research.md, section 3).

use std::path::{Path, PathBuf};

/// Where the kernel publishes its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfOffsetError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not BTF this parser understands: {what}")]
    Format { path: PathBuf, what: String },
    #[error("kernel BTF has no struct {0}")]
    NoStruct(String),
    #[error("struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
    #[error("{path} is not a struct or union, so it has no member {next}")]
    NotAggregate { path: String, next: String },
    #[error("offset of {0} overflows")]
    Overflow(String),
    #[error("{strukt}.{member} is a bit field or not byte-aligned (bit offset {bits})")]
    NotByteAligned { strukt: String, member: String, bits: u32 },
}

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// The kernel's BTF, indexed just enough to look members up.
pub struct KernelBtf {
    data: Vec<u8>,
    big_endian: bool,
    strings: std::ops::Range<usize>,
    /// Byte position of each type's `struct btf_type` in `data`; index = type id - 1.
    types: Vec<usize>,
}

impl KernelBtf {
    /// Reads and indexes /sys/kernel/btf/vmlinux.
    pub fn from_sys_fs() -> Result<Self, BtfOffsetError> {
        Self::from_file(Path::new(VMLINUX_BTF))
    }

    pub fn from_file(path: &Path) -> Result<Self, BtfOffsetError> {
        let data = std::fs::read(path).map_err(|source| BtfOffsetError::Read { path: path.to_owned(), source })?;
        Self::parse(path.to_owned(), data)
    }

    fn parse(path: PathBuf, data: Vec<u8>) -> Result<Self, BtfOffsetError> {
        let bad = |what: &str| BtfOffsetError::Format { path: path.clone(), what: what.to_owned() };
        let big_endian = match data.get(0..2) {
            Some([0x9f, 0xeb]) => false,
            Some([0xeb, 0x9f]) => true,
            _ => return Err(bad("bad magic")),
        };
        let mut btf = Self { data, big_endian, strings: 0..0, types: Vec::new() };
        // struct btf_header: magic u16, version u8, flags u8, hdr_len, type_off, type_len,
        // str_off, str_len (u32 each); the sections start after hdr_len bytes.
        let hdr_len = btf.u32_at(4).ok_or_else(|| bad("short header"))? as usize;
        let field = |i: usize| btf.u32_at(8 + 4 * i).map(|v| v as usize).ok_or_else(|| bad("short header"));
        let (type_off, type_len, str_off, str_len) = (field(0)?, field(1)?, field(2)?, field(3)?);
        let types_start = hdr_len.checked_add(type_off).ok_or_else(|| bad("type section offset"))?;
        let types_end = types_start.checked_add(type_len).ok_or_else(|| bad("type section length"))?;
        let str_start = hdr_len.checked_add(str_off).ok_or_else(|| bad("string section offset"))?;
        let str_end = str_start.checked_add(str_len).ok_or_else(|| bad("string section length"))?;
        if types_end > btf.data.len() || str_end > btf.data.len() {
            return Err(bad("sections run past the end of the file"));
        }
        btf.strings = str_start..str_end;
        let mut pos = types_start;
        while pos < types_end {
            let info = btf.u32_at(pos + 4).ok_or_else(|| bad("truncated type"))?;
            let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
            // Bytes that follow the 12-byte struct btf_type, by kind.
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_FUNC
                | KIND_FLOAT | KIND_TYPE_TAG => 0,
                other => return Err(bad(&format!("unknown BTF kind {other}"))),
            };
            btf.types.push(pos);
            pos += 12 + extra;
        }
        if pos != types_end {
            return Err(bad("type section does not end on a type boundary"));
        }
        Ok(btf)
    }

    fn u32_at(&self, pos: usize) -> Option<u32> {
        let bytes: [u8; 4] = self.data.get(pos..pos.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian { u32::from_be_bytes(bytes) } else { u32::from_le_bytes(bytes) })
    }

    fn name(&self, name_off: u32) -> &[u8] {
        let start = self.strings.start.saturating_add(name_off as usize);
        let rest = self.data.get(start..self.strings.end).unwrap_or(&[]);
        rest.split(|&b| b == 0).next().unwrap_or(&[])
    }

    /// (name_off, info, size_or_type) of type `id`; None for void (0) or a bad id.
    fn header(&self, id: u32) -> Option<(u32, u32, u32)> {
        let pos = *self.types.get((id as usize).checked_sub(1)?)?;
        Some((self.u32_at(pos)?, self.u32_at(pos + 4)?, self.u32_at(pos + 8)?))
    }

    /// Follows typedef/const/volatile/restrict/type_tag to the underlying type id.
    fn strip(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.header(id) {
                Some((_, info, next))
                    if matches!(
                        (info >> 24) & 0x1f,
                        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = next
                }
                _ => break,
            }
        }
        id
    }

    fn is_aggregate(&self, id: u32) -> bool {
        matches!(self.header(id), Some((_, info, _)) if matches!((info >> 24) & 0x1f, KIND_STRUCT | KIND_UNION))
    }

    fn struct_id(&self, name: &str) -> Result<u32, BtfOffsetError> {
        (1..=u32::try_from(self.types.len()).unwrap_or(u32::MAX))
            .find(|&id| {
                matches!(self.header(id), Some((name_off, info, _))
                    if (info >> 24) & 0x1f == KIND_STRUCT && self.name(name_off) == name.as_bytes())
            })
            .ok_or_else(|| BtfOffsetError::NoStruct(name.to_owned()))
    }

    /// Bit offset and type of `member` in aggregate `id`, looking inside anonymous
    /// struct/union members. Rejects bit fields.
    fn member(&self, id: u32, strukt: &str, member: &str) -> Result<(u32, u32), BtfOffsetError> {
        fn find(btf: &KernelBtf, id: u32, member: &str, depth: u32) -> Option<(u32, u32, u32)> {
            let (_, info, _) = btf.header(id)?;
            let pos = *btf.types.get((id as usize).checked_sub(1)?)?;
            let kind_flag = info >> 31 == 1;
            for i in 0..(info & 0xffff) as usize {
                let m = pos + 12 + 12 * i;
                let (name_off, ty, raw) = (btf.u32_at(m)?, btf.u32_at(m + 4)?, btf.u32_at(m + 8)?);
                let (bits, bitfield) = if kind_flag { (raw & 0xff_ffff, raw >> 24) } else { (raw, 0) };
                if name_off == 0 && depth < 8 && btf.is_aggregate(btf.strip(ty)) {
                    if let Some((inner, ty, bf)) = find(btf, btf.strip(ty), member, depth + 1) {
                        return Some((bits.checked_add(inner)?, ty, bf));
                    }
                } else if btf.name(name_off) == member.as_bytes() {
                    return Some((bits, ty, bitfield));
                }
            }
            None
        }
        let (bits, ty, bitfield) = find(self, id, member, 0)
            .ok_or_else(|| BtfOffsetError::NoMember { strukt: strukt.to_owned(), member: member.to_owned() })?;
        if bitfield != 0 || bits % 8 != 0 {
            return Err(BtfOffsetError::NotByteAligned { strukt: strukt.to_owned(), member: member.to_owned(), bits });
        }
        Ok((bits, ty))
    }

    /// How many parameters the kernel function `name` takes, or `None` when
    /// the BTF has no such function (fexit reads the return value after
    /// them: `__secure_computing` lost its argument in Linux 6.15).
    pub fn param_count(&self, name: &str) -> Option<u32> {
        let func = (1..=u32::try_from(self.types.len()).unwrap_or(u32::MAX)).find(|&id| {
            matches!(self.header(id), Some((name_off, info, _))
                if (info >> 24) & 0x1f == KIND_FUNC && self.name(name_off) == name.as_bytes())
        })?;
        let (_, _, proto) = self.header(func)?;
        match self.header(proto)? {
            (_, info, _) if (info >> 24) & 0x1f == KIND_FUNC_PROTO => Some(info & 0xffff),
            _ => None,
        }
    }

    /// Byte offset of `path` (e.g. `["thread_info", "status"]`) inside `struct strukt`.
    pub fn offset_of(&self, strukt: &str, path: &[&str]) -> Result<u32, BtfOffsetError> {
        let mut id = self.struct_id(strukt)?;
        let mut bits: u32 = 0;
        let mut owner = strukt.to_owned();
        for (i, member) in path.iter().enumerate() {
            if i > 0 && !self.is_aggregate(id) {
                return Err(BtfOffsetError::NotAggregate { path: owner, next: (*member).to_owned() });
            }
            let (b, ty) = self.member(id, &owner, member)?;
            bits = bits.checked_add(b).ok_or_else(|| BtfOffsetError::Overflow(format!("{owner}.{member}")))?;
            id = self.strip(ty);
            owner = format!("{owner}.{member}");
        }
        Ok(bits / 8)
    }
}

/// Where the BPF program finds whether the current task is a 32-bit
/// (compat) task: a u32 at `offset` from its `struct task_struct`, and the
/// bit to test there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompatProbe {
    pub offset: u32,
    pub bit: u32,
}

impl CompatProbe {
    /// For this host's architecture: x86_64's `TS_COMPAT` (0x0002) in
    /// `thread_info.status`, set while a task is in a 32-bit syscall
    /// (arch/x86/include/asm/thread_info.h); arm64's `TIF_32BIT` (bit 22) in
    /// the low word of `thread_info.flags` (arch/arm64/include/asm/
    /// thread_info.h). `None` where the kernel has no compat ABI.
    pub fn host(btf: &KernelBtf) -> Result<Option<CompatProbe>, BtfOffsetError> {
        if cfg!(target_arch = "x86_64") {
            Ok(Some(CompatProbe { offset: btf.offset_of("task_struct", &["thread_info", "status"])?, bit: 0x0002 }))
        } else if cfg!(target_arch = "aarch64") {
            Ok(Some(CompatProbe { offset: btf.offset_of("task_struct", &["thread_info", "flags"])?, bit: 1 << 22 }))
        } else {
            Ok(None)
        }
    }
}

/// Where the kernel keeps a syscall's number in `struct pt_regs` (x86_64
/// `orig_ax`, arm64 `syscallno`): `sys_exit` gets no number of its own.
/// `None` where the architecture has no such field.
pub fn syscall_nr_offset(btf: &KernelBtf) -> Result<Option<u32>, BtfOffsetError> {
    if cfg!(target_arch = "x86_64") {
        btf.offset_of("pt_regs", &["orig_ax"]).map(Some)
    } else if cfg!(target_arch = "aarch64") {
        btf.offset_of("pt_regs", &["syscallno"]).map(Some)
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_kernel_has_the_offsets() {
        let btf = KernelBtf::from_sys_fs().expect("the kernel's BTF (tests need CONFIG_DEBUG_INFO_BTF)");
        // thread_info is task_struct's first member (CONFIG_THREAD_INFO_IN_TASK).
        assert_eq!(btf.offset_of("task_struct", &["thread_info"]).expect("thread_info"), 0);
        let probe = CompatProbe::host(&btf).expect("offsets");
        if cfg!(target_arch = "x86_64") {
            let probe = probe.expect("x86_64 has a compat ABI");
            assert_eq!(probe.offset, btf.offset_of("thread_info", &["status"]).expect("status"));
            assert_eq!(probe.bit, 2);
        }
    }

    #[test]
    fn the_syscall_number_is_found_in_pt_regs() {
        let btf = KernelBtf::from_sys_fs().expect("BTF");
        let offset = syscall_nr_offset(&btf).expect("offset");
        if cfg!(target_arch = "x86_64") {
            // orig_ax follows r15..di (15 registers of 8 bytes).
            assert_eq!(offset, Some(120));
        }
    }

    #[test]
    fn function_parameters_are_counted() {
        let btf = KernelBtf::from_sys_fs().expect("BTF");
        // long ksys_write(unsigned int fd, const char *buf, size_t count)
        assert_eq!(btf.param_count("ksys_write"), Some(3));
        // int __secure_computing(const struct seccomp_data *sd), without the argument since 6.15
        assert!(matches!(btf.param_count("__secure_computing"), Some(0 | 1)));
        assert_eq!(btf.param_count("no_such_function"), None);
    }

    #[test]
    fn missing_names_are_errors_not_guesses() {
        let btf = KernelBtf::from_sys_fs().expect("BTF");
        assert!(matches!(btf.offset_of("no_such_struct", &["x"]), Err(BtfOffsetError::NoStruct(_))));
        assert!(matches!(btf.offset_of("task_struct", &["no_such_member"]), Err(BtfOffsetError::NoMember { .. })));
    }

    #[test]
    fn garbage_is_a_format_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("btf");
        std::fs::write(&path, b"not btf at all").expect("write");
        assert!(matches!(KernelBtf::from_file(&path), Err(BtfOffsetError::Format { .. })));
        std::fs::write(&path, [0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).expect("write");
        assert!(matches!(KernelBtf::from_file(&path), Err(BtfOffsetError::Format { .. })));
    }
}
