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
