//! Bounded stdout and stderr: one byte budget shared by both streams, the prefix kept.
//!
//! `limits.output_bytes` caps stdout and stderr *together* (DESIGN.md: "output bytes
//! (stdout+stderr captured; the rest discarded)"), so the two WASI output streams write into
//! one [`Capture`]. wasmtime-wasi's own `MemoryOutputPipe` has a capacity per pipe and, past it,
//! refuses the whole write; here the part of a write that still fits is kept, the overflow is
//! recorded, and the write traps so the guest stops at once instead of spinning on a full pipe
//! until its deadline. The run then ends as `output_limit` with the output kept up to the limit.
//!
//! WASIp1's `fd_write` on stdio goes through [`OutputStream::write`] in chunks of at most 4 KiB
//! after asking [`OutputStream::check_write`]; `check_write` therefore never says "full" (that
//! would make `fd_write` fail with an errno the guest may ignore) — `write` is where the budget
//! is enforced.

use bytes::Bytes;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How much `check_write` lets the guest write at once (WASIp1 writes 4 KiB chunks anyway).
const WRITE_PERMIT: usize = 64 * 1024;

/// Which of the two captured streams a writer feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Stdout,
    Stderr,
}

/// The captured output of one run: both streams, one budget.
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    inner: Arc<Mutex<Buffers>>,
}

#[derive(Debug, Default)]
struct Buffers {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    remaining: usize,
    overflowed: bool,
}

/// What a run printed, after it ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Captured {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The program tried to write past the budget (the rest was discarded).
    pub overflowed: bool,
}

impl Capture {
    /// A capture that keeps at most `budget` bytes of stdout and stderr together.
    pub fn new(budget: u64) -> Capture {
        let remaining = usize::try_from(budget).unwrap_or(usize::MAX);
        Capture {
            inner: Arc::new(Mutex::new(Buffers {
                remaining,
                ..Buffers::default()
            })),
        }
    }

    /// The writer for one of the two streams, to hand to `WasiCtxBuilder::stdout`/`stderr`.
    pub fn stream(&self, which: Which) -> CaptureStream {
        CaptureStream {
            capture: self.clone(),
            which,
        }
    }

    /// Appends `bytes` to one stream, keeping what fits. Returns false if some did not fit.
    pub fn write(&self, which: Which, bytes: &[u8]) -> bool {
        let mut b = self.lock();
        let take = bytes.len().min(b.remaining);
        b.remaining -= take;
        match which {
            Which::Stdout => b.stdout.extend_from_slice(&bytes[..take]),
            Which::Stderr => b.stderr.extend_from_slice(&bytes[..take]),
        }
        if take < bytes.len() {
            b.overflowed = true;
        }
        take == bytes.len()
    }

    /// Takes what was captured so far (the streams may still be referenced by a dropped store).
    pub fn take(&self) -> Captured {
        let mut b = self.lock();
        Captured {
            stdout: std::mem::take(&mut b.stdout),
            stderr: std::mem::take(&mut b.stderr),
            overflowed: b.overflowed,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Buffers> {
        // A panic while holding this lock cannot leave the buffers inconsistent (each update is
        // one append), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One stream's writer into a [`Capture`]; implements WASI's `StdoutStream`.
#[derive(Debug, Clone)]
pub(crate) struct CaptureStream {
    capture: Capture,
    which: Which,
}

impl CaptureStream {
    fn overflow_error(&self) -> StreamError {
        StreamError::trap("output limit reached")
    }
}

impl IsTerminal for CaptureStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CaptureStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CaptureStream {
    async fn ready(&mut self) {}
}

impl OutputStream for CaptureStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        if self.capture.write(self.which, &bytes) {
            Ok(())
        } else {
            Err(self.overflow_error())
        }
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
}

/// Used by WASIp3 streams only; the same budget applies.
impl tokio::io::AsyncWrite for CaptureStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.capture.write(self.which, buf) {
            Poll::Ready(Ok(buf.len()))
        } else {
            Poll::Ready(Err(io::Error::other("output limit reached")))
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_streams_share_one_budget_and_keep_the_prefix() {
        let c = Capture::new(10);
        assert!(c.write(Which::Stdout, b"hello"));
        assert!(c.write(Which::Stderr, b"oops"));
        assert!(!c.write(Which::Stdout, b"world"));
        let got = c.take();
        assert_eq!(got.stdout, b"hellow");
        assert_eq!(got.stderr, b"oops");
        assert!(got.overflowed);
    }

    #[test]
    fn exactly_the_budget_is_not_an_overflow() {
        let c = Capture::new(4);
        assert!(c.write(Which::Stdout, b"abcd"));
        assert!(!c.take().overflowed);
        assert!(!c.write(Which::Stdout, b"e"));
        assert!(c.take().overflowed);
    }
}
