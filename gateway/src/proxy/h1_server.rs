//! The gateway's own HTTP/1.1 server loop, for the requests that make up nearly all traffic:
//! HTTP/1.1 with no body and no upgrade. It reads the head with `httparse` into a `HeaderMap`
//! whose values share the read buffer, runs the request through `Gateway::handle` inside the
//! connection's task, and writes the response head and body itself (the body's first bytes in
//! the same write as the head when they are ready).
//!
//! Everything else goes to hyper's server for the rest of the connection, starting with the
//! bytes already read (`Ending::HandOff`): HTTP/1.0, request bodies, `Expect`, upgrades and
//! `CONNECT`, HTTP/2's connection preface, heads that are malformed, have more than 100 headers
//! or exceed `max_header_bytes` (hyper answers those with 400 or 431).
//!
//! Timeouts: a connection with no request in flight is closed after `idle_timeout` (checked by
//! a per-connection interval, not a timer per request); a head that has started must be
//! complete within `header_read_timeout`. On shutdown an idle connection closes at once and a
//! busy one after its response, which then says `connection: close`.
//!
//! Unlike hyper's server, the loop does not read while a request is in flight: a client that
//! hangs up is noticed when its response is written (a streamed body stops at the first
//! failed write), not while the upstream is still answering. Pipelined requests wait in the
//! buffer and are answered in order.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, MissedTickBehavior, Sleep};

use super::batched::Turn;
use super::body::{ClientBody, ProxyBody};
use super::gateway::{ConnInfo, Gateway};
use super::h1::{HeaderSpans, MAX_HEADERS};
use super::server::ShutdownRx;

/// Read sizes for request heads.
const READ_SIZE: usize = 8 * 1024;
const SPARE_MIN: usize = 1024;
/// Body frames up to this size are copied behind the head (or chunk line) into one write.
const COALESCE_MAX: usize = 16 * 1024;
/// The idle check ticks every `idle_timeout / IDLE_TICKS`; a connection idle for more than
/// `IDLE_TICKS` whole ticks is closed, i.e. after between 1 and 1.25 times `idle_timeout`.
const IDLE_TICKS: u32 = 4;

/// The connection limits the loop applies.
#[derive(Debug, Clone)]
pub struct Settings {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
}

/// How the loop ended.
#[derive(Debug)]
pub enum Ending {
    /// The connection is done: closed by either side, timed out, or shut down.
    Closed,
    /// A request this loop does not serve arrived: hyper's server takes the connection over,
    /// starting with these bytes.
    HandOff(Bytes),
}

