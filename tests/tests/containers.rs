//! Plugin images and the README's `docker run` line, for real: the image builds with no
//! registry, the container serves the probe through the mounted directory with the host's
//! node ids, the eBPF collectors count exactly for servers on the host and in other
//! containers, and `docker stop` leaves nothing behind.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scope_plugin_tests::docker::{self, Container};
use scope_plugin_tests::http_counts::{
    Watcher, bpf_allowed, exchange, get, measure_each, wait_for_http_collectors,
};
use scope_plugin_tests::{
    Killed, built_binary, cannot_run_here, free_port, json, raw_request, workspace_root,
};

const PLUGIN_ID: &str = "scope-collectors";

/// The README's background `docker run` line, as words after `docker run -d`.
fn readme_run_line() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README");
    let start = readme
        .find("docker run -d --restart=always")
        .expect("the README has a background docker run line");
    let mut command = String::new();
    for line in readme[start..].lines() {
        let (text, continues) = match line.strip_suffix('\\') {
            Some(text) => (text, true),
            None => (line, false),
        };
        command.push_str(text);
        command.push(' ');
        if !continues {
            break;
        }
    }
    let words: Vec<String> = command.split_whitespace().map(String::from).collect();
    assert_eq!(words[..3], ["docker", "run", "-d"]);
    words[3..].to_vec()
}

