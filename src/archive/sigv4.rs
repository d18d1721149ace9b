//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) for the S3 requests of the archive,
//! over ring's HMAC-SHA256 and SHA-256: the canonical request, the string to sign, the
//! signing key and the `Authorization` header.
//!
//! S3's variant of the rules, which the store follows:
//! - the canonical URI is the path as sent, each segment URI-encoded **once** (S3 does
//!   not double-encode, nor normalise `.`, `..` or `//`): [`encode_path`];
//! - query parameters are URI-encoded, then sorted by name and value; the same string
//!   is sent: [`canonical_query`];
//! - `x-amz-content-sha256` (the hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`) is sent,
//!   signed, and is the canonical request's last line;
//! - with temporary credentials, `x-amz-security-token` is sent and signed.
//!
//! Checked against AWS's SigV4 test suite (`fixtures/sigv4/`) and the signatures of
//! the S3 API Reference's examples (the tests below).

use std::time::SystemTime;

use ring::{digest, hmac};

/// The algorithm this module implements.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The hex SHA-256 of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What is signed of a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The URI path exactly as sent, already encoded (see [`encode_path`]).
    pub path: &'a str,
    /// The query parameters, not encoded, in any order.
    pub query: &'a [(&'a str, &'a str)],
    /// The headers to sign, names in any case; a repeated name is joined with `,` in
    /// order. `host` must be among them, with the value sent.
    pub headers: &'a [(&'a str, &'a str)],
    /// The hex SHA-256 of the body (or `UNSIGNED-PAYLOAD`).
    pub payload_sha256: &'a str,
}

/// Who signs, and for which region and service.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// When and where a signature is valid.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// `YYYYMMDD'T'HHMMSS'Z'`, as sent in `x-amz-date` (see [`amz_date`]).
    pub date_time: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

impl Scope<'_> {
    /// `YYYYMMDD/region/service/aws4_request`.
    pub fn credential_scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date(),
            self.region,
            self.service
        )
    }

    fn date(&self) -> &str {
        self.date_time.get(..8).unwrap_or(self.date_time)
    }
}

/// A signature and the steps that made it (the steps for tests and debugging; none of
/// them holds the secret key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub canonical_request: String,
    pub string_to_sign: String,
    /// The `Authorization` header's value.
    pub authorization: String,
}

/// Signs `request`.
pub fn sign(request: &Request<'_>, credentials: &Credentials<'_>, scope: &Scope<'_>) -> Signature {
    let (canonical_request, signed_headers) = canonical_request(request);
    let string_to_sign = string_to_sign(scope, &canonical_request);
    let key = signing_key(credentials.secret_key, scope);
    let signature = hex(hmac::sign(&key, string_to_sign.as_bytes()).as_ref());
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key,
        scope.credential_scope(),
    );
    Signature {
        canonical_request,
        string_to_sign,
        authorization,
    }
}

/// The canonical request and its signed-headers list.
pub fn canonical_request(request: &Request<'_>) -> (String, String) {
    // Lower-case names, sorted; the values of a repeated name joined in order.
    let mut headers: Vec<(String, String)> = Vec::with_capacity(request.headers.len());
    let mut sorted: Vec<(String, &str)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), *value))
        .collect();
    // A stable sort keeps the order of the values of one name.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in sorted {
        let value = trim_all(value);
        match headers.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => headers.push((name, value)),
        }
    }
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut out = String::with_capacity(256);
    out.push_str(request.method);
    out.push('\n');
    out.push_str(request.path);
    out.push('\n');
    out.push_str(&canonical_query(request.query));
    out.push('\n');
    for (name, value) in &headers {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers);
    out.push('\n');
    out.push_str(request.payload_sha256);
    (out, signed_headers)
}

/// The string to sign of a canonical request.
pub fn string_to_sign(scope: &Scope<'_>, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        scope.date_time,
        scope.credential_scope(),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret_key: &str, scope: &Scope<'_>) -> hmac::Key {
    let step = |key: &[u8], data: &str| {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes());
        tag.as_ref().to_vec()
    };
    let k_date = step(format!("AWS4{secret_key}").as_bytes(), scope.date());
    let k_region = step(&k_date, scope.region);
    let k_service = step(&k_region, scope.service);
    let k_signing = step(&k_service, "aws4_request");
    hmac::Key::new(hmac::HMAC_SHA256, &k_signing)
}

