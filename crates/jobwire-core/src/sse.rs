//! An incremental decoder for `text/event-stream` (server-sent events), following the
//! WHATWG HTML "event stream interpretation" rules.
//!
//! Feed it the body's chunks as they arrive, in whatever sizes the transport delivers
//! them; it splits lines (CRLF, LF or CR, also across chunks), strips a leading BOM,
//! decodes UTF-8 and dispatches an [`SseEvent`] at every blank line. It does no I/O, so
//! both facades (and their reconnect logic, via [`SseDecoder::last_event_id`] and
//! [`SseDecoder::retry`]) share it.
//!
//! ```
//! use jobwire_core::sse::{SseDecoder, SseEvent};
//!
//! let mut decoder = SseDecoder::new();
//! let mut events = Vec::new();
//! // A chunk boundary may fall anywhere, even inside a line.
//! decoder.push(b"event: progress\nid: 7\ndata: {\"pct\"", &mut events)?;
//! assert!(events.is_empty());
//! decoder.push(b":50}\n\ndata: done\n\n", &mut events)?;
//! assert_eq!(
//!     events,
//!     [
//!         SseEvent { event: "progress".into(), data: "{\"pct\":50}".into(), id: "7".into() },
//!         SseEvent { event: "message".into(), data: "done".into(), id: "7".into() },
//!     ]
//! );
//! assert_eq!(decoder.last_event_id(), "7");
//! # Ok::<(), jobwire_core::sse::SseError>(())
//! ```
//!
//! Interpretations where the WHATWG text leaves room:
//!
//! - [`SseDecoder::last_event_id`] is the *dispatched* last event ID string (what an
//!   `EventSource` sends as `Last-Event-ID` when it reconnects); an `id:` field of an
//!   event that is never dispatched (the stream ends first) does not change it.
//! - `retry:` takes effect as soon as its line is read, not at dispatch, as the
//!   standard says; an empty value or one too large for a `u64` is ignored.

use std::borrow::Cow;
use std::time::Duration;

/// The UTF-8 byte order mark, stripped once at the start of a stream.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// How much longer than the data limit one line may be: room for a field's name, its
/// colon and space (`data: ` is six bytes), so data of exactly the limit fits on one line.
pub const LINE_OVERHEAD: usize = 16;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, "message" when the event had none.
    pub event: String,
    /// The `data:` lines joined with "\n" (the final newline removed).
    pub data: String,
    /// The last event ID string at dispatch time (WHATWG: it persists across events
    /// until an `id:` field changes it; may be empty).
    pub id: String,
}

/// Why an event stream could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SseError {
    /// An event's data (or one line) grew past the decoder's limit.
    #[error("an event larger than {limit} bytes")]
    TooLarge {
        /// The decoder's limit, in bytes.
        limit: usize,
    },
}

/// Whether the start of the stream has been checked for a BOM yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BomState {
    /// This many leading bytes of the stream matched the BOM so far (0..=2).
    Pending(usize),
    /// Past the start of the stream: any further BOM is data.
    Done,
}

/// An incremental `text/event-stream` decoder; see the [module docs](self).
///
/// One decoder follows one `EventSource`: across reconnections ([`reset_stream`])
/// it keeps the last event ID and the reconnection time.
///
/// [`reset_stream`]: SseDecoder::reset_stream
#[derive(Debug, Clone)]
pub struct SseDecoder {
    limit: usize,
    /// Bytes of the current line whose end has not arrived yet. They never contain CR
    /// or LF, so a new chunk is scanned from its own start and nothing is rescanned.
    line: Vec<u8>,
    /// The previous chunk ended with a CR: an LF opening the next one ends no line.
    skip_lf: bool,
    bom: BomState,
    data: String,
    event_type: String,
    /// The last event ID buffer: set by `id:`, copied to `last_event_id` at dispatch.
    id_buffer: String,
    last_event_id: String,
    retry: Option<Duration>,
    /// A limit was exceeded: the stream's framing is lost until `reset_stream`.
    failed: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// The default limit on one event's data: 1 MiB, the most a jobwire server sends
    /// (docs/api.md, "Limits"), so a decoder with it reads every stream.
    pub const DEFAULT_LIMIT: usize = 1024 * 1024;

