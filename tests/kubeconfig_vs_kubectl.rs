//! Kubeconfig resolution compared with kubectl's, using the real `kubectl` binary as the
//! oracle: for every shape in `fixtures/kubeconfigs/` (and `--context` overrides and the
//! two-file `KUBECONFIG` merge), `kubectl config view --minify --raw -o json` is parsed
//! and compared field by field with `kubeconfig::load(..)?.resolve(..)`.
//!
//! Then the errors: each broken kubeconfig must be reported naming the file and the
//! field, kubectl must reject it too (or, where it does not, the test says what kubectl
//! does instead), and no error message or `Debug` output may carry a secret.
//!
//! kubectl runs with an empty environment (`PATH`, a temporary `HOME` and
//! `KUBECACHEDIR`, `KUBECONFIG`) and in a working directory unrelated to the kubeconfig,
//! so relative paths can only resolve against the kubeconfig's own directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::Value;
use sparktest_k8s::cluster::kubeconfig::{self, KubeconfigError};
use sparktest_k8s::cluster::{AuthConfig, ClusterConfig, ConfigSource, ExecInteractiveMode};

// ---------------------------------------------------------------------------------------
// Running both sides.

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kubeconfigs")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

/// What kubectl printed: stdout on success, stderr on failure.
struct KubectlRun {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs kubectl with `KUBECONFIG=kubeconfig_env` in a clean environment and a working
/// directory that is neither the crate nor the kubeconfig's directory.
fn kubectl(kubeconfig_env: &str, args: &[&str]) -> KubectlRun {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new("kubectl")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("KUBECACHEDIR", home.path().join("cache"))
        .env("KUBECONFIG", kubeconfig_env)
        .current_dir(home.path())
        .stdin(Stdio::null())
        .output()
        .expect("kubectl is installed and runs");
    KubectlRun {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `kubectl config view --minify --raw -o json [--flatten] [--context X]`.
fn kubectl_view(
    kubeconfig_env: &str,
    context: Option<&str>,
    flatten: bool,
) -> Result<Value, String> {
    let mut args = vec!["config", "view", "--minify", "--raw", "-o", "json"];
    if flatten {
        args.push("--flatten");
    }
    if let Some(context) = context {
        args.extend(["--context", context]);
    }
    let run = kubectl(kubeconfig_env, &args);
    if run.ok {
        Ok(serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("kubectl printed no JSON ({e}): {}", run.stdout)))
    } else {
        Err(run.stderr)
    }
}

/// `kubectl get --raw /version`: for the checks kubectl only makes when it builds a client.
fn kubectl_get(kubeconfig_env: &str) -> KubectlRun {
    kubectl(
        kubeconfig_env,
        &["get", "--raw", "/version", "--request-timeout=2s"],
    )
}

/// Our side: the `KUBECONFIG` list split as discovery splits it, loaded and resolved.
fn ours(kubeconfig_env: &str, context: Option<&str>) -> Result<ClusterConfig, KubeconfigError> {
    let paths = kubeconfig::split_path_list(kubeconfig_env);
    kubeconfig::load(&paths)?.resolve(context)
}

// ---------------------------------------------------------------------------------------
// The comparison.

fn str_field<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The single entry kubectl's `--minify` keeps in `clusters`, `users` or `contexts`.
fn only<'a>(case: &str, config: &'a Value, list: &str, inner: &str, name: &str) -> &'a Value {
    let entries = config[list]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    assert_eq!(
        entries.len(),
        1,
        "{case}: kubectl kept {} {list}: {config:#}",
        entries.len()
    );
    assert_eq!(entries[0]["name"], name, "{case}: {list} entry");
    &entries[0][inner]
}

