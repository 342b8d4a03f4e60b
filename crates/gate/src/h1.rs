//! HTTP/1.1 framing for the gate's connections to the wiki: the request head it writes, the
//! response head it reads, and the chunked transfer coding both ways. Pure (no sockets), so the
//! rules are tested and fuzzed apart from the I/O that uses them.
//!
//! The gate talks to one upstream it trusts, the wiki; still, a malformed or oversized response
//! is an error, never a guess: a proxy that guessed at framing would hand one client the bytes
//! of another's response.

use std::ops::Range;

use bytes::Bytes;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

/// The longest response head read from the wiki.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// The most header fields in a response head.
pub const MAX_RESPONSE_HEADERS: usize = 128;
/// The longest chunk-size line (size, extensions) and the most trailer bytes accepted.
const MAX_CHUNK_LINE: u32 = 4096;
const MAX_TRAILERS: u32 = 16 * 1024;

/// Why a response from the wiki could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum H1Error {
    /// The head is not HTTP/1.x (the parser's reason).
    #[error("the wiki's response head is malformed ({0})")]
    Malformed(&'static str),
    /// The head is longer than [`MAX_RESPONSE_HEAD`] or has more fields than [`MAX_RESPONSE_HEADERS`].
    #[error(
        "the wiki's response head is too large (at most {MAX_RESPONSE_HEAD} bytes and {MAX_RESPONSE_HEADERS} fields)"
    )]
    TooLarge,
    /// Content-Length is not one number.
    #[error("the wiki's response has an invalid Content-Length")]
    BadContentLength,
    /// A 101 answer: the gate does not pass protocol upgrades on (it strips `Upgrade`).
    #[error("the wiki switched protocols, which the gate does not proxy")]
    Upgrade,
    /// A transfer coding other than `chunked` alone: the gate does not undo gzip or the like
    /// (nor pass a body on whose coding it removed the record of), as nginx refuses them too.
    #[error("the wiki's response uses a transfer coding other than chunked")]
    UnsupportedCoding,
    /// The chunked body breaks the coding.
    #[error("the wiki's chunked body is malformed ({0})")]
    Chunked(&'static str),
}

/// How the body after a response head ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (a HEAD request, 1xx, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the wiki closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    /// The status code.
    pub status: StatusCode,
    /// The header fields, in order (hop-by-hop ones included: the caller strips them).
    pub headers: HeaderMap,
    /// How many bytes of the input the head took, its final CRLF included.
    pub head_len: usize,
    /// How the body ends.
    pub framing: BodyFraming,
    /// Whether the connection may carry another request once this body is read.
    pub keep_alive: bool,
    /// The whole body, when it is empty or framed by a length and has all arrived in the
    /// input after the head (it then ends `head_len + body.len()` bytes in).
    pub body: Option<Bytes>,
}

