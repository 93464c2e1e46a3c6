//! Reading a recording from outside, within bounds: decompression, the header,
//! every event line, and a channel's own events.

use std::io::{BufRead, Read};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::RecordingHeader;
use crate::AuditError;

/// Bounds for reading a recording that came from outside (a download, a file on
/// disk that anyone could have edited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest decompressed size accepted.
    pub max_decompressed_bytes: u64,
    /// Longest line (header or event) accepted.
    pub max_line_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_decompressed_bytes: 1024 * 1024 * 1024,
            max_line_bytes: 1024 * 1024,
        }
    }
}

/// What an event line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CastEventKind {
    /// Terminal output (`"o"`).
    Output,
    /// Keystrokes (`"i"`).
    Input,
    /// A resize (`"r"`, data `COLSxROWS`).
    Resize,
    /// A marker (`"m"`): Rampart's channel markers, or other writers' marks.
    Marker,
    /// Output bytes that are not text, base64 (`"ob"`, Rampart's own).
    OutputBytes,
    /// Input bytes that are not text, base64 (`"ib"`, Rampart's own).
    InputBytes,
}

/// One event of a recording.
#[derive(Clone, Debug, PartialEq)]
pub struct CastEvent {
    /// Time since the session started.
    pub time: Duration,
    /// What kind of event.
    pub kind: CastEventKind,
    /// The text (output, input, `COLSxROWS`, marker label).
    pub data: String,
}

/// A decoded recording.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// The header.
    pub header: RecordingHeader,
    /// The events, in file order.
    pub events: Vec<CastEvent>,
}

/// The channel a marker label switches to: `Some(Some(n))` for `channel N open: …`
/// and `channel N`, `Some(None)` for `channel N closed: …`, `None` for a marker
/// that is not about channels.
fn marker_channel(label: &str) -> Option<Option<u32>> {
    let rest = label.strip_prefix("channel ")?;
    let (number, after) = rest.split_once(' ').unwrap_or((rest, ""));
    let n: u32 = number.parse().ok()?;
    if after.starts_with("closed:") {
        Some(None)
    } else if after.is_empty() || after.starts_with("open:") {
        Some(Some(n))
    } else {
        None
    }
}

impl Recording {
    /// The events of one channel (see the module docs on channels), markers
    /// excluded.
    pub fn channel_events(&self, channel: u32) -> Vec<&CastEvent> {
        let mut current = None;
        let mut out = Vec::new();
        for event in &self.events {
            if event.kind == CastEventKind::Marker {
                if let Some(c) = marker_channel(&event.data) {
                    current = c;
                }
                continue;
            }
            if current == Some(channel) {
                out.push(event);
            }
        }
        out
    }

    /// The output of one channel, concatenated as bytes (text and exact
    /// bytes alike).
    pub fn channel_output_bytes(&self, channel: u32) -> Vec<u8> {
        self.channel_stream(channel, CastEventKind::Output, CastEventKind::OutputBytes)
    }

    /// The input sent to one channel, concatenated as bytes.
    pub fn channel_input_bytes(&self, channel: u32) -> Vec<u8> {
        self.channel_stream(channel, CastEventKind::Input, CastEventKind::InputBytes)
    }

    /// The output of one channel, as text (bytes that are not UTF-8 as U+FFFD).
    pub fn channel_output(&self, channel: u32) -> String {
        String::from_utf8_lossy(&self.channel_output_bytes(channel)).into_owned()
    }

    /// The input sent to one channel, as text.
    pub fn channel_input(&self, channel: u32) -> String {
        String::from_utf8_lossy(&self.channel_input_bytes(channel)).into_owned()
    }

    fn channel_stream(&self, channel: u32, text: CastEventKind, bytes: CastEventKind) -> Vec<u8> {
        let mut out = Vec::new();
        for e in self.channel_events(channel) {
            if e.kind == text {
                out.extend_from_slice(e.data.as_bytes());
            } else if e.kind == bytes {
                // A line that is not base64 was edited; parse_event checked it.
                out.extend(BASE64.decode(&e.data).unwrap_or_default());
            }
        }
        out
    }

    /// The terminal output alone, concatenated (what `asciinema cat` prints).
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for event in &self.events {
            if event.kind == CastEventKind::Output {
                out.push_str(&event.data);
            }
        }
        out
    }
}

