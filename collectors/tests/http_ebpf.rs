//! End to end, for real: the eBPF HTTP collector inside the plugin, against real servers,
//! read back from the plugin's /report. Needs root (or CAP_BPF + CAP_PERFMON); CI runs
//! as root. Counts are recovered from the reported rates: Σ rate × (time between samples).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scope_plugin_check::ProbeClient;
use scope_plugin_tests::http_counts::{
    Watcher, bpf_allowed, exchange, get, wait_for_http_collectors,
};
use scope_plugin_tests::{Killed, free_port};

const COLLECTORS: &str = env!("CARGO_BIN_EXE_collectors");
const SERVERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/http_servers.py");

/// The collectors plugin with only the HTTP collectors, on a temporary socket.
struct Plugin {
    _process: Killed,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Plugin {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir
            .path()
            .join("scope-collectors")
            .join("scope-collectors.sock");
        let process = Command::new(COLLECTORS)
            .arg("--plugins-root")
            .arg(dir.path())
            .args([
                "--interval",
                "300ms",
                "--host-id",
                "h",
                "--disable",
                "iowait,idle,steal,io_pressure",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("plugin starts");
        let plugin = Self {
            _process: Killed(process),
            socket,
            _dir: dir,
        };
        wait_for_http_collectors(&plugin.socket);
        plugin
    }
}

/// A server of tests/http_servers.py: killed when dropped, and then its directory (the
/// ready file; the unix mode's socket) removed.
struct Server {
    process: Killed,
    _dir: tempfile::TempDir,
}

impl Server {
    fn pid(&self) -> u32 {
        self.process.0.id()
    }
}

/// A server and its address (a port, or the unix mode's socket path).
fn start_server(mode: &str) -> (Server, String) {
    start_server_on(mode, None)
}

/// A server pinned to `cpu`, if given.
fn start_server_on(mode: &str, cpu: Option<usize>) -> (Server, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    let mut command = Command::new("python3");
    command.args([SERVERS, mode]).arg(&ready);
    if let Some(cpu) = cpu {
        command.env("HTTP_SERVER_CPU", cpu.to_string());
    }
    let child = command.spawn().expect("python3 runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "{mode} server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let address = std::fs::read_to_string(&ready).expect("ready file");
    let server = Server {
        process: Killed(child),
        _dir: dir,
    };
    (server, address)
}

/// After a warm-up request (so the process has counters), waits for a quiet interval,
/// runs `traffic`, and returns the counted (requests, 200s, 404s).
fn measure(plugin: &Plugin, pid: u32, traffic: impl FnOnce()) -> (u64, u64, u64) {
    Watcher::new(&plugin.socket, "h", pid).measure(traffic)
}

#[test]
fn each_syscall_family_counts_every_request_and_response() {
    if !bpf_allowed() {
        return;
    }
    let plugin = Plugin::start(&[]);
    for mode in ["readwrite", "recvsend", "msg", "vec"] {
        let (server, port) = start_server(mode);
        let address = format!("[::1]:{port}");
        let mut stream = TcpStream::connect(&address).expect("connect");
        let pid = server.pid();
        exchange(&mut stream, &get("/"), 1);
        let (requests, oks, not_found) = measure(&plugin, pid, || {
            for i in 0..12 {
                let path = if i % 3 == 0 { "/missing" } else { "/" };
                exchange(&mut stream, &get(path), 1);
            }
            // Five requests pipelined in one write: each is counted, and so is each of
            // the five responses the server writes back in one write.
            let pipelined: Vec<u8> = (0..5).flat_map(|_| get("/")).collect();
            exchange(&mut stream, &pipelined, 5);
        });
        assert_eq!(
            (requests, oks, not_found),
            (17, 13, 4),
            "{mode}: (requests, 200s, 404s)"
        );
        // The table on the process node: the totals since it was first seen (the warm-up
        // included), a row per status code, as Scope's multicolumn table reads them.
        let (_, body) = scope_plugin_tests::raw_request(
            &plugin.socket,
            "GET /report HTTP/1.1\r\nHost: plugin\r\n\r\n",
        )
        .expect("report");
        let report = scope_plugin_tests::json(&body);
        let latest = &report["Process"]["nodes"][format!("h;{pid}")]["latest"];
        let total = |code: u16| {
            latest[format!("scope-collectors_http_codes_{code}___total")]["value"].clone()
        };
        assert_eq!(
            (total(200), total(404)),
            ("14".into(), "4".into()),
            "{mode}: {latest}"
        );
        assert_eq!(
            report["Process"]["table_templates"]["scope-collectors_http_codes"]["type"],
            "multicolumn-table"
        );
    }
}

#[test]
fn responses_written_together_or_behind_an_interim_one_each_count() {
    if !bpf_allowed() {
        return;
    }
    let plugin = Plugin::start(&[]);
    // A response on a connection with one request unanswered has its status line read, and
    // nothing else (answered_alone in bpf/http.bpf.c). Here two requests read apart are
    // answered in one write: the second response must be found too.
    let (batch, batch_port) = start_server("batch");
    let mut stream = TcpStream::connect(format!("[::1]:{batch_port}")).expect("connect");
    exchange(&mut stream, &[get("/"), get("/")].concat(), 2);
    let counts = measure(&plugin, batch.pid(), || {
        for i in 0..5 {
            stream.write_all(&get("/")).expect("send");
            // So that the server reads the first request on its own.
            std::thread::sleep(Duration::from_millis(20));
            exchange(
                &mut stream,
                &get(if i % 2 == 0 { "/missing" } else { "/" }),
                2,
            );
        }
    });
    assert_eq!(counts, (10, 7, 3), "batch: (requests, 200s, 404s)");
    // "100 Continue" and the final response in one write, for one request: the final one
    // is behind the interim one, so the status line alone is not enough.
    let (interim, interim_port) = start_server("interim");
    let mut stream = TcpStream::connect(format!("[::1]:{interim_port}")).expect("connect");
    exchange(&mut stream, &get("/"), 1);
    let counts = measure(&plugin, interim.pid(), || {
        for i in 0..6 {
            exchange(
                &mut stream,
                &get(if i % 3 == 0 { "/missing" } else { "/" }),
                1,
            );
        }
    });
    assert_eq!(counts, (6, 4, 2), "interim: (requests, 200s, 404s)");
}

#[test]
fn a_connection_whose_first_bytes_cannot_start_a_request_is_let_go() {
    if !bpf_allowed() {
        return;
    }
    let plugin = Plugin::start(&[]);
    // A server per case: a process's 404 series is measured once (see `measure`).
    let server = |mode| {
        let (server, port) = start_server(mode);
        let address = format!("[::1]:{port}");
        let connect = move || TcpStream::connect(&address).expect("connect");
        exchange(&mut connect(), &get("/"), 1);
        (server, connect)
    };
    // A server's end whose stream starts with bytes no request line can start with (a TLS
    // record here) is let go after that read (let_go_unless_http in bpf/http.bpf.c): the
    // HTTP-looking bytes sent on it afterwards count nothing, the next connection's do.
    let (tls_server, connect) = server("held");
    let counts = measure(&plugin, tls_server.pid(), || {
        // The server takes one connection at a time: this one ends before the next.
        let mut tls = connect();
        exchange(
            &mut tls,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            1,
        );
        for _ in 0..3 {
            exchange(&mut tls, &get("/"), 1);
        }
        drop(tls);
        let mut plain = connect();
        for _ in 0..3 {
            exchange(&mut plain, &get("/missing"), 1);
        }
    });
    assert_eq!(counts, (3, 0, 3), "(requests, 200s, 404s)");
    // Starts that could be HTTP, or that do not show the stream's first bytes, are never let
    // go: each connection's later requests all count (what these starts count themselves
    // is as before the change: only a buffer's first bytes are tested).
    let starts: [(&str, &str, &[&[u8]]); 5] = [
        (
            "an empty line first",
            "held",
            &[b"\r\nGET / HTTP/1.1\r\nHost: test\r\n\r\n"],
        ),
        (
            "a PROXY protocol header first",
            "held",
            &[b"PROXY TCP6 ::1 ::1 1111 2222\r\nGET / HTTP/1.1\r\nHost: test\r\n\r\n"],
        ),
        (
            "a method we do not count",
            "held",
            &[b"PROPFIND / HTTP/1.1\r\nHost: test\r\n\r\n"],
        ),
        (
            "the first read cut short",
            "held",
            &[b"GET ", b"/missing HTTP/1.1\r\nHost: test\r\n\r\n"],
        ),
        // The first read does not hold the stream's first bytes: splice moved them.
        (
            "bytes spliced away before the first read",
            "spliced",
            &[b"SPLICED!\x00\x01\x02\x03\r\n\r\n"],
        ),
    ];
    for (start, mode, pieces) in starts {
        let (server, connect) = server(mode);
        let counts = measure(&plugin, server.pid(), || {
            let mut stream = connect();
            for piece in &pieces[..pieces.len() - 1] {
                stream.write_all(piece).expect("send");
                // So that the server reads this piece on its own.
                std::thread::sleep(Duration::from_millis(50));
            }
            exchange(&mut stream, pieces[pieces.len() - 1], 1);
            for i in 0..4 {
                exchange(&mut stream, &get(if i == 0 { "/missing" } else { "/" }), 1);
            }
        });
        let first_404 = u64::from(start == "the first read cut short");
        assert_eq!(
            counts,
            (4, 4 - first_404, 1 + first_404),
            "{start}: (requests, 200s, 404s)"
        );
    }
}

#[test]
fn processes_taking_turns_on_one_cpu_keep_exact_counts() {
    if !bpf_allowed() {
        return;
    }
    let plugin = Plugin::start(&[]);
    // Both on CPU 0: each request moves that CPU's pending counts from one process to the
    // other (switch_pending in bpf/http.bpf.c), and none may be lost or counted twice.
    let (first, first_port) = start_server_on("readwrite", Some(0));
    let (second, second_port) = start_server_on("readwrite", Some(0));
    let mut to_first = TcpStream::connect(format!("[::1]:{first_port}")).expect("connect");
    let mut to_second = TcpStream::connect(format!("[::1]:{second_port}")).expect("connect");
    exchange(&mut to_first, &get("/"), 1);
    exchange(&mut to_second, &get("/"), 1);
    let mut take_turns = || {
        for i in 0..10 {
            let path = if i % 5 == 0 { "/missing" } else { "/" };
            exchange(&mut to_first, &get(path), 1);
            exchange(&mut to_second, &get("/"), 1);
        }
    };
    let first_counts = measure(&plugin, first.pid(), &mut take_turns);
    assert_eq!(first_counts, (10, 8, 2), "first: (requests, 200s, 404s)");
    let second_counts = measure(&plugin, second.pid(), &mut take_turns);
    assert_eq!(second_counts, (10, 10, 0), "second: (requests, 200s, 404s)");
}

#[test]
fn python_http_server_http_1_0_over_ipv4() {
    if !bpf_allowed() {
        return;
    }
    let plugin = Plugin::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("index.html"), "hi").expect("write");
    let port = free_port();
    let server = Killed(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server"),
    );
    let request = |path: &str| loop {
        // http.server answers HTTP/1.0 and closes: one connection per request.
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        stream.write_all(&get(path)).expect("send");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("read");
        assert!(
            response.starts_with(b"HTTP/1.0 "),
            "{}",
            String::from_utf8_lossy(&response)
        );
        break;
    };
    request("/");
    let (requests, oks, not_found) = measure(&plugin, server.0.id(), || {
        for i in 0..10 {
            request(if i % 2 == 0 {
                "/missing"
            } else {
                "/index.html"
            });
        }
    });
    assert_eq!((requests, oks, not_found), (10, 5, 5));
}

#[test]
fn files_pipes_udp_and_unix_sockets_count_nothing() {
    if !bpf_allowed() {
        return;
    }
    let plugin = Plugin::start(&[]);
    let (noise, _) = start_server("noise");
    let pid = noise.pid();
    let mut watcher = Watcher::new(&plugin.socket, "h", pid);
    // Several rounds after the noise: the process must never get a series.
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        watcher.poll();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        watcher.samples.is_empty(),
        "noise counted: {:?}",
        watcher.samples
    );
}

#[test]
fn unix_sockets_count_only_when_asked() {
    if !bpf_allowed() {
        return;
    }
    for (flag, expected) in [(None, None), (Some("http.unix=true"), Some((3, 3, 0)))] {
        let extra: Vec<&str> = flag.map(|f| vec!["--set", f]).unwrap_or_default();
        let plugin = Plugin::start(&extra);
        let (server, path) = start_server("unix");
        let mut stream =
            std::os::unix::net::UnixStream::connect(Path::new(&path)).expect("connect");
        let pid = server.pid();
        match expected {
            None => {
                exchange(&mut stream, &get("/"), 1);
                let mut watcher = Watcher::new(&plugin.socket, "h", pid);
                let deadline = Instant::now() + Duration::from_millis(1200);
                while Instant::now() < deadline {
                    exchange(&mut stream, &get("/"), 1);
                    watcher.poll();
                    std::thread::sleep(Duration::from_millis(50));
                }
                assert!(
                    watcher.samples.is_empty(),
                    "unix socket counted without the flag"
                );
            }
            Some(counts) => {
                exchange(&mut stream, &get("/"), 1);
                let measured = measure(&plugin, pid, || {
                    for _ in 0..3 {
                        exchange(&mut stream, &get("/"), 1);
                    }
                });
                assert_eq!(measured, counts);
            }
        }
    }
}

#[test]
fn without_permission_it_says_why_once_and_the_rest_keeps_running() {
    if !bpf_allowed() {
        return; // the switch to an unprivileged user needs root too
    }
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    // A copy the unprivileged user can surely execute.
    let binary = dir.path().join("collectors");
    std::fs::copy(COLLECTORS, &binary).expect("copy");
    let socket = dir
        .path()
        .join("scope-collectors")
        .join("scope-collectors.sock");
    let child = Command::new(&binary)
        .arg("--plugins-root")
        .arg(dir.path())
        .args(["--interval", "200ms", "--host-id", "h"])
        .uid(65534)
        .gid(65534)
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts as nobody");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let deadline = Instant::now() + Duration::from_secs(20);
    let report = loop {
        assert!(
            Instant::now() < deadline,
            "no report with both the error rows and IO wait"
        );
        std::thread::sleep(Duration::from_millis(100));
        let Ok(poll) = runtime.block_on(ProbeClient::new(&socket).get_report()) else {
            continue;
        };
        let report: serde_json::Value = serde_json::from_slice(&poll.body).expect("json");
        let host = &report["Host"]["nodes"]["h;<host>"];
        if host["latest"]["scope-collectors_failing_http_requests"].is_object()
            && host["metrics"]["scope-collectors_iowait"].is_object()
        {
            break report;
        }
    };
    let why = report["Host"]["nodes"]["h;<host>"]["latest"]["scope-collectors_failing_http_requests"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        why.contains("needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN")
            && why.contains("lacks CAP_BPF and CAP_PERFMON"),
        "{why}"
    );
    assert_eq!(
        report["Host"]["metadata_templates"]["scope-collectors_failing_http_requests"]["label"],
        "HTTP requests/s failing"
    );
    // Several more rounds, then stop: the error was logged once per collector.
    std::thread::sleep(Duration::from_millis(800));
    // SAFETY: kill(2) on the child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().expect("exits");
    assert!(output.status.success());
    let log = String::from_utf8_lossy(&output.stderr);
    for collector in [
        "scope-collectors_http_requests",
        "scope-collectors_http_responses",
    ] {
        let lines = log
            .lines()
            .filter(|l| l.contains("collector failed") && l.contains(&format!("={collector} ")))
            .count();
        assert_eq!(lines, 1, "{collector} logged once:\n{log}");
    }
    assert!(!socket.exists(), "socket removed on exit");
}

/// The tracepoints the process `pid` has BPF links on, from its descriptors' fdinfo.
fn attached_tracepoints(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .expect("fdinfo")
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("tp_name:"))
                .map(|name| name.trim().to_owned())
        })
        .collect();
    names.sort();
    names
}

