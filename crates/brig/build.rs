//! Link settings of the `brig` binary on x86_64 Linux with glibc (test binaries and other
//! targets keep the defaults):
//! - its entry point is `brig_start` (brig-jail's `sys.rs`), which pre-faults the pages the
//!   static PIE's start-up relocations write, in one call, then jumps to glibc's `_start`;
//! - its relative relocations are packed (`-z pack-relative-relocs`: a 16 KB `.relr.dyn`
//!   instead of a 1.4 MB `.rela.dyn` to read at every start), when the glibc it is linked
//!   with applies them itself (DT_RELR, glibc 2.36+; an older static glibc would not, and the
//!   binary would start unrelocated).

fn main() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
    {
        // `-u` pulls the symbol's object out of brig-jail's archive; `-e` makes it the entry.
        println!("cargo:rustc-link-arg-bin=brig=-Wl,-u,brig_start,-e,brig_start");
        if glibc_at_least(2, 36) {
            println!("cargo:rustc-link-arg-bin=brig=-Wl,-z,pack-relative-relocs");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// Whether the build host's glibc (`getconf GNU_LIBC_VERSION`: "glibc 2.36") is at least
/// `major.minor`; false when it cannot tell.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut numbers = text
        .trim()
        .trim_start_matches("glibc ")
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let found = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    found >= (major, minor)
}