/// `x-data` decoded, else the file `x` read (relative to `dir`), as kubectl would use it.
fn bytes_of(case: &str, object: &Value, data: &str, file: &str, dir: &Path) -> Option<Vec<u8>> {
    if let Some(data) = str_field(object, data) {
        return Some(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap_or_else(|e| panic!("{case}: kubectl's {data} is not base64: {e}")),
        );
    }
    str_field(object, file).map(|path| {
        std::fs::read(dir.join(path)).unwrap_or_else(|e| panic!("{case}: {file} {path}: {e}"))
    })
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Compares our resolution with kubectl's minified view, field by field. `dir` is the
/// directory the kubeconfig's relative paths resolve against.
fn assert_same(case: &str, view: &Value, ours: &ClusterConfig, dir: &Path) {
    let context_name = view["current-context"]
        .as_str()
        .expect("kubectl names the context");
    let context = only(case, view, "contexts", "context", context_name);
    let cluster_name = context["cluster"].as_str().unwrap();
    let cluster = only(case, view, "clusters", "cluster", cluster_name);
    let user = match str_field(context, "user") {
        Some(name) => only(case, view, "users", "user", name).clone(),
        None => Value::Null,
    };

    match &ours.source {
        ConfigSource::Kubeconfig { context, .. } => {
            assert_eq!(context, context_name, "{case}: context")
        }
        other => panic!("{case}: source {other:?}"),
    }
    assert_eq!(
        Some(ours.server.as_str()),
        str_field(cluster, "server"),
        "{case}: server"
    );
    assert_eq!(
        ours.tls.server_name.as_deref(),
        str_field(cluster, "tls-server-name"),
        "{case}: tls-server-name"
    );
    assert_eq!(
        ours.tls.insecure_skip_verify,
        cluster["insecure-skip-tls-verify"]
            .as_bool()
            .unwrap_or(false),
        "{case}: insecure-skip-tls-verify"
    );
    assert_eq!(
        ours.tls.ca_pem,
        bytes_of(
            case,
            cluster,
            "certificate-authority-data",
            "certificate-authority",
            dir
        ),
        "{case}: certificate authority"
    );
    assert_eq!(
        ours.proxy_url.as_deref(),
        str_field(cluster, "proxy-url"),
        "{case}: proxy-url"
    );
    assert_eq!(
        ours.namespace.as_deref(),
        str_field(context, "namespace"),
        "{case}: namespace"
    );

    let cert = bytes_of(
        case,
        &user,
        "client-certificate-data",
        "client-certificate",
        dir,
    );
    let key = bytes_of(case, &user, "client-key-data", "client-key", dir);
    assert_eq!(
        ours.tls.identity.as_ref().map(|i| &i.cert_pem),
        cert.as_ref(),
        "{case}: client certificate"
    );
    assert!(
        ours.tls.identity.as_ref().map(|i| i.key_pem.expose()) == key.as_ref(),
        "{case}: client key differs from kubectl's"
    );

    // Every fixture has one authentication method, so the comparison is unambiguous
    // (precedence between several is compared with kubectl in auth_vs_kubectl.rs).
    let methods: Vec<&str> = ["token", "tokenFile", "username", "exec", "auth-provider"]
        .into_iter()
        .filter(|m| user.get(m).is_some_and(|v| !v.is_null() && v != ""))
        .collect();
    assert!(methods.len() <= 1, "{case}: several methods {methods:?}");
    match (methods.first().copied(), &ours.auth) {
        (None, AuthConfig::None) => {}
        (Some("token"), AuthConfig::Token(token)) => {
            assert!(
                token.expose() == user["token"].as_str().unwrap(),
                "{case}: token differs"
            )
        }
        (Some("tokenFile"), AuthConfig::TokenFile(path)) => {
            assert_eq!(
                path,
                &dir.join(user["tokenFile"].as_str().unwrap()),
                "{case}: tokenFile"
            )
        }
        (Some("username"), AuthConfig::Basic { username, password }) => {
            assert_eq!(
                username,
                user["username"].as_str().unwrap(),
                "{case}: username"
            );
            assert!(
                password.expose() == user["password"].as_str().unwrap_or_default(),
                "{case}: password differs"
            );
        }
        (Some("exec"), AuthConfig::Exec(ours_exec)) => {
            let exec = &user["exec"];
            assert_eq!(
                ours_exec.api_version,
                exec["apiVersion"].as_str().unwrap(),
                "{case}: exec.apiVersion"
            );
            let command = exec["command"].as_str().unwrap();
            if command.contains('/') {
                // client-go resolves a command with a separator against the kubeconfig's
                // directory when it runs it; `view` prints it as written.
                assert_eq!(
                    Path::new(&ours_exec.command),
                    dir.join(command),
                    "{case}: exec.command"
                );
            } else {
                assert_eq!(ours_exec.command, command, "{case}: exec.command");
            }
            assert_eq!(ours_exec.args, strings(&exec["args"]), "{case}: exec.args");
            let env: Vec<(String, String)> = exec["env"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap().into(),
                        e["value"].as_str().unwrap().into(),
                    )
                })
                .collect();
            let ours_env: Vec<(String, String)> = ours_exec
                .env
                .iter()
                .map(|(n, v)| (n.clone(), v.expose().clone()))
                .collect();
            assert!(
                ours_env == env,
                "{case}: exec.env names {:?} vs kubectl's {:?}",
                names(&ours_env),
                names(&env)
            );
            // kubectl prints the defaulted mode (IfAvailable for v1beta1 without one).
            let mode = match exec["interactiveMode"].as_str() {
                Some("Never") => ExecInteractiveMode::Never,
                Some("IfAvailable") => ExecInteractiveMode::IfAvailable,
                Some("Always") => ExecInteractiveMode::Always,
                other => panic!("{case}: kubectl's interactiveMode {other:?}"),
            };
            assert_eq!(
                ours_exec.interactive_mode, mode,
                "{case}: exec.interactiveMode"
            );
            assert_eq!(
                ours_exec.install_hint.as_deref(),
                str_field(exec, "installHint"),
                "{case}: installHint"
            );
            let provide = exec["provideClusterInfo"].as_bool().unwrap_or(false);
            assert_eq!(
                ours_exec.cluster_info.is_some(),
                provide,
                "{case}: provideClusterInfo"
            );
            if let Some(info) = &ours_exec.cluster_info {
                assert_eq!(
                    info["server"], cluster["server"],
                    "{case}: cluster info server"
                );
                assert_eq!(
                    info.get("certificate-authority-data"),
                    cluster.get("certificate-authority-data"),
                    "{case}: cluster info CA"
                );
                assert_eq!(
                    info.get("tls-server-name"),
                    cluster.get("tls-server-name"),
                    "{case}: cluster info tls-server-name"
                );
                let extension = cluster["extensions"]
                    .as_array()
                    .and_then(|e| {
                        e.iter()
                            .find(|e| e["name"] == "client.authentication.k8s.io/exec")
                    })
                    .map(|e| &e["extension"]);
                assert_eq!(info.get("config"), extension, "{case}: cluster info config");
            }
        }
        (kubectl_method, ours_auth) => {
            panic!(
                "{case}: kubectl's user has {kubectl_method:?}, ours resolved {}",
                ours_auth.kind(false)
            )
        }
    }

    assert_no_secret_in(case, &format!("{ours:?} {ours:#?}"), view);
}

