//! One reading of an expensive source shared by collectors that sample it at the same tick
//! (the three CPU shares read /proc/stat; the two HTTP rates read the BPF map).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Readings younger than this are reused: collectors on one interval run within a few
/// milliseconds of each other, while the interval is a second or more.
const FRESH: Duration = Duration::from_millis(100);

/// The last reading of a source, with what it was read from.
#[derive(Debug)]
pub(crate) struct SharedReading<K, T> {
    last: Mutex<Option<(Instant, K, T)>>,
}

impl<K: PartialEq, T: Clone> SharedReading<K, T> {
    pub(crate) const fn new() -> Self {
        Self {
            last: Mutex::new(None),
        }
    }

    /// The reading of `source` taken moments ago, or a new one from `read`.
    pub(crate) fn get(
        &self,
        source: K,
        read: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, from, value)) = &*last
            && at.elapsed() < FRESH
            && *from == source
        {
            return Ok(value.clone());
        }
        let value = read()?;
        *last = Some((Instant::now(), source, value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_a_fresh_reading_of_the_same_source_only() {
        let shared = SharedReading::new();
        let mut reads = 0;
        for source in ["a", "a", "b", "b"] {
            shared
                .get(source, || {
                    reads += 1;
                    Ok(reads)
                })
                .expect("read");
        }
        assert_eq!(reads, 2);
    }
}
