//! Linux signal names, for Piston's `signal: "SIGKILL"` (Piston maps isolate's `exitsig` through
//! the same table, `api/src/globals.js`).

/// `SIG…` names of signals 1 to 31 on Linux x86-64 and aarch64 (`signal(7)`).
const NAMES: [&str; 31] = [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// `SIGKILL`.
pub const SIGKILL: i32 = 9;

/// The name of signal `number` (`9` → `SIGKILL`), `None` for numbers outside 1..=31.
pub fn name(number: i32) -> Option<&'static str> {
    usize::try_from(number)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| NAMES.get(i))
        .copied()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_match_signal_7() {
        assert_eq!(super::name(9), Some("SIGKILL"));
        assert_eq!(super::name(11), Some("SIGSEGV"));
        assert_eq!(super::name(25), Some("SIGXFSZ"));
        assert_eq!(super::name(31), Some("SIGSYS"));
        assert_eq!(super::name(0), None);
        assert_eq!(super::name(64), None);
    }
}