fn names(env: &[(String, String)]) -> Vec<&str> {
    env.iter().map(|(n, _)| n.as_str()).collect()
}

/// The secrets of kubectl's view: tokens, passwords, exec env values, private keys.
fn secrets_of(view: &Value) -> Vec<String> {
    let mut secrets = Vec::new();
    for user in view["users"].as_array().into_iter().flatten() {
        let user = &user["user"];
        for key in ["token", "password"] {
            secrets.extend(str_field(user, key).map(str::to_string));
        }
        for env in user["exec"]["env"].as_array().into_iter().flatten() {
            secrets.extend(env["value"].as_str().map(str::to_string));
        }
        if let Some(key) = str_field(user, "client-key-data") {
            secrets.push(key.to_string());
            let pem = base64::engine::general_purpose::STANDARD
                .decode(key)
                .unwrap();
            // Vec<u8> prints as numbers in Debug: look for those too.
            secrets.push(format!("{pem:?}").trim_matches(['[', ']']).to_string());
            secrets.push(String::from_utf8_lossy(&pem).into_owned());
        }
    }
    // Values too short to be told apart from ordinary text ("ci") are not looked for.
    secrets.retain(|s| s.len() >= 8);
    secrets
}

fn assert_no_secret_in(case: &str, text: &str, view: &Value) {
    for secret in secrets_of(view) {
        assert!(
            !text.contains(&secret),
            "{case}: a secret appears in: {text}"
        );
    }
}

/// Runs kubectl and our loader on the same `KUBECONFIG` and compares; returns ours.
fn compare(
    kubeconfig_env: &str,
    context: Option<&str>,
    flatten: bool,
    dir: &Path,
) -> ClusterConfig {
    let case = format!("KUBECONFIG={kubeconfig_env} --context {context:?} flatten={flatten}");
    let view = kubectl_view(kubeconfig_env, context, flatten)
        .unwrap_or_else(|e| panic!("{case}: kubectl failed: {e}"));
    let ours = ours(kubeconfig_env, context).unwrap_or_else(|e| panic!("{case}: ours failed: {e}"));
    assert_same(&case, &view, &ours, dir);
    ours
}

fn token_of(config: &ClusterConfig) -> &str {
    match &config.auth {
        AuthConfig::Token(token) => token.expose(),
        other => panic!("not a token: {}", other.kind(false)),
    }
}

// ---------------------------------------------------------------------------------------
// The shapes of fixtures/kubeconfigs/.

#[test]
fn kind_matches_kubectl() {
    let ours = compare(&fixture("kind.yaml"), None, false, &fixtures());
    // Guard against comparing nothing with nothing.
    assert!(
        ours.tls
            .ca_pem
            .as_ref()
            .unwrap()
            .starts_with(b"-----BEGIN CERTIFICATE-----")
    );
    assert!(ours.tls.identity.is_some());
    assert_eq!(ours.server.as_str(), "https://127.0.0.1:41235");
}

