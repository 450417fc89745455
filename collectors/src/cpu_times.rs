//! Per-CPU tick counters from `/proc/stat`, and shares of time between two samples.
//!
//! Hand-written rather than `procfs_core::KernelStats`: that type keeps the per-CPU lines
//! as an anonymous `Vec`, so when a CPU goes offline every later CPU shifts one index and
//! deltas would mix counters of different CPUs. Here CPUs are matched by name (`cpu3`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context as _;

use crate::shared_reading::SharedReading;

/// The tick counters of one CPU (guest time is already inside user and nice).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ticks {
    pub(crate) user: u64,
    pub(crate) nice: u64,
    pub(crate) system: u64,
    pub(crate) idle: u64,
    pub(crate) iowait: u64,
    pub(crate) irq: u64,
    pub(crate) softirq: u64,
    pub(crate) steal: u64,
}

impl Ticks {
    /// Per-field `self - earlier`, never below zero: the kernel's per-CPU iowait can
    /// decrease (see proc(5)), and a counter that went back counts as no time.
    fn since(&self, earlier: &Ticks) -> Ticks {
        Ticks {
            user: self.user.saturating_sub(earlier.user),
            nice: self.nice.saturating_sub(earlier.nice),
            system: self.system.saturating_sub(earlier.system),
            idle: self.idle.saturating_sub(earlier.idle),
            iowait: self.iowait.saturating_sub(earlier.iowait),
            irq: self.irq.saturating_sub(earlier.irq),
            softirq: self.softirq.saturating_sub(earlier.softirq),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }

    /// `self + other` per field, or `None` if a sum overflows u64. The counters come from
    /// the kernel (or a fixture, or a broken --path.procfs), and `+` wraps in release builds.
    fn checked_add(&self, other: &Ticks) -> Option<Ticks> {
        Some(Ticks {
            user: self.user.checked_add(other.user)?,
            nice: self.nice.checked_add(other.nice)?,
            system: self.system.checked_add(other.system)?,
            idle: self.idle.checked_add(other.idle)?,
            iowait: self.iowait.checked_add(other.iowait)?,
            irq: self.irq.checked_add(other.irq)?,
            softirq: self.softirq.checked_add(other.softirq)?,
            steal: self.steal.checked_add(other.steal)?,
        })
    }

    /// The sum of the fields, or `None` if it overflows u64.
    fn checked_total(&self) -> Option<u64> {
        [
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
        ]
        .into_iter()
        .try_fold(self.user, u64::checked_add)
    }
}

/// One reading of `/proc/stat`: the counters of every online CPU, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    cpus: BTreeMap<String, Ticks>,
}

impl CpuTimes {
    /// Reads `<procfs>/stat`.
    pub(crate) fn read(procfs: &Path) -> anyhow::Result<Self> {
        let path = procfs.join("stat");
        let file = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Self::parse(file).with_context(|| format!("cannot parse {}", path.display()))
    }

    /// Reads `<procfs>/stat`, or reuses a reading of it taken moments ago.
    ///
    /// The kernel builds /proc/stat on every read, counting every interrupt: it is the
    /// plugin's most expensive read, and the IO wait, idle and steal collectors all want
    /// it at the same tick. One reading serves the three.
    pub(crate) fn read_shared(procfs: &Path) -> anyhow::Result<Self> {
        static LAST: SharedReading<std::path::PathBuf, CpuTimes> = SharedReading::new();
        LAST.get(procfs.to_owned(), || Self::read(procfs))
    }

    /// Parses `/proc/stat` text. Uses the per-CPU lines; the aggregate `cpu` line only if
    /// there are none.
    pub(crate) fn parse(reader: impl Read) -> anyhow::Result<Self> {
        let mut cpus = BTreeMap::new();
        let mut aggregate = None;
        for line in BufReader::new(reader).lines() {
            let line = line?;
            let mut fields = line.split_ascii_whitespace();
            let Some(name) = fields.next().filter(|name| name.starts_with("cpu")) else {
                continue;
            };
            let mut next = || -> anyhow::Result<u64> {
                // Fields after the first four appeared in later kernels; absent means zero.
                fields.next().map_or(Ok(0), |f| {
                    f.parse()
                        .with_context(|| format!("bad counter {f:?} in {name}"))
                })
            };
            let ticks = Ticks {
                user: next()?,
                nice: next()?,
                system: next()?,
                idle: next()?,
                iowait: next()?,
                irq: next()?,
                softirq: next()?,
                steal: next()?,
            };
            if name == "cpu" {
                aggregate = Some(ticks);
            } else {
                cpus.insert(name.to_owned(), ticks);
            }
        }
        if cpus.is_empty() {
            let ticks = aggregate.context("no cpu lines")?;
            cpus.insert(String::from("cpu"), ticks);
        }
        Ok(Self { cpus })
    }

