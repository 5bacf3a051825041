//! Per-process resource limits (setrlimit(2)) applied to the program just before `execve`: a
//! backstop behind the cgroup, and the only limit for files and open descriptors.
//!
//! CPU is set one second above the budget so the supervisor's cgroup-wide check (which covers
//! every process and thread) normally ends the run first; `RLIMIT_CPU` catches a single process
//! if the supervisor were late. Without a cgroup it is set at the budget instead
//! ([`plan_without_cgroup`]). `RLIMIT_NPROC` counts per host uid, which is unique to this
//! sandbox, so it bounds the sandbox alone.

use brig_core::Limits;
use rustix::process::{Resource, Rlimit, setrlimit};

/// The rlimits for `limits`, computed in the parent.
pub fn plan(limits: &Limits) -> Vec<(Resource, u64)> {
    vec![
        (Resource::Cpu, limits.cpu_time_ms.div_ceil(1000) + 1),
        (Resource::Nofile, limits.open_files as u64),
        (Resource::Fsize, limits.file_size_bytes),
        (Resource::Core, 0),
        (Resource::Stack, limits.stack_bytes),
        (Resource::Nproc, limits.pids as u64 + 1),
    ]
}

/// The rlimits for a run without a cgroup (Brig not root): they are then the only bounds.
/// `RLIMIT_CPU` sits at the budget (rounded up to whole seconds, the rlimit's unit), since no
/// one polls a cgroup; and `RLIMIT_AS` bounds memory, address space rather than resident
/// memory, so a program that maps more than it touches fails sooner than under a cgroup.
pub fn plan_without_cgroup(limits: &Limits) -> Vec<(Resource, u64)> {
    let mut plan = plan(limits);
    for (resource, value) in &mut plan {
        if *resource == Resource::Cpu {
            *value = limits.cpu_time_ms.div_ceil(1000).max(1);
        }
    }
    plan.push((Resource::As, limits.memory_bytes));
    plan
}

/// Applies the plan (soft = hard, so the program cannot raise them).
pub fn apply(plan: &[(Resource, u64)]) -> rustix::io::Result<()> {
    for &(resource, value) in plan {
        setrlimit(
            resource,
            Rlimit {
                current: Some(value),
                maximum: Some(value),
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_dumps_off_and_cpu_above_budget() {
        let plan = plan(&Limits {
            cpu_time_ms: 2500,
            ..Limits::default()
        });
        assert!(plan.contains(&(Resource::Core, 0)));
        assert!(plan.contains(&(Resource::Cpu, 4)));
    }

    #[test]
    fn without_a_cgroup_cpu_is_the_budget_and_memory_the_address_space() {
        let limits = Limits {
            cpu_time_ms: 2500,
            memory_bytes: 64 << 20,
            ..Limits::default()
        };
        let plan = plan_without_cgroup(&limits);
        assert!(plan.contains(&(Resource::Cpu, 3)));
        assert!(!plan.contains(&(Resource::Cpu, 4)));
        assert!(plan.contains(&(Resource::As, 64 << 20)));
        let plan = plan_without_cgroup(&Limits {
            cpu_time_ms: 1,
            ..limits
        });
        assert!(plan.contains(&(Resource::Cpu, 1)));
    }
}