#[test]
fn k3d_matches_kubectl() {
    let ours = compare(&fixture("k3d.yaml"), None, false, &fixtures());
    assert_eq!(ours.server.as_str(), "https://0.0.0.0:6550");
    assert!(ours.tls.identity.is_some());
}

#[test]
fn eks_exec_matches_kubectl() {
    let ours = compare(&fixture("eks-exec.yaml"), None, false, &fixtures());
    // The ARN names (colons and slashes) work as --context too.
    let arn = "arn:aws:eks:eu-west-1:123456789012:cluster/tests";
    assert_eq!(
        compare(&fixture("eks-exec.yaml"), Some(arn), false, &fixtures()),
        ours
    );
    let AuthConfig::Exec(exec) = &ours.auth else {
        panic!("not exec")
    };
    assert_eq!(exec.command, "aws");
    assert_eq!(exec.args.len(), 8);
    assert_eq!(exec.env.len(), 1);
}

#[test]
fn gke_exec_with_cluster_info_matches_kubectl() {
    let ours = compare(&fixture("gke-exec.yaml"), None, false, &fixtures());
    let AuthConfig::Exec(exec) = &ours.auth else {
        panic!("not exec")
    };
    assert!(exec.cluster_info.is_some());
    assert!(
        exec.install_hint
            .as_deref()
            .unwrap()
            .contains("gke-gcloud-auth-plugin")
    );
}

#[test]
fn aks_exec_with_null_env_matches_kubectl() {
    let ours = compare(&fixture("aks-exec.yaml"), None, false, &fixtures());
    let AuthConfig::Exec(exec) = &ours.auth else {
        panic!("not exec")
    };
    assert_eq!(exec.command, "kubelogin");
    assert!(exec.env.is_empty());
    assert!(exec.cluster_info.is_none());
}

#[test]
fn exec_v1_with_relative_command_and_extension_matches_kubectl() {
    let ours = compare(
        &fixture("exec-v1-relative-command.yaml"),
        None,
        false,
        &fixtures(),
    );
    let AuthConfig::Exec(exec) = &ours.auth else {
        panic!("not exec")
    };
    assert_eq!(Path::new(&exec.command), fixtures().join("bin/corp-token"));
    assert_eq!(exec.interactive_mode, ExecInteractiveMode::Never);
    assert_eq!(
        exec.cluster_info.as_ref().unwrap()["config"]["audience"],
        "sparktest"
    );
    assert_eq!(
        ours.server.as_str(),
        "https://k8s.corp.example:6443/clusters/corp"
    );
}

#[test]
fn openshift_token_matches_kubectl() {
    let ours = compare(&fixture("openshift-token.yaml"), None, false, &fixtures());
    assert!(ours.tls.insecure_skip_verify);
    assert_eq!(ours.namespace.as_deref(), Some("sparktest"));
    assert!(token_of(&ours).starts_with("sha256~"));
}

#[test]
fn basic_auth_with_proxy_url_matches_kubectl() {
    let ours = compare(&fixture("basic-auth.yaml"), None, false, &fixtures());
    assert!(matches!(&ours.auth, AuthConfig::Basic { username, .. } if username == "admin"));
    assert_eq!(
        ours.proxy_url.as_deref(),
        Some("http://proxy.corp.example:3128")
    );
    assert_eq!(
        ours.tls.server_name.as_deref(),
        Some("kubernetes.legacy.internal")
    );
}

/// A copy of relative-paths.yaml in a temporary directory with the files it names.
fn relative_paths_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("relative-paths.yaml"),
        dir.path().join("relative-paths.yaml"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("certs")).unwrap();
    std::fs::create_dir_all(dir.path().join("tokens")).unwrap();
    for (file, text) in [
        (
            "certs/ca.crt",
            "-----BEGIN CERTIFICATE-----\nrelative-ca\n-----END CERTIFICATE-----\n",
        ),
        (
            "certs/ci.crt",
            "-----BEGIN CERTIFICATE-----\nrelative-ci\n-----END CERTIFICATE-----\n",
        ),
        (
            "certs/ci.key",
            "-----BEGIN PRIVATE KEY-----\nrelative-ci-private-key\n-----END PRIVATE KEY-----\n",
        ),
        ("tokens/robot.token", "robot-token-from-file\n"),
    ] {
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    dir
}

