//! The gate's client for the wiki: a keep-alive pool of HTTP/1.1 connections per worker,
//! driven by the task that serves the client's request. A general client (hyper's) gives each
//! connection its own task and passes the request, the response head and every body chunk
//! between the tasks through channels; here the handler writes the request and reads the
//! response on the socket itself, and the response body reads the rest as the client's
//! connection asks for it. The framing rules are `wikiguard_gate::h1`'s.

use std::future::poll_fn;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use wikiguard_gate::h1::{self, BodyFraming, ChunkedDecoder, RequestFraming, ResponseHead};

/// Idle connections kept per worker.
const MAX_IDLE: usize = 256;
/// Interim (1xx) responses read before the final one; a wiki sends one or two at most.
const MAX_INTERIM: usize = 16;
/// A connection's read buffer; it grows for a longer response head, up to the head limit.
const READ_BUFFER: usize = 16 * 1024;
/// How long a wiki that stopped taking a request's body has to show the answer it sent
/// first (already on its way, if there is one; never longer than the response timeout).
const EARLY_ANSWER_WAIT: Duration = Duration::from_millis(200);
/// After an early answer, the rest of the client's body is read and dropped for at most this
/// long in all, and while it pauses no longer than `LINGER_PAUSE` (nginx's `lingering_time`
/// and `lingering_timeout`).
const LINGER_TOTAL: Duration = Duration::from_secs(30);
const LINGER_PAUSE: Duration = Duration::from_secs(5);

/// One worker's connections to the wiki.
pub struct UpstreamPool {
    host: String,
    port: u16,
    timeouts: UpstreamTimeouts,
    /// Most recently used last (its buffers are the warmest), so the oldest is first.
    idle: Mutex<Vec<Conn>>,
}

/// How long the gate waits for the wiki.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTimeouts {
    /// To open a connection.
    pub connect: Duration,
    /// For the response head, once the request and its body are sent; also the longest the
    /// wiki may pause while taking the request's body or sending its response body.
    pub response: Duration,
    /// The longest pause within the client's request body (an upload is not bounded as a
    /// whole, but a client that stops sending does not hold a wiki connection for long).
    pub client_body_pause: Duration,
    /// How long a connection may idle in the pool before it is closed.
    pub idle: Duration,
}

/// A connection and what has been read from it but not yet used.
struct Conn {
    stream: TcpStream,
    /// Zeroed once (the workspace has no `unsafe` to read into spare capacity); the unread
    /// bytes are `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Where a request head is written.
    head: Vec<u8>,
    /// When it went back to the pool.
    idle_since: Instant,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            head: Vec::new(),
            idle_since: Instant::now(),
        }
    }

    fn unread(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// The next `n` unread bytes as a body chunk.
    fn take(&mut self, n: usize) -> Bytes {
        let out = Bytes::copy_from_slice(&self.buf[self.start..self.start + n]);
        self.consume(n);
        out
    }

    /// Reads more from the socket after the unread bytes; `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < h1::MAX_RESPONSE_HEAD {
                let grown = (2 * self.buf.len()).min(h1::MAX_RESPONSE_HEAD);
                self.buf.resize(grown, 0);
            } else {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, h1::H1Error::TooLarge)));
            }
        }
        let mut rb = ReadBuf::new(&mut self.buf[self.end..]);
        ready!(Pin::new(&mut self.stream).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        self.end += n;
        Poll::Ready(Ok(n))
    }

    async fn fill(&mut self) -> io::Result<usize> {
        poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// Whether an idle connection may carry a request: the wiki has not closed it and sent
    /// nothing unasked. Costs no system call while the socket has not been reported readable.
    fn reusable(&mut self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Shrinks a buffer that grew for one long head before the connection idles.
    fn shrink(&mut self) {
        if self.buf.len() > READ_BUFFER && self.end <= READ_BUFFER && self.start == 0 {
            self.buf.truncate(READ_BUFFER);
            self.buf.shrink_to_fit();
        }
    }
}

/// Why a request to the wiki got no response.
#[derive(Debug)]
pub enum UpstreamError {
    /// The wiki sent no response head within [`UpstreamTimeouts::response`].
    Timeout,
    /// The client's request body paused longer than [`UpstreamTimeouts::client_body_pause`].
    ClientBodyTimeout,
    /// The client's request body broke off.
    ClientBody(io::Error),
    /// The wiki could not be reached, or answered with what is not HTTP as the gate reads it.
    Wiki(io::Error),
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Timeout => f.write_str("the wiki sent no response head in time"),
            UpstreamError::ClientBodyTimeout => f.write_str("the client stopped sending its request body"),
            UpstreamError::ClientBody(e) => write!(f, "the client's request body broke off: {e}"),
            UpstreamError::Wiki(e) => e.fmt(f),
        }
    }
}

