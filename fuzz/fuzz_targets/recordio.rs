//! The RecordIO reader against a reference parser, and the writer against
//! the reader.
//!
//! The input is split into a few control bytes and a stream:
//!
//! ```text
//! [limit] [count] [count fragment sizes] [stream ...]
//! ```
//!
//! The stream is fed to [`RecordIoReader`] in fragments of the given sizes
//! (a size of 0 is a read interrupted by a signal), as a socket would
//! deliver it. Every record and the way the stream ends must match what a
//! straightforward slice-based parser, written here from the framing rule
//! `<decimal length>\n<bytes>`, says. Then the stream's bytes, cut into
//! records at each 0xff byte, are framed with [`write_record`] and must read
//! back as the same records.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_tutorial::recordio::{
    encode_record, write_record, RecordIoError, RecordIoReader, DEFAULT_MAX_RECORD_LEN,
};
use std::io::{self, Read};

fuzz_target!(|input: &[u8]| {
    let Some((limit, sizes, stream)) = split_input(input) else {
        return;
    };
    reader_agrees_with_reference(stream, &sizes, limit);
    writer_output_reads_back(stream, &sizes);
});

/// The limit, the fragment sizes and the stream, or `None` if the input is
/// too short to hold the control bytes.
fn split_input(input: &[u8]) -> Option<(usize, Vec<usize>, &[u8])> {
    let (&limit, rest) = input.split_first()?;
    // Small limits make TooLarge reachable; 255 stands for the default.
    let limit = match limit {
        255 => DEFAULT_MAX_RECORD_LEN,
        small => usize::from(small) * 3,
    };
    let (&count, rest) = rest.split_first()?;
    let count = usize::from(count % 4) + 1;
    if rest.len() < count {
        return None;
    }
    let (sizes, stream) = rest.split_at(count);
    let mut sizes: Vec<usize> = sizes.iter().map(|&size| usize::from(size % 64)).collect();
    // Only interrupted reads would never deliver a byte.
    if sizes.iter().all(|&size| size == 0) {
        sizes.push(1);
    }
    Some((limit, sizes, stream))
}

/// A byte stream delivered in pieces, with `EINTR` for a size of 0.
struct Fragments<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    reads: usize,
}

impl Read for Fragments<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.sizes[self.reads % self.sizes.len()];
        self.reads += 1;
        if self.data.is_empty() {
            return Ok(0);
        }
        if size == 0 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// How a stream ends, in the reader's terms.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Clean,
    InvalidLength { found: u8 },
    MissingNewline { found: u8 },
    TooLarge { len: u64, max: usize },
    Truncated { expected: u64, received: u64 },
}

/// The framing rule, applied to a slice: records and how the stream ends.
fn reference(stream: &[u8], limit: usize) -> (Vec<&[u8]>, End) {
    let mut records = Vec::new();
    let mut rest = stream;
    loop {
        if rest.is_empty() {
            return (records, End::Clean);
        }
        let digits = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
        if digits == 0 {
            return (records, End::InvalidLength { found: rest[0] });
        }
        // The length is refused at the first digit that takes it over the
        // limit (or past u64), so later bytes are never looked at.
        let mut len: u64 = 0;
        for &digit in &rest[..digits] {
            let next = len
                .checked_mul(10)
                .and_then(|len| len.checked_add(u64::from(digit - b'0')));
            match next {
                Some(next) if next <= limit as u64 => len = next,
                _ => {
                    let len = next.unwrap_or(u64::MAX);
                    return (records, End::TooLarge { len, max: limit });
                }
            }
        }
        match rest.get(digits) {
            None => {
                let end = End::Truncated {
                    expected: len,
                    received: 0,
                };
                return (records, end);
            }
            Some(b'\n') => {}
            Some(&found) => return (records, End::MissingNewline { found }),
        }
        let body = &rest[digits + 1..];
        let len_usize = usize::try_from(len).expect("at most the limit, a usize");
        if body.len() < len_usize {
            let end = End::Truncated {
                expected: len,
                received: body.len() as u64,
            };
            return (records, end);
        }
        records.push(&body[..len_usize]);
        rest = &body[len_usize..];
    }
}

fn reader_agrees_with_reference(stream: &[u8], sizes: &[usize], limit: usize) {
    let (expected_records, expected_end) = reference(stream, limit);
    let source = Fragments {
        data: stream,
        sizes,
        reads: 0,
    };
    let mut reader = RecordIoReader::with_max_record_len(source, limit);
    let mut records = 0;
    let end = loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                assert!(record.len() <= limit, "a record over the limit");
                assert_eq!(
                    Some(&record),
                    expected_records.get(records),
                    "record {records} differs"
                );
                records += 1;
            }
            Ok(None) => break End::Clean,
            Err(RecordIoError::InvalidLength { found }) => break End::InvalidLength { found },
            Err(RecordIoError::MissingNewline { found }) => break End::MissingNewline { found },
            Err(RecordIoError::TooLarge { len, max }) => break End::TooLarge { len, max },
            Err(RecordIoError::Truncated { expected, received }) => {
                break End::Truncated { expected, received }
            }
            Err(RecordIoError::Io(err)) => panic!("the source reports no error, yet: {err}"),
        }
    };
    assert_eq!(records, expected_records.len(), "number of records");
    assert_eq!(end, expected_end, "how the stream ends");
}

fn writer_output_reads_back(stream: &[u8], sizes: &[usize]) {
    let records: Vec<&[u8]> = stream.split(|&byte| byte == 0xff).collect();
    let mut framed = Vec::new();
    for record in &records {
        write_record(&mut framed, record).expect("writing to a Vec");
    }
    let concatenated: Vec<u8> = records.iter().flat_map(|r| encode_record(r)).collect();
    assert_eq!(framed, concatenated, "write_record and encode_record agree");

    let source = Fragments {
        data: &framed,
        sizes,
        reads: 0,
    };
    let mut reader = RecordIoReader::new(source);
    for (index, record) in records.iter().enumerate() {
        let read = reader.next_record().expect("the writer's output is valid");
        assert_eq!(read, Some(*record), "record {index}");
    }
    assert_eq!(reader.next_record().expect("a clean end"), None);
}