#[test]
fn relative_paths_both_contexts_match_kubectl_flattened_and_not() {
    let dir = relative_paths_copy();
    let file = dir.path().join("relative-paths.yaml").display().to_string();
    for flatten in [true, false] {
        let ci = compare(&file, Some("lab-ci"), flatten, dir.path());
        assert_eq!(
            ci.tls.ca_pem.as_deref(),
            Some(&b"-----BEGIN CERTIFICATE-----\nrelative-ca\n-----END CERTIFICATE-----\n"[..])
        );
        assert!(
            ci.tls
                .identity
                .as_ref()
                .unwrap()
                .cert_pem
                .ends_with(b"relative-ci\n-----END CERTIFICATE-----\n")
        );
        assert_eq!(ci.namespace.as_deref(), Some("ci"));
        assert_eq!(
            ci.tls.server_name.as_deref(),
            Some("kubernetes.default.svc")
        );

        // current-context is lab-robot; --context lab-robot must give the same.
        let robot = compare(&file, None, flatten, dir.path());
        assert_eq!(
            robot.auth,
            AuthConfig::TokenFile(dir.path().join("tokens/robot.token"))
        );
        let explicit = compare(&file, Some("lab-robot"), flatten, dir.path());
        assert_eq!(explicit.auth, robot.auth);
    }
}

#[test]
fn minikube_absolute_paths_that_do_not_exist_are_reported_like_kubectl() {
    let file = fixture("minikube.yaml");
    let err = ours(&file, None).unwrap_err().to_string();
    assert!(err.contains(&file), "names the kubeconfig: {err}");
    assert!(
        err.contains("`certificate-authority`"),
        "names the field: {err}"
    );
    assert!(
        err.contains("/home/dev/.minikube/ca.crt"),
        "names the missing file: {err}"
    );
    // kubectl cannot inline the files either.
    let kubectl = kubectl_view(&file, None, true).unwrap_err();
    assert!(kubectl.contains("open /home/dev/.minikube/"), "{kubectl}");
}

#[test]
fn minikube_with_existing_paths_matches_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("dot-minikube");
    let text = std::fs::read_to_string(fixtures().join("minikube.yaml"))
        .unwrap()
        .replace("/home/dev/.minikube", &root.display().to_string());
    std::fs::create_dir_all(root.join("profiles/minikube")).unwrap();
    std::fs::write(
        root.join("ca.crt"),
        "-----BEGIN CERTIFICATE-----\nminikube-ca\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(
        root.join("profiles/minikube/client.crt"),
        "-----BEGIN CERTIFICATE-----\nminikube-client\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(
        root.join("profiles/minikube/client.key"),
        "-----BEGIN RSA PRIVATE KEY-----\nminikube-client-key\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    let file = dir.path().join("config");
    std::fs::write(&file, text).unwrap();
    let file = file.display().to_string();
    for flatten in [true, false] {
        let ours = compare(&file, None, flatten, dir.path());
        assert_eq!(ours.namespace.as_deref(), Some("sparktest"));
        assert!(
            ours.tls
                .ca_pem
                .as_ref()
                .unwrap()
                .ends_with(b"minikube-ca\n-----END CERTIFICATE-----\n")
        );
        assert!(ours.tls.identity.is_some());
        assert_eq!(ours.auth, AuthConfig::None);
    }
}

#[test]
fn merge_first_file_wins_for_entries_and_current_context() {
    let env = format!("{}:{}", fixture("merge-a.yaml"), fixture("merge-b.yaml"));
    let staging = compare(&env, None, false, &fixtures());
    assert_eq!(
        staging.server.as_str(),
        "https://staging-a.example.internal:6443"
    );
    assert!(staging.tls.insecure_skip_verify);
    assert_eq!(token_of(&staging), "token-from-a");
    assert_eq!(staging.namespace.as_deref(), Some("qa"));
    match &staging.source {
        ConfigSource::Kubeconfig { files, context } => {
            assert_eq!(files.len(), 2);
            assert_eq!(context, "staging");
        }
        other => panic!("{other:?}"),
    }

    let explicit = compare(&env, Some("staging"), false, &fixtures());
    assert_eq!(explicit.server, staging.server);

    let production = compare(&env, Some("production"), false, &fixtures());
    assert_eq!(
        production.server.as_str(),
        "https://prod.example.internal:6443"
    );
    assert!(!production.tls.insecure_skip_verify);
    assert_eq!(
        token_of(&production),
        "token-from-a",
        "the user comes from merge-a"
    );
    assert_eq!(production.namespace, None);
}

#[test]
fn merge_in_the_other_order_lets_b_win() {
    let env = format!("{}:{}", fixture("merge-b.yaml"), fixture("merge-a.yaml"));
    let production = compare(&env, None, false, &fixtures());
    assert_eq!(
        production.server.as_str(),
        "https://prod.example.internal:6443"
    );
    assert_eq!(token_of(&production), "token-from-b");
    let staging = compare(&env, Some("staging"), false, &fixtures());
    assert_eq!(
        staging.server.as_str(),
        "https://staging-b.example.internal:6443"
    );
    assert!(!staging.tls.insecure_skip_verify);
}

