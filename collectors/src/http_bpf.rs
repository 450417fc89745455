//! Loads the HTTP eBPF program once per process and reads its per-process counters.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock, PoisonError};

use anyhow::Context as _;
use aya::maps::{PerCpuArray, PerCpuHashMap};
use aya::programs::RawTracePoint;

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
            raw.attach(tracepoint).map_err(|e| {
                permission_hint(anyhow::Error::new(e).context(format!(
                    "cannot attach to the raw tracepoint {tracepoint} (Linux {since} and later have it)"
                )))
            })?;
        }
        Ok(Self { ebpf })
    }

    /// Every process's counters, from a reading taken moments ago if there is one: the
    /// requests and responses collectors both want the whole map at the same tick.
    pub(crate) fn read_shared(&self) -> anyhow::Result<HashMap<u32, ProcessCounts>> {
        static LAST: SharedReading<(), HashMap<u32, ProcessCounts>> = SharedReading::new();
        LAST.get((), || self.read())
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

/// The process-wide probe, loaded on first use; a load error is kept and returned to
/// every caller (so it is reported, not retried every second).
pub(crate) fn with_probe<T>(
    count_unix: bool,
    use_probe: impl FnOnce(&HttpProbe) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    static PROBE: OnceLock<Mutex<Result<HttpProbe, String>>> = OnceLock::new();
    let probe =
        PROBE.get_or_init(|| Mutex::new(HttpProbe::load(count_unix).map_err(|e| format!("{e:#}"))));
    let guard = probe.lock().unwrap_or_else(PoisonError::into_inner);
    match &*guard {
        Ok(probe) => use_probe(probe),
        Err(message) => Err(anyhow::anyhow!("{message}")),
    }
}
