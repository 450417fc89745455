//! Golden JSON: the exact bytes of every report type on the wire.

use std::time::{Duration, UNIX_EPOCH};

use scope_plugin::Timestamp;
use scope_plugin::report::{
    Column, Control, DataType, MetadataFrom, MetadataTemplate, Metric, MetricFormat,
    MetricTemplate, ModelError, PluginSpec, Report, TableTemplate, Topology,
};

fn at(secs: u64, nanos: u32) -> Timestamp {
    Timestamp::try_from(UNIX_EPOCH + Duration::new(secs, nanos)).expect("in range")
}

const T0: u64 = 1_714_564_800; // 2024-05-01T12:00:00Z

#[test]
fn minimal_report_is_the_canonical_minimal_reporter() {
    let spec = PluginSpec::new("my-plugin", "My plugin")
        .expect("valid")
        .with_description("Adds X");
    let json = String::from_utf8(Report::new(spec).to_json()).expect("utf8");
    assert_eq!(
        json,
        r#"{"Plugins":[{"id":"my-plugin","label":"My plugin","description":"Adds X","interfaces":["reporter"],"api_version":"1"}]}"#
    );
}

#[test]
fn every_type_on_the_wire() {
    let spec = PluginSpec::new("p", "P")
        .expect("valid")
        .with_controller()
        .with_status("ok");
    let mut report = Report::new(spec);
    let host = report.node_mut(Topology::Host, "h;<host>");
    host.set_latest("p_disk", "nvme0n1", at(T0, 0))
        .set_latest("p_tbl_sda___reads", "1200", at(T0, 0))
        .add_to_set("p_tags", "b")
        .add_to_set("p_tags", "a")
        .add_to_set("p_tags", "b")
        .add_parent(Topology::Host, "z")
        .add_parent(Topology::Host, "a")
        .add_adjacent("y")
        .add_adjacent("x");
    let mut metric = Metric::new(0.0, 100.0).expect("range");
    metric.push(at(T0, 500_000_000), 1.25).expect("finite");
    metric.push(at(T0 + 1, 0), 2.0).expect("later");
    host.insert_metric("p_iowait", metric);
    host.set_latest_control("p_dump", false, at(T0, 0));

    let topology = report.topology_mut(Topology::Host);
    let mut metric_template = MetricTemplate::new("p_iowait", "IO wait").expect("id");
    metric_template.format = MetricFormat::Percent;
    metric_template.priority = Some(3.5.try_into().expect("finite"));
    topology.insert_metric_template(metric_template);
    let mut metadata = MetadataTemplate::new("p_disk", "Disk").expect("id");
    metadata.priority = Some(9.5.try_into().expect("finite"));
    metadata.truncate = Some(20);
    metadata.data_type = DataType::Number;
    metadata.from = MetadataFrom::Latest;
    topology.insert_metadata_template(metadata);
    let columns = vec![Column::new("reads", "Reads", DataType::Number).expect("id")];
    topology.insert_table_template(
        TableTemplate::multicolumn("p_tbl", "Disks", "p_tbl_", columns).expect("columns"),
    );
    topology.insert_table_template(
        TableTemplate::property_list("p_props", "Props", "p_props_")
            .expect("ok")
            .fixed_row("p_disk", "Disk"),
    );
    let mut control = Control::new("p_dump", "Dump stacks", "fa-download").expect("id");
    control.rank = 1;
    control.confirmation = Some("Sure?".into());
    topology.insert_control(control);
    report
        .node_mut(Topology::DaemonSet, "u;<daemonset>")
        .set_latest("p_x", "1", at(T0, 123_456_789));
    // An empty topology is not sent.
    report.topology_mut(Topology::Pod);

    let json = String::from_utf8(report.to_json()).expect("utf8");
    let expected = concat!(
        r#"{"DaemonSet":{"nodes":{"u;<daemonset>":{"id":"u;<daemonset>","topology":"daemon_set","#,
        r#""latest":{"p_x":{"timestamp":"2024-05-01T12:00:00.123456789Z","value":"1"}}}}},"#,
        r#""Host":{"nodes":{"h;<host>":{"id":"h;<host>","topology":"host","#,
        r#""latest":{"p_disk":{"timestamp":"2024-05-01T12:00:00Z","value":"nvme0n1"},"#,
        r#""p_tbl_sda___reads":{"timestamp":"2024-05-01T12:00:00Z","value":"1200"}},"#,
        r#""sets":{"p_tags":["a","b"]},"parents":{"host":["a","z"]},"adjacency":["x","y"],"#,
        r#""metrics":{"p_iowait":{"samples":[{"date":"2024-05-01T12:00:00.5Z","value":1.25},"#,
        r#"{"date":"2024-05-01T12:00:01Z","value":2.0}],"min":0.0,"max":100.0}},"#,
        r#""latestControls":{"p_dump":{"timestamp":"2024-05-01T12:00:00Z","value":{"dead":false}}}}},"#,
        r#""controls":{"p_dump":{"id":"p_dump","human":"Dump stacks","icon":"fa-download","confirmation":"Sure?","rank":1}},"#,
        r#""metadata_templates":{"p_disk":{"id":"p_disk","label":"Disk","truncate":20,"dataType":"number","priority":9.5,"from":"latest"}},"#,
        r#""metric_templates":{"p_iowait":{"id":"p_iowait","label":"IO wait","format":"percent","priority":3.5}},"#,
        r#""table_templates":{"p_props":{"id":"p_props","label":"Props","prefix":"p_props_","type":"property-list","fixedRows":{"p_disk":"Disk"}},"#,
        r#""p_tbl":{"id":"p_tbl","label":"Disks","prefix":"p_tbl_","type":"multicolumn-table","columns":[{"id":"reads","label":"Reads","dataType":"number"}]}}},"#,
        r#""Plugins":[{"id":"p","label":"P","interfaces":["reporter","controller"],"api_version":"1","status":"ok"}]}"#,
    );
    assert_eq!(json, expected);
    let verdict = scope_plugin_check::judge(json.as_bytes(), "p");
    assert_eq!(verdict.status, "ok");
    assert!(verdict.passes(), "{:#?}", verdict.findings);
}

