//! # scope-plugin: Weave Scope probe plugins as annotated functions
//!
//! A Scope plugin is an HTTP server on a unix socket under `/var/run/scope/plugins` that
//! answers `GET /report` with a JSON report the probe merges into what the UI shows. This
//! crate writes that server, the report, the socket handling and the command line; you
//! write one function per metric.
//!
//! ```no_run
//! use scope_plugin::prelude::*;
//!
//! /// Seconds since boot, from /proc/uptime.
//! #[scope_metric(topology = "host", id = "uptime", label = "Uptime", min = 0.0, priority = 5.0)]
//! fn uptime(ctx: &Context) -> anyhow::Result<f64> {
//!     let text = std::fs::read_to_string(ctx.procfs_path("uptime"))?;
//!     let seconds = text.split_whitespace().next().unwrap_or("0");
//!     Ok(seconds.parse()?)
//! }
//!
//! scope_plugin::main!(id = "uptime-plugin", label = "Uptime");
//! ```
//!
//! # The API
//!
//! - **Writing collectors:** [`scope_metric`] and [`scope_metadata`] (every key is
//!   documented there), [`main!`](main) for `fn main`, [`Context`] for a collector's
//!   inputs, the node keys ([`ThisHost`], [`Pid`], [`ContainerId`], [`PodUid`], ... one per
//!   topology, all in [`prelude`]), and the traits that say what a collector may return
//!   ([`MetricValue`], [`MetadataValue`], [`HostOutput`], [`NodesOutput`], [`SeriesKey`]).
//! - **Running:** [`Plugin`], which `main!` calls, for plugins that add collectors by hand.
//! - **Collectors by hand**, without the attributes: [`Collector`] with a [`CollectFn`]
//!   returning [`Collected`] [`Points`] (made from [`Point`]s of [`Value`]s, read back as
//!   [`PointRef`]s of [`ValueRef`]s), in a [`Topology`], shown with a
//!   [`MetricFormat`] or [`DataType`], registered with [`register_collector!`] or
//!   [`Plugin::collector`]; [`Registry`] checks them as the plugin does at start.
//! - **The report model**, [`report`]: typed so that a value Scope would choke on cannot
//!   be built, with [`Timestamp`]s that are always valid RFC 3339.
//!
//! The command line every plugin gets is in `--help` and the README; the protocol the
//! plugin speaks, with the rules `scope-plugin-check` applies, in `docs/protocol.md`.

mod cgroup;
mod cli;
mod collector;
mod controls;
mod error_bodies;
mod ids;
mod plugin;
pub mod report;
mod runner;
mod sampler;
mod server;
mod snapshot;
mod socket;
mod timestamp;

pub use cgroup::{Membership, membership, membership_of_path};
pub use collector::{
    CollectFn, Collected, Collector, Context, HostOutput, Kind, Location, MetadataValue,
    MetricValue, NodesOutput, Point, PointRef, Points, Registry, RegistryError, Rows, SeriesKey,
    TableColumn, TableOutput, Value, ValueRef,
};
pub use controls::Control;
pub use ids::{
    ContainerId, ContainerImageId, CronJobUid, DaemonSetUid, DeploymentUid, EcsService, EcsTaskArn,
    Endpoint, FromNodeId, JobUid, NamespaceUid, NodeKey, OverlayPeer, PersistentVolumeClaimUid,
    PersistentVolumeUid, Pid, PodUid, ReplicaSetUid, ServiceUid, StatefulSetUid, StorageClassUid,
    SwarmServiceId, ThisHost, VolumeSnapshotDataUid, VolumeSnapshotUid,
};
pub use plugin::Plugin;
pub use scope_plugin_rules::{DataType, MIN_INTERVAL, MetricFormat, Rollup, Topology};
pub use timestamp::{Timestamp, TimestampRangeError};

#[doc(inline)]
pub use scope_plugin_macros::{main, scope_control, scope_metadata, scope_metric, scope_table};

/// What a plugin file needs: `use scope_plugin::prelude::*;` brings the attributes,
/// [`Context`] and every node key.
pub mod prelude {
    pub use crate::ids::{
        ContainerId, ContainerImageId, CronJobUid, DaemonSetUid, DeploymentUid, EcsService,
        EcsTaskArn, Endpoint, JobUid, NamespaceUid, NodeKey, OverlayPeer, PersistentVolumeClaimUid,
        PersistentVolumeUid, Pid, PodUid, ReplicaSetUid, ServiceUid, StatefulSetUid,
        StorageClassUid, SwarmServiceId, ThisHost, VolumeSnapshotDataUid, VolumeSnapshotUid,
    };
    pub use crate::{Context, scope_control, scope_metadata, scope_metric, scope_table};
}

/// Not public API. Used by generated code, and by this project's own benchmarks.
#[doc(hidden)]
pub mod __private {
    pub use crate::collector::Location as ControlLocation;
    pub use crate::collector::{
        CollectFn, Collected, Collector, Context, HostOutput, Kind, Location, MetadataKind,
        MetricKind, NodesOutput, TableColumn, TableOutput,
    };
    pub use crate::controls::Control;
    pub use crate::ids::{FromNodeId, KeyOf, NodeKey, Pid, ThisHost, topology};

    /// The node ids of the nodes `shown` names: a host control's `bool` (this host's node
    /// or none), or a per-node control's keys.
    pub fn shown_nodes<K: NodeKey, S: Shown<K>>(
        shown: S,
        context: &Context,
    ) -> anyhow::Result<Vec<String>> {
        Ok(shown
            .into_keys()?
            .iter()
            .map(|key| key.node_id(context.host_id()))
            .collect())
    }

