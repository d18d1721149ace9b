//! Kubeconfig bytes: `load_bytes` then `resolve(None)`.
//! The body (and the properties checked) is `kubeconfig` in `fuzz/harness.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::kubeconfig(data);
});