#[test]
fn all_23_topology_keys_are_spelled_as_scope_reads_them() {
    let keys: Vec<_> = Topology::ALL.iter().map(|t| t.report_key()).collect();
    assert_eq!(
        keys,
        [
            "Endpoint",
            "Process",
            "Container",
            "ContainerImage",
            "Pod",
            "Service",
            "Deployment",
            "ReplicaSet",
            "DaemonSet",
            "StatefulSet",
            "CronJob",
            "Job",
            "Namespace",
            "Host",
            "Overlay",
            "ECSTask",
            "ECSService",
            "SwarmService",
            "PersistentVolume",
            "PersistentVolumeClaim",
            "StorageClass",
            "VolumeSnapshot",
            "VolumeSnapshotData"
        ]
    );
    for topology in Topology::ALL {
        assert_eq!(Topology::from_name(topology.name()), Some(*topology));
    }
}

#[test]
fn invalid_values_cannot_be_built() {
    let mut metric = Metric::new(0.0, 1.0).expect("range");
    assert_eq!(
        metric
            .push(at(T0, 0), f64::NAN)
            .err()
            .map(|e| e.to_string()),
        Some(ModelError::NotFinite(f64::NAN).to_string())
    );
    assert!(matches!(
        metric.push(at(T0, 0), f64::INFINITY),
        Err(ModelError::NotFinite(_))
    ));
    metric.push(at(T0, 1), 0.5).expect("ok");
    assert!(matches!(
        metric.push(at(T0, 1), 0.5),
        Err(ModelError::SampleOrder { .. })
    ));
    assert!(matches!(
        metric.push(at(T0, 0), 0.5),
        Err(ModelError::SampleOrder { .. })
    ));
    assert!(matches!(
        Metric::new(2.0, 1.0),
        Err(ModelError::Range(message)) if message.contains("below min")
    ));
    assert!(Metric::new(f64::NAN, 1.0).is_err());
    assert!(matches!(
        PluginSpec::new("bad_id", "x"),
        Err(ModelError::Id(_))
    ));
    assert!(matches!(
        PluginSpec::new("ok", ""),
        Err(ModelError::EmptyLabel)
    ));
    assert!(matches!(
        TableTemplate::multicolumn("t", "T", "t_", vec![]),
        Err(ModelError::NoColumns(_))
    ));
    assert!(TableTemplate::property_list("t", "T", "t___").is_err());
    assert!(Control::new("a;b", "x", "fa-x").is_err());
    assert!(MetricTemplate::new("a/b", "x").is_err());
    assert_eq!(
        MetricFormat::from_name("percent"),
        Some(MetricFormat::Percent)
    );
    assert_eq!(MetricFormat::from_name("percentage"), None);
}
