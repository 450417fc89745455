//! How one run of a collector goes: on the blocking pool, under `catch_unwind` and a
//! timeout, in a job of its own. A run that outlives its timeout is reported as timed out
//! and keeps the collector's state until it returns; until then the collector's next runs
//! are reported as timed out at once, without starting another copy. So a panic, an error or a
//! hang loses only that collector's values.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::collector::{Collected, Collector, Context};

/// The outcome of one run of a collector.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Values (possibly none this round).
    Collected(Collected),
    /// The collector returned an error or panicked.
    Failed(String),
    /// The collector did not finish within its timeout.
    TimedOut(Duration),
}

/// The longest error text kept from a collector, in bytes. Errors go to the log and onto
/// the host node in Scope; one that quotes a 100 KB counter would be copied into both.
pub(crate) const MAX_ERROR_TEXT: usize = 1000;

impl Outcome {
    /// A failure with `message`, cut to [`MAX_ERROR_TEXT`] bytes (at a character boundary).
    pub(crate) fn failed(message: String) -> Self {
        if message.len() <= MAX_ERROR_TEXT {
            return Self::Failed(message);
        }
        let mut end = MAX_ERROR_TEXT;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let left_out = message.len() - end;
        Self::Failed(format!("{}… ({left_out} more bytes)", &message[..end]))
    }
}

/// What a finished run hands back: the collector's state, the result (`Err` is a panic
/// message), and how long the collector ran.
struct Returned {
    state: Box<dyn Any + Send>,
    result: Result<anyhow::Result<Collected>, String>,
}

/// Runs one collector, keeping its state between samples.
pub(crate) struct Runner {
    pub(crate) collector: &'static Collector,
    state: Option<Box<dyn Any + Send>>,
    /// A run that outlived its timeout; the next one waits for it.
    overdue: Option<oneshot::Receiver<Returned>>,
    pub(crate) last_start: Option<Instant>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("collector", &self.collector.id)
            .field("overdue", &self.overdue.is_some())
            .finish_non_exhaustive()
    }
}

impl Runner {
    pub(crate) fn new(collector: &'static Collector) -> Self {
        Self {
            collector,
            state: None,
            overdue: None,
            last_start: None,
        }
    }

    /// Runs the collector once on the blocking pool, waiting at most `timeout` for it.
    pub(crate) async fn run(&mut self, context: Context, timeout: Duration) -> Outcome {
        if let Some(mut overdue) = self.overdue.take() {
            match overdue.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => {
                    // Still stuck: do not start another copy on the blocking pool.
                    self.overdue = Some(overdue);
                    return Outcome::TimedOut(timeout);
                }
                // The state may be half-updated after a panic: start afresh.
                Ok(Returned {
                    state,
                    result: Ok(_),
                    ..
                }) => self.state = Some(state),
                Ok(_) | Err(oneshot::error::TryRecvError::Closed) => {}
            }
        }
        let collector = self.collector;
        let mut state = self.state.take().unwrap_or_else(collector.new_state);
        let (reply, mut returned) = oneshot::channel();
        tokio::task::spawn_blocking(move || {
            lower_thread_priority();
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                (collector.collect)(&mut *state, &context)
            }))
            .map_err(|panic| panic_message(&*panic));
            // The sampler may have stopped waiting (shutdown): nothing to tell it then.
            let _ = reply.send(Returned { state, result });
        });
        match tokio::time::timeout(timeout, &mut returned).await {
            Ok(Ok(Returned { state, result })) => match result {
                Ok(Ok(collected)) => {
                    self.state = Some(state);
                    Outcome::Collected(collected)
                }
                Ok(Err(error)) => {
                    self.state = Some(state);
                    Outcome::failed(format!("{error:#}"))
                }
                // The state may be half-updated after a panic: start afresh.
                Err(panic) => Outcome::failed(format!("panicked: {panic}")),
            },
            Ok(Err(_)) => Outcome::Failed(String::from(
                "could not run: the blocking pool dropped the run",
            )),
            Err(_) => {
                self.overdue = Some(returned);
                Outcome::TimedOut(timeout)
            }
        }
    }
}

