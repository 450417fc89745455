//! The `/control` exchange, as the probe performs it (docs/protocol.md §5).

use serde_json::Value;

use super::client::ProbeClient;
use super::rules::active_controls;
use super::{Finding, Level};
use scope_plugin_rules::Topology;

/// The keys the probe reads from a control response (`PluginResponse`).
const RESPONSE_KEYS: &[&str] = &[
    "error",
    "value",
    "removedNode",
    "pipe",
    "raw_tty",
    "resize_tty_control",
    "shortcutReport",
];

/// For a controller plugin: sends a control request and judges the response.
pub(super) async fn check(
    client: &mut ProbeClient,
    report_body: &[u8],
    plugin_id: &str,
    invoke: Option<&str>,
    findings: &mut Vec<Finding>,
) {
    let Ok(report) = serde_json::from_slice::<Value>(report_body) else {
        return;
    };
    let is_controller = report
        .pointer("/Plugins/0/interfaces")
        .and_then(Value::as_array)
        .is_some_and(|interfaces| interfaces.iter().any(|i| i == "controller"));
    if !is_controller {
        return;
    }
    let target = first_node_with_control(&report, invoke);
    let (node_id, control) = match (invoke, target) {
        (Some(control), Some((node_id, _))) => (node_id, control.to_owned()),
        (Some(control), None) => {
            push(
                findings,
                Level::Should,
                36,
                "POST /control",
                format!("no node shows the control {control:?}; nothing was invoked"),
                "check the control id",
            );
            return;
        }
        // A control that cannot exist: a correct plugin refuses it with 200 {"error": ...}.
        (None, target) => (
            target.map(|(node, _)| node).unwrap_or_default(),
            String::from("scope-plugin-check-no-such-control"),
        ),
    };
    let poll = match client.post_control(&node_id, &control).await {
        Ok(poll) => poll,
        Err(error) => {
            push(
                findings,
                Level::Must,
                38,
                "POST /control",
                format!("error: {error}"),
                "answer /control with 200 within 500 ms, with {} or {\"error\": ...}",
            );
            return;
        }
    };
    let Ok(Value::Object(response)) = serde_json::from_slice::<Value>(&poll.body) else {
        push(
            findings,
            Level::Must,
            38,
            "POST /control",
            "the response is not a JSON object",
            "answer {}, {\"error\": ...} or {\"shortcutReport\": ...}",
        );
        return;
    };
    for key in response
        .keys()
        .filter(|k| !RESPONSE_KEYS.contains(&k.as_str()))
    {
        let (level, fix) = if key == "ShortcutReport" {
            (
                Level::Must,
                "spell it \"shortcutReport\" (lowercase s); Scope ignores the capitalised key",
            )
        } else {
            (Level::Should, "the probe ignores this key")
        };
        push(
            findings,
            level,
            39,
            &format!("POST /control.{key}"),
            format!("unknown response key {key:?}"),
            fix,
        );
    }
    if invoke.is_none() && !response.contains_key("error") {
        push(
            findings,
            Level::Should,
            38,
            "POST /control",
            format!("an unknown control {control:?} was not refused"),
            "answer {\"error\": \"unknown control ...\"} for controls the plugin does not have",
        );
    }
    if let Some(shortcut) = response.get("shortcutReport") {
        check_shortcut(shortcut, plugin_id, findings);
    }
}

fn check_shortcut(shortcut: &Value, plugin_id: &str, findings: &mut Vec<Finding>) {
    let specs = shortcut
        .get("Plugins")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let Some(spec) = specs.first() else {
        push(
            findings,
            Level::Must,
            39,
            "POST /control.shortcutReport.Plugins",
            "a shortcut report without Plugins crashes the probe (index out of range)",
            "send the full current report, with its Plugins spec",
        );
        return;
    };
    if spec.get("id").and_then(Value::as_str) != Some(plugin_id) {
        push(
            findings,
            Level::Must,
            39,
            "POST /control.shortcutReport.Plugins[0].id",
            "the shortcut's first spec is not this plugin's",
            "send this plugin's own spec",
        );
    }
    if spec.get("status").and_then(Value::as_str) != Some("ok") {
        push(
            findings,
            Level::Should,
            39,
            "POST /control.shortcutReport.Plugins[0].status",
            "the probe publishes a shortcut's spec as sent; without status \"ok\" the UI shows an error badge",
            "set \"status\": \"ok\" in the shortcut's spec",
        );
    }
    let has_controls = Topology::ALL.iter().any(|t| {
        shortcut
            .get(t.report_key())
            .and_then(|topology| topology.get("controls"))
            .is_some()
    });
    if !has_controls {
        push(
            findings,
            Level::Should,
            39,
            "POST /control.shortcutReport",
            "a shortcut report without the topology controls drops the plugin's control handlers",
            "send the full current report",
        );
    }
}

fn first_node_with_control(report: &Value, wanted: Option<&str>) -> Option<(String, String)> {
    Topology::ALL.iter().find_map(|topology| {
        let nodes = report
            .get(topology.report_key())?
            .get("nodes")?
            .as_object()?;
        nodes.iter().find_map(|(id, node)| {
            let controls = active_controls(node);
            let control = match wanted {
                Some(wanted) => controls.into_iter().find(|c| c == wanted)?,
                None => controls.into_iter().next()?,
            };
            Some((id.clone(), control))
        })
    })
}

fn push(
    findings: &mut Vec<Finding>,
    level: Level,
    rule: u8,
    path: &str,
    message: impl Into<String>,
    fix: impl Into<String>,
) {
    findings.push(Finding {
        level,
        rule,
        path: path.to_owned(),
        message: message.into(),
        fix: fix.into(),
    });
}
