//! seccomp (placeholder)
