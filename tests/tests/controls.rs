//! Controls, for real: the iowait-switch example's button clicked through `POST /control`
//! exactly as the probe sends it changes the next report and answers with a valid shortcut
//! report; bad requests change nothing; two clicks at once; Scope's own host button stays.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use scope_plugin_check::judge;
use scope_plugin_tests::{
    RunningPlugin, built_binary, json, post_control, probe_click_body, raw_request, wait_for_report,
};

const PLUGIN: &str = "example-iowait-switch";
const CONTROLS: &str = "example-iowait-switch-controls";
const HOST: &str = "test-host;<host>";
/// The host's node id as the probe's Go encoder writes it in JSON.
const HOST_ESCAPED: &str = r"test-host;\u003chost\u003e";

fn controls_socket(plugin: &RunningPlugin) -> PathBuf {
    plugin.root.join(CONTROLS).join(format!("{CONTROLS}.sock"))
}

/// `POST /control` with `body` and `content_type` (none if empty), as the probe sends it.
fn post(socket: &Path, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
    post_control(socket, content_type, body).expect("control answers")
}

/// A click on `control` of the host node, answered within the probe's 500 ms.
fn click(socket: &Path, control: &str) -> serde_json::Value {
    let (took, answer) = click_on(socket, control, HOST);
    assert!(
        took < Duration::from_millis(500),
        "the probe gives up after 500 ms"
    );
    answer
}

/// The controls plugin's report, polled as the probe polls it.
fn controls_report(socket: &Path) -> serde_json::Value {
    let (status, body) = raw_request(
        socket,
        "GET /report?api_version=1&probe_id=29b4f381044a89a3 HTTP/1.1\r\nHost: plugin\r\n\r\n",
    )
    .expect("controls report");
    assert_eq!(status, 200);
    let verdict = judge(&body, CONTROLS);
    assert!(verdict.passes(), "{:#?}", verdict.findings);
    json(&body)
}

