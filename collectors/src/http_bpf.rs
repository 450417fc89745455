//! Loads the HTTP eBPF program once per process and reads its per-process counters.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock, PoisonError};

use anyhow::Context as _;
use aya::maps::{HashMap as BpfHashMap, PerCpuArray, PerCpuHashMap};
use aya::programs::RawTracePoint;
use aya::programs::raw_trace_point::RawTracePointLinkId;

use crate::shared_reading::SharedReading;

/// Built by build.rs; empty when clang was not available at build time.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/http.bpf.o"));

/// Mirrors `struct http_counts` in bpf/http.bpf.c.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct RawCounts {
    start_time: u64,
    requests: u64,
    responses: [u64; 16],
    codes: [u16; 16],
}

// SAFETY: plain integers with no padding-dependent invariants; any bit pattern is valid.
unsafe impl aya::Pod for RawCounts {}

/// Mirrors `struct pending_counts`: per CPU, counts not yet moved to COUNTS.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct RawPending {
    tgid: u32,
    /// Odd while the program moves the counts to COUNTS.
    seq: u32,
    counts: RawCounts,
}

// SAFETY: as for RawCounts.
unsafe impl aya::Pod for RawPending {}

/// Mirrors `struct exit_note`: a process whose whole thread group exited.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct RawExitNote {
    start_time: u64,
    parent_start_time: u64,
    exited_at: u64,
    parent: u32,
    pad: u32,
}

// SAFETY: as for RawCounts.
unsafe impl aya::Pod for RawExitNote {}

/// A process that exited, and the parent its counts go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exited {
    pub(crate) tgid: u32,
    pub(crate) start_time: u64,
    pub(crate) parent: u32,
    pub(crate) parent_start_time: u64,
    /// When, so that a child is folded before its parent.
    pub(crate) exited_at: u64,
}

/// Readings of PENDING and COUNTS tried before taking one that raced with a move.
const CONSISTENT_READ_TRIES: usize = 5;

/// One process's counters since its entry was created, summed over CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProcessCounts {
    /// The process's start time (ns since boot), to tell a reused pid apart.
    pub(crate) start_time: u64,
    pub(crate) requests: u64,
    pub(crate) responses: BTreeMap<u16, u64>,
}

/// The loaded, attached program.
pub(crate) struct HttpProbe {
    ebpf: aya::Ebpf,
    lineage: Lineage,
    /// The socket programs' links while attached; none while paused.
    socket_links: Vec<(&'static str, RawTracePointLinkId)>,
}

/// The programs that run on every socket read and write (the cost of counting), with their
/// tracepoints: detached while tracing is paused. The other two run on TCP state changes and
/// process exits, rarely, and stay, so that the state they keep stays right.
const SOCKET_PROGRAMS: [(&str, &str); 2] = [
    ("http_sock_recv", "sock_recv_length"),
    ("http_sock_send", "sock_send_length"),
];

/// Exited processes' counts, given to their parents: what the kernel does with CPU time
/// (`cutime`), so that a server forking a child per connection shows every request, and
/// its container's total is exact whatever the process model.
#[derive(Debug, Default)]
pub(crate) struct Lineage {
    /// Counts of exited descendants, by the (tgid, start time) of the live process they
    /// went to; cumulative while it lives, as its own counters are.
    inherited: HashMap<(u32, u64), ProcessCounts>,
    /// What the last reading gave each process (its own counts plus inherited): an exited
    /// process's parent gets only what its own series had not shown yet.
    reported: HashMap<u32, ProcessCounts>,
}

impl Lineage {
    /// Folds the `exited` processes' counts (from `counts`) into their parents', children
    /// before parents, and returns every live process's counts: its own plus its exited
    /// descendants'.
    pub(crate) fn fold(
        &mut self,
        mut counts: HashMap<u32, ProcessCounts>,
        exited: &[Exited],
    ) -> HashMap<u32, ProcessCounts> {
        let mut exited = exited.to_vec();
        exited.sort_by_key(|note| note.exited_at);
        for note in &exited {
            let same_process = |c: &ProcessCounts| c.start_time == note.start_time;
            // An entry with another start time is a new process on the reused pid: it stays.
            let mut total = if counts.get(&note.tgid).is_some_and(same_process) {
                counts.remove(&note.tgid).unwrap_or_default()
            } else {
                ProcessCounts::default()
            };
            if let Some(inherited) = self.inherited.remove(&(note.tgid, note.start_time)) {
                total.add_counts(&inherited);
            }
            let shown = self
                .reported
                .remove(&note.tgid)
                .filter(same_process)
                .unwrap_or_default();
            let unreported = total.less(&shown);
            if note.parent != 0 && !unreported.is_empty() {
                self.inherited
                    .entry((note.parent, note.parent_start_time))
                    .or_insert_with(|| ProcessCounts {
                        start_time: note.parent_start_time,
                        ..ProcessCounts::default()
                    })
                    .add_counts(&unreported);
            }
        }
        for (tgid, own) in &mut counts {
            if let Some(inherited) = self.inherited.get(&(*tgid, own.start_time)) {
                own.add_counts(inherited);
            }
        }
        // A process that went without a note (evicted from the full maps) takes what it
        // inherited with it.
        self.inherited.retain(|(tgid, start_time), _| {
            counts
                .get(tgid)
                .is_some_and(|own| own.start_time == *start_time)
        });
        self.reported.clone_from(&counts);
        counts
    }
}

impl std::fmt::Debug for HttpProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpProbe")
    }
}

