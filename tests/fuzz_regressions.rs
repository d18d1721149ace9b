//! Nasty inputs for every fuzz target in `fuzz/`, run by plain `cargo test` through the
//! very code the fuzzer runs (`fuzz/harness.rs`): empty input, NUL bytes, invalid
//! UTF-8, nesting 100,000 deep, YAML alias bombs, 10 MB strings, out-of-range numbers,
//! `null` where lists are expected; and every input the fuzzer found crashing.
//!
//! Each harness function asserts its target's properties itself (no panic, errors that
//! format, round trips); the tests below add what each input must come to.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use sparktest_k8s::cluster::kubeconfig::KubeconfigError;
use sparktest_k8s::kube::KubeError;
use sparktest_k8s::kube::resources::{Job, List, Pod};
use sparktest_k8s::names::{JobName, Namespace, RunId};

const TEN_MB: usize = 10 * 1024 * 1024;

/// Inputs every target gets: the shapes that break parsers.
fn generic_nasties() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b" ".to_vec(),
        b"\0".to_vec(),
        vec![0; 4096],
        b"\xff\xfe\xfd".to_vec(),
        b"\xc3".to_vec(),
        b"\xef\xbb\xbf{}".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{}".to_vec(),
        b"\"\\ud800\"".to_vec(),
        b"1e999999".to_vec(),
        "[".repeat(100_000).into_bytes(),
        "{\"a\":".repeat(20_000).into_bytes(),
        format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)).into_bytes(),
    ]
}

/// Runs `f` and fails when it takes longer than `limit`: for inputs whose risk is a
/// hang rather than a panic. The bound is generous (debug build, loaded machine).
fn within<T>(limit: Duration, what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(took < limit, "{what} took {took:?}");
    out
}

// ---------------------------------------------------------------------------------------
// kubeconfig

