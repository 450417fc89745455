//! The runtime as the probe sees it: a hand-registered plugin on a unix socket.

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use scope_plugin_check::{Level, ProbeClient, judge};
use scope_plugin_tests::{RunningPlugin, json, raw_request, read_response, wait_for_report};

const PLUGIN: &str = env!("CARGO_BIN_EXE_test-plugin");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn must_findings(body: &[u8], id: &str) -> Vec<String> {
    let verdict = judge(body, id);
    assert_eq!(
        verdict.status,
        "ok",
        "probe status for {}",
        String::from_utf8_lossy(body)
    );
    verdict
        .findings
        .iter()
        .filter(|f| f.level == Level::Must)
        .map(|f| format!("{f:?}"))
        .collect()
}

#[test]
fn report_satisfies_every_must_rule_with_probe_query() {
    let plugin = RunningPlugin::start(PLUGIN, "test-plugin", &[]);
    wait_for_report(&plugin.socket, |r| r["Process"]["nodes"].is_object());
    let poll = runtime().block_on(async {
        let mut client = ProbeClient::with_probe_id(&plugin.socket, "ab12");
        client.get_report().await.expect("probe-like poll succeeds")
    });
    assert_eq!(
        must_findings(&poll.body, "test-plugin"),
        Vec::<String>::new()
    );
    assert!(poll.elapsed < Duration::from_millis(500));
    assert_ne!(poll.body.last(), Some(&b'\n'), "no trailing newline");
    let report = json(&poll.body);
    let host = &report["Host"]["nodes"]["test-host;<host>"];
    assert_eq!(host["id"], "test-host;<host>");
    assert_eq!(host["topology"], "host");
    assert_eq!(
        host["metrics"]["test-plugin_answer"]["samples"][0]["value"],
        42.0
    );
    assert_eq!(
        host["latest"]["test-plugin_motto"]["value"],
        "hello <scope>"
    );
    let process = &report["Process"]["nodes"]["test-host;1"];
    assert_eq!(
        process["metrics"]["test-plugin_per_process"]["samples"][0]["value"],
        10.0
    );
    assert_eq!(
        report["Host"]["metric_templates"]["test-plugin_answer"]["id"],
        "test-plugin_answer"
    );
    assert_eq!(report["Plugins"].as_array().map(Vec::len), Some(1));
    assert_eq!(report["Plugins"][0]["api_version"], "1");

    // Unknown query parameters are ignored, as the probe may add some.
    let (status, body) = raw_request(
        &plugin.socket,
        "GET /report?api_version=1&probe_id=ab12&future=1 HTTP/1.1\r\nHost: plugin\r\n\r\n",
    )
    .expect("report");
    assert_eq!(status, 200);
    assert_eq!(must_findings(&body, "test-plugin"), Vec::<String>::new());
}

#[test]
fn curl_like_the_issue_says() {
    let Ok(curl) = which("curl") else {
        panic!("curl is not installed; the README's setup installs it (apt-get install curl)");
    };
    let plugin = RunningPlugin::start(PLUGIN, "test-plugin", &[]);
    let output = std::process::Command::new(curl)
        .args(["-sS", "--unix-socket"])
        .arg(&plugin.socket)
        .arg("http://plugin/report?api_version=1&probe_id=ab12")
        .output()
        .expect("curl runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        must_findings(&output.stdout, "test-plugin"),
        Vec::<String>::new()
    );
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or(())
}

#[test]
fn stale_socket_is_replaced() {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path().join("plugins");
    let socket = root.join("test-plugin").join("test-plugin.sock");
    std::fs::create_dir_all(socket.parent().expect("parent")).expect("mkdir");
    drop(UnixListener::bind(&socket).expect("bind")); // leaves the file, nothing listening
    assert!(UnixStream::connect(&socket).is_err(), "socket is stale");
    let plugin = RunningPlugin::start_in(PLUGIN, "test-plugin", &root, &[]);
    let (status, _) = raw_request(
        &plugin.socket,
        "GET /report HTTP/1.1\r\nHost: plugin\r\n\r\n",
    )
    .expect("serves");
    assert_eq!(status, 200);
}

#[test]
fn live_socket_is_left_alone_and_start_fails_clearly() {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path().join("plugins");
    let socket = root.join("test-plugin").join("test-plugin.sock");
    std::fs::create_dir_all(socket.parent().expect("parent")).expect("mkdir");
    let live = UnixListener::bind(&socket).expect("bind");
    let output = std::process::Command::new(PLUGIN)
        .arg("--plugins-root")
        .arg(&root)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("another plugin instance is serving on"),
        "{stderr}"
    );
    // Still the other instance's socket, still accepting.
    assert!(UnixStream::connect(&socket).is_ok());
    drop(live);
}

