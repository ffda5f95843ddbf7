//! Loading the BPF programs and reading their maps.