/// Parses the response head at the start of `buf`: `Ok(None)` while it is incomplete (read
/// more, unless `buf` already holds [`MAX_RESPONSE_HEAD`] bytes: that is an error here).
/// `head_request` says the request was HEAD (its response never has a body). An interim 1xx
/// response comes back as a head with [`BodyFraming::Empty`]; the caller drops it and reads
/// the next one.
pub fn parse_response_head(buf: &[u8], head_request: bool) -> Result<Option<ResponseHead>, H1Error> {
    // Left uninitialised for the parser to fill: zeroing 128 fields cost more than parsing a
    // typical head.
    let mut fields = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let head_len =
        match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut fields) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return if buf.len() >= MAX_RESPONSE_HEAD {
                    Err(H1Error::TooLarge)
                } else {
                    Ok(None)
                };
            }
            Err(httparse::Error::TooManyHeaders) => return Err(H1Error::TooLarge),
            Err(e) => return Err(H1Error::Malformed(parse_error(e))),
        };
    if head_len > MAX_RESPONSE_HEAD {
        return Err(H1Error::TooLarge);
    }
    let code = resp.code.ok_or(H1Error::Malformed("no status code"))?;
    let status = StatusCode::from_u16(code).map_err(|_| H1Error::Malformed("status code out of range"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(H1Error::Upgrade);
    }
    let http11 = resp.version == Some(1);

    // First the fields that frame the body; the map is built once the body's place is known.
    let mut length: Option<u64> = None;
    let mut bad_length = false;
    let mut transfer_encoding = false;
    // How many codings all the Transfer-Encoding fields name, and whether each is `chunked`.
    let mut codings = 0u32;
    let mut only_chunked = true;
    let mut close = false;
    let mut keep_alive_token = false;
    for f in resp.headers.iter() {
        let name = f.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            for part in f.value.split(|b| *b == b',') {
                match parse_decimal(part.trim_ascii()) {
                    Some(n) if length.is_none_or(|m| m == n) => length = Some(n),
                    _ => bad_length = true,
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
            for coding in f.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                if !coding.is_empty() {
                    codings += 1;
                    only_chunked &= coding.eq_ignore_ascii_case(b"chunked");
                }
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in f.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }

    let no_body = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut keep_alive = if http11 { !close } else { keep_alive_token && !close };
    let framing = if no_body {
        BodyFraming::Empty
    } else if transfer_encoding {
        // Only `chunked`, once: another coding (gzip, say) would reach the client undone with
        // its Transfer-Encoding stripped, and `chunked` twice is not a valid message.
        if codings != 1 || !only_chunked {
            return Err(H1Error::UnsupportedCoding);
        }
        // Transfer-Encoding overrides Content-Length (whose field is then dropped, RFC 9112
        // §6.3); a message with both was made by something confused, as is an HTTP/1.0 one
        // with a transfer coding (§6.1), so the connection is not used again.
        if length.is_some() || bad_length || !http11 {
            keep_alive = false;
        }
        BodyFraming::Chunked
    } else if bad_length {
        return Err(H1Error::BadContentLength);
    } else if let Some(n) = length {
        BodyFraming::Length(n)
    } else {
        keep_alive = false;
        BodyFraming::UntilClose
    };

    // One copy holds the head and, when it has all arrived with it, the body: each header
    // value is a slice of it (as hyper's own are of its read buffer), not an allocation each.
    let body_len = match framing {
        BodyFraming::Empty => Some(0),
        BodyFraming::Length(n) => usize::try_from(n).ok().filter(|&n| buf.len() - head_len >= n),
        BodyFraming::Chunked | BodyFraming::UntilClose => None,
    };
    let shared = Bytes::copy_from_slice(&buf[..head_len + body_len.unwrap_or(0)]);
    let base = buf.as_ptr() as usize;
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    // Content-Length goes on as one number (`7, 7` is one length said twice), and not at all
    // beside a transfer coding or when it is not a number (a 304's or a HEAD answer's, which
    // frames nothing here).
    let mut content_length = (!transfer_encoding && !bad_length).then_some(length).flatten();
    for f in resp.headers.iter() {
        if f.name.eq_ignore_ascii_case("content-length") {
            if let Some(n) = content_length.take() {
                headers.append(http::header::CONTENT_LENGTH, HeaderValue::from(n));
            }
            continue;
        }
        let name = HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| H1Error::Malformed("invalid header name"))?;
        let value = if f.value.is_empty() {
            HeaderValue::from_static("")
        } else {
            let at = f.value.as_ptr() as usize - base;
            HeaderValue::from_maybe_shared(shared.slice(at..at + f.value.len()))
                .map_err(|_| H1Error::Malformed("invalid header value"))?
        };
        headers.append(name, value);
    }
    Ok(Some(ResponseHead {
        status,
        headers,
        head_len,
        framing,
        keep_alive,
        body: body_len.map(|n| shared.slice(head_len..head_len + n)),
    }))
}

fn parse_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid token",
        httparse::Error::Version => "not HTTP/1.x",
        httparse::Error::TooManyHeaders => "too many header fields",
    }
}

/// A non-empty run of ASCII digits as a number (no sign, no spaces), or `None`.
fn parse_decimal(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// How the gate frames a request body for the wiki.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body and no framing header (a GET, or any request whose headers already frame it).
    AsIs,
    /// No body, but the method expects one: `content-length: 0` is added.
    EmptyWithLength,
    /// A body of unknown length: `transfer-encoding: chunked` is added and the body is sent in
    /// chunks ([`chunk_header`], [`CHUNK_END`], [`LAST_CHUNK`]).
    Chunked,
}

