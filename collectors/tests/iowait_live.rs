//! Against the live /proc: under a bounded disk load, the reported IO wait over an interval
//! agrees with vmstat's measurement of the same interval within 2 percentage points.

use std::process::{Command, Stdio};
use std::time::Duration;

const COLLECTORS: &str = env!("CARGO_BIN_EXE_collectors");

/// vmstat's `wa` for one interval: `vmstat SECONDS 2`, second data line.
fn vmstat_iowait(output: &str) -> f64 {
    let mut lines = output.lines().skip(1);
    let header: Vec<&str> = lines
        .next()
        .expect("vmstat header")
        .split_whitespace()
        .collect();
    let column = header
        .iter()
        .position(|&name| name == "wa")
        .expect("wa column");
    let last = lines.last().expect("vmstat interval line");
    last.split_whitespace()
        .nth(column)
        .expect("wa value")
        .parse()
        .expect("number")
}

#[test]
fn iowait_matches_vmstat_over_the_same_interval() {
    if Command::new("vmstat").arg("-V").output().is_err() {
        panic!("vmstat is missing: the README's setup installs it (Debian package procps)");
    }
    // O_DIRECT needs a real filesystem (not tmpfs): write under the target directory.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let target = dir.path().join("load");
    // Bounded: at most 12 s and 4 GiB, removed with the temporary directory.
    let mut load = Command::new("timeout")
        .args([
            "12",
            "dd",
            "if=/dev/zero",
            "bs=1M",
            "count=4096",
            "oflag=direct",
        ])
        .arg(format!("of={}", target.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dd starts");
    std::thread::sleep(Duration::from_secs(1));

    // Both measure one 3 s interval starting now.
    let ours = Command::new(COLLECTORS)
        .args([
            "--once",
            "--interval",
            "3s",
            "--disable",
            "idle,steal,io_pressure",
            "--host-id",
            "h",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("collectors starts");
    let vmstat = Command::new("vmstat")
        .args(["3", "2"])
        .output()
        .expect("vmstat runs");
    let ours = ours.wait_with_output().expect("collectors finishes");
    let _ = load.kill();
    let _ = load.wait();

    assert!(ours.status.success());
    let report: serde_json::Value = serde_json::from_slice(&ours.stdout).expect("json report");
    let reported = report["Host"]["nodes"]["h;<host>"]["metrics"]["scope-collectors_iowait"]["samples"][0]["value"]
        .as_f64()
        .expect("iowait sample");
    let independent = vmstat_iowait(&String::from_utf8_lossy(&vmstat.stdout));
    println!("IO wait over the same 3 s interval: ours {reported:.2}%, vmstat {independent}%");
    assert!(
        independent >= 3.0,
        "the disk load produced too little IO wait ({independent}%) to compare"
    );
    // vmstat prints whole percents, so it carries up to 0.5 points of rounding itself.
    assert!(
        (reported - independent).abs() <= 2.0,
        "ours {reported:.2}% vs vmstat {independent}%"
    );
}

#[test]
fn once_waits_one_interval_and_reports_interval_values() {
    let started = std::time::Instant::now();
    let output = Command::new(COLLECTORS)
        .args([
            "--once",
            "--interval",
            "1s",
            "--host-id",
            "h",
            "--disable",
            "http_requests,http_responses,http_codes",
        ])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A rate needs two samples, one interval apart.
    assert!(started.elapsed() >= Duration::from_secs(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let metrics = &report["Host"]["nodes"]["h;<host>"]["metrics"];
    let mut total = 0.0;
    for id in ["iowait", "idle", "steal"] {
        let value = metrics[format!("scope-collectors_{id}")]["samples"][0]["value"]
            .as_f64()
            .expect(id);
        assert!((0.0..=100.0).contains(&value), "{id} = {value}");
        total += value;
    }
    assert!(total <= 100.0 + 1e-9);
    let template = &report["Host"]["metric_templates"]["scope-collectors_iowait"];
    assert_eq!(template["format"], "percent");
    assert!(
        template["priority"].as_f64() >= Some(3.0),
        "does not push CPU and memory out of the top three"
    );
    let verdict = scope_plugin_check::judge(&output.stdout, "scope-collectors");
    assert!(verdict.passes(), "{:#?}", verdict.findings);
}

#[test]
fn fixture_procfs_tree_gives_exact_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stat = dir.path().join("stat");
    // The collector reads stat twice, one interval apart: swap the file in between.
    std::fs::write(&stat, "cpu0 100 0 50 800 50 0 0 0 0 0\n").expect("write");
    let child = Command::new(COLLECTORS)
        .args([
            "--once",
            "--interval",
            "1500ms",
            "--host-id",
            "h",
            "--disable",
            "io_pressure",
            "--path.procfs",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("runs");
    std::thread::sleep(Duration::from_millis(700));
    // +10 user +60 idle +20 iowait +10 steal = 100 ticks.
    std::fs::write(&stat, "cpu0 110 0 50 860 70 0 0 10 0 0\n").expect("write");
    let output = child.wait_with_output().expect("finishes");
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let metrics = &report["Host"]["nodes"]["h;<host>"]["metrics"];
    let value =
        |id: &str| metrics[format!("scope-collectors_{id}")]["samples"][0]["value"].as_f64();
    assert_eq!(value("iowait"), Some(20.0));
    assert_eq!(value("idle"), Some(60.0));
    assert_eq!(value("steal"), Some(10.0));
    // No PSI file in the fixture tree: no metric, and not an error (exit status 0).
    assert!(metrics["scope-collectors_io_pressure"].is_null());
}
