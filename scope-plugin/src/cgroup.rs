//! Which container and pod a process is in, from its `/proc/<pid>/cgroup`, and the roll-up
//! of a per-process metric onto them (`rollup = "sum"`).
//!
//! Container runtimes name a container's cgroup after the container's id, and the kubelet
//! names a pod's cgroup after the pod's UID, so the path alone says where a process runs:
//!
//! | runtime, cgroup driver | path (v1 and v2 alike) |
//! |---|---|
//! | Docker, cgroupfs | `/docker/<id>` |
//! | Docker, systemd | `/system.slice/docker-<id>.scope` |
//! | Podman, systemd | `/machine.slice/libpod-<id>.scope[/container]` |
//! | Podman, cgroupfs | `/libpod_parent/libpod-<id>` |
//! | Kubernetes, cgroupfs | `/kubepods[/burstable\|/besteffort]/pod<uid>/<id>` |
//! | Kubernetes, systemd | `/kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid_with_underscores>.slice/<cri-containerd\|crio\|docker>-<id>.scope` |
//!
//! Seen from a container with a private cgroup namespace (the default on cgroup v2), other
//! containers' paths are relative (`/../../kubepods-…/cri-containerd-<id>.scope`): the same
//! pieces are found in them. Processes in the reader's own cgroup show as `/`.
//!
//! Anything else, including conmon's own `crio-conmon-<id>.scope`, is "not in a container":
//! a path this code does not recognise never becomes an id. Ids are checked for their exact
//! shape (64 lower-case hex digits; a UUID for a pod), so a malformed one is never sent.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hashbrown::HashMap;

use crate::collector::{PointRef, Points, ValueRef};
use crate::ids::{ContainerId, NodeKey, PodUid};
use scope_plugin_rules::Rollup;

/// Where a process runs: its container, and the pod of that container if the kubelet made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Membership {
    /// The container, by its full id: Scope's container node is `<id>;<container>`.
    pub container: ContainerId,
    /// The Kubernetes pod, by UID: Scope's pod node is `<uid>;<pod>`.
    pub pod: Option<PodUid>,
}

/// The container (and pod) named by the text of a `/proc/<pid>/cgroup` file, or `None` for a
/// process on the host, or in a cgroup layout this does not know.
///
/// Each line is `hierarchy:controllers:path`; cgroup v2 has one line (`0::/path`), v1 one per
/// hierarchy. The first line whose path names a container decides.
pub fn membership(cgroup_file: &str) -> Option<Membership> {
    cgroup_file.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_hierarchy, _controllers) = (fields.next()?, fields.next()?);
        membership_of_path(fields.next()?)
    })
}

/// The container (and pod) a cgroup path names. The outermost container wins: with a
/// container runtime inside a container, the host's runtime, whose ids Scope shows, knows
/// only the outer one. Directories below the container's own (systemd or podman's
/// `container` inside it) are still that container.
pub fn membership_of_path(path: &str) -> Option<Membership> {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let (at, container) = components
        .iter()
        .enumerate()
        .find_map(|(at, component)| container_id(component).map(|id| (at, id)))?;
    // A path relative to the reader's own cgroup namespace (`/../..`: the plugin runs in a
    // container with a private one, the default on cgroup v2) may have lost the kubepods
    // ancestors: then the pod directory alone must show it.
    let under_kubepods = components[..at]
        .iter()
        .any(|component| component.contains("kubepods") || *component == "..");
    let pod = at
        .checked_sub(1)
        .filter(|_| under_kubepods)
        .and_then(|parent| pod_uid(components[parent]));
    Some(Membership {
        container: ContainerId(container.to_owned()),
        pod: pod.map(PodUid),
    })
}

/// Container runtimes whose systemd scopes (or podman's cgroupfs directories) are
/// `<prefix>-<id>[.scope]`. conmon's `crio-conmon-` and `libpod-conmon-` are not here on
/// purpose: conmon runs beside the container, not in it.
const SCOPE_PREFIXES: [&str; 4] = ["docker-", "cri-containerd-", "crio-", "libpod-"];

