//! `make demo` and `make test` build the workspace's binaries, then its tests. Cargo resolves
//! features per build: when a test's dev-dependency turns on a feature of a shared crate
//! (`test-util` of an AWS SDK crate, say), every crate above it is compiled a second time for
//! the tests, the whole SDK among them. The member `dev-features` declares those features as
//! normal dependencies, so both builds resolve alike and compile everything once. This test
//! keeps it in step with the members' `[dev-dependencies]`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

const DEV_FEATURES: &str = "keyrotor-dev-features";

/// What a dependency turns on in the crate it names: its features, and `default` where it
/// keeps the default features.
fn turned_on(dependency: &Value) -> BTreeSet<String> {
    let mut features: BTreeSet<String> = dependency["features"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect();
    if dependency["uses_default_features"].as_bool() != Some(false) {
        features.insert("default".to_owned());
    }
    features
}

/// Each dev-dependency of a member that `dev-features` does not turn on as a normal
/// dependency with at least the same features: `(member, crate, missing features)`. A
/// workspace member named as a dev-dependency with no features of its own is built as a
/// member anyway, so it needs no line.
fn not_covered(metadata: &Value) -> Vec<(String, String, Vec<String>)> {
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let Some(dev_features) = packages.iter().find(|p| p["name"] == DEV_FEATURES) else {
        return vec![(DEV_FEATURES.to_owned(), "(the package)".to_owned(), vec![])];
    };
    let mut declared: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in dev_features["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if d["kind"].is_null() {
            if let Some(name) = d["name"].as_str() {
                declared
                    .entry(name.to_owned())
                    .or_default()
                    .extend(turned_on(d));
            }
        }
    }
    let mut missing = Vec::new();
    for package in &packages {
        let member = package["name"].as_str().unwrap_or("?");
        for d in package["dependencies"].as_array().into_iter().flatten() {
            if d["kind"] != "dev" {
                continue;
            }
            let name = d["name"].as_str().unwrap_or("?");
            let mut wanted = turned_on(d);
            if d["path"].is_string() {
                wanted.remove("default");
                if wanted.is_empty() {
                    continue;
                }
            }
            match declared.get(name) {
                None => missing.push((
                    member.to_owned(),
                    name.to_owned(),
                    wanted.into_iter().collect(),
                )),
                Some(have) => {
                    let lacking: Vec<String> = wanted.difference(have).cloned().collect();
                    if !lacking.is_empty() {
                        missing.push((member.to_owned(), name.to_owned(), lacking));
                    }
                }
            }
        }
    }
    missing
}

fn workspace_metadata() -> Value {
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(keyrotor_localstack::workspace_root())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn dev_features_turns_on_everything_the_tests_dev_dependencies_do() {
    let metadata = workspace_metadata();
    let members = metadata["packages"].as_array().map_or(0, Vec::len);
    assert!(members >= 15, "the workspace is read: {members} packages");
    let missing = not_covered(&metadata);
    assert!(
        missing.is_empty(),
        "add these to dev-features/Cargo.toml as normal dependencies, or the tests compile \
         the SDK again: {missing:?}"
    );
}

#[test]
fn a_dev_dependency_feature_left_out_of_dev_features_is_named() {
    let mut metadata = workspace_metadata();
    let packages = metadata["packages"].as_array_mut().expect("packages");
    let dev_features = packages
        .iter_mut()
        .find(|p| p["name"] == DEV_FEATURES)
        .expect("the dev-features member");
    let dependencies = dev_features["dependencies"]
        .as_array_mut()
        .expect("its dependencies");
    // Drop `test-util` from its aws-sdk-iam, and aws-smithy-mocks altogether.
    for d in dependencies.iter_mut() {
        if d["name"] == "aws-sdk-iam" {
            let features = d["features"].as_array_mut().expect("features");
            features.retain(|f| f != "test-util");
        }
    }
    dependencies.retain(|d| d["name"] != "aws-smithy-mocks");
    let missing = not_covered(&metadata);
    assert!(
        missing.contains(&(
            "keyrotor-aws".to_owned(),
            "aws-sdk-iam".to_owned(),
            vec!["test-util".to_owned()]
        )),
        "{missing:?}"
    );
    assert!(
        missing
            .iter()
            .any(|(member, name, _)| member == "keyrotor-aws" && name == "aws-smithy-mocks"),
        "{missing:?}"
    );
}
