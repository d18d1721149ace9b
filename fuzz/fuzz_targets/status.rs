//! A non-2xx apiserver answer: `KubeError::from_response(code, body)`.
//! The body (and the properties checked) is `status` in `fuzz/harness.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::status(data);
});