/// The container id a path component names: the id itself (cgroupfs) or a runtime's scope.
fn container_id(component: &str) -> Option<&str> {
    if is_container_id(component) {
        return Some(component);
    }
    let named = component.strip_suffix(".scope").unwrap_or(component);
    SCOPE_PREFIXES
        .iter()
        .filter_map(|prefix| named.strip_prefix(prefix))
        .find(|id| is_container_id(id))
}

/// 64 lower-case hex digits: Docker's, containerd's, CRI-O's and podman's full ids.
fn is_container_id(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The pod UID a component names: `pod<uid>` (cgroupfs), or a systemd slice ending in
/// `pod<uid with '_' for '-'>.slice`. Static pods, whose cgroup carries a config hash
/// instead of a UID, give none.
fn pod_uid(component: &str) -> Option<String> {
    let uid = match component.strip_suffix(".slice") {
        Some(slice) => {
            let (_, uid) = slice.rsplit_once("pod")?;
            uid.replace('_', "-")
        }
        None => component.strip_prefix("pod")?.to_owned(),
    };
    is_uuid(&uid).then_some(uid)
}

/// `8-4-4-4-12` lower-case hex digits, as the API server makes pod UIDs.
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, len)| {
            group.len() == len
                && group
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
}

/// How long a pid's mapping is kept after the last round that listed it.
const FORGET_AFTER: Duration = Duration::from_secs(10);

/// A container's values of one series: the shared membership's address, and the series.
type SharedKey<'a> = (usize, Option<&'a str>);

/// One pid's membership, and when a round last listed the pid.
#[derive(Debug)]
struct Mapped {
    membership: Option<Arc<Membership>>,
    last_seen: Instant,
}

/// Each process's container and pod, read once per process from `<procfs>/<pid>/cgroup`
/// and kept while rounds keep listing the pid; forgotten [`FORGET_AFTER`] after the last.
///
/// A pid can be reused by a process in another container (with a `pid_max` of 32768, the
/// kernel's default on small machines, a host that forks a thousand times a second comes
/// round in half a minute). The
/// kernel hands out pids in order, so every roll-up reads where the pid namespace's cursor
/// is (`<procfs>/sys/kernel/ns_last_pid`, one small read) and forgets the pids it passed
/// since the previous roll-up: a reused pid is read again, and a cached one is never
/// another process's. Without that file (a kernel built without checkpoint/restore) every
/// roll-up reads every process's file again.
#[derive(Debug, Default)]
pub(crate) struct ContainerMap {
    known: Mutex<Known>,
}

/// The pids' mappings, and one shared copy of each membership: a container's processes
/// share it, so values add up by pointer, without hashing 64-digit ids per value.
#[derive(Debug, Default)]
struct Known {
    pids: HashMap<u32, Mapped>,
    memberships: HashSet<Arc<Membership>>,
    /// The last pid handed out, as of the previous roll-up.
    last_pid: Option<u32>,
    /// Said once: without the cursor, mappings cannot be kept.
    warned_no_cursor: bool,
}

impl Known {
    /// Forgets what may be stale before a roll-up at `now`: pids the kernel handed out since
    /// the previous roll-up (`last_pid` is where its cursor is now), or every pid if that is
    /// not known, and pids no round listed for [`FORGET_AFTER`].
    fn forget_stale(&mut self, last_pid: Option<u32>, now: Instant) {
        let handed_out = |pid: u32| match (self.last_pid, last_pid) {
            // The cursor moves up and wraps to the bottom: pids in (before, after].
            (Some(before), Some(after)) if before <= after => pid > before && pid <= after,
            (Some(before), Some(after)) => pid > before || pid <= after,
            // No cursor now or at the previous roll-up (the first one, when nothing is
            // cached yet): nothing cached can be trusted.
            (None, _) | (_, None) => true,
        };
        self.pids.retain(|&pid, entry| {
            !handed_out(pid) && now.duration_since(entry.last_seen) < FORGET_AFTER
        });
        self.last_pid = last_pid;
        // A membership no pid holds any more (its container is gone) is dropped too.
        self.memberships
            .retain(|shared| Arc::strong_count(shared) > 1);
    }
}

