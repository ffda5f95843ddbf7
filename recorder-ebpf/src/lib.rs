//! Empty on purpose: this library target lets `recorder` list recorder-ebpf
//! as a build-dependency, so cargo rebuilds the BPF object when this crate
//! changes (aya-template's layout). The programs are in `main.rs`.
#![no_std]