    /// A decoder with the [default limit](Self::DEFAULT_LIMIT).
    pub fn new() -> Self {
        Self::with_limit(Self::DEFAULT_LIMIT)
    }

    /// A decoder that fails with [`SseError::TooLarge`] when one event's data (its
    /// `data:` values joined with `\n`, as dispatched) would be longer than `limit`
    /// bytes, or one line (without its line end) longer than `limit` plus
    /// [`LINE_OVERHEAD`].
    pub fn with_limit(limit: usize) -> Self {
        SseDecoder {
            limit,
            line: Vec::new(),
            skip_lf: false,
            bom: BomState::Pending(0),
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            retry: None,
            failed: false,
        }
    }

    /// Feeds the next chunk of the stream; dispatched events are appended to `out`.
    ///
    /// A line ended by a CR is processed at once, without waiting for the next chunk
    /// to see whether an LF follows (an LF that does is then skipped).
    ///
    /// # Errors
    ///
    /// [`SseError::TooLarge`] when a line (even before its end arrives) or an event's
    /// data exceeds its limit. Events dispatched earlier in the same chunk stay in
    /// `out`. The stream cannot be resynchronised after that, so every later `push`
    /// fails the same way until the caller starts a new stream with
    /// [`reset_stream`](Self::reset_stream).
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.failed {
            return Err(self.too_large());
        }
        let mut rest = self.strip_bom(chunk);
        if self.skip_lf && !rest.is_empty() {
            self.skip_lf = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\r' || b == b'\n') {
            let ends_with_cr = rest[end] == b'\r';
            if self.line.is_empty() {
                // The whole line is in this chunk: decode it in place, no copy.
                self.check_line_len(end)?;
                self.process_line(&rest[..end], out)?;
            } else {
                self.check_line_len(self.line.len() + end)?;
                self.line.extend_from_slice(&rest[..end]);
                // Taken out so that `process_line` may borrow `self` mutably; put back
                // afterwards to keep its capacity.
                let mut line = std::mem::take(&mut self.line);
                let result = self.process_line(&line, out);
                line.clear();
                self.line = line;
                result?;
            }
            rest = &rest[end + 1..];
            if ends_with_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        self.check_line_len(self.line.len() + rest.len())?;
        self.line.extend_from_slice(rest);
        Ok(())
    }

    /// End of stream: an event not terminated by a blank line is discarded (WHATWG),
    /// buffers cleared.
    ///
    /// That includes an `id:` field of the discarded event: [`last_event_id`] stays
    /// what the last dispatch made it.
    ///
    /// [`last_event_id`]: Self::last_event_id
    pub fn finish(&mut self) {
        self.line.clear();
        self.skip_lf = false;
        self.data.clear();
        self.event_type.clear();
        self.id_buffer.clone_from(&self.last_event_id);
    }

    /// A new connection of the same `EventSource` begins: clears line/data/event
    /// buffers and the BOM state (a BOM is stripped again at the start of the new
    /// stream) but keeps [`last_event_id`](Self::last_event_id) and
    /// [`retry`](Self::retry).
    ///
    /// It also clears a failure from [`push`](Self::push).
    pub fn reset_stream(&mut self) {
        self.finish();
        self.bom = BomState::Pending(0);
        self.failed = false;
    }

    /// The last event ID string: the ID of the last dispatched event, to send as
    /// `Last-Event-ID` when reconnecting. Empty when there is none.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The latest valid `retry:` value, as a Duration of milliseconds.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Sets the last event id (a client resuming with a known id).
    ///
    /// Events dispatched from now on carry it until an `id:` field changes it.
    pub fn set_last_event_id(&mut self, id: impl Into<String>) {
        self.last_event_id = id.into();
        self.id_buffer.clone_from(&self.last_event_id);
    }

