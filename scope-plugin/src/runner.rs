//! How one sample runs: on the blocking pool, under `catch_unwind` and a timeout, either
//! in a job of its own or, when the collector's last sample was quick, in one job shared
//! by every quick sample due at the same time.
//!
//! Sharing matters at idle: each blocking-pool job costs two thread wake-ups (the pool
//! thread, then the async worker), which on a small VM cost more than reading a procfs
//! file. The shared job keeps each sample's own timeout, counted from when that sample
//! starts, and a sample queued behind one that hangs is taken back and run alone, so a
//! hang still loses only its own collector's values.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::collector::{Collected, Collector, Context};

/// The outcome of one sample.
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

/// A sample that took less than this last time joins the shared job.
const QUICK_SAMPLE: Duration = Duration::from_millis(5);

/// A collector's state after a sample, the sample's result (`Err` is a panic message),
/// and how long the collector ran.
type Finished = (
    Box<dyn Any + Send>,
    Result<anyhow::Result<Collected>, String>,
    Duration,
);

/// One sample, ready to run on a blocking-pool thread.
struct Job {
    collector: &'static Collector,
    state: Box<dyn Any + Send>,
    context: Context,
}

impl Job {
    fn run(mut self) -> Finished {
        let started = Instant::now();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            (self.collector.collect)(&mut *self.state, &self.context)
        }))
        .map_err(|panic| panic_message(&*panic));
        (self.state, result, started.elapsed())
    }

    /// Runs the job in a blocking-pool job of its own.
    fn spawn_alone(self) -> oneshot::Receiver<Finished> {
        let (reply, finished) = oneshot::channel();
        tokio::task::spawn_blocking(move || {
            lower_thread_priority();
            // The sampler may have stopped waiting (shutdown): nothing to tell it then.
            let _ = reply.send(self.run());
        });
        finished
    }
}

/// The queue of the shared job for quick samples.
#[derive(Default)]
pub(crate) struct QuickJobs {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Queued>,
    /// Whether a job takes from `waiting` (or is about to).
    job_running: bool,
    /// The sample that job runs now, and since when.
    current: Option<(u64, Instant)>,
    /// Samples this job has finished, answered together when it ends: one wake-up of the
    /// async worker for all of them, not one each.
    done: Vec<(u64, oneshot::Sender<Finished>, Finished)>,
    /// Which job may take from `waiting`; a job that overran a sample's timeout is given
    /// up on (stuck in a collector), and stops when that collector returns.
    generation: u64,
    next_ticket: u64,
}

struct Queued {
    ticket: u64,
    job: Job,
    reply: oneshot::Sender<Finished>,
}

/// Where a queued sample is, seen from the collector waiting for it.
enum Place {
    /// Not started: taken out of the queue, to run alone.
    Waiting(Job),
    Running {
        since: Instant,
    },
    /// Finished, its answer not sent yet: handed over here instead.
    Done(Finished),
    /// Answered (or dropped at shutdown): the result is in the channel.
    Answered,
}

impl std::fmt::Debug for QuickJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let queue = self.lock();
        f.debug_struct("QuickJobs")
            .field("waiting", &queue.waiting.len())
            .field("job_running", &queue.job_running)
            .finish_non_exhaustive()
    }
}