impl HttpProbe {
    /// Loads and attaches the program; `count_unix` also counts AF_UNIX stream sockets.
    pub(crate) fn load(count_unix: bool) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !OBJECT.is_empty(),
            "this binary was built without the BPF program (clang or libbpf-dev was missing at build time; run `make run`)"
        );
        let mut socket_links = Vec::new();
        let mut ebpf = aya::EbpfLoader::new()
            .override_global("count_unix", &u8::from(count_unix), true)
            .load(OBJECT)
            .map_err(|e| {
                permission_hint(anyhow::Error::new(e).context("cannot load the HTTP BPF program"))
            })?;
        // The kernel version that added each tracepoint, for the error on older kernels.
        for (program, tracepoint, since) in [
            ("http_sock_recv", "sock_recv_length", "6.4"),
            ("http_sock_send", "sock_send_length", "6.4"),
            ("http_socket_state", "inet_sock_set_state", "4.17"),
            ("http_process_exit", "sched_process_exit", "4.17"),
        ] {
            let raw: &mut RawTracePoint = ebpf
                .program_mut(program)
                .with_context(|| format!("the BPF object has no program {program}"))?
                .try_into()?;
            raw.load().map_err(|e| {
                permission_hint(anyhow::Error::new(e).context(format!("cannot load {program}")))
            })?;
            let link = raw.attach(tracepoint).map_err(|e| {
                permission_hint(anyhow::Error::new(e).context(format!(
                    "cannot attach to the raw tracepoint {tracepoint} (Linux {since} and later have it)"
                )))
            })?;
            if SOCKET_PROGRAMS.iter().any(|(name, _)| *name == program) {
                socket_links.push((program, link));
            }
        }
        Ok(Self {
            ebpf,
            lineage: Lineage::default(),
            socket_links,
        })
    }

    /// One of the loaded raw tracepoint programs.
    fn raw_program(&mut self, program: &str) -> anyhow::Result<&mut RawTracePoint> {
        Ok(self
            .ebpf
            .program_mut(program)
            .with_context(|| format!("no program {program}"))?
            .try_into()?)
    }

    /// Whether the socket programs are detached.
    pub(crate) fn paused(&self) -> bool {
        self.socket_links.is_empty()
    }

    /// Detaches the socket programs: socket reads and writes then run no BPF at all.
    pub(crate) fn pause(&mut self) -> anyhow::Result<()> {
        for (program, link) in std::mem::take(&mut self.socket_links) {
            self.raw_program(program)?
                .detach(link)
                .with_context(|| format!("cannot detach {program}"))?;
        }
        Ok(())
    }

    /// Attaches the socket programs again.
    pub(crate) fn resume(&mut self) -> anyhow::Result<()> {
        if !self.paused() {
            return Ok(());
        }
        for (program, tracepoint) in SOCKET_PROGRAMS {
            let link = self
                .raw_program(program)?
                .attach(tracepoint)
                .with_context(|| format!("cannot attach {program} to {tracepoint}"))?;
            self.socket_links.push((program, link));
        }
        Ok(())
    }

    /// Every process's counters, from a reading taken moments ago if there is one: the
    /// requests and responses collectors both want the whole map at the same tick.
    pub(crate) fn read_shared(&mut self) -> anyhow::Result<HashMap<u32, ProcessCounts>> {
        static LAST: SharedReading<(), HashMap<u32, ProcessCounts>> = SharedReading::new();
        LAST.get((), || self.read_folded())
    }

    /// Every live process's counters, exited descendants' folded in; the exited processes'
    /// entries are then deleted. The notes are read before the counters: a process that
    /// exits in between is read as live, and folded at the next reading.
    fn read_folded(&mut self) -> anyhow::Result<HashMap<u32, ProcessCounts>> {
        let exited = self.exited()?;
        let counts = self.read()?;
        let entries: Vec<(u32, u64)> = exited
            .iter()
            .filter(|note| {
                counts
                    .get(&note.tgid)
                    .is_none_or(|c| c.start_time == note.start_time)
            })
            .map(|note| (note.tgid, note.start_time))
            .collect();
        let live = self.lineage.fold(counts, &exited);
        let mut notes: BpfHashMap<_, u32, RawExitNote> =
            BpfHashMap::try_from(self.ebpf.map_mut("EXITED").context("no EXITED map")?)?;
        for note in &exited {
            // Gone already (a reused pid's exit noted over it) is fine.
            let _ = notes.remove(&note.tgid);
        }
        let mut counters: PerCpuHashMap<_, u32, RawCounts> =
            PerCpuHashMap::try_from(self.ebpf.map_mut("COUNTS").context("no COUNTS map")?)?;
        for (tgid, _) in entries {
            let _ = counters.remove(&tgid);
        }
        Ok(live)
    }

    /// The processes noted as exited.
    fn exited(&self) -> anyhow::Result<Vec<Exited>> {
        let notes: BpfHashMap<_, u32, RawExitNote> =
            BpfHashMap::try_from(self.ebpf.map("EXITED").context("no EXITED map")?)?;
        Ok(notes
            .iter()
            .filter_map(Result::ok)
            .map(|(tgid, note)| Exited {
                tgid,
                start_time: note.start_time,
                parent: note.parent,
                parent_start_time: note.parent_start_time,
                exited_at: note.exited_at,
            })
            .collect())
    }

    /// Every process's counters: COUNTS, plus each CPU's pending counts for the process
    /// if it is the same process (same start time). PENDING is read before and after
    /// COUNTS; if the program moved pending counts in between, they could be seen twice
    /// or not at all, so the reading is taken again.
    fn read(&self) -> anyhow::Result<HashMap<u32, ProcessCounts>> {
        let counts: PerCpuHashMap<_, u32, RawCounts> =
            PerCpuHashMap::try_from(self.ebpf.map("COUNTS").context("no COUNTS map")?)?;
        let pending: PerCpuArray<_, RawPending> =
            PerCpuArray::try_from(self.ebpf.map("PENDING").context("no PENDING map")?)?;
        let mut tries = 0;
        loop {
            tries += 1;
            let before = pending.get(&0, 0)?;
            let mut processes = read_counts(&counts);
            let after = pending.get(&0, 0)?;
            let moved = before
                .iter()
                .zip(after.iter())
                .any(|(then, now)| then.seq != now.seq || now.seq % 2 == 1);
            if moved && tries < CONSISTENT_READ_TRIES {
                continue;
            }
            for cpu in after.iter() {
                if let Some(process) = processes.get_mut(&cpu.tgid)
                    && process.start_time == cpu.counts.start_time
                {
                    process.add(&cpu.counts);
                }
            }
            return Ok(processes);
        }
    }
}

