//! The framing of the wiki's responses on arbitrary bytes: the response head parser and the
//! chunked decoder. Any panic is a bug, and so is an answer that depends on how the bytes were
//! split: the gate reads them as they arrive, in whatever pieces the socket gives.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wikiguard_gate::h1::{parse_response_head, BodyFraming, ChunkedDecoder};

/// The body decoded from `input` fed in pieces of `step` bytes; `Err` on a framing error,
/// `Ok(None)` when the input ends first.
fn dechunk(input: &[u8], step: usize) -> Result<Option<(Vec<u8>, usize)>, ()> {
    let mut dec = ChunkedDecoder::new();
    let (mut body, mut buf, mut used) = (Vec::new(), Vec::new(), 0);
    for piece in input.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        while !buf.is_empty() && !dec.is_done() {
            let d = dec.decode(&buf).map_err(|_| ())?;
            assert!(d.consumed <= buf.len() && d.data.start <= d.data.end);
            assert!(d.data.is_empty() || d.data.end == d.consumed);
            body.extend_from_slice(&buf[d.data.clone()]);
            buf.drain(..d.consumed);
            used += d.consumed;
            if d.consumed == 0 {
                break;
            }
        }
        if dec.is_done() {
            return Ok(Some((body, used)));
        }
    }
    Ok(None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else { return };
    for head_request in [false, true] {
        if let Ok(Some(h)) = parse_response_head(input, head_request) {
            assert!(h.head_len <= input.len());
            // The head parses the same from exactly its own bytes, and a prefix is incomplete.
            let again = parse_response_head(&input[..h.head_len], head_request);
            assert!(matches!(again, Ok(Some(ref g)) if g.head_len == h.head_len && g.framing == h.framing));
            assert!(matches!(parse_response_head(&input[..h.head_len - 1], head_request), Ok(None)));
            // What goes on to the client never says a length the body is not framed by.
            let lengths: Vec<_> = h.headers.get_all("content-length").iter().collect();
            match h.framing {
                BodyFraming::Chunked | BodyFraming::UntilClose => assert!(lengths.is_empty()),
                BodyFraming::Length(n) => assert_eq!(lengths, [n.to_string().as_str()]),
                BodyFraming::Empty => assert!(lengths.len() <= 1),
            }
        }
    }
    let whole = dechunk(input, input.len());
    let pieces = dechunk(input, usize::from(step % 16) + 1);
    match (&whole, &pieces) {
        (Ok(Some(a)), Ok(Some(b))) => assert_eq!(a, b),
        (Err(()), Err(())) | (Ok(None), Ok(None)) => {}
        _ => panic!("{whole:?} vs {pieces:?}"),
    }
});