    /// Shares of CPU time from `earlier` to `self`, over the CPUs online in both. `None`
    /// if no time passed, or if the increases add up past u64 (no machine counts that many
    /// ticks in an interval: a counter was reset or the file is not the kernel's).
    pub(crate) fn shares_since(&self, earlier: &CpuTimes) -> Option<Shares> {
        let mut delta = Ticks::default();
        for (name, now) in &self.cpus {
            if let Some(before) = earlier.cpus.get(name) {
                delta = delta.checked_add(&now.since(before))?;
            }
        }
        let total = delta.checked_total()?;
        if total == 0 {
            return None;
        }
        // part <= total, but rounding of two huge u64s to f64 may still land a hair above.
        let percent = |part: u64| (part as f64 * 100.0 / total as f64).clamp(0.0, 100.0);
        Some(Shares {
            iowait: percent(delta.iowait),
            idle: percent(delta.idle),
            steal: percent(delta.steal),
        })
    }
}

/// Percentages of CPU time over an interval (each 0 to 100).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shares {
    pub(crate) iowait: f64,
    pub(crate) idle: f64,
    pub(crate) steal: f64,
}

/// The state of a collector that reports a share of CPU time: the previous reading.
#[derive(Debug, Default)]
pub(crate) struct CpuDelta {
    previous: Option<CpuTimes>,
}

