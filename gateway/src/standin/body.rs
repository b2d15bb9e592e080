//! Stand-in response bodies: small fixed ones, and a large generated stream that can be paced
//! (for download and long-lived-stream tests) without holding it in memory.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

const CHUNK: usize = 64 * 1024;

pub enum StandinBody {
    Full(Option<Bytes>),
    Stream {
        remaining: u64,
        chunk: Bytes,
        pace: Option<Duration>,
        sleep: Option<Pin<Box<Sleep>>>,
    },
}

impl StandinBody {
    pub fn full(b: impl Into<Bytes>) -> Self {
        Self::Full(Some(b.into()))
    }

    /// `total` bytes of a repeating pattern, one 64 KiB chunk at a time, each chunk after
    /// `pace` when given.
    pub fn stream(total: u64, pace: Option<Duration>) -> Self {
        let chunk: Vec<u8> = (0..CHUNK).map(|i| b'a' + (i % 26) as u8).collect();
        Self::Stream {
            remaining: total,
            chunk: Bytes::from(chunk),
            pace,
            sleep: None,
        }
    }
}

impl Body for StandinBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            StandinBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            StandinBody::Stream {
                remaining,
                chunk,
                pace,
                sleep,
            } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                if let Some(pace) = pace {
                    let timer = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(*pace)));
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    *sleep = None;
                }
                let n = (*remaining).min(chunk.len() as u64) as usize;
                *remaining -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(chunk.slice(..n)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            StandinBody::Full(b) => b.is_none(),
            StandinBody::Stream { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            StandinBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            StandinBody::Stream { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}
