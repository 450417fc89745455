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
