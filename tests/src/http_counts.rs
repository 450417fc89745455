//! Exact HTTP counts from the collectors plugin's `/report`, polled like the probe: the
//! number of requests in a stretch of time is Σ rate × (time between samples).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use scope_plugin_check::{ProbeClient, judge, parse_rfc3339_nanos};

/// The collectors plugin's requests series.
pub const REQUESTS: &str = "scope-collectors_http_requests";
/// Its 200-responses series.
pub const OK: &str = "scope-collectors_http_responses_200";
/// Its 404-responses series.
pub const NOT_FOUND: &str = "scope-collectors_http_responses_404";

/// True if this process may load BPF; otherwise says why (and fails under CI, which must
/// run these tests for real).
pub fn bpf_allowed() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    crate::cannot_run_here(
        "eBPF tests need root (or CAP_BPF and CAP_PERFMON); not running them as this user",
    );
    false
}

/// Waits until every HTTP collector of the plugin at `socket` (the two rates and the table)
/// has sampled once with success: counting starts once the program is attached.
pub fn wait_for_http_collectors(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = crate::raw_request(
            socket,
            "GET /collectors HTTP/1.1\r\nHost: plugin\r\nConnection: close\r\n\r\n",
        )
        .ok()
        .and_then(|(_, body)| serde_json::from_slice::<serde_json::Value>(&body).ok());
        let http: Vec<serde_json::Value> = stats
            .and_then(|s| s.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s["id"].as_str().is_some_and(|id| id.contains("_http_")))
            .collect();
        let failing: Vec<_> = http.iter().filter_map(|s| s["error"].as_str()).collect();
        assert!(failing.is_empty(), "HTTP collectors failing: {failing:?}");
        if http.len() == 3 && http.iter().all(|s| s["successes"].as_u64() >= Some(1)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the HTTP collectors never sampled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Samples of one node's series, collected by polling /report like the probe.
#[derive(Debug)]
pub struct Watcher {
    client: ProbeClient,
    runtime: tokio::runtime::Runtime,
    host_id: String,
    /// The topology's key in the report, and the node's id.
    topology: &'static str,
    node: String,
    /// series → (date in ns → value)
    pub samples: BTreeMap<String, BTreeMap<i128, f64>>,
}

impl Watcher {
    /// Watches process `pid` in the reports of the plugin at `socket`, whose host id is
    /// `host_id`.
    pub fn new(socket: &Path, host_id: &str, pid: u32) -> Self {
        Self::node(socket, host_id, "Process", format!("{host_id};{pid}"))
    }

    /// Watches the node `node` of `topology` (its key in the report: `"Container"`).
    pub fn node(socket: &Path, host_id: &str, topology: &'static str, node: String) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Self {
            client: ProbeClient::new(socket),
            runtime,
            host_id: host_id.to_owned(),
            topology,
            node,
            samples: BTreeMap::new(),
        }
    }

    /// One poll: checks the report like the probe and records the process's samples.
    pub fn poll(&mut self) {
        let poll = self
            .runtime
            .block_on(self.client.get_report())
            .expect("plugin answers");
        let verdict = judge(&poll.body, "scope-collectors");
        assert!(verdict.passes(), "{:#?}", verdict.findings);
        let report: serde_json::Value = serde_json::from_slice(&poll.body).expect("json");
        let host_node = &report["Host"]["nodes"][format!("{};<host>", self.host_id)]["latest"];
        for key in [
            "scope-collectors_failing_http_requests",
            "scope-collectors_failing_http_responses",
        ] {
            assert!(
                host_node[key].is_null(),
                "collector failing: {}",
                host_node[key]
            );
        }
        let metrics = &report[self.topology]["nodes"][&self.node]["metrics"];
        for (series, metric) in metrics.as_object().into_iter().flatten() {
            let sample = &metric["samples"][0];
            let date = sample["date"]
                .as_str()
                .and_then(parse_rfc3339_nanos)
                .expect("sample date");
            let value = sample["value"].as_f64().expect("value");
            assert!(value >= 0.0, "rates are never negative");
            self.samples
                .entry(series.clone())
                .or_default()
                .insert(date, value);
        }
    }

    /// Polls until `series` has `n` samples after `after`.
    fn wait_for_samples(&mut self, series: &str, after: i128, n: usize) -> i128 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.poll();
            let later: Vec<i128> = self
                .samples
                .get(series)
                .map(|s| s.range(after + 1..).map(|(d, _)| *d).collect())
                .unwrap_or_default();
            if later.len() >= n {
                return later[n - 1];
            }
            assert!(
                Instant::now() < deadline,
                "no {n} samples of {series} for {} (have {:?})",
                self.node,
                self.samples.keys()
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// The last sample date of `series` once it reads zero (a quiet interval).
    fn quiet(&mut self, series: &str) -> i128 {
        let mut after = 0;
        loop {
            let date = self.wait_for_samples(series, after, 1);
            if self.samples[series][&date] == 0.0 {
                return date;
            }
            after = date;
        }
    }

    /// Σ rate × Δt over the samples after `since`, once two quiet samples show the
    /// traffic is over: the number of events in that time.
    fn count_since(&mut self, series: &str, since: i128) -> u64 {
        let mut after = since;
        let mut quiet = 0;
        while quiet < 2 {
            after = self.wait_for_samples(series, after, 1);
            quiet = if self.samples[series][&after] == 0.0 {
                quiet + 1
            } else {
                0
            };
        }
        let samples = &self.samples[series];
        let dates: Vec<i128> = samples.range(since..).map(|(d, _)| *d).collect();
        let total: f64 = dates
            .windows(2)
            .map(|w| samples[&w[1]] * (w[1] - w[0]) as f64 / 1e9)
            .sum();
        let rounded = total.round();
        assert!(
            (total - rounded).abs() < 0.2,
            "{series}: {total} is not close to a whole count"
        );
        rounded as u64
    }

    /// A series that appears mid-run: its first sample covers the interval before it.
    fn first_interval(&self, series: &str) -> u64 {
        let samples = &self.samples[series];
        let (&first_date, &first_rate) = samples.iter().next().expect("sample");
        // The other series of the same collector share its rounds: take the previous
        // round's date.
        let previous = self
            .samples
            .iter()
            .filter(|(name, _)| {
                name.starts_with("scope-collectors_http_responses_") && name.as_str() != series
            })
            .flat_map(|(_, s)| s.range(..first_date).map(|(d, _)| *d))
            .max()
            .expect("an earlier round of the responses collector");
        (first_rate * (first_date - previous) as f64 / 1e9).round() as u64
    }

    /// After a warm-up request (so the process has counters), waits for a quiet interval,
    /// runs `traffic`, and returns the counted (requests, 200s, 404s).
    pub fn measure(&mut self, traffic: impl FnOnce()) -> (u64, u64, u64) {
        measure_each(std::slice::from_mut(self), traffic)[0]
    }

    /// Whether `series` has moved since `since` and then read zero twice.
    fn settled(&self, series: &str, since: i128) -> bool {
        let Some(samples) = self.samples.get(series) else {
            return false;
        };
        let after: Vec<f64> = samples.range(since + 1..).map(|(_, v)| *v).collect();
        after.iter().any(|&v| v > 0.0) && after.ends_with(&[0.0, 0.0])
    }

    /// The counts since `since` (the quiet samples before the traffic).
    fn counts_since(&mut self, (since_requests, since_ok): (i128, i128)) -> (u64, u64, u64) {
        let requests = self.count_since(REQUESTS, since_requests);
        let oks = self.count_since(OK, since_ok);
        let not_found = if self.samples.contains_key(NOT_FOUND) {
            let since = *self.samples[NOT_FOUND].keys().next().expect("sample");
            // The 404 series starts with the traffic: count from the interval before it.
            self.count_since(NOT_FOUND, since - 1) + self.first_interval(NOT_FOUND)
        } else {
            0
        };
        (requests, oks, not_found)
    }
}

/// As [`Watcher::measure`], for several nodes seeing one stretch of traffic (a container
/// and its process, two containers): (requests, 200s, 404s) for each.
pub fn measure_each(watchers: &mut [Watcher], traffic: impl FnOnce()) -> Vec<(u64, u64, u64)> {
    let quiet: Vec<(i128, i128)> = watchers
        .iter_mut()
        .map(|watcher| (watcher.quiet(REQUESTS), watcher.quiet(OK)))
        .collect();
    traffic();
    // A round's rates show in the report only until the next round: every watcher polls
    // through the same rounds, until each has seen its traffic end.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !watchers
        .iter()
        .zip(&quiet)
        .all(|(watcher, &(since, _))| watcher.settled(REQUESTS, since))
    {
        assert!(Instant::now() < deadline, "the traffic never settled");
        for watcher in watchers.iter_mut() {
            watcher.poll();
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    watchers
        .iter_mut()
        .zip(quiet)
        .map(|(watcher, since)| watcher.counts_since(since))
        .collect()
}

/// Sends `request` and reads until `responses` bodies of `hello\n` have come back.
pub fn exchange(stream: &mut (impl Read + Write), request: &[u8], responses: usize) {
    stream.write_all(request).expect("send");
    let mut seen = Vec::new();
    let mut buf = [0_u8; 4096];
    while count(&seen, b"hello\n") < responses {
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "server closed early");
        seen.extend_from_slice(&buf[..n]);
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// A keep-alive `GET path` request.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}