/// The buttons the host node shows.
fn host_buttons(report: &serde_json::Value) -> String {
    report["Host"]["nodes"][HOST]["latest"]["active_controls"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until the main report's host node has `metric` and not `absent`.
fn wait_for_metric(plugin: &RunningPlugin, metric: &str, absent: &str) {
    let report = wait_for_report(&plugin.socket, |report| {
        let metrics = &report["Host"]["nodes"][HOST]["metrics"];
        metrics[format!("{PLUGIN}_{metric}")].is_object()
            && metrics[format!("{PLUGIN}_{absent}")].is_null()
    });
    // The metrics plugin stays a plain reporter: no buttons of its own to hide others.
    assert_eq!(
        report["Plugins"][0]["interfaces"],
        serde_json::json!(["reporter"])
    );
}

#[test]
fn a_click_as_the_probe_sends_it_switches_the_metric_and_answers_with_the_new_report() {
    let plugin = RunningPlugin::start(
        built_binary(PLUGIN, PLUGIN).to_str().expect("utf8"),
        PLUGIN,
        &[],
    );
    let controls = controls_socket(&plugin);
    wait_for_metric(&plugin, "iowait", "idle");

    let report = controls_report(&controls);
    // Scope's own terminal button first, then the one that fits the state.
    assert_eq!(host_buttons(&report), "host_exec;switch_to_idle");
    let node = &report["Host"]["nodes"][HOST];
    assert_eq!(
        node["latest"]["control_probe_id"]["value"],
        "29b4f381044a89a3"
    );
    assert_eq!(node["topology"], "host");
    assert_eq!(
        report["Plugins"][0]["interfaces"],
        serde_json::json!(["reporter", "controller"])
    );
    // Only the nodes with buttons: nothing else to re-stamp.
    assert_eq!(
        report["Host"]["nodes"].as_object().map(|n| n.len()),
        Some(1)
    );
    assert!(report["Process"].is_null() && report["Container"].is_null());

    let answer = click(&controls, "switch_to_idle");
    let shortcut = &answer["shortcutReport"];
    assert!(answer["error"].is_null(), "{answer}");
    let verdict = judge(&serde_json::to_vec(shortcut).expect("json"), CONTROLS);
    assert!(verdict.passes(), "{:#?}", verdict.findings);
    assert_eq!(shortcut["Plugins"][0]["status"], "ok");
    assert!(shortcut["Host"]["controls"]["switch_to_iowait"].is_object());
    assert_eq!(host_buttons(shortcut), "host_exec;switch_to_iowait");
    wait_for_metric(&plugin, "idle", "iowait");

    // And back.
    assert_eq!(
        host_buttons(&click(&controls, "switch_to_iowait")["shortcutReport"]),
        "host_exec;switch_to_idle"
    );
    wait_for_metric(&plugin, "iowait", "idle");
}

#[test]
fn bad_requests_get_a_json_error_and_change_nothing() {
    let plugin = RunningPlugin::start(
        built_binary(PLUGIN, PLUGIN).to_str().expect("utf8"),
        PLUGIN,
        &[],
    );
    let controls = controls_socket(&plugin);
    let request = |control: &str, node: &str| {
        format!(r#"{{"AppID":"a","Control":"{control}","ControlArgs":null,"NodeID":"{node}"}}"#)
    };
    let huge = format!(
        r#"{{"AppID":"{}","Control":"switch_to_idle","ControlArgs":null,"NodeID":"{HOST_ESCAPED}"}}"#,
        "a".repeat(100_000)
    );
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "application/json",
            request("no_such_control", HOST_ESCAPED).into_bytes(),
            "no control",
        ),
        (
            "application/json",
            request("switch_to_idle", "test-host;42").into_bytes(),
            "not offered",
        ),
        (
            "application/json",
            request("switch_to_idle", "other-host;\\u003chost\\u003e").into_bytes(),
            "not offered",
        ),
        // Offered only once switched: not now.
        (
            "application/json",
            request("switch_to_iowait", HOST_ESCAPED).into_bytes(),
            "not offered",
        ),
        (
            "text/plain",
            request("switch_to_idle", HOST_ESCAPED).into_bytes(),
            "JSON",
        ),
        ("application/json", b"{".to_vec(), "not a control request"),
        (
            "application/json",
            b"null".to_vec(),
            "not a control request",
        ),
        (
            "application/json",
            br#"{"Control":"switch_to_idle"}"#.to_vec(),
            "not a control request",
        ),
        (
            "application/json",
            format!(
                r#"{{"Control":"switch_to_idle","ControlArgs":[1],"NodeID":"{HOST_ESCAPED}"}}"#
            )
            .into_bytes(),
            "not a control request",
        ),
        ("application/json", huge.into_bytes(), "too large"),
    ];
    // And arbitrary bytes: a small generator, so the cases are the same on every run.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..200 {
        let len = {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 120) as usize
        };
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Mostly the bytes JSON is made of, so that some bodies get far in.
                b"{}[]\":,0123456789ControlNodeIDAppIDswitch_to_idle \\u003c"[(state % 56) as usize]
            })
            .collect();
        cases.push(("application/json", bytes, ""));
    }
    for (content_type, body, expected) in &cases {
        let (status, answer) = post(&controls, content_type, body);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
        let answer = json(&answer);
        let message = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error for {}: {answer}", String::from_utf8_lossy(body)));
        assert!(message.contains(expected), "{message}");
        assert!(answer["shortcutReport"].is_null());
    }
    // Nothing changed: the same button on offer, and IO wait still shows.
    assert_eq!(
        host_buttons(&controls_report(&controls)),
        "host_exec;switch_to_idle"
    );
    wait_for_metric(&plugin, "iowait", "idle");
    // A path or method it does not serve: a JSON error too.
    let (status, body) =
        raw_request(&controls, "GET /control HTTP/1.1\r\nHost: plugin\r\n\r\n").expect("answer");
    assert_eq!(status, 405);
    assert!(json(&body)["error"].is_string());
}

#[test]
fn two_clicks_at_once_switch_once() {
    let plugin = RunningPlugin::start(
        built_binary(PLUGIN, PLUGIN).to_str().expect("utf8"),
        PLUGIN,
        &[],
    );
    let controls = controls_socket(&plugin);
    let answers: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let clicks: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| click(&controls, "switch_to_idle")))
            .collect();
        clicks
            .into_iter()
            .map(|c| c.join().expect("click"))
            .collect()
    });
    let succeeded = answers
        .iter()
        .filter(|a| a["shortcutReport"].is_object())
        .count();
    // The second either ran after the first (nothing more to do, the button gone: an
    // error) or with it (both switched to idle): never a half-switched state.
    assert!(succeeded >= 1, "{answers:?}");
    for answer in &answers {
        assert!(
            answer["shortcutReport"].is_object() || answer["error"].is_string(),
            "{answer}"
        );
    }
    assert_eq!(
        host_buttons(&controls_report(&controls)),
        "host_exec;switch_to_iowait"
    );
    wait_for_metric(&plugin, "idle", "iowait");
}