#[test]
fn sigterm_removes_only_our_socket() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path().join("plugins");
        let neighbour = root.join("other").join("other.sock");
        std::fs::create_dir_all(neighbour.parent().expect("parent")).expect("mkdir");
        let _other = UnixListener::bind(&neighbour).expect("bind neighbour");
        std::fs::write(root.join("notes.txt"), "not ours").expect("write");
        let mut plugin = RunningPlugin::start_in(PLUGIN, "test-plugin", &root, &[]);
        let status = plugin.signal_and_wait(signal);
        assert!(status.success(), "clean exit on signal {signal}: {status}");
        assert!(!plugin.socket.exists(), "our socket is removed");
        assert!(
            !root.join("test-plugin").exists(),
            "our directory, created by us and empty, is removed"
        );
        assert!(
            neighbour.exists() && root.join("notes.txt").exists() && root.exists(),
            "nothing else is touched"
        );
    }
}

#[test]
fn a_directory_we_did_not_create_is_kept() {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path().join("plugins");
    let dir = root.join("test-plugin");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("config.toml"), "keep me").expect("write");
    let mut plugin = RunningPlugin::start_in(PLUGIN, "test-plugin", &root, &[]);
    assert!(plugin.signal_and_wait(libc::SIGTERM).success());
    assert!(!plugin.socket.exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("config.toml")).expect("kept"),
        "keep me"
    );
}

