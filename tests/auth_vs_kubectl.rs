//! Outbound authentication compared with kubectl's, using the real `kubectl` binary as
//! the oracle. For each auth shape a kubeconfig is written into a temporary directory,
//! pointing at the TLS mock of the apiserver (`common::apiserver()`) and trusting its CA;
//! then `kubectl --kubeconfig F get --raw /version` and our `Client` make the same call
//! and the `Authorization` headers the mock received are compared, as is the
//! `KUBERNETES_EXEC_INFO` each gives an exec plugin (and the plugin's args and env).
//!
//! kubectl runs with an empty environment (`PATH`, a temporary `HOME` and
//! `KUBECACHEDIR`), standard input closed, in a working directory that is not the
//! kubeconfig's, so relative paths can only resolve against the kubeconfig's directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::*;
use serde_json::Value;
use sparktest_k8s::cluster::{AuthConfig, ClusterConfig, kubeconfig};
use sparktest_k8s::kube::{Client, ClientOptions};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request};

/// The mock apiserver and a directory for the kubeconfig and its files.
struct Bench {
    pki: Pki,
    api: TlsMock,
    dir: tempfile::TempDir,
    /// kubectl's HOME and working directory: not the kubeconfig's directory.
    home: tempfile::TempDir,
}

impl Bench {
    async fn new() -> Self {
        let (pki, api) = apiserver().await;
        Mock::given(method("GET"))
            .and(path("/version"))
            .respond_with(replay("01_version"))
            .mount(&api.mock)
            .await;
        Self {
            pki,
            api,
            dir: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ca_data(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.pki.ca_pem)
    }

    /// Writes `config.yaml`: one cluster (`cluster_extra` lines added under it, `server`
    /// defaulting to the mock), one user (`user` is its YAML body, indented 4), one context.
    fn kubeconfig(&self, server: Option<&str>, cluster_extra: &str, user: &str) -> PathBuf {
        let server = server.unwrap_or(&self.api.url);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster:\n    server: {server}\n{cluster_extra}users:\n- name: tester\n  user:\n{user}contexts:\n- name: mock\n  context: {{cluster: mock, user: tester}}\ncurrent-context: mock\n"
        );
        let path = self.path("config.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The usual cluster lines: the mock's CA inline.
    fn ca_lines(&self) -> String {
        format!("    certificate-authority-data: {}\n", self.ca_data())
    }

    /// Writes an executable `plugin.sh` that records `KUBERNETES_EXEC_INFO`, its args and
    /// the `PLUGIN_GREETING` and `PLUGIN_SECRET` variables, and prints an ExecCredential.
    fn plugin(&self, api_version: &str, token: &str) {
        let dir = self.dir.path().display();
        let script = format!(
            "#!/bin/sh\nprintf '%s' \"$KUBERNETES_EXEC_INFO\" > '{dir}/exec-info.json'\n\
             printf '%s\\n' \"greeting=$PLUGIN_GREETING\" \"secret=$PLUGIN_SECRET\" \"$@\" > '{dir}/exec-seen.txt'\n\
             echo run >> '{dir}/exec-runs.txt'\n\
             printf '%s' '{{\"apiVersion\":\"{api_version}\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\"}}}}'\n"
        );
        // Written by a child process, not by us: an executable that this (multi-threaded)
        // process holds open for writing can be inherited by a concurrent fork and make
        // the exec fail with ETXTBSY.
        let source = self.path("plugin.sh.txt");
        std::fs::write(&source, script).unwrap();
        let status = Command::new("install")
            .args(["-m", "0755"])
            .arg(&source)
            .arg(self.path("plugin.sh"))
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Runs `kubectl --kubeconfig F get --raw /version` off the runtime; returns the
    /// `Authorization` headers of the `/version` requests it made.
    async fn kubectl(&self, kubeconfig: &Path) -> Vec<Option<String>> {
        let before = self.requests().await.len();
        let home = self.home.path().to_path_buf();
        let kubeconfig = kubeconfig.to_path_buf();
        let output = tokio::task::spawn_blocking(move || {
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["get", "--raw", "/version", "--request-timeout=10s"])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", &home)
                .env("KUBECACHEDIR", home.join("cache"))
                .current_dir(&home)
                .stdin(Stdio::null())
                .output()
                .expect("kubectl is installed and runs")
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "kubectl failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let body: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(body["gitVersion"], "v1.24.0-alpha.1+e5f3f020084e");
        let requests = self.requests().await;
        let requests = &requests[before..];
        // The installed kubectl is gcloud's dispatcher: it probes /version itself
        // ("kubectl-dispatcher/..." with the same credentials) before running the real
        // kubectl, whose request is the one asked for.
        let real = requests
            .iter()
            .filter(|r| r.url.path() == "/version")
            .filter(|r| user_agent(r).starts_with("kubectl/"))
            .count();
        assert_eq!(real, 1, "kubectl's own /version requests");
        version_authorizations(requests)
    }

    /// Our side: load and resolve the kubeconfig, `GET /version`; returns the
    /// `Authorization` header of the one request we made.
    async fn ours(&self, kubeconfig: &Path) -> Option<String> {
        let config = resolve(kubeconfig);
        let before = self.requests().await.len();
        let client = Client::new(
            &config,
            ClientOptions {
                timeout: Duration::from_secs(10),
                ..ClientOptions::default()
            },
        )
        .unwrap();
        let body: Value = client.get_json("/version").await.unwrap();
        assert_eq!(body["gitVersion"], "v1.24.0-alpha.1+e5f3f020084e");
        let made = version_authorizations(&self.requests().await[before..]);
        assert_eq!(made.len(), 1, "we made one request");
        made.into_iter().next().unwrap()
    }

    async fn requests(&self) -> Vec<Request> {
        self.api.mock.received_requests().await.unwrap()
    }

    /// The JSON a plugin run left behind, removed so the next run cannot be mistaken.
    fn take_exec_info(&self) -> (Value, String) {
        let info = std::fs::read_to_string(self.path("exec-info.json")).expect("the plugin ran");
        let seen = std::fs::read_to_string(self.path("exec-seen.txt")).unwrap();
        std::fs::remove_file(self.path("exec-info.json")).unwrap();
        std::fs::remove_file(self.path("exec-seen.txt")).unwrap();
        (serde_json::from_str(&info).unwrap(), seen)
    }

    fn plugin_runs(&self) -> usize {
        std::fs::read_to_string(self.path("exec-runs.txt"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

fn resolve(kubeconfig: &Path) -> ClusterConfig {
    kubeconfig::load(&[kubeconfig.to_path_buf()])
        .and_then(|merged| merged.resolve(None))
        .unwrap_or_else(|e| panic!("ours: {e}"))
}

fn user_agent(request: &Request) -> &str {
    request
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn version_authorizations(requests: &[Request]) -> Vec<Option<String>> {
    requests
        .iter()
        .filter(|r| r.url.path() == "/version")
        .map(|r| {
            r.headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string())
        })
        .collect()
}

/// kubectl and we send the same `Authorization`, which is `expected`.
async fn assert_same_authorization(bench: &Bench, kubeconfig: &Path, expected: Option<&str>) {
    let kubectl = bench.kubectl(kubeconfig).await;
    for header in &kubectl {
        assert_eq!(header.as_deref(), expected, "kubectl's Authorization");
    }
    let ours = bench.ours(kubeconfig).await;
    assert_eq!(ours.as_deref(), expected, "our Authorization");
}

// ---------------------------------------------------------------------------------------
// Static credentials.

#[tokio::test]
async fn static_token_matches_kubectl() {
    let bench = Bench::new().await;
    let kubeconfig = bench.kubeconfig(None, &bench.ca_lines(), "    token: static-token-5f2c\n");
    assert_same_authorization(&bench, &kubeconfig, Some("Bearer static-token-5f2c")).await;
}

#[tokio::test]
async fn relative_token_file_matches_kubectl() {
    let bench = Bench::new().await;
    std::fs::create_dir(bench.path("tokens")).unwrap();
    // The trailing newline is trimmed by both.
    std::fs::write(bench.path("tokens/sa.token"), "file-token-93ab\n").unwrap();
    let kubeconfig = bench.kubeconfig(None, &bench.ca_lines(), "    tokenFile: tokens/sa.token\n");
    assert_same_authorization(&bench, &kubeconfig, Some("Bearer file-token-93ab")).await;
}

#[tokio::test]
async fn token_file_wins_over_token_like_kubectl() {
    let bench = Bench::new().await;
    std::fs::write(bench.path("sa.token"), "from-the-file").unwrap();
    let kubeconfig = bench.kubeconfig(
        None,
        &bench.ca_lines(),
        "    token: from-the-kubeconfig\n    tokenFile: sa.token\n",
    );
    assert_same_authorization(&bench, &kubeconfig, Some("Bearer from-the-file")).await;
}

#[tokio::test]
async fn basic_auth_matches_kubectl() {
    let bench = Bench::new().await;
    let kubeconfig = bench.kubeconfig(
        None,
        &bench.ca_lines(),
        "    username: admin\n    password: \"p@ss:w0rd\"\n",
    );
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:p@ss:w0rd")
    );
    assert_same_authorization(&bench, &kubeconfig, Some(&expected)).await;
}

#[tokio::test]
async fn client_certificate_from_relative_files_matches_kubectl() {
    let (pki, _) = apiserver().await;
    // A mock that requires a client certificate signed by its own client CA: the
    // handshake fails without one, so both calls succeeding shows both presented it.
    let client_ca = Pki::new("sparktest-client-ca");
    let api = tls_mock(&pki.server(&["127.0.0.1"]), Some(&client_ca)).await;
    Mock::given(method("GET"))
        .and(path("/version"))
        .respond_with(replay("01_version"))
        .mount(&api.mock)
        .await;
    let bench = Bench {
        pki,
        api,
        dir: tempfile::tempdir().unwrap(),
        home: tempfile::tempdir().unwrap(),
    };
    let client = client_ca.client("sparktest-ci");
    std::fs::create_dir(bench.path("pki")).unwrap();
    std::fs::write(bench.path("pki/client.crt"), &client.cert_pem).unwrap();
    std::fs::write(bench.path("pki/client.key"), &client.key_pem).unwrap();
    let kubeconfig = bench.kubeconfig(
        None,
        &bench.ca_lines(),
        "    client-certificate: pki/client.crt\n    client-key: pki/client.key\n",
    );
    assert_same_authorization(&bench, &kubeconfig, None).await;
    let names = bench.api.client_names.lock().unwrap().clone();
    assert!(
        names.len() >= 2,
        "a certificate on each connection: {names:?}"
    );
    // common::common_name takes the first CN in the DER, which is the issuer's.
    assert!(
        names
            .iter()
            .all(|n| n == "sparktest-ci" || n == "sparktest-client-ca"),
        "{names:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Exec plugins.

/// kubectl's and our `KUBERNETES_EXEC_INFO`, args and env for the same kubeconfig, and
/// the `Authorization` both sent (asserted equal to `Bearer {token}`).
async fn exec_round(
    bench: &Bench,
    kubeconfig: &Path,
    token: &str,
) -> ((Value, String), (Value, String)) {
    let expected = format!("Bearer {token}");
    let kubectl_headers = bench.kubectl(kubeconfig).await;
    for header in &kubectl_headers {
        assert_eq!(
            header.as_deref(),
            Some(expected.as_str()),
            "kubectl's Authorization"
        );
    }
    let kubectl = bench.take_exec_info();
    let ours_header = bench.ours(kubeconfig).await;
    assert_eq!(
        ours_header.as_deref(),
        Some(expected.as_str()),
        "our Authorization"
    );
    let ours = bench.take_exec_info();
    (kubectl, ours)
}

/// Where kubectl writes `"config": null` (no exec extension on the cluster) we leave the
/// key out: the same for any JSON reader of `spec.cluster.config` (a RawExtension).
fn without_null_config(mut info: Value) -> Value {
    if let Some(cluster) = info["spec"]
        .get_mut("cluster")
        .and_then(Value::as_object_mut)
        && cluster.get("config") == Some(&Value::Null)
    {
        cluster.remove("config");
    }
    info
}

const EXEC_USER_V1BETA1: &str = "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: ./plugin.sh\n      args: [get-token, --audience, \"sparktest api\"]\n      env:\n      - {name: PLUGIN_GREETING, value: hello from the kubeconfig}\n      - {name: PLUGIN_SECRET, value: plugin-secret-d41d}\n      provideClusterInfo: true\n";

#[tokio::test]
async fn exec_v1beta1_with_cluster_info_and_env_matches_kubectl() {
    let bench = Bench::new().await;
    bench.plugin("client.authentication.k8s.io/v1beta1", "exec-token-v1beta1");
    let cluster = format!(
        "{}    extensions:\n    - name: client.authentication.k8s.io/exec\n      extension: {{audience: sparktest, region: eu-central-1, retries: 3}}\n",
        bench.ca_lines()
    );
    let kubeconfig = bench.kubeconfig(None, &cluster, EXEC_USER_V1BETA1);
    let ((kubectl_info, kubectl_seen), (ours_info, ours_seen)) =
        exec_round(&bench, &kubeconfig, "exec-token-v1beta1").await;

    assert_eq!(ours_info, kubectl_info, "KUBERNETES_EXEC_INFO");
    assert_eq!(ours_seen, kubectl_seen, "args and env");
    // What both agree on, spelled out.
    assert_eq!(
        kubectl_info["apiVersion"],
        "client.authentication.k8s.io/v1beta1"
    );
    assert_eq!(kubectl_info["kind"], "ExecCredential");
    assert_eq!(kubectl_info["spec"]["interactive"], false);
    assert_eq!(
        kubectl_info["spec"]["cluster"]["server"],
        bench.api.url.as_str()
    );
    assert_eq!(
        kubectl_info["spec"]["cluster"]["certificate-authority-data"],
        bench.ca_data()
    );
    assert_eq!(kubectl_info["spec"]["cluster"]["config"]["retries"], 3);
    assert_eq!(
        kubectl_seen,
        "greeting=hello from the kubeconfig\nsecret=plugin-secret-d41d\nget-token\n--audience\nsparktest api\n"
    );
}

#[tokio::test]
async fn exec_v1_with_tls_server_name_matches_kubectl() {
    let bench = Bench::new().await;
    bench.plugin("client.authentication.k8s.io/v1", "exec-token-v1");
    // The mock's certificate names localhost too: both verify it under that name.
    let cluster = format!("{}    tls-server-name: localhost\n", bench.ca_lines());
    let user = EXEC_USER_V1BETA1.replace("/v1beta1", "/v1").replace(
        "provideClusterInfo: true\n",
        "provideClusterInfo: true\n      interactiveMode: Never\n",
    );
    let kubeconfig = bench.kubeconfig(None, &cluster, &user);
    let ((kubectl_info, kubectl_seen), (ours_info, ours_seen)) =
        exec_round(&bench, &kubeconfig, "exec-token-v1").await;

    // The one documented difference: kubectl writes "config": null.
    assert_eq!(kubectl_info["spec"]["cluster"]["config"], Value::Null);
    assert_eq!(
        ours_info,
        without_null_config(kubectl_info.clone()),
        "KUBERNETES_EXEC_INFO"
    );
    assert_eq!(ours_seen, kubectl_seen, "args and env");
    assert_eq!(
        kubectl_info["apiVersion"],
        "client.authentication.k8s.io/v1"
    );
    assert_eq!(
        kubectl_info["spec"]["cluster"]["tls-server-name"],
        "localhost"
    );
    assert_eq!(kubectl_info["spec"]["interactive"], false);
}

#[tokio::test]
async fn exec_without_cluster_info_matches_kubectl() {
    let bench = Bench::new().await;
    bench.plugin("client.authentication.k8s.io/v1beta1", "exec-token-plain");
    let user = EXEC_USER_V1BETA1.replace("      provideClusterInfo: true\n", "");
    let kubeconfig = bench.kubeconfig(None, &bench.ca_lines(), &user);
    let ((kubectl_info, kubectl_seen), (ours_info, ours_seen)) =
        exec_round(&bench, &kubeconfig, "exec-token-plain").await;
    assert_eq!(ours_info, kubectl_info, "KUBERNETES_EXEC_INFO");
    assert_eq!(ours_seen, kubectl_seen, "args and env");
    assert!(
        kubectl_info["spec"].get("cluster").is_none(),
        "{kubectl_info}"
    );
}

#[tokio::test]
async fn exec_cluster_info_carries_a_ca_file_like_kubectl() {
    let bench = Bench::new().await;
    bench.plugin("client.authentication.k8s.io/v1beta1", "exec-token-cafile");
    std::fs::write(bench.path("ca.crt"), &bench.pki.ca_pem).unwrap();
    let kubeconfig = bench.kubeconfig(
        None,
        "    certificate-authority: ca.crt\n",
        EXEC_USER_V1BETA1,
    );
    let ((kubectl_info, _), (ours_info, _)) =
        exec_round(&bench, &kubeconfig, "exec-token-cafile").await;
    assert_eq!(
        kubectl_info["spec"]["cluster"]["certificate-authority-data"],
        bench.ca_data(),
        "kubectl inlines the file"
    );
    assert_eq!(
        without_null_config(ours_info),
        without_null_config(kubectl_info),
        "KUBERNETES_EXEC_INFO"
    );
}

#[tokio::test]
async fn exec_cluster_info_server_is_the_kubeconfig_value_like_kubectl() {
    let bench = Bench::new().await;
    bench.plugin("client.authentication.k8s.io/v1beta1", "exec-token-slash");
    let server = format!("{}/", bench.api.url);
    let kubeconfig = bench.kubeconfig(Some(&server), &bench.ca_lines(), EXEC_USER_V1BETA1);
    let ((kubectl_info, _), (ours_info, _)) =
        exec_round(&bench, &kubeconfig, "exec-token-slash").await;
    assert_eq!(kubectl_info["spec"]["cluster"]["server"], server.as_str());
    assert_eq!(
        without_null_config(ours_info),
        without_null_config(kubectl_info),
        "KUBERNETES_EXEC_INFO"
    );
}

#[tokio::test]
async fn token_wins_over_exec_like_kubectl() {
    let bench = Bench::new().await;
    bench.plugin("client.authentication.k8s.io/v1beta1", "exec-token-unused");
    let user = format!("    token: static-token-wins\n{EXEC_USER_V1BETA1}");
    let kubeconfig = bench.kubeconfig(None, &bench.ca_lines(), &user);
    let kubectl = bench.kubectl(&kubeconfig).await;
    assert!(
        kubectl
            .iter()
            .all(|h| h.as_deref() == Some("Bearer static-token-wins")),
        "{kubectl:?}"
    );
    assert_eq!(bench.plugin_runs(), 0, "kubectl did not run the plugin");
    let ours = bench.ours(&kubeconfig).await;
    assert_eq!(ours.as_deref(), Some("Bearer static-token-wins"));
    assert_eq!(bench.plugin_runs(), 0, "we did not run the plugin");
}

#[tokio::test]
async fn oidc_auth_provider_kubectl_still_sends_the_id_token_we_refuse_clearly() {
    // Documented difference: client-go removed the gcp and azure auth-providers but still
    // has oidc. kubectl sends a fresh id-token as a bearer token; we refuse the user and
    // point at exec plugins. No token is ever sent by us, and the message names the field.
    let bench = Bench::new().await;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let id_token = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64(r#"{"iss":"https://issuer.example","sub":"tester","exp":4102444800}"#)
    );
    let user = format!(
        "    auth-provider:\n      name: oidc\n      config:\n        client-id: sparktest\n        idp-issuer-url: https://issuer.example\n        id-token: {id_token}\n"
    );
    let kubeconfig = bench.kubeconfig(None, &bench.ca_lines(), &user);
    let kubectl = bench.kubectl(&kubeconfig).await;
    let expected = format!("Bearer {id_token}");
    assert!(
        kubectl
            .iter()
            .all(|h| h.as_deref() == Some(expected.as_str())),
        "{kubectl:?}"
    );

    let err = kubeconfig::load(std::slice::from_ref(&kubeconfig))
        .and_then(|m| m.resolve(None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`auth-provider`") && err.contains("exec"),
        "{err}"
    );
    assert!(err.contains(&kubeconfig.display().to_string()), "{err}");
    assert!(!err.contains(&id_token), "{err}");
}

#[tokio::test]
async fn resolved_exec_config_debug_hides_env_values() {
    let bench = Bench::new().await;
    let kubeconfig = bench.kubeconfig(None, &bench.ca_lines(), EXEC_USER_V1BETA1);
    let config = resolve(&kubeconfig);
    let AuthConfig::Exec(exec) = &config.auth else {
        panic!("not exec")
    };
    assert_eq!(exec.env.len(), 2);
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains("plugin-secret-d41d"), "{debug}");
    assert!(debug.contains("PLUGIN_SECRET"), "names are fine: {debug}");
}
