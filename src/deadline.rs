//! Deadlines from user-given durations, without overflow.
//!
//! `--timeout 18446744073709551615` is a valid duration (`parse_duration` saturates), but
//! `Instant::now() + timeout` panics ("overflow when adding duration to instant"). Every deadline
//! in the crate is made here, so no flag value can panic the binary.

use std::time::Duration;

use tokio::time::Instant;

/// Far enough away to never happen, near enough to be representable on every platform. tokio
/// caps its own `sleep` at the same 30 years (tokio/src/time/mod.rs `safe_delay`: "1000 years
/// overflows on macOS, 100 years overflows on FreeBSD").
pub const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `now + timeout`, or [`FAR_FUTURE`] from now when that is not representable.
pub fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeouts_saturate_instead_of_panicking() {
        let before = Instant::now();
        let far = deadline_after(Duration::MAX);
        assert!(far >= before + Duration::from_secs(86_400 * 365));
        let u64_secs = deadline_after(Duration::from_secs(u64::MAX));
        assert!(u64_secs > before);
    }

    #[test]
    fn ordinary_timeouts_are_exact() {
        let before = Instant::now();
        let d = deadline_after(Duration::from_secs(5));
        let after = Instant::now();
        assert!(d >= before + Duration::from_secs(5) && d <= after + Duration::from_secs(5));
    }
}
