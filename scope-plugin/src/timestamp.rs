//! Timestamps in the only form Scope's decoder accepts safely.
//!
//! Scope decodes every timestamp with Go's `time.Time.UnmarshalJSON`; a bad one inside a
//! node can silently corrupt the rest of the report (docs/protocol.md §3.1). A [`Timestamp`] is
//! always UTC, so it always serialises as RFC 3339 with a `Z` and at most 9 fractional
//! digits.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time, in UTC, with nanosecond precision.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

/// A [`SystemTime`] outside what RFC 3339 can write (before 1970 or after 9999).
#[derive(Debug, thiserror::Error)]
#[error("time {0:?} cannot be written as an RFC 3339 timestamp (years 1970 to 9999 only)")]
pub struct TimestampRangeError(SystemTime);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self(OffsetDateTime::now_utc())
    }

    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(self) -> i128 {
        self.0.unix_timestamp_nanos()
    }

    /// The time `duration` later.
    pub fn saturating_add(self, duration: Duration) -> Self {
        Self(
            self.0
                .saturating_add(duration.try_into().unwrap_or(time::Duration::MAX)),
        )
    }

    fn write_rfc3339(self) -> String {
        // Formatting only fails for years past 9999, which `TryFrom<SystemTime>` rejects
        // and `now()` cannot produce.
        self.0
            .format(&Rfc3339)
            .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
    }
}

impl TryFrom<SystemTime> for Timestamp {
    type Error = TimestampRangeError;

    fn try_from(value: SystemTime) -> Result<Self, Self::Error> {
        let since_epoch = value
            .duration_since(UNIX_EPOCH)
            .map_err(|_| TimestampRangeError(value))?;
        let nanos =
            i128::try_from(since_epoch.as_nanos()).map_err(|_| TimestampRangeError(value))?;
        let at = OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .map_err(|_| TimestampRangeError(value))?;
        if at.year() > 9999 {
            return Err(TimestampRangeError(value));
        }
        Ok(Self(at))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.write_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.write_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_with_z_and_at_most_nine_fraction_digits() {
        let whole =
            Timestamp::try_from(UNIX_EPOCH + Duration::from_secs(1_714_564_800)).expect("in range");
        assert_eq!(whole.to_string(), "2024-05-01T12:00:00Z");
        let nanos = Timestamp::try_from(UNIX_EPOCH + Duration::new(1_714_564_800, 123_456_789))
            .expect("in range");
        assert_eq!(nanos.to_string(), "2024-05-01T12:00:00.123456789Z");
        let half = Timestamp::try_from(UNIX_EPOCH + Duration::new(1_714_564_800, 500_000_000))
            .expect("in range");
        assert_eq!(
            serde_json::to_string(&half).expect("serialises"),
            "\"2024-05-01T12:00:00.5Z\""
        );
    }

    #[test]
    fn out_of_range_times_are_rejected() {
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        assert!(Timestamp::try_from(before_epoch).is_err());
        let far_future = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert!(Timestamp::try_from(far_future).is_err());
    }

    #[test]
    fn now_is_utc() {
        assert!(Timestamp::now().to_string().ends_with('Z'));
    }
}