    /// What a control's `shown` function may return.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot say which nodes show this control",
        label = "a host control's `shown` returns bool; a process control's returns Vec<Pid> (or a Result of either)"
    )]
    pub trait Shown<K> {
        /// The keys of the nodes that show the control.
        fn into_keys(self) -> anyhow::Result<Vec<K>>;
    }

    impl Shown<ThisHost> for bool {
        fn into_keys(self) -> anyhow::Result<Vec<ThisHost>> {
            Ok(if self { vec![ThisHost] } else { Vec::new() })
        }
    }

    impl<K: NodeKey> Shown<K> for Vec<K> {
        fn into_keys(self) -> anyhow::Result<Vec<K>> {
            Ok(self)
        }
    }

    impl<K, S: Shown<K>, E: Into<anyhow::Error>> Shown<K> for Result<S, E> {
        fn into_keys(self) -> anyhow::Result<Vec<K>> {
            self.map_err(Into::into)?.into_keys()
        }
    }

    /// The key a control was clicked on, from the probe's node id.
    pub fn clicked_key<K: FromNodeId>(node_id: &str, context: &Context) -> anyhow::Result<K> {
        K::from_node_id(node_id, context.host_id()).ok_or_else(|| {
            anyhow::anyhow!(
                "{node_id:?} is not a {} node of this host",
                K::TOPOLOGY.name()
            )
        })
    }

    /// What a control function may return: `()` or a `Result` of it.
    pub trait ControlOutcome {
        /// Ok, or the message Scope shows.
        fn into_result(self) -> anyhow::Result<()>;
    }

    impl ControlOutcome for () {
        fn into_result(self) -> anyhow::Result<()> {
            Ok(())
        }
    }

    impl<E: Into<anyhow::Error>> ControlOutcome for Result<(), E> {
        fn into_result(self) -> anyhow::Result<()> {
            self.map_err(Into::into)
        }
    }
    pub use crate::plugin::Plugin;
    pub use crate::report::{DataType, MetricFormat, Topology};
    pub use crate::sampler::{Sampler, SamplerConfig, run_all_once};
    pub use anyhow;
    pub use inventory;
    pub use scope_plugin_rules::Rollup;
    pub use std::any::Any;
    pub use std::boxed::Box;
    pub use std::time::Duration;

    /// Makes a collector's state: `S::default()`, boxed.
    pub fn new_state<S: Default + Send + 'static>() -> Box<dyn Any + Send> {
        Box::new(S::default())
    }

    /// The state of type `S` in `state`; the registry pairs each collector with its own
    /// `new_state::<S>`, so the type always matches.
    pub fn state_mut<S: 'static>(state: &mut (dyn Any + Send)) -> &mut S {
        match state.downcast_mut::<S>() {
            Some(state) => state,
            None => unreachable!("collector state type mismatch"),
        }
    }

    /// Converts a host collector's return value.
    pub fn host_output<K, T: HostOutput<K>>(
        output: T,
        context: &Context,
    ) -> anyhow::Result<Collected> {
        output.into_collected(context)
    }

    /// Converts a property list's rows (one text cell each); `M` as for [`nodes_output`].
    pub fn property_list_output<M, T, V>(
        output: T,
        context: &Context,
        topology: Topology,
    ) -> anyhow::Result<Collected>
    where
        T: TableOutput<V>,
        T::Node: KeyOf<M>,
        V: crate::collector::MetadataValue,
    {
        table_output(output, context, topology, &[], |cell: V| {
            vec![cell.into_text()]
        })
    }

    /// Converts a multicolumn table's rows: `N`, the number of `columns`, is the length
    /// the rows' arrays must have, so a row with a cell too many or too few does not compile.
    pub fn multicolumn_output<M, T, V, const N: usize>(
        output: T,
        context: &Context,
        topology: Topology,
        columns: &'static [TableColumn],
    ) -> anyhow::Result<Collected>
    where
        T: TableOutput<[V; N]>,
        T::Node: KeyOf<M>,
        V: crate::collector::MetadataValue,
    {
        table_output(output, context, topology, columns, |cells: [V; N]| {
            cells.into_iter().map(|cell| cell.into_text()).collect()
        })
    }

    fn table_output<T: TableOutput<Row>, Row>(
        output: T,
        context: &Context,
        topology: Topology,
        columns: &'static [TableColumn],
        cells: impl Fn(Row) -> Vec<String>,
    ) -> anyhow::Result<Collected> {
        let declared = <T::Node as crate::ids::NodeKey>::TOPOLOGY;
        anyhow::ensure!(
            declared == topology,
            "the table is declared for the {} topology but returns keys of the {} topology",
            topology.name(),
            declared.name()
        );
        let Some(rows) = output.into_rows()? else {
            return Ok(Collected::NoSample);
        };
        let rows = rows
            .into_iter()
            .map(|(key, row)| (key, cells(row)))
            .collect();
        crate::collector::table_points(rows, context, columns)
    }

    /// Converts a per-node collector's return value; `M`, the marker of the declared
    /// topology, makes keys of another topology a compile error.
    pub fn nodes_output<K, T, M>(
        output: T,
        context: &Context,
        topology: Topology,
    ) -> anyhow::Result<Collected>
    where
        T: NodesOutput<K>,
        T::Node: KeyOf<M>,
    {
        output.into_collected(context, topology)
    }
}
