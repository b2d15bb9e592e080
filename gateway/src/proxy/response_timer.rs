//! The upstream response-header deadline, with one timer per client connection that each
//! request moves forward, instead of a timer registered in the runtime's timer wheel and
//! removed again for every request (`tokio::time::timeout`). Moving a registered timer's
//! deadline later is one atomic update; the wheel sees it only when the old deadline comes.
//! Requests that run at the same time on one connection (HTTP/2) use their own timer while
//! the connection's is out.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::per_connection::PerConnection;

/// The deadline passed before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

/// One per connection (see `ConnInfo`); a clone starts without a timer.
#[derive(Default, Clone, Debug)]
pub struct ResponseTimer(PerConnection<Option<Pin<Box<Sleep>>>>);

impl ResponseTimer {
    /// `fut`'s output, or `TimedOut` if it takes longer than `limit`. `fut` is pinned by the
    /// caller: moving a future copies all of it (the pool's is about a kilobyte), and at
    /// hundreds of connections every copy lands on memory no longer in cache.
    pub async fn run<F: Future>(
        &self,
        limit: Duration,
        mut fut: Pin<&mut F>,
    ) -> Result<F::Output, TimedOut> {
        let deadline = Instant::now() + limit;
        let taken = self.0.lock().take();
        let mut sleep = match taken {
            Some(mut sleep) => {
                sleep.as_mut().reset(deadline);
                sleep
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        // The waker the timer was last polled with: while the task's waker stays the same, the
        // timer holds it, and only whether it fired is left to ask.
        let mut armed: Option<Waker> = None;
        let result = poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(out));
            }
            if armed.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                return if sleep.is_elapsed() {
                    Poll::Ready(Err(TimedOut))
                } else {
                    Poll::Pending
                };
            }
            armed = Some(cx.waker().clone());
            sleep.as_mut().poll(cx).map(|()| Err(TimedOut))
        })
        .await;
        // Back for the connection's next request (dropped instead if this one was dropped).
        *self.0.lock() = Some(sleep);
        result
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn each_run_gets_its_own_full_limit() {
        let timer = ResponseTimer::default();
        let limit = Duration::from_secs(10);
        let quick = pin!(tokio::time::sleep(Duration::from_secs(9)));
        assert_eq!(timer.run(limit, quick).await, Ok(()));
        // Starts 9 s after the first: the deadline moved with it, so 9 s more is in time...
        let again = pin!(tokio::time::sleep(Duration::from_secs(9)));
        assert_eq!(timer.run(limit, again).await, Ok(()));
        // ...and a run longer than the limit times out at its own deadline.
        let started = Instant::now();
        let slow = pin!(tokio::time::sleep(Duration::from_secs(60)));
        assert_eq!(timer.run(limit, slow).await, Err(TimedOut));
        assert_eq!(started.elapsed(), limit);
        // A timer that fired is armed again.
        assert_eq!(timer.run(limit, pin!(std::future::ready(7))).await, Ok(7));
        let slow = pin!(tokio::time::sleep(Duration::from_secs(60)));
        assert_eq!(timer.run(limit, slow).await, Err(TimedOut));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_runs_each_keep_their_deadline() {
        let timer = ResponseTimer::default();
        let limit = Duration::from_secs(10);
        let (short, long) = (
            pin!(tokio::time::sleep(Duration::from_secs(5))),
            pin!(tokio::time::sleep(Duration::from_secs(60))),
        );
        let (a, b) = tokio::join!(timer.run(limit, short), timer.run(limit, long));
        assert_eq!((a, b), (Ok(()), Err(TimedOut)));
    }
}
