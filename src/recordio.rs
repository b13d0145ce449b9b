//! RecordIO: how Mesos puts many messages into one HTTP response.
//!
//! *Plumbing: a reader may skip this file* (README's step 1 shows the
//! bytes).
//!
//! The response to a `SUBSCRIBE` call never ends: the master (or, for an
//! executor, the agent) keeps writing events into it for as long as the
//! subscription lives. HTTP chunk boundaries carry no meaning, so Mesos
//! frames each event itself, as RecordIO:
//!
//! ```text
//! <length in decimal ASCII>\n<exactly that many bytes>
//! ```
//!
//! For example `5\nhello3\nfoo` holds two records, `hello` and `foo`. A
//! stream that ends between two records ends cleanly; one that ends anywhere
//! else was cut off.
//!
//! This is one `HEARTBEAT` event as the master frames it, first in
//! protobuf (field 1, the event type, as a varint: `08`, then `HEARTBEAT`'s
//! number, 8), then in JSON:
//!
//! ```
//! use mesos_tutorial::content_type::ContentType;
//! use mesos_tutorial::proto::scheduler::{event, Event};
//! use mesos_tutorial::recordio::encode_record;
//!
//! let mut heartbeat = Event::new();
//! heartbeat.set_type(event::Type::HEARTBEAT);
//!
//! let protobuf = ContentType::Protobuf.encode(&heartbeat);
//! assert_eq!(encode_record(&protobuf), b"2\n\x08\x08");
//!
//! let json = ContentType::Json.encode(&heartbeat);
//! assert_eq!(encode_record(&json), b"20\n{\"type\":\"HEARTBEAT\"}");
//! ```
//!
//! Reading is the reverse, one record at a time. The bytes come from the
//! network, so the reader trusts nothing: a length above a limit is refused
//! before anything is allocated, and every other malformation is a typed
//! [`RecordIoError`], never a panic.
//!
//! ```
//! use mesos_tutorial::recordio::{encode_record, RecordIoReader};
//!
//! let mut stream = encode_record(b"hello");
//! stream.extend(encode_record(b"foo"));
//!
//! let mut reader = RecordIoReader::new(&stream[..]);
//! assert_eq!(reader.next_record().unwrap(), Some(&b"hello"[..]));
//! assert_eq!(reader.next_record().unwrap(), Some(&b"foo"[..]));
//! assert_eq!(reader.next_record().unwrap(), None); // a clean end
//! ```

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};

/// The largest record accepted unless the caller says otherwise: 16 MiB.
///
/// Mesos events are small (an `OFFERS` event with hundreds of offers is well
/// under a megabyte); the limit exists so that a corrupt length cannot make
/// us allocate gigabytes.
pub const DEFAULT_MAX_RECORD_LEN: usize = 16 * 1024 * 1024;

/// What can be wrong with a RecordIO stream.
#[derive(Debug)]
pub enum RecordIoError {
    /// A record header did not start with a decimal digit.
    InvalidLength {
        /// The byte found instead.
        found: u8,
    },
    /// The digits of a length were followed by something other than `\n`.
    MissingNewline {
        /// The byte found instead.
        found: u8,
    },
    /// A record announced a length above the limit.
    TooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The stream ended inside a record (in its header or its body).
    Truncated {
        /// How many bytes the record announced.
        expected: u64,
        /// How many of them arrived.
        received: u64,
    },
    /// Reading from the underlying stream failed.
    Io(io::Error),
}

impl fmt::Display for RecordIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordIoError::InvalidLength { found } => write!(
                f,
                "malformed RecordIO stream: expected a decimal record length, found byte 0x{found:02x}"
            ),
            RecordIoError::MissingNewline { found } => write!(
                f,
                "malformed RecordIO stream: expected a newline after the record length, found byte 0x{found:02x}"
            ),
            RecordIoError::TooLarge { len, max } => write!(
                f,
                "RecordIO record of {len} bytes exceeds the limit of {max} bytes; \
                 the stream is corrupt or the limit is too low"
            ),
            RecordIoError::Truncated { expected, received } => write!(
                f,
                "RecordIO stream ended inside a record ({received} of {expected} bytes received); \
                 the connection was cut"
            ),
            RecordIoError::Io(err) => write!(f, "reading the RecordIO stream failed: {err}"),
        }
    }
}

impl std::error::Error for RecordIoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecordIoError::Io(err) => Some(err),
            _ => None,
        }
    }
}

/// Reads records one by one from any byte stream.
///
/// The returned slice borrows an internal buffer that is reused for the next
/// record, so reading a long stream allocates only as much as its largest
/// record.
pub struct RecordIoReader<R> {
    input: BufReader<R>,
    record: Vec<u8>,
    max_record_len: usize,
}

impl<R: Read> RecordIoReader<R> {
    /// A reader with the default limit of [`DEFAULT_MAX_RECORD_LEN`].
    pub fn new(input: R) -> Self {
        Self::with_max_record_len(input, DEFAULT_MAX_RECORD_LEN)
    }