/// `POST /control` on the controls plugin, as the probe sends it, on the host node `h`.
fn click(plugin: &Plugin, control: &str) -> serde_json::Value {
    let socket = plugin
        .socket
        .parent()
        .and_then(std::path::Path::parent)
        .expect("plugins root")
        .join("scope-collectors-controls/scope-collectors-controls.sock");
    let body = scope_plugin_tests::probe_click_body(control, "h;<host>");
    let (status, answer) =
        scope_plugin_tests::post_control(&socket, "application/json", body.as_bytes())
            .expect("control");
    assert_eq!(status, 200);
    scope_plugin_tests::json(&answer)
}

#[test]
fn pausing_detaches_the_socket_programs_and_resuming_counts_exactly_again() {
    if !bpf_allowed() {
        return;
    }
    let plugin = Plugin::start(&[]);
    let pid = plugin._process.0.id();
    let all = [
        "inet_sock_set_state",
        "sched_process_exit",
        "sock_recv_length",
        "sock_send_length",
    ];
    assert_eq!(attached_tracepoints(pid), all);

    let answer = click(&plugin, "pause_http");
    let buttons = &answer["shortcutReport"]["Host"]["nodes"]["h;<host>"]["latest"]["active_controls"]
        ["value"];
    assert_eq!(buttons, "host_exec;resume_http", "{answer}");
    // No BPF on socket I/O while paused; the rare programs keep their state right.
    assert_eq!(attached_tracepoints(pid), all[..2]);
    // A second pause is no longer offered.
    let again = click(&plugin, "pause_http");
    assert!(
        again["error"]
            .as_str()
            .is_some_and(|e| e.contains("not offered")),
        "{again}"
    );

    let answer = click(&plugin, "resume_http");
    assert!(answer["shortcutReport"].is_object(), "{answer}");
    assert_eq!(attached_tracepoints(pid), all);
    let (server, port) = start_server("readwrite");
    let mut stream = TcpStream::connect(format!("[::1]:{port}")).expect("connect");
    exchange(&mut stream, &get("/"), 1);
    let counted = measure(&plugin, server.pid(), || {
        for i in 0..6 {
            let path = if i % 3 == 0 { "/missing" } else { "/" };
            exchange(&mut stream, &get(path), 1);
        }
    });
    assert_eq!(counted, (6, 4, 2), "(requests, 200s, 404s) after resuming");
}