    /// Consumes a BOM at the start of the stream, also one split across chunks, and
    /// returns the rest of `chunk`.
    fn strip_bom<'a>(&mut self, chunk: &'a [u8]) -> &'a [u8] {
        let BomState::Pending(mut matched) = self.bom else {
            return chunk;
        };
        let mut rest = chunk;
        while let Some((&byte, tail)) = rest.split_first() {
            if byte != BOM[matched] {
                // Not a BOM after all: the bytes held back belong to the first line
                // (they are not CR or LF, so they cannot end it).
                self.line.extend_from_slice(&BOM[..matched]);
                self.bom = BomState::Done;
                return rest;
            }
            matched += 1;
            rest = tail;
            if matched == BOM.len() {
                self.bom = BomState::Done;
                return rest;
            }
        }
        self.bom = BomState::Pending(matched);
        rest
    }

    fn check_line_len(&mut self, len: usize) -> Result<(), SseError> {
        if len > self.limit.saturating_add(LINE_OVERHEAD) {
            return Err(self.fail());
        }
        Ok(())
    }

    /// Marks the stream as failed and drops what it buffered.
    fn fail(&mut self) -> SseError {
        self.finish();
        self.failed = true;
        self.too_large()
    }

    fn too_large(&self) -> SseError {
        SseError::TooLarge { limit: self.limit }
    }

    /// Interprets one complete line (without its line end).
    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        match line.first() {
            None => {
                self.dispatch(out);
                return Ok(());
            }
            Some(b':') => return Ok(()),
            Some(_) => {}
        }
        // Lines were split on ASCII CR/LF, which never occur inside a UTF-8 sequence and
        // end any invalid one, so decoding per line equals decoding the whole stream.
        let line: Cow<'_, str> = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "event" => {
                self.event_type.clear();
                self.event_type.push_str(value);
            }
            "data" => {
                // What dispatch would hand out if this were the last line: the buffer
                // holds a `\n` after each earlier line, and the last one is removed.
                if self.data.len().saturating_add(value.len()) > self.limit {
                    return Err(self.fail());
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            // A NUL in the value makes the whole field ignored.
            "id" if !value.contains('\0') => {
                self.id_buffer.clear();
                self.id_buffer.push_str(value);
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Too many digits for a u64 fails to parse: ignored like any other
                // invalid value.
                if let Ok(ms) = value.parse::<u64>() {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A blank line: dispatches the event buffered so far, if it has data.
    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        // The ID updates even when no event follows (a blank event with only `id:`).
        self.last_event_id.clone_from(&self.id_buffer);
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        let event = if self.event_type.is_empty() {
            "message".to_owned()
        } else {
            std::mem::take(&mut self.event_type)
        };
        out.push(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            id: self.last_event_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a decoder produced from a whole stream, after `finish`.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        events: Vec<SseEvent>,
        last_event_id: String,
        retry: Option<Duration>,
    }

    fn run(chunks: &[&[u8]]) -> Outcome {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        for chunk in chunks {
            decoder.push(chunk, &mut events).unwrap();
        }
        decoder.finish();
        Outcome {
            events,
            last_event_id: decoder.last_event_id().to_owned(),
            retry: decoder.retry(),
        }
    }

    /// Every way to feed `input`: whole, byte by byte, and cut at every pair of
    /// positions `i <= j` (which covers every single cut and empty chunks).
    fn splits(input: &[u8]) -> Vec<Vec<&[u8]>> {
        let mut all = vec![vec![input], input.chunks(1).collect()];
        for i in 0..=input.len() {
            for j in i..=input.len() {
                all.push(vec![&input[..i], &input[i..j], &input[j..]]);
            }
        }
        all
    }

    fn ev(event: &str, data: &str, id: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: id.into(),
        }
    }

    struct Case {
        name: &'static str,
        input: &'static [u8],
        events: Vec<SseEvent>,
        last_event_id: &'static str,
        retry: Option<u64>,
    }

    fn case(name: &'static str, input: &'static [u8], events: Vec<SseEvent>) -> Case {
        Case {
            name,
            input,
            events,
            last_event_id: "",
            retry: None,
        }
    }

    #[test]
    fn decodes_table_at_every_split() {
        let cases = [
            case(
                "LF",
                b"data: a\n\ndata: b\n\n",
                vec![ev("message", "a", ""), ev("message", "b", "")],
            ),
            case(
                "CRLF",
                b"data: a\r\n\r\ndata: b\r\n\r\n",
                vec![ev("message", "a", ""), ev("message", "b", "")],
            ),
            case(
                "CR",
                b"data: a\r\rdata: b\r\r",
                vec![ev("message", "a", ""), ev("message", "b", "")],
            ),
            // LF then CR is two line ends; the CR ends a blank line.
            case(
                "mixed",
                b"data: a\r\ndata: b\rdata: c\n\rdata: d\n\r\n",
                vec![ev("message", "a\nb\nc", ""), ev("message", "d", "")],
            ),
            // Split between CR and LF, this must not become a blank line in between.
            case(
                "CRLF is one line end",
                b"data: a\r\ndata: b\r\n\r\n",
                vec![ev("message", "a\nb", "")],
            ),
            case(
                "leading BOM",
                b"\xEF\xBB\xBFdata: a\n\n",
                vec![ev("message", "a", "")],
            ),
            // A second BOM is part of the field name, so the field is unknown.
            case(
                "BOM twice",
                b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n",
                vec![ev("message", "b", "")],
            ),
            case(
                "BOM in data",
                b"data: \xEF\xBB\xBFx\n\n",
                vec![ev("message", "\u{FEFF}x", "")],
            ),
            case(
                "BOM on a later line",
                b"data: a\n\n\xEF\xBB\xBFdata: b\n\ndata: c\n\n",
                vec![ev("message", "a", ""), ev("message", "c", "")],
            ),
            // A BOM's first bytes without the rest are (invalid) data of the first line.
            case(
                "partial BOM",
                b"\xEF\xBBdata: a\n\ndata: b\n\n",
                vec![ev("message", "b", "")],
            ),
            case(
                "partial BOM ending a line",
                b"\xEF\nevent: e\ndata: a\n\n",
                vec![ev("e", "a", "")],
            ),
            case(
                "comments",
                b": keep-alive\n\n:\ndata: a\n: between\ndata: b\n\n",
                vec![ev("message", "a\nb", "")],
            ),
            case(
                "multi-line data",
                b"data: a\ndata: b\ndata:\ndata: c\n\n",
                vec![ev("message", "a\nb\n\nc", "")],
            ),
            case(
                "data without colon",
                b"data\n\ndata\ndata\n\n",
                vec![ev("message", "", ""), ev("message", "\n", "")],
            ),
            case(
                "one leading space stripped",
                b"data:  two\n\ndata:none\n\ndata: a:b: c\n\n",
                vec![
                    ev("message", " two", ""),
                    ev("message", "none", ""),
                    ev("message", "a:b: c", ""),
                ],
            ),
            Case {
                last_event_id: "1",
                ..case(
                    "id with NUL ignored",
                    b"id: 1\ndata: a\n\nid: 2\x00x\ndata: b\n\n",
                    vec![ev("message", "a", "1"), ev("message", "b", "1")],
                )
            },
            Case {
                last_event_id: "3",
                ..case(
                    "id persists and updates without data",
                    b"id: 1\ndata: a\n\ndata: b\n\nid: 2\n\ndata: c\n\nid: 3\nevent: x\n\n",
                    vec![
                        ev("message", "a", "1"),
                        ev("message", "b", "1"),
                        ev("message", "c", "2"),
                    ],
                )
            },
            case(
                "empty id clears",
                b"id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\nid:\ndata: c\n\n",
                vec![
                    ev("message", "a", "1"),
                    ev("message", "b", ""),
                    ev("message", "c", ""),
                ],
            ),
            Case {
                retry: Some(1500),
                ..case(
                    "retry",
                    b"retry: 12a\nretry:\nretry\nretry: -1\nretry: 1500\nretry: 99999999999999999999999\nretry: 2 \nretry: +3\nretry: \xD9\xA3\n",
                    vec![],
                )
            },
            Case {
                retry: Some(0),
                ..case("retry zero", b"retry: 0\ndata: a\n\n", vec![ev("message", "a", "")])
            },
            case(
                "unknown and miscased fields",
                b"foo: bar\nData: x\nEVENT: y\nid : 4\n data: z\ndata: a\n\n",
                vec![ev("message", "a", "")],
            ),
            case(
                "event type reset after dispatch",
                b"event: add\ndata: 1\n\ndata: 2\n\nevent: x\n\ndata: 3\n\nevent:\ndata: 4\n\nevent: a\nevent: b\ndata: 5\n\n",
                vec![
                    ev("add", "1", ""),
                    ev("message", "2", ""),
                    ev("message", "3", ""),
                    ev("message", "4", ""),
                    ev("b", "5", ""),
                ],
            ),
            Case {
                last_event_id: "1",
                ..case(
                    "unterminated event discarded",
                    b"id: 1\ndata: a\n\nid: 2\nevent: e\ndata: b\n",
                    vec![ev("message", "a", "1")],
                )
            },
            case(
                "unterminated line discarded",
                b"data: a\n\ndata: b",
                vec![ev("message", "a", "")],
            ),
            case(
                "UTF-8 across chunks",
                "event: é\ndata: é€😀\n\n".as_bytes(),
                vec![ev("é", "é€😀", "")],
            ),
            case(
                "invalid UTF-8 replaced",
                b"data: a\xFFb\xE2\x82\ndata: \xF0\x9F\n\n",
                vec![ev("message", "a\u{FFFD}b\u{FFFD}\n\u{FFFD}", "")],
            ),
            case("empty stream", b"", vec![]),
            case("only blank lines", b"\n\r\n\r\n", vec![]),
        ];
        for case in &cases {
            let expected = Outcome {
                events: case.events.clone(),
                last_event_id: case.last_event_id.to_owned(),
                retry: case.retry.map(Duration::from_millis),
            };
            for chunks in splits(case.input) {
                assert_eq!(run(&chunks), expected, "{}: {chunks:?}", case.name);
            }
        }
    }

    #[test]
    fn cr_line_is_dispatched_without_waiting_for_the_next_chunk() {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        decoder.push(b"data: a\r\r", &mut events).unwrap();
        assert_eq!(events, [ev("message", "a", "")]);
        // The LF completes the CRLF of the blank line: no line, no event.
        decoder.push(b"\ndata: b\r", &mut events).unwrap();
        decoder.push(b"\n\r", &mut events).unwrap();
        assert_eq!(events, [ev("message", "a", ""), ev("message", "b", "")]);
    }

    #[test]
    fn too_large_line_at_every_split() {
        // 33 bytes of line against a limit of 16 (lines may have 16 + 16).
        let input = b"data: ok\n\n: 0123456789abcdefghijklmnopqrstu\n\ndata: after\n\n";
        for chunks in splits(input) {
            let mut decoder = SseDecoder::with_limit(16);
            let mut events = Vec::new();
            let result = chunks
                .iter()
                .try_for_each(|chunk| decoder.push(chunk, &mut events));
            assert_eq!(result, Err(SseError::TooLarge { limit: 16 }), "{chunks:?}");
            assert_eq!(events, [ev("message", "ok", "")], "{chunks:?}");
        }
    }

    #[test]
    fn too_large_line_fails_before_its_end_arrives() {
        let mut decoder = SseDecoder::with_limit(8);
        let mut events = Vec::new();
        decoder
            .push(b": 1234567890123456789012", &mut events)
            .unwrap(); // 24: the line limit
        assert_eq!(
            decoder.push(b"7", &mut events),
            Err(SseError::TooLarge { limit: 8 })
        );
    }

    /// The limit is on the data an event carries: data of exactly the limit is read,
    /// one byte more is not, whether on one line or several.
    #[test]
    fn data_at_the_limit_is_accepted() {
        let mut events = Vec::new();
        let mut decoder = SseDecoder::with_limit(8);
        decoder.push(b"data: 12345678\r\r", &mut events).unwrap();
        decoder
            .push(b"data: 1234\ndata: 567\n\n", &mut events)
            .unwrap();
        assert_eq!(
            events,
            [
                ev("message", "12345678", ""),
                ev("message", "1234\n567", "")
            ]
        );
        let mut decoder = SseDecoder::with_limit(8);
        decoder.push(b"data: 123456789\r", &mut events).unwrap_err();
        let mut decoder = SseDecoder::with_limit(8);
        decoder
            .push(b"data: 1234\ndata: 5678\n", &mut events)
            .unwrap_err();
    }

    #[test]
    fn too_large_data_at_every_split() {
        // Each line fits; the data grows to 8 + 1 + 8 = 17 bytes.
        let input = b"data: 01234567\ndata: 01234567\n\n";
        for chunks in splits(input) {
            let mut decoder = SseDecoder::with_limit(16);
            let mut events = Vec::new();
            let result = chunks
                .iter()
                .try_for_each(|chunk| decoder.push(chunk, &mut events));
            assert_eq!(result, Err(SseError::TooLarge { limit: 16 }), "{chunks:?}");
            assert!(events.is_empty());
        }
        // Empty `data` lines add a byte each, so they are bounded too.
        let mut decoder = SseDecoder::with_limit(4);
        let mut events = Vec::new();
        decoder
            .push(b"data\ndata\ndata\ndata\ndata\n", &mut events)
            .unwrap();
        assert!(decoder.push(b"data\n", &mut events).is_err());
    }

    #[test]
    fn failure_is_sticky_until_reset_stream() {
        let mut decoder = SseDecoder::with_limit(16);
        let mut events = Vec::new();
        decoder.push(b"id: 5\ndata: a\n\n", &mut events).unwrap();
        let too_large = Err(SseError::TooLarge { limit: 16 });
        assert_eq!(
            decoder.push(b"data: 0123456789abcdefghijklmnopqrstuvwxyz", &mut events),
            too_large
        );
        assert_eq!(decoder.push(b"\n\ndata: b\n\n", &mut events), too_large);
        decoder.reset_stream();
        decoder.push(b"data: c\n\n", &mut events).unwrap();
        assert_eq!(events, [ev("message", "a", "5"), ev("message", "c", "5")]);
    }

    #[test]
    fn reset_stream_keeps_id_and_retry_and_strips_a_new_bom() {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        decoder
            .push(
                b"\xEF\xBB\xBFid: 7\ndata: a\n\nretry: 100\nid: 8\ndata: partial",
                &mut events,
            )
            .unwrap();
        decoder.reset_stream();
        assert_eq!(decoder.last_event_id(), "7");
        assert_eq!(decoder.retry(), Some(Duration::from_millis(100)));
        // The new stream's BOM arrives split; the old partial line and id are gone.
        decoder.push(b"\xEF", &mut events).unwrap();
        decoder.push(b"\xBB\xBFdata: b\n\n", &mut events).unwrap();
        assert_eq!(events, [ev("message", "a", "7"), ev("message", "b", "7")]);

        // A stream without a BOM re-arms BOM stripping too.
        let mut decoder = SseDecoder::new();
        decoder.push(b"data: x\n\n", &mut events).unwrap();
        decoder.reset_stream();
        decoder
            .push(b"\xEF\xBB\xBFdata: y\n\n", &mut events)
            .unwrap();
        assert_eq!(events.last(), Some(&ev("message", "y", "")));
    }

    #[test]
    fn reset_stream_forgets_a_pending_cr() {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        decoder.push(b"data: a\r", &mut events).unwrap();
        decoder.reset_stream();
        // The LF opening the new stream is a blank line of its own.
        decoder.push(b"\ndata: b\n\n", &mut events).unwrap();
        assert_eq!(events, [ev("message", "b", "")]);
    }

    #[test]
    fn set_last_event_id_resumes() {
        let mut decoder = SseDecoder::default();
        decoder.set_last_event_id("42");
        assert_eq!(decoder.last_event_id(), "42");
        let mut events = Vec::new();
        decoder
            .push(b"data: a\n\nid: 43\ndata: b\n\n", &mut events)
            .unwrap();
        assert_eq!(events, [ev("message", "a", "42"), ev("message", "b", "43")]);
        assert_eq!(decoder.last_event_id(), "43");
    }

    #[test]
    fn error_message_names_the_limit() {
        assert_eq!(
            SseError::TooLarge { limit: 10 }.to_string(),
            "an event larger than 10 bytes"
        );
    }
}
