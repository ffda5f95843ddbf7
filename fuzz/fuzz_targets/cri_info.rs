//! The CRI verbose info (`ContainerStatus`/`PodSandboxStatus` `info` map):
//! any text under the `"info"` key. Nothing may panic, and a PID of 0 never
//! comes back.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let info = HashMap::from([("info".to_owned(), text.to_owned())]);
    if let Ok(parsed) = recorder::cri::info::parse(&info) {
        assert_ne!(parsed.pid, Some(0));
        assert_ne!(parsed.cgroups_path.as_deref(), Some(""));
    }
});
