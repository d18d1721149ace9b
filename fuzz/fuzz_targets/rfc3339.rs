//! `parse_rfc3339`, and the `format_rfc3339` round trip.
//! The body (and the properties checked) is `rfc3339` in `fuzz/harness.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::rfc3339(data);
});