/// Header values are trimmed and runs of spaces collapsed to one.
fn trim_all(value: &str) -> String {
    value.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

/// URI-encoding as SigV4 defines it: every byte but `A-Z a-z 0-9 - . _ ~` as `%XX`
/// (upper-case hex), UTF-8 first.
const ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// [`ENCODE`], keeping `/`.
const ENCODE_PATH: &percent_encoding::AsciiSet = &ENCODE.remove(b'/');

/// URI-encodes a query name or value (a `/` too).
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, ENCODE).to_string()
}

/// The path of an object as sent and signed: each segment of the raw (not encoded)
/// path URI-encoded once, the `/` between them kept. A `%` in a key is a literal `%`
/// (`%25`), never taken for an escape.
pub fn encode_path(raw: &str) -> String {
    percent_encoding::utf8_percent_encode(raw, ENCODE_PATH).to_string()
}

/// The query string, as signed and as sent: names and values encoded, sorted by name
/// then value, `name=value` joined with `&` (an empty value keeps its `=`).
pub fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(name, value)| (encode(name), encode(value)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `YYYYMMDD'T'HHMMSS'Z'` in UTC, the form of `x-amz-date`.
pub fn amz_date(t: SystemTime) -> String {
    // "2025-07-07T10:30:00Z" -> "20250707T103000Z"
    crate::time::format_rfc3339(t).replace(['-', ':'], "")
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// The credentials, region, service and date of AWS's SigV4 test suite.
    const SUITE: Credentials<'static> = Credentials {
        access_key: "AKIDEXAMPLE",
        secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    };
    const SUITE_SCOPE: Scope<'static> = Scope {
        date_time: "20150830T123600Z",
        region: "us-east-1",
        service: "service",
    };

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sigv4")
    }

    /// A `.req` file of the suite: `METHOD URI HTTP/1.1`, `Name:value` lines, then
    /// after a blank line the body. The URI is raw: its path and query are encoded here.
    struct SuiteRequest {
        method: String,
        path: String,
        query: Vec<(String, String)>,
        headers: Vec<(String, String)>,
        body: String,
    }

    fn parse_req(text: &str) -> SuiteRequest {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let request_line = lines.next().expect("a request line");
        let method = request_line.split(' ').next().unwrap().to_string();
        let uri = request_line
            .strip_prefix(&format!("{method} "))
            .and_then(|rest| rest.strip_suffix(" HTTP/1.1"))
            .expect("METHOD URI HTTP/1.1");
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("Name:value");
                (name.to_string(), value.to_string())
            })
            .collect();
        SuiteRequest {
            method,
            path: path.to_string(),
            query,
            headers,
            body: body.to_string(),
        }
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_aws_test_suite_vectors_are_reproduced_exactly() {
        let mut names: Vec<String> = std::fs::read_dir(fixtures())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(names.len() >= 8, "vectors found: {names:?}");
        for name in &names {
            let dir = fixtures().join(name);
            let file = |ext: &str| read(&dir.join(format!("{name}.{ext}")));
            let req = parse_req(&file("req"));
            let path = encode_path(&req.path);
            let query: Vec<(&str, &str)> = req
                .query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let headers: Vec<(&str, &str)> = req
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let payload = sha256_hex(req.body.as_bytes());
            let signature = sign(
                &Request {
                    method: &req.method,
                    path: &path,
                    query: &query,
                    headers: &headers,
                    payload_sha256: &payload,
                },
                &SUITE,
                &SUITE_SCOPE,
            );
            assert_eq!(
                signature.canonical_request,
                file("creq"),
                "{name}: canonical request"
            );
            assert_eq!(
                signature.string_to_sign,
                file("sts"),
                "{name}: string to sign"
            );
            assert_eq!(
                signature.authorization,
                file("authz"),
                "{name}: Authorization"
            );
        }
    }

    /// The S3 API Reference's examples of header-based SigV4 ("Signature Calculations
    /// for the Authorization Header: Transferring Payload in a Single Chunk",
    /// docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html): bucket
    /// `examplebucket`, 24 May 2013, the documentation's example credentials.
    mod s3_examples {
        use super::*;

        const DOC: Credentials<'static> = Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        };
        const DOC_SCOPE: Scope<'static> = Scope {
            date_time: "20130524T000000Z",
            region: "us-east-1",
            service: "s3",
        };
        const HOST: &str = "examplebucket.s3.amazonaws.com";

        fn signature_of(
            method: &str,
            key: &str,
            query: &[(&str, &str)],
            extra: &[(&str, &str)],
            payload: &str,
        ) -> Signature {
            let path = encode_path(key);
            let mut headers = vec![
                ("Host", HOST),
                ("x-amz-content-sha256", payload),
                ("x-amz-date", DOC_SCOPE.date_time),
            ];
            headers.extend_from_slice(extra);
            sign(
                &Request {
                    method,
                    path: &path,
                    query,
                    headers: &headers,
                    payload_sha256: payload,
                },
                &DOC,
                &DOC_SCOPE,
            )
        }

        fn signature_hex(s: &Signature) -> &str {
            s.authorization.rsplit("Signature=").next().unwrap()
        }

        #[test]
        fn get_object() {
            let s = signature_of(
                "GET",
                "/test.txt",
                &[],
                &[("Range", "bytes=0-9")],
                EMPTY_SHA256,
            );
            assert_eq!(
                s.canonical_request,
                "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
                 x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
                 x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n\
                 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            );
            assert_eq!(
                s.string_to_sign,
                "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
                 7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
            );
            assert_eq!(
                s.authorization,
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            );
        }

        #[test]
        fn put_object_with_a_key_that_needs_encoding_and_a_signed_payload() {
            let payload = sha256_hex(b"Welcome to Amazon S3.");
            assert_eq!(
                payload,
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
            );
            let s = signature_of(
                "PUT",
                "/test$file.text",
                &[],
                &[
                    ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                ],
                &payload,
            );
            assert!(
                s.canonical_request
                    .starts_with("PUT\n/test%24file.text\n\n")
            );
            assert!(
                s.string_to_sign
                    .ends_with("9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d")
            );
            assert_eq!(
                signature_hex(&s),
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            );
        }

        #[test]
        fn get_bucket_lifecycle_an_empty_query_value() {
            let s = signature_of("GET", "/", &[("lifecycle", "")], &[], EMPTY_SHA256);
            assert!(s.canonical_request.starts_with("GET\n/\nlifecycle=\n"));
            assert_eq!(
                signature_hex(&s),
                "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
            );
        }

        #[test]
        fn list_objects_query_sorted() {
            let s = signature_of(
                "GET",
                "/",
                &[("prefix", "J"), ("max-keys", "2")],
                &[],
                EMPTY_SHA256,
            );
            assert!(
                s.canonical_request
                    .starts_with("GET\n/\nmax-keys=2&prefix=J\n")
            );
            assert_eq!(
                signature_hex(&s),
                "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            );
        }
    }

    #[test]
    fn s3_paths_are_encoded_once_segment_by_segment() {
        assert_eq!(
            encode_path("/bucket/runs/a b/ሴ/é+x(1)~_-.log"),
            "/bucket/runs/a%20b/%E1%88%B4/%C3%A9%2Bx%281%29~_-.log"
        );
        // A literal `%` is data, not an escape: encoded once, never decoded first.
        assert_eq!(encode_path("/b/50%25 done"), "/b/50%2525%20done");
        // S3 keeps `//` and `.` segments as they are (no normalisation).
        assert_eq!(encode_path("/b//./x"), "/b//./x");
    }

    #[test]
    fn query_parameters_are_encoded_then_sorted() {
        assert_eq!(
            canonical_query(&[
                ("prefix", "runs/team a/"),
                ("list-type", "2"),
                ("continuation-token", "1x+Yz/=="),
                ("max-keys", "1000"),
            ]),
            "continuation-token=1x%2BYz%2F%3D%3D&list-type=2&max-keys=1000&prefix=runs%2Fteam%20a%2F"
        );
        // Sorted on the encoded form, by name then value.
        assert_eq!(
            canonical_query(&[("b", "2"), ("a", "z"), ("a", "y"), ("A", "x")]),
            "A=x&a=y&a=z&b=2"
        );
        assert_eq!(canonical_query(&[]), "");
    }

    #[test]
    fn amz_date_is_the_basic_iso_form() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(t), "20150830T123600Z");
    }

    #[test]
    fn the_debug_of_credentials_hides_the_secret() {
        let printed = format!("{SUITE:?}");
        assert!(!printed.contains(SUITE.secret_key), "{printed}");
        assert!(printed.contains("AKIDEXAMPLE"));
    }
}
