//! JobName / Namespace / RunId parsing, and the apiserver paths built from any text.
//! The body (and the properties checked) is `names` in `fuzz/harness.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::names(data);
});
