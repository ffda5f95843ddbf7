//! A throwaway OCI bundle whose entrypoint only exits, for `recorder
//! baseline`: everything a runtime does around it is the runtime's own.

use std::{
    io,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use super::supervise::{self, RunError};
use crate::syscalls::Family;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot prepare the bundle in {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{runtime} spec` failed: {message}")]
    Spec { runtime: String, message: String },
    #[error("config.json from `{0} spec` is not the JSON object expected")]
    Config(String),
    #[error("recorder baseline needs an x86_64 host (its test entrypoint is x86_64 machine code)")]
    UnsupportedArch,
    #[error(transparent)]
    Run(#[from] RunError),
}

/// A static x86_64 ELF executable of 129 bytes whose whole life is
/// `exit_group(0)`: an ELF header, one PT_LOAD program header, then
/// `mov eax, 231; xor edi, edi; syscall`. Built here rather than shipped as
/// a blob so every byte is explained.
pub fn exit_elf() -> Result<Vec<u8>, BundleError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(BundleError::UnsupportedArch);
    }
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    let code: [u8; 9] = [0xb8, 0xe7, 0x00, 0x00, 0x00, 0x31, 0xff, 0x0f, 0x05];
    let size = HEADERS + code.len() as u64;
    let mut elf = Vec::with_capacity(size as usize);
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // 64-bit, LE, v1
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // e_machine: x86-64
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // e_entry: the code
    elf.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    elf.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    elf.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    elf.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // p_flags: R+X
    elf.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    elf.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    elf.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    elf.extend_from_slice(&size.to_le_bytes()); // p_filesz
    elf.extend_from_slice(&size.to_le_bytes()); // p_memsz
    elf.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    elf.extend_from_slice(&code);
    Ok(elf)
}

/// A bundle directory: rootfs with `/exit`, and config.json from the
/// runtime's own `spec`, changed to run `/exit` under a permissive seccomp
/// filter (so the runtime installs one and the boundary is visible), in
/// `cgroups_path`. `no_new_privs` matters: with it the runtime installs the
/// filter as late as it can; without it (the kubelet's default unless
/// `allowPrivilegeEscalation: false`) it installs it before dropping
/// capabilities and changing user, so more of its calls run under it.
pub struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    /// A bundle in `scratch`; `timeout` bounds each runtime command.
    pub fn create(
        scratch: &Path,
        runtime: &Path,
        cgroups_path: &str,
        no_new_privs: bool,
        timeout: Duration,
    ) -> Result<Bundle, BundleError> {
        let dir = tempfile::Builder::new()
            .prefix("bundle.")
            .tempdir_in(scratch)
            .map_err(|source| BundleError::Io { path: scratch.to_path_buf(), source })?;
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BundleError::Io { path, source }
        };
        let rootfs = dir.path().join("rootfs");
        for sub in ["proc", "dev", "sys", "tmp"] {
            std::fs::create_dir_all(rootfs.join(sub)).map_err(io_err(&rootfs))?;
        }
        let exit = rootfs.join("exit");
        std::fs::write(&exit, exit_elf()?).map_err(io_err(&exit))?;
        std::fs::set_permissions(&exit, std::fs::Permissions::from_mode(0o755)).map_err(io_err(&exit))?;

        let shown = runtime.display().to_string();
        let log = dir.path().join("spec.log");
        let spec = supervise::run(Command::new(runtime).arg("spec").current_dir(dir.path()), &log, timeout)?;
        if !spec.status.success() {
            return Err(BundleError::Spec { runtime: shown, message: first_line(&spec) });
        }
        let config_path = dir.path().join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(io_err(&config_path))?;
        let mut config: serde_json::Value =
            serde_json::from_str(&text).map_err(|_| BundleError::Config(shown.clone()))?;
        let family = Family::host();
        let obj = config.as_object_mut().ok_or_else(|| BundleError::Config(shown.clone()))?;
        obj.insert("root".into(), serde_json::json!({"path": "rootfs", "readonly": true}));
        let process =
            obj.get_mut("process").and_then(|p| p.as_object_mut()).ok_or_else(|| BundleError::Config(shown.clone()))?;
        process.insert("args".into(), serde_json::json!(["/exit"]));
        process.insert("terminal".into(), serde_json::json!(false));
        process.insert("noNewPrivileges".into(), serde_json::json!(no_new_privs));
        let linux = obj.get_mut("linux").and_then(|l| l.as_object_mut()).ok_or(BundleError::Config(shown))?;
        linux.insert("cgroupsPath".into(), serde_json::json!(cgroups_path));
        linux.insert(
            "seccomp".into(),
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": family.scmp_names(),
                // One rule, so the runtime builds and installs a real filter.
                "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
            }),
        );
        let text = serde_json::to_string_pretty(&config).unwrap_or_default();
        std::fs::write(&config_path, text).map_err(io_err(&config_path))?;
        Ok(Bundle { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the container the way containerd and CRI-O do: `create` (the
    /// init sets up, installs the filter, then waits for `start` on its exec
    /// fifo, still under the filter), `start`, wait until it stopped,
    /// `delete`. A plain `run` would skip that wait and miss its calls.
    /// Each runtime command gets `timeout` (see [`supervise::run`]).
    pub fn run(&self, runtime: &Path, id: &str, timeout: Duration) -> Result<Output, RunError> {
        let state = self.dir.path().join("state");
        let log = self.dir.path().join("runtime.log");
        let run = |args: &[&str]| {
            let mut c = Command::new(runtime);
            c.arg("--root").arg(&state).args(args);
            supervise::run(&mut c, &log, timeout)
        };
        let bundle = self.dir.path().to_string_lossy().into_owned();
        let created = run(&["create", "--bundle", &bundle, id])?;
        if !created.status.success() {
            return Ok(created);
        }
        let started = run(&["start", id]);
        // The container's init exits by itself at once; give it the same
        // time as one command before deleting it by force.
        let deadline = std::time::Instant::now() + timeout;
        while started.as_ref().is_ok_and(|s| s.status.success()) && std::time::Instant::now() < deadline {
            let state = run(&["state", id])?;
            if !state.status.success() || String::from_utf8_lossy(&state.stderr).contains("\"stopped\"") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let deleted = run(&["delete", "--force", id]);
        let started = started?;
        deleted?;
        Ok(started)
    }
}

/// The first line of a failed command's stderr (or stdout), for errors.
pub fn first_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    stderr.lines().chain(stdout.lines()).find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn exit_elf_is_a_valid_header() {
        let elf = exit_elf().expect("x86_64");
        assert_eq!(elf.len(), 129);
        assert_eq!(&elf[..4], b"\x7fELF");
        // e_entry points at the code right after the headers.
        assert_eq!(u64::from_le_bytes(elf[24..32].try_into().expect("8 bytes")), 0x40_0078);
        assert_eq!(&elf[120..], &[0xb8, 0xe7, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05]);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn exit_elf_runs_and_exits_zero() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("exit");
        std::fs::write(&path, exit_elf().expect("elf")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let status = Command::new(&path).status().expect("runs");
        assert!(status.success());
    }
}
