//! The YAML profile reader: any text that does not start like JSON goes
//! through `check_str` (the YAML path), and whatever loads is written back
//! out and read again. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let body = text.trim_start_matches('\u{feff}').trim_start();
    if body.starts_with('{') || body.starts_with('[') {
        return;
    }
    if let Ok(report) = recorder::profile::check_str(text, "fuzz.yaml")
        && let Some(loaded) = report.loaded
    {
        let _ = recorder::profile::parse_str(&loaded.profile.to_oci_json(), "again.json");
    }
});
