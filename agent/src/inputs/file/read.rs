//! Reading one file: a poll reads what is new (handling truncation, rotation and deletion), splits
//! it into lines cut at the maximum length, and joins multiline events.

use super::{
    char_boundary_at_or_before, FileKey, FileTailer, Pending, Polled, Tailed, CLOSE_RENAMED_AFTER, MAX_POLL, POLL,
    READ_CHUNK,
};
use crate::channel::EventSender;
use crate::checkpoint::FileCheckpoint;
use crate::pipeline::{Envelope, FileProgress};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant, SystemTime};

impl FileTailer {
    /// Reads what is new in one file and hands its events over as one batch.
    pub(super) fn poll_file(&mut self, key: FileKey, tx: &EventSender) -> Polled {
        let still = Polled { alive: true, more: false };
        let Some(mut tailed) = self.open.remove(&key) else { return still };
        let meta = match tailed.file.metadata() {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(path = %tailed.path.display(), error = %e, "cannot stat open file; closing it");
                return still;
            }
        };
        if meta.len() < tailed.read_pos {
            tracing::info!(input = %self.config.name, path = %tailed.path.display(), from = tailed.read_pos, to = meta.len(), "file truncated; reading it again from the start");
            tailed.read_pos = 0;
            tailed.partial.clear();
            tailed.skipping = false;
            tailed.line_start = None;
            tailed.pending = None;
            // A new generation: acknowledgements of the old one no longer move the checkpoint.
            tailed.progress = FileProgress::new(0);
            let checkpoint = self.checkpoint_of(&tailed);
            self.states.set(key, checkpoint, tailed.progress.clone());
            if tailed.file.seek(SeekFrom::Start(0)).is_err() {
                return still;
            }
        }
        let now = crate::event::format_timestamp(SystemTime::now());
        // One buffer for every file and pass (taken out while `self` is borrowed for splitting).
        let mut chunk = std::mem::take(&mut self.read_buf);
        chunk.resize(64 << 10, 0);
        let mut read_now = 0usize;
        let mut events = Vec::new();
        while read_now < READ_CHUNK {
            let n = match tailed.file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(path = %tailed.path.display(), error = %e, "read failed");
                    break;
                }
            };
            read_now += n;
            tailed.last_data = Instant::now();
            self.split_lines(&mut tailed, &chunk[..n], &now, &mut events);
        }
        self.read_buf = chunk;
        let at_end = read_now < READ_CHUNK;
        let deleted = meta.nlink() == 0;
        let gone = deleted || (!tailed.matched && tailed.last_data.elapsed() >= CLOSE_RENAMED_AFTER);
        if at_end && gone && !tailed.partial.is_empty() {
            // The writer moved on: the unterminated last line is complete.
            let line = std::mem::take(&mut tailed.partial);
            let end = tailed.read_pos;
            let start = tailed.line_start.take().unwrap_or(end.saturating_sub(line.len() as u64));
            let truncated = std::mem::take(&mut tailed.skipping);
            self.push_line(&mut tailed, line, start, end, truncated, &now, &mut events);
        }
        let quiet = tailed
            .pending
            .as_ref()
            .is_some_and(|p| p.since.elapsed() >= Duration::from_millis(self.config.multiline_timeout.0));
        if (at_end && gone) || quiet {
            if let Some(p) = tailed.pending.take() {
                events.extend(self.event_from(&tailed, p, &now));
            }
        }
        if tx.blocking_send_batch(events).is_err() {
            return Polled { alive: false, more: false };
        }
        if at_end && gone {
            tracing::info!(input = %self.config.name, path = %tailed.path.display(), deleted, "closing file");
            if deleted {
                // Nothing can read it again; the checkpoint entry goes once all of it is acked.
                let states = self.states.clone();
                let progress = tailed.progress.clone();
                std::thread::spawn(move || {
                    while progress.in_flight() > 0 {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    states.remove(&key);
                });
            } else {
                self.known.insert(key, FileCheckpoint { offset: tailed.read_pos, ..self.checkpoint_of(&tailed) });
            }
            return still;
        }
        // Quiet files are polled less and less often; pending multiline events still time out.
        tailed.quiet_polls = if read_now == 0 { tailed.quiet_polls.saturating_add(1) } else { 0 };
        let mut wait = POLL.saturating_mul(1 << tailed.quiet_polls.min(4)).min(MAX_POLL);
        if tailed.pending.is_some() || !tailed.partial.is_empty() {
            wait = POLL;
        }
        tailed.next_poll = Instant::now() + wait.saturating_sub(POLL);
        self.open.insert(key, tailed);
        Polled { alive: true, more: !at_end }
    }

    /// Splits `data` into lines (LF, with a trailing CR removed) and turns them into events.
    fn split_lines(&self, tailed: &mut Tailed, mut data: &[u8], now: &str, events: &mut Vec<Envelope>) {
        let max = self.max_line;
        while !data.is_empty() {
            let newline = data.iter().position(|&b| b == b'\n');
            let (piece, rest, complete) = match newline {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &data[data.len()..], false),
            };
            let consumed = piece.len() + usize::from(complete);
            if !tailed.skipping {
                let room = max.saturating_sub(tailed.partial.len());
                if piece.len() > room {
                    // Cut between characters, not inside one.
                    tailed.partial.extend_from_slice(&piece[..char_boundary_at_or_before(piece, room)]);
                    tailed.skipping = true;
                } else {
                    tailed.partial.extend_from_slice(piece);
                }
            }
            tailed.read_pos += consumed as u64;
            if complete {
                let mut line = std::mem::take(&mut tailed.partial);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let truncated = std::mem::take(&mut tailed.skipping);
                let end = tailed.read_pos;
                // The line started where its bytes (all of them, cut or not) began.
                let start = tailed.line_start.take().unwrap_or(end - consumed as u64);
                self.push_line(tailed, line, start, end, truncated, now, events);
            } else if tailed.line_start.is_none() {
                tailed.line_start = Some(tailed.read_pos - consumed as u64);
            }
            data = rest;
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn push_line(
        &self,
        tailed: &mut Tailed,
        line: Vec<u8>,
        start: u64,
        end: u64,
        truncated: bool,
        now: &str,
        events: &mut Vec<Envelope>,
    ) {
        match &self.multiline {
            None => {
                let p = Pending { text: line, offset: start, end, truncated, since: Instant::now() };
                events.extend(self.event_from(tailed, p, now));
            }
            Some(start_re) => {
                let starts = start_re.is_match(&String::from_utf8_lossy(&line));
                match tailed.pending.as_mut() {
                    Some(p) if !starts => {
                        if p.text.len() < self.max_line {
                            p.text.push(b'\n');
                            p.text.extend_from_slice(&line);
                        } else {
                            p.truncated = true;
                        }
                        p.end = end;
                        p.truncated |= truncated;
                    }
                    _ => {
                        let next = Pending { text: line, offset: start, end, truncated, since: Instant::now() };
                        if let Some(previous) = tailed.pending.replace(next) {
                            events.extend(self.event_from(tailed, previous, now));
                        }
                    }
                }
            }
        }
    }
}
