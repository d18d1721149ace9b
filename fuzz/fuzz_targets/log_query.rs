//! The log endpoints' query and path segments through `api::routes` (warp), with no
//! cluster.
//! The body (and the properties checked) is `log_query` in `fuzz/harness.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::log_query(data);
});