impl From<io::Error> for UpstreamError {
    fn from(e: io::Error) -> UpstreamError {
        UpstreamError::Wiki(e)
    }
}

/// Why reading a response head failed; `Stale` when a reused connection turned out closed
/// before any byte of the answer (the request, if it had no body, can go again on a new one).
enum HeadError {
    Stale(io::Error),
    Other(io::Error),
}

impl From<HeadError> for io::Error {
    fn from(e: HeadError) -> io::Error {
        match e {
            HeadError::Stale(e) | HeadError::Other(e) => e,
        }
    }
}

impl UpstreamPool {
    /// A pool for `upstream` (`http://host:port`).
    pub fn new(host: &str, port: u16, timeouts: UpstreamTimeouts) -> UpstreamPool {
        UpstreamPool {
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port,
            timeouts,
            idle: Mutex::new(Vec::new()),
        }
    }

    async fn connect(&self) -> io::Result<Conn> {
        let stream = tokio::time::timeout(
            self.timeouts.connect,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting to the wiki timed out"))??;
        let _ = stream.set_nodelay(true);
        Ok(Conn::new(stream))
    }

    /// Closes the connections that have idled longer than the idle timeout, every idle
    /// timeout, while the pool lives: a wiki that closed them does not leave them half-open
    /// here until the pool is next used.
    pub fn reap_idle(pool: &Arc<Self>) {
        let every = pool.timeouts.idle.max(Duration::from_millis(100));
        let pool = Arc::downgrade(pool);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(pool) = pool.upgrade() else { return };
                // Closed once the lock is given back.
                let _expired = {
                    let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                    pool.expired(&mut idle, Instant::now())
                };
            }
        });
    }

    /// Takes out of `idle` (oldest first) the connections that have idled for the idle
    /// timeout or longer at `now`; they close when dropped.
    fn expired(&self, idle: &mut Vec<Conn>, now: Instant) -> Vec<Conn> {
        let n = idle
            .iter()
            .take_while(|c| now.saturating_duration_since(c.idle_since) >= self.timeouts.idle)
            .count();
        idle.drain(..n).collect()
    }

    /// An idle connection that is still open, if there is one.
    fn idle_conn(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(mut c) = idle.pop() {
            if c.idle_since.elapsed() < self.timeouts.idle && c.reusable() {
                return Some(c);
            }
        }
        None
    }

    fn give_back(&self, mut conn: Conn) {
        if conn.start != conn.end {
            return; // bytes past the response: the wiki is not speaking HTTP as we read it
        }
        conn.shrink();
        conn.idle_since = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // The oldest idle ones are closed once they have idled too long: after a burst the
        // pool shrinks back instead of holding its connections open for good.
        drop(self.expired(&mut idle, conn.idle_since));
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Sends `req` (origin-form target, Host set, hop-by-hop headers gone) and reads the
    /// response head; the body follows as the response's body is polled. A request that meets
    /// a reused connection the wiki had already closed goes again on a new one when nothing
    /// of it can have reached the wiki (its head could not be written), or when it has no body
    /// and its method is idempotent (RFC 9110 §9.2.2): a POST the wiki may have acted on is
    /// not sent twice.
    pub async fn request(self: &Arc<Self>, req: Request<Incoming>) -> Result<Response<UpstreamBody>, UpstreamError> {
        let (mut parts, body) = req.into_parts();
        if parts.method == Method::CONNECT {
            return Err(UpstreamError::Wiki(io::Error::new(
                io::ErrorKind::InvalidInput,
                "CONNECT is not proxied to the wiki",
            )));
        }
        // The gate answers `Expect: 100-continue` to its client itself (hyper does, when the
        // body is first read) and sends the body at once.
        parts.headers.remove(header::EXPECT);
        join_cookies(&mut parts.headers);
        let has_body = !hyper::body::Body::is_end_stream(&body);
        let framing = request_framing(&parts.method, &parts.headers, has_body);
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let head_request = parts.method == Method::HEAD;
        let may_repeat = !has_body && parts.method.is_idempotent();

        let mut body = Some(body);
        let mut retried = false;
        loop {
            // A retry opens a new connection: after a wiki restart the other idle ones are
            // likely stale too (and are left in the pool, not taken out only to be dropped).
            let idle = if retried { None } else { self.idle_conn() };
            let (mut conn, reused) = match idle {
                Some(c) => (c, true),
                None => (self.connect().await?, false),
            };
            // The head is written into the connection's own buffer, kept from its last request.
            conn.head.clear();
            h1::write_request_head(&mut conn.head, &parts.method, target, &parts.headers, framing);
            if let Err(e) = conn.stream.write_all(&conn.head).await {
                if reused && !retried {
                    retried = true;
                    continue;
                }
                return Err(e.into());
            }
            if let Some(mut body) = body.take().filter(|_| has_body) {
                let chunked = framing == RequestFraming::Chunked;
                if let Err(e) = send_body(&mut conn, &mut body, chunked, &self.timeouts).await {
                    if !matches!(e, UpstreamError::Wiki(_) | UpstreamError::Timeout) {
                        return Err(e);
                    }
                    let answer = self.early_answer(conn, head_request).await.ok_or(e)?;
                    // The client is likely still sending: its body is read and dropped while
                    // the answer goes out, so that closing its connection on unread bytes
                    // (a reset) does not destroy the answer before the client reads it.
                    tokio::spawn(linger(body));
                    return Ok(answer);
                }
            }
            // The wait for the answer starts once the request is all sent: an upload that takes
            // longer than this is not cut short.
            let head = tokio::time::timeout(self.timeouts.response, read_head(&mut conn, head_request))
                .await
                .map_err(|_| UpstreamError::Timeout)?;
            match head {
                Ok(h) => return Ok(self.response(conn, h)),
                Err(HeadError::Stale(_)) if reused && may_repeat && !retried => retried = true,
                Err(e) => return Err(io::Error::from(e).into()),
            }
        }
    }

    /// The answer a wiki sent before it stopped taking the request's body (a 413 for an
    /// upload too large, say), if one came: the client hears it rather than a 502. The
    /// connection ends with it, its request cut short.
    async fn early_answer(self: &Arc<Self>, mut conn: Conn, head_request: bool) -> Option<Response<UpstreamBody>> {
        let wait = EARLY_ANSWER_WAIT.min(self.timeouts.response);
        let mut head = tokio::time::timeout(wait, read_head(&mut conn, head_request))
            .await
            .ok()?
            .ok()?;
        head.keep_alive = false;
        Some(self.response(conn, head))
    }

    /// The response for a head just read from `conn`: a body already read in full gives the
    /// connection back at once.
    fn response(self: &Arc<Self>, conn: Conn, h: ResponseHead) -> Response<UpstreamBody> {
        let state = match h.framing {
            BodyFraming::Empty => BodyState::Done,
            BodyFraming::Length(n) => BodyState::Length { left: n },
            BodyFraming::Chunked => BodyState::Chunked(ChunkedDecoder::new()),
            BodyFraming::UntilClose => BodyState::UntilClose,
        };
        let mut body = UpstreamBody {
            conn: None,
            pool: Arc::clone(self),
            state,
            keep_alive: h.keep_alive,
            ready: None,
            pause: None,
        };
        match h.body {
            Some(whole) => {
                body.ready = (!whole.is_empty()).then_some(whole);
                body.finish(conn);
            }
            None => body.conn = Some(conn),
        }
        let mut resp = Response::new(body);
        *resp.status_mut() = h.status;
        *resp.headers_mut() = h.headers;
        resp
    }
}

