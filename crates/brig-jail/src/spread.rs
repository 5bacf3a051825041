//! Running a new sandbox's init beside the helper rather than after it.
//!
//! After `clone3`, the helper writes the child's id maps and sends its seccomp filter while the
//! child mounts its `/proc` and tmpfs and joins its cgroup: work meant to overlap. But a
//! scheduler that packs tasks onto few CPUs (the development VM's kernel does:
//! `sched_vcpu_pack`), or one that leaves an idle vCPU asleep, keeps the new task on its
//! parent's CPU, and the child waits until the helper blocks. Measured on that 2-vCPU VM with a
//! C test, a child forked while its parent stays busy for 300 µs starts 322 µs after `fork`
//! returned, and 72 µs after when the parent moves it to the other CPU at once;
//! `BRIG_TRACE_PHASES` showed the init's first line 0.29 ms after `clone3` returned, once the
//! helper had sent the filter.
//!
//! So the helper, right after `clone3`, lets the child run on any CPU of its mask but its own
//! (`sched_setaffinity` on the child), and the child, once released (`go` comes after that call),
//! takes back the whole mask, which the program inherits. With a single allowed CPU there is
//! nothing to spread and nothing is done.

use rustix::process::Pid;
use rustix::thread::{CpuSet, sched_getaffinity, sched_getcpu, sched_setaffinity};

/// The helper's CPU mask, taken before `clone3`.
#[derive(Clone, Copy)]
pub(crate) struct Spread {
    mask: CpuSet,
}

impl Spread {
    /// Our mask, when it holds more than one CPU.
    pub(crate) fn before_clone() -> Option<Spread> {
        let mask = sched_getaffinity(None).ok()?;
        (mask.count() > 1).then_some(Spread { mask })
    }

    /// In the helper, right after `clone3`: the child may run anywhere but on our CPU. A
    /// failure costs only the overlap, so it is ignored.
    pub(crate) fn move_child(&self, child: Pid) {
        let mut elsewhere = self.mask;
        elsewhere.unset(sched_getcpu());
        if elsewhere.count() > 0 {
            let _ = sched_setaffinity(Some(child), &elsewhere);
        }
    }

    /// In the child, once released: back to the helper's whole mask.
    pub(crate) fn restore_in_child(&self) -> rustix::io::Result<()> {
        sched_setaffinity(None, &self.mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A forked child moved elsewhere runs elsewhere, and gets the whole mask back.
    #[test]
    fn a_moved_child_runs_on_another_cpu_and_restores_the_mask() {
        let Some(spread) = Spread::before_clone() else {
            let reason = "SKIP: a single CPU in this process's mask: nothing to spread";
            assert!(std::env::var_os("CI").is_none(), "{reason}");
            eprintln!("{reason}");
            return;
        };
        let (ready_r, ready_w) = rustix::pipe::pipe().unwrap();
        let (report_r, report_w) = rustix::pipe::pipe().unwrap();
        match crate::sys::fork().unwrap() {
            crate::sys::Forked::Child => {
                let mut byte = [0u8];
                let _ = rustix::io::read(&ready_r, &mut byte);
                let moved = sched_getaffinity(None).unwrap();
                let restored = spread.restore_in_child().is_ok()
                    && sched_getaffinity(None).unwrap() == spread.mask;
                let report = [moved.count() as u8, restored as u8];
                let _ = rustix::io::write(&report_w, &report);
                crate::sys::exit_now(0)
            }
            crate::sys::Forked::Parent { pid, .. } => {
                let cpu = sched_getcpu();
                spread.move_child(Pid::from_raw(pid).unwrap());
                let moved = sched_getaffinity(Pid::from_raw(pid)).unwrap();
                assert!(
                    !moved.is_set(cpu),
                    "still allowed on the helper's CPU {cpu}"
                );
                rustix::io::write(&ready_w, b"G").unwrap();
                let mut report = [0u8; 2];
                assert_eq!(rustix::io::read(&report_r, &mut report).unwrap(), 2);
                assert_eq!(report[0] as u32, spread.mask.count() - 1);
                assert_eq!(report[1], 1, "the child did not get the whole mask back");
                rustix::process::waitpid(Pid::from_raw(pid), rustix::process::WaitOptions::empty())
                    .unwrap();
            }
        }
    }
}