/// Serves requests on `io` until the connection ends or needs hyper.
pub async fn serve<S>(
    io: &mut S,
    gateway: &Gateway,
    info: &ConnInfo,
    shutdown: &mut ShutdownRx,
    settings: &Settings,
) -> Ending
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let mut out = Vec::with_capacity(1024);
    let mut turn = Turn::default();
    let mut date = DateCache::default();
    let period = (settings.idle_timeout / IDLE_TICKS).max(Duration::from_millis(5));
    let mut check = tokio::time::interval_at(Instant::now() + period, period);
    check.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut idle_ticks, mut served, mut served_at_tick) = (0u32, 0u64, 0u64);
    let mut head_deadline: Option<Pin<Box<Sleep>>> = None;
    // Asked once per request, while the request's answer is written: one atomic load, where
    // polling `stop` would lock and re-register its waiter every time.
    let probe = shutdown.clone();
    let mut stop = pin!(shutdown.changed());
    let mut stopping = false;
    loop {
        if !buf.is_empty() {
            match parse(&mut buf, settings.max_header_bytes) {
                Parsed::Request(req, client_closes) => {
                    head_deadline = None;
                    served += 1;
                    let is_head = req.method() == Method::HEAD;
                    let resp = gateway.handle(req, info).await;
                    if !stopping {
                        // A closed channel means the gateway is going away, as a signal does.
                        stopping = probe.has_changed().unwrap_or(true);
                    }
                    let keep_alive = !client_closes && !stopping;
                    let ends = Ends {
                        is_head,
                        keep_alive,
                    };
                    let written =
                        write_response(io, resp, ends, &mut out, &mut turn, &mut date).await;
                    if written.is_err() {
                        return Ending::Closed;
                    }
                    if !keep_alive {
                        return close(io).await;
                    }
                    continue;
                }
                Parsed::Partial => {}
                // During a drain, a request hyper would take is not started.
                Parsed::NotMine if stopping => return close(io).await,
                Parsed::NotMine => return Ending::HandOff(buf.split().freeze()),
            }
            if head_deadline.is_none() {
                head_deadline = Some(Box::pin(tokio::time::sleep(settings.header_read_timeout)));
            }
        }
        if buf.is_empty() {
            // Read into the front of the buffer again once all of it is consumed and no head
            // shares it any more: every request of the connection then lands on the same few
            // cache lines, instead of walking through the buffer (at hundreds of connections,
            // fresh lines every request are cache misses). Never allocates.
            let _ = buf.try_reclaim(READ_SIZE);
        }
        if buf.capacity() - buf.len() < SPARE_MIN {
            buf.reserve(READ_SIZE);
        }
        let event = poll_fn(|cx| {
            match tokio_util::io::poll_read_buf(Pin::new(&mut *io), cx, &mut buf) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Event::Gone),
                Poll::Ready(Ok(_)) => return Poll::Ready(Event::Read),
                Poll::Pending => {}
            }
            // Only when the connection waits: a busy one learns of a shutdown from `probe`
            // after its next request, and closes after answering it.
            if !stopping && stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Shutdown);
            }
            if let Some(deadline) = head_deadline.as_mut() {
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::HeadTimeout);
                }
            }
            if check.poll_tick(cx).is_ready() {
                return Poll::Ready(Event::Tick);
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Read => {}
            Event::Gone | Event::HeadTimeout => return Ending::Closed,
            Event::Shutdown => {
                stopping = true;
                if buf.is_empty() {
                    return close(io).await;
                }
            }
            Event::Tick => {
                if served == served_at_tick && buf.is_empty() {
                    idle_ticks += 1;
                    if idle_ticks > IDLE_TICKS {
                        return close(io).await;
                    }
                } else {
                    idle_ticks = 0;
                    served_at_tick = served;
                }
            }
        }
    }
}

enum Event {
    Read,
    Gone,
    HeadTimeout,
    Shutdown,
    Tick,
}

/// Ends a connection the gateway chose to close (TLS says `close_notify`).
async fn close<S: AsyncWrite + Unpin>(io: &mut S) -> Ending {
    let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
    Ending::Closed
}

enum Parsed {
    /// A request this loop serves, and whether the client asked to close after it. Boxed as
    /// `Gateway::handle` takes it.
    Request(Box<Request<ClientBody>>, bool),
    Partial,
    NotMine,
}