/// Appends a request head: the request line, every field of `headers` (the caller has
/// removed hop-by-hop ones and set Host), the field `framing` calls for, and the blank line.
/// `target` is the origin-form target (`/path?query`).
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    framing: RequestFraming,
) {
    out.reserve(64 + target.len() + headers.len() * 48);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        RequestFraming::AsIs => {}
        RequestFraming::EmptyWithLength => out.extend_from_slice(b"content-length: 0\r\n"),
        RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the size line of a chunk of `len` bytes (`len` > 0; follow the data with
/// [`CHUNK_END`]).
pub fn chunk_header(out: &mut Vec<u8>, len: usize) {
    debug_assert!(len > 0, "a zero-size chunk ends the body");
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(b"0123456789abcdef"[(len >> (4 * i)) & 0xf]);
    }
    out.extend_from_slice(b"\r\n");
}

/// What follows a chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";
/// The last chunk and the empty trailer section: the end of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// One step of [`ChunkedDecoder::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// How many input bytes were used; drop them before the next call.
    pub consumed: usize,
    /// The body bytes found, a range of the input that ends at `consumed` (empty when none).
    pub data: Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading the size's hex digits (`digits` so far).
    Size {
        size: u64,
        digits: u32,
    },
    /// Whitespace after the size (before extensions or the CR).
    SizeSpace {
        size: u64,
    },
    /// In the extensions after a `;`, skipped up to the CR (`len` bytes so far).
    Extension {
        size: u64,
        len: u32,
    },
    /// After the size line's CR.
    SizeLf {
        size: u64,
    },
    /// Inside a chunk's data.
    Data {
        left: u64,
    },
    /// After a chunk's data: its CR, then its LF.
    DataCr,
    DataLf,
    /// After the last chunk: at the start of a trailer line (`seen` trailer bytes so far).
    TrailerStart {
        seen: u32,
    },
    /// Inside a trailer field line.
    TrailerLine {
        seen: u32,
    },
    /// After a trailer line's CR.
    TrailerLf {
        seen: u32,
    },
    /// After the empty line's CR.
    EndLf,
    /// The body is complete.
    Done,
}