/// COUNTS, summed over CPUs.
fn read_counts(
    map: &PerCpuHashMap<&aya::maps::MapData, u32, RawCounts>,
) -> HashMap<u32, ProcessCounts> {
    let mut processes = HashMap::new();
    for entry in map.iter() {
        // An entry deleted between listing keys and reading it is simply gone.
        let Ok((tgid, per_cpu)) = entry else { continue };
        let mut counts = ProcessCounts::default();
        for cpu in per_cpu.iter() {
            // CPUs that never counted for the process hold zeros.
            counts.start_time = counts.start_time.max(cpu.start_time);
        }
        for cpu in per_cpu.iter() {
            counts.add(cpu);
        }
        processes.insert(tgid, counts);
    }
    processes
}

impl ProcessCounts {
    /// Adds another process's counts.
    fn add_counts(&mut self, other: &ProcessCounts) {
        self.requests += other.requests;
        for (&code, &count) in &other.responses {
            *self.responses.entry(code).or_default() += count;
        }
    }

    /// These counts less `shown` (never below zero).
    fn less(&self, shown: &ProcessCounts) -> ProcessCounts {
        ProcessCounts {
            start_time: self.start_time,
            requests: self.requests.saturating_sub(shown.requests),
            responses: self
                .responses
                .iter()
                .map(|(&code, &count)| {
                    let before = shown.responses.get(&code).copied().unwrap_or(0);
                    (code, count.saturating_sub(before))
                })
                .filter(|&(_, count)| count > 0)
                .collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.requests == 0 && self.responses.is_empty()
    }

    fn add(&mut self, raw: &RawCounts) {
        self.requests += raw.requests;
        for (&code, &count) in raw.codes.iter().zip(&raw.responses) {
            if code != 0 {
                *self.responses.entry(code).or_default() += count;
            }
        }
    }
}

fn permission_hint(error: anyhow::Error) -> anyhow::Error {
    let denied = error.chain().any(|cause| {
        let text = cause.to_string();
        text.contains("Operation not permitted") || text.contains("Permission denied")
    });
    if denied {
        error.context(format!(
            "loading eBPF needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN; {}; the other collectors keep running",
            missing_privileges()
        ))
    } else {
        error
    }
}

/// What this process lacks to load eBPF, and how to grant it in a container.
fn missing_privileges() -> String {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let effective = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        });
    let Some(effective) = effective else {
        return format!("this process runs as uid {uid}");
    };
    let has = |cap: u32| effective & (1 << cap) != 0;
    let missing: Vec<&str> = [("CAP_BPF", CAP_BPF), ("CAP_PERFMON", CAP_PERFMON)]
        .into_iter()
        .filter(|&(_, cap)| !has(cap))
        .map(|(name, _)| name)
        .collect();
    if missing.is_empty() || has(CAP_SYS_ADMIN) {
        // The capabilities are there, so something else refused: in a container, most
        // likely a seccomp profile without the bpf system call.
        return format!(
            "this process (uid {uid}) has them, so a seccomp profile or a security module refused the bpf system call"
        );
    }
    format!(
        "this process (uid {uid}) lacks {}: in Docker add --cap-add BPF --cap-add PERFMON (Docker 23 and later), or --cap-add SYS_ADMIN on older engines",
        missing.join(" and ")
    )
}

