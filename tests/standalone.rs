//! The repository stands alone: a user clones it and has nothing beside it.
//!
//! No file of the repository reads or links the developers' shared folder beside the
//! checkout (what a test needs is copied into `fixtures/`), except the optional
//! performance comparison against the kube-rs anchor (`benches/compare.sh`, which also
//! tells `benches/archived_logs.sh` where the harness is), which needs the anchor and the
//! benchmark harness that ship only with that folder, and stops saying so when they are
//! missing. And `rust-version` in `Cargo.toml` is one the code and its dependencies
//! really build with.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The path of the developers' shared folder as a file would write it, built from
/// parts so that this file does not contain it.
const SHARED: &str = concat!("..", "/shared");

/// The one file allowed to name it: the optional comparison against the kube-rs anchor.
const ALLOWED: &[&str] = &["benches/compare.sh"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's files, relative to its root: what git knows (committed, staged,
/// or new and not ignored) as they are in the working tree; without git (or outside a
/// checkout), every file under the root but `target/` and `.git/`.
fn repository_files() -> Vec<PathBuf> {
    let git = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root())
        .output();
    match git {
        Ok(out) if out.status.success() && !out.stdout.is_empty() => out
            .stdout
            .split(|&b| b == 0)
            .filter(|name| !name.is_empty())
            .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
            // Deleted in the working tree but not yet in the index: not there to read.
            .filter(|path| root().join(path).is_file())
            .collect(),
        _ => {
            let mut files = Vec::new();
            walk(root(), Path::new(""), &mut files);
            files
        }
    }
}

fn walk(dir: &Path, relative: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let name = entry.file_name();
        let path = relative.join(&name);
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            if relative.as_os_str().is_empty() && (name == "target" || name == ".git") {
                continue;
            }
            walk(&entry.path(), &path, files);
        } else if kind.is_file() {
            files.push(path);
        }
    }
}

#[test]
fn no_file_reaches_outside_the_repository() {
    let files = repository_files();
    assert!(
        files.iter().any(|f| f == Path::new("Cargo.toml")),
        "the file listing found no Cargo.toml: {files:?}"
    );
    let needle = SHARED.as_bytes();
    let mut offenders: Vec<String> = files
        .iter()
        .filter(|f| {
            !ALLOWED
                .iter()
                .any(|allowed| Path::new(allowed) == f.as_path())
        })
        .filter(|f| {
            let bytes =
                std::fs::read(root().join(f)).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .map(|f| f.display().to_string())
        .collect();
    offenders.sort();
    assert!(
        offenders.is_empty(),
        "these files read or link {SHARED}, which a user who clones the repository does \
         not have (copy what is needed into fixtures/):\n  {}",
        offenders.join("\n  ")
    );
}

/// `major.minor[.patch]` as numbers (a missing patch is 0, so 1.89 == 1.89.0).
fn version(text: &str) -> [u64; 3] {
    let mut out = [0; 3];
    let parts: Vec<&str> = text.split('.').collect();
    assert!(
        (2..=3).contains(&parts.len()),
        "version {text:?}: not major.minor[.patch]"
    );
    for (slot, part) in out.iter_mut().zip(parts) {
        *slot = part
            .parse()
            .unwrap_or_else(|e| panic!("version {text:?}: {part:?}: {e}"));
    }
    out
}

/// `rust-version` of `[package]` in Cargo.toml.
fn declared_rust_version() -> String {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("rust-version"))
        .expect("Cargo.toml sets rust-version");
    line.trim()
        .strip_prefix('=')
        .map(|value| value.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("rust-version{line}: not `rust-version = \"X.Y\"`"))
}

#[test]
fn rust_version_covers_the_code() {
    let declared = declared_rust_version();
    // Let chains (`if let ... && ...`) are stable since 1.88.
    assert!(
        version(&declared) >= version("1.88"),
        "rust-version {declared} is below 1.88, which the code's let chains need"
    );
}

#[test]
fn rust_version_covers_the_dependencies() {
    // Every crate in the resolve reachable from this package through normal, build
    // and (from this package only) dev dependencies: what `cargo test` builds. All
    // platforms are included, which can only make the bound stricter.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .current_dir(root())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let resolve = &metadata["resolve"];
    let root_id = resolve["root"].as_str().expect("a root package");
    let nodes = resolve["nodes"].as_array().unwrap();
    let node = |id: &str| nodes.iter().find(|n| n["id"] == id).unwrap();
    let kinds = |dep: &serde_json::Value| -> Vec<Option<String>> {
        dep["dep_kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kind"].as_str().map(str::to_string))
            .collect()
    };

    let mut seen = std::collections::BTreeSet::new();
    let mut stack: Vec<String> = Vec::new();
    for dep in node(root_id)["deps"].as_array().unwrap() {
        stack.push(dep["pkg"].as_str().unwrap().to_string());
    }
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        for dep in node(&id)["deps"].as_array().unwrap() {
            if kinds(dep)
                .iter()
                .any(|k| k.is_none() || k.as_deref() == Some("build"))
            {
                stack.push(dep["pkg"].as_str().unwrap().to_string());
            }
        }
    }

    let declared = declared_rust_version();
    let mut too_new: Vec<String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| seen.contains(p["id"].as_str().unwrap()))
        .filter_map(|p| {
            let needs = p["rust_version"].as_str()?;
            (version(needs) > version(&declared))
                .then(|| format!("{} {} needs {needs}", p["name"], p["version"]))
        })
        .collect();
    too_new.sort();
    assert!(
        !seen.is_empty() && too_new.is_empty(),
        "rust-version {declared} in Cargo.toml is below what these dependencies need:\n  {}",
        too_new.join("\n  ")
    );
}
