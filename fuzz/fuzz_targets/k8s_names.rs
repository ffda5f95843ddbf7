//! Names from tenants (namespace, pod, container) on their way to file
//! names: a name that passes validation never makes a path that leaves the
//! directory it is meant for.
#![no_main]

use std::path::Component;

use libfuzzer_sys::fuzz_target;
use recorder::target::pod::names::ContainerNames;

fuzz_target!(|text: &str| {
    let mut parts = text.splitn(3, '\n');
    let names = ContainerNames {
        namespace: parts.next().unwrap_or_default(),
        pod: parts.next().unwrap_or_default(),
        container: parts.next().unwrap_or_default(),
    };
    if let Ok(file) = names.file_name() {
        assert!(!file.contains('/') && !file.contains('\0') && !file.starts_with('.'), "{file:?}");
    }
    if let Ok(path) = names.install_path() {
        assert!(path.components().all(|c| matches!(c, Component::Normal(_))), "{path:?}");
        assert_eq!(path.components().count(), 4, "{path:?}");
    }
});
