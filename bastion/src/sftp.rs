//! A bounded SFTP (draft-ietf-secsh-filexfer-02, OpenSSH's version 3) parser
//! that turns the bytes of an `sftp` subsystem channel into file operations
//! for the audit log.
//!
//! **Owns:** reassembling packets from both directions of the channel and
//! following requests to their replies: `OPEN` (read and/or write, with the
//! bytes moved through the handle until `CLOSE`), `REMOVE`, `RENAME` (and
//! `posix-rename@openssh.com`), `MKDIR`, `RMDIR`. It never changes a byte of
//! the stream and never fails the session: a packet it cannot parse is
//! skipped, and a length beyond [`MAX_PACKET`] stops the audit of that channel
//! (logged once) while the bytes keep flowing. All tables are bounded.

use std::collections::HashMap;

/// Largest SFTP packet followed (OpenSSH uses at most 256 KiB + headers).
pub const MAX_PACKET: usize = 1024 * 1024;
/// Most outstanding requests or open handles tracked per channel.
const MAX_TRACKED: usize = 4096;
/// Longest path kept in an event.
const MAX_PATH: usize = 4096;

const FXP_INIT: u8 = 1;
const FXP_OPEN: u8 = 3;
const FXP_CLOSE: u8 = 4;
const FXP_READ: u8 = 5;
const FXP_WRITE: u8 = 6;
const FXP_REMOVE: u8 = 13;
const FXP_MKDIR: u8 = 14;
const FXP_RMDIR: u8 = 15;
const FXP_RENAME: u8 = 18;
const FXP_STATUS: u8 = 101;
const FXP_HANDLE: u8 = 102;
const FXP_DATA: u8 = 103;
const FXP_EXTENDED: u8 = 200;

const PFLAG_READ: u32 = 0x01;
const PFLAG_WRITE: u32 = 0x02;

/// One file operation, ready for an audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOp {
    /// `read`, `write`, `read_write`, `open` (neither flag), `remove`, `rename`,
    /// `mkdir`, `rmdir`.
    pub op: &'static str,
    /// The path (the source, for a rename).
    pub path: String,
    /// The destination of a rename.
    pub to: Option<String>,
    /// Bytes read or written through the handle.
    pub bytes: Option<u64>,
    /// Whether the server said OK (for an open: whether it gave a handle).
    pub success: bool,
}

