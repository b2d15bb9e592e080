//! Writes to clients go out in batches: the first write of a response waits once behind the
//! other tasks that are ready, so that responses finished in the same turn of the runtime are
//! written back to back. A client (or load generator) woken by the first is then still awake
//! for the rest, which saves the kernel a wake-up per response. Measured in bench/README.md.

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};

/// Waiting once behind the other ready tasks: the first poll is `Pending` with the task woken
/// at once (so it is queued after the others), the next ones `Ready` until `reset`.
#[derive(Debug, Default)]
pub struct Turn {
    waited: bool,
}

impl Turn {
    pub fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.waited {
            return Poll::Ready(());
        }
        self.waited = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// The next `poll_wait` waits again.
    pub fn reset(&mut self) {
        self.waited = false;
    }
}

/// An I/O stream whose writes are deferred once per batch (see the module doc).
pub struct BatchedWrites<I> {
    io: I,
    /// Waited once this batch; reset when a write went out.
    turn: Turn,
}

impl<I> BatchedWrites<I> {
    pub fn new(io: I) -> Self {
        Self {
            io,
            turn: Turn::default(),
        }
    }
}

impl<I: Read + Unpin> Read for BatchedWrites<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: Write + Unpin> BatchedWrites<I> {
    /// Runs `write` once this batch had its turn; a write that went out ends the batch.
    fn write_in_turn(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut I>, &mut Context<'_>) -> Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.turn.poll_wait(cx));
        let written = write(Pin::new(&mut this.io), cx);
        if written.is_ready() {
            this.turn.reset();
        }
        written
    }
}

impl<I: Write + Unpin> Write for BatchedWrites<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_in_turn(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.write_in_turn(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncReadExt;

    use super::*;

    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn each_batch_of_writes_waits_its_turn_once() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut io = BatchedWrites::new(TokioIo::new(near));
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);

        // First write of a batch: not written, and the task is woken to come back.
        assert!(Pin::new(&mut io).poll_write(&mut cx, b"ab").is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        // Its turn came: written.
        assert!(matches!(
            Pin::new(&mut io).poll_write(&mut cx, b"ab"),
            Poll::Ready(Ok(2))
        ));
        // The next response waits again, vectored writes too.
        let bufs = [std::io::IoSlice::new(b"c"), std::io::IoSlice::new(b"d")];
        assert!(Pin::new(&mut io)
            .poll_write_vectored(&mut cx, &bufs)
            .is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
        assert!(matches!(
            Pin::new(&mut io).poll_write_vectored(&mut cx, &bufs),
            Poll::Ready(Ok(1 | 2))
        ));
        drop(io);
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.unwrap();
        assert!(got == b"abcd" || got == b"abc", "{got:?}");
    }
}
