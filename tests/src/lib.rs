//! Helpers for the workspace tests: start a plugin binary on a temporary plugins root,
//! wait until it answers, and talk to it like the probe or byte by byte.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub mod docker;
pub mod http_counts;

/// Says why a test cannot run on this machine and returns, so the caller skips; under CI,
/// which must run every test for real, it fails instead.
pub fn cannot_run_here(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{why}, but CI must run this test"
    );
    println!("SKIPPED: {why}");
}

/// A child process (a test server) killed and reaped when dropped.
#[derive(Debug)]
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plugin process that is killed when dropped.
#[derive(Debug)]
pub struct RunningPlugin {
    child: Option<Child>,
    /// The plugins root (a temporary directory unless given).
    pub root: PathBuf,
    /// The socket it serves on.
    pub socket: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl RunningPlugin {
    /// Starts `binary` for plugin `id` under a fresh temporary plugins root.
    pub fn start(binary: &str, id: &str, args: &[&str]) -> Self {
        let temp = tempfile::tempdir().expect("temporary directory");
        let root = temp.path().join("plugins");
        let mut plugin = Self::start_in(binary, id, &root, args);
        plugin._temp = Some(temp);
        plugin
    }

    /// Starts `binary` for plugin `id` under `root`, waiting until `/report` answers.
    pub fn start_in(binary: &str, id: &str, root: &Path, args: &[&str]) -> Self {
        let socket = root.join(id).join(format!("{id}.sock"));
        let child = Command::new(binary)
            .arg("--plugins-root")
            .arg(root)
            .args(["--interval", "200ms", "--host-id", "test-host"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("plugin binary starts");
        let mut plugin = Self {
            child: Some(child),
            root: root.to_owned(),
            socket,
            _temp: None,
        };
        plugin.wait_until_serving();
        plugin
    }

    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, _)) =
                raw_request(&self.socket, "GET /report HTTP/1.1\r\nHost: plugin\r\n\r\n")
            {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("plugin exited early with {status}: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("plugin did not serve {} within 20 s", self.socket.display());
    }

    /// The plugin's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("still running").id()
    }

    /// Sends a signal and waits for the process to exit.
    pub fn signal_and_wait(&mut self, signal: i32) -> ExitStatus {
        let mut child = self.child.take().expect("still running");
        let pid = i32::try_from(child.id()).expect("pid fits");
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill failed");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "plugin did not exit within 15 s of signal {signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(stderr) = self.child.as_mut().and_then(|c| c.stderr.as_mut()) {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for RunningPlugin {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `request` on a new connection and reads one response: (status, body).
pub fn raw_request(socket: &Path, request: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request.as_bytes())?;
    read_response(&mut stream)
}

/// `POST /control` on `socket` as the probe sends it (its query string and headers), with
/// `body` and, unless empty, `content_type`; returns (status, body).
pub fn post_control(
    socket: &Path,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = format!(
        "POST /control?api_version=1&probe_id=29b4f381044a89a3 HTTP/1.1\r\nHost: plugin\r\n\
         User-Agent: Go-http-client/1.1\r\nContent-Length: {}\r\nAccept-Encoding: gzip\r\n",
        body.len()
    )
    .into_bytes();
    if !content_type.is_empty() {
        request.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    stream.write_all(&request)?;
    read_response(&mut stream)
}

/// The probe's body for a click on `control` of the node `node_id`, byte for byte: keys
/// sorted, `ControlArgs` null, `<` and `>` escaped as Go's encoder writes them.
pub fn probe_click_body(control: &str, node_id: &str) -> String {
    let node_id = node_id.replace('<', "\\u003c").replace('>', "\\u003e");
    format!(
        r#"{{"AppID":"4a1c7e7f3d2b","Control":"{control}","ControlArgs":null,"NodeID":"{node_id}"}}"#
    )
}

/// Reads one `Content-Length`-framed HTTP/1.1 response from `stream`.
pub fn read_response(stream: &mut impl Read) -> std::io::Result<(u16, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before headers",
            ));
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or_else(|| std::io::Error::other(format!("no content-length in {head:?}")))?;
    let mut body = buffer[header_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed mid-body",
            ));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((status, body))
}

/// Parses a report body.
pub fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("body is JSON")
}

/// Polls the plugin on `socket` until `check` holds for its report (collectors run in the
/// background), for up to 10 s; returns that report.
pub fn wait_for_report(
    socket: &Path,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) =
            raw_request(socket, "GET /report HTTP/1.1\r\nHost: plugin\r\n\r\n").expect("report");
        let report = json(&body);
        if check(&report) {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "report never satisfied the condition: {report:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Builds workspace binaries (a no-op when `cargo test --workspace` already did) and
/// returns the path of `binary`.
pub fn built_binary(package: &str, binary: &str) -> PathBuf {
    // Test executables live in <target>/<profile>/deps; binaries one level up. Build in
    // the same profile (benches run in release).
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory")
        .to_owned();
    let mut command = Command::new(env!("CARGO"));
    command
        .args(["build", "--quiet", "-p", package])
        .current_dir(workspace_root());
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        command.arg("--release");
    }
    let status = command.status().expect("cargo runs");
    assert!(status.success(), "cargo build -p {package} failed");
    profile_dir.join(binary)
}

/// What a canned plugin answers.
#[derive(Debug, Clone)]
pub struct Canned {
    /// Status line after `HTTP/1.1 `, e.g. `200 OK`.
    pub status: &'static str,
    /// `/report` body.
    pub report: Vec<u8>,
    /// `/control` body.
    pub control: Vec<u8>,
    /// Delay before answering.
    pub delay: Duration,
}

impl Canned {
    /// A 200 answer with `report` as the body.
    pub fn report(report: impl Into<Vec<u8>>) -> Self {
        Self {
            status: "200 OK",
            report: report.into(),
            control: b"{}".to_vec(),
            delay: Duration::ZERO,
        }
    }
}

/// Serves `canned` on a new socket at `path` (keep-alive, one thread per connection),
/// for as long as the test process lives.
pub fn serve_canned(path: &Path, canned: Canned) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind canned plugin");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let canned = canned.clone();
            std::thread::spawn(move || serve_connection(stream, &canned));
        }
    });
}

fn serve_connection(mut stream: UnixStream, canned: &Canned) {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            })
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < end + 4 + length {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..end + 4 + length);
        std::thread::sleep(canned.delay);
        let body = if head.starts_with("POST /control") {
            &canned.control
        } else {
            &canned.report
        };
        let response = format!(
            "HTTP/1.1 {}\r\nContent-Length: {}\r\n\r\n",
            canned.status,
            body.len()
        );
        if stream
            .write_all(response.as_bytes())
            .and_then(|()| stream.write_all(body))
            .is_err()
        {
            return;
        }
    }
}
