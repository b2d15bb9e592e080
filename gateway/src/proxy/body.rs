//! The response body the gateway sends: the upstream's body streamed through untouched, or a
//! small body the gateway wrote itself. An enum rather than a boxed trait object, so the hot
//! path allocates nothing for it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::pool::PooledBody;
use super::revocable::Revocable;

/// What a body's stream can fail with: the upstream's error, or access revoked mid-stream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub enum ProxyBody {
    /// Streamed from an HTTPS upstream (hyper-util client), frame by frame.
    Upstream(Incoming),
    /// Streamed from a plain-HTTP upstream; hands its connection back to the pool at the end.
    Pooled(PooledBody),
    /// Written by the gateway (errors, denials); `None` once sent.
    Full(Option<Bytes>),
    /// A streamed response that ends once its request would no longer be allowed.
    Revocable(Box<Revocable>),
}

impl ProxyBody {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Self::Full(None)
        } else {
            Self::Full(Some(bytes))
        }
    }

    pub fn empty() -> Self {
        Self::Full(None)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Upstream(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            ProxyBody::Revocable(body) => Pin::new(body.as_mut()).poll_frame(cx),
            ProxyBody::Pooled(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            ProxyBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream(body) => body.is_end_stream(),
            ProxyBody::Revocable(body) => body.is_end_stream(),
            ProxyBody::Pooled(body) => body.is_end_stream(),
            ProxyBody::Full(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream(body) => body.size_hint(),
            ProxyBody::Revocable(body) => body.size_hint(),
            ProxyBody::Pooled(body) => body.size_hint(),
            ProxyBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

/// A client's request body as the gateway forwards it: hyper's stream, or none at all for the
/// requests `h1_server` reads itself (it takes only requests without a body).
pub enum ClientBody {
    Streamed(Incoming),
    Empty,
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ClientBody::Streamed(body) => Pin::new(body).poll_frame(cx),
            ClientBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Streamed(body) => body.is_end_stream(),
            ClientBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Streamed(body) => body.size_hint(),
            ClientBody::Empty => SizeHint::with_exact(0),
        }
    }
}