/// Decodes the chunked transfer coding incrementally: feed it whatever has arrived, in any
/// pieces. Chunk extensions and trailer fields are read and dropped (the gate passes neither
/// on). Lines end in CRLF; a bare LF is an error.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: ChunkState,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size { size: 0, digits: 0 },
        }
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the whole body (the last chunk and the trailers) has been read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Reads framing from the start of `input` until it finds body bytes (returned as a range
    /// ending where the step stopped), runs out of input, or reaches the end of the body.
    /// Bytes after the end are not consumed.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, H1Error> {
        use ChunkState::*;
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            self.state = match self.state {
                Size { size, digits } => match char::from(b).to_digit(16) {
                    Some(d) => {
                        if digits == 16 {
                            return Err(H1Error::Chunked("chunk size too large"));
                        }
                        Size {
                            size: size << 4 | u64::from(d),
                            digits: digits + 1,
                        }
                    }
                    None if digits == 0 => return Err(H1Error::Chunked("expected a chunk size")),
                    None if b == b'\r' => SizeLf { size },
                    None if b == b';' => Extension { size, len: 1 },
                    None if b == b' ' || b == b'\t' => SizeSpace { size },
                    None => return Err(H1Error::Chunked("invalid byte after the chunk size")),
                },
                SizeSpace { size } => match b {
                    b' ' | b'\t' => SizeSpace { size },
                    b';' => Extension { size, len: 1 },
                    b'\r' => SizeLf { size },
                    _ => return Err(H1Error::Chunked("invalid byte after the chunk size")),
                },
                Extension { size, len } => match b {
                    b'\r' => SizeLf { size },
                    b'\n' => return Err(H1Error::Chunked("bare LF in a chunk size line")),
                    _ if len >= MAX_CHUNK_LINE => return Err(H1Error::Chunked("chunk extensions too long")),
                    _ => Extension { size, len: len + 1 },
                },
                SizeLf { size } => match b {
                    b'\n' if size == 0 => TrailerStart { seen: 0 },
                    b'\n' => Data { left: size },
                    _ => return Err(H1Error::Chunked("expected LF after the chunk size")),
                },
                Data { left } => {
                    let take = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    let left = left - take as u64;
                    self.state = if left == 0 { DataCr } else { Data { left } };
                    return Ok(Decoded {
                        consumed: i + take,
                        data: i..i + take,
                    });
                }
                DataCr => match b {
                    b'\r' => DataLf,
                    _ => return Err(H1Error::Chunked("expected CRLF after chunk data")),
                },
                DataLf => match b {
                    b'\n' => Size { size: 0, digits: 0 },
                    _ => return Err(H1Error::Chunked("expected CRLF after chunk data")),
                },
                TrailerStart { seen } => match b {
                    b'\r' => EndLf,
                    b'\n' => return Err(H1Error::Chunked("bare LF in the trailers")),
                    _ => TrailerLine { seen: seen + 1 },
                },
                TrailerLine { seen } => match b {
                    _ if seen >= MAX_TRAILERS => return Err(H1Error::Chunked("trailers too long")),
                    b'\r' => TrailerLf { seen: seen + 1 },
                    b'\n' => return Err(H1Error::Chunked("bare LF in the trailers")),
                    _ => TrailerLine { seen: seen + 1 },
                },
                TrailerLf { seen } => match b {
                    b'\n' => TrailerStart { seen: seen + 1 },
                    _ => return Err(H1Error::Chunked("expected LF after a trailer field")),
                },
                EndLf => match b {
                    b'\n' => {
                        self.state = Done;
                        return Ok(Decoded {
                            consumed: i + 1,
                            data: i + 1..i + 1,
                        });
                    }
                    _ => return Err(H1Error::Chunked("expected LF at the end of the body")),
                },
                Done => break,
            };
            i += 1;
        }
        Ok(Decoded {
            consumed: i,
            data: i..i,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;
    use proptest::prelude::*;

    fn head(text: &str) -> Result<Option<ResponseHead>, H1Error> {
        parse_response_head(text.as_bytes(), false)
    }

    fn complete(text: &str) -> ResponseHead {
        head(text).expect("parses").expect("complete")
    }

    #[test]
    fn a_body_that_has_all_arrived_comes_with_the_head() {
        let h = complete("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-A: b\r\nX-Empty:\r\n\r\nbodyNEXT");
        assert_eq!(h.body.as_deref(), Some(&b"body"[..]));
        assert_eq!(h.headers["x-a"], "b");
        assert_eq!(h.headers["x-empty"], "");
        assert_eq!(complete("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nbody").body, None);
        assert_eq!(
            complete("HTTP/1.1 204 No Content\r\n\r\nNEXT").body.as_deref(),
            Some(&b""[..])
        );
        assert_eq!(
            complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").body,
            None
        );
        assert_eq!(complete("HTTP/1.1 200 OK\r\n\r\nuntil close").body, None);
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let h = complete("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: b\r\n\r\nbody");
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.framing, BodyFraming::Length(12));
        assert!(h.keep_alive);
        assert_eq!(
            h.head_len,
            "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: b\r\n\r\n".len()
        );
        assert_eq!(h.headers["x-a"], "b");

        let h = complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (BodyFraming::Chunked, true));
        // Transfer-Encoding wins over Content-Length, whose field is dropped, and such a
        // connection is not reused; nor is an HTTP/1.0 one with a transfer coding.
        for t in [
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n",
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let h = complete(t);
            assert_eq!((h.framing, h.keep_alive), (BodyFraming::Chunked, false), "{t:?}");
            assert!(!h.headers.contains_key("content-length"), "{t:?}");
        }
        // Any coding but `chunked` alone is refused, not passed on undone.
        for te in [
            "gzip, chunked",
            "chunked, gzip",
            "gzip",
            "chunked, chunked",
            "chunked\r\nTransfer-Encoding: gzip",
            ",",
        ] {
            let t = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(head(&t).unwrap_err(), H1Error::UnsupportedCoding, "{te:?}");
        }
        let h = complete("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (BodyFraming::UntilClose, false));

        for status in ["204 No Content", "304 Not Modified", "100 Continue", "103 Early Hints"] {
            let h = complete(&format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n"));
            assert_eq!(h.framing, BodyFraming::Empty, "{status}");
        }
        let h = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, BodyFraming::Empty);
        assert!(h.keep_alive);
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        let ka = |t: &str| complete(t).keep_alive;
        assert!(!ka("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
        assert!(!ka(
            "HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(ka(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn content_length_must_be_one_number() {
        let h = complete("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\nX-A: b\r\nContent-Length: 7\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Length(7));
        // Passed on as one field with one number.
        let values: Vec<_> = h.headers.get_all("content-length").iter().collect();
        assert_eq!(values, ["7"]);
        // A bodiless answer keeps its (representation's) length, and drops one that is not a number.
        let h = complete("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n");
        assert_eq!(h.headers["content-length"], "10");
        assert!(!complete("HTTP/1.1 304 Not Modified\r\nContent-Length: 1, 2\r\n\r\n")
            .headers
            .contains_key("content-length"));
        for bad in ["7, 8", "-1", "+7", "0x10", "", "1 2", "99999999999999999999"] {
            let t = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(head(&t).unwrap_err(), H1Error::BadContentLength, "{bad:?}");
        }
        let t = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n";
        assert_eq!(head(t).unwrap_err(), H1Error::BadContentLength);
    }

    #[test]
    fn incomplete_oversized_and_malformed_heads() {
        assert!(head("HTTP/1.1 200 OK\r\nContent-Le").unwrap().is_none());
        assert!(head("").unwrap().is_none());
        let long = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_RESPONSE_HEAD));
        assert_eq!(head(&long).unwrap_err(), H1Error::TooLarge);
        let many: String = (0..=MAX_RESPONSE_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            head(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")).unwrap_err(),
            H1Error::TooLarge
        );
        assert!(matches!(head("HTTP/2 200 OK\r\n\r\n"), Err(H1Error::Malformed(_))));
        assert!(matches!(head("SSH-2.0-OpenSSH\r\n\r\n"), Err(H1Error::Malformed(_))));
        assert_eq!(
            head("HTTP/1.1 101 Switching Protocols\r\n\r\n").unwrap_err(),
            H1Error::Upgrade
        );
    }

    #[test]
    fn request_heads_carry_every_field_and_the_framing() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("wiki.example"));
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        let mut out = Vec::new();
        write_request_head(&mut out, &Method::POST, "/w/index.php?a=b", &h, RequestFraming::Chunked);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /w/index.php?a=b HTTP/1.1\r\nhost: wiki.example\r\nx-a: 1\r\nx-a: 2\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            &Method::PUT,
            "/",
            &HeaderMap::new(),
            RequestFraming::EmptyWithLength,
        );
        assert_eq!(out, b"PUT / HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
    }

    #[test]
    fn chunk_headers_are_lowercase_hex() {
        for (n, text) in [
            (1, "1\r\n"),
            (15, "f\r\n"),
            (16, "10\r\n"),
            (0x1234_abcd, "1234abcd\r\n"),
        ] {
            let mut out = Vec::new();
            chunk_header(&mut out, n);
            assert_eq!(out, text.as_bytes());
        }
    }

    /// Decodes `input` fed in pieces split at `cuts`; the body, or the error.
    fn decode_all(input: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, usize), H1Error> {
        let mut dec = ChunkedDecoder::new();
        let mut body = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut used = 0;
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.push(input.len());
        points.sort_unstable();
        for p in points {
            buf.extend_from_slice(&input[fed..p]);
            fed = p;
            loop {
                let d = dec.decode(&buf)?;
                assert!(d.data.end == d.consumed || d.data.is_empty());
                body.extend_from_slice(&buf[d.data.clone()]);
                buf.drain(..d.consumed);
                used += d.consumed;
                if dec.is_done() || d.consumed == 0 || buf.is_empty() {
                    break;
                }
            }
            if dec.is_done() {
                return Ok((body, used));
            }
        }
        Err(H1Error::Chunked("incomplete"))
    }

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let input = b"5;name=value\r\nhello\r\n1\r\n \r\nA \r\n0123456789\r\n0\r\nExpires: never\r\nX: y\r\n\r\nNEXT";
        let (body, used) = decode_all(input, &[]).unwrap();
        assert_eq!(body, b"hello 0123456789");
        assert_eq!(&input[used..], b"NEXT");
        assert_eq!(decode_all(b"0\r\n\r\n", &[]).unwrap().0, b"");
    }

    #[test]
    fn malformed_chunked_bodies_are_errors() {
        for bad in [
            &b"\r\n"[..],
            b"g\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloX\r\n",
            b"5\r\nhello\r\r",
            b"0\r\nX: y\n\r\n",
            b"0\r\n\rX",
            b"11111111111111111\r\n",
            b"-5\r\n",
            b"1 2\r\nx\r\n0\r\n\r\n",
        ] {
            assert!(decode_all(bad, &[]).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let long_ext = format!("1;{}\r\n", "x".repeat(MAX_CHUNK_LINE as usize + 1));
        assert_eq!(
            decode_all(long_ext.as_bytes(), &[]).unwrap_err(),
            H1Error::Chunked("chunk extensions too long")
        );
    }

    /// A chunked encoding of `pieces` with optional extensions and trailers.
    fn encode(pieces: &[Vec<u8>], ext: bool, trailers: &[(String, String)]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces.iter().filter(|p| !p.is_empty()) {
            let mut size = Vec::new();
            chunk_header(&mut size, p.len());
            if ext {
                size.truncate(size.len() - 2);
                size.extend_from_slice(b";ext=\"a b\"\r\n");
            }
            out.extend_from_slice(&size);
            out.extend_from_slice(p);
            out.extend_from_slice(CHUNK_END);
        }
        out.extend_from_slice(b"0\r\n");
        for (k, v) in trailers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    proptest! {
        #[test]
        fn chunked_round_trips_in_any_pieces(
            pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
            ext in any::<bool>(),
            trailers in prop::collection::vec(("[A-Za-z-]{1,12}", "[ -~]{0,20}"), 0..3),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
            tail in prop::collection::vec(any::<u8>(), 0..16),
        ) {
            let mut input = encode(&pieces, ext, &trailers);
            let framed = input.len();
            input.extend_from_slice(&tail);
            let (body, used) = decode_all(&input, &cuts).unwrap();
            prop_assert_eq!(body, pieces.concat());
            prop_assert_eq!(used, framed);
        }

        #[test]
        fn chunked_decoding_of_any_bytes_does_not_depend_on_the_pieces(
            input in prop::collection::vec(prop::sample::select(b"0123456789abcdefAF;= \r\nxX".to_vec()), 0..80),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let whole = decode_all(&input, &[]);
            let cut = decode_all(&input, &cuts);
            match (&whole, &cut) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                _ => prop_assert!(false, "{:?} vs {:?}", whole, cut),
            }
        }

        #[test]
        fn response_heads_parse_in_any_prefix(
            status in 200u16..600,
            fields in prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[!-~]([ -~]{0,30}[!-~])?"), 0..10),
            length in prop::option::of(0u64..1_000_000),
            cut in any::<usize>(),
        ) {
            let mut text = format!("HTTP/1.1 {status} Reason\r\n");
            for (k, v) in &fields {
                if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("transfer-encoding") && !k.eq_ignore_ascii_case("connection") {
                    text += &format!("{k}: {v}\r\n");
                }
            }
            if let Some(n) = length {
                text += &format!("Content-Length: {n}\r\n");
            }
            text += "\r\n";
            let bytes = text.as_bytes();
            let h = parse_response_head(bytes, false).unwrap().unwrap();
            prop_assert_eq!(h.head_len, bytes.len());
            let sent: Vec<&str> = fields.iter().filter(|(k, _)| {
                !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("transfer-encoding") && !k.eq_ignore_ascii_case("connection")
            }).map(|(_, v)| v.as_str()).collect();
            let got: Vec<&str> = h.headers.iter().filter(|(k, _)| *k != header::CONTENT_LENGTH).map(|(_, v)| v.to_str().unwrap()).collect();
            prop_assert_eq!(got.len(), sent.len());
            for v in &sent {
                prop_assert!(got.contains(v), "{} not in {:?}", v, got);
            }
            prop_assert_eq!(h.status.as_u16(), status);
            let expected = match length {
                _ if status == 204 || status == 304 => BodyFraming::Empty,
                Some(n) => BodyFraming::Length(n),
                None => BodyFraming::UntilClose,
            };
            prop_assert_eq!(h.framing, expected);
            let prefix = &bytes[..cut % bytes.len()];
            prop_assert!(parse_response_head(prefix, false).unwrap().is_none());
        }
    }
}
