//! An exec credential plugin's stdout: `kube::exec::parse_output`.
//! The body (and the properties checked) is `exec_output` in `fuzz/harness.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::exec_output(data);
});
