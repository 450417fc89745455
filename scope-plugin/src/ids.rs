//! Identifiers exactly as Scope spells and checks them (docs/protocol.md §1 and §3.8).

use std::fmt;

use crate::report::Topology;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The plugin id breaks Scope's rule `^[A-Za-z0-9]+([-][A-Za-z0-9]+)*$`.
    #[error(
        "invalid plugin id {0:?}: Scope accepts only ASCII letters and digits in groups joined by single \
         dashes (like \"my-plugin\"); no dots, underscores, or leading/trailing/double dashes"
    )]
    Plugin(String),
    /// A metric, metadata or control id Scope would mangle or that could break the UI.
    #[error(
        "invalid id {0:?}: use ASCII letters, digits, '_', '-' or '.', with no \"___\" (Scope splits table keys on it)"
    )]
    Key(String),
}

/// Checks a plugin id against Scope's `validPluginName` (`probe/plugins/registry.go`).
pub fn validate_plugin_id(id: &str) -> Result<(), IdError> {
    let valid = !id.is_empty()
        && id
            .split('-')
            .all(|group| !group.is_empty() && group.bytes().all(|b| b.is_ascii_alphanumeric()));
    if valid {
        Ok(())
    } else {
        Err(IdError::Plugin(id.to_owned()))
    }
}

/// Checks an id used in `latest`/`metrics` keys and template ids.
///
/// Scope does not restrict these, but `;` breaks control lists, `/ ? # %` break the UI's
/// URLs and `___` breaks multicolumn tables (protocol rules 28 and 35); a conservative
/// charset keeps every use safe.
pub fn validate_key(id: &str) -> Result<(), IdError> {
    let charset_ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if charset_ok && !id.contains("___") {
        Ok(())
    } else {
        Err(IdError::Key(id.to_owned()))
    }
}

/// The host id the probe uses: `$SCOPE_HOSTNAME` if set and non-empty, else the hostname
/// (`common/hostname/hostname.go`). Plugins must use the same, or their host and process
/// nodes will not merge with the probe's.
pub fn probe_host_id() -> String {
    match std::env::var("SCOPE_HOSTNAME") {
        Ok(name) if !name.is_empty() => name,
        _ => gethostname::gethostname().to_string_lossy().into_owned(),
    }
}

/// A node identity in one topology; the runtime turns it into Scope's node id.
///
/// Implemented for the typed keys below, so a per-node collector returns
/// `Vec<(Pid, f64)>` and never formats a node id by hand.
pub trait NodeKey {
    /// The topology whose nodes this key names.
    const TOPOLOGY: Topology;
    /// Scope's node id for this key on the host `host_id`.
    fn node_id(&self, host_id: &str) -> String;
}

/// This host (the Host topology's only node a plugin on it reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ThisHost;

impl NodeKey for ThisHost {
    const TOPOLOGY: Topology = Topology::Host;
    fn node_id(&self, host_id: &str) -> String {
        format!("{host_id};<host>")
    }
}

/// A process, by its pid in the host pid namespace (Scope's process ids are host pids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub u32);