/// Lowers the calling thread's CPU priority (nice 10), once per thread.
///
/// Blocking-pool threads run only collectors and snapshot rebuilds: at a lower priority
/// they yield the CPU to the async workers answering `/report`, which matters on small
/// hosts where a big rebuild would otherwise share a core with a request.
pub(crate) fn lower_thread_priority() {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    LOWERED.with(|lowered| {
        if !lowered.replace(true) {
            // SAFETY: gettid and setpriority have no memory-safety preconditions; they
            // affect only this thread. A failure (no permission) leaves the priority as is.
            unsafe {
                let thread = libc::gettid();
                libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, 10);
            }
        }
    });
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        String::from("(no message)")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Per test (tests run in parallel): whether the stalling collector is asleep, and
    /// whether the quick one ran meanwhile.
    static STALLING: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];
    static QUICK_RAN_DURING_STALL: [AtomicBool; 2] =
        [AtomicBool::new(false), AtomicBool::new(false)];

    fn calls() -> Box<dyn Any + Send> {
        Box::new(0_u32)
    }

    /// Quick, except that its second call sleeps for 2 s.
    fn stalls_once<const TEST: usize>(
        state: &mut (dyn Any + Send),
        _: &Context,
    ) -> anyhow::Result<Collected> {
        let calls = state.downcast_mut::<u32>().expect("call counter");
        *calls += 1;
        if *calls == 2 {
            STALLING[TEST].store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(2));
            STALLING[TEST].store(false, Ordering::SeqCst);
        }
        Ok(Collected::NoSample)
    }

    fn quick<const TEST: usize>(
        _: &mut (dyn Any + Send),
        _: &Context,
    ) -> anyhow::Result<Collected> {
        if STALLING[TEST].load(Ordering::SeqCst) {
            QUICK_RAN_DURING_STALL[TEST].store(true, Ordering::SeqCst);
        }
        Ok(Collected::NoSample)
    }

    const fn collector(id: &'static str, collect: crate::collector::CollectFn) -> Collector {
        Collector {
            new_state: calls,
            ..Collector::for_tests(id, collect)
        }
    }

    static STALLS_ONCE: [Collector; 2] = [
        collector("stalls_once", stalls_once::<0>),
        collector("stalls_once", stalls_once::<1>),
    ];
    static QUICK: [Collector; 2] = [
        collector("quick", quick::<0>),
        collector("quick", quick::<1>),
    ];

    fn collected(outcome: &Outcome) -> bool {
        matches!(outcome, Outcome::Collected(Collected::NoSample))
    }

    /// A collector stuck past its timeout is reported as timed out, then at once while it
    /// stays stuck, without a second copy running; another collector samples throughout;
    /// once the stuck sample returns, the collector samples again with its state.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_stuck_sample_loses_only_its_own_values_and_keeps_its_state() {
        let test = 0;
        let limit = Duration::from_millis(100);
        let context = || Context::new("host", "/proc");
        let (mut stalls, mut quick) = (Runner::new(&STALLS_ONCE[test]), Runner::new(&QUICK[test]));
        assert!(collected(&stalls.run(context(), limit).await));
        assert!(collected(&quick.run(context(), limit).await));

        // The second call stalls for 2 s.
        let (stalled, beside) = tokio::join!(stalls.run(context(), limit), async {
            // Sample the other collector while the first is stuck.
            while !STALLING[test].load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            quick.run(context(), limit).await
        });
        assert!(
            matches!(stalled, Outcome::TimedOut(t) if t == limit),
            "{stalled:?}"
        );
        assert!(collected(&beside), "{beside:?}");
        assert!(
            QUICK_RAN_DURING_STALL[test].load(Ordering::SeqCst),
            "the other collector ran while this one was stuck"
        );

        // Still stuck: reported at once, no second copy (which would be call 3).
        let started = Instant::now();
        assert!(matches!(
            stalls.run(context(), limit).await,
            Outcome::TimedOut(_)
        ));
        assert!(started.elapsed() < limit, "reported without waiting");

        // Once it returns, it samples again with its state: calls 3 and 4 are quick
        // (a fresh state would make call 4 the second, and stall).
        while STALLING[test].load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(collected(&stalls.run(context(), limit).await));
        assert!(collected(&stalls.run(context(), limit).await));
    }

    /// A sample slower than usual but within its timeout is simply collected.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_slow_sample_within_its_timeout_is_collected() {
        let test = 1;
        let context = || Context::new("host", "/proc");
        let mut stalls = Runner::new(&STALLS_ONCE[test]);
        assert!(collected(
            &stalls.run(context(), Duration::from_secs(5)).await
        ));
        let slow = stalls.run(context(), Duration::from_secs(5)).await;
        assert!(collected(&slow), "slow, not stuck: {slow:?}");
    }
}
