//! The SPO `SeccompProfile` reader: the input becomes the `spec` of a v1 or
//! v1beta1 resource (chosen by the first byte), so every run reaches the SPO
//! path rather than dying on a missing `kind`. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else { return };
    let Ok(spec) = std::str::from_utf8(rest) else { return };
    let version = if first & 1 == 0 { "v1" } else { "v1beta1" };
    let spec: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    let text = format!(
        "apiVersion: security-profiles-operator.x-k8s.io/{version}\nkind: SeccompProfile\nmetadata:\n  name: fuzz\nspec:\n{spec}"
    );
    let _ = recorder::profile::check_str(&text, "fuzz.yaml");
});
