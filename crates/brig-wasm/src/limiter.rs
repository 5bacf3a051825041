//! The memory cap: wasmtime asks a [`ResourceLimiter`] before every linear-memory and table
//! growth (and before creating one at instantiation); this one says no past the run's limit and
//! remembers that it did.
//!
//! `limits.memory_bytes` caps the *sum* of the instance's linear memories (a module may declare
//! several), which is what a cgroup's memory limit is to a process. When a growth is denied,
//! `memory.grow` returns -1 to the guest: a C program's `malloc` returns NULL, CPython raises
//! `MemoryError` or aborts. Whatever the program does next, if the run then fails (a trap or a
//! non-zero exit) the verdict is `memory_limit`, exactly as an OOM kill explains a failure on the
//! namespace tier (`Termination::oom_killed`). The peak of the sum is the run's
//! `memory_peak_bytes`.
//!
//! wasmtime's ready-made `StoreLimits` caps each memory separately and does not say whether it
//! refused anything, hence this small type. See wasmtime's `ResourceLimiter` docs and
//! `examples/` for the protocol: `desired` is the size after the growth, `current` before.

use wasmtime::ResourceLimiter;

/// Instances per store: the program's module and nothing else (WASI is host functions).
const MAX_INSTANCES: usize = 1;
/// Tables and memories per instance (the pooling allocator has its own, equal caps).
pub(crate) const MAX_TABLES: usize = 4;
/// See [`MAX_TABLES`].
pub(crate) const MAX_MEMORIES: usize = 4;
/// Elements per table: far above what compilers emit (CPython's table is ~10k), far below harm.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Tracks and caps one run's linear memory.
#[derive(Debug)]
pub(crate) struct MemoryCap {
    limit: u64,
    total: u64,
    peak: u64,
    denied: bool,
}

impl MemoryCap {
    /// A cap of `limit` bytes over all linear memories of the run.
    pub fn new(limit: u64) -> MemoryCap {
        MemoryCap {
            limit,
            total: 0,
            peak: 0,
            denied: false,
        }
    }

    /// The largest total linear memory the run reached, in bytes.
    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// Whether a memory growth (or the initial memory) was refused for the limit.
    pub fn denied(&self) -> bool {
        self.denied
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        let total = self.total.saturating_add(growth);
        if total > self.limit {
            self.denied = true;
            return Ok(false);
        }
        self.total = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }
    fn tables(&self) -> usize {
        MAX_TABLES
    }
    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_summed_over_memories_and_denied_past_the_limit() {
        let mut cap = MemoryCap::new(100);
        assert!(cap.memory_growing(0, 60, None).unwrap());
        assert!(cap.memory_growing(0, 30, None).unwrap());
        assert!(!cap.denied());
        assert!(!cap.memory_growing(30, 50, None).unwrap());
        assert!(cap.denied());
        assert_eq!(cap.peak(), 90);
        assert!(cap.memory_growing(60, 70, None).unwrap());
        assert_eq!(cap.peak(), 100);
    }
}
