//! Tests of the [`Framer`]: both framings, split at every byte, truncation, resynchronisation.

use super::*;
use crate::inputs::syslog::test_support::octet_counted;

/// Frames of `stream` pushed in the given pieces, then finished.
fn frames(max_len: usize, pieces: &[&[u8]]) -> (Vec<Vec<u8>>, Framer) {
    let mut framer = Framer::new(max_len);
    let mut out = Vec::new();
    for piece in pieces {
        framer.push(piece);
        while let Some(frame) = framer.next_frame() {
            out.push(frame);
        }
    }
    framer.finish();
    while let Some(frame) = framer.next_frame() {
        out.push(frame);
    }
    (out, framer)
}

/// Checks that `stream` gives `expected` however it is split: in two at every position, and
/// one byte at a time.
fn assert_frames_at_every_split(max_len: usize, stream: &[u8], expected: &[&[u8]]) -> Framer {
    for split in 0..=stream.len() {
        let (got, _) = frames(max_len, &[&stream[..split], &stream[split..]]);
        assert_eq!(got, expected, "split at {split}");
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    let (got, framer) = frames(max_len, &bytes);
    assert_eq!(got, expected, "byte by byte");
    framer
}

#[test]
fn framer_mixed_framing_split_everywhere() {
    let mut stream = Vec::new();
    stream.extend(octet_counted("<13>1 - - - - - - first"));
    stream.extend(b"<14>second line\n");
    stream.extend(b"<15>third crlf\r\n");
    stream.extend(b"\r\n\n");
    stream.extend(b"<16>fourth nul\0");
    stream.extend(octet_counted("<17>multi\nline\r\noctet"));
    stream.extend(octet_counted("<18>"));
    stream.extend(b"\n");
    stream.extend(b"plain text, no pri\n");
    stream.extend(b"0 zero is no count\n");
    stream.extend(b"<19>last, unterminated");
    let expected: &[&[u8]] = &[
        b"<13>1 - - - - - - first",
        b"<14>second line",
        b"<15>third crlf",
        b"<16>fourth nul",
        b"<17>multi\nline\r\noctet",
        b"<18>",
        b"plain text, no pri",
        b"0 zero is no count",
        b"<19>last, unterminated",
    ];
    let framer = assert_frames_at_every_split(1024, &stream, expected);
    assert_eq!((framer.truncated(), framer.malformed()), (0, 0));
}

#[test]
fn framer_truncates_oversized_frames() {
    let mut stream = Vec::new();
    stream.extend(octet_counted("<13>aaaaaaaaaaaaaaaaaaaaaa\nnot a new frame"));
    stream.extend(octet_counted("<14>b"));
    stream.extend(b"<15>cccccccccccccccccccccccc\n");
    stream.extend(b"<16>d\n");
    // Exactly the maximum before a CRLF is not cut; one byte more is.
    stream.extend(b"<17>exact!\r\n");
    stream.extend(b"<18>eleven!\r\n");
    let expected: &[&[u8]] = &[b"<13>aaaaaa", b"<14>b", b"<15>cccccc", b"<16>d", b"<17>exact!", b"<18>eleven"];
    let framer = assert_frames_at_every_split(10, &stream, expected);
    assert_eq!(framer.truncated(), 3);

    let (got, framer) = frames(5, &[b"abcde\r\nabcdef\nab\r", b"\ncdefgh\r", b"x\n"]);
    assert_eq!(got, vec![b"abcde".to_vec(), b"abcde".to_vec(), b"ab".to_vec(), b"cdefg".to_vec()]);
    assert_eq!(framer.truncated(), 2);
}

#[test]
fn framer_memory_stays_bounded() {
    let mut framer = Framer::new(100);
    let chunk = vec![b'a'; 64 * 1024];
    let mut out = Vec::new();
    for _ in 0..16 {
        framer.push(&chunk);
        assert!(framer.buf.len() <= 101 && framer.buf.capacity() <= 1024);
        out.extend(std::iter::from_fn(|| framer.next_frame()));
    }
    framer.push(b"\n<13>ok\n");
    out.extend(std::iter::from_fn(|| framer.next_frame()));
    assert_eq!(out, vec![vec![b'a'; 100], b"<13>ok".to_vec()]);
    assert_eq!(framer.truncated(), 1);
    // A huge announced length is discarded as it arrives, not buffered.
    let mut framer = Framer::new(100);
    framer.push(b"999999999 <13>");
    for _ in 0..16 {
        framer.push(&chunk);
        assert!(framer.buf.capacity() <= 1024);
    }
    assert_eq!(framer.next_frame().map(|f| f.len()), Some(100));
    assert_eq!(framer.next_frame(), None);
}

#[test]
fn framer_resynchronises_after_bad_counts() {
    let mut stream = Vec::new();
    stream.extend(b"12x foo\n");
    stream.extend(octet_counted("<13>after"));
    stream.extend(b"1234567890 <14>ten digits\n");
    stream.extend(b"42\n");
    stream.extend(b"7<15>no space\n");
    stream.extend(b"<16>good\n");
    let expected: &[&[u8]] =
        &[b"12x foo", b"<13>after", b"1234567890 <14>ten digits", b"42", b"7<15>no space", b"<16>good"];
    let framer = assert_frames_at_every_split(1024, &stream, expected);
    assert_eq!(framer.malformed(), 4);
}

#[test]
fn framer_end_of_stream() {
    let mut framer = Framer::new(100);
    framer.push(b"20 <13>abc");
    assert_eq!(framer.finish(), 7);
    assert_eq!(framer.next_frame(), None);
    framer.push(b"<13>tail\r");
    assert_eq!(framer.finish(), 0);
    assert_eq!(framer.next_frame(), Some(b"<13>tail".to_vec()));
    // Usable again after finish.
    framer.push(b"3 abc");
    assert_eq!(framer.next_frame(), Some(b"abc".to_vec()));
}
