//! Docker for the container tests: is an engine there, build a plugin's image with the
//! project's own script, and containers that are removed when dropped.

use std::path::Path;
use std::process::{Command, Output};

use crate::workspace_root;

/// True if a Docker engine answers; otherwise says why (and fails under CI, whose
/// `make test` installs and starts one).
pub fn available() -> bool {
    let answers = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !answers {
        crate::cannot_run_here(
            "no Docker engine answers (`make docker-setup` installs and starts one)",
        );
    }
    answers
}

/// Runs `docker args…` and returns its trimmed stdout; panics with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    stdout_or_panic(&format!("docker {}", args.join(" ")), output)
}

fn stdout_or_panic(what: &str, output: Output) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Builds an image with `deploy/docker/build-image args…` (what `make image` runs) and
/// returns its `name:version`.
pub fn build_image(args: &[&str]) -> String {
    build_image_in(&workspace_root(), args)
}

/// As [`build_image`], run from `dir` (a crate outside the workspace). Cargo's target
/// directory is the workspace's, so the dependencies are built once for every image.
pub fn build_image_in(dir: &Path, args: &[&str]) -> String {
    build_image_with_target(dir, &workspace_root().join("target"), args)
}

/// As [`build_image_in`], with cargo's target directory at `target`.
pub fn build_image_with_target(dir: &Path, target: &Path, args: &[&str]) -> String {
    let output = Command::new(workspace_root().join("deploy/docker/build-image"))
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .current_dir(dir)
        .output()
        .expect("build-image runs");
    stdout_or_panic("deploy/docker/build-image", output)
}

/// The image's labels.
pub fn labels(image: &str) -> serde_json::Value {
    let text = docker(&["image", "inspect", "-f", "{{json .Config.Labels}}", image]);
    serde_json::from_str(&text).expect("labels are JSON")
}

/// The image's size in bytes.
pub fn image_size(image: &str) -> u64 {
    docker(&["image", "inspect", "-f", "{{.Size}}", image])
        .parse()
        .expect("size is a number")
}

/// A container started with `docker run -d args…`, removed (with its anonymous volumes)
/// when dropped.
#[derive(Debug)]
pub struct Container {
    /// The container id.
    pub id: String,
}

impl Container {
    /// `docker run -d args…`.
    pub fn run(args: &[&str]) -> Self {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        Self { id: docker(&all) }
    }

    /// The pid of the container's first process, as the host sees it.
    pub fn host_pid(&self) -> u32 {
        docker(&["inspect", "-f", "{{.State.Pid}}", &self.id])
            .parse()
            .expect("pid")
    }

    /// `docker stop` (SIGTERM, then SIGKILL after `grace_seconds`); returns the exit code.
    pub fn stop(&self, grace_seconds: u32) -> i64 {
        docker(&["stop", "-t", &grace_seconds.to_string(), &self.id]);
        docker(&["inspect", "-f", "{{.State.ExitCode}}", &self.id])
            .parse()
            .expect("exit code")
    }

    /// What the container wrote on stdout and stderr so far.
    pub fn logs(&self) -> String {
        let output = Command::new("docker")
            .args(["logs", &self.id])
            .output()
            .expect("docker runs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.id])
            .output();
    }
}
