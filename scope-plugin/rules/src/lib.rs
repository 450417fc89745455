//! Scope's rules, each defined once, for the runtime (`scope-plugin`), its proc macros
//! (`scope-plugin-macros`, which cannot depend on the runtime) and the checker: ids,
//! topology names and node-id tags, metric formats, metadata data types, intervals.
//!
//! Not public API: depend on `scope-plugin`, which re-exports what users need. The rules
//! themselves are in the repository's `docs/protocol.md`.

use std::path::Path;
use std::time::Duration;

macro_rules! topologies {
    ($($(#[$doc:meta])* $variant:ident => $key:literal, $name:literal, $tag:literal;)*) => {
        /// One of the 23 topologies a plugin may report into. Plugins cannot add topologies
        /// (Scope issue #2693).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Topology { $($(#[$doc])* $variant,)* }

        impl Topology {
            /// Every topology, in Scope's order.
            pub const ALL: &'static [Topology] = &[$(Topology::$variant,)*];

            /// The report's top-level key (`"Host"`); Scope ignores any other spelling.
            pub const fn report_key(self) -> &'static str {
                match self { $(Topology::$variant => $key,)* }
            }

            /// The lowercase name used in a node's `topology` and in `parents` (`"host"`),
            /// and in `topology = "..."` of the attributes.
            pub const fn name(self) -> &'static str {
                match self { $(Topology::$variant => $name,)* }
            }

            /// The Rust name of the variant (`"Host"`), for generated code.
            pub const fn variant_name(self) -> &'static str {
                match self { $(Topology::$variant => stringify!($variant),)* }
            }

            /// The tag in node ids keyed by a uid (`<uid>;<pod>`); Scope's own spelling,
            /// which is not always the name (`daemonset`).
            pub const fn node_tag(self) -> &'static str {
                match self { $(Topology::$variant => $tag,)* }
            }

            /// The topology called `name` (the lowercase name).
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(Topology::$variant),)* _ => None }
            }
        }

        /// One type per topology, named like its variant, so that the compiler can check
        /// that a collector's keys name nodes of the topology it declares.
        pub mod marker {
            $(
                /// The topology of the same name.
                #[derive(Debug)]
                pub struct $variant;
            )*
        }
    };
}