/// A cursor over one packet's payload.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_at_checked(4)?;
        self.0 = rest;
        Some(u32::from_be_bytes(head.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.0.split_at_checked(8)?;
        self.0 = rest;
        Some(u64::from_be_bytes(head.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn path(&mut self) -> Option<String> {
        let b = self.bytes()?;
        Some(String::from_utf8_lossy(b).chars().take(MAX_PATH).collect())
    }
}

/// Collects bytes until whole `uint32 length || payload` packets are there.
#[derive(Debug, Default)]
struct Reassembler {
    buf: Vec<u8>,
    broken: bool,
}

impl Reassembler {
    /// Feed bytes; returns the complete packets (payloads).
    fn feed(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if self.broken {
            return out;
        }
        self.buf.extend_from_slice(data);
        while let Some(len) = self.buf.get(..4).and_then(|h| <[u8; 4]>::try_from(h).ok()) {
            let len = u32::from_be_bytes(len) as usize;
            if len > MAX_PACKET {
                tracing::warn!(
                    "SFTP packet of {len} bytes: file-operation audit stops for this channel"
                );
                self.broken = true;
                self.buf = Vec::new();
                break;
            }
            if self.buf.len() < 4 + len {
                break;
            }
            let pkt: Vec<u8> = self.buf.drain(..4 + len).skip(4).collect();
            out.push(pkt);
        }
        out
    }
}

#[derive(Debug, Clone)]
struct Open {
    path: String,
    read: bool,
    write: bool,
    bytes: u64,
}

#[derive(Debug, Clone)]
enum Pending {
    Open(Open),
    Read(Vec<u8>),
    Close(Vec<u8>),
    Simple(FileOp),
}

/// The file-operation tracker for one sftp channel.
#[derive(Debug, Default)]
pub struct FileOps {
    up: Reassembler,
    down: Reassembler,
    pending: HashMap<u32, Pending>,
    handles: HashMap<Vec<u8>, Open>,
}

fn open_op(o: &Open) -> &'static str {
    match (o.read, o.write) {
        (true, true) => "read_write",
        (true, false) => "read",
        (false, true) => "write",
        (false, false) => "open",
    }
}

impl FileOps {
    /// A new tracker.
    pub fn new() -> Self {
        Self::default()
    }

    fn track(&mut self, id: u32, p: Pending) {
        if self.pending.len() < MAX_TRACKED {
            self.pending.insert(id, p);
        }
    }

    /// Bytes from the user to the server (requests).
    pub fn client_data(&mut self, data: &[u8]) -> Vec<FileOp> {
        for pkt in self.up.feed(data) {
            self.request(&pkt);
        }
        Vec::new()
    }

    fn request(&mut self, pkt: &[u8]) {
        let mut c = Cur(pkt);
        let Some(kind) = c.u8() else { return };
        if kind == FXP_INIT {
            return;
        }
        let Some(id) = c.u32() else { return };
        let simple = |op: &'static str, path: String, to: Option<String>| {
            Pending::Simple(FileOp {
                op,
                path,
                to,
                bytes: None,
                success: false,
            })
        };
        match kind {
            FXP_OPEN => {
                let (Some(path), Some(flags)) = (c.path(), c.u32()) else {
                    return;
                };
                self.track(
                    id,
                    Pending::Open(Open {
                        path,
                        read: flags & PFLAG_READ != 0,
                        write: flags & PFLAG_WRITE != 0,
                        bytes: 0,
                    }),
                );
            }
            FXP_READ => {
                if let Some(h) = c.bytes() {
                    self.track(id, Pending::Read(h.to_vec()));
                }
            }
            FXP_WRITE => {
                let (Some(h), Some(_off), Some(d)) = (c.bytes(), c.u64(), c.bytes()) else {
                    return;
                };
                if let Some(o) = self.handles.get_mut(h) {
                    o.bytes = o.bytes.saturating_add(d.len() as u64);
                }
            }
            FXP_CLOSE => {
                if let Some(h) = c.bytes() {
                    self.track(id, Pending::Close(h.to_vec()));
                }
            }
            FXP_REMOVE => {
                if let Some(p) = c.path() {
                    self.track(id, simple("remove", p, None));
                }
            }
            FXP_MKDIR => {
                if let Some(p) = c.path() {
                    self.track(id, simple("mkdir", p, None));
                }
            }
            FXP_RMDIR => {
                if let Some(p) = c.path() {
                    self.track(id, simple("rmdir", p, None));
                }
            }
            FXP_RENAME => {
                if let (Some(a), Some(b)) = (c.path(), c.path()) {
                    self.track(id, simple("rename", a, Some(b)));
                }
            }
            FXP_EXTENDED => {
                let Some(name) = c.bytes() else { return };
                if name == b"posix-rename@openssh.com" {
                    if let (Some(a), Some(b)) = (c.path(), c.path()) {
                        self.track(id, simple("rename", a, Some(b)));
                    }
                }
            }
            _ => {}
        }
    }

    /// Bytes from the server to the user (replies); returns finished operations.
    pub fn server_data(&mut self, data: &[u8]) -> Vec<FileOp> {
        let mut ops = Vec::new();
        for pkt in self.down.feed(data) {
            if let Some(op) = self.reply(&pkt) {
                ops.push(op);
            }
        }
        ops
    }

    fn reply(&mut self, pkt: &[u8]) -> Option<FileOp> {
        let mut c = Cur(pkt);
        let kind = c.u8()?;
        let id = c.u32()?;
        let pending = self.pending.remove(&id)?;
        match (kind, pending) {
            (FXP_HANDLE, Pending::Open(o)) => {
                let h = c.bytes()?;
                if self.handles.len() < MAX_TRACKED {
                    self.handles.insert(h.to_vec(), o);
                }
                None
            }
            (FXP_STATUS, Pending::Open(o)) => Some(FileOp {
                op: open_op(&o),
                path: o.path,
                to: None,
                bytes: None,
                success: false,
            }),
            (FXP_DATA, Pending::Read(h)) => {
                let d = c.bytes()?;
                if let Some(o) = self.handles.get_mut(&h) {
                    o.bytes = o.bytes.saturating_add(d.len() as u64);
                }
                None
            }
            (FXP_STATUS, Pending::Close(h)) => {
                let o = self.handles.remove(&h)?;
                Some(FileOp {
                    op: open_op(&o),
                    bytes: Some(o.bytes),
                    path: o.path,
                    to: None,
                    success: true,
                })
            }
            (FXP_STATUS, Pending::Simple(mut op)) => {
                op.success = c.u32()? == 0;
                Some(op)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn s(b: &[u8]) -> Vec<u8> {
        let mut v = (b.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(b);
        v
    }
    fn pkt(kind: u8, id: Option<u32>, body: &[u8]) -> Vec<u8> {
        let mut p = vec![kind];
        if let Some(id) = id {
            p.extend_from_slice(&id.to_be_bytes());
        }
        p.extend_from_slice(body);
        s(&p)
    }

    #[test]
    fn open_write_close_is_one_write_op_with_its_size() {
        let mut f = FileOps::new();
        let mut up = pkt(FXP_INIT, None, &3u32.to_be_bytes());
        let mut open = s(b"/tmp/x");
        open.extend_from_slice(&(PFLAG_WRITE | 0x08 | 0x10).to_be_bytes());
        open.extend_from_slice(&0u32.to_be_bytes());
        up.extend(pkt(FXP_OPEN, Some(1), &open));
        // Fed one byte at a time: reassembly across packets.
        for b in &up {
            assert!(f.client_data(std::slice::from_ref(b)).is_empty());
        }
        assert!(f
            .server_data(&pkt(FXP_HANDLE, Some(1), &s(b"h1")))
            .is_empty());
        for (id, n) in [(2u32, 1000usize), (3, 24)] {
            let mut w = s(b"h1");
            w.extend_from_slice(&0u64.to_be_bytes());
            w.extend(s(&vec![0u8; n]));
            f.client_data(&pkt(FXP_WRITE, Some(id), &w));
        }
        f.client_data(&pkt(FXP_CLOSE, Some(4), &s(b"h1")));
        let ops = f.server_data(&pkt(FXP_STATUS, Some(4), &0u32.to_be_bytes()));
        assert_eq!(
            ops,
            [FileOp {
                op: "write",
                path: "/tmp/x".into(),
                to: None,
                bytes: Some(1024),
                success: true
            }]
        );
    }

    #[test]
    fn reads_renames_removes_and_failures() {
        let mut f = FileOps::new();
        let mut open = s(b"/etc/motd");
        open.extend_from_slice(&PFLAG_READ.to_be_bytes());
        f.client_data(&pkt(FXP_OPEN, Some(1), &open));
        f.server_data(&pkt(FXP_HANDLE, Some(1), &s(b"H")));
        let mut r = s(b"H");
        r.extend_from_slice(&0u64.to_be_bytes());
        r.extend_from_slice(&4096u32.to_be_bytes());
        f.client_data(&pkt(FXP_READ, Some(2), &r));
        f.server_data(&pkt(FXP_DATA, Some(2), &s(b"hello")));
        f.client_data(&pkt(FXP_CLOSE, Some(3), &s(b"H")));
        let ops = f.server_data(&pkt(FXP_STATUS, Some(3), &0u32.to_be_bytes()));
        assert_eq!((ops[0].op, ops[0].bytes), ("read", Some(5)));

        let mut ren = s(b"posix-rename@openssh.com");
        ren.extend(s(b"/a"));
        ren.extend(s(b"/b"));
        f.client_data(&pkt(FXP_EXTENDED, Some(4), &ren));
        let ops = f.server_data(&pkt(FXP_STATUS, Some(4), &0u32.to_be_bytes()));
        assert_eq!(
            (ops[0].op, ops[0].to.as_deref(), ops[0].success),
            ("rename", Some("/b"), true)
        );

        f.client_data(&pkt(FXP_REMOVE, Some(5), &s(b"/nope")));
        let ops = f.server_data(&pkt(FXP_STATUS, Some(5), &2u32.to_be_bytes()));
        assert_eq!((ops[0].op, ops[0].success), ("remove", false));
        f.client_data(&pkt(FXP_MKDIR, Some(6), &s(b"/d")));
        f.client_data(&pkt(FXP_RMDIR, Some(7), &s(b"/d")));
        let mut st = pkt(FXP_STATUS, Some(6), &0u32.to_be_bytes());
        st.extend(pkt(FXP_STATUS, Some(7), &0u32.to_be_bytes()));
        let ops = f.server_data(&st);
        assert_eq!(
            ops.iter().map(|o| o.op).collect::<Vec<_>>(),
            ["mkdir", "rmdir"]
        );
    }

    #[test]
    fn malformed_and_oversized_input_never_panics() {
        let mut f = FileOps::new();
        // Truncated fields, unknown types, replies with no request.
        for junk in [
            pkt(FXP_OPEN, Some(1), &[0, 0, 0, 200, b'a']),
            pkt(FXP_WRITE, Some(2), &[0, 0]),
            pkt(99, Some(3), &[]),
            s(&[]),
        ] {
            f.client_data(&junk);
            f.server_data(&junk);
        }
        assert!(f
            .server_data(&pkt(FXP_STATUS, Some(42), &0u32.to_be_bytes()))
            .is_empty());
        // An absurd length stops the audit of the channel, not the parser's caller.
        let mut huge = ((MAX_PACKET + 1) as u32).to_be_bytes().to_vec();
        huge.extend_from_slice(&[0u8; 64]);
        assert!(f.client_data(&huge).is_empty());
        assert!(f
            .client_data(&pkt(FXP_REMOVE, Some(9), &s(b"/x")))
            .is_empty());
        // Many outstanding requests stay bounded.
        let mut g = FileOps::new();
        for id in 0..(MAX_TRACKED as u32 + 100) {
            g.client_data(&pkt(FXP_REMOVE, Some(id), &s(b"/x")));
        }
        assert!(g.pending.len() <= MAX_TRACKED);
    }
}