#[test]
fn the_checker_invokes_the_control_end_to_end() {
    let plugin = RunningPlugin::start(
        built_binary(PLUGIN, PLUGIN).to_str().expect("utf8"),
        PLUGIN,
        &[],
    );
    let checker = built_binary("scope-plugin-check", "scope-plugin-check");
    // The whole plugins root, as the probe scans it: both plugins pass.
    let output = std::process::Command::new(&checker)
        .arg(&plugin.root)
        .args(["--invoke", "switch_to_idle"])
        .output()
        .expect("checker runs");
    let verdict = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{verdict}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        verdict.contains(CONTROLS) && verdict.contains(PLUGIN),
        "{verdict}"
    );
    wait_for_metric(&plugin, "idle", "iowait");
}

const MISBEHAVING: &str = "control-plugin";

/// A click on `control` of `node`, byte for byte the probe's; (time to answer, answer).
fn click_on(socket: &Path, control: &str, node: &str) -> (Duration, serde_json::Value) {
    let body = probe_click_body(control, node);
    let started = Instant::now();
    let (status, answer) = post(socket, "application/json", body.as_bytes());
    assert_eq!(status, 200);
    (started.elapsed(), json(&answer))
}

fn state(plugin: &RunningPlugin) -> String {
    let (_, body) = raw_request(
        &plugin.socket,
        "GET /report HTTP/1.1\r\nHost: plugin\r\n\r\n",
    )
    .expect("report");
    json(&body)["Host"]["nodes"][HOST]["latest"]["control-plugin_state"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn slow_panicking_failing_and_stuck_controls_never_stop_the_plugin() {
    let plugin = RunningPlugin::start(env!("CARGO_BIN_EXE_control-plugin"), MISBEHAVING, &[]);
    let controls = plugin
        .root
        .join("control-plugin-controls/control-plugin-controls.sock");
    // The report answers within the probe's limit though one `shown` never returns, and
    // that control is simply not offered; the others are.
    for _ in 0..3 {
        let started = Instant::now();
        let (status, body) = raw_request(
            &controls,
            "GET /report?api_version=1&probe_id=1 HTTP/1.1\r\nHost: plugin\r\n\r\n",
        )
        .expect("report");
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(status, 200);
        let report = json(&body);
        assert_eq!(host_buttons(&report), "host_exec;fails;panics;slow");
        let pid_node = format!("test-host;{}", plugin.pid());
        assert_eq!(
            report["Process"]["nodes"][&pid_node]["latest"]["active_controls"]["value"],
            "mark"
        );
    }

    // Longer than the probe waits: answered in time, and it finishes in the background.
    let (took, answer) = click_on(&controls, "slow", HOST);
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert!(answer["shortcutReport"].is_object(), "{answer}");
    // Meanwhile another click is told to wait, not queued.
    let (_, busy) = click_on(&controls, "fails", HOST);
    assert!(
        busy["error"]
            .as_str()
            .is_some_and(|e| e.contains("still running")),
        "{busy}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !state(&plugin).contains("slow_done=true") {
        assert!(Instant::now() < deadline, "the slow control never finished");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (_, failed) = click_on(&controls, "fails", HOST);
    assert_eq!(failed["error"], "Fails: the disk is full (deliberately)");
    let (_, panicked) = click_on(&controls, "panics", HOST);
    assert!(
        panicked["error"]
            .as_str()
            .is_some_and(|e| e.contains("panicked")),
        "{panicked}"
    );
    // A stuck control is not offered, so it cannot be clicked either.
    let (_, stuck) = click_on(&controls, "stuck", HOST);
    assert!(
        stuck["error"]
            .as_str()
            .is_some_and(|e| e.contains("not offered")),
        "{stuck}"
    );

    // A process control gets the pid of the node it was clicked on.
    let (_, marked) = click_on(&controls, "mark", &format!("test-host;{}", plugin.pid()));
    assert!(marked["shortcutReport"].is_object(), "{marked}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !state(&plugin).contains(&format!("clicked_pid={}", plugin.pid())) {
        assert!(Instant::now() < deadline, "the process control never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Still serving both plugins.
    controls_report_of(&controls);
}

fn controls_report_of(socket: &Path) {
    let (status, body) = raw_request(
        socket,
        "GET /report?api_version=1&probe_id=1 HTTP/1.1\r\nHost: plugin\r\n\r\n",
    )
    .expect("report");
    assert_eq!(status, 200);
    let verdict = judge(&body, "control-plugin-controls");
    assert!(verdict.passes(), "{:#?}", verdict.findings);
}
