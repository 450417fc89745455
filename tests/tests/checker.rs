//! The checker against a corpus of deliberately broken plugins, each breaking one rule:
//! it must report exactly that MUST rule and the probe's own status string. Our own
//! plugins must pass.

use std::path::Path;
use std::time::Duration;

use scope_plugin_check::{Level, PluginCheck, check_socket, check_socket_with};
use scope_plugin_tests::{Canned, RunningPlugin, built_binary, serve_canned};
use serde_json::{Value, json};

fn base() -> Value {
    json!({
        "Host": {
            "nodes": {"h;<host>": {"id": "h;<host>", "topology": "host",
                "latest": {"broken_disk": {"timestamp": "2024-05-01T12:00:00Z", "value": "sda"}},
                "metrics": {"broken_m": {"samples": [{"date": "2024-05-01T12:00:00Z", "value": 1.5}], "min": 0, "max": 100}}}},
            "metric_templates": {"broken_m": {"id": "broken_m", "label": "M", "priority": 3.5}},
            "metadata_templates": {"broken_disk": {"id": "broken_disk", "label": "Disk", "from": "latest", "priority": 5}}
        },
        "Plugins": [{"id": "broken", "label": "Broken", "interfaces": ["reporter"], "api_version": "1"}]
    })
}

fn with(change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut report = base();
    change(&mut report);
    serde_json::to_vec(&report).expect("json")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn check(canned: Canned) -> PluginCheck {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("broken").join("broken.sock");
    serve_canned(&socket, canned);
    runtime().block_on(check_socket(&socket, 3, Duration::ZERO))
}

fn must_rules(check: &PluginCheck) -> Vec<u8> {
    let mut rules: Vec<u8> = check
        .findings
        .iter()
        .filter(|f| f.level == Level::Must)
        .map(|f| f.rule)
        .collect();
    rules.dedup();
    rules
}

#[test]
fn the_valid_base_report_passes() {
    let result = check(Canned::report(with(|_| {})));
    assert_eq!(result.status, "ok");
    assert!(result.findings.is_empty(), "{:#?}", result.findings);
    assert_eq!(result.connections, 1, "keep-alive reused over 3 polls");
}

#[test]
fn each_broken_plugin_breaks_exactly_its_rule() {
    let cases: Vec<(&str, Canned, u8, &str)> = vec![
        (
            "two specs",
            Canned::report(with(|r| {
                r["Plugins"].as_array_mut().expect("array").push(json!({"id": "other", "label": "O", "interfaces": ["reporter"], "api_version": "1"}));
            })),
            16,
            "error: report must contain exactly one plugin (found 2)",
        ),
        (
            "no Plugins",
            Canned::report(with(|r| {
                r.as_object_mut().expect("object").remove("Plugins");
            })),
            16,
            "error: report must contain exactly one plugin (found 0)",
        ),
        (
            "wrong id",
            Canned::report(with(|r| r["Plugins"][0]["id"] = json!("other"))),
            16,
            "error: plugin must not change its id (is \"other\", should be \"broken\")",
        ),
        (
            "wrong api_version",
            Canned::report(with(|r| r["Plugins"][0]["api_version"] = json!("2"))),
            17,
            "error: incorrect API version: expected \"1\", got \"2\"",
        ),
        (
            "no label",
            Canned::report(with(|r| {
                r["Plugins"][0]
                    .as_object_mut()
                    .expect("spec")
                    .remove("label");
            })),
            17,
            "error: spec must contain a label",
        ),
        (
            "no reporter",
            Canned::report(with(|r| {
                r["Plugins"][0]["interfaces"] = json!(["Reporter"])
            })),
            17,
            "error: spec must implement the \"reporter\" interface",
        ),
        (
            "lower-case topology key",
            Canned::report(with(|r| {
                let host = r
                    .as_object_mut()
                    .expect("object")
                    .remove("Host")
                    .expect("Host");
                r["host"] = host;
            })),
            15,
            "ok",
        ),
        (
            "bad timestamp",
            Canned::report(with(|r| {
                r["Host"]["nodes"]["h;<host>"]["latest"]["broken_disk"]["timestamp"] =
                    json!("2016-07-20T15:51:05Z01:00");
            })),
            18,
            "ok",
        ),
        (
            "NaN",
            Canned::report(with(|r| {
                r["Host"]["nodes"]["h;<host>"]["metrics"]["broken_m"]["samples"][0]["value"] =
                    json!("NaN");
            })),
            24,
            "ok",
        ),
        (
            "float integer",
            Canned::report(with(|r| {
                r["Host"]["metadata_templates"]["broken_disk"]["truncate"] = json!(1.0)
            })),
            19,
            "ok",
        ),
        (
            "object latest value",
            Canned::report(with(|r| {
                r["Host"]["nodes"]["h;<host>"]["latest"]["broken_disk"]["value"] = json!({"a": 1});
            })),
            20,
            "ok",
        ),
        (
            "node id differs from key",
            Canned::report(with(|r| r["Host"]["nodes"]["h;<host>"]["id"] = json!("h"))),
            21,
            "ok",
        ),
        (
            "node topology spelled differently",
            Canned::report(with(|r| {
                r["Host"]["nodes"]["h;<host>"]["topology"] = json!("Host")
            })),
            22,
            "ok",
        ),
        (
            "template id differs from key",
            Canned::report(with(|r| {
                r["Host"]["metric_templates"]["broken_m"]["id"] = json!("m")
            })),
            25,
            "ok",
        ),
        (
            "unknown table type",
            Canned::report(with(|r| {
                r["Host"]["table_templates"] = json!({"broken_t": {"id": "broken_t", "label": "T", "prefix": "broken_t_", "type": "grid"}});
            })),
            27,
            "ok",
        ),
        (
            "multicolumn key without ___",
            Canned::report(with(|r| {
                r["Host"]["table_templates"] = json!({"broken_t": {"id": "broken_t", "label": "T", "prefix": "broken_t_",
                "type": "multicolumn-table", "columns": [{"id": "reads", "label": "Reads"}]}});
                r["Host"]["nodes"]["h;<host>"]["latest"]["broken_t_sda"] =
                    json!({"timestamp": "2024-05-01T12:00:00Z", "value": "1"});
            })),
            28,
            "ok",
        ),
        (
            "controls without control_probe_id",
            Canned::report(with(|r| {
                r["Process"] = json!({"controls": {"dump": {"id": "dump", "human": "Dump", "icon": "fa-download", "rank": 1}},
                "nodes": {"h;42": {"id": "h;42", "latest": {"active_controls": {"timestamp": "2024-05-01T12:00:00Z", "value": "dump"}}}}});
            })),
            37,
            "ok",
        ),
        (
            "status 500",
            Canned {
                status: "500 Internal Server Error",
                ..Canned::report(with(|_| {}))
            },
            9,
            "error: plugin returned non-200 status code: 500 Internal Server Error",
        ),
        (
            "status 201",
            Canned {
                status: "201 Created",
                ..Canned::report(with(|_| {}))
            },
            9,
            "error: plugin returned non-200 status code: 201 Created",
        ),
        (
            "slow",
            Canned {
                delay: Duration::from_millis(600),
                ..Canned::report(with(|_| {}))
            },
            8,
            "error: context deadline exceeded",
        ),
        (
            "not JSON",
            Canned::report(b"<html>".to_vec()),
            15,
            "error: decoding error:",
        ),
        (
            "too large",
            Canned::report({
                let mut body = with(|r| {
                    r["Host"]["nodes"]["h;<host>"]["latest"]["broken_disk"]["value"] = json!("x")
                });
                let padding = vec![b' '; 51 * 1024 * 1024];
                body.splice(0..0, padding);
                body
            }),
            10,
            "error: response must be shorter than 50MB",
        ),
    ];
    for (name, canned, rule, status) in cases {
        let result = check(canned);
        assert!(
            result.status.starts_with(status),
            "{name}: status {:?}, expected {status:?}",
            result.status
        );
        assert_eq!(
            must_rules(&result),
            vec![rule],
            "{name}: {:#?}",
            result.findings
        );
        let finding = result
            .findings
            .iter()
            .find(|f| f.rule == rule)
            .expect("finding");
        assert!(
            !finding.fix.is_empty() && !finding.path.is_empty(),
            "{name}: a finding names where and how to fix"
        );
    }
}

#[test]
fn trailing_bytes_are_a_should_finding() {
    let mut body = with(|_| {});
    body.push(b'\n');
    let result = check(Canned::report(body));
    assert_eq!(result.status, "ok");
    assert!(must_rules(&result).is_empty());
    assert!(
        result
            .findings
            .iter()
            .any(|f| f.rule == 11 && f.level == Level::Should),
        "{:#?}",
        result.findings
    );
}

#[test]
fn stale_sockets_and_bad_names_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    let result = runtime().block_on(check_socket(&stale, 1, Duration::ZERO));
    assert_eq!(must_rules(&result), vec![4]);
    assert!(
        result.status.contains("connect: connection refused")
            || result.status.contains("Connection refused"),
        "{}",
        result.status
    );
    assert!(
        result
            .status
            .starts_with("error: Get \"http://plugin/report?api_version=1&probe_id="),
        "{}",
        result.status
    );

    let badly_named = dir.path().join("c.d.sock");
    serve_canned(&badly_named, Canned::report(with(|_| {})));
    let result = runtime().block_on(check_socket(&badly_named, 1, Duration::ZERO));
    assert_eq!(must_rules(&result), vec![2]);
}