    /// A reader that refuses records longer than `max_record_len` bytes.
    pub fn with_max_record_len(input: R, max_record_len: usize) -> Self {
        RecordIoReader {
            input: BufReader::with_capacity(64 * 1024, input),
            record: Vec::new(),
            max_record_len,
        }
    }

    /// The next record, or `None` when the stream ended cleanly between two
    /// records.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, RecordIoError> {
        let len = match self.read_length()? {
            Some(len) => len,
            None => return Ok(None),
        };
        self.record.clear();
        // The common case: the whole record is already buffered.
        let buffered = self.input.buffer();
        if buffered.len() as u64 >= len {
            let len = len as usize;
            self.record.extend_from_slice(&buffered[..len]);
            self.input.consume(len);
            return Ok(Some(&self.record));
        }
        // Otherwise `take` + `read_to_end` grows the buffer only as bytes
        // really arrive, so a large announced length costs nothing until it
        // is sent.
        let received = (&mut self.input)
            .take(len)
            .read_to_end(&mut self.record)
            .map_err(RecordIoError::Io)? as u64;
        if received < len {
            return Err(RecordIoError::Truncated {
                expected: len,
                received,
            });
        }
        Ok(Some(&self.record))
    }

    /// Reads `<digits>\n`. `None` means end of stream before the first digit.
    fn read_length(&mut self) -> Result<Option<u64>, RecordIoError> {
        let mut len: u64 = 0;
        let mut digits = 0usize;
        loop {
            let buf = match self.input.fill_buf() {
                Ok(buf) => buf,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(RecordIoError::Io(err)),
            };
            if buf.is_empty() {
                return if digits == 0 {
                    Ok(None)
                } else {
                    // We know the length but none of the body arrived.
                    Err(RecordIoError::Truncated {
                        expected: len,
                        received: 0,
                    })
                };
            }
            let mut consumed = 0;
            for &byte in buf {
                consumed += 1;
                match byte {
                    b'0'..=b'9' => {
                        digits += 1;
                        // Checked per digit: a length above the limit, or
                        // too long for any integer, is refused at once.
                        let next = len
                            .checked_mul(10)
                            .and_then(|len| len.checked_add(u64::from(byte - b'0')));
                        match next {
                            Some(next) if next <= self.max_record_len as u64 => len = next,
                            _ => {
                                self.input.consume(consumed);
                                return Err(RecordIoError::TooLarge {
                                    len: next.unwrap_or(u64::MAX),
                                    max: self.max_record_len,
                                });
                            }
                        }
                    }
                    b'\n' if digits > 0 => {
                        self.input.consume(consumed);
                        return Ok(Some(len));
                    }
                    _ if digits == 0 => {
                        self.input.consume(consumed);
                        return Err(RecordIoError::InvalidLength { found: byte });
                    }
                    _ => {
                        self.input.consume(consumed);
                        return Err(RecordIoError::MissingNewline { found: byte });
                    }
                }
            }
            self.input.consume(consumed);
        }
    }
}

/// Writes one record: its length, a newline, and its bytes.
pub fn write_record<W: Write>(output: &mut W, record: &[u8]) -> io::Result<()> {
    writeln!(output, "{}", record.len())?;
    output.write_all(record)
}