/// The README's line for this test: `plugins` mounted instead of the host's plugins
/// directory, `image` for the name, no fixed container name or restart policy. On an
/// engine that does not know CAP_BPF, the README's alternative, SYS_ADMIN.
fn run_like_the_readme(plugins: &Path, image: &str) -> Container {
    let mut words = readme_run_line();
    words.retain(|w| w != "--restart=always");
    let name = words.iter().position(|w| w == "--name").expect("--name");
    words.drain(name..name + 2);
    let mount = words
        .iter_mut()
        .find(|w| w.starts_with("/var/run/scope/plugins:"))
        .expect("the plugins directory is mounted");
    *mount = format!("{}:/var/run/scope/plugins", plugins.display());
    let last = words.last_mut().expect("image");
    assert_eq!(last, "scope-plugin/collectors");
    *last = image.to_owned();
    if !engine_knows_cap_bpf(image) {
        println!("this Docker engine does not know CAP_BPF: using --cap-add SYS_ADMIN");
        let bpf = words.iter().position(|w| w == "BPF").expect("BPF");
        words.splice(
            bpf - 1..bpf + 3,
            ["--cap-add", "SYS_ADMIN"].map(String::from),
        );
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    Container::run(&words)
}

fn engine_knows_cap_bpf(image: &str) -> bool {
    let output = Command::new("docker")
        .args(["create", "--cap-add", "BPF", image])
        .output()
        .expect("docker runs");
    let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !id.is_empty() {
        docker::docker(&["rm", &id]);
    }
    let refused = String::from_utf8_lossy(&output.stderr).contains("unknown capability");
    assert!(output.status.success() || refused, "{output:?}");
    !refused
}

fn collectors_image() -> String {
    docker::build_image(&["-p", "collectors"])
}

fn socket_in(plugins: &Path) -> PathBuf {
    plugins.join(PLUGIN_ID).join(format!("{PLUGIN_ID}.sock"))
}

/// Waits until the plugin in `container` answers on `socket`.
fn wait_until_serving(container: &Container, socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(
        raw_request(socket, "GET /report HTTP/1.1\r\nHost: plugin\r\n\r\n"),
        Ok((200, _))
    ) {
        assert!(
            Instant::now() < deadline,
            "the container never served {}:\n{}",
            socket.display(),
            container.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The host's name: what the probe uses as host id when SCOPE_HOSTNAME is not set.
fn host_name() -> String {
    let mut buffer = [0_u8; 256];
    // SAFETY: the buffer is valid for its whole length, which we pass.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    assert_eq!(result, 0, "gethostname");
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// Connects to 127.0.0.1:`port` once the server there accepts.
fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            return stream;
        }
        assert!(Instant::now() < deadline, "no server on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Nine requests on one connection, three of them for `/missing`, counted by the plugin
/// at `socket` for process `pid`.
fn nine_requests_counted(socket: &Path, host: &str, pid: u32, port: u16) -> (u64, u64, u64) {
    let mut stream = connect(port);
    // The warm-up gives the process its counters before the counted stretch.
    exchange(&mut stream, &get("/"), 1);
    Watcher::new(socket, host, pid).measure(|| {
        for i in 0..9 {
            let path = if i % 3 == 0 { "/missing" } else { "/" };
            exchange(&mut stream, &get(path), 1);
        }
    })
}

#[test]
fn the_readme_container_serves_the_probe_and_counts_http_exactly() {
    if !docker::available() || !bpf_allowed() {
        return;
    }
    let image = collectors_image();
    let plugins = tempfile::tempdir().expect("tempdir");
    let container = run_like_the_readme(plugins.path(), &image);
    let socket = socket_in(plugins.path());
    wait_until_serving(&container, &socket);
    wait_for_http_collectors(&socket);

    // The checker, on the host, finds the plugin as the probe would.
    let checker = Command::new(built_binary("scope-plugin-check", "scope-plugin-check"))
        .arg(plugins.path())
        .output()
        .expect("checker runs");
    let verdict = String::from_utf8_lossy(&checker.stdout);
    assert!(checker.status.success(), "{verdict}");
    assert!(verdict.contains("probe status: ok"), "{verdict}");

    // Node ids carry the host's name, as the probe's do.
    let host = host_name();
    let (_, body) =
        raw_request(&socket, "GET /report HTTP/1.1\r\nHost: plugin\r\n\r\n").expect("report");
    let report = json(&body);
    let host_node = format!("{host};<host>");
    assert!(
        report["Host"]["nodes"][&host_node]["metrics"].is_object(),
        "no metrics on {host_node}: {report}"
    );

    // A server on the host: counted at its host pid.
    let port = free_port();
    let mut server = Command::new(built_binary("scope-plugin-tests", "hello-http"))
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("hello-http starts");
    let mut ready = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("hello-http says it listens");
    let server = Killed(server);
    assert_eq!(
        nine_requests_counted(&socket, &host, server.0.id(), port),
        (9, 6, 3),
        "host server: (requests, 200s, 404s)"
    );

    // A single-process server in another container (its image FROM scratch too), on the
    // host's loopback: counted at the host pid Docker reports for it.
    let server_image = docker::build_image(&[
        "-p",
        "scope-plugin-tests",
        "--bin",
        "hello-http",
        "--image",
        "scope-plugin-test/hello-http",
    ]);
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let server = Container::run(&[
        "--net=host",
        "--read-only",
        "--cap-drop",
        "ALL",
        &server_image,
        &address,
    ]);
    assert_eq!(
        nine_requests_counted(&socket, &host, server.host_pid(), port),
        (9, 6, 3),
        "server in a container: (requests, 200s, 404s)"
    );
}

#[test]
fn docker_stop_removes_the_socket_and_nothing_else() {
    if !docker::available() {
        return;
    }
    let image = collectors_image();
    let plugins = tempfile::tempdir().expect("tempdir");
    // What others own in the plugins directory: a file and another plugin's directory.
    std::fs::write(plugins.path().join("notes.txt"), "not ours").expect("write");
    let other = plugins.path().join("other-plugin");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("other-plugin.sock"), "").expect("write");
    let container = run_like_the_readme(plugins.path(), &image);
    let socket = socket_in(plugins.path());
    wait_until_serving(&container, &socket);

    let exit_code = container.stop(10);
    assert_eq!(exit_code, 0, "clean exit on SIGTERM:\n{}", container.logs());
    assert!(!socket.exists(), "socket left behind");
    assert!(
        !plugins.path().join(PLUGIN_ID).exists(),
        "the plugin's own directory left behind"
    );
    assert!(plugins.path().join("notes.txt").exists());
    assert!(other.join("other-plugin.sock").exists());
    let logs = container.logs();
    assert!(logs.contains("removed socket"), "{logs}");
}

#[test]
fn any_plugin_package_builds_a_small_labelled_static_image() {
    if !docker::available() {
        return;
    }
    let collectors = collectors_image();
    let size = docker::image_size(&collectors);
    assert!(size < 10_000_000, "collectors image is {size} bytes");
    let labels = docker::labels(&collectors);
    assert_eq!(labels["works.weave.role"], "system");
    assert_eq!(labels["org.opencontainers.image.title"], "collectors");
    for key in ["source", "version", "revision", "description"] {
        let value = labels[format!("org.opencontainers.image.{key}")]
            .as_str()
            .unwrap_or_default();
        assert!(!value.is_empty(), "label {key} is set: {labels}");
    }
    assert!(collectors.starts_with("scope-plugin/collectors:"));
    // Nothing but the binary: one layer.
    let layers = docker::docker(&[
        "image",
        "inspect",
        "-f",
        "{{len .RootFS.Layers}}",
        &collectors,
    ]);
    assert_eq!(layers, "1");

    // Another plugin package, procfs only: no capability at all.
    let example = docker::build_image(&["-p", "example-host-metric"]);
    assert!(example.starts_with("scope-plugin/example-host-metric:"));
    let output = docker::docker(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "--read-only",
        &example,
        "--once",
        "--host-id",
        "h",
    ]);
    let report: serde_json::Value = serde_json::from_str(&output).expect("report JSON");
    assert!(
        report["Host"]["nodes"]["h;<host>"]["metrics"]["example-host-metric_load1"].is_object(),
        "{report}"
    );
}

/// Rebuilding an image under the same name removes the image the name pointed at before,
/// once no tag keeps it: repeated `make image` runs leave no untagged images behind. One
/// that a container still uses is kept.
#[test]
fn a_rebuilt_image_replaces_the_one_before_unless_a_container_uses_it() {
    if !docker::available() {
        return;
    }
    const NAME: &str = "scope-plugin-test/rebuilt";
    let exists = |image: &str| {
        Command::new("docker")
            .args(["image", "inspect", image])
            .output()
            .expect("docker runs")
            .status
            .success()
    };
    // An image only this name holds (a build of the same package would be the cached image
    // that scope-plugin/<package> holds too).
    let only_this_name = |nonce: &str| {
        let context = tempfile::tempdir().expect("tempdir");
        std::fs::write(context.path().join("nonce"), nonce).expect("write");
        std::fs::write(
            context.path().join("Dockerfile"),
            "FROM scratch\nCOPY nonce /nonce\n",
        )
        .expect("write");
        let path = context.path().to_str().expect("utf-8");
        docker::docker(&["build", "--quiet", "-t", &format!("{NAME}:latest"), path])
    };
    let rebuild = || docker::build_image(&["-p", "example-host-metric", "--image", NAME]);
    let nonce = format!("{} {:?}", std::process::id(), Instant::now());

    let replaced = only_this_name(&format!("replaced {nonce}"));
    let built = rebuild();
    assert!(
        !exists(&replaced),
        "the replaced image {replaced} is still there"
    );

    let in_use = only_this_name(&format!("in use {nonce}"));
    let container = docker::docker(&["create", &in_use, "/nonce"]);
    rebuild();
    assert!(exists(&in_use), "an image a container uses was removed");
    docker::docker(&["rm", &container]);
    docker::docker(&["image", "rm", &in_use]);
    docker::docker(&["image", "rm", &built, &format!("{NAME}:latest")]);
}

/// A static busybox in an image `FROM scratch`, running `httpd` in the foreground on the
/// address given as the container's arguments (`-p <ip:port>`). It forks a child for each
/// connection, which serves one request and exits: the process model that loses counts
/// unless exited processes' counts go to their parent.
fn busybox_httpd_image() -> Option<String> {
    let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|path| path.exists())
    else {
        cannot_run_here("no static busybox (`make test` installs busybox-static)");
        return None;
    };
    let context = tempfile::tempdir().expect("tempdir");
    std::fs::copy(busybox, context.path().join("busybox")).expect("copy busybox");
    std::fs::create_dir(context.path().join("www")).expect("www");
    std::fs::write(context.path().join("www/index.html"), "hello\n").expect("index");
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n\
         ENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-h\", \"/www\"]\n",
    )
    .expect("Dockerfile");
    let image = "scope-plugin-test/busybox-httpd";
    docker::docker(&[
        "build",
        "-q",
        "-t",
        image,
        context.path().to_str().expect("utf8"),
    ]);
    Some(image.to_owned())
}

/// `requests` GETs to 127.0.0.1:`port`, each on its own connection (busybox closes it),
/// every third for a missing file; waits for each response to end.
fn separate_requests(port: u16, requests: usize) {
    for i in 0..requests {
        let path = if i % 3 == 2 {
            "/missing"
        } else {
            "/index.html"
        };
        let mut stream = connect(port);
        std::io::Write::write_all(
            &mut stream,
            format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
        )
        .expect("request");
        let mut response = Vec::new();
        std::io::Read::read_to_end(&mut stream, &mut response).expect("response");
        let expected: &[u8] = if path == "/missing" {
            b"HTTP/1.1 404"
        } else {
            b"HTTP/1.1 200"
        };
        assert!(response.starts_with(expected), "{path}: {response:?}");
    }
}

#[test]
fn forking_servers_in_containers_count_exactly_on_their_container_and_parent() {
    if !docker::available() || !bpf_allowed() {
        return;
    }
    let Some(httpd) = busybox_httpd_image() else {
        return;
    };
    let plugins = tempfile::tempdir().expect("tempdir");
    let plugin = run_like_the_readme(plugins.path(), &collectors_image());
    let socket = socket_in(plugins.path());
    wait_until_serving(&plugin, &socket);
    wait_for_http_collectors(&socket);
    let host = host_name();

    // Two busybox servers in containers on the host's loopback, and one server on the host.
    let ports = [free_port(), free_port()];
    let servers = ports.map(|port| {
        let address = format!("127.0.0.1:{port}");
        Container::run(&[
            "--net=host",
            "--read-only",
            "--cap-drop",
            "ALL",
            &httpd,
            "-p",
            &address,
        ])
    });
    let host_port = free_port();
    let mut host_server = Command::new(built_binary("scope-plugin-tests", "hello-http"))
        .arg(format!("127.0.0.1:{host_port}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("hello-http starts");
    let mut ready = String::new();
    BufReader::new(host_server.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("hello-http says it listens");
    let host_server = Killed(host_server);

    // A warm-up request each, so that every node has its series before the counted stretch.
    for port in ports {
        separate_requests(port, 1);
    }
    let mut host_stream = connect(host_port);
    exchange(&mut host_stream, &get("/"), 1);

    // The container nodes are Scope's: `<the id docker inspect gives>;<container>`.
    let container_node = |server: &Container| {
        let id = docker::docker(&["inspect", "-f", "{{.Id}}", &server.id]);
        format!("{id};<container>")
    };
    let mut watchers = vec![
        Watcher::node(&socket, &host, "Container", container_node(&servers[0])),
        Watcher::new(&socket, &host, servers[0].host_pid()),
        Watcher::node(&socket, &host, "Container", container_node(&servers[1])),
    ];
    let counted = measure_each(&mut watchers, || {
        separate_requests(ports[0], 30);
        separate_requests(ports[1], 12);
        for _ in 0..5 {
            exchange(&mut host_stream, &get("/"), 1);
        }
    });
    assert_eq!(
        counted,
        vec![(30, 20, 10), (30, 20, 10), (12, 8, 4)],
        "(requests, 200s, 404s) on: the first container, its httpd (the parent of every \
         child that served), the second container"
    );

    // The host's server is on no container: the containers with HTTP figures are exactly
    // the two servers' (the totals above already exclude its requests).
    let (_, body) =
        raw_request(&socket, "GET /report HTTP/1.1\r\nHost: plugin\r\n\r\n").expect("report");
    let report = json(&body);
    let mut with_http: Vec<String> = report["Container"]["nodes"]
        .as_object()
        .expect("container nodes")
        .iter()
        .filter(|(_, node)| node["metrics"]["scope-collectors_http_requests"].is_object())
        .map(|(id, _)| id.clone())
        .collect();
    with_http.sort();
    let mut expected: Vec<String> = servers.iter().map(container_node).collect();
    expected.sort();
    assert_eq!(with_http, expected);
    let host_node = format!("{host};{}", host_server.0.id());
    assert!(
        report["Process"]["nodes"][&host_node]["metrics"]["scope-collectors_http_requests"]
            .is_object(),
        "the host server is still a process node"
    );
}
