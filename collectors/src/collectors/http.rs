//! HTTP requests received and responses sent per second, per process, from eBPF, and
//! summed per container and pod (`rollup = "sum"`). An exited process's counts go to its
//! parent (see `Lineage`), so that forking servers and their containers count exactly.
//!
//! Both metrics read the same in-kernel counters (see bpf/http.bpf.c); each keeps its
//! previous reading and divides the increase by the time between the two runs' starts
//! (`Context::started`), which is also the time between the samples' dates. The first
//! sample loads the program (aya parses the kernel BTF), hence the long timeout.

use std::collections::HashMap;
use std::time::Instant;

use scope_plugin::prelude::*;

use crate::http_bpf::{ProcessCounts, with_probe};

/// The previous reading of the counters.
#[derive(Debug, Default)]
pub(crate) struct Previous {
    reading: Option<(Instant, HashMap<u32, ProcessCounts>)>,
}

/// One interval: its length in seconds, and per process the counters at its end and start.
struct Interval {
    seconds: f64,
    processes: Vec<(u32, ProcessCounts, ProcessCounts)>,
}

impl Interval {
    /// Per process and status code: (pid, code, responses per second over the interval,
    /// responses in all since the process was first seen).
    fn responses(self) -> impl Iterator<Item = (u32, u16, f64, u64)> {
        let seconds = self.seconds;
        self.processes
            .into_iter()
            .flat_map(move |(pid, now, before)| {
                now.responses.into_iter().map(move |(code, total)| {
                    let earlier = before.responses.get(&code).copied().unwrap_or(0);
                    (
                        pid,
                        code,
                        total.saturating_sub(earlier) as f64 / seconds,
                        total,
                    )
                })
            })
    }
}

/// Responses per second, keyed by process and status code.
type ResponseRates = Vec<((Pid, u16), f64)>;

/// A row per process and status code: [per second, total].
type CodeRows = Vec<((Pid, u16), [String; 2])>;

fn count_unix(ctx: &Context) -> bool {
    ctx.option("http.unix")
        .is_some_and(|v| matches!(v, "1" | "true" | "yes"))
}

impl Previous {
    /// Reads the counters; returns the seconds since the previous reading (`None` on the
    /// first), and each process's counters now and at the previous reading. A process that
    /// was not there, or whose pid now belongs to a new process, counts from zero.
    fn advance(&mut self, ctx: &Context) -> anyhow::Result<Option<Interval>> {
        let now = ctx.started();
        let current = with_probe(count_unix(ctx), |probe| {
            // Paused (the `pause_http` control): nothing is counted, so no rates; the
            // first reading after resuming starts afresh.
            if probe.paused() {
                Ok(None)
            } else {
                probe.read_shared().map(Some)
            }
        })?;
        let Some(current) = current else {
            self.reading = None;
            return Ok(None);
        };
        let previous = self.reading.replace((now, current.clone()));
        let Some((then, before)) = previous else {
            return Ok(None);
        };
        let seconds = now.duration_since(then).as_secs_f64();
        if seconds <= 0.0 {
            return Ok(None);
        }
        let pairs = current
            .into_iter()
            .map(|(pid, counts)| {
                let earlier = before
                    .get(&pid)
                    .filter(|earlier| earlier.start_time == counts.start_time)
                    .cloned()
                    .unwrap_or_default();
                (pid, counts, earlier)
            })
            .collect();
        Ok(Some(Interval {
            seconds,
            processes: pairs,
        }))
    }
}

/// HTTP requests received per second, from every read/recv on TCP sockets.
#[scope_metric(
    topology = "process",
    id = "http_requests",
    label = "HTTP requests/s",
    min = 0.0,
    priority = 4.0,
    rollup = "sum",
    timeout = "10s"
)]
fn http_requests(
    previous: &mut Previous,
    ctx: &Context,
) -> anyhow::Result<Option<Vec<(Pid, f64)>>> {
    let Some(Interval {
        seconds,
        processes: pairs,
    }) = previous.advance(ctx)?
    else {
        return Ok(None);
    };
    Ok(Some(
        pairs
            .into_iter()
            .map(|(pid, now, before)| {
                (
                    Pid(pid),
                    now.requests.saturating_sub(before.requests) as f64 / seconds,
                )
            })
            .collect(),
    ))
}

/// HTTP responses sent per second, one series per status code.
#[scope_metric(
    topology = "process",
    id = "http_responses",
    label = "HTTP {} responses/s",
    min = 0.0,
    priority = 4.1,
    rollup = "sum",
    timeout = "10s"
)]
fn http_responses(previous: &mut Previous, ctx: &Context) -> anyhow::Result<Option<ResponseRates>> {
    Ok(previous.advance(ctx)?.map(|interval| {
        interval
            .responses()
            .map(|(pid, code, rate, _)| ((Pid(pid), code), rate))
            .collect()
    }))
}

/// HTTP responses by status code: per second over the last interval, and in all since the
/// process was first seen (its exited children's included).
#[scope_table(
    topology = "process",
    id = "http_codes",
    label = "HTTP responses by status",
    columns = [("per_second", "Per second", "number"), ("total", "Total", "number")],
    timeout = "10s"
)]
fn http_codes(previous: &mut Previous, ctx: &Context) -> anyhow::Result<Option<CodeRows>> {
    Ok(previous.advance(ctx)?.map(|interval| {
        interval
            .responses()
            .map(|(pid, code, rate, total)| {
                ((Pid(pid), code), [format!("{rate:.2}"), total.to_string()])
            })
            .collect()
    }))
}
