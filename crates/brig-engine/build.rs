//! Converts the built-in `languages.toml` to JSON at build time: `brig run` parses its
//! languages on every start, and serde_json reads the same data several times faster than the
//! TOML parser (measured: ~0.2 ms of a ~5 ms start-up). The TOML file stays the source; the
//! operator's overlay is still TOML, parsed at run time.

fn main() {
    println!("cargo:rerun-if-changed=languages.toml");
    let text = std::fs::read_to_string("languages.toml").expect("read languages.toml");
    let value: toml::Value = toml::from_str(&text).expect("languages.toml is valid TOML");
    let json = serde_json::to_string(&value).expect("TOML values convert to JSON");
    let out =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("languages.json");
    std::fs::write(out, json).expect("write languages.json");
}