topologies! {
    /// Network endpoints (not rendered by the UI).
    Endpoint => "Endpoint", "endpoint", "endpoint";
    /// Processes, by host pid.
    Process => "Process", "process", "process";
    /// Containers.
    Container => "Container", "container", "container";
    /// Container images.
    ContainerImage => "ContainerImage", "container_image", "container_image";
    /// Kubernetes pods.
    Pod => "Pod", "pod", "pod";
    /// Kubernetes services.
    Service => "Service", "service", "service";
    /// Kubernetes deployments.
    Deployment => "Deployment", "deployment", "deployment";
    /// Kubernetes replica sets.
    ReplicaSet => "ReplicaSet", "replica_set", "replica_set";
    /// Kubernetes daemon sets.
    DaemonSet => "DaemonSet", "daemon_set", "daemonset";
    /// Kubernetes stateful sets.
    StatefulSet => "StatefulSet", "stateful_set", "statefulset";
    /// Kubernetes cron jobs.
    CronJob => "CronJob", "cron_job", "cronjob";
    /// Kubernetes jobs.
    Job => "Job", "job", "job";
    /// Kubernetes namespaces.
    Namespace => "Namespace", "namespace", "namespace";
    /// Hosts.
    Host => "Host", "host", "host";
    /// Weave and Docker overlay peers.
    Overlay => "Overlay", "overlay", "overlay";
    /// ECS tasks.
    EcsTask => "ECSTask", "ecs_task", "ecs_task";
    /// ECS services.
    EcsService => "ECSService", "ecs_service", "ecs_service";
    /// Swarm services.
    SwarmService => "SwarmService", "swarm_service", "swarm_service";
    /// Persistent volumes.
    PersistentVolume => "PersistentVolume", "persistent_volume", "persistent_volume";
    /// Persistent volume claims.
    PersistentVolumeClaim => "PersistentVolumeClaim", "persistent_volume_claim", "persistent_volume_claim";
    /// Storage classes.
    StorageClass => "StorageClass", "storage_class", "storage_class";
    /// Volume snapshots.
    VolumeSnapshot => "VolumeSnapshot", "volume_snapshot", "volume_snapshot";
    /// Volume snapshot data.
    VolumeSnapshotData => "VolumeSnapshotData", "volume_snapshot_data", "volume_snapshot_data";
}

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident => $attr:literal, $wire:literal;)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every value, the default first.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The name written in the attribute (`format = "percent"`).
            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $attr,)* }
            }

            /// The string Scope reads in the report (`""` for the default).
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)* }
            }

            /// The Rust name of the variant, for generated code.
            pub const fn variant_name(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant),)* }
            }

            /// The value called `name` in an attribute, or as Scope spells it.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name() == name || v.as_str() == name)
            }

            /// What the attribute accepts, for error messages.
            pub fn names() -> String {
                Self::ALL.iter().map(|v| format!("\"{}\"", v.name())).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

named_enum! {
    /// How the UI formats a metric (docs/protocol.md §3.7); any other string renders as a number.
    MetricFormat, "format" {
        /// A plain number (Scope's `""`), the default.
        #[default]
        Number => "number", "";
        /// A whole number.
        Integer => "integer", "integer";
        /// Bytes, shown as KB, MB, ...
        Filesize => "filesize", "filesize";
        /// A percentage (the value is 0 to 100, not 0 to 1).
        Percent => "percent", "percent";
    }
}

named_enum! {
    /// How the UI shows and sorts a metadata value (docs/protocol.md §3.7).
    DataType, "data_type" {
        /// Shown as is (Scope's `""`), the default.
        #[default]
        Text => "text", "";
        /// Sorted as a number.
        Number => "number", "number";
        /// Sorted as an IP address.
        Ip => "ip", "ip";
        /// An RFC 3339 time, shown relative to now.
        Datetime => "datetime", "datetime";
        /// Seconds, shown as a duration.
        Duration => "duration", "duration";
    }
}

named_enum! {
    /// How a per-process metric is also reported on the container and the pod each process
    /// belongs to: the values of their processes, reduced (`rollup = "sum"`).
    Rollup, "rollup" {
        /// Only on the processes, the default: not every metric adds up (a percentage does
        /// not).
        #[default]
        None => "none", "none";
        /// The sum: rates and counts (requests per second of a container).
        Sum => "sum", "sum";
        /// The mean over the container's processes that have a value.
        Mean => "mean", "mean";
        /// The largest value.
        Max => "max", "max";
        /// The smallest value.
        Min => "min", "min";
    }
}

/// Why a plugin id is refused, as users read it.
pub const PLUGIN_ID_RULE: &str = "Scope accepts only ASCII letters and digits in groups joined by single dashes (like \"my-plugin\"); no dots, underscores, or leading/trailing/double dashes";

/// Why a metric, metadata or control id is refused, as users read it.
pub const KEY_RULE: &str =
    "use ASCII letters, digits, '_', '-' or '.', with no \"___\" (Scope splits table keys on it)";

/// Scope's plugin id rule, `^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$` (`validPluginName` in the
/// probe's `registry.go`).
pub fn is_plugin_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .split('-')
            .all(|group| !group.is_empty() && group.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The rule for ids in `latest` and `metrics` keys, template ids and control ids.
///
/// Scope does not restrict these, but `;` breaks control lists, `/ ? # %` break the UI's
/// URLs and `___` breaks multicolumn tables (rules 28 and 35); a conservative charset keeps
/// every use safe.
pub fn is_key(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !id.contains("___")
}

/// The id the probe derives from a socket path: the file name minus its last extension.
pub fn plugin_id_from_path(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    // Go's filepath.Ext: the suffix from the last '.', even for a leading dot.
    Some(match name.rfind('.') {
        Some(dot) => name[..dot].to_owned(),
        None => name.to_owned(),
    })
}

/// A label Scope can show: an empty one is a blank row.
pub fn check_label(label: &str) -> Result<(), &'static str> {
    if label.trim().is_empty() {
        Err("the label is empty; Scope would show a blank row")
    } else {
        Ok(())
    }
}

/// A metric's range: finite, and `min` not above `max`.
pub fn check_range(min: Option<f64>, max: Option<f64>) -> Result<(), String> {
    if min.is_some_and(|v| !v.is_finite()) || max.is_some_and(|v| !v.is_finite()) {
        return Err(String::from("min and max must be finite numbers"));
    }
    match (min, max) {
        (Some(min), Some(max)) if min > max => {
            Err(format!("max {max} is below min {min}; swap them"))
        }
        _ => Ok(()),
    }
}

/// The shortest sampling interval or timeout, for `--interval` and for each collector.
/// The probe reads the report once a second, so sampling ten times as often already shows
/// nothing more; below this, a plugin only burns CPU (`--interval 1ns` took 1.1 cores).
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// An interval or timeout as users write it (`"500ms"`, `"2s"`, `"1m30s"`), at least
/// [`MIN_INTERVAL`]. The attribute and the command line take the same text.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration: {e} (write e.g. 500ms, 2s, 1m30s)"))?;
    check_interval(duration)?;
    Ok(duration)
}