fn parse_error(result: Result<impl std::fmt::Debug, KubeconfigError>) -> String {
    match result {
        Err(KubeconfigError::Parse { message, .. }) => message,
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn kubeconfig_generic_nasties_are_errors() {
    for input in generic_nasties() {
        assert!(
            harness::kubeconfig(&input).is_err(),
            "{:?}",
            &input[..16.min(input.len())]
        );
    }
}

#[test]
fn kubeconfig_empty_and_blank_files_are_empty_configs_without_a_context() {
    for input in [&b""[..], b"   \n\t\n", b"# only a comment\n", b"---\n"] {
        match harness::kubeconfig(input) {
            Err(KubeconfigError::NoContext { .. }) => {}
            // A lone comment or document marker is not "blank" text: it parses (or
            // not) as YAML, and has no context either way.
            Err(KubeconfigError::Parse { .. }) => {}
            other => panic!("{input:?}: {other:?}"),
        }
    }
}

#[test]
fn kubeconfig_invalid_utf8_and_nul_bytes_are_parse_errors() {
    assert!(parse_error(harness::kubeconfig(b"current-context: \xff\xfe\n")).contains("UTF-8"));
    assert!(harness::kubeconfig(b"current-context: \"a\0b\"\n").is_err());
    assert!(harness::kubeconfig(b"\0\0\0\0").is_err());
}

#[test]
fn kubeconfig_deep_nesting_is_refused_not_a_stack_overflow() {
    let inputs = [
        format!("current-context: {}", "[".repeat(100_000)),
        format!("preferences: {}", "{a: ".repeat(100_000)),
        format!("clusters:\n{}x\n", "- ".repeat(100_000)),
        // Nested where a serde_json::Value takes anything.
        format!(
            "users:\n- name: u\n  user:\n    auth-provider: {}1{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        ),
    ];
    for input in inputs {
        within(Duration::from_secs(10), "deep YAML", || {
            assert!(harness::kubeconfig(input.as_bytes()).is_err());
        });
    }
}

/// Nine levels of ten aliases each: 10^9 "lol"s if aliases were expanded naively.
fn billion_laughs(indent: &str) -> String {
    let mut yaml = format!("{indent}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        yaml.push_str(&format!("{indent}l{i}: &l{i} [{refs}]\n"));
    }
    yaml
}

#[test]
fn kubeconfig_billion_laughs_is_refused_quickly() {
    // In the cluster extension that is copied into the exec plugin's cluster info: a
    // serde_json::Value, so the aliases would be materialised. (In an ignored field,
    // such as `preferences:`, the same YAML budget trips: it counts expanded nodes.)
    let yaml = format!(
        "current-context: c\n\
         contexts:\n- name: c\n  context: {{cluster: k, user: u}}\n\
         clusters:\n- name: k\n  cluster:\n    server: https://k.example\n    extensions:\n\
         \x20   - name: client.authentication.k8s.io/exec\n      extension:\n{}\
         users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n\
         \x20     command: plugin\n      provideClusterInfo: true\n",
        billion_laughs("        ")
    );
    let result = within(Duration::from_secs(20), "billion laughs", || {
        harness::kubeconfig(yaml.as_bytes())
    });
    // serde-saphyr's default budget: at most 250,000 nodes, aliases expanded.
    match result {
        Err(KubeconfigError::Parse { message, .. }) => {
            assert!(message.contains("budget"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn kubeconfig_many_small_aliases_stay_bounded() {
    // 5,000 aliases of one small anchor: within the YAML budget, but all expanded.
    let mut yaml = String::from("preferences:\n  a: &a {x: 1, y: 2}\n  b: [");
    yaml.push_str(&vec!["*a"; 5_000].join(", "));
    yaml.push_str("]\ncurrent-context: c\n");
    within(Duration::from_secs(10), "5k aliases", || {
        let _ = harness::kubeconfig(yaml.as_bytes());
    });
}

#[test]
fn kubeconfig_ten_megabyte_strings() {
    let big = "a".repeat(TEN_MB);
    // A 10 MB context name that is not defined: a Missing error (which names it: the
    // error is long, but it is an error).
    let result = harness::kubeconfig(format!("current-context: {big}\n").as_bytes());
    assert!(
        matches!(result, Err(KubeconfigError::Missing { .. })),
        "{:.200?}",
        result
    );
    // A 10 MB token resolves: the token is the token.
    let yaml = format!(
        "current-context: c\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\n\
         clusters:\n- name: k\n  cluster: {{server: 'https://k.example'}}\n\
         users:\n- name: u\n  user: {{token: {big}}}\n"
    );
    let config = harness::kubeconfig(yaml.as_bytes()).expect("a 10 MB token resolves");
    assert_eq!(config.auth.kind(false), "token");
}

#[test]
fn kubeconfig_odd_but_valid_shapes() {
    let base = "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n";
    let cases: [(&str, bool); 8] = [
        // null lists, null entries
        ("clusters: null\nusers: ~\ncontexts: []\n", false),
        (
            &*format!("{base}clusters:\n- name: k\n  cluster: null\nusers: []\n"),
            false,
        ),
        // a number where a name is expected, a list where a string is
        (&*format!("{base}clusters:\n- name: 123\n"), false),
        (&*format!("{base}clusters:\n- name: [k]\n"), false),
        // a server URL that is not one: bad port, unclosed IPv6, only spaces, a query
        (
            &*format!("{base}clusters:\n- name: k\n  cluster: {{server: 'https://h:99999'}}\n"),
            false,
        ),
        (
            &*format!("{base}clusters:\n- name: k\n  cluster: {{server: 'https://[::1'}}\n"),
            false,
        ),
        (
            &*format!("{base}clusters:\n- name: k\n  cluster: {{server: '   '}}\n"),
            false,
        ),
        // duplicate keys in one mapping
        ("current-context: a\ncurrent-context: b\n", false),
    ];
    for (yaml, ok) in cases {
        let result = harness::kubeconfig(yaml.as_bytes());
        assert_eq!(result.is_ok(), ok, "{yaml}\n{result:?}");
    }
    // Several documents in one file.
    let _ = harness::kubeconfig(b"current-context: a\n---\ncurrent-context: b\n");
    // A CA as base64 with 1 MB of whitespace in it.
    let yaml = format!(
        "current-context: c\ncontexts:\n- name: c\n  context: {{cluster: k}}\n\
         clusters:\n- name: k\n  cluster:\n    server: https://k.example\n    \
         certificate-authority-data: \"aGVs{}bG8=\"\n",
        " ".repeat(1 << 20)
    );
    let config = harness::kubeconfig(yaml.as_bytes()).expect("whitespace in base64 is ignored");
    assert_eq!(config.tls.ca_pem.as_deref(), Some(&b"hello"[..]));
}

/// Found by reading `resolve` while writing the `kubeconfig` target, and reproduced with
/// the fuzz binary (`libFuzzer: out-of-memory (malloc(1073741824))`): the files a
/// kubeconfig names are read with an unbounded `std::fs::read`, so
/// `certificate-authority: /dev/zero` reads until memory runs out (and a FIFO blocks).
///
/// Unbounded, the read would take the machine's memory, so the check runs in a child
/// process limited to 2 GiB of address space (`ulimit -v`), where the read fails with
/// "out of memory" instead. After the fix the error must be about the file, not memory.
#[test]

fn kubeconfig_oom_certificate_authority_dev_zero() {
    const CHILD: &str = "SPARKTEST_FUZZ_REGRESSION_CHILD";
    const INPUT: &[u8] = b"current-context: c\n\
        contexts:\n- name: c\n  context: {cluster: k}\n\
        clusters:\n- name: k\n  cluster: {server: 'https://k', certificate-authority: /dev/zero}\n";
    if std::env::var_os(CHILD).is_some() {
        // Before the fix, the read stops only when an allocation fails (here at the
        // 2 GiB limit; in a pod, the OOM killer comes first): the error says so.
        match harness::kubeconfig(INPUT) {
            Err(KubeconfigError::Field { field, message, .. }) => {
                assert_eq!(field, "certificate-authority");
                assert!(!message.contains("memory"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        return;
    }
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 2097152 && exec "$0" --exact "$1" --include-ignored --test-threads=1"#)
        .arg(std::env::current_exe().unwrap())
        .arg("kubeconfig_oom_certificate_authority_dev_zero")
        .env(CHILD, "1")
        .status()
        .unwrap();
    assert!(status.success(), "the child failed: {status}");
}

// ---------------------------------------------------------------------------------------
// status

fn message(err: &KubeError) -> String {
    match err {
        KubeError::Api { status, .. } => status.message.clone().unwrap_or_default(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn status_generic_nasties_become_api_errors() {
    for body in generic_nasties() {
        for code in [0u16, 400, 404, 500, u16::MAX] {
            let mut input = code.to_be_bytes().to_vec();
            input.extend_from_slice(&body);
            let err = harness::status(&input);
            assert_eq!(err.code(), Some(code));
            // A fallback message holds at most 256 bytes of the body (each invalid byte
            // can become a 3-byte U+FFFD).
            assert!(message(&err).len() <= 3 * 256 + 40, "{code}");
        }
    }
    // Shorter than a code: code 500.
    assert_eq!(harness::status(b"").code(), Some(500));
    assert_eq!(harness::status(b"\x01").code(), Some(500));
}

#[test]
fn status_ten_megabyte_bodies_are_cut_to_their_first_bytes() {
    let mut input = 502u16.to_be_bytes().to_vec();
    input.extend(std::iter::repeat_n(b'x', TEN_MB));
    assert_eq!(message(&harness::status(&input)), "x".repeat(256));
    // Cut inside a multi-byte character.
    let mut input = 502u16.to_be_bytes().to_vec();
    input.extend("€".repeat(TEN_MB / 3).as_bytes());
    assert!(message(&harness::status(&input)).ends_with('\u{fffd}'));
    // A Status whose message is 10 MB is kept whole: it is the apiserver's message.
    let body = format!(r#"{{"message":"{}","reason":"X"}}"#, "m".repeat(TEN_MB));
    let mut input = 500u16.to_be_bytes().to_vec();
    input.extend(body.as_bytes());
    assert_eq!(harness::status(&input).reason(), Some("X"));
}

#[test]
fn status_bodies_that_are_almost_a_status() {
    for body in [
        &br#"{"message":null,"reason":null}"#[..],
        br#"{"code":99999,"message":"out of range"}"#,
        br#"{"code":-1,"message":"negative"}"#,
        br#"{"message":"m","details":{"causes":null,"retryAfterSeconds":-5}}"#,
        br#"{"message":"m","details":{"retryAfterSeconds":18446744073709551616}}"#,
        br#"{"message":7}"#,
        br#"{"message":"a\u0000b","reason":"NUL"}"#,
    ] {
        let mut input = 409u16.to_be_bytes().to_vec();
        input.extend_from_slice(body);
        let err = harness::status(&input);
        assert_eq!(err.code(), Some(409), "{}", String::from_utf8_lossy(body));
    }
}

// ---------------------------------------------------------------------------------------
// objects

#[test]
fn objects_generic_nasties_do_not_panic() {
    for input in generic_nasties() {
        let decoded = harness::objects(&input);
        assert!(decoded.state_with_pods.is_none());
    }
}

#[test]
fn objects_deep_nesting_is_a_decode_error() {
    let deep_in_a_field = format!(
        r#"{{"metadata":{{"name":"j"}},"status":{{"x":{}}}}}"#,
        "[".repeat(100_000)
    );
    let decoded = harness::objects(deep_in_a_field.as_bytes());
    assert!(decoded.job.is_none() && decoded.pod.is_none());
    assert!(serde_json::from_str::<Job>(&deep_in_a_field).is_err());
}

#[test]
fn objects_counts_out_of_i32_range_are_errors_not_wraps() {
    for count in [
        "2147483648",
        "-2147483649",
        "1e3",
        "1.5",
        "\"1\"",
        "99999999999999999999",
    ] {
        let job = format!(r#"{{"status":{{"active":{count}}}}}"#);
        assert!(harness::objects(job.as_bytes()).job.is_none(), "{count}");
        let pod = format!(
            r#"{{"status":{{"containerStatuses":[{{"name":"c","restartCount":{count}}}]}}}}"#
        );
        assert!(harness::objects(pod.as_bytes()).pod.is_none(), "{count}");
    }
}

#[test]
fn objects_counts_at_the_i32_edges_are_fine() {
    let job = br#"{"status":{"active":2147483647,"ready":-2147483648,"succeeded":-1,"failed":2147483647}}"#;
    let pods = br#"{"items":[
        {"metadata":{"name":"a"},"status":{"phase":"Pending","containerStatuses":[{"name":"c","restartCount":2147483647}]}},
        {"metadata":{"name":"b"},"status":{"phase":"Pending","containerStatuses":[{"name":"c","restartCount":-2147483648}]}}
    ]}"#;
    let mut input = job.to_vec();
    input.push(0);
    input.extend_from_slice(pods);
    let decoded = harness::objects(&input);
    assert!(decoded.state_with_pods.is_some());
    // Negative counts (a broken apiserver) are not "active".
    let job = br#"{"status":{"active":-2147483648}}"#;
    assert!(harness::objects(job).job.is_some());
}

#[test]
fn objects_null_where_lists_are_expected() {
    // Whether a null list decodes (as empty) or is refused, it never panics, and a list
    // that decodes from null is empty.
    for input in [
        &br#"{"items":null}"#[..],
        br#"{"metadata":null,"items":[]}"#,
        br#"{"status":{"conditions":null}}"#,
        br#"{"spec":{"containers":null},"status":{"containerStatuses":null,"conditions":null}}"#,
        br#"{"status":{"uncountedTerminatedPods":{"succeeded":null,"failed":null}}}"#,
        br#"{"spec":{"selector":{"matchLabels":null,"matchExpressions":null}}}"#,
        br#"{"metadata":{"labels":null,"annotations":null}}"#,
    ] {
        let decoded = harness::objects(input);
        if let Some(list) = decoded.pods {
            assert!(list.items.is_empty());
        }
        if let Some(list) = decoded.jobs {
            assert!(list.items.is_empty());
        }
    }
    // Null entries inside a list are errors.
    assert!(serde_json::from_slice::<List<Pod>>(br#"{"items":[null]}"#).is_err());
}

#[test]
fn objects_ten_megabyte_strings_and_many_pods() {
    let failed = |message: &str| {
        format!(
            r#"{{"status":{{"conditions":[{{"type":"Failed","status":"True","message":"{message}"}}]}}}}"#
        )
    };
    // 10 MB through the decoding and the state (the harness decodes its input seven
    // ways: 1 MB through it keeps the debug build fast).
    let job: Job = serde_json::from_str(&failed(&"n".repeat(TEN_MB))).unwrap();
    let state = sparktest_k8s::jobs::status::job_state(&job, None);
    assert_eq!(state.message.map(|m| m.len()), Some(TEN_MB));
    let decoded = harness::objects(failed(&"n".repeat(1 << 20)).as_bytes());
    assert!(decoded.job.is_some());

    // 2,000 pods with the same rank: pick_pod falls through every comparison.
    let pod = r#"{"metadata":{"name":"p","creationTimestamp":"2026-01-01T00:00:00Z"},"spec":{"nodeName":"n"},"status":{"phase":"Running"}}"#;
    let pods = format!(r#"{{"items":[{}]}}"#, vec![pod; 2_000].join(","));
    let mut input = br#"{"status":{"active":1,"startTime":"2026-01-01T00:00:00Z"}}"#.to_vec();
    input.push(0);
    input.extend(pods.as_bytes());
    let decoded = harness::objects(&input);
    assert!(decoded.state_with_pods.is_some());
    let pods: List<Pod> = serde_json::from_str(&pods).unwrap();
    assert!(sparktest_k8s::jobs::pods::pick_pod(&pods.items).is_some());
}

#[test]
fn objects_watch_events_with_odd_objects() {
    for line in [
        &br#"{"type":"ADDED","object":null}"#[..],
        br#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":12}}}"#,
        br#"{"type":"BOOKMARK","object":{"kind":"Pod","spec":{"containers":null}}}"#,
        br#"{"type":"ERROR","object":{"code":410,"message":"too old"}}"#,
        br#"{"type":"ERROR","object":{"code":70000}}"#,
        br#"{"type":"MODIFIED","object":[1,2,3]}"#,
        br#"{"object":{"metadata":{"resourceVersion":"1"}}}"#,
    ] {
        let _ = harness::objects(line);
    }
}

// ---------------------------------------------------------------------------------------
// names

#[test]
fn names_generic_nasties_are_not_names_and_stay_one_segment() {
    for input in generic_nasties() {
        if input.len() > 16 * 1024 {
            // Long text is covered by the test below; here only the parsers.
            let text = String::from_utf8_lossy(&input);
            assert!(text.parse::<JobName>().is_err() && text.parse::<Namespace>().is_err());
            assert!(text.parse::<RunId>().is_err());
            continue;
        }
        let names = harness::names(&input);
        if input == b"null" || input == b"1e999999" {
            // Perfectly good names.
            assert!(names.job.is_some() && names.namespace.is_some());
            continue;
        }
        assert!(names.job.is_none() && names.namespace.is_none() && names.run_id.is_none());
    }
}

#[test]
fn names_that_try_to_change_the_path() {
    for input in [
        "..",
        ".",
        "../../secrets",
        "a/b",
        "%2F",
        "%252F",
        "a?b=c",
        "a#b",
        "a b",
        "a+b",
        "a&b=c",
        "job\0",
        "\u{2215}",
        "\u{ff0f}",
        "ä",
        "a\nb/c",
        "\r\n",
        "\u{feff}job",
        "\u{fffd}",
    ] {
        let names = harness::names(input.as_bytes());
        assert!(names.job.is_none(), "{input:?}");
        assert!(names.namespace.is_none(), "{input:?}");
        assert!(names.run_id.is_none(), "{input:?}");
    }
}

#[test]
fn names_at_the_edges() {
    let n63 = "a".repeat(63);
    let dotted = format!("{}.{}", "a".repeat(31), "b".repeat(31));
    for (input, job, namespace, run_id) in [
        ("a", true, true, false),
        (n63.as_str(), true, true, false),
        (dotted.as_str(), true, false, false),
        ("550E8400-E29B-41D4-A716-446655440000", false, false, true),
        ("550e8400-e29b-41d4-a716-446655440000", true, true, true),
        ("0", true, true, false),
        ("a-", false, false, false),
    ] {
        let names = harness::names(input.as_bytes());
        assert_eq!(names.job.is_some(), job, "{input}");
        assert_eq!(names.namespace.is_some(), namespace, "{input}");
        assert_eq!(names.run_id.is_some(), run_id, "{input}");
    }
    let names = harness::names("a".repeat(64).as_bytes());
    assert!(names.job.is_none() && names.namespace.is_none());
}

#[test]
fn names_ten_megabytes_are_rejected_and_long_text_is_encoded() {
    // Parsing 10 MB stops at the length check.
    let big = "a".repeat(TEN_MB);
    assert!(big.parse::<JobName>().is_err());
    assert!(big.parse::<Namespace>().is_err());
    assert!(big.parse::<RunId>().is_err());
    // The harness also encodes and decodes the text into every path, a dozen passes: a
    // smaller size keeps the debug build fast (encoding is linear).
    for input in [
        "a".repeat(1 << 16),
        "/".repeat(1 << 14),
        "é".repeat(1 << 14),
    ] {
        let names = harness::names(input.as_bytes());
        assert!(names.job.is_none() && names.namespace.is_none() && names.run_id.is_none());
    }
}

// ---------------------------------------------------------------------------------------
// rfc3339

#[test]
fn rfc3339_generic_nasties_are_not_times() {
    for input in generic_nasties() {
        assert_eq!(harness::rfc3339(&input), None);
    }
}

#[test]
fn rfc3339_malformed_and_multibyte_text() {
    for input in [
        "2025-07-07T10:30:0é",
        "2025-07-07T10:30:00é",
        "2025-07-07T10:30:00.é",
        "2025-07-07T10:30:00.1é",
        "2025-07-07T10:30:00\u{0}Z",
        "2025-07-07T10:30:00+0é:00",
        "2025-07-07T10:30:00+02:0",
        "2025-07-07T10:30:00+02:000",
        "2025-07-07T10:30:00ZZ",
        "2025-07-07T10:30:00-",
        "+025-07-07T10:30:00Z",
        "2025-+7-07T10:30:00Z",
        "2025-07-07T1 :30:00Z",
        "0000-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00+00:01",
        "\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}",
    ] {
        assert_eq!(harness::rfc3339(input.as_bytes()), None, "{input:?}");
    }
    assert_eq!(harness::rfc3339(b"2025-07-07T10:30:00\xff"), None);
}

#[test]
fn rfc3339_long_fractions_and_edges_parse() {
    let long = format!("2025-07-07T10:30:00.{}Z", "1".repeat(TEN_MB));
    assert!(harness::rfc3339(long.as_bytes()).is_some());
    for input in [
        "1970-01-01T00:00:00Z",
        "2000-02-29T00:00:00Z",
        "2025-02-31T00:00:00Z",
        "2025-07-07T10:30:60Z",
        "2025-07-07t10:30:00.000000000001z",
        "2025-07-07 10:30:00-23:59",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59+23:59",
    ] {
        assert!(harness::rfc3339(input.as_bytes()).is_some(), "{input:?}");
    }
}

/// Found by `cargo fuzz run rfc3339` (crash-49088f7317f86d9163c67aab781049585dc82550):
/// a leap second (or a negative offset) on the last second of year 9999 parses to a
/// time in year 10000, which `format_rfc3339` writes with five year digits, which does
/// not parse. Through the log endpoints, `since_time=9999-12-31T23:59:60Z` is accepted
/// and sent to the apiserver as `sinceTime=10000-01-01T00:00:00Z`.
#[test]

fn rfc3339_crash_year_10000_does_not_round_trip() {
    for input in [
        &b"9999-12-31T23:59:60Z"[..],
        b"9999-12-31T23:59:59-00:01",
        b"9999-12-31T23:59:59.5-23:59",
    ] {
        // The harness asserts the round trip; after the fix these are not times.
        assert_eq!(harness::rfc3339(input), None);
    }
    assert_eq!(log_status(0, "since_time=9999-12-31T23:59:60Z"), 400);
}

// ---------------------------------------------------------------------------------------
// exec_output

#[test]
fn exec_output_generic_nasties_are_errors() {
    for input in generic_nasties() {
        for first in [0u8, 1] {
            let mut data = vec![first];
            data.extend_from_slice(&input);
            assert!(harness::exec_output(&data).is_err());
        }
    }
    assert!(harness::exec_output(b"").is_err());
}

fn credential(status: &str) -> Vec<u8> {
    let mut data = vec![0u8];
    data.extend(
        format!(
            r#"{{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{status}}}"#
        )
        .as_bytes(),
    );
    data
}

#[test]
fn exec_output_odd_credentials() {
    for (status, ok) in [
        ("null", false),
        ("{}", false),
        (r#"{"token":null}"#, false),
        (r#"{"token":""}"#, false),
        (r#"{"token":"t","expirationTimestamp":null}"#, true),
        (r#"{"token":"t","expirationTimestamp":"soon"}"#, false),
        (
            r#"{"token":"t","expirationTimestamp":"9999-12-31T23:59:59+23:59"}"#,
            true,
        ),
        (
            r#"{"token":"t","expirationTimestamp":"1969-01-01T00:00:00Z"}"#,
            false,
        ),
        (r#"{"clientCertificateData":"","clientKeyData":""}"#, false),
        (r#"{"clientCertificateData":"x","clientKeyData":""}"#, false),
        (
            r#"{"clientCertificateData":"%%%","clientKeyData":"%%%"}"#,
            false,
        ),
        (
            r#"{"clientCertificateData":"aGk=","clientKeyData":"aGk="}"#,
            true,
        ),
        (
            r#"{"token":"t","clientCertificateData":null,"clientKeyData":"aGk="}"#,
            false,
        ),
        (r#"{"token":7}"#, false),
    ] {
        let result = harness::exec_output(&credential(status));
        assert_eq!(result.is_ok(), ok, "{status}: {result:?}");
    }
}

#[test]
fn exec_output_ten_megabyte_fields() {
    let big = "A".repeat(TEN_MB);
    let status = format!(r#"{{"token":"{big}"}}"#);
    assert!(harness::exec_output(&credential(&status)).is_ok());
    // Base64 certificate and key (decoding is slow in a debug build: 1 MB each).
    let b64 = &big[..1 << 20];
    let status = format!(r#"{{"clientCertificateData":"{b64}","clientKeyData":"{b64}"}}"#);
    let credential_ = harness::exec_output(&credential(&status)).expect("base64 of zeros");
    assert_eq!(
        credential_.identity.unwrap().cert_pem.len(),
        (1 << 20) / 4 * 3
    );
    let status = format!(r#"{{"token":"t","expirationTimestamp":"{big}"}}"#);
    assert!(harness::exec_output(&credential(&status)).is_err());
}

// ---------------------------------------------------------------------------------------
// log_query

fn log_status(mode: u8, rest: &str) -> u16 {
    let mut data = vec![mode];
    data.extend(rest.as_bytes());
    harness::log_query(&data)
        .unwrap_or_else(|| panic!("{mode} {rest:?} was skipped"))
        .0
}

#[test]
fn log_query_generic_nasties_never_fail_the_server() {
    for input in generic_nasties() {
        for mode in 0..4u8 {
            let mut data = vec![mode];
            data.extend_from_slice(&input);
            // The harness asserts the status (never 500) and the JSON body.
            let _ = harness::log_query(&data);
        }
    }
}

#[test]
fn log_query_values_out_of_range_are_400() {
    for query in [
        "tail=4294967296",
        "tail=-1",
        "tail=1.5",
        "tail=",
        "since_seconds=18446744073709551616",
        "since_seconds=0",
        "limit_bytes=0",
        "limit_bytes=-1",
        "timestamps=yes",
        "since_time=%FF%FE",
        "since_time=2025-07-07T10:30:00",
        "since_time=0000-01-01T00:00:00Z",
        "pod=%00",
        "pod=..%2F..",
        "container=Main",
        "container=main&all_containers=true",
        "since_seconds=1&since_time=2025-07-07T10:30:00Z",
        "tail=1&tail=2",
        "unknown=1",
        "%FF=1",
        "tail=%00",
    ] {
        assert_eq!(log_status(0, query), 400, "{query}");
    }
}

#[test]
fn log_query_valid_queries_reach_the_missing_cluster() {
    for query in [
        "",
        "&&&",
        "tail=4294967295&limit_bytes=18446744073709551615",
        "since_time=2025-07-07T10:30:00.1234567890123%2B02:00",
        "pod=test-job-123-abcde&container=main&previous=true&timestamps=false",
    ] {
        assert_eq!(log_status(0, query), 503, "{query}");
        assert_eq!(log_status(1, query), 503, "{query}");
    }
}

#[test]
fn log_query_long_urls_are_414() {
    let long = format!("since_time={}", "9".repeat(60_000));
    assert_eq!(log_status(0, &long), 414);
    assert_eq!(log_status(2, &"a".repeat(13_000)), 414);
}

#[test]
fn log_query_path_segments() {
    for (mode, segment, status) in [
        (2, "test-job-123", 503),
        (2, "Test%20Job", 400),
        (2, "%2F", 400),
        (2, "%2e%2e", 400),
        (2, "%FF", 400),
        (2, "a..b", 400),
        (3, "550e8400-e29b-41d4-a716-446655440000", 503),
        // warp hands path parameters over undecoded: an encoded name is refused.
        (3, "550E8400-E29B-41D4-A716-44665544000%30", 400),
        (2, "test-job-12%33", 400),
        (3, "not-a-uuid", 400),
    ] {
        assert_eq!(log_status(mode, segment), status, "{mode} {segment}");
    }
    assert_eq!(harness::log_query(b"\x02a/b"), None);
    assert_eq!(harness::log_query(b"\x00\xff"), None);
    assert_eq!(harness::log_query(b"\x00a b"), None);
}
