//! Makes `brig_start` (brig-jail's `sys.rs`: it pre-faults the pages the static PIE's
//! start-up relocations write, then jumps to glibc's `_start`) the entry point of the `brig`
//! binary, on x86_64 Linux with glibc. Test binaries and other targets keep `_start`.

fn main() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
    {
        // `-u` pulls the symbol's object out of brig-jail's archive; `-e` makes it the entry.
        println!("cargo:rustc-link-arg-bin=brig=-Wl,-u,brig_start,-e,brig_start");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
