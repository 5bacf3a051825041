//! Human-friendly sizes and durations for flags and config files: `256MiB`, `1.5GB`, `10s`,
//! `250ms`. Binary (`KiB`, `MiB`, `GiB`) and decimal (`KB`, `MB`, `GB`) units are both accepted;
//! a bare number is bytes or milliseconds.

/// Parses a byte size such as `64MiB`, `512k` or `1048576`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (try 256MiB, 64KiB or 1048576)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        other => return Err(format!("unknown size unit `{other}` in `{text}`")),
    };
    let bytes = number * multiplier as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("size `{text}` is out of range"));
    }
    Ok(bytes as u64)
}

/// Parses a duration such as `10s`, `250ms`, `1.5s`, `2m` into milliseconds.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 10s or 500ms)"))?;
    let multiplier = match unit.trim() {
        "" | "ms" => 1.0,
        "s" => 1_000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        other => return Err(format!("unknown duration unit `{other}` in `{text}`")),
    };
    let millis = number * multiplier;
    if !millis.is_finite() || millis < 0.0 || millis > u64::MAX as f64 {
        return Err(format!("duration `{text}` is out of range"));
    }
    Ok(millis as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_bytes("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("64k").unwrap(), 65536);
        assert_eq!(parse_bytes("2MB").unwrap(), 2_000_000);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_millis("10s").unwrap(), 10_000);
        assert_eq!(parse_millis("250ms").unwrap(), 250);
        assert_eq!(parse_millis("1.5s").unwrap(), 1_500);
        assert_eq!(parse_millis("2m").unwrap(), 120_000);
        assert!(parse_millis("soon").is_err());
    }
}