/// Takes one request head off the front of `buf` if it is complete and one this loop
/// serves; leaves `buf` as it was otherwise.
fn parse(buf: &mut BytesMut, max_header_bytes: usize) -> Parsed {
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < max_header_bytes => return Parsed::Partial,
        _ => return Parsed::NotMine,
    };
    if req.version != Some(1) || len > max_header_bytes {
        return Parsed::NotMine;
    }
    let method = match req.method.map(|m| Method::from_bytes(m.as_bytes())) {
        Some(Ok(m)) if m != Method::CONNECT => m,
        _ => return Parsed::NotMine,
    };
    let mut client_closes = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
        match name.len() {
            14 if is(b"content-length") && h.value != b"0" => return Parsed::NotMine,
            17 if is(b"transfer-encoding") => return Parsed::NotMine,
            7 if is(b"upgrade") => return Parsed::NotMine,
            6 if is(b"expect") => return Parsed::NotMine,
            10 if is(b"connection") => {
                for token in h.value.split(|&b| b == b',') {
                    client_closes |= token.trim_ascii().eq_ignore_ascii_case(b"close");
                }
            }
            _ => {}
        }
    }
    let Some(path) = req.path else {
        return Parsed::NotMine;
    };
    let base = buf.as_ptr() as usize;
    let path = path.as_ptr() as usize - base..path.as_ptr() as usize - base + path.len();
    let spans = HeaderSpans::of(buf, req.headers);
    let head = buf.split_to(len).freeze();
    let (Ok(uri), Ok(headers)) = (
        Uri::from_maybe_shared(head.slice(path)),
        spans.header_map(&head),
    ) else {
        // What the http crate refuses goes to hyper (a 400) with the bytes as they came.
        let mut all = BytesMut::with_capacity(head.len() + buf.len());
        all.extend_from_slice(&head);
        all.extend_from_slice(buf);
        *buf = all;
        return Parsed::NotMine;
    };
    let mut request = Box::new(Request::new(ClientBody::Empty));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Parsed::Request(request, client_closes)
}

/// What the request decided about its response: no body for `HEAD`; whether the connection
/// stays open after it.
#[derive(Debug, Clone, Copy)]
struct Ends {
    is_head: bool,
    keep_alive: bool,
}

