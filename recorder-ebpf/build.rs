use which::which;

/// Rebuild when bpf-linker changes: the linker is what turns the crate into a
/// BPF object, and cargo cannot see it otherwise (same as aya-template).
fn main() {
    if let Ok(linker) = which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