#[test]
fn empty_entries_in_kubeconfig_are_skipped() {
    let kind = fixture("kind.yaml");
    let env = format!(":{kind}::");
    let ours = compare(&env, None, false, &fixtures());
    let alone = compare(&kind, None, false, &fixtures());
    assert_eq!(ours, alone);
    assert_eq!(
        ours.source,
        ConfigSource::Kubeconfig {
            files: vec![PathBuf::from(&kind)],
            context: "kind-kind".into()
        }
    );
}

#[test]
fn a_missing_file_in_the_list_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("does-not-exist.yaml").display().to_string();
    let env = format!(
        "{missing}:{}:{}",
        fixture("merge-a.yaml"),
        fixture("merge-b.yaml")
    );
    let ours = compare(&env, Some("production"), false, &fixtures());
    assert_eq!(ours.server.as_str(), "https://prod.example.internal:6443");
    let ConfigSource::Kubeconfig { files, .. } = &ours.source else {
        panic!()
    };
    assert!(
        !files.iter().any(|f| f.ends_with("does-not-exist.yaml")),
        "{files:?}"
    );
}

#[test]
fn no_file_in_the_list_exists_is_an_error_naming_them() {
    // An explicit KUBECONFIG that names nothing is an error for us.
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml").display().to_string();
    let b = dir.path().join("b.yaml").display().to_string();
    let err = ours(&format!("{a}:{b}"), None).unwrap_err();
    assert!(matches!(err, KubeconfigError::NoFile { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&a) && message.contains(&b), "{message}");
    // kubectl: an empty configuration (it would then fall back to localhost:8080).
    let kubectl = kubectl(
        &format!("{a}:{b}"),
        &["config", "view", "--raw", "-o", "json"],
    );
    assert!(kubectl.ok, "{}", kubectl.stderr);
    let view: Value = serde_json::from_str(&kubectl.stdout).unwrap();
    assert_eq!(view["clusters"], Value::Null, "{view}");
    assert_eq!(view["current-context"], "", "{view}");
}

// ---------------------------------------------------------------------------------------
// Errors: named file and field, kubectl agrees that the file is unusable, no secret shown.

const SECRET_TOKEN: &str = "sekrit-token-4b1d9e";
const SECRET_PASSWORD: &str = "sekrit-password-77c0";

/// Where kubectl rejects a kubeconfig, with a phrase of its message.
#[derive(Debug, Clone, Copy)]
enum KubectlRejects {
    /// `config view --minify` already fails.
    View(&'static str),
    /// `config view --minify --flatten` fails (a file cannot be read).
    Flatten(&'static str),
    /// Only when building a client (`get --raw /version`), before any connection.
    Get(&'static str),
}

struct ErrorCase {
    name: &'static str,
    /// `{cluster}`, `{user}`, `{context}` and `{current}` are replaced in a template;
    /// or a whole file when `raw`.
    cluster: &'static str,
    user: &'static str,
    context: &'static str,
    current: &'static str,
    raw: Option<&'static str>,
    flag_context: Option<&'static str>,
    /// What our message must contain besides the file's path.
    needles: &'static [&'static str],
    kubectl: KubectlRejects,
}

const BASE: ErrorCase = ErrorCase {
    name: "",
    cluster: r#"{server: "https://127.0.0.1:1"}"#,
    user: "{token: sekrit-token-4b1d9e}",
    context: "{cluster: k, user: u}",
    current: "c",
    raw: None,
    flag_context: None,
    needles: &[],
    kubectl: KubectlRejects::View(""),
};

fn write_case(dir: &Path, case: &ErrorCase) -> PathBuf {
    let text = match case.raw {
        Some(raw) => raw.to_string(),
        None => format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster: {}\nusers:\n- name: u\n  user: {}\n- name: other\n  user: {{username: admin, password: {SECRET_PASSWORD}}}\ncontexts:\n- name: c\n  context: {}\ncurrent-context: \"{}\"\n",
            case.cluster, case.user, case.context, case.current
        ),
    };
    let path = dir.join(format!("{}.yaml", case.name));
    std::fs::write(&path, text).unwrap();
    path
}

/// Our error names the file and the needles and carries no secret; kubectl rejects the
/// same file. Returns our message.
fn check_error_case(case: &ErrorCase) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write_case(dir.path(), case);
    let file = path.display().to_string();
    let name = case.name;

    let err = match ours(&file, case.flag_context) {
        Ok(config) => panic!("{name}: ours accepted it: {config:?}"),
        Err(e) => e,
    };
    let message = err.to_string();
    assert!(
        message.contains(&file),
        "{name}: the file is not named: {message}"
    );
    for needle in case.needles {
        assert!(
            message.contains(needle),
            "{name}: {needle:?} missing in: {message}"
        );
    }
    let debug = format!("{err:?} {err:#?}");
    for secret in [SECRET_TOKEN, SECRET_PASSWORD] {
        assert!(
            !message.contains(secret),
            "{name}: secret in the message: {message}"
        );
        assert!(!debug.contains(secret), "{name}: secret in Debug: {debug}");
    }

    let (rejected, needle, stderr) = match case.kubectl {
        KubectlRejects::View(needle) => match kubectl_view(&file, case.flag_context, false) {
            Ok(view) => (false, needle, view.to_string()),
            Err(stderr) => (true, needle, stderr),
        },
        KubectlRejects::Flatten(needle) => match kubectl_view(&file, case.flag_context, true) {
            Ok(view) => (false, needle, view.to_string()),
            Err(stderr) => (true, needle, stderr),
        },
        KubectlRejects::Get(needle) => {
            let run = kubectl_get(&file);
            (!run.ok, needle, run.stderr)
        }
    };
    assert!(rejected, "{name}: kubectl accepted it: {stderr}");
    assert!(
        stderr.contains(needle),
        "{name}: kubectl failed for another reason: {stderr}"
    );
    message
}

fn error_cases() -> Vec<ErrorCase> {
    vec![
        ErrorCase {
            name: "missing-context",
            flag_context: Some("nope"),
            needles: &[r#"context "nope""#, "--context"],
            kubectl: KubectlRejects::View("cannot locate context nope"),
            ..BASE
        },
        ErrorCase {
            name: "current-context-missing",
            current: "gone",
            needles: &[r#"context "gone""#, "current-context"],
            kubectl: KubectlRejects::View("cannot locate context gone"),
            ..BASE
        },
        ErrorCase {
            name: "no-current-context",
            current: "",
            needles: &["current-context"],
            kubectl: KubectlRejects::View("current-context must exist"),
            ..BASE
        },
        ErrorCase {
            name: "missing-cluster",
            context: "{cluster: ghost, user: u}",
            needles: &[r#"cluster "ghost""#, r#"context "c""#],
            kubectl: KubectlRejects::View("cannot locate cluster ghost"),
            ..BASE
        },
        ErrorCase {
            name: "missing-user",
            context: "{cluster: k, user: ghost}",
            needles: &[r#"user "ghost""#, r#"context "c""#],
            kubectl: KubectlRejects::View("cannot locate user ghost"),
            ..BASE
        },
        ErrorCase {
            name: "bad-base64",
            cluster: r#"{server: "https://127.0.0.1:1", certificate-authority-data: "not base64!!"}"#,
            needles: &[r#"cluster "k""#, "`certificate-authority-data`", "base64"],
            kubectl: KubectlRejects::View("illegal base64 data"),
            ..BASE
        },
        ErrorCase {
            name: "bad-base64-client-key",
            user: r#"{client-certificate-data: "LS0tLQ==", client-key-data: "%%%"}"#,
            needles: &[r#"user "u""#, "`client-key-data`", "base64"],
            kubectl: KubectlRejects::View("illegal base64 data"),
            ..BASE
        },
        ErrorCase {
            name: "does-not-parse",
            // The broken line holds a token: the message must not quote it.
            raw: Some(
                "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user: {token: \"sekrit-token-4b1d9e}\n    - [\n",
            ),
            needles: &["does not parse"],
            kubectl: KubectlRejects::View("error loading config file"),
            ..BASE
        },
        ErrorCase {
            name: "not-a-kubeconfig-shape",
            raw: Some(
                "clusters: {not: a list}\nusers: [{name: u, user: {token: sekrit-token-4b1d9e}}]\n",
            ),
            needles: &["does not parse"],
            kubectl: KubectlRejects::View("error loading config file"),
            ..BASE
        },
        ErrorCase {
            name: "auth-provider",
            user: "{auth-provider: {name: gcp, config: {access-token: sekrit-token-4b1d9e}}}",
            needles: &[r#"user "u""#, "`auth-provider`", "exec"],
            kubectl: KubectlRejects::Get("gke-gcloud-auth-plugin"),
            ..BASE
        },
        ErrorCase {
            name: "client-certificate-without-key",
            user: "{client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCm5vdC1hLXJlYWwtY2VydGlmaWNhdGUKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=}",
            needles: &[r#"user "u""#, "`client-key`"],
            kubectl: KubectlRejects::Get("client-key-data or client-key must be specified"),
            ..BASE
        },
        ErrorCase {
            name: "insecure-with-ca",
            cluster: r#"{server: "https://127.0.0.1:1", insecure-skip-tls-verify: true, certificate-authority-data: "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCm5vdC1hLXJlYWwtY2VydGlmaWNhdGUKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="}"#,
            needles: &[r#"cluster "k""#, "`insecure-skip-tls-verify`"],
            kubectl: KubectlRejects::Get(
                "specifying a root certificates file with the insecure flag is not allowed",
            ),
            ..BASE
        },
        ErrorCase {
            name: "relative-ca-file-missing",
            cluster: r#"{server: "https://127.0.0.1:1", certificate-authority: certs/missing.crt}"#,
            needles: &[
                r#"cluster "k""#,
                "`certificate-authority`",
                "certs/missing.crt",
            ],
            kubectl: KubectlRejects::Flatten("certs/missing.crt"),
            ..BASE
        },
        ErrorCase {
            name: "exec-v1-without-interactive-mode",
            user: "{exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/true, env: [{name: K, value: sekrit-token-4b1d9e}]}}",
            needles: &[r#"user "u""#, "`exec.interactiveMode`"],
            kubectl: KubectlRejects::Get("interactiveMode must be specified"),
            ..BASE
        },
        ErrorCase {
            name: "exec-unsupported-api-version",
            user: "{exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: /bin/true, interactiveMode: Never}}",
            needles: &[r#"user "u""#, "`exec.apiVersion`", "v1alpha1"],
            kubectl: KubectlRejects::Get("invalid apiVersion"),
            ..BASE
        },
    ]
}

#[test]
fn broken_kubeconfigs_are_reported_naming_file_and_field_and_kubectl_rejects_them_too() {
    let mut failures = Vec::new();
    for case in error_cases() {
        if let Err(panic) = std::panic::catch_unwind(|| check_error_case(&case)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// kubectl rejects these three; we accept them, silently picking one of the values.

#[test]
fn duplicate_names_in_one_file_are_rejected_like_kubectl() {
    check_error_case(&ErrorCase {
        name: "duplicate-user",
        raw: Some(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster: {server: \"https://127.0.0.1:1\"}\nusers:\n- name: u\n  user: {token: sekrit-token-4b1d9e}\n- name: u\n  user: {username: admin, password: sekrit-password-77c0}\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\ncurrent-context: c\n",
        ),
        needles: &[r#"user "u""#, "duplicate"],
        kubectl: KubectlRejects::View(r#"duplicate name "u""#),
        ..BASE
    });
}

#[test]
fn ca_data_and_ca_file_together_are_rejected_like_kubectl() {
    check_error_case(&ErrorCase {
        name: "ca-data-and-file",
        cluster: r#"{server: "https://127.0.0.1:1", certificate-authority: ca.crt, certificate-authority-data: "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCm5vdC1hLXJlYWwtY2VydGlmaWNhdGUKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="}"#,
        needles: &[r#"cluster "k""#, "`certificate-authority`"],
        kubectl: KubectlRejects::Get(
            "certificate-authority-data and certificate-authority are both specified",
        ),
        ..BASE
    });
}

#[test]
fn token_and_basic_auth_together_are_rejected_like_kubectl() {
    check_error_case(&ErrorCase {
        name: "token-and-basic",
        user: "{token: sekrit-token-4b1d9e, username: admin, password: sekrit-password-77c0}",
        needles: &[r#"user "u""#, "token"],
        kubectl: KubectlRejects::Get("more than one authentication method found for u"),
        ..BASE
    });
}

#[test]
fn a_cluster_without_server_is_reported_naming_file_and_field() {
    let case = ErrorCase {
        name: "no-server",
        cluster: "{insecure-skip-tls-verify: true}",
        ..BASE
    };
    let dir = tempfile::tempdir().unwrap();
    let path = write_case(dir.path(), &case);
    let file = path.display().to_string();
    let message = ours(&file, None).unwrap_err().to_string();
    for needle in [file.as_str(), r#"cluster "k""#, "`server`"] {
        assert!(message.contains(needle), "{needle:?} missing in: {message}");
    }
    assert!(!message.contains(SECRET_TOKEN), "{message}");
    // kubectl sees no server either (and would fall back to its default, localhost:8080,
    // where we refuse).
    let view = kubectl_view(&file, None, false).unwrap();
    let cluster = only("no-server", &view, "clusters", "cluster", "k");
    assert_eq!(str_field(cluster, "server"), None, "{view}");
}
