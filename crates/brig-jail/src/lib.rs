//! brig-jail: the Linux sandbox behind Brig's `namespace` tier.
pub mod cgroup;
pub mod seccomp;