impl QuickJobs {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job`; the first sample queued while no job runs starts one.
    async fn submit(self: &Arc<Self>, job: Job) -> (u64, oneshot::Receiver<Finished>) {
        let (reply, finished) = oneshot::channel();
        let (ticket, start) = {
            let mut queue = self.lock();
            let ticket = queue.next_ticket;
            queue.next_ticket += 1;
            queue.waiting.push_back(Queued { ticket, job, reply });
            let start = !queue.job_running;
            queue.job_running = true;
            (ticket, start.then_some(queue.generation))
        };
        if let Some(generation) = start {
            // Collectors on one interval wake together: let the others queue first, so
            // one job serves them all.
            tokio::task::yield_now().await;
            self.spawn_job(generation);
        }
        (ticket, finished)
    }

    fn spawn_job(self: &Arc<Self>, generation: u64) {
        let jobs = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            lower_thread_priority();
            jobs.work(generation);
        });
    }

    /// Runs queued samples one after another until none is left, then answers them all;
    /// or until this job is given up on.
    fn work(&self, generation: u64) {
        let mut next = self.next_for(generation, None);
        while let Some(Queued { ticket, job, reply }) = next {
            let finished = job.run();
            next = self.next_for(generation, Some((ticket, reply, finished)));
        }
    }

    /// Files the sample just finished and takes the next one, if this job still owns the
    /// queue and anything is left; else answers what it holds and returns `None`.
    fn next_for(
        &self,
        generation: u64,
        finished: Option<(u64, oneshot::Sender<Finished>, Finished)>,
    ) -> Option<Queued> {
        let mut queue = self.lock();
        if queue.generation != generation {
            drop(queue);
            // Given up on while it ran this sample: its collector waits for the answer
            // to take its state back.
            if let Some((_, reply, finished)) = finished {
                let _ = reply.send(finished);
            }
            return None;
        }
        queue.done.extend(finished);
        if let Some(next) = queue.waiting.pop_front() {
            queue.current = Some((next.ticket, Instant::now()));
            return Some(next);
        }
        queue.job_running = false;
        queue.current = None;
        let done = std::mem::take(&mut queue.done);
        drop(queue);
        answer(done);
        None
    }

    /// Where `ticket` is; one that has not started is taken out of the queue.
    fn place(&self, ticket: u64) -> Place {
        let mut queue = self.lock();
        if let Some(position) = queue.waiting.iter().position(|q| q.ticket == ticket)
            && let Some(queued) = queue.waiting.remove(position)
        {
            return Place::Waiting(queued.job);
        }
        if let Some(position) = queue.done.iter().position(|(done, ..)| *done == ticket) {
            return Place::Done(queue.done.swap_remove(position).2);
        }
        match queue.current {
            Some((current, since)) if current == ticket => Place::Running { since },
            _ => Place::Answered,
        }
    }

    /// Gives up on the job running `ticket` past its timeout: a new job takes the queue.
    fn give_up_on(self: &Arc<Self>, ticket: u64) {
        let generation = {
            let mut queue = self.lock();
            if queue.current.is_none_or(|(current, _)| current != ticket) {
                return;
            }
            queue.generation += 1;
            queue.current = None;
            // What the stuck job finished before is answered now, not when it returns.
            answer(std::mem::take(&mut queue.done));
            queue.job_running = !queue.waiting.is_empty();
            if !queue.job_running {
                return;
            }
            queue.generation
        };
        self.spawn_job(generation);
    }
}

/// Sends finished samples to the collectors waiting for them.
fn answer(done: Vec<(u64, oneshot::Sender<Finished>, Finished)>) {
    for (_, reply, finished) in done {
        // The collector may have stopped waiting (shutdown): nothing to tell it then.
        let _ = reply.send(finished);
    }
}

/// Runs one collector, keeping its state between samples.
pub(crate) struct Runner {
    pub(crate) collector: &'static Collector,
    state: Option<Box<dyn Any + Send>>,
    /// A sample that outlived its timeout; the next one waits for it.
    overdue: Option<oneshot::Receiver<Finished>>,
    /// How long the collector ran in its last finished sample.
    last_took: Option<Duration>,
    pub(crate) last_start: Option<Instant>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("collector", &self.collector.id)
            .field("overdue", &self.overdue.is_some())
            .field("last_took", &self.last_took)
            .finish_non_exhaustive()
    }
}

impl Runner {
    pub(crate) fn new(collector: &'static Collector) -> Self {
        Self {
            collector,
            state: None,
            overdue: None,
            last_took: None,
            last_start: None,
        }
    }

    /// Takes one sample: in the shared job if the last one was quick, else alone.
    pub(crate) async fn run(
        &mut self,
        context: Context,
        timeout: Duration,
        quick_jobs: &Arc<QuickJobs>,
    ) -> Outcome {
        if let Some(mut overdue) = self.overdue.take() {
            match overdue.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => {
                    // Still stuck: do not start another copy on the blocking pool.
                    self.overdue = Some(overdue);
                    return Outcome::TimedOut(timeout);
                }
                // The state may be half-updated after a panic: start afresh.
                Ok((state, Ok(_), _)) => self.state = Some(state),
                Ok((_, Err(_), _)) | Err(oneshot::error::TryRecvError::Closed) => {}
            }
        }
        let collector = self.collector;
        let job = Job {
            collector,
            state: self.state.take().unwrap_or_else(collector.new_state),
            context,
        };
        let (mut ticket, mut finished) = if self.last_took.is_some_and(|t| t < QUICK_SAMPLE) {
            let (ticket, finished) = quick_jobs.submit(job).await;
            (Some(ticket), finished)
        } else {
            (None, job.spawn_alone())
        };
        let mut deadline = tokio::time::Instant::now() + timeout;
        let received = loop {
            // Polls `finished` before the deadline: a result already in is taken.
            if let Ok(received) = tokio::time::timeout_at(deadline, &mut finished).await {
                break received;
            }
            let Some(queued) = ticket else {
                return self.overdue(finished, timeout);
            };
            match quick_jobs.place(queued) {
                // Queued behind a slow or stuck sample: run it alone, with a whole timeout.
                Place::Waiting(job) => {
                    ticket = None;
                    finished = job.spawn_alone();
                    deadline = tokio::time::Instant::now() + timeout;
                }
                // Its own timeout counts from its start, not from the queue.
                Place::Running { since } if since.elapsed() < timeout => {
                    deadline = tokio::time::Instant::from_std(since + timeout);
                }
                Place::Running { .. } => {
                    quick_jobs.give_up_on(queued);
                    return self.overdue(finished, timeout);
                }
                Place::Done(result) => break Ok(result),
                // Answered between the deadline and now: the result is in `finished`.
                Place::Answered => {}
            }
        };
        match received {
            Ok((state, result, took)) => {
                self.last_took = Some(took);
                match result {
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
                }
            }
            Err(_) => Outcome::Failed(String::from(
                "could not run: the blocking pool dropped the sample",
            )),
        }
    }

    fn overdue(&mut self, finished: oneshot::Receiver<Finished>, timeout: Duration) -> Outcome {
        self.overdue = Some(finished);
        // Slow once: alone next time, so it holds up no other collector.
        self.last_took = None;
        Outcome::TimedOut(timeout)
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
    use crate::collector::{Kind, Location};
    use crate::report::{MetricFormat, Topology};

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
            topology: Topology::Host,
            id,
            label: id,
            kind: Kind::Metric {
                format: MetricFormat::Number,
                min: None,
                max: None,
            },
            priority: None,
            interval: None,
            timeout: None,
            enabled_by_default: true,
            namespaced: true,
            description: "",
            location: Location {
                module_path: module_path!(),
                file: file!(),
                line: line!(),
            },
            new_state: calls,
            collect,
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

    /// Two collectors share a job and the first stalls in it for 2 s: the second still
    /// samples during the stall. With a `stall_limit` under 2 s, the first alone is
    /// reported as timed out, and gets its state back when it returns.
    async fn queued_behind_a_stall(test: usize, stall_limit: Duration, quick_limit: Duration) {
        let jobs = Arc::<QuickJobs>::default();
        let context = || Context::new("host", "/proc");
        let (mut stalls, mut quick) = (Runner::new(&STALLS_ONCE[test]), Runner::new(&QUICK[test]));
        // First samples run alone; both are quick, so the next ones share a job.
        assert!(collected(&stalls.run(context(), stall_limit, &jobs).await));
        assert!(collected(&quick.run(context(), quick_limit, &jobs).await));

        // Queued first (join! polls in order), the stalling sample holds the shared job.
        let (stalled, behind) = tokio::join!(
            stalls.run(context(), stall_limit, &jobs),
            quick.run(context(), quick_limit, &jobs)
        );
        assert!(collected(&behind), "queued behind it: {behind:?}");
        assert!(
            QUICK_RAN_DURING_STALL[test].load(Ordering::SeqCst),
            "the quick sample ran while the other was stuck"
        );
        if stall_limit > Duration::from_secs(2) {
            assert!(collected(&stalled), "slow, not stuck: {stalled:?}");
            return;
        }
        assert!(
            matches!(stalled, Outcome::TimedOut(t) if t == stall_limit),
            "{stalled:?}"
        );

        // Still stuck: reported at once, and the other collector keeps sampling.
        assert!(matches!(
            stalls.run(context(), stall_limit, &jobs).await,
            Outcome::TimedOut(_)
        ));
        assert!(collected(&quick.run(context(), quick_limit, &jobs).await));

        // Once it returns, it samples again with its state: calls 3 and 4 are quick
        // (a fresh state would make call 4 the second, and stall).
        while STALLING[test].load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(collected(&stalls.run(context(), stall_limit, &jobs).await));
        assert!(collected(&stalls.run(context(), stall_limit, &jobs).await));
        assert!(collected(&quick.run(context(), quick_limit, &jobs).await));
    }

    /// The waiting sample's timeout ends first (the other is slow, within its own): it is
    /// taken out of the queue and run alone, not after the slow one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_sample_queued_behind_a_slow_one_is_taken_back() {
        queued_behind_a_stall(0, Duration::from_secs(5), Duration::from_millis(100)).await;
    }

    /// The stuck sample's timeout ends first: the job is given up on, and a new one takes
    /// the queue (without it, the quick sample would wait 10 s, past the stall).
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_job_stuck_past_a_timeout_is_replaced() {
        queued_behind_a_stall(1, Duration::from_millis(100), Duration::from_secs(10)).await;
    }
}
