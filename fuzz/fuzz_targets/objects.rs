//! Apiserver objects (Job, Pod, JobList, PodList, watch events) and what is derived
//! from them (`job_state`, `pick_pod`).
//! The body (and the properties checked) is `objects` in `fuzz/harness.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::objects(data);
});
