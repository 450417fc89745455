//! What a hostile or broken host does to a plugin, one test per defect found: running out
//! of descriptors, a 1 ns interval, stray signals, paths that cannot work, huge error
//! texts, unknown options, requests hyper refuses, and memory kept after a burst.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scope_plugin_check::ProbeClient;
use scope_plugin_tests::{RunningPlugin, built_binary, raw_request};

const PLUGIN: &str = env!("CARGO_BIN_EXE_test-plugin");

fn collectors() -> String {
    built_binary("collectors", "collectors")
        .to_str()
        .expect("utf8")
        .to_owned()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn run(binary: &str, args: &[&str]) -> std::process::Output {
    Command::new(binary).args(args).output().expect("runs")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn with_every_descriptor_taken_report_still_answers_within_500_ms() {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path().join("plugins");
    let socket = root.join("scope-collectors").join("scope-collectors.sock");
    // 256 open files, soft and hard, as `ulimit -n 256` gives.
    let mut command = Command::new(collectors());
    command
        .arg("--plugins-root")
        .arg(&root)
        .args(["--interval", "200ms", "--host-id", "h"])
        .args(["--disable", "http_requests,http_responses,http_codes"])
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while raw_request(&socket, "GET /report HTTP/1.1\r\nHost: p\r\n\r\n").is_err() {
        assert!(Instant::now() < deadline, "never served");
        std::thread::sleep(Duration::from_millis(20));
    }
    let runtime = runtime();
    // The probe's kept-alive connection, polled throughout.
    let mut probe = ProbeClient::new(&socket);
    runtime.block_on(probe.get_report()).expect("first poll");
    // Idle connections, more than the process has descriptors for.
    let mut idle = Vec::new();
    for i in 0..300 {
        if let Ok(stream) = UnixStream::connect(&socket) {
            idle.push(stream);
        }
        if i % 50 == 0 {
            let poll = runtime
                .block_on(probe.get_report())
                .expect("probe keeps its connection");
            assert!(poll.elapsed < Duration::from_millis(500));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..20 {
        // The probe's connection, and a new one (as after a probe restart).
        for client in [&mut probe, &mut ProbeClient::new(&socket)] {
            let started = Instant::now();
            let poll = runtime
                .block_on(client.get_report())
                .expect("poll answered");
            let took = started.elapsed();
            assert!(took < Duration::from_millis(500), "poll took {took:?}");
            assert!(!poll.body.is_empty());
        }
    }
    assert_eq!(
        probe.connections_opened(),
        1,
        "the probe's connection was never closed"
    );
    // Collectors still open files: none fails.
    let (_, body) =
        raw_request(&socket, "GET /collectors HTTP/1.1\r\nHost: p\r\n\r\n").expect("stats");
    let stats: serde_json::Value = serde_json::from_slice(&body).expect("json");
    for collector in stats.as_array().expect("array") {
        assert!(collector["error"].is_null(), "{collector}");
    }
    drop(idle);
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("log");
    assert!(child.wait().expect("exits").success());
    assert!(log.contains("max_connections=64"), "{log}");
    assert!(log.contains("connection limit reached"), "{log}");
}

#[test]
fn an_interval_below_100ms_is_refused_clearly() {
    for interval in ["1ns", "99ms"] {
        let output = run(PLUGIN, &["--interval", interval, "--once"]);
        assert_eq!(output.status.code(), Some(2), "{interval}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("must be at least 100ms"), "{stderr}");
    }
    assert!(
        run(PLUGIN, &["--interval", "100ms", "--once"])
            .status
            .code()
            != Some(2)
    );
}

#[test]
fn hangup_and_quit_shut_down_cleanly_and_other_signals_are_ignored() {
    for signal in [libc::SIGHUP, libc::SIGQUIT] {
        let mut plugin = RunningPlugin::start(PLUGIN, "test-plugin", &[]);
        let status = plugin.signal_and_wait(signal);
        assert!(status.success(), "signal {signal}: {status}");
        assert!(!plugin.socket.exists(), "signal {signal} left the socket");
        assert!(!plugin.root.join("test-plugin").exists());
    }
    let mut plugin = RunningPlugin::start(PLUGIN, "test-plugin", &[]);
    let pid = plugin.pid();
    for signal in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGALRM] {
        // SAFETY: kill(2) on the plugin we started and still own.
        assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
        std::thread::sleep(Duration::from_millis(100));
        let (status, _) = raw_request(&plugin.socket, "GET /report HTTP/1.1\r\nHost: p\r\n\r\n")
            .unwrap_or_else(|e| panic!("not serving after signal {signal}: {e}"));
        assert_eq!(status, 200);
    }
    assert!(plugin.signal_and_wait(libc::SIGTERM).success());
    assert!(!plugin.socket.exists());
}

#[test]
fn paths_that_cannot_work_fail_before_anything_is_created() {
    let temp = tempfile::tempdir().expect("tempdir");
    // Too long for a unix socket: no directory of it may be left behind.
    let root = temp.path().join("a".repeat(60)).join("b".repeat(60));
    let output = run(PLUGIN, &["--plugins-root", root.to_str().expect("utf8")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unix socket paths are limited to 107"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(temp.path()).expect("list").count(),
        0,
        "directories left behind"
    );
    // A plugins root that is a file.
    let file = temp.path().join("plugins");
    std::fs::write(&file, "").expect("write");
    let output = run(PLUGIN, &["--plugins-root", file.to_str().expect("utf8")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is a file, not a directory"), "{stderr}");
    assert!(file.is_file());
}

#[test]
fn a_huge_bad_counter_is_not_copied_whole_into_logs_and_report() {
    let procfs = tempfile::tempdir().expect("tempdir");
    let huge = "9".repeat(100_000);
    std::fs::write(
        procfs.path().join("stat"),
        format!("cpu0 1 2 3 x{huge} 5 6 7 8\n"),
    )
    .expect("write");
    let output = run(
        &collectors(),
        &[
            "--once",
            "--host-id",
            "h",
            "--disable",
            "http_requests,http_responses,http_codes,io_pressure",
            "--path.procfs",
            procfs.path().to_str().expect("utf8"),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let longest = stderr.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2_000, "a log line of {longest} bytes");
    assert!(stderr.contains("more bytes)"), "{stderr}");
    assert!(
        output.stdout.len() < 20_000,
        "report of {} bytes",
        output.stdout.len()
    );
}

#[test]
fn an_option_no_collector_reads_gets_a_warning_naming_the_known_ones() {
    let stderr_with = |option: &str| {
        let output = run(
            &collectors(),
            &[
                "--once",
                "--host-id",
                "h",
                "--set",
                option,
                "--disable",
                "iowait,idle,steal,io_pressure",
            ],
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = stderr_with("http.unixx=true");
    assert!(
        stderr.contains("--set http.unixx: no collector reads this option")
            && stderr.contains("http.unix"),
        "{stderr}"
    );
    let stderr = stderr_with("http.unix=true");
    assert!(!stderr.contains("no collector reads"), "{stderr}");
}

#[test]
fn requests_hyper_refuses_get_json_errors_too() {
    let plugin = RunningPlugin::start(PLUGIN, "test-plugin", &[]);
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: p\r\n\r\n", "a".repeat(70_000));
    let huge_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(500_000));
    for (request, status) in [
        ("GARBAGE\r\n\r\n".to_owned(), 400),
        (long_target, 414),
        (huge_header, 431),
    ] {
        let answer = send_and_read(&plugin.socket, request.as_bytes());
        let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON body");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
}

/// Sends `request` (as much as the server takes) and reads until the server closes.
fn send_and_read(socket: &Path, request: &[u8]) -> String {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // The server may answer and close before taking the whole request.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn memory_goes_back_after_a_burst_of_connections() {
    let plugin = RunningPlugin::start(PLUGIN, "test-plugin", &[]);
    let before = rss_kib(plugin.pid());
    let mut open = Vec::new();
    for _ in 0..1000 {
        let mut stream = UnixStream::connect(&plugin.socket).expect("connect");
        stream
            .write_all(b"GET /report HTTP/1.1\r\nHost: p\r\n\r\n")
            .expect("write");
        open.push(stream);
    }
    for stream in &mut open {
        let _ = scope_plugin_tests::read_response(stream);
    }
    let peak = rss_kib(plugin.pid());
    drop(open);
    // The trim comes a second after the last connection closes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = rss_kib(plugin.pid());
        if now < before + 4096 || Instant::now() > deadline {
            break now;
        }
    };
    assert!(
        after < before + 4096,
        "RSS {before} KiB before, {peak} KiB at the peak, {after} KiB after"
    );
}

#[test]
fn a_collector_interval_or_timeout_below_100ms_is_refused_at_start() {
    use scope_plugin::__private::{Any, Collected, Collector, Context, Kind, Location, Topology};
    fn nothing(_: &mut (dyn Any + Send), _: &Context) -> anyhow::Result<Collected> {
        Ok(Collected::NoSample)
    }
    fn no_state() -> Box<dyn Any + Send> {
        Box::new(())
    }
    const BASE: Collector = Collector {
        topology: Topology::Host,
        id: "fast",
        label: "Fast",
        kind: Kind::Metadata {
            data_type: scope_plugin::__private::DataType::Text,
        },
        priority: None,
        interval: None,
        timeout: None,
        enabled_by_default: true,
        namespaced: true,
        rollup: scope_plugin::Rollup::None,
        description: "",
        location: Location {
            module_path: module_path!(),
            file: file!(),
            line: line!(),
        },
        new_state: no_state,
        collect: nothing,
    };
    static FAST_INTERVAL: Collector = Collector {
        interval: Some(Duration::from_millis(1)),
        ..BASE
    };
    static FAST_TIMEOUT: Collector = Collector {
        timeout: Some(Duration::from_nanos(1)),
        ..BASE
    };
    static FINE: Collector = Collector {
        interval: Some(Duration::from_millis(100)),
        timeout: Some(Duration::from_millis(100)),
        ..BASE
    };
    for collector in [&FAST_INTERVAL, &FAST_TIMEOUT] {
        let error = scope_plugin::Registry::from_collectors("p", vec![collector])
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("must be at least 100ms") && error.contains("hardening.rs"),
            "{error}"
        );
    }
    assert!(scope_plugin::Registry::from_collectors("p", vec![&FINE]).is_ok());
}