/// Puts a request's cookies in one field. An HTTP/2 client may send each cookie in a field of
/// its own, and RFC 9113 (§8.2.3) has them joined with "; " before they go on over HTTP/1.1,
/// where a server may read only one `Cookie` line.
fn join_cookies(headers: &mut HeaderMap) {
    let mut values = headers.get_all(header::COOKIE).iter();
    if values.nth(1).is_none() {
        return;
    }
    let mut joined: Vec<u8> = Vec::new();
    for v in headers.get_all(header::COOKIE) {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(v.as_bytes());
    }
    // Made of valid values and "; ", so it is a valid value too.
    if let Ok(v) = http::HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, v);
    }
}

/// How a request's body is framed for the wiki: as its own Content-Length says, chunked when
/// it has a body of unknown length, or with `content-length: 0` for a method that expects one.
fn request_framing(method: &Method, headers: &HeaderMap, has_body: bool) -> RequestFraming {
    let has_length = headers.contains_key(header::CONTENT_LENGTH);
    if has_body && !has_length {
        RequestFraming::Chunked
    } else if !has_body && !has_length && matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        RequestFraming::EmptyWithLength
    } else {
        RequestFraming::AsIs
    }
}

/// Streams the client's body to the wiki, chunked or as it is (its Content-Length frames it).
/// A wait of more than the client body pause for the client's next bytes ends it, as does a
/// wiki that takes in nothing for longer than the response timeout.
async fn send_body(
    conn: &mut Conn,
    body: &mut Incoming,
    chunked: bool,
    timeouts: &UpstreamTimeouts,
) -> Result<(), UpstreamError> {
    let mut out = Vec::new();
    loop {
        let frame = match tokio::time::timeout(timeouts.client_body_pause, body.frame()).await {
            Err(_) => return Err(UpstreamError::ClientBodyTimeout),
            Ok(None) => break,
            Ok(Some(frame)) => {
                frame.map_err(|e| UpstreamError::ClientBody(io::Error::new(io::ErrorKind::UnexpectedEof, e)))?
            }
        };
        // Trailers are not passed on (the wiki has no use for them).
        let Ok(data) = frame.into_data() else { continue };
        if data.is_empty() {
            continue;
        }
        let bytes: &[u8] = if chunked {
            out.clear();
            h1::chunk_header(&mut out, data.len());
            out.extend_from_slice(&data);
            out.extend_from_slice(h1::CHUNK_END);
            &out
        } else {
            &data
        };
        write_to_wiki(conn, bytes, timeouts.response).await?;
    }
    if chunked {
        write_to_wiki(conn, h1::LAST_CHUNK, timeouts.response).await?;
    }
    Ok(())
}