/// A metric rolled up onto containers and pods: one value per node and series.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RolledUp {
    pub(crate) containers: Points,
    pub(crate) pods: Points,
}

#[derive(Debug, Clone, Copy)]
struct Accumulated {
    sum: f64,
    min: f64,
    max: f64,
    count: u32,
}

impl Accumulated {
    fn new(value: f64) -> Self {
        Self {
            sum: value,
            min: value,
            max: value,
            count: 1,
        }
    }

    fn add(&mut self, value: f64) {
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.count += 1;
    }

    fn reduce(self, rollup: Rollup) -> Option<f64> {
        match rollup {
            Rollup::None => None,
            Rollup::Sum => Some(self.sum),
            Rollup::Mean => Some(self.sum / f64::from(self.count)),
            Rollup::Max => Some(self.max),
            Rollup::Min => Some(self.min),
        }
    }
}

impl ContainerMap {
    /// The values of `points` (process nodes, `<host>;<pid>`) reduced per container and per
    /// pod with `rollup`, series by series. Processes on the host count nowhere.
    pub(crate) fn roll_up(&self, procfs: &Path, points: &Points, rollup: Rollup) -> RolledUp {
        let now = Instant::now();
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let last_pid = read_last_pid(procfs);
        if last_pid.is_none() && !known.warned_no_cursor {
            known.warned_no_cursor = true;
            tracing::warn!(
                file = %procfs.join(LAST_PID).display(),
                "cannot read where the kernel's pid cursor is, so a reused pid cannot be told \
                 from the process that had it: every roll-up reads each process's cgroup file again"
            );
        }
        known.forget_stale(last_pid, now);
        let Known {
            pids, memberships, ..
        } = &mut *known;
        // By the shared membership's address: the same container, the same key.
        let mut containers: HashMap<SharedKey<'_>, (Arc<Membership>, Accumulated)> = HashMap::new();
        for PointRef {
            node_id,
            series,
            value,
        } in points.iter()
        {
            let ValueRef::Number(value) = value else {
                continue;
            };
            let Some(pid) = node_id
                .rsplit_once(';')
                .and_then(|(_, pid)| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let entry = pids.entry(pid).or_insert_with(|| Mapped {
                membership: read_membership(procfs, pid).map(|membership| {
                    match memberships.get(&membership) {
                        Some(shared) => Arc::clone(shared),
                        None => {
                            let shared = Arc::new(membership);
                            memberships.insert(Arc::clone(&shared));
                            shared
                        }
                    }
                }),
                last_seen: now,
            });
            entry.last_seen = now;
            let Some(membership) = &entry.membership else {
                continue;
            };
            containers
                .entry((Arc::as_ptr(membership) as usize, series))
                .and_modify(|(_, acc)| acc.add(value))
                .or_insert_with(|| (Arc::clone(membership), Accumulated::new(value)));
        }
        drop(known);

        let mut pods: HashMap<(&PodUid, Option<&str>), Accumulated> = HashMap::new();
        let mut rolled = RolledUp::default();
        let mut node_id = String::new();
        for ((_, series), (membership, acc)) in &containers {
            if let Some(value) = acc.reduce(rollup) {
                node_id.clear();
                membership.container.write_node_id("", &mut node_id);
                rolled
                    .containers
                    .push(&node_id, *series, ValueRef::Number(value));
            }
            if let Some(pod) = &membership.pod {
                pods.entry((pod, *series))
                    .and_modify(|total| total.merge(acc))
                    .or_insert(*acc);
            }
        }
        for ((pod, series), acc) in pods {
            if let Some(value) = acc.reduce(rollup) {
                node_id.clear();
                pod.write_node_id("", &mut node_id);
                rolled.pods.push(&node_id, series, ValueRef::Number(value));
            }
        }
        rolled
    }
}

impl Accumulated {
    /// Adds another container's accumulation (a pod's containers).
    fn merge(&mut self, other: &Accumulated) {
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.count += other.count;
    }
}

/// The pid namespace's last pid handed out, under procfs.
const LAST_PID: &str = "sys/kernel/ns_last_pid";

fn read_last_pid(procfs: &Path) -> Option<u32> {
    std::fs::read_to_string(procfs.join(LAST_PID))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The process's membership, or `None` if it is on the host or gone (it exited between the
/// collector's reading and this one: it is simply not rolled up).
fn read_membership(procfs: &Path, pid: u32) -> Option<Membership> {
    let text = std::fs::read_to_string(procfs.join(pid.to_string()).join("cgroup")).ok()?;
    membership(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "2299a2ab6a5a1f6c5ec5a8f35ee19c9d0c4b3f1e0c3a4d7a6b5e9f8c7d6e5f51";
    const OTHER: &str = "47cbd16b77c50cbf71401c069cd2189f0e659af17d5a2daca3bddf59d8a870b2";
    const UID: &str = "5759a1ae-36ca-48a8-b20a-b0b5c8a90fb8";

    fn container(path: &str) -> Option<String> {
        membership_of_path(path).map(|m| m.container.0)
    }

    fn pod(path: &str) -> Option<String> {
        membership_of_path(path).and_then(|m| m.pod.map(|p| p.0))
    }

    #[test]
    fn docker_with_either_driver_on_either_cgroup_version() {
        // cgroupfs driver, v1 line and v2 line.
        assert_eq!(
            membership(&format!("12:cpu,cpuacct:/docker/{ID}\n")).map(|m| m.container.0),
            Some(ID.to_owned())
        );
        assert_eq!(
            membership(&format!("0::/docker/{ID}\n")).map(|m| m.container.0),
            Some(ID.to_owned())
        );
        // systemd driver.
        assert_eq!(
            container(&format!("/system.slice/docker-{ID}.scope")),
            Some(ID.to_owned())
        );
        // systemd running inside the container, with the host's cgroup namespace.
        assert_eq!(
            container(&format!("/docker/{ID}/init.scope")),
            Some(ID.to_owned())
        );
        assert_eq!(pod(&format!("/docker/{ID}")), None);
    }

    #[test]
    fn podman_with_either_driver() {
        assert_eq!(
            container(&format!("/machine.slice/libpod-{ID}.scope")),
            Some(ID.to_owned())
        );
        assert_eq!(
            container(&format!("/machine.slice/libpod-{ID}.scope/container")),
            Some(ID.to_owned())
        );
        assert_eq!(
            container(&format!("/libpod_parent/libpod-{ID}")),
            Some(ID.to_owned())
        );
        // Rootless, under the user's systemd.
        assert_eq!(
            container(&format!(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
            )),
            Some(ID.to_owned())
        );
    }

    #[test]
    fn kubernetes_cgroupfs_in_every_qos_class() {
        for qos in ["", "/burstable", "/besteffort"] {
            let path = format!("/kubepods{qos}/pod{UID}/{ID}");
            assert_eq!(container(&path), Some(ID.to_owned()), "{path}");
            assert_eq!(pod(&path), Some(UID.to_owned()), "{path}");
        }
    }

    #[test]
    fn kubernetes_systemd_in_every_qos_class_and_runtime() {
        let underscored = UID.replace('-', "_");
        for (qos_slice, pod_slice) in [
            ("", format!("kubepods-pod{underscored}.slice")),
            (
                "/kubepods-burstable.slice",
                format!("kubepods-burstable-pod{underscored}.slice"),
            ),
            (
                "/kubepods-besteffort.slice",
                format!("kubepods-besteffort-pod{underscored}.slice"),
            ),
        ] {
            for runtime in ["cri-containerd", "crio", "docker"] {
                let path = format!("/kubepods.slice{qos_slice}/{pod_slice}/{runtime}-{ID}.scope");
                assert_eq!(container(&path), Some(ID.to_owned()), "{path}");
                assert_eq!(pod(&path), Some(UID.to_owned()), "{path}");
            }
        }
        // kind and others put the kubelet's tree under a slice of their own.
        let path = format!(
            "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{underscored}.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(pod(&path), Some(UID.to_owned()));
    }

    #[test]
    fn paths_relative_to_a_private_cgroup_namespace() {
        // The plugin in a pod with a private cgroup namespace, looking at another pod.
        let path = format!("/../../besteffort/pod{UID}/{ID}");
        assert_eq!(container(&path), Some(ID.to_owned()));
        assert_eq!(pod(&path), Some(UID.to_owned()));
        assert_eq!(
            container(&format!("/../../system.slice/docker-{ID}.scope")),
            Some(ID.to_owned())
        );
    }

    #[test]
    fn not_in_a_container() {
        for path in [
            "/",
            "/user.slice/user-0.slice/session-3.scope",
            "/system.slice/containerd.service",
            "/system.slice/docker.service",
            // conmon runs beside the container.
            &format!("/machine.slice/crio-conmon-{ID}.scope"),
            &format!("/machine.slice/libpod-conmon-{ID}.scope"),
            // Not quite an id: one digit short, upper case, not hex.
            &format!("/docker/{}", &ID[1..]),
            &format!("/docker/{}", ID.to_uppercase()),
            &format!("/docker/{}g", &ID[1..]),
            &format!("/system.slice/docker-{ID}x.scope"),
        ] {
            assert_eq!(membership_of_path(path), None, "{path}");
        }
        assert_eq!(membership("0::/\n"), None);
        assert_eq!(membership(""), None);
        assert_eq!(membership("garbage"), None);
    }

    #[test]
    fn a_pod_needs_the_kubelet_and_a_real_uid() {
        // A pod-looking directory outside the kubelet's tree is not a pod.
        assert_eq!(pod(&format!("/docker/pod{UID}/{ID}")), None);
        // Static pods: the cgroup carries a config hash, not the pod's UID.
        assert_eq!(
            pod(&format!(
                "/kubepods/besteffort/pod0123456789abcdef0123456789abcdef/{ID}"
            )),
            None
        );
        // Upper case is not how the API server writes UIDs.
        assert_eq!(
            pod(&format!("/kubepods/pod{}/{ID}", UID.to_uppercase())),
            None
        );
        // The container is still known.
        assert_eq!(
            container(&format!(
                "/kubepods/besteffort/pod0123456789abcdef0123456789abcdef/{ID}"
            )),
            Some(ID.to_owned())
        );
    }

    #[test]
    fn the_outermost_container_and_the_first_line_that_names_one() {
        assert_eq!(
            container(&format!("/docker/{ID}/docker/{OTHER}")),
            Some(ID.to_owned())
        );
        let v1 =
            format!("12:pids:/\n11:memory:/docker/{OTHER}\n1:name=systemd:/docker/{ID}\n0::/\n");
        assert_eq!(
            membership(&v1).map(|m| m.container.0),
            Some(OTHER.to_owned())
        );
    }

    #[test]
    fn node_ids_are_scopes() {
        let m = membership_of_path(&format!("/kubepods/pod{UID}/{ID}")).expect("membership");
        assert_eq!(m.container.node_id(""), format!("{ID};<container>"));
        assert_eq!(m.pod.expect("pod").node_id(""), format!("{UID};<pod>"));
    }

    /// A procfs tree with a cgroup file per pid, the pid cursor after the last of them.
    fn procfs(processes: &[(u32, String)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        for (pid, cgroup) in processes {
            write_cgroup(root.path(), *pid, cgroup);
        }
        std::fs::create_dir_all(root.path().join("sys/kernel")).expect("sys dir");
        let last = processes.iter().map(|(pid, _)| *pid).max().unwrap_or(1);
        set_last_pid(root.path(), last);
        root
    }

    fn write_cgroup(root: &Path, pid: u32, cgroup: &str) {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(&dir).expect("pid dir");
        std::fs::write(dir.join("cgroup"), cgroup).expect("cgroup");
    }

    fn set_last_pid(root: &Path, pid: u32) {
        std::fs::write(root.join(LAST_PID), format!("{pid}\n")).expect("ns_last_pid");
    }

    fn sorted(points: &Points) -> Vec<(String, Option<String>, f64)> {
        let mut all: Vec<_> = points
            .iter()
            .map(|p| {
                let ValueRef::Number(n) = p.value else {
                    panic!("a number")
                };
                (p.node_id.to_owned(), p.series.map(str::to_owned), n)
            })
            .collect();
        all.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        all
    }

    #[test]
    fn roll_up_sums_per_container_and_pod_series_by_series() {
        let underscored = UID.replace('-', "_");
        let root = procfs(&[
            // Two processes of one container, in a pod (systemd layout, cgroup v2).
            (
                10,
                format!(
                    "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{underscored}.slice/cri-containerd-{ID}.scope\n"
                ),
            ),
            (
                11,
                format!(
                    "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{underscored}.slice/cri-containerd-{ID}.scope\n"
                ),
            ),
            // A second container of the same pod (cgroupfs layout, cgroup v1).
            (
                20,
                format!("12:memory:/kubepods/burstable/pod{UID}/{OTHER}\n0::/\n"),
            ),
            // A process on the host.
            (30, String::from("0::/system.slice/sshd.service\n")),
        ]);
        let mut points = Points::default();
        for (pid, series, value) in [
            (10, "200", 1.0),
            (11, "200", 2.0),
            (11, "404", 0.5),
            (20, "200", 4.0),
            (30, "200", 100.0),
            // Gone before the roll-up: no cgroup file.
            (40, "200", 7.0),
        ] {
            points.push(&format!("h;{pid}"), Some(series), ValueRef::Number(value));
        }
        let map = ContainerMap::default();
        let rolled = map.roll_up(root.path(), &points, Rollup::Sum);
        let container = |id: &str| format!("{id};<container>");
        let series = |s: &str| Some(s.to_owned());
        assert_eq!(
            sorted(&rolled.containers),
            vec![
                (container(ID), series("200"), 3.0),
                (container(ID), series("404"), 0.5),
                (container(OTHER), series("200"), 4.0),
            ]
        );
        assert_eq!(
            sorted(&rolled.pods),
            vec![
                (format!("{UID};<pod>"), series("200"), 7.0),
                (format!("{UID};<pod>"), series("404"), 0.5),
            ]
        );

        // The mapping is read once per process: with the files gone (and no pid handed out
        // since), the same answer.
        for pid in [10, 11, 20, 30] {
            std::fs::remove_file(root.path().join(format!("{pid}/cgroup"))).expect("rm");
        }
        let again = map.roll_up(root.path(), &points, Rollup::Sum);
        assert_eq!(sorted(&again.containers), sorted(&rolled.containers));

        // The other reductions, over the pod's three 200 values (1, 2 and 4).
        for (rollup, expected) in [
            (Rollup::Mean, 7.0 / 3.0),
            (Rollup::Max, 4.0),
            (Rollup::Min, 1.0),
        ] {
            let rolled = map.roll_up(root.path(), &points, rollup);
            let pod_200 = sorted(&rolled.pods)[0].2;
            assert!((pod_200 - expected).abs() < 1e-12, "{rollup:?}: {pod_200}");
        }
        assert_eq!(
            map.roll_up(root.path(), &points, Rollup::None),
            RolledUp::default()
        );
    }

    /// The container that pid 10's value lands on, after one roll-up.
    fn container_of_pid_10(map: &ContainerMap, root: &Path) -> Vec<String> {
        let mut points = Points::default();
        points.push("h;10", None, ValueRef::Number(1.0));
        sorted(&map.roll_up(root, &points, Rollup::Sum).containers)
            .into_iter()
            .map(|(node, _, _)| node)
            .collect()
    }

    #[test]
    fn a_reused_pid_is_read_again_and_a_kept_one_is_not() {
        let docker = |id: &str| format!("0::/system.slice/docker-{id}.scope\n");
        let root = procfs(&[(10, docker(ID)), (40, docker(ID))]);
        let map = ContainerMap::default();
        let first = vec![format!("{ID};<container>")];
        let second = vec![format!("{OTHER};<container>")];
        assert_eq!(container_of_pid_10(&map, root.path()), first);

        // Pid 10 now reads as another container, but the kernel has handed out no pid, or
        // only pids above 10: the mapping kept is the same process's, and is not read again.
        write_cgroup(root.path(), 10, &docker(OTHER));
        assert_eq!(container_of_pid_10(&map, root.path()), first);
        set_last_pid(root.path(), 32_000);
        assert_eq!(container_of_pid_10(&map, root.path()), first);

        // The cursor wrapped past 10: pid 10 may be a new process, and is read again.
        set_last_pid(root.path(), 300 + 10);
        assert_eq!(container_of_pid_10(&map, root.path()), second);

        // Up to exactly 10 without wrapping, from below it.
        let map = ContainerMap::default();
        write_cgroup(root.path(), 10, &docker(ID));
        set_last_pid(root.path(), 9);
        assert_eq!(container_of_pid_10(&map, root.path()), first);
        write_cgroup(root.path(), 10, &docker(OTHER));
        set_last_pid(root.path(), 10);
        assert_eq!(container_of_pid_10(&map, root.path()), second);
    }

    #[test]
    fn without_the_pid_cursor_every_roll_up_reads_again() {
        let docker = |id: &str| format!("0::/system.slice/docker-{id}.scope\n");
        let root = procfs(&[(10, docker(ID))]);
        std::fs::remove_file(root.path().join(LAST_PID)).expect("rm");
        let map = ContainerMap::default();
        assert_eq!(
            container_of_pid_10(&map, root.path()),
            vec![format!("{ID};<container>")]
        );
        write_cgroup(root.path(), 10, &docker(OTHER));
        assert_eq!(
            container_of_pid_10(&map, root.path()),
            vec![format!("{OTHER};<container>")]
        );
    }

    mod arbitrary_lines {
        use super::super::*;
        use proptest::prelude::*;

        fn well_formed(m: &Membership) -> bool {
            is_container_id(&m.container.0) && m.pod.as_ref().is_none_or(|p| is_uuid(&p.0))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Any text at all: an id comes out well formed, or none does.
            #[test]
            fn any_text(text in ".{0,300}") {
                if let Some(m) = membership(&text) {
                    prop_assert!(well_formed(&m), "{m:?} from {text:?}");
                }
            }

            /// Paths built from the pieces real ones are made of, shuffled and cut.
            #[test]
            fn paths_from_real_pieces(pieces in proptest::collection::vec(prop_oneof![
                Just("kubepods".to_owned()),
                Just("kubepods.slice".to_owned()),
                Just("kubepods-burstable.slice".to_owned()),
                Just(format!("pod{}", super::UID)),
                Just(format!("kubepods-pod{}.slice", super::UID.replace('-', "_"))),
                Just(format!("kubepods-besteffort-pod{}.slice", &super::UID[1..])),
                Just(super::ID.to_owned()),
                Just(super::ID[..40].to_owned()),
                Just(format!("docker-{}.scope", super::ID)),
                Just(format!("crio-conmon-{}.scope", super::ID)),
                Just(format!("cri-containerd-{}", &super::ID[2..])),
                Just("system.slice".to_owned()),
                "[a-z0-9_.-]{0,20}",
            ], 0..8), cut in 0usize..400) {
                let path = format!("/{}", pieces.join("/"));
                let path = &path[..path.floor_char_boundary(cut.min(path.len()))];
                if let Some(m) = membership(&format!("0::{path}")) {
                    prop_assert!(well_formed(&m), "{m:?} from {path:?}");
                }
            }
        }
    }
}