#[test]
fn panicking_hanging_and_failing_collectors_lose_only_their_own_values() {
    let plugin = RunningPlugin::start(PLUGIN, "test-plugin", &["--enable", "panics,hangs,fails"]);
    let report = wait_for_report(&plugin.socket, |r| {
        let latest = &r["Host"]["nodes"]["test-host;<host>"]["latest"];
        ["panics", "hangs", "fails"]
            .iter()
            .all(|id| latest[format!("test-plugin_failing_{id}")].is_object())
    });
    let host = &report["Host"]["nodes"]["test-host;<host>"];
    assert_eq!(
        host["metrics"]["test-plugin_answer"]["samples"][0]["value"],
        42.0
    );
    for id in ["panics", "hangs", "fails"] {
        assert!(
            host["metrics"][format!("test-plugin_{id}")].is_null(),
            "{id} has no metric"
        );
    }
    let failing = |id: &str| {
        host["latest"][format!("test-plugin_failing_{id}")]["value"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert!(
        failing("panics").contains("deliberate test panic"),
        "{}",
        failing("panics")
    );
    assert!(
        failing("hangs").contains("did not finish within 300ms"),
        "{}",
        failing("hangs")
    );
    assert!(
        failing("fails").contains("deliberate test error"),
        "{}",
        failing("fails")
    );
    let template = &report["Host"]["metadata_templates"]["test-plugin_failing_panics"];
    assert_eq!(template["label"], "panics failing");

    // /report keeps answering well inside 500 ms while a collector hangs.
    let slowest = runtime().block_on(async {
        let mut client = ProbeClient::new(&plugin.socket);
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let poll = client.get_report().await.expect("poll");
            assert!(must_findings(&poll.body, "test-plugin").is_empty());
            slowest = slowest.max(poll.elapsed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        slowest
    });
    assert!(
        slowest < Duration::from_millis(500),
        "slowest poll {slowest:?}"
    );

    let (status, body) = raw_request(
        &plugin.socket,
        "GET /collectors HTTP/1.1\r\nHost: plugin\r\n\r\n",
    )
    .expect("stats");
    assert_eq!(status, 200);
    let stats = json(&body);
    let find = |id: &str| {
        stats
            .as_array()
            .and_then(|a| a.iter().find(|s| s["id"] == id).cloned())
            .expect("stat")
    };
    assert!(find("test-plugin_panics")["failures"].as_u64() >= Some(1));
    assert!(find("test-plugin_answer")["successes"].as_u64() >= Some(1));
    assert_eq!(find("test-plugin_answer")["failures"], 0);
    assert_eq!(find("test-plugin_hangs")["running"], true);
}

#[test]
fn two_probes_poll_concurrently() {
    let plugin = RunningPlugin::start(PLUGIN, "test-plugin", &[]);
    runtime().block_on(async {
        let polls = ["29b4f381044a89a3", "7f"].map(|probe_id| {
            let socket = plugin.socket.clone();
            tokio::spawn(async move {
                let mut client = ProbeClient::with_probe_id(&socket, probe_id);
                for _ in 0..25 {
                    let poll = client.get_report().await.expect("poll");
                    assert!(must_findings(&poll.body, "test-plugin").is_empty());
                }
                client.connections_opened()
            })
        });
        for poll in polls {
            assert_eq!(
                poll.await.expect("task"),
                1,
                "each probe keeps its connection"
            );
        }
    });
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let plugin = RunningPlugin::start(PLUGIN, "test-plugin", &[]);
    let mut stream = UnixStream::connect(&plugin.socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    for round in 0..5 {
        stream
            .write_all(b"GET /report?api_version=1&probe_id=ab12 HTTP/1.1\r\nHost: plugin\r\n\r\n")
            .expect("write");
        let (status, body) = read_response(&mut stream).expect("response on the same connection");
        assert_eq!(status, 200, "round {round}");
        assert!(must_findings(&body, "test-plugin").is_empty());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn wrong_paths_and_methods_get_json_errors() {
    let plugin = RunningPlugin::start(PLUGIN, "test-plugin", &[]);
    let (status, body) =
        raw_request(&plugin.socket, "GET /nope HTTP/1.1\r\nHost: plugin\r\n\r\n").expect("404");
    assert_eq!(status, 404);
    assert!(
        json(&body)["error"]
            .as_str()
            .is_some_and(|e| e.contains("/nope"))
    );
    let (status, body) = raw_request(
        &plugin.socket,
        "POST /report HTTP/1.1\r\nHost: plugin\r\nContent-Length: 2\r\n\r\n{}",
    )
    .expect("405");
    assert_eq!(status, 405);
    assert!(
        json(&body)["error"]
            .as_str()
            .is_some_and(|e| e.contains("POST"))
    );
}

#[test]
fn once_prints_a_report_and_fails_when_a_collector_fails() {
    let ok = std::process::Command::new(PLUGIN)
        .args(["--once", "--host-id", "h"])
        .output()
        .expect("runs");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&ok.stdout).expect("stdout is the report");
    assert_eq!(
        report["Host"]["nodes"]["h;<host>"]["metrics"]["test-plugin_answer"]["samples"][0]["value"],
        42.0
    );

    let failed = std::process::Command::new(PLUGIN)
        .args(["--once", "--enable", "fails"])
        .output()
        .expect("runs");
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&failed.stderr)
            .contains("collector fails failed: deliberate test error")
    );
}

#[test]
fn command_line_errors_are_clear() {
    let run = |args: &[&str]| {
        std::process::Command::new(PLUGIN)
            .args(args)
            .output()
            .expect("runs")
    };
    let unknown = run(&["--once", "--enable", "nosuch"]);
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("no collector called \"nosuch\"") && stderr.contains("answer"),
        "{stderr}"
    );
    let bad_interval = run(&["--interval", "soon"]);
    assert_eq!(bad_interval.status.code(), Some(2));
    let bad_socket = run(&["--socket", "/tmp/wrong-name.sock"]);
    assert_eq!(bad_socket.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad_socket.stderr).contains("name the socket test-plugin.sock")
    );
    let list = run(&["--list"]);
    let stdout = String::from_utf8_lossy(&list.stdout);
    assert!(
        stdout.contains("test-plugin_hangs")
            && stdout.contains("off")
            && stdout.contains("test-plugin.rs"),
        "{stdout}"
    );
    let help = run(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--socket",
        "--plugins-root",
        "--host-id",
        "--interval",
        "--once",
        "--list",
        "--enable",
        "--disable",
        "--path.procfs",
        "--log-format",
        "--log-level",
        "SCOPE_PLUGIN_SOCKET",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
}

#[test]
fn env_vars_mirror_flags() {
    let output = std::process::Command::new(PLUGIN)
        .env("SCOPE_PLUGIN_ONCE", "true")
        .env("SCOPE_PLUGIN_HOST_ID", "from-env")
        .env("SCOPE_PLUGIN_DISABLE", "per_process")
        .output()
        .expect("runs");
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("report");
    assert!(report["Host"]["nodes"]["from-env;<host>"].is_object());
    assert!(report["Process"].is_null(), "per_process disabled");
}

#[test]
fn host_id_follows_scope_hostname_like_the_probe() {
    let output = std::process::Command::new(PLUGIN)
        .args(["--once"])
        .env("SCOPE_HOSTNAME", "k8s-node-7")
        .output()
        .expect("runs");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("report");
    assert!(
        report["Host"]["nodes"]["k8s-node-7;<host>"].is_object(),
        "{report:#}"
    );
}

#[test]
fn an_idle_kept_alive_connection_lasts_over_30_seconds() {
    let plugin = RunningPlugin::start(PLUGIN, "test-plugin", &[]);
    let mut stream = UnixStream::connect(&plugin.socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let request = b"GET /report?api_version=1&probe_id=ab12 HTTP/1.1\r\nHost: plugin\r\n\r\n";
    stream.write_all(request).expect("write");
    assert_eq!(read_response(&mut stream).expect("first response").0, 200);
    // Go's transport keeps idle connections forever; a shorter server idle timeout races
    // with the next poll (docs/protocol.md §2.4).
    std::thread::sleep(Duration::from_secs(31));
    stream.write_all(request).expect("write after idling");
    assert_eq!(
        read_response(&mut stream)
            .expect("same connection after 31 s idle")
            .0,
        200
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let output = std::process::Command::new(PLUGIN)
        .args(["--once", "--enable", "fails", "--log-format", "json"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).expect("each log line is JSON"))
        .collect();
    let failure = logs
        .iter()
        .find(|log| log["message"] == "collector failed")
        .unwrap_or_else(|| panic!("no JSON log of the failure in: {stderr}"));
    assert_eq!(failure["collector"], "test-plugin_fails");
    assert_eq!(failure["level"], "WARN");
}