/// Reads the rest of a client's body and drops it, within [`LINGER_TOTAL`] and
/// [`LINGER_PAUSE`].
async fn linger(mut body: Incoming) {
    let drain = async { while let Ok(Some(Ok(_))) = tokio::time::timeout(LINGER_PAUSE, body.frame()).await {} };
    let _ = tokio::time::timeout(LINGER_TOTAL, drain).await;
}

/// Writes part of a request body to the wiki, which must take it within `pause`.
async fn write_to_wiki(conn: &mut Conn, bytes: &[u8], pause: Duration) -> Result<(), UpstreamError> {
    match tokio::time::timeout(pause, conn.stream.write_all(bytes)).await {
        Ok(written) => Ok(written?),
        Err(_) => Err(UpstreamError::Timeout),
    }
}

/// Reads the final response head (interim 1xx ones are dropped).
async fn read_head(conn: &mut Conn, head_request: bool) -> Result<ResponseHead, HeadError> {
    let mut got_any = false;
    let mut interim = 0;
    loop {
        if conn.start < conn.end {
            got_any = true;
            match h1::parse_response_head(conn.unread(), head_request) {
                Ok(Some(h)) => {
                    conn.consume(h.head_len + h.body.as_ref().map_or(0, Bytes::len));
                    if h.status.is_informational() {
                        interim += 1;
                        if interim > MAX_INTERIM {
                            return Err(HeadError::Other(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "the wiki sent more than 16 interim (1xx) responses",
                            )));
                        }
                        continue;
                    }
                    return Ok(h);
                }
                Ok(None) => {}
                Err(e) => return Err(HeadError::Other(io::Error::new(io::ErrorKind::InvalidData, e))),
            }
        }
        match conn.fill().await {
            Ok(0) => {
                let e = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the wiki closed the connection before answering",
                );
                return Err(if got_any {
                    HeadError::Other(e)
                } else {
                    HeadError::Stale(e)
                });
            }
            Ok(_) => {}
            Err(e) if !got_any && matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) => {
                return Err(HeadError::Stale(e))
            }
            Err(e) => return Err(HeadError::Other(e)),
        }
    }
}

