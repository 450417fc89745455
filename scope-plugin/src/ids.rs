//! Identifiers exactly as Scope spells and checks them (docs/protocol.md §1 and §3.8).

use std::fmt;

use scope_plugin_rules::{KEY_RULE, PLUGIN_ID_RULE, Topology};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The plugin id breaks Scope's rule `^[A-Za-z0-9]+([-][A-Za-z0-9]+)*$`.
    #[error("invalid plugin id {0:?}: {PLUGIN_ID_RULE}")]
    Plugin(String),
    /// A metric, metadata or control id Scope would mangle or that could break the UI.
    #[error("invalid id {0:?}: {KEY_RULE}")]
    Key(String),
}

/// Checks a plugin id against Scope's `validPluginName` (`probe/plugins/registry.go`).
pub(crate) fn validate_plugin_id(id: &str) -> Result<(), IdError> {
    if scope_plugin_rules::is_plugin_id(id) {
        Ok(())
    } else {
        Err(IdError::Plugin(id.to_owned()))
    }
}

/// Checks an id used in `latest`/`metrics` keys, template ids and control ids
/// ([`scope_plugin_rules::is_key`]).
pub(crate) fn validate_key(id: &str) -> Result<(), IdError> {
    if scope_plugin_rules::is_key(id) {
        Ok(())
    } else {
        Err(IdError::Key(id.to_owned()))
    }
}

/// The host id the probe uses: `$SCOPE_HOSTNAME` if set and non-empty, else the hostname
/// (`common/hostname/hostname.go`). Plugins must use the same, or their host and process
/// nodes will not merge with the probe's.
pub(crate) fn probe_host_id() -> String {
    match std::env::var("SCOPE_HOSTNAME") {
        Ok(name) if !name.is_empty() => name,
        _ => gethostname::gethostname().to_string_lossy().into_owned(),
    }
}

/// One type per topology (`scope_plugin_rules::marker`), for [`KeyOf`]. Not public API.
#[doc(hidden)]
pub use scope_plugin_rules::marker as topology;

/// Keys that name nodes of the topology `M`: what lets `topology = "container"` with `Pid`
/// keys fail to compile instead of failing every sample.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not name nodes of this collector's topology (`{M}`)",
    label = "this collector returns keys of another topology",
    note = "key each topology's values by its own key: process `Pid`, container `ContainerId`, container_image `ContainerImageId`, pod `PodUid`, service `ServiceUid`, deployment `DeploymentUid`, replica_set `ReplicaSetUid`, daemon_set `DaemonSetUid`, stateful_set `StatefulSetUid`, cron_job `CronJobUid`, job `JobUid`, namespace `NamespaceUid`; a host collector returns a single value"
)]
pub trait KeyOf<M> {}

/// A node identity in one topology; the runtime turns it into Scope's node id.
///
/// Implemented for the typed keys below, so a per-node collector returns
/// `Vec<(Pid, f64)>` and never formats a node id by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a node key",
    label = "per-node values are keyed by a node key type, not by `{Self}`",
    note = "process: `Pid(pid)`, container: `ContainerId(id)`, pod: `PodUid(uid)`, ...; the runtime turns keys into Scope's node ids"
)]
pub trait NodeKey {
    /// The topology whose nodes this key names.
    const TOPOLOGY: Topology;
    /// Scope's node id for this key on the host `host_id`.
    fn node_id(&self, host_id: &str) -> String;

    /// Appends the node id to `out`: how the runtime makes ids, so that the common keys
    /// cost no allocation each.
    fn write_node_id(&self, host_id: &str, out: &mut String) {
        out.push_str(&self.node_id(host_id));
    }
}

/// A key read back from Scope's node id: what a control is clicked on.
pub trait FromNodeId: NodeKey + Sized {
    /// The key whose node id on host `host_id` is `node_id`, if it is one.
    fn from_node_id(node_id: &str, host_id: &str) -> Option<Self>;
}

impl FromNodeId for ThisHost {
    fn from_node_id(node_id: &str, host_id: &str) -> Option<Self> {
        (node_id.strip_suffix(";<host>")? == host_id).then_some(ThisHost)
    }
}

impl FromNodeId for Pid {
    fn from_node_id(node_id: &str, host_id: &str) -> Option<Self> {
        let (host, pid) = node_id.split_once(';')?;
        // Digits only: `parse` would also take a leading '+'.
        if host != host_id || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        pid.parse().ok().map(Pid)
    }
}

/// This host (the Host topology's only node a plugin on it reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ThisHost;