impl NodeKey for Pid {
    const TOPOLOGY: Topology = Topology::Process;
    fn node_id(&self, host_id: &str) -> String {
        format!("{host_id};{}", self.0)
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! uid_keys {
    ($($(#[$doc:meta])* $name:ident => $topology:ident, $tag:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub String);

        impl NodeKey for $name {
            const TOPOLOGY: Topology = Topology::$topology;
            fn node_id(&self, _host_id: &str) -> String {
                format!(concat!("{};<", $tag, ">"), self.0)
            }
        }
    )*};
}

uid_keys! {
    /// A container, by its full 64-hex Docker id.
    ContainerId => Container, "container";
    /// A container image, by its image id without `sha256:`.
    ContainerImageId => ContainerImage, "container_image";
    /// A Kubernetes pod, by UID.
    PodUid => Pod, "pod";
    /// A Kubernetes service, by UID.
    ServiceUid => Service, "service";
    /// A Kubernetes deployment, by UID.
    DeploymentUid => Deployment, "deployment";
    /// A Kubernetes replica set, by UID.
    ReplicaSetUid => ReplicaSet, "replica_set";
    /// A Kubernetes daemon set, by UID (Scope's tag is `daemonset`, not the topology name).
    DaemonSetUid => DaemonSet, "daemonset";
    /// A Kubernetes stateful set, by UID.
    StatefulSetUid => StatefulSet, "statefulset";
    /// A Kubernetes cron job, by UID.
    CronJobUid => CronJob, "cronjob";
    /// A Kubernetes job, by UID.
    JobUid => Job, "job";
    /// A Kubernetes namespace, by UID.
    NamespaceUid => Namespace, "namespace";
    /// A persistent volume, by UID.
    PersistentVolumeUid => PersistentVolume, "persistent_volume";
    /// A persistent volume claim, by UID.
    PersistentVolumeClaimUid => PersistentVolumeClaim, "persistent_volume_claim";
    /// A storage class, by UID.
    StorageClassUid => StorageClass, "storage_class";
    /// A volume snapshot, by UID.
    VolumeSnapshotUid => VolumeSnapshot, "volume_snapshot";
    /// Volume snapshot data, by UID.
    VolumeSnapshotDataUid => VolumeSnapshotData, "volume_snapshot_data";
    /// An ECS task, by ARN.
    EcsTaskArn => EcsTask, "ecs_task";
    /// A Swarm service, by id.
    SwarmServiceId => SwarmService, "swarm_service";
}

/// An ECS service: Scope's id is `<cluster>;<service name>`, with no tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EcsService {
    /// The ECS cluster.
    pub cluster: String,
    /// The service name.
    pub name: String,
}

impl NodeKey for EcsService {
    const TOPOLOGY: Topology = Topology::EcsService;
    fn node_id(&self, _host_id: &str) -> String {
        format!("{};{}", self.cluster, self.name)
    }
}

/// A weave or docker overlay peer: `#<peer name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OverlayPeer(pub String);

impl NodeKey for OverlayPeer {
    const TOPOLOGY: Topology = Topology::Overlay;
    fn node_id(&self, _host_id: &str) -> String {
        format!("#{}", self.0)
    }
}

/// A network endpoint: `<scope>;<addr>;<port>`, scope empty for non-local addresses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// Empty, or the host id (optionally `-<netns>`) for loopback and local addresses.
    pub scope: String,
    /// The IP address.
    pub addr: std::net::IpAddr,
    /// The port.
    pub port: u16,
}

impl NodeKey for Endpoint {
    const TOPOLOGY: Topology = Topology::Endpoint;
    fn node_id(&self, _host_id: &str) -> String {
        format!("{};{};{}", self.scope, self.addr, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_ids_follow_scopes_rule() {
        for good in ["a", "my-plugin", "UPPER-case", "a1-b2-c3", "noext"] {
            assert_eq!(validate_plugin_id(good), Ok(()), "{good}");
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
            assert!(validate_plugin_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_refuse_separators_scope_uses() {
        assert_eq!(validate_key("my-plugin_iowait.v2"), Ok(()));
        for bad in ["", "a;b", "a/b", "a b", "row___col", "a%b", "a?b", "a#b"] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_ids_match_scope_conventions() {
        assert_eq!(ThisHost.node_id("node-1"), "node-1;<host>");
        assert_eq!(Pid(4321).node_id("node-1"), "node-1;4321");
        assert_eq!(
            ContainerId("2299a2".into()).node_id("h"),
            "2299a2;<container>"
        );
        assert_eq!(DaemonSetUid("u".into()).node_id("h"), "u;<daemonset>");
        assert_eq!(ReplicaSetUid("u".into()).node_id("h"), "u;<replica_set>");
        assert_eq!(OverlayPeer("peer".into()).node_id("h"), "#peer");
        let endpoint = Endpoint {
            scope: String::new(),
            addr: [10, 0, 2, 15].into(),
            port: 22,
        };
        assert_eq!(endpoint.node_id("h"), ";10.0.2.15;22");
        let ecs = EcsService {
            cluster: "c".into(),
            name: "s".into(),
        };
        assert_eq!(ecs.node_id("h"), "c;s");
    }
}