#[derive(Debug)]
enum BodyState {
    Length { left: u64 },
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// The wiki's response body, read from its connection as the client's side asks for it. Read
/// to its end, the connection goes back to the pool (if the wiki keeps it alive); dropped
/// early, it is closed, since unread bytes may still be on their way.
pub struct UpstreamBody {
    conn: Option<Conn>,
    pool: Arc<UpstreamPool>,
    state: BodyState,
    keep_alive: bool,
    /// A body read in full with its head.
    ready: Option<Bytes>,
    /// While waiting for the wiki's next bytes: when the wait ends the body (made the first
    /// time a read has to wait, moved on after each read that brings bytes).
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl UpstreamBody {
    fn finish(&mut self, conn: Conn) {
        self.state = BodyState::Done;
        if self.keep_alive {
            self.pool.give_back(conn);
        }
    }

    /// The next piece of the body from the bytes already read, if any.
    fn buffered(&mut self) -> io::Result<Option<Frame<Bytes>>> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        if conn.start == conn.end {
            return Ok(None);
        }
        match &mut self.state {
            BodyState::Length { left } => {
                let n = (conn.unread().len() as u64).min(*left) as usize;
                let data = conn.take(n);
                *left -= n as u64;
                if *left == 0 {
                    if let Some(c) = self.conn.take() {
                        self.finish(c);
                    }
                }
                Ok(Some(Frame::data(data)))
            }
            BodyState::Chunked(dec) => {
                let last = loop {
                    let d = dec
                        .decode(conn.unread())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    let data = Bytes::copy_from_slice(&conn.unread()[d.data.clone()]);
                    conn.consume(d.consumed);
                    if dec.is_done() {
                        break data;
                    }
                    if !data.is_empty() {
                        return Ok(Some(Frame::data(data)));
                    }
                    if conn.start == conn.end {
                        return Ok(None);
                    }
                };
                if let Some(c) = self.conn.take() {
                    self.finish(c);
                }
                Ok((!last.is_empty()).then(|| Frame::data(last)))
            }
            BodyState::UntilClose => {
                let n = conn.unread().len();
                Ok(Some(Frame::data(conn.take(n))))
            }
            BodyState::Done => Ok(None),
        }
    }
}

impl hyper::body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if let Some(data) = this.ready.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        loop {
            match this.buffered() {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                Ok(None) => {}
                Err(e) => {
                    this.conn = None;
                    this.state = BodyState::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let filled = match conn.poll_fill(cx) {
                Poll::Ready(r) => r,
                Poll::Pending => {
                    let limit = this.pool.timeouts.response;
                    let pause = this.pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                    if pause.as_mut().poll(cx).is_ready() {
                        this.conn = None;
                        this.state = BodyState::Done;
                        return Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the wiki paused too long in the middle of a response body",
                        ))));
                    }
                    return Poll::Pending;
                }
            };
            match filled {
                Ok(n) if n > 0 => {
                    if let Some(p) = this.pause.as_mut() {
                        p.as_mut()
                            .reset(tokio::time::Instant::now() + this.pool.timeouts.response);
                    }
                }
                Ok(_) => {
                    this.conn = None;
                    let ended = matches!(this.state, BodyState::UntilClose);
                    this.state = BodyState::Done;
                    if ended {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the wiki closed the connection in the middle of a response body",
                    ))));
                }
                Err(e) => {
                    this.conn = None;
                    this.state = BodyState::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ready.is_none() && matches!(self.state, BodyState::Done)
    }

    fn size_hint(&self) -> SizeHint {
        let ready = self.ready.as_ref().map_or(0, |b| b.len() as u64);
        match self.state {
            BodyState::Length { left } => SizeHint::with_exact(left + ready),
            BodyState::Done => SizeHint::with_exact(ready),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_split_over_fields_are_joined_into_one() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, http::HeaderValue::from_static("a=1"));
        join_cookies(&mut h);
        assert_eq!(h.get_all(header::COOKIE).iter().collect::<Vec<_>>(), ["a=1"]);
        h.append(header::COOKIE, http::HeaderValue::from_static("b=2"));
        h.append(header::COOKIE, http::HeaderValue::from_static("wiki_session=x"));
        join_cookies(&mut h);
        assert_eq!(
            h.get_all(header::COOKIE).iter().collect::<Vec<_>>(),
            ["a=1; b=2; wiki_session=x"]
        );
        let mut none = HeaderMap::new();
        join_cookies(&mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn request_framing_keeps_a_length_and_chunks_the_rest() {
        let mut with_length = HeaderMap::new();
        with_length.insert(header::CONTENT_LENGTH, http::HeaderValue::from_static("5"));
        let none = HeaderMap::new();
        assert_eq!(request_framing(&Method::POST, &with_length, true), RequestFraming::AsIs);
        assert_eq!(request_framing(&Method::POST, &none, true), RequestFraming::Chunked);
        assert_eq!(
            request_framing(&Method::POST, &none, false),
            RequestFraming::EmptyWithLength
        );
        assert_eq!(request_framing(&Method::GET, &none, false), RequestFraming::AsIs);
        assert_eq!(request_framing(&Method::GET, &none, true), RequestFraming::Chunked);
    }
}