/// Decode a finished `.cast.zst` with the default [`ReadLimits`].
pub fn read_recording(bytes_zst: &[u8]) -> Result<Recording, AuditError> {
    read_recording_with(bytes_zst, &ReadLimits::default())
}

/// Decode a finished `.cast.zst` within `limits`.
pub fn read_recording_with(bytes_zst: &[u8], limits: &ReadLimits) -> Result<Recording, AuditError> {
    parse_cast(&decompress_with(bytes_zst, limits)?, limits)
}

/// Decompress a `.cast.zst` (at most the default [`ReadLimits`] size) without
/// parsing it, e.g. to hand the asciicast to another player.
pub fn decompress(bytes_zst: &[u8]) -> Result<Vec<u8>, AuditError> {
    decompress_with(bytes_zst, &ReadLimits::default())
}

fn decompress_with(bytes_zst: &[u8], limits: &ReadLimits) -> Result<Vec<u8>, AuditError> {
    let decoder = zstd::stream::read::Decoder::new(bytes_zst)
        .map_err(|e| AuditError::Recording(format!("zstd: {e}")))?;
    let mut cast = Vec::new();
    decoder
        .take(limits.max_decompressed_bytes.saturating_add(1))
        .read_to_end(&mut cast)
        .map_err(|e| AuditError::Recording(format!("zstd: {e}")))?;
    if cast.len() as u64 > limits.max_decompressed_bytes {
        return Err(AuditError::Recording(format!(
            "decompresses to more than {} bytes",
            limits.max_decompressed_bytes
        )));
    }
    Ok(cast)
}

/// Decode an uncompressed asciicast v2 recording with Rampart's header keys.
/// Every line must parse: a finished recording has no torn line.
pub fn parse_cast(cast: &[u8], limits: &ReadLimits) -> Result<Recording, AuditError> {
    let mut lines = cast.split(|&b| b == b'\n');
    let header_line = lines.next().unwrap_or_default();
    check_line(header_line, 1, limits)?;
    let header = RecordingHeader::from_line(header_line)?;
    let mut events = Vec::new();
    for (i, line) in lines.enumerate() {
        let number = i + 2;
        if line.is_empty() {
            // The file ends with '\n', which leaves one empty piece after it.
            continue;
        }
        check_line(line, number, limits)?;
        events.push(parse_event(line, number)?);
    }
    Ok(Recording { header, events })
}

fn check_line(line: &[u8], number: usize, limits: &ReadLimits) -> Result<(), AuditError> {
    if line.len() > limits.max_line_bytes {
        return Err(AuditError::Recording(format!(
            "line {number} is longer than {} bytes",
            limits.max_line_bytes
        )));
    }
    Ok(())
}

pub(super) fn parse_event(line: &[u8], number: usize) -> Result<CastEvent, AuditError> {
    let bad = |why: String| AuditError::Recording(format!("line {number}: {why}"));
    let (time, code, data): (f64, String, String) =
        serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
    let time = Duration::try_from_secs_f64(time).map_err(|e| bad(format!("time: {e}")))?;
    let kind = match code.as_str() {
        "o" => CastEventKind::Output,
        "i" => CastEventKind::Input,
        "r" => CastEventKind::Resize,
        "m" => CastEventKind::Marker,
        "ob" => CastEventKind::OutputBytes,
        "ib" => CastEventKind::InputBytes,
        other => return Err(bad(format!("unknown event code {other:?}"))),
    };
    if matches!(kind, CastEventKind::OutputBytes | CastEventKind::InputBytes)
        && BASE64.decode(&data).is_err()
    {
        return Err(bad("bytes event that is not base64".into()));
    }
    Ok(CastEvent { time, kind, data })
}

/// Read a recording's lines from any reader, stopping at `limits`; used to read
/// a `.cast` still being written (for instance to show it live) where the last
/// line may be torn: it is skipped.
pub fn parse_cast_prefix<R: BufRead>(
    mut reader: R,
    limits: &ReadLimits,
) -> Result<Recording, AuditError> {
    let mut data = Vec::new();
    (&mut reader)
        .take(limits.max_decompressed_bytes)
        .read_to_end(&mut data)?;
    let complete = data
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    data.truncate(complete);
    parse_cast(&data, limits)
}