impl CpuDelta {
    /// Reads `/proc/stat` and returns the shares since the previous call (`None` on the
    /// first call, or if no time passed).
    pub(crate) fn advance(&mut self, procfs: &Path) -> anyhow::Result<Option<Shares>> {
        let now = CpuTimes::read_shared(procfs)?;
        let shares = self
            .previous
            .as_ref()
            .and_then(|before| now.shares_since(before));
        self.previous = Some(now);
        Ok(shares)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> CpuTimes {
        CpuTimes::parse(text.as_bytes()).expect("fixture parses")
    }

    const BEFORE: &str = "cpu  300 0 100 1500 100 0 0 0 0 0\n\
                          cpu0 100 0 50 800 50 0 0 0 0 0\n\
                          cpu1 200 0 50 700 50 0 0 0 0 0\n\
                          intr 1 2 3\nctxt 5\n";

    #[test]
    fn shares_over_the_interval_not_since_boot() {
        // cpu0: +10 user +5 system +60 idle +25 iowait = 100 ticks
        // cpu1: +20 user +0 system +70 idle +10 iowait = 100 ticks
        let after = "cpu  330 0 105 1630 135 0 0 0 0 0\n\
                     cpu0 110 0 55 860 75 0 0 0 0 0\n\
                     cpu1 220 0 50 770 60 0 0 0 0 0\n";
        let shares = parse(after)
            .shares_since(&parse(BEFORE))
            .expect("time passed");
        assert_eq!(
            shares,
            Shares {
                iowait: 17.5,
                idle: 65.0,
                steal: 0.0
            }
        );
    }

    #[test]
    fn iowait_going_backwards_counts_as_zero_not_negative() {
        // cpu0's iowait drops by 10; its other fields move +100 in total.
        let after = "cpu  400 0 100 1590 140 0 0 0 0 0\n\
                     cpu0 150 0 50 850 40 0 0 0 0 0\n\
                     cpu1 250 0 50 740 100 0 0 0 0 0\n";
        // cpu0: +50 user +50 idle = 100 (iowait -10 → 0); cpu1: +50 user +40 idle +50 iowait = 140
        let shares = parse(after)
            .shares_since(&parse(BEFORE))
            .expect("time passed");
        assert_eq!(shares.iowait, 50.0 * 100.0 / 240.0);
        assert_eq!(shares.idle, 90.0 * 100.0 / 240.0);
        assert!((0.0..=100.0).contains(&shares.iowait));
    }

    #[test]
    fn a_cpu_going_offline_does_not_mix_counters() {
        // cpu0 went offline: only cpu1 is compared, by name (an index would compare cpu1 to cpu0).
        let after = "cpu  220 0 60 770 80 0 0 0 0 0\n\
                     cpu1 220 0 60 770 80 0 0 0 0 0\n";
        let shares = parse(after)
            .shares_since(&parse(BEFORE))
            .expect("time passed");
        // cpu1: +20 user +10 system +70 idle +30 iowait = 130
        assert_eq!(shares.iowait, 30.0 * 100.0 / 130.0);
        assert_eq!(shares.idle, 70.0 * 100.0 / 130.0);
    }

    #[test]
    fn a_cpu_coming_online_is_counted_from_its_second_sample() {
        let after = "cpu0 110 0 50 880 60 0 0 0 0 0\n\
                     cpu1 210 0 50 790 50 0 0 0 0 0\n\
                     cpu2 5000 0 0 0 9000 0 0 0 0 0\n";
        let shares = parse(after)
            .shares_since(&parse(BEFORE))
            .expect("time passed");
        // cpu0: +10 user +80 idle +10 iowait; cpu1: +10 user +90 idle; cpu2 ignored.
        assert_eq!(shares.iowait, 5.0);
        assert_eq!(shares.idle, 85.0);
    }

    #[test]
    fn steal_and_old_kernels() {
        let before = "cpu0 100 0 0 100\n";
        let after = "cpu0 150 0 0 150\n";
        let shares = parse(after)
            .shares_since(&parse(before))
            .expect("time passed");
        assert_eq!(
            shares,
            Shares {
                iowait: 0.0,
                idle: 50.0,
                steal: 0.0
            }
        );
        let before = "cpu0 0 0 0 0 0 0 0 0\n";
        let after = "cpu0 10 0 0 60 10 0 0 20 0 0\n";
        let shares = parse(after)
            .shares_since(&parse(before))
            .expect("time passed");
        assert_eq!(
            shares,
            Shares {
                iowait: 10.0,
                idle: 60.0,
                steal: 20.0
            }
        );
    }

    #[test]
    fn no_elapsed_time_gives_no_sample() {
        assert_eq!(parse(BEFORE).shares_since(&parse(BEFORE)), None);
    }

    #[test]
    fn counters_adding_up_past_u64_give_no_sample() {
        let before = "cpu0 0 0 0 0 0 0 0 0\n";
        let after = format!("cpu0 0 0 0 {} {} 0 0 0\n", u64::MAX, u64::MAX);
        assert_eq!(parse(&after).shares_since(&parse(before)), None);
    }

    #[test]
    fn a_counter_jumping_by_2_pow_63_gives_shares_within_0_and_100() {
        let before = "cpu0 100 0 50 800 50 0 0 0\ncpu1 100 0 50 800 50 0 0 0\n";
        let after = format!(
            "cpu0 110 0 50 890 50 0 0 0\ncpu1 100 0 50 {} 50 0 0 0\n",
            800 + (1_u64 << 63)
        );
        let shares = parse(&after)
            .shares_since(&parse(before))
            .expect("time passed");
        for share in [shares.iowait, shares.idle, shares.steal] {
            assert!((0.0..=100.0).contains(&share), "{shares:?}");
        }
    }

    proptest::proptest! {
        /// Whatever the counters do between two readings (wrap, jump, go back, saturate),
        /// every share is a number from 0 to 100 and they add up to at most 100.
        #[test]
        fn shares_stay_within_0_and_100(
            before in proptest::collection::vec(proptest::array::uniform8(proptest::num::u64::ANY), 1..4),
            after in proptest::collection::vec(proptest::array::uniform8(proptest::num::u64::ANY), 1..4),
        ) {
            let text = |cpus: &[[u64; 8]]| -> String {
                cpus.iter()
                    .enumerate()
                    .map(|(i, t)| format!("cpu{i} {} {} {} {} {} {} {} {}\n", t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]))
                    .collect()
            };
            if let Some(shares) = parse(&text(&after)).shares_since(&parse(&text(&before))) {
                for share in [shares.iowait, shares.idle, shares.steal] {
                    proptest::prop_assert!((0.0..=100.0).contains(&share), "{:?}", shares);
                }
                proptest::prop_assert!(shares.iowait + shares.idle + shares.steal <= 100.0 + 1e-9);
            }
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(CpuTimes::parse("cpu0 1 x 3 4\n".as_bytes()).is_err());
        assert!(CpuTimes::parse("intr 1\n".as_bytes()).is_err());
    }
}
