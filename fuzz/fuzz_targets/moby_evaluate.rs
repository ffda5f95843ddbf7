//! The moby template evaluator: a profile read from the input is evaluated
//! for an architecture, capability set and kernel taken from its first
//! bytes; `minKernel` strings also go through `parse_kernel`. Nothing may
//! panic, and evaluating twice changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recorder::{
    profile::{EvalContext, catalog, evaluate},
    syscalls::Arch,
};

fuzz_target!(|data: &[u8]| {
    let Some((&[arch, caps, major, minor], rest)) = data.split_first_chunk::<4>() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let _ = evaluate::parse_kernel(text);
    let Ok(loaded) = recorder::profile::parse_str(text, "fuzz") else { return };
    let native = Arch::ALL[usize::from(arch) % Arch::ALL.len()];
    let caps = catalog::DOCKER_DEFAULT_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| caps & (1 << (i % 8)) != 0)
        .map(|(_, c)| (*c).to_owned())
        .collect();
    let kernel = (major != 0).then_some((u32::from(major), u32::from(minor)));
    let ctx = EvalContext { native, caps, kernel };
    let once = loaded.profile.evaluate(&ctx);
    assert_eq!(once.evaluate(&ctx), once, "evaluating an evaluated profile changed it");
    let _ = once.to_oci_json();
});