#[test]
fn control_endpoint_is_exercised_like_the_probe() {
    let controller = |control: Value| {
        let report = with(|r| {
            r["Plugins"][0]["interfaces"] = json!(["reporter", "controller"]);
            r["Process"] = json!({"controls": {"dump": {"id": "dump", "human": "Dump", "icon": "fa-download", "rank": 1}},
                "nodes": {"h;42": {"id": "h;42", "latest": {
                    "control_probe_id": {"timestamp": "2024-05-01T12:00:00Z", "value": "ab12"},
                    "active_controls": {"timestamp": "2024-05-01T12:00:00Z", "value": "dump"}}}}});
        });
        Canned {
            control: serde_json::to_vec(&control).expect("json"),
            ..Canned::report(report)
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |name: &str, canned: Canned, invoke: Option<&str>| {
        let socket = dir.path().join(name).join("broken.sock");
        serve_canned(&socket, canned);
        runtime().block_on(check_socket_with(&socket, 1, Duration::ZERO, invoke))
    };
    let good = run(
        "good",
        controller(json!({"error": "unknown control"})),
        None,
    );
    assert!(good.findings.is_empty(), "{:#?}", good.findings);

    let full_report =
        serde_json::from_slice::<Value>(&with(|r| r["Plugins"][0]["status"] = json!("ok")))
            .expect("json");
    let capital = run(
        "capital",
        controller(json!({"ShortcutReport": full_report})),
        Some("dump"),
    );
    assert_eq!(must_rules(&capital), vec![39], "{:#?}", capital.findings);
    assert!(
        capital
            .findings
            .iter()
            .any(|f| f.fix.contains("lowercase s"))
    );

    let no_plugins = run(
        "noplugins",
        controller(json!({"shortcutReport": {"Process": {}}})),
        Some("dump"),
    );
    assert_eq!(must_rules(&no_plugins), vec![39]);
    assert!(
        no_plugins
            .findings
            .iter()
            .any(|f| f.message.contains("crashes the probe"))
    );

    let not_json = run(
        "notjson",
        Canned {
            control: b"ok".to_vec(),
            ..controller(json!({}))
        },
        None,
    );
    assert_eq!(must_rules(&not_json), vec![38]);
}

#[test]
fn our_own_plugins_pass_with_no_must_finding() {
    let plugins = [
        ("collectors", "scope-collectors"),
        ("example-host-metric", "example-host-metric"),
        ("example-process-metric", "example-process-metric"),
        ("example-metadata-row", "example-metadata-row"),
    ];
    for (package, id) in plugins {
        let binary = built_binary(package, package);
        let plugin = RunningPlugin::start(binary.to_str().expect("utf8"), id, &[]);
        // Once the first round has sampled, every template has data.
        std::thread::sleep(Duration::from_millis(600));
        let result = runtime().block_on(check_socket(&plugin.socket, 5, Duration::from_millis(20)));
        assert_eq!(result.status, "ok", "{package}");
        assert!(result.passes(), "{package}: {:#?}", result.findings);
        assert_eq!(result.connections, 1, "{package}: keep-alive holds");
    }
}

fn run_check_binary(args: &[&str], root: &Path) -> std::process::Output {
    let binary = built_binary("scope-plugin-check", "scope-plugin-check");
    std::process::Command::new(binary)
        .args(args)
        .arg(root)
        .output()
        .expect("checker runs")
}

#[test]
fn the_command_line_scans_a_root_and_exits_by_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("plugins");
    serve_canned(
        &root.join("good").join("good.sock"),
        Canned::report(with(|r| r["Plugins"][0]["id"] = json!("good"))),
    );
    let output = run_check_binary(&["--json", "--polls", "2"], &root);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    // A second plugin with the same id, deeper, and one with a bad spec.
    serve_canned(
        &root.join("nested").join("deeper").join("good.sock"),
        Canned::report(with(|r| r["Plugins"][0]["id"] = json!("good"))),
    );
    serve_canned(
        &root.join("bad").join("bad.sock"),
        Canned::report(with(|r| r["Plugins"][0]["id"] = json!("bad2"))),
    );
    std::fs::write(root.join("not-a-socket.sock"), "x").expect("write");
    let output = run_check_binary(&["--json"], &root);
    assert_eq!(output.status.code(), Some(1));
    let checks: Value = serde_json::from_slice(&output.stdout).expect("json output");
    let checks = checks.as_array().expect("array");
    assert_eq!(checks.len(), 3, "sockets only, recursively: {checks:#?}");
    let ids: Vec<&str> = checks.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, ["bad", "good", "good"], "lexical order like the probe");
    assert!(
        checks[1]["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["rule"] == 3)
    );
    assert_eq!(
        checks[0]["status"],
        "error: plugin must not change its id (is \"bad2\", should be \"bad\")"
    );

    let human = run_check_binary(&[], &root);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("FAIL bad") && text.contains("rule 16") && text.contains("fix:"),
        "{text}"
    );
    assert!(!text.contains("\x1b["), "no colours when not a terminal");

    let missing = run_check_binary(&[], &dir.path().join("nope"));
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn every_plugin_has_the_check_subcommand() {
    // `<plugin> check` runs the checker installed beside the plugin binary.
    built_binary("scope-plugin-check", "scope-plugin-check");
    let plugin = RunningPlugin::start(env!("CARGO_BIN_EXE_test-plugin"), "test-plugin", &[]);
    std::thread::sleep(Duration::from_millis(500));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_test-plugin"))
        .args(["check", "--polls", "3"])
        .arg(&plugin.socket)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("PASS test-plugin") && text.contains("p99"),
        "{text}"
    );
}
