//! Deadlines from user-given durations, without overflow, and work that may block forever
//! bounded in time.
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

/// Runs `f` on a plain thread named `name`, inside this runtime's context, and waits at most
/// `limit` for it; `None` when it did not finish in time (or the thread could not be started).
///
/// The thread is detached and left to end with the process: not `spawn_blocking`, which the
/// runtime waits for at shutdown, so work stuck in a call that never returns (an exec plugin
/// waiting for a login, a `read` on a hung network mount) cannot hold the binary past `limit`.
pub async fn on_thread_within<T: Send + 'static>(
    name: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _entered = handle.enter();
            let _ = tx.send(f());
        })
        .ok()?;
    tokio::time::timeout(limit, rx).await.ok()?.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_on_the_thread_is_returned_when_it_finishes_in_time() {
        assert_eq!(
            on_thread_within("t", Duration::from_secs(60), || 42).await,
            Some(42)
        );
    }

    #[tokio::test]
    async fn work_that_never_finishes_is_given_up_at_the_limit() {
        let (_hold, wait) = std::sync::mpsc::channel::<()>();
        let never = move || wait.recv().is_ok();
        assert_eq!(
            on_thread_within("t", Duration::from_millis(50), never).await,
            None
        );
    }

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