/// The process-wide probe once loaded (or why it could not be).
static PROBE: OnceLock<Mutex<Result<HttpProbe, String>>> = OnceLock::new();

/// The process-wide probe, loaded on first use; a load error is kept and returned to
/// every caller (so it is reported, not retried every second).
pub(crate) fn with_probe<T>(
    count_unix: bool,
    use_probe: impl FnOnce(&mut HttpProbe) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let probe =
        PROBE.get_or_init(|| Mutex::new(HttpProbe::load(count_unix).map_err(|e| format!("{e:#}"))));
    let mut guard = probe.lock().unwrap_or_else(PoisonError::into_inner);
    match &mut *guard {
        Ok(probe) => use_probe(probe),
        Err(message) => Err(anyhow::anyhow!("{message}")),
    }
}

/// The probe if the collectors loaded it, without loading it: `None` before their first
/// sample, or if it could not load (then there is no tracing to pause).
pub(crate) fn with_loaded_probe<T>(use_probe: impl FnOnce(&mut HttpProbe) -> T) -> Option<T> {
    let mut guard = PROBE.get()?.lock().unwrap_or_else(PoisonError::into_inner);
    guard.as_mut().ok().map(use_probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(start_time: u64, requests: u64, ok: u64) -> ProcessCounts {
        ProcessCounts {
            start_time,
            requests,
            responses: if ok > 0 {
                BTreeMap::from([(200, ok)])
            } else {
                BTreeMap::new()
            },
        }
    }

    fn exited(tgid: u32, start_time: u64, parent: u32, exited_at: u64) -> Exited {
        Exited {
            tgid,
            start_time,
            parent,
            parent_start_time: 1,
            exited_at,
        }
    }

    #[test]
    fn children_that_lived_less_than_an_interval_count_at_their_parent() {
        let mut lineage = Lineage::default();
        // The listening server (pid 10) never reads or writes HTTP itself; the kernel made
        // its entry when its first child exited. Three children served one request each.
        let reading = HashMap::from([
            (10, counts(1, 0, 0)),
            (11, counts(2, 1, 1)),
            (12, counts(3, 1, 1)),
            (13, counts(4, 1, 0)),
        ]);
        let live = lineage.fold(
            reading,
            &[
                exited(12, 3, 10, 20),
                exited(11, 2, 10, 10),
                exited(13, 4, 10, 30),
            ],
        );
        assert_eq!(live, HashMap::from([(10, counts(1, 3, 2))]));
        // Cumulative: the next reading keeps them, and adds the next child's.
        let live = lineage.fold(
            HashMap::from([(10, counts(1, 0, 0)), (14, counts(5, 1, 1))]),
            &[exited(14, 5, 10, 40)],
        );
        assert_eq!(live, HashMap::from([(10, counts(1, 4, 3))]));
    }

    #[test]
    fn a_child_seen_alive_gives_its_parent_only_what_its_series_did_not_show() {
        let mut lineage = Lineage::default();
        let live = lineage.fold(
            HashMap::from([(10, counts(1, 0, 0)), (11, counts(2, 3, 3))]),
            &[],
        );
        assert_eq!(live[&11], counts(2, 3, 3));
        let live = lineage.fold(
            HashMap::from([(10, counts(1, 0, 0)), (11, counts(2, 5, 4))]),
            &[exited(11, 2, 10, 1)],
        );
        // 3 requests were the child's rate already; the last 2 go to the parent.
        assert_eq!(live, HashMap::from([(10, counts(1, 2, 1))]));
    }

    #[test]
    fn grandchildren_reach_the_living_ancestor_and_reused_pids_stay_apart() {
        let mut lineage = Lineage::default();
        // 12 (a grandchild) exits before its parent 11, both before the next reading.
        let mut child = exited(11, 2, 10, 20);
        child.parent_start_time = 1;
        let mut grandchild = exited(12, 3, 11, 10);
        grandchild.parent_start_time = 2;
        let live = lineage.fold(
            HashMap::from([
                (10, counts(1, 0, 0)),
                (11, counts(2, 1, 0)),
                (12, counts(3, 2, 2)),
            ]),
            &[child, grandchild],
        );
        assert_eq!(live, HashMap::from([(10, counts(1, 3, 2))]));

        // A note for pid 20 started at 7, but the entry read is a new process's (start 8):
        // nothing of the new one moves, and nothing is lost from it.
        let live = lineage.fold(
            HashMap::from([(10, counts(1, 0, 0)), (20, counts(8, 4, 4))]),
            &[exited(20, 7, 10, 1)],
        );
        assert_eq!(live[&10], counts(1, 3, 2));
        assert_eq!(live[&20], counts(8, 4, 4));

        // The parent itself goes without a note (evicted): what it inherited goes with it.
        let live = lineage.fold(HashMap::new(), &[]);
        assert!(live.is_empty());
        assert!(lineage.inherited.is_empty());
    }
}