impl KeyOf<topology::Host> for ThisHost {}

impl NodeKey for ThisHost {
    const TOPOLOGY: Topology = Topology::Host;
    fn node_id(&self, host_id: &str) -> String {
        format!("{host_id};<host>")
    }
}

/// A process, by its pid in the host pid namespace (Scope's process ids are host pids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub u32);

impl KeyOf<topology::Process> for Pid {}

impl NodeKey for Pid {
    const TOPOLOGY: Topology = Topology::Process;
    fn node_id(&self, host_id: &str) -> String {
        let mut id = String::new();
        self.write_node_id(host_id, &mut id);
        id
    }

    fn write_node_id(&self, host_id: &str, out: &mut String) {
        // Made for every process every round, so without `format!`'s machinery.
        out.push_str(host_id);
        out.push(';');
        out.push_str(itoa::Buffer::new().format(self.0));
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! uid_keys {
    ($($(#[$doc:meta])* $name:ident => $topology:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub String);

        impl KeyOf<topology::$topology> for $name {}

        impl NodeKey for $name {
            const TOPOLOGY: Topology = Topology::$topology;
            fn node_id(&self, host_id: &str) -> String {
                let mut id = String::new();
                self.write_node_id(host_id, &mut id);
                id
            }

            fn write_node_id(&self, _host_id: &str, out: &mut String) {
                out.push_str(&self.0);
                out.push_str(";<");
                out.push_str(Self::TOPOLOGY.node_tag());
                out.push('>');
            }
        }
    )*};
}

uid_keys! {
    /// A container, by its full 64-hex Docker id.
    ContainerId => Container;
    /// A container image, by its image id without `sha256:`.
    ContainerImageId => ContainerImage;
    /// A Kubernetes pod, by UID.
    PodUid => Pod;
    /// A Kubernetes service, by UID.
    ServiceUid => Service;
    /// A Kubernetes deployment, by UID.
    DeploymentUid => Deployment;
    /// A Kubernetes replica set, by UID.
    ReplicaSetUid => ReplicaSet;
    /// A Kubernetes daemon set, by UID (Scope's tag is `daemonset`, not the topology name).
    DaemonSetUid => DaemonSet;
    /// A Kubernetes stateful set, by UID.
    StatefulSetUid => StatefulSet;
    /// A Kubernetes cron job, by UID.
    CronJobUid => CronJob;
    /// A Kubernetes job, by UID.
    JobUid => Job;
    /// A Kubernetes namespace, by UID.
    NamespaceUid => Namespace;
    /// A persistent volume, by UID.
    PersistentVolumeUid => PersistentVolume;
    /// A persistent volume claim, by UID.
    PersistentVolumeClaimUid => PersistentVolumeClaim;
    /// A storage class, by UID.
    StorageClassUid => StorageClass;
    /// A volume snapshot, by UID.
    VolumeSnapshotUid => VolumeSnapshot;
    /// Volume snapshot data, by UID.
    VolumeSnapshotDataUid => VolumeSnapshotData;
    /// An ECS task, by ARN.
    EcsTaskArn => EcsTask;
    /// A Swarm service, by id.
    SwarmServiceId => SwarmService;
}

/// An ECS service: Scope's id is `<cluster>;<service name>`, with no tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EcsService {
    /// The ECS cluster.
    pub cluster: String,
    /// The service name.
    pub name: String,
}

impl KeyOf<topology::EcsService> for EcsService {}

impl NodeKey for EcsService {
    const TOPOLOGY: Topology = Topology::EcsService;
    fn node_id(&self, _host_id: &str) -> String {
        format!("{};{}", self.cluster, self.name)
    }
}

/// A weave or docker overlay peer: `#<peer name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OverlayPeer(pub String);

impl KeyOf<topology::Overlay> for OverlayPeer {}

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

impl KeyOf<topology::Endpoint> for Endpoint {}

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
    fn clicked_node_ids_read_back_only_as_this_hosts() {
        assert_eq!(ThisHost::from_node_id("h;<host>", "h"), Some(ThisHost));
        assert_eq!(ThisHost::from_node_id("other;<host>", "h"), None);
        assert_eq!(ThisHost::from_node_id("h;1", "h"), None);
        assert_eq!(Pid::from_node_id("h;42", "h"), Some(Pid(42)));
        for wrong in [
            "other;42",
            "h;<host>",
            "h;+42",
            "h;",
            "h;4 2",
            "h;99999999999",
            "42",
        ] {
            assert_eq!(Pid::from_node_id(wrong, "h"), None, "{wrong}");
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
