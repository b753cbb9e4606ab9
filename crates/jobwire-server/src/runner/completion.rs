//! [`to_completion`]: a future that finishes even when whoever awaits it goes away.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Wraps `future` so that it runs to the end even if the caller stops awaiting it (an
/// HTTP request whose client went away is dropped mid-await): dropped unfinished, it is
/// spawned to finish on its own. A submit or a cancel cut halfway would otherwise leave
/// a job stored as running with no handler, or cancelled in the store but running here.
///
/// Cheaper than spawning every call (a task and a cross-thread wake-up each, a fifth of
/// a submit's cost with the memory store): one allocation unless the caller leaves.
pub(super) fn to_completion<F>(future: F) -> Completion<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Completion {
        future: Some(Box::pin(future)),
    }
}

/// See [`to_completion`].
pub(super) struct Completion<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// `None` once it has finished.
    future: Option<Pin<Box<F>>>,
}

impl<F> Future for Completion<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Polled again after it finished: a caller's bug; it never completes twice.
        let Some(future) = self.future.as_mut() else {
            return Poll::Pending;
        };
        let output = std::task::ready!(future.as_mut().poll(cx));
        self.future = None;
        Poll::Ready(output)
    }
}

impl<F> Drop for Completion<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let Some(future) = self.future.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(future);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn finishes_when_awaited_and_when_abandoned() {
        assert_eq!(to_completion(async { 7 }).await, 7);

        let finished = Arc::new(AtomicBool::new(false));
        let flag = finished.clone();
        let slow = to_completion(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.store(true, Ordering::SeqCst);
        });
        // The caller gives up after 10 ms; the work goes on.
        assert!(tokio::time::timeout(Duration::from_millis(10), slow)
            .await
            .is_err());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(finished.load(Ordering::SeqCst));
    }
}