/// One record as bytes, ready to be sent.
pub fn encode_record(record: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(record.len() + 12);
    write_record(&mut framed, record).expect("writing to a Vec cannot fail");
    framed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields its bytes in pieces of the given sizes, like a network socket
    /// that delivers a stream in arbitrary fragments.
    struct Fragmented {
        data: Vec<u8>,
        pos: usize,
        sizes: Vec<usize>,
        next: usize,
    }

    /// Hands out the data in reads of the given sizes, in turn; a size of 0
    /// is a read interrupted by a signal (`EINTR`), which readers retry.
    impl Read for Fragmented {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.next % self.sizes.len()];
            self.next += 1;
            if size == 0 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = size.min(buf.len()).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    /// Every record up to the end; a reader that never ends fails the test
    /// (no stream here holds more than a few hundred records).
    fn read_all<R: Read>(reader: &mut RecordIoReader<R>) -> Result<Vec<Vec<u8>>, RecordIoError> {
        let mut records = Vec::new();
        while let Some(record) = reader.next_record()? {
            records.push(record.to_vec());
            assert!(records.len() <= 10_000, "the reader never ends");
        }
        Ok(records)
    }

    #[test]
    fn reads_records_in_order_and_ends_cleanly() {
        let mut reader = RecordIoReader::new(&b"5\nhello3\nfoo"[..]);
        let records = read_all(&mut reader).unwrap();
        assert_eq!(records, vec![b"hello".to_vec(), b"foo".to_vec()]);
    }

    #[test]
    fn an_empty_stream_is_a_clean_end() {
        let mut reader = RecordIoReader::new(&b""[..]);
        assert!(reader.next_record().unwrap().is_none());
    }

    #[test]
    fn empty_records_are_records() {
        let mut reader = RecordIoReader::new(&b"0\n0\n2\nok"[..]);
        let records = read_all(&mut reader).unwrap();
        assert_eq!(records, vec![vec![], vec![], b"ok".to_vec()]);
    }

    #[test]
    fn records_split_across_any_read_boundaries() {
        let messages: Vec<Vec<u8>> = (0..50u8)
            .map(|i| vec![i; usize::from(i) * 37 % 300])
            .collect();
        let mut stream = Vec::new();
        for message in &messages {
            write_record(&mut stream, message).unwrap();
        }
        for sizes in [vec![1], vec![2, 3], vec![7, 1, 13], vec![4096], vec![0, 5]] {
            let input = Fragmented {
                data: stream.clone(),
                pos: 0,
                sizes: sizes.clone(),
                next: 0,
            };
            let mut reader = RecordIoReader::new(input);
            assert_eq!(read_all(&mut reader).unwrap(), messages, "sizes {sizes:?}");
        }
    }

    #[test]
    fn large_records_round_trip() {
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let stream = encode_record(&big);
        let mut reader = RecordIoReader::new(&stream[..]);
        assert_eq!(reader.next_record().unwrap().unwrap(), &big[..]);
        assert!(reader.next_record().unwrap().is_none());
    }

    #[test]
    fn a_length_above_the_limit_is_refused_before_reading_the_body() {
        let mut reader = RecordIoReader::with_max_record_len(&b"11\nhello world"[..], 10);
        match reader.next_record() {
            Err(RecordIoError::TooLarge { len: 11, max: 10 }) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn an_absurd_length_is_refused_without_overflow_or_allocation() {
        let header = "9".repeat(400) + "\n";
        let mut reader = RecordIoReader::new(header.as_bytes());
        assert!(matches!(
            reader.next_record(),
            Err(RecordIoError::TooLarge { .. })
        ));
    }

    #[test]
    fn the_limit_is_inclusive() {
        let mut reader = RecordIoReader::with_max_record_len(&b"5\nhello"[..], 5);
        assert_eq!(reader.next_record().unwrap(), Some(&b"hello"[..]));
    }

    #[test]
    fn a_non_digit_length_is_an_error() {
        let mut reader = RecordIoReader::new(&b"x\nhello"[..]);
        assert!(matches!(
            reader.next_record(),
            Err(RecordIoError::InvalidLength { found: b'x' })
        ));
        // A newline with no digits before it has no length either.
        let mut reader = RecordIoReader::new(&b"\nhello"[..]);
        assert!(matches!(
            reader.next_record(),
            Err(RecordIoError::InvalidLength { found: b'\n' })
        ));
        // Nor does a sign.
        let mut reader = RecordIoReader::new(&b"-1\n"[..]);
        assert!(matches!(
            reader.next_record(),
            Err(RecordIoError::InvalidLength { found: b'-' })
        ));
    }

    #[test]
    fn digits_not_followed_by_a_newline_are_an_error() {
        let mut reader = RecordIoReader::new(&b"5 hello"[..]);
        assert!(matches!(
            reader.next_record(),
            Err(RecordIoError::MissingNewline { found: b' ' })
        ));
        let mut reader = RecordIoReader::new(&b"5\r\nhello"[..]);
        assert!(matches!(
            reader.next_record(),
            Err(RecordIoError::MissingNewline { found: b'\r' })
        ));
    }

    #[test]
    fn a_stream_that_ends_inside_a_body_is_truncated() {
        let mut reader = RecordIoReader::new(&b"5\nhel"[..]);
        assert!(matches!(
            reader.next_record(),
            Err(RecordIoError::Truncated {
                expected: 5,
                received: 3
            })
        ));
    }

    #[test]
    fn a_stream_that_ends_inside_a_header_is_truncated() {
        let mut reader = RecordIoReader::new(&b"3\nfoo12"[..]);
        assert_eq!(reader.next_record().unwrap(), Some(&b"foo"[..]));
        assert!(matches!(
            reader.next_record(),
            Err(RecordIoError::Truncated {
                expected: 12,
                received: 0
            })
        ));
    }

    #[test]
    fn io_errors_are_reported_not_swallowed() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
            }
        }
        let mut reader = RecordIoReader::new(Broken);
        let err = reader.next_record().expect_err("a broken stream");
        assert!(matches!(err, RecordIoError::Io(_)), "{err:?}");
        // The cause stays reachable for whoever walks the error's sources.
        let source = std::error::Error::source(&err).expect("the I/O error as its source");
        assert_eq!(source.to_string(), "reset");
        let framing = RecordIoError::InvalidLength { found: b'x' };
        assert!(std::error::Error::source(&framing).is_none());
    }

    #[test]
    fn errors_say_what_happened() {
        let err = RecordIoError::TooLarge { len: 20, max: 10 };
        assert!(err.to_string().contains("exceeds the limit of 10 bytes"));
    }
}