/// An interval or timeout of at least [`MIN_INTERVAL`].
pub fn check_interval(duration: Duration) -> Result<(), String> {
    if duration < MIN_INTERVAL {
        return Err(format!(
            "must be at least {}: the probe reads the report once a second, so faster sampling only costs CPU",
            humantime::format_duration(MIN_INTERVAL)
        ));
    }
    Ok(())
}

#[cfg(feature = "serde")]
mod serialize {
    use serde::{Serialize, Serializer};

    use super::{DataType, MetricFormat, Topology};

    /// As the lowercase name, as in a node's `topology` and `parents`.
    impl Serialize for Topology {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(self.name())
        }
    }

    /// As Scope reads it (`""` for a plain number).
    impl Serialize for MetricFormat {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(self.as_str())
        }
    }

    /// As Scope reads it (`""` for text).
    impl Serialize for DataType {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(self.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_ids_follow_scopes_rule() {
        for good in ["a", "my-plugin", "UPPER-case", "a1-b2-c3", "noext"] {
            assert!(is_plugin_id(good), "{good}");
        }
        for bad in [
            "",
            "c.d",
            ".hidden",
            "testPlugin!",
            "test~plugin",
            "-x",
            "x-",
            "a--b",
            "a_b",
            "é",
        ] {
            assert!(!is_plugin_id(bad), "{bad}");
        }
    }

    #[test]
    fn keys_refuse_separators_scope_uses() {
        assert!(is_key("my-plugin_iowait.v2"));
        for bad in [
            "",
            "a;b",
            "a/b",
            "a b",
            "row___col",
            "a%b",
            "a?b",
            "a#b",
            "a~b",
        ] {
            assert!(!is_key(bad), "{bad}");
        }
    }

    #[test]
    fn ids_from_paths_like_the_probe() {
        let id = |p: &str| plugin_id_from_path(Path::new(p));
        assert_eq!(id("/r/a.sock").as_deref(), Some("a"));
        assert_eq!(id("/r/b.socket").as_deref(), Some("b"));
        assert_eq!(id("/r/noext").as_deref(), Some("noext"));
        assert_eq!(id("/r/c.d.sock").as_deref(), Some("c.d"));
        assert_eq!(id("/r/.hidden").as_deref(), Some(""));
    }

    #[test]
    fn topology_names_round_trip() {
        for topology in Topology::ALL {
            assert_eq!(Topology::from_name(topology.name()), Some(*topology));
        }
        assert_eq!(Topology::DaemonSet.node_tag(), "daemonset");
        assert_eq!(Topology::EcsTask.report_key(), "ECSTask");
    }

    #[test]
    fn formats_by_attribute_name_and_wire_name() {
        assert_eq!(
            MetricFormat::from_name("number"),
            Some(MetricFormat::Number)
        );
        assert_eq!(MetricFormat::from_name(""), Some(MetricFormat::Number));
        assert_eq!(MetricFormat::Percent.as_str(), "percent");
        assert_eq!(DataType::from_name("text"), Some(DataType::Text));
        assert_eq!(DataType::Text.as_str(), "");
        assert_eq!(MetricFormat::from_name("percentage"), None);
    }

    #[test]
    fn intervals_as_users_write_them() {
        assert_eq!(parse_interval("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert!(
            parse_interval("1ns")
                .unwrap_err()
                .contains("at least 100ms")
        );
        assert!(
            parse_interval("soon")
                .unwrap_err()
                .contains("not a duration")
        );
    }

    #[test]
    fn ranges_and_labels() {
        assert!(check_range(Some(0.0), Some(100.0)).is_ok());
        assert!(
            check_range(Some(5.0), Some(1.0))
                .unwrap_err()
                .contains("swap")
        );
        assert!(check_range(Some(f64::NAN), None).is_err());
        assert!(check_label(" ").is_err());
        assert!(check_label("IO wait").is_ok());
    }
}
