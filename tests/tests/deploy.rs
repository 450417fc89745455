//! The Kubernetes DaemonSet is valid against the API schema in strict mode (a misspelt
//! field fails), and says what the README promises: host pids, the plugins directory,
//! the probe's host id, least privilege, every node.

use std::path::Path;
use std::process::Command;

use scope_plugin_tests::workspace_root;

const DAEMONSET: &str = "deploy/kubernetes/daemonset.yaml";

/// `kubernetes-validate --strict` on `path`: (passed, what it printed). None when the
/// validator is not installed (`make validate-setup` installs it).
fn validate(path: &Path) -> Option<(bool, String)> {
    let output = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict"])
        .arg(path)
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if text.contains("No module named kubernetes_validate") {
        return None;
    }
    Some((output.status.success(), text))
}

fn validator_missing() {
    scope_plugin_tests::cannot_run_here(
        "kubernetes-validate is not installed (`make validate-setup` installs it)",
    );
}

#[test]
fn the_daemonset_validates_strictly() {
    let Some((passed, text)) = validate(&workspace_root().join(DAEMONSET)) else {
        return validator_missing();
    };
    assert!(passed, "{text}");
    assert!(text.contains("passed"), "{text}");
}

#[test]
fn a_broken_copy_fails_validation() {
    let manifest = std::fs::read_to_string(workspace_root().join(DAEMONSET)).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    for (right, wrong) in [
        ("hostPID: true", "hostPIDD: true"),
        (
            "readOnlyRootFilesystem: true",
            "readOnlyRootFileSystem: true",
        ),
        ("maxUnavailable: 1", "maxUnavailable: [1]"),
    ] {
        assert!(manifest.contains(right), "{right} is in the manifest");
        let broken = dir.path().join("broken.yaml");
        std::fs::write(&broken, manifest.replacen(right, wrong, 1)).expect("write");
        let Some((passed, text)) = validate(&broken) else {
            return validator_missing();
        };
        assert!(!passed, "{wrong:?} passed validation: {text}");
    }
}

#[test]
fn the_daemonset_says_what_the_readme_promises() {
    // PyYAML comes with kubernetes-validate.
    let output = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(workspace_root().join(DAEMONSET))
        .output()
        .expect("python3 runs");
    if !output.status.success() {
        return validator_missing();
    }
    let ds: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(ds["apiVersion"], "apps/v1");
    assert_eq!(ds["kind"], "DaemonSet");
    assert_eq!(ds["spec"]["updateStrategy"]["type"], "RollingUpdate");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod["tolerations"][0]["operator"], "Exists");
    assert!(pod["hostNetwork"].is_null(), "no host network needed");
    let container = &pod["containers"][0];
    let env = &container["env"][0];
    assert_eq!(env["name"], "SCOPE_HOSTNAME");
    assert_eq!(env["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
    let security = &container["securityContext"];
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(
        security["capabilities"]["add"],
        serde_json::json!(["BPF", "PERFMON"])
    );
    assert_eq!(security["privileged"], false);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][bound][resource].is_string(),
                "{bound}.{resource} is set"
            );
        }
    }
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/var/run/scope/plugins");
    let volume = &pod["volumes"][0];
    assert_eq!(volume["name"], mount["name"]);
    assert_eq!(volume["hostPath"]["path"], "/var/run/scope/plugins");
    // The image tag is the version `make image` builds.
    let manifest = std::fs::read_to_string(workspace_root().join("collectors/Cargo.toml"))
        .expect("collectors manifest");
    let workspace =
        std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("workspace");
    assert!(manifest.contains("version.workspace = true"));
    let version = workspace
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("workspace version");
    assert_eq!(
        container["image"],
        format!("scope-plugin/collectors:{version}")
    );
}
