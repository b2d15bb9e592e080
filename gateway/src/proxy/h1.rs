//! The HTTP/1.1 client side of a plain-HTTP upstream connection, driven by the task of the
//! request that uses it: no connection task, no channels between tasks. The request head is
//! written from the forwarded `HeaderMap` and the gateway's own headers (`proxy::added`) in
//! one write, the response head is parsed with `httparse` into a `HeaderMap` whose values share
//! the read buffer (hop-by-hop headers left out), and the response body is read straight from
//! the socket when the server side polls it.
//!
//! What it does (RFC 9112): request bodies are sent with their `Content-Length`, or chunked;
//! the request body keeps going out while the response is read (an upstream may answer
//! early); `1xx` interim responses other than `101` are skipped; response bodies are framed by
//! `Content-Length`, chunked coding (trailers are read and dropped) or the connection's close;
//! `HEAD`, `204` and `304` responses have none. A `101` hands the socket over (see
//! [`Exchange::into_upgraded`]).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use arrayvec::ArrayVec;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, StatusCode, Version};
use http_body::Body;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use super::added::AddedHeaders;
use super::batched::Turn;
use super::headers::{is_fixed_hop_by_hop, remove_hop_by_hop};

/// At most this many response headers (as hyper).
pub(super) const MAX_HEADERS: usize = 100;
/// A response head larger than this is refused.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Chunk-size lines and trailers longer than this are refused.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 64 * 1024;
/// Read sizes: small for heads, growing while a large body streams. The buffer grows only
/// when less room than the read wants (at least `SPARE_MIN`) is left, so that many small
/// responses share one allocation.
const READ_MIN: usize = 8 * 1024;
const READ_MAX: usize = 256 * 1024;
const SPARE_MIN: usize = 1024;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why an exchange with an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("the upstream closed the connection without answering")]
    ClosedBeforeAnswer,
    #[error("upstream connection error: {0}")]
    Io(#[source] io::Error),
    #[error("malformed response from the upstream: {0}")]
    Malformed(&'static str),
    #[error("the upstream's response head is larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("the upstream closed the connection before the end of the response body")]
    IncompleteBody,
    #[error("reading the client's request body failed: {0}")]
    RequestBody(#[source] BoxError),
}

impl ExchangeError {
    /// Whether the connection ended before any response: closed or reset by the upstream.
    pub fn closed_before_answer(&self) -> bool {
        match self {
            ExchangeError::ClosedBeforeAnswer => true,
            ExchangeError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

/// An open connection to an upstream and its read buffer.
pub struct Conn {
    io: TcpStream,
    read: BytesMut,
}

impl Conn {
    pub fn new(io: TcpStream) -> Self {
        Self {
            io,
            read: BytesMut::new(),
        }
    }

    /// Whether an idle connection is still usable: the upstream has not closed it and sent
    /// nothing unasked. Costs a syscall only when the socket reported readable.
    pub fn is_open(&self) -> bool {
        if !self.read.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                matches!(self.io.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Reads more bytes into the read buffer; `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        let want = want.clamp(SPARE_MIN, READ_MAX);
        if self.read.is_empty() {
            // Back to the front of the buffer when nothing read is still in use (as
            // `h1_server` does): the same cache lines for every response head.
            let _ = self.read.try_reclaim(READ_MIN);
        }
        if self.read.capacity() - self.read.len() < want {
            self.read.reserve(want.max(READ_MIN));
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read)
    }
}

/// The request as it goes on the wire: its encoded head and, if it has one, its body.
pub struct Outgoing<B> {
    head: Vec<u8>,
    body: Option<Upload<B>>,
}

impl<B: Body<Data = Bytes> + Unpin> Outgoing<B>
where
    B::Error: Into<BoxError>,
{
    /// Encodes `parts` (origin-form URI, headers already rewritten for the upstream) with
    /// `added` in place of the headers of the same names (`Host` first). A body without
    /// `Content-Length` is sent chunked; an empty POST, PUT or PATCH says `Content-Length: 0`.
    pub fn new(parts: &Parts, body: B, added: &AddedHeaders) -> Self {
        fn put(head: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue) {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        // Sized in one go: a grow would copy the head (a bearer token alone is ~700 bytes).
        let fields: usize = parts
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum::<usize>()
            + added
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len())
                .sum::<usize>();
        let lines = parts.headers.len() + added.len() + 4;
        let mut head = Vec::with_capacity(
            parts.uri.path_and_query().map_or(1, |pq| pq.as_str().len()) + fields + 4 * lines + 64,
        );
        head.extend_from_slice(parts.method.as_str().as_bytes());
        head.push(b' ');
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        head.extend_from_slice(if target.is_empty() {
            b"/"
        } else {
            target.as_bytes()
        });
        head.extend_from_slice(b" HTTP/1.1\r\n");
        if let Some(host) = added.get(&header::HOST) {
            put(&mut head, &header::HOST, host);
        }
        let mut has_length = false;
        for (name, value) in &parts.headers {
            if added.replaces(name) {
                continue;
            }
            has_length |= name == header::CONTENT_LENGTH;
            put(&mut head, name, value);
        }
        for (name, value) in added.iter() {
            if name != header::HOST {
                put(&mut head, name, value);
            }
        }
        let body = if body.is_end_stream() {
            let needs_length = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH);
            if needs_length && !has_length {
                head.extend_from_slice(b"content-length: 0\r\n");
            }
            None
        } else {
            if !has_length {
                head.extend_from_slice(b"transfer-encoding: chunked\r\n");
            }
            Some(Upload {
                body,
                chunked: !has_length,
                out: Vec::new(),
                finished: false,
                started: false,
            })
        };
        head.extend_from_slice(b"\r\n");
        Self { head, body }
    }

    pub fn has_body(&self) -> bool {
        self.body.is_some()
    }
}

/// A request body being sent.
struct Upload<B> {
    body: B,
    chunked: bool,
    /// Bytes polled from the body, not yet written.
    out: Vec<Bytes>,
    finished: bool,
    /// Whether any frame was taken from the body (it can no longer be sent again).
    started: bool,
}

impl<B: Body<Data = Bytes> + Unpin> Upload<B>
where
    B::Error: Into<BoxError>,
{
    /// Sends as much of the body as the body and the socket allow; `Ready(Ok)` once all of it
    /// went out.
    fn poll_send(
        &mut self,
        io: &mut TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), ExchangeError>> {
        loop {
            while !self.out.is_empty() {
                let slices: Vec<io::IoSlice<'_>> =
                    self.out.iter().map(|b| io::IoSlice::new(b)).collect();
                let mut n = ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices))
                    .map_err(ExchangeError::Io)?;
                if n == 0 {
                    return Poll::Ready(Err(ExchangeError::Io(io::ErrorKind::WriteZero.into())));
                }
                while n > 0 {
                    let first = &mut self.out[0];
                    if n >= first.len() {
                        n -= first.len();
                        self.out.remove(0);
                    } else {
                        first.advance(n);
                        n = 0;
                    }
                }
            }
            if self.finished {
                return Poll::Ready(Ok(()));
            }
            self.started = true;
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => {
                    self.finished = true;
                    if self.chunked {
                        self.out.push(Bytes::from_static(b"0\r\n\r\n"));
                    }
                }
                Some(Ok(frame)) => {
                    // Trailers of a request body are not forwarded.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    if self.chunked {
                        self.out.push(Bytes::from(format!("{:x}\r\n", data.len())));
                        self.out.push(data);
                        self.out.push(Bytes::from_static(b"\r\n"));
                    } else {
                        self.out.push(data);
                    }
                }
                Some(Err(e)) => return Poll::Ready(Err(ExchangeError::RequestBody(e.into()))),
            }
        }
    }
}

/// How the response body is delimited, and how far it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are still to come.
    Length(u64),
    Chunked(Chunk),
    /// Until the upstream closes the connection.
    UntilClose,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers(usize),
}

/// One request and its response on a connection, from the request head to the end of the
/// response body.
pub struct Exchange<B> {
    conn: Conn,
    head: Vec<u8>,
    head_written: usize,
    /// The caller may ask for the request back ([`Exchange::bodyless_request`]); otherwise
    /// the head is freed as soon as it is written, while it is still in cache.
    resendable: bool,
    /// The head waits once behind the other ready requests before it is written.
    turn: Turn,
    upload: Option<Upload<B>>,
    had_body: bool,
    /// The request body could not be sent completely (the upstream answered or closed first).
    upload_failed: bool,
    is_head: bool,
    framing: Framing,
    keep_alive: bool,
    /// Size of the last body read, to grow the next one.
    last_read: usize,
}

impl<B: Body<Data = Bytes> + Unpin> Exchange<B>
where
    B::Error: Into<BoxError>,
{
    /// `resendable`: whether the caller may want the request back to send it again.
    pub fn new(conn: Conn, request: Outgoing<B>, method: &Method, resendable: bool) -> Self {
        Self {
            conn,
            head: request.head,
            head_written: 0,
            resendable,
            turn: Turn::default(),
            had_body: request.body.is_some(),
            upload: request.body,
            upload_failed: false,
            is_head: *method == Method::HEAD,
            framing: Framing::Done,
            keep_alive: false,
            last_read: 0,
        }
    }

    /// The request back, when none of it reached the upstream intact: its head was not
    /// written completely, so no byte of its body was taken either.
    pub fn unsent(self) -> Option<Outgoing<B>> {
        let untouched = self.upload.as_ref().is_none_or(|u| !u.started) && !self.upload_failed;
        (self.head_written < self.head.len() && untouched).then(|| Outgoing {
            head: self.head,
            body: self.upload,
        })
    }

    /// The request back for a body-less request made `resendable`, to send it again (the
    /// caller decides when that is safe).
    pub fn bodyless_request(self) -> Option<Outgoing<B>> {
        (self.resendable && !self.had_body).then(|| Outgoing {
            head: self.head,
            body: None,
        })
    }

    /// Writes the request and reads the response head. The body of the response is then read
    /// through the exchange (see [`Exchange::poll_data`]).
    pub async fn response_head(&mut self) -> Result<http::response::Parts, ExchangeError> {
        poll_fn(|cx| self.poll_head(cx)).await
    }

    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<http::response::Parts, ExchangeError>> {
        // Let the other requests that are ready run first: their upstream writes then go out
        // back to back, and the upstream, woken by the first, is still awake for the rest (as
        // `proxy::batched` does for client writes; measured in bench/README.md).
        ready!(self.turn.poll_wait(cx));
        while self.head_written < self.head.len() {
            let n =
                ready!(Pin::new(&mut self.conn.io).poll_write(cx, &self.head[self.head_written..]))
                    .map_err(ExchangeError::Io)?;
            if n == 0 {
                return Poll::Ready(Err(ExchangeError::Io(io::ErrorKind::WriteZero.into())));
            }
            self.head_written += n;
            if self.head_written == self.head.len() && !self.resendable {
                self.head = Vec::new();
            }
        }
        let upload_error = self.poll_upload(cx)?;
        loop {
            if !self.conn.read.is_empty() {
                if let Some((parts, hop)) = parse_head(&mut self.conn.read)? {
                    if parts.status.is_informational()
                        && parts.status != StatusCode::SWITCHING_PROTOCOLS
                    {
                        continue;
                    }
                    self.framing = framing(self.is_head, &parts, &hop)?;
                    self.keep_alive =
                        keeps_alive(&parts, &hop) && self.framing != Framing::UntilClose;
                    return Poll::Ready(Ok(parts));
                }
                if self.conn.read.len() >= MAX_HEAD_BYTES {
                    return Poll::Ready(Err(ExchangeError::HeadTooLarge));
                }
            }
            let n = ready!(self.conn.poll_fill(cx, 2 * SPARE_MIN)).map_err(ExchangeError::Io)?;
            if n == 0 {
                return Poll::Ready(Err(match upload_error {
                    Some(e) => e,
                    None if self.conn.read.is_empty() => ExchangeError::ClosedBeforeAnswer,
                    None => ExchangeError::Malformed("connection closed inside the response head"),
                }));
            }
        }
    }

    /// Sends more of the request body. A write error stops the upload (the upstream may have
    /// answered and closed its reading side) and is returned for the caller to report if no
    /// response comes; a failing request body fails the exchange.
    fn poll_upload(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Result<Option<ExchangeError>, ExchangeError> {
        let Some(upload) = self.upload.as_mut() else {
            return Ok(None);
        };
        match upload.poll_send(&mut self.conn.io, cx) {
            Poll::Pending => Ok(None),
            Poll::Ready(Ok(())) => {
                self.upload = None;
                Ok(None)
            }
            Poll::Ready(Err(ExchangeError::RequestBody(e))) => Err(ExchangeError::RequestBody(e)),
            Poll::Ready(Err(e)) => {
                self.upload = None;
                self.upload_failed = true;
                Ok(Some(e))
            }
        }
    }

    /// The next piece of the response body; `None` at its end.
    pub fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, ExchangeError>>> {
        if self.upload.is_some() {
            if let Err(e) = self.poll_upload(cx) {
                self.framing = Framing::Done;
                self.keep_alive = false;
                return Poll::Ready(Some(Err(e)));
            }
        }
        loop {
            let read = &mut self.conn.read;
            let want = match self.framing {
                Framing::Done => return Poll::Ready(None),
                Framing::Length(0) => {
                    self.framing = Framing::Done;
                    return Poll::Ready(None);
                }
                Framing::Length(left) => {
                    if !read.is_empty() {
                        let n = read.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                        self.framing = Framing::Length(left - n as u64);
                        if left == n as u64 {
                            self.framing = Framing::Done;
                        }
                        return Poll::Ready(Some(Ok(read.split_to(n).freeze())));
                    }
                    usize::try_from(left).unwrap_or(READ_MAX)
                }
                Framing::UntilClose => {
                    if !read.is_empty() {
                        return Poll::Ready(Some(Ok(read.split().freeze())));
                    }
                    READ_MAX
                }
                Framing::Chunked(state) => match decode_chunked(state, read) {
                    Err(e) => {
                        self.framing = Framing::Done;
                        self.keep_alive = false;
                        return Poll::Ready(Some(Err(e)));
                    }
                    Ok((next, data)) => {
                        self.framing = next;
                        if let Some(data) = data {
                            return Poll::Ready(Some(Ok(data)));
                        }
                        if next == Framing::Done {
                            return Poll::Ready(None);
                        }
                        if next != Framing::Chunked(state) {
                            continue; // progress made: decode again before reading
                        }
                        match state {
                            Chunk::Data(left) => usize::try_from(left).unwrap_or(READ_MAX),
                            _ => SPARE_MIN,
                        }
                    }
                },
            };
            let want = want.max(self.last_read * 2);
            match ready!(self.conn.poll_fill(cx, want)) {
                Ok(0) if self.framing == Framing::UntilClose => {
                    self.framing = Framing::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    self.framing = Framing::Done;
                    self.keep_alive = false;
                    return Poll::Ready(Some(Err(ExchangeError::IncompleteBody)));
                }
                Ok(n) => self.last_read = n,
                Err(e) => {
                    self.framing = Framing::Done;
                    self.keep_alive = false;
                    return Poll::Ready(Some(Err(ExchangeError::Io(e))));
                }
            }
        }
    }

    /// Whether the response body has been read to its end.
    pub fn is_end_stream(&self) -> bool {
        matches!(self.framing, Framing::Done | Framing::Length(0))
    }

    /// The bytes of the response body still to come, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            Framing::Done => Some(0),
            _ => None,
        }
    }

    /// The connection, if it can carry another request: the response was read to its end,
    /// the request was sent completely, the upstream keeps the connection open and sent
    /// nothing beyond the response.
    pub fn into_reusable(self) -> Option<Conn> {
        (self.is_end_stream() && self.keep_alive && self.upload.is_none() && !self.upload_failed)
            .then_some(self.conn)
            .filter(|c| c.read.is_empty())
    }

    /// The raw connection after a `101 Switching Protocols`, with any bytes the upstream sent
    /// after the response head.
    pub fn into_upgraded(self) -> (TcpStream, Bytes) {
        (self.conn.io, self.conn.read.freeze())
    }
}

/// Parses a complete response head off the front of `buf`; `None` while it is incomplete.
/// The hop-by-hop headers (RFC 9110 section 7.6.1) are left out of the parts' header map; what
/// they say about the framing and the connection is returned beside it.
fn parse_head(
    buf: &mut BytesMut,
) -> Result<Option<(http::response::Parts, HopByHop)>, ExchangeError> {
    // Left uninitialised: httparse writes the ones it fills (3.2 KiB not zeroed per head).
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots);
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ExchangeError::Malformed("more than 100 headers"))
        }
        Err(_) => return Err(ExchangeError::Malformed("invalid response head")),
    };
    let status = resp
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(ExchangeError::Malformed("invalid status code"))?;
    let version = if resp.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let spans = HeaderSpans::of(buf, resp.headers);
    let head = buf.split_to(len).freeze();
    let mut hop = HopByHop::default();
    let mut headers = spans
        .header_map_keeping(&head, |name, value| hop.keep(name, value))
        .map_err(ExchangeError::Malformed)?;
    if hop.names_others {
        // `Connection` names end-to-end headers to drop as well (rare): it was kept in the map
        // for this, and goes now with the headers it names.
        remove_hop_by_hop(&mut headers);
    }
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.version = version;
    parts.headers = headers;
    Ok(Some((parts, hop)))
}

/// What a response's hop-by-hop headers said, gathered while its header map is built (each
/// name is then compared once, as the parsed standard header it is, instead of being hashed
/// and looked up again for the framing, the keep-alive and the removal).
#[derive(Debug, Default)]
struct HopByHop {
    /// The last `Transfer-Encoding` value (only its last coding decides the framing).
    transfer_encoding: Option<HeaderValue>,
    /// The first `Content-Length` value and how many there were (the header stays in the map).
    content_length: Option<HeaderValue>,
    content_lengths: usize,
    /// `Connection` tokens seen.
    close: bool,
    keep_alive: bool,
    /// A `Connection` value named other headers: it is kept for `remove_hop_by_hop`.
    names_others: bool,
}

impl HopByHop {
    /// Records `name: value`; whether it belongs in the forwarded header map.
    fn keep(&mut self, name: &HeaderName, value: &HeaderValue) -> bool {
        if *name == header::CONTENT_LENGTH {
            if self.content_length.is_none() {
                self.content_length = Some(value.clone());
            }
            self.content_lengths += 1;
            return true;
        }
        if *name == header::TRANSFER_ENCODING {
            self.transfer_encoding = Some(value.clone());
            return false;
        }
        if *name == header::CONNECTION {
            let mut others = false;
            // A value that is not text is read as `close`, to be safe.
            for token in value.to_str().unwrap_or("close").split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    self.close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    self.keep_alive = true;
                } else if !token.is_empty() {
                    others = true;
                }
            }
            self.names_others |= others;
            return others;
        }
        !is_fixed_hop_by_hop(name)
    }
}

/// Where each header's name and value sit in a parsed head, so that once the head is split
/// off the read buffer the values can share its bytes (no copy per value). Used for the
/// upstream's response heads here and the client's request heads in `h1_server`.
pub(super) struct HeaderSpans {
    /// (name offset, name length, value offset, value length) per header, in order.
    spans: ArrayVec<(u32, u32, u32, u32), MAX_HEADERS>,
}

impl HeaderSpans {
    /// The spans of `headers`, parsed by httparse out of `buf`. Inlined so that the 1.6 KB
    /// value is built where the caller keeps it, not copied there; only the spans in use are
    /// written.
    #[inline(always)]
    pub(super) fn of(buf: &[u8], headers: &[httparse::Header<'_>]) -> Self {
        let base = buf.as_ptr() as usize;
        let mut spans = ArrayVec::new();
        for h in headers.iter().take(MAX_HEADERS) {
            // Offsets within a head of at most MAX_HEAD_BYTES (plus one read) fit in u32.
            spans.push((
                (h.name.as_ptr() as usize - base) as u32,
                h.name.len() as u32,
                (h.value.as_ptr() as usize - base) as u32,
                h.value.len() as u32,
            ));
        }
        Self { spans }
    }

    /// The headers as a map over `head` (the bytes the spans were taken from).
    pub(super) fn header_map(&self, head: &Bytes) -> Result<HeaderMap, &'static str> {
        self.header_map_keeping(head, |_, _| true)
    }

    /// As `header_map`, with only the headers `keep` says yes to.
    fn header_map_keeping(
        &self,
        head: &Bytes,
        mut keep: impl FnMut(&HeaderName, &HeaderValue) -> bool,
    ) -> Result<HeaderMap, &'static str> {
        let mut headers = HeaderMap::with_capacity(self.spans.len());
        for &(n, nl, v, vl) in &self.spans {
            let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
            let name =
                HeaderName::from_bytes(&head[n..n + nl]).map_err(|_| "invalid header name")?;
            let value = HeaderValue::from_maybe_shared(head.slice(v..v + vl))
                .map_err(|_| "invalid header value")?;
            if keep(&name, &value) {
                headers.append(name, value);
            }
        }
        Ok(headers)
    }
}

/// How the body of a response is delimited (RFC 9112 section 6.3).
fn framing(
    is_head: bool,
    parts: &http::response::Parts,
    hop: &HopByHop,
) -> Result<Framing, ExchangeError> {
    let status = parts.status;
    if is_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Done);
    }
    if let Some(codings) = &hop.transfer_encoding {
        let last = codings.to_str().unwrap_or("");
        let chunked = last
            .rsplit(',')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
        return Ok(if chunked {
            Framing::Chunked(Chunk::Size)
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    let mut add = |value: &HeaderValue| -> Result<(), ExchangeError> {
        let text = value
            .to_str()
            .map_err(|_| ExchangeError::Malformed("invalid Content-Length"))?;
        for item in text.split(',') {
            let n: u64 = item
                .trim()
                .parse()
                .map_err(|_| ExchangeError::Malformed("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(ExchangeError::Malformed(
                    "conflicting Content-Length values",
                ));
            }
            length = Some(n);
        }
        Ok(())
    };
    match (&hop.content_length, hop.content_lengths) {
        (None, _) => {}
        (Some(only), 1) => add(only)?,
        _ => {
            for value in parts.headers.get_all(header::CONTENT_LENGTH) {
                add(value)?;
            }
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// Whether the upstream keeps the connection open after this response.
fn keeps_alive(parts: &http::response::Parts, hop: &HopByHop) -> bool {
    parts.status != StatusCode::SWITCHING_PROTOCOLS
        && !hop.close
        && (parts.version == Version::HTTP_11 || hop.keep_alive)
}

/// One step of the chunked decoder over the buffered bytes: the next state and, if any, a
/// piece of body data. A state equal to the input with no data means more bytes are needed.
fn decode_chunked(
    state: Chunk,
    read: &mut BytesMut,
) -> Result<(Framing, Option<Bytes>), ExchangeError> {
    let line_end = |read: &BytesMut| read.iter().take(MAX_LINE + 2).position(|&b| b == b'\n');
    match state {
        Chunk::Size => {
            let Some(end) = line_end(read) else {
                if read.len() > MAX_LINE {
                    return Err(ExchangeError::Malformed("chunk size line too long"));
                }
                return Ok((Framing::Chunked(state), None));
            };
            let line = &read[..end];
            let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
            if digits == 0 || digits > 16 {
                return Err(ExchangeError::Malformed("invalid chunk size"));
            }
            // Optional whitespace, then a chunk extension (ignored) or the line's end.
            let rest = &line[digits..];
            let ws = rest
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\t'))
                .count();
            let rest = &rest[ws..];
            let rest_ok = rest.is_empty() || rest == b"\r" || rest[0] == b';';
            if !rest_ok {
                return Err(ExchangeError::Malformed("invalid chunk size"));
            }
            let size = line[..digits]
                .iter()
                .fold(0u64, |n, &b| (n << 4) | u64::from(hex_value(b)));
            read.advance(end + 1);
            let next = if size == 0 {
                Chunk::Trailers(0)
            } else {
                Chunk::Data(size)
            };
            Ok((Framing::Chunked(next), None))
        }
        Chunk::Data(left) => {
            if read.is_empty() {
                return Ok((Framing::Chunked(state), None));
            }
            let n = read.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let next = if left == n as u64 {
                Chunk::DataEnd
            } else {
                Chunk::Data(left - n as u64)
            };
            Ok((Framing::Chunked(next), Some(read.split_to(n).freeze())))
        }
        Chunk::DataEnd => match read.first() {
            None => Ok((Framing::Chunked(state), None)),
            Some(b'\n') => {
                read.advance(1);
                Ok((Framing::Chunked(Chunk::Size), None))
            }
            Some(b'\r') if read.len() < 2 => Ok((Framing::Chunked(state), None)),
            Some(b'\r') if read[1] == b'\n' => {
                read.advance(2);
                Ok((Framing::Chunked(Chunk::Size), None))
            }
            Some(_) => Err(ExchangeError::Malformed("chunk data longer than its size")),
        },
        Chunk::Trailers(seen) => {
            let Some(end) = line_end(read) else {
                if read.len() > MAX_LINE {
                    return Err(ExchangeError::Malformed("trailer line too long"));
                }
                return Ok((Framing::Chunked(state), None));
            };
            let empty = end == 0 || (end == 1 && read[0] == b'\r');
            read.advance(end + 1);
            if empty {
                return Ok((Framing::Done, None));
            }
            let seen = seen + end + 1;
            if seen > MAX_TRAILERS {
                return Err(ExchangeError::Malformed("trailers too large"));
            }
            Ok((Framing::Chunked(Chunk::Trailers(seen)), None))
        }
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], split_every: usize) -> Result<Vec<u8>, ExchangeError> {
        let mut state = Framing::Chunked(Chunk::Size);
        let mut read = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = input;
        loop {
            let Framing::Chunked(s) = state else {
                assert!(read.is_empty(), "bytes left after the body: {read:?}");
                return Ok(out);
            };
            let (next, data) = decode_chunked(s, &mut read)?;
            if let Some(d) = data {
                out.extend_from_slice(&d);
            } else if next == state {
                if rest.is_empty() {
                    return Err(ExchangeError::IncompleteBody);
                }
                let k = split_every.min(rest.len());
                read.extend_from_slice(&rest[..k]);
                rest = &rest[k..];
            }
            state = next;
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_boundaries() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n";
        for split in [1, 2, 3, 7, wire.len()] {
            assert_eq!(
                decode_all(wire, split).unwrap(),
                b"hello 0123456789",
                "split {split}"
            );
        }
        assert_eq!(decode_all(b"0\r\n\r\n", 1).unwrap(), b"");
        assert_eq!(decode_all(b"3\nabc\n0\n\n", 2).unwrap(), b"abc");
    }

    #[test]
    fn bad_chunked_bodies_are_errors() {
        for bad in [
            &b"x\r\n"[..],
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"12345678901234567\r\n",
            b"5 z\r\nhello\r\n",
        ] {
            assert!(
                matches!(decode_all(bad, 3), Err(ExchangeError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            decode_all(b"5\r\nhel", 3),
            Err(ExchangeError::IncompleteBody)
        ));
    }

    fn head(text: &str) -> Result<Option<(http::response::Parts, HopByHop)>, ExchangeError> {
        let mut buf = BytesMut::from(text.as_bytes());
        let parsed = parse_head(&mut buf)?;
        if parsed.is_some() {
            assert_eq!(&buf[..], b"body", "the head is taken off the buffer");
        }
        Ok(parsed)
    }

    #[test]
    fn response_heads_parse_into_shared_header_maps() {
        let (parts, hop) =
            head("HTTP/1.1 201 Created\r\nContent-Length: 4\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody")
                .unwrap()
                .unwrap();
        assert_eq!(parts.status, 201);
        assert_eq!(parts.version, Version::HTTP_11);
        let xa: Vec<_> = parts.headers.get_all("x-a").iter().collect();
        assert_eq!(xa, ["1", "2"]);
        assert_eq!(framing(false, &parts, &hop).unwrap(), Framing::Length(4));
        assert_eq!(framing(true, &parts, &hop).unwrap(), Framing::Done);
        assert!(keeps_alive(&parts, &hop));
        assert!(head("HTTP/1.1 200 OK\r\nContent-Le").unwrap().is_none());
        assert!(matches!(
            head("HTTP/1.1 abc\r\n\r\nbody"),
            Err(ExchangeError::Malformed(_))
        ));
    }

    #[test]
    fn framing_and_keep_alive_follow_rfc_9112() {
        let frame = |text: &str| {
            let (parts, hop) = head(text).unwrap().unwrap();
            (framing(false, &parts, &hop), keeps_alive(&parts, &hop))
        };
        let (f, k) = frame(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\nbody",
        );
        assert_eq!((f.unwrap(), k), (Framing::Chunked(Chunk::Size), true));
        let (f, _) = frame("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nbody");
        assert_eq!(f.unwrap(), Framing::UntilClose);
        let (f, k) = frame("HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nbody");
        assert_eq!((f.unwrap(), k), (Framing::Length(4), false));
        let (_, k) = frame("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody");
        assert!(k);
        let (_, k) = frame("HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\nbody");
        assert!(!k);
        let (f, _) = frame("HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\nbody");
        assert_eq!(f.unwrap(), Framing::Done);
        let (f, _) = frame("HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\n\r\nbody");
        assert_eq!(f.unwrap(), Framing::Length(4));
        let (f, _) = frame("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nbody");
        assert!(matches!(f, Err(ExchangeError::Malformed(_))));
        let (f, _) = frame("HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\nbody");
        assert!(matches!(f, Err(ExchangeError::Malformed(_))));
    }

    #[test]
    fn hop_by_hop_headers_stay_out_of_the_forwarded_map() {
        let (parts, hop) = head(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
             Transfer-Encoding: chunked\r\nTrailer: x-t\r\nProxy-Connection: x\r\n\
             Upgrade: h2c\r\nX-Kept: 1\r\n\r\nbody",
        )
        .unwrap()
        .unwrap();
        let names: Vec<_> = parts.headers.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["x-kept"]);
        assert_eq!(
            framing(false, &parts, &hop).unwrap(),
            Framing::Chunked(Chunk::Size)
        );
        assert!(keeps_alive(&parts, &hop));
        // A `Connection` naming an end-to-end header takes it along, wherever it stands.
        let (parts, hop) = head(
            "HTTP/1.1 200 OK\r\nX-Secret: 1\r\nConnection: close, X-Secret\r\n\
             X-Kept: 1\r\nContent-Length: 4\r\n\r\nbody",
        )
        .unwrap()
        .unwrap();
        let mut names: Vec<_> = parts.headers.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-length", "x-kept"]);
        assert_eq!(framing(false, &parts, &hop).unwrap(), Framing::Length(4));
        assert!(!keeps_alive(&parts, &hop));
    }

    #[test]
    fn request_heads_carry_the_framing_of_their_body() {
        use http_body_util::{Empty, Full};
        let req = |method: Method, headers: &[(&str, &str)]| {
            let mut b = http::Request::builder().method(method).uri("/a?b=1");
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            b.body(()).unwrap().into_parts().0
        };
        fn text<B>(o: &Outgoing<B>) -> String {
            String::from_utf8(o.head.clone()).unwrap()
        }
        let get = Outgoing::new(
            &req(Method::GET, &[("host", "h")]),
            Empty::<Bytes>::new(),
            &AddedHeaders::new(),
        );
        assert_eq!(text(&get), "GET /a?b=1 HTTP/1.1\r\nhost: h\r\n\r\n");
        assert!(!get.has_body());
        let post = Outgoing::new(
            &req(Method::POST, &[]),
            Empty::<Bytes>::new(),
            &AddedHeaders::new(),
        );
        assert_eq!(
            text(&post),
            "POST /a?b=1 HTTP/1.1\r\ncontent-length: 0\r\n\r\n"
        );
        let chunked = Outgoing::new(
            &req(Method::PUT, &[]),
            Full::new(Bytes::from("x")),
            &AddedHeaders::new(),
        );
        assert_eq!(
            text(&chunked),
            "PUT /a?b=1 HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let sized = Outgoing::new(
            &req(Method::PUT, &[("content-length", "1")]),
            Full::new(Bytes::from("x")),
            &AddedHeaders::new(),
        );
        assert_eq!(
            text(&sized),
            "PUT /a?b=1 HTTP/1.1\r\ncontent-length: 1\r\n\r\n"
        );
        assert!(sized.has_body());
        // Added headers take the place of the client's: Host first, the others after.
        static X_A: HeaderName = HeaderName::from_static("x-a");
        static X_B: HeaderName = HeaderName::from_static("x-b");
        let mut added = AddedHeaders::new();
        added.set(&X_A, HeaderValue::from_static("gateway"));
        added.remove(&X_B);
        added.set(
            &super::super::added::HOST,
            HeaderValue::from_static("up.test"),
        );
        let get = Outgoing::new(
            &req(
                Method::GET,
                &[
                    ("x-a", "client"),
                    ("accept", "*/*"),
                    ("host", "h"),
                    ("x-b", "client"),
                ],
            ),
            Empty::<Bytes>::new(),
            &added,
        );
        assert_eq!(
            text(&get),
            "GET /a?b=1 HTTP/1.1\r\nhost: up.test\r\naccept: */*\r\nx-a: gateway\r\n\r\n"
        );
    }
}
