//! Every example plugin starts on a temporary socket and serves a valid report with its
//! own metric; `--list` and `--once` show the same.

use scope_plugin_check::{ProbeClient, judge};
use scope_plugin_tests::{RunningPlugin, built_binary};

const EXAMPLES: &[(&str, &str, &str, &str)] = &[
    (
        "example-host-metric",
        "Host",
        "metrics",
        "example-host-metric_load1",
    ),
    (
        "example-process-metric",
        "Process",
        "metrics",
        "example-process-metric_open_fds",
    ),
    (
        "example-metadata-row",
        "Host",
        "latest",
        "example-metadata-row_kernel",
    ),
];

#[test]
fn each_example_serves_a_valid_report_with_its_data() {
    for &(name, topology, field, key) in EXAMPLES {
        let binary = built_binary(name, name);
        let plugin = RunningPlugin::start(binary.to_str().expect("utf8 path"), name, &[]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let report = runtime.block_on(async {
            let mut client = ProbeClient::new(&plugin.socket);
            // Collectors sample in the background: poll until the data is there.
            for _ in 0..100 {
                let poll = client.get_report().await.expect("poll");
                let verdict = judge(&poll.body, name);
                assert_eq!(verdict.status, "ok", "{name}");
                assert!(verdict.passes(), "{name}: {:#?}", verdict.findings);
                let report: serde_json::Value = serde_json::from_slice(&poll.body).expect("json");
                let has_data = report[topology]["nodes"]
                    .as_object()
                    .is_some_and(|nodes| nodes.values().any(|node| node[field][key].is_object()));
                if has_data {
                    return report;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("{name} never reported {key}");
        });
        assert!(report[topology].is_object(), "{name}");

        let list = std::process::Command::new(&binary)
            .arg("--list")
            .output()
            .expect("runs");
        assert!(
            String::from_utf8_lossy(&list.stdout).contains(key),
            "{name} --list"
        );
        let once = std::process::Command::new(&binary)
            .arg("--once")
            .output()
            .expect("runs");
        assert!(
            once.status.success(),
            "{name} --once: {}",
            String::from_utf8_lossy(&once.stderr)
        );
        assert!(
            String::from_utf8_lossy(&once.stdout).contains(key),
            "{name} --once"
        );
    }
}

/// The process example sums its metric per container and pod (`rollup = "sum"`): over a
/// procfs tree in the layouts container runtimes make, the report has exact totals on
/// Scope's container and pod node ids, and nothing for a process on the host.
#[test]
fn the_process_example_rolls_up_onto_containers_and_pods() {
    const CONTAINER: &str = "2299a2ab6a5a1f6c5ec5a8f35ee19c9d0c4b3f1e0c3a4d7a6b5e9f8c7d6e5f51";
    const POD_CONTAINER: &str = "47cbd16b77c50cbf71401c069cd2189f0e659af17d5a2daca3bddf59d8a870b2";
    const POD: &str = "5759a1ae-36ca-48a8-b20a-b0b5c8a90fb8";
    let procfs = tempfile::tempdir().expect("tempdir");
    // (pid, open fds, cgroup file)
    let processes = [
        (
            100,
            3,
            format!("0::/system.slice/docker-{CONTAINER}.scope\n"),
        ),
        (
            101,
            4,
            format!("0::/system.slice/docker-{CONTAINER}.scope\n"),
        ),
        (
            200,
            5,
            format!(
                "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{POD_CONTAINER}.scope\n",
                POD.replace('-', "_")
            ),
        ),
        (
            300,
            6,
            String::from("0::/user.slice/user-0.slice/session-1.scope\n"),
        ),
    ];
    // One pod per kubelet layout: the cgroupfs and systemd drivers, each QoS class, the
    // three CRI runtimes, cgroup v1 and v2 lines. (pid, pod UID, container id, cgroup file)
    let container_of = |n: u32| format!("{n:064x}");
    let pod_of = |n: u32| format!("{n:08x}-1111-4222-8333-{n:012x}");
    let mut layouts = Vec::new();
    for (n, layout) in (1..).zip([
        "12:memory:/kubepods/pod{uid}/{id}\n",
        "12:memory:/kubepods/burstable/pod{uid}/{id}\n",
        "0::/kubepods/besteffort/pod{uid}/{id}\n",
        "0::/kubepods.slice/kubepods-pod{uid_}.slice/cri-containerd-{id}.scope\n",
        "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/crio-{id}.scope\n",
        "11:pids:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/docker-{id}.scope\n0::/\n",
    ]) {
        let cgroup = layout
            .replace("{uid_}", &pod_of(n).replace('-', "_"))
            .replace("{uid}", &pod_of(n))
            .replace("{id}", &container_of(n));
        layouts.push((400 + n, pod_of(n), container_of(n), cgroup));
    }
    let processes: Vec<(u32, u32, String)> = processes
        .into_iter()
        .chain(
            layouts
                .iter()
                .map(|(pid, _, _, cgroup)| (*pid, 1, cgroup.clone())),
        )
        .collect();
    for (pid, fds, cgroup) in &processes {
        let dir = procfs.path().join(pid.to_string());
        std::fs::create_dir_all(dir.join("fd")).expect("fd dir");
        for fd in 0..*fds {
            std::fs::write(dir.join("fd").join(fd.to_string()), "").expect("fd");
        }
        std::fs::write(dir.join("cgroup"), cgroup).expect("cgroup");
    }
    let name = "example-process-metric";
    let key = "example-process-metric_open_fds";
    let binary = built_binary(name, name);
    let procfs_arg = format!("--path.procfs={}", procfs.path().display());
    let plugin = RunningPlugin::start(binary.to_str().expect("utf8"), name, &[&procfs_arg]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let value = |report: &serde_json::Value, topology: &str, node: &str| {
        report[topology]["nodes"][node]["metrics"][key]["samples"][0]["value"].as_f64()
    };
    let report = runtime.block_on(async {
        let mut client = ProbeClient::new(&plugin.socket);
        for _ in 0..100 {
            let poll = client.get_report().await.expect("poll");
            let verdict = judge(&poll.body, name);
            assert!(verdict.passes(), "{:#?}", verdict.findings);
            let report: serde_json::Value = serde_json::from_slice(&poll.body).expect("json");
            if report["Pod"]["nodes"].is_object() {
                return report;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no pod node reported");
    });
    let container_node = format!("{CONTAINER};<container>");
    let pod_container_node = format!("{POD_CONTAINER};<container>");
    let pod_node = format!("{POD};<pod>");
    assert_eq!(value(&report, "Container", &container_node), Some(7.0));
    assert_eq!(value(&report, "Container", &pod_container_node), Some(5.0));
    assert_eq!(value(&report, "Pod", &pod_node), Some(5.0));
    // The process nodes stay, the host process included; it is on no container.
    let host = report["Process"]["nodes"]
        .as_object()
        .expect("process nodes")
        .keys()
        .find(|id| id.ends_with(";300"))
        .expect("the host process")
        .clone();
    assert_eq!(value(&report, "Process", &host), Some(6.0));
    for (_, pod, container, cgroup) in &layouts {
        assert_eq!(
            value(&report, "Pod", &format!("{pod};<pod>")),
            Some(1.0),
            "{cgroup}"
        );
        assert_eq!(
            value(&report, "Container", &format!("{container};<container>")),
            Some(1.0),
            "{cgroup}"
        );
    }
    assert_eq!(
        report["Container"]["nodes"].as_object().map(|n| n.len()),
        Some(2 + layouts.len())
    );
    assert_eq!(
        report["Pod"]["nodes"].as_object().map(|n| n.len()),
        Some(1 + layouts.len())
    );
    // The same template in each topology, so Scope shows the row there.
    for topology in ["Process", "Container", "Pod"] {
        assert_eq!(
            report[topology]["metric_templates"][key]["label"], "Open FDs",
            "{topology}"
        );
    }
    for (node, topology) in [(&container_node, "container"), (&pod_node, "pod")] {
        let topology_key = if topology == "pod" {
            "Pod"
        } else {
            "Container"
        };
        let field = &report[topology_key]["nodes"][node.as_str()]["topology"];
        assert!(
            field.is_null() || field == topology,
            "{node}: topology {field}"
        );
    }
}

/// The tables example over a procfs tree: each process's listening ports as a multicolumn
/// table (a row per port, a cell per column, keys `<prefix><port>___<column>`), the host's
/// listening sockets as a property list; sockets that do not listen, and processes without
/// them, have no rows. Then over the real procfs: a port this test listens on is in its row.
#[test]
fn the_tables_example_sends_rows_scope_can_render() {
    const TCP_HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
    let procfs = tempfile::tempdir().expect("tempdir");
    let net = procfs.path().join("net");
    std::fs::create_dir(&net).expect("net");
    // 127.0.0.1:8080 and 0.0.0.0:8080 listening (inodes 101, 102), 0.0.0.0:22 listening
    // (103), and an established connection (104).
    let line = |sl: u32, local: &str, remote: &str, state: &str, inode: u32| {
        format!(
            "   {sl}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
        )
    };
    let tcp = [
        TCP_HEADER.to_owned(),
        line(0, "0100007F:1F90", "00000000:0000", "0A", 101),
        line(1, "00000000:1F90", "00000000:0000", "0A", 102),
        line(2, "00000000:0016", "00000000:0000", "0A", 103),
        line(3, "0100007F:1F90", "0100007F:D431", "01", 104),
    ]
    .concat();
    std::fs::write(net.join("tcp"), tcp).expect("tcp");
    // (pid, socket inodes among its fds)
    for (pid, inodes) in [(10, vec![101, 102, 104]), (20, vec![103]), (30, vec![])] {
        let fd = procfs.path().join(format!("{pid}/fd"));
        std::fs::create_dir_all(&fd).expect("fd");
        std::os::unix::fs::symlink("/dev/null", fd.join("0")).expect("fd 0");
        for (n, inode) in inodes.into_iter().enumerate() {
            std::os::unix::fs::symlink(format!("socket:[{inode}]"), fd.join((n + 3).to_string()))
                .expect("socket fd");
        }
    }
    let name = "example-listening-ports";
    let binary = built_binary(name, name);
    let procfs_arg = format!("--path.procfs={}", procfs.path().display());
    let once = std::process::Command::new(&binary)
        .args([procfs_arg.as_str(), "--host-id=h", "--once"])
        .output()
        .expect("runs");
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    let verdict = judge(&once.stdout, name);
    assert!(verdict.passes(), "{:#?}", verdict.findings);
    let report: serde_json::Value = serde_json::from_slice(&once.stdout).expect("json");
    let latest = |topology: &str, node: &str| -> std::collections::BTreeMap<String, String> {
        report[topology]["nodes"][node]["latest"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v["value"].as_str().expect("text").to_owned()))
            .collect()
    };
    let rows = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        latest("Process", "h;10"),
        rows(&[
            (
                "example-listening-ports_ports_8080___addresses",
                "0.0.0.0, 127.0.0.1"
            ),
            ("example-listening-ports_ports_8080___sockets", "2"),
        ])
    );
    assert_eq!(
        latest("Process", "h;20"),
        rows(&[
            ("example-listening-ports_ports_22___addresses", "0.0.0.0"),
            ("example-listening-ports_ports_22___sockets", "1"),
        ])
    );
    assert!(report["Process"]["nodes"]["h;30"].is_null());
    assert_eq!(
        latest("Host", "h;<host>"),
        rows(&[("example-listening-ports_listening_IPv4", "3")])
    );
    let table = &report["Process"]["table_templates"]["example-listening-ports_ports"];
    assert_eq!(table["type"], "multicolumn-table");
    assert_eq!(table["prefix"], "example-listening-ports_ports_");
    assert_eq!(table["columns"][0]["id"], "addresses");
    assert_eq!(table["columns"][1]["dataType"], "number");
    let host_table = &report["Host"]["table_templates"]["example-listening-ports_listening"];
    assert_eq!(host_table["type"], "property-list");

    // The real procfs: this test's own listening socket.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("address").port();
    let once = std::process::Command::new(&binary)
        .args(["--host-id=h", "--once"])
        .output()
        .expect("runs");
    let report: serde_json::Value = serde_json::from_slice(&once.stdout).expect("json");
    let node = format!("h;{}", std::process::id());
    let key = format!("example-listening-ports_ports_{port}___addresses");
    assert_eq!(
        report["Process"]["nodes"][&node]["latest"][&key]["value"], "127.0.0.1",
        "{node} {key}"
    );
}
