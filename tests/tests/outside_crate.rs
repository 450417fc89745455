//! A brand-new crate outside the workspace, depending on `scope-plugin` by path, with only
//! annotated functions and the one-line main, builds and serves a valid report.

use std::process::Command;

use scope_plugin_check::{ProbeClient, judge};
use scope_plugin_tests::{RunningPlugin, docker, workspace_root};

const MAIN_RS: &str = r#"
use scope_plugin::prelude::*;

/// Always 7.
#[scope_metric(topology = "host", id = "seven", label = "Seven", format = "integer", priority = 4.0)]
fn seven() -> u32 {
    7
}

/// Counts its own calls.
#[scope_metric(topology = "host", id = "calls", label = "Calls", priority = 5.0)]
fn calls(count: &mut u64) -> f64 {
    *count += 1;
    *count as f64
}

/// This process's name.
#[scope_metadata(topology = "process", id = "me", label = "Me")]
fn me() -> Vec<(Pid, String)> {
    vec![(Pid(std::process::id()), String::from("outside"))]
}

/// A family of metrics: one series per status code.
#[scope_metric(topology = "process", id = "codes", label = "HTTP {} responses/s", priority = 4.0)]
fn codes() -> Vec<((Pid, u16), f64)> {
    let me = Pid(std::process::id());
    vec![((me, 404), 1.0), ((me, 200), 2.5)]
}

scope_plugin::main!(id = "outside", label = "Outside", description = "Built outside the workspace");
"#;

/// The crate, written to a new temporary directory.
fn outside_crate() -> tempfile::TempDir {
    let manifest = format!(
        "[package]\nname = \"outside\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n\
         scope-plugin = {{ path = {:?} }}\n\n[workspace]\n",
        workspace_root().join("scope-plugin")
    );
    new_crate(&manifest, MAIN_RS)
}

/// A crate outside the workspace with `manifest` and `main_rs`, in a new temporary directory.
fn new_crate(manifest: &str, main_rs: &str) -> tempfile::TempDir {
    let root = workspace_root();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("Cargo.toml"), manifest).expect("manifest");
    std::fs::create_dir(dir.path().join("src")).expect("src");
    std::fs::write(dir.path().join("src/main.rs"), main_rs).expect("main.rs");
    // Same dependency versions as the workspace, so the build needs no registry access.
    std::fs::copy(root.join("Cargo.lock"), dir.path().join("Cargo.lock")).expect("lockfile");
    dir
}

/// Builds the crate in `dir` (offline, in the workspace's target directory under `name`)
/// and returns its binary.
fn build(dir: &std::path::Path, name: &str, binary: &str) -> std::path::PathBuf {
    let target = workspace_root().join("target").join(name);
    let build = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--offline"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    assert!(
        build.status.success(),
        "build failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    target.join("debug").join(binary)
}

/// The first code block of `language` in the README.
fn readme_block(language: &str) -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README");
    let start = readme
        .find(&format!("```{language}\n"))
        .map(|i| i + language.len() + 4)
        .unwrap_or_else(|| panic!("the README has a {language} block"));
    let end = readme[start..].find("```").expect("the block ends") + start;
    readme[start..end].to_owned()
}

#[test]
fn the_readmes_first_example_and_manifest_make_a_plugin() {
    // The manifest as the README shows it, with its path pointing at this checkout.
    let manifest = readme_block("toml").replace(
        "\"../scope-plugin/scope-plugin\"",
        &format!("{:?}", workspace_root().join("scope-plugin")),
    ) + "\n[workspace]\n";
    assert!(manifest.contains(&format!("{:?}", workspace_root().join("scope-plugin"))));
    let dir = new_crate(&manifest, &readme_block("rust"));
    let binary = build(dir.path(), "outside-crate", "my-plugin");
    let once = Command::new(&binary)
        .args(["--once", "--host-id", "h"])
        .output()
        .expect("runs");
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&once.stdout).expect("json");
    let iowait =
        report["Host"]["nodes"]["h;<host>"]["metrics"]["my-plugin_iowait"]["samples"][0]["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("an IO wait value after two samples: {report}"));
    assert!((0.0..=100.0).contains(&iowait), "{iowait}");
}

#[test]
fn a_new_crate_with_only_annotated_functions_is_a_plugin() {
    let dir = outside_crate();
    let binary = build(dir.path(), "outside-crate", "outside");

    let list = Command::new(&binary).arg("--list").output().expect("runs");
    let list = String::from_utf8_lossy(&list.stdout);
    for id in ["outside_seven", "outside_calls", "outside_me"] {
        assert!(list.contains(id), "--list shows {id}: {list}");
    }
    let once = Command::new(&binary)
        .args(["--once", "--host-id", "h"])
        .output()
        .expect("runs");
    assert!(once.status.success());
    let report: serde_json::Value = serde_json::from_slice(&once.stdout).expect("json");
    assert_eq!(
        report["Host"]["nodes"]["h;<host>"]["metrics"]["outside_seven"]["samples"][0]["value"],
        7.0
    );
    assert_eq!(
        report["Host"]["metric_templates"]["outside_seven"]["format"],
        "integer"
    );

    let plugin = RunningPlugin::start(binary.to_str().expect("utf8"), "outside", &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut client = ProbeClient::new(&plugin.socket);
        for _ in 0..100 {
            let poll = client.get_report().await.expect("poll");
            let verdict = judge(&poll.body, "outside");
            assert!(verdict.passes() && verdict.status == "ok", "{verdict:#?}");
            let report: serde_json::Value = serde_json::from_slice(&poll.body).expect("json");
            // State is kept between samples: the call counter climbs.
            let calls =
                report["Host"]["nodes"]["test-host;<host>"]["metrics"]["outside_calls"]["samples"]
                    [0]["value"]
                    .as_f64()
                    .unwrap_or(0.0);
            if calls >= 2.0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the stateful collector never reached 2 calls");
    });
}

#[test]
fn a_new_crate_builds_its_image_with_the_readme_command() {
    if !docker::available() {
        return;
    }
    let dir = outside_crate();
    let image = docker::build_image_in(dir.path(), &["--manifest-path", "Cargo.toml"]);
    assert_eq!(image, "scope-plugin/outside:0.1.0");
    assert_eq!(docker::labels(&image)["works.weave.role"], "system");
    let list = docker::docker(&["run", "--rm", "--cap-drop", "ALL", &image, "--list"]);
    for id in ["outside_seven", "outside_calls", "outside_me"] {
        assert!(
            list.contains(id),
            "--list in the container shows {id}: {list}"
        );
    }
}