/// How the response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// Writes `resp`: its head (status line, its headers except `connection` and
/// `transfer-encoding`, the framing header, `date` if it has none, `connection: close` when
/// the connection ends after it), then its body. An error means the connection must close:
/// the client went away, or the body failed or did not match its `content-length`.
async fn write_response<S>(
    io: &mut S,
    resp: Response<ProxyBody>,
    Ends {
        is_head,
        keep_alive,
    }: Ends,
    out: &mut Vec<u8>,
    turn: &mut Turn,
    date: &mut DateCache,
) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    let (parts, mut body) = resp.into_parts();
    out.clear();
    let status = parts.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut length = None;
    let mut has_date = false;
    for (name, value) in &parts.headers {
        if name == header::CONNECTION || name == header::TRANSFER_ENCODING {
            continue;
        }
        if name == header::CONTENT_LENGTH {
            length = value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
        }
        has_date |= name == header::DATE;
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let bodyless = is_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = match (bodyless, length, body.size_hint().exact()) {
        (true, _, _) => Framing::None,
        (false, Some(n), _) => Framing::Length(n),
        (false, None, Some(n)) => {
            put_header(out, b"content-length", itoa(n, &mut [0u8; 20]));
            Framing::Length(n)
        }
        (false, None, None) => {
            put_header(out, b"transfer-encoding", b"chunked");
            Framing::Chunked
        }
    };
    if !has_date {
        put_header(out, b"date", date.now().as_bytes());
    }
    if !keep_alive {
        put_header(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");

    let mut left = match framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    loop {
        // Take what the body has ready; write what is gathered only when it has no more yet.
        let step = poll_fn(|cx| match Pin::new(&mut body).poll_frame(cx) {
            Poll::Pending if !out.is_empty() => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
            Poll::Ready(frame) => Poll::Ready(Some(frame)),
        })
        .await;
        let frame = match step {
            None => {
                write_out(io, out, turn).await?;
                continue;
            }
            Some(None) => break,
            Some(Some(Err(e))) => return Err(io::Error::other(e)),
            Some(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers are not sent over HTTP/1.1
        };
        if data.is_empty() || framing == Framing::None {
            continue;
        }
        if framing == Framing::Chunked {
            out.extend_from_slice(hex(data.len(), &mut [0u8; 16]));
            out.extend_from_slice(b"\r\n");
        } else if data.len() as u64 > left {
            return Err(io::Error::other(
                "response body longer than its content-length",
            ));
        } else {
            left -= data.len() as u64;
        }
        if data.len() <= COALESCE_MAX {
            out.extend_from_slice(&data);
        } else {
            write_out(io, out, turn).await?;
            io.write_all(&data).await?;
            io.flush().await?;
        }
        if framing == Framing::Chunked {
            out.extend_from_slice(b"\r\n");
        }
    }
    if matches!(framing, Framing::Length(_)) && left > 0 {
        return Err(io::Error::other(
            "response body shorter than its content-length",
        ));
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    write_out(io, out, turn).await
}

/// Writes, flushes and empties `out`, after waiting once behind the other ready tasks (see
/// `batched`). Flushed because `AsyncWrite` may buffer (a TLS stream can hold records in its
/// session) and a streamed body may have nothing more for a while.
async fn write_out<S: AsyncWrite + Unpin>(
    io: &mut S,
    out: &mut Vec<u8>,
    turn: &mut Turn,
) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    poll_fn(|cx| turn.poll_wait(cx)).await;
    turn.reset();
    io.write_all(out).await?;
    out.clear();
    io.flush().await
}

fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal, written into `buf`.
fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// `n` in lower-case hexadecimal (a chunk size), written into `buf`.
fn hex(mut n: usize, buf: &mut [u8; 16]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The `date` header value, formatted once per second.
#[derive(Default)]
struct DateCache {
    second: u64,
    text: Option<HeaderValue>,
}

impl DateCache {
    fn now(&mut self) -> HeaderValue {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match &self.text {
            Some(text) if self.second == second => text.clone(),
            _ => {
                let text = HeaderValue::from_str(&httpdate::fmt_http_date(now))
                    .unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
                self.second = second;
                self.text = Some(text.clone());
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Parsed {
        parse(&mut BytesMut::from(text), 64 * 1024)
    }

    #[test]
    fn plain_http11_requests_without_bodies_are_served_here() {
        let mut buf = BytesMut::from(
            "GET /sites/a?x=1 HTTP/1.1\r\nHost: a.example\r\nX-Two: 1\r\nX-Two: 2\r\n\r\nGET /next",
        );
        let Parsed::Request(req, closes) = parse(&mut buf, 64 * 1024) else {
            panic!("expected a request");
        };
        assert!(!closes);
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.uri(), "/sites/a?x=1");
        assert_eq!(req.version(), Version::HTTP_11);
        assert_eq!(req.headers()["host"], "a.example");
        assert_eq!(req.headers().get_all("x-two").iter().count(), 2);
        assert_eq!(&buf[..], b"GET /next", "the next request stays buffered");
        assert!(matches!(
            parsed("HEAD / HTTP/1.1\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n"),
            Parsed::Request(_, true)
        ));
        assert!(matches!(
            parsed("GET / HTTP/1.1\r\nHost: a"),
            Parsed::Partial
        ));
    }

    #[test]
    fn everything_else_is_left_to_hyper_untouched() {
        for text in [
            "GET / HTTP/1.0\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
            "GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            "CONNECT a.example:443 HTTP/1.1\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/1.1\r\nX: \x7f\r\n\r\n",
        ] {
            let mut buf = BytesMut::from(text);
            assert!(
                matches!(parse(&mut buf, 64 * 1024), Parsed::NotMine),
                "{text:?}"
            );
            assert_eq!(&buf[..], text.as_bytes(), "{text:?} kept as it came");
        }
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(100));
        assert!(matches!(
            parse(&mut BytesMut::from(&big[..]), 64),
            Parsed::NotMine
        ));
    }

    #[test]
    fn numbers_are_written_in_decimal_and_hex() {
        assert_eq!(itoa(0, &mut [0; 20]), b"0");
        assert_eq!(
            itoa(18_446_744_073_709_551_615, &mut [0; 20]),
            b"18446744073709551615"
        );
        assert_eq!(hex(0, &mut [0; 16]), b"0");
        assert_eq!(hex(0x1f2e, &mut [0; 16]), b"1f2e");
    }

    #[test]
    fn dates_are_http_dates() {
        let date = DateCache::default().now();
        assert_eq!(date.len(), 29);
        assert!(date.to_str().unwrap().ends_with(" GMT"));
    }
}
