//! The part of node-semver that Piston's `version` field uses (`semver.satisfies` in
//! engineer-man/piston `api/src/runtime.js`): exact versions (`3.11.2`, an exact match as in
//! node, not Cargo's caret), partials and wildcards (`*`, `3`, `3.x`, `3.11.*`), comparators
//! (`>=3.10`, `<4`), tilde and caret ranges (`~3.11`, `^3.10.0`), hyphen ranges
//! (`3.9 - 3.11`), comparators joined by spaces (AND) and sets joined by `||` (OR).
//! Rules are node-semver's (github.com/npm/node-semver, "Advanced Range Syntax").
//! Pre-release tags are not supported: Brig's versions come from the host's toolchains and
//! are normalised to `x.y.z` by [`Version::normalise`].

use std::fmt;

/// A `major.minor.patch` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Version {
    /// A version from its three parts.
    pub const fn new(major: u64, minor: u64, patch: u64) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// The first dotted number in what a `version_command` printed, as `x.y.z` (missing parts
    /// are 0, parts past the third are dropped): `Python 3.11.2` → 3.11.2, `v20.11.1` →
    /// 20.11.1, `5.2.21(1)-release` → 5.2.21, `openjdk version "21.0.3" 2024-04-16` → 21.0.3,
    /// `rustc 1.95.0 (…)` → 1.95.0, `13` → 13.0.0. `None` when it holds no digit.
    pub fn normalise(printed: &str) -> Option<Version> {
        let start = printed.find(|c: char| c.is_ascii_digit())?;
        let mut parts = printed[start..]
            .split('.')
            .map(|p| {
                let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
                (digits.parse::<u64>().ok(), digits.len() == p.len())
            })
            .scan(true, |go_on, (n, whole)| {
                // Stop after the first part that is not all digits (`21(1)-release`).
                if !*go_on {
                    return None;
                }
                *go_on = whole;
                n.map(Some)
            })
            .flatten();
        let major = parts.next()?;
        Some(Version::new(
            major,
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        ))
    }
}

/// A version range in node-semver syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// Sets joined by `||`; each is a list of comparators that must all hold.
    sets: Vec<Vec<(Op, Version)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

/// A range that is not node-semver syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version range `{0}`")]
pub struct RangeError(pub String);

/// A partial version: `None` parts are wildcards (`x`, `*`) or missing.
type Partial = [Option<u64>; 3];

fn parse_partial(text: &str) -> Option<Partial> {
    let text = text.trim_start_matches(['v', '=']);
    let mut out = [None; 3];
    let parts: Vec<&str> = text.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut wildcard = false;
    for (slot, part) in out.iter_mut().zip(&parts) {
        if matches!(*part, "x" | "X" | "*") {
            wildcard = true;
        } else if wildcard {
            // `1.x.3` is not a version.
            return None;
        } else {
            *slot = Some(part.parse().ok()?);
        }
    }
    Some(out)
}

fn floor(p: Partial) -> Version {
    Version::new(p[0].unwrap_or(0), p[1].unwrap_or(0), p[2].unwrap_or(0))
}

/// The first version above every version the partial covers (`1.2` → 1.3.0), `None` for `*`.
fn ceiling(p: Partial) -> Option<Version> {
    match p {
        [None, ..] => None,
        [Some(a), None, _] => Some(Version::new(a + 1, 0, 0)),
        [Some(a), Some(b), None] => Some(Version::new(a, b + 1, 0)),
        [Some(a), Some(b), Some(c)] => Some(Version::new(a, b, c + 1)),
    }
}

fn is_full(p: Partial) -> bool {
    p.iter().all(Option::is_some)
}

/// The comparators one range term stands for.
fn desugar(op: &str, p: Partial) -> Vec<(Op, Version)> {
    let lo = floor(p);
    let hi = ceiling(p);
    let bounded = |v: Vec<(Op, Version)>| v;
    match op {
        "" | "=" => match (is_full(p), hi) {
            (true, _) => vec![(Op::Eq, lo)],
            (false, Some(hi)) => vec![(Op::Ge, lo), (Op::Lt, hi)],
            (false, None) => vec![],
        },
        ">=" => bounded(if p[0].is_none() {
            vec![]
        } else {
            vec![(Op::Ge, lo)]
        }),
        ">" => match (is_full(p), hi) {
            (true, _) => vec![(Op::Gt, lo)],
            (false, Some(hi)) => vec![(Op::Ge, hi)],
            // `>*` matches nothing.
            (false, None) => vec![(Op::Lt, Version::new(0, 0, 0))],
        },
        "<" => match p[0] {
            None => vec![(Op::Lt, Version::new(0, 0, 0))],
            Some(_) => vec![(Op::Lt, lo)],
        },
        "<=" => match (is_full(p), hi) {
            (true, _) => vec![(Op::Le, lo)],
            (false, Some(hi)) => vec![(Op::Lt, hi)],
            (false, None) => vec![],
        },
        "~" => match p {
            [None, ..] => vec![],
            [Some(a), None, _] => vec![(Op::Ge, lo), (Op::Lt, Version::new(a + 1, 0, 0))],
            [Some(a), Some(b), _] => vec![(Op::Ge, lo), (Op::Lt, Version::new(a, b + 1, 0))],
        },
        "^" => {
            let upper = match p {
                [None, ..] => return vec![],
                [Some(0), Some(0), Some(c)] => Version::new(0, 0, c + 1),
                [Some(0), Some(b), _] => Version::new(0, b + 1, 0),
                [Some(0), None, _] => Version::new(1, 0, 0),
                [Some(a), ..] => Version::new(a + 1, 0, 0),
            };
            vec![(Op::Ge, lo), (Op::Lt, upper)]
        }
        _ => unreachable!("operators are split off by parse_term"),
    }
}

fn parse_term(term: &str) -> Option<Vec<(Op, Version)>> {
    let op_len = term
        .find(|c: char| !matches!(c, '<' | '>' | '=' | '~' | '^'))
        .unwrap_or(term.len());
    let (op, rest) = term.split_at(op_len);
    let op = match op {
        "" | "=" | ">=" | ">" | "<" | "<=" | "~" | "^" => op,
        // node accepts `~>` as `~`.
        "~>" => "~",
        _ => return None,
    };
    Some(desugar(op, parse_partial(rest)?))
}

fn parse_set(set: &str) -> Option<Vec<(Op, Version)>> {
    let tokens: Vec<&str> = set.split_whitespace().collect();
    // Hyphen range: `A - B` = `>=A` and at most B (a partial B means below its ceiling).
    if let [from, "-", to] = tokens.as_slice() {
        let (from, to) = (parse_partial(from)?, parse_partial(to)?);
        let mut out = desugar(">=", from);
        out.extend(match (is_full(to), ceiling(to)) {
            (true, _) => vec![(Op::Le, floor(to))],
            (false, Some(hi)) => vec![(Op::Lt, hi)],
            (false, None) => vec![],
        });
        return Some(out);
    }
    // Join an operator written apart from its version (`>= 3.10`).
    let mut terms: Vec<String> = Vec::new();
    let mut pending = String::new();
    for token in tokens {
        pending.push_str(token);
        if !token
            .chars()
            .all(|c| matches!(c, '<' | '>' | '=' | '~' | '^'))
        {
            terms.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for term in terms {
        out.extend(parse_term(&term)?);
    }
    Some(out)
}

impl Range {
    /// Parses a node-semver range.
    pub fn parse(text: &str) -> Result<Range, RangeError> {
        let sets = text
            .split("||")
            .map(parse_set)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| RangeError(text.to_string()))?;
        Ok(Range { sets })
    }

    /// True when `version` is in the range.
    pub fn matches(&self, version: Version) -> bool {
        self.sets.iter().any(|set| {
            set.iter().all(|&(op, v)| match op {
                Op::Lt => version < v,
                Op::Le => version <= v,
                Op::Gt => version > v,
                Op::Ge => version >= v,
                Op::Eq => version == v,
            })
        })
    }
}

/// `semver.satisfies(version, range)`: false for a range that does not parse, as in node.
pub fn satisfies(version: Version, range: &str) -> bool {
    Range::parse(range).is_ok_and(|r| r.matches(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Version = Version::new(3, 11, 2);

    #[test]
    fn normalise_reads_what_toolchains_print() {
        let n = |s| Version::normalise(s).map(|v| v.to_string());
        assert_eq!(n("Python 3.11.2").as_deref(), Some("3.11.2"));
        assert_eq!(n("v20.11.1").as_deref(), Some("20.11.1"));
        assert_eq!(n("5.2.21(1)-release").as_deref(), Some("5.2.21"));
        assert_eq!(
            n("openjdk version \"21.0.3\" 2024-04-16").as_deref(),
            Some("21.0.3")
        );
        assert_eq!(
            n("rustc 1.95.0 (59807616e 2026-04-14)").as_deref(),
            Some("1.95.0")
        );
        assert_eq!(n("13").as_deref(), Some("13.0.0"));
        assert_eq!(n("12.2").as_deref(), Some("12.2.0"));
        assert_eq!(n("1.2.3.4").as_deref(), Some("1.2.3"));
        assert_eq!(n("no digits"), None);
    }

    #[test]
    fn exact_versions_match_only_themselves() {
        assert!(satisfies(V, "3.11.2"));
        assert!(satisfies(V, "v3.11.2"));
        assert!(satisfies(V, "=3.11.2"));
        assert!(!satisfies(V, "3.11.3"));
        assert!(
            !satisfies(V, "3.10.0"),
            "node's bare version is exact, not a caret"
        );
    }

    #[test]
    fn wildcards_and_partials() {
        for yes in [
            "*", "", "x", "3", "3.x", "3.X", "3.*", "3.11", "3.11.x", "3.x.x",
        ] {
            assert!(satisfies(V, yes), "{yes}");
        }
        for no in ["2", "2.x", "3.10", "3.12.*", "4.x"] {
            assert!(!satisfies(V, no), "{no}");
        }
    }

    #[test]
    fn comparators_tilde_caret_hyphen_and_unions() {
        for yes in [
            ">=3.10",
            ">= 3.10",
            ">3.11.1",
            ">3.10",
            "<4",
            "<=3.11",
            "<=3.11.2",
            ">=3.10 <3.12",
            "~3.11",
            "~3.11.0",
            "^3.0.0",
            "^3.x",
            "3.9 - 3.11",
            "3.9.0 - 3.11.2",
            "2.x || 3.11.x",
        ] {
            assert!(satisfies(V, yes), "{yes}");
        }
        for no in [
            ">3.11",
            "<3.11",
            "<=3.11.1",
            "~3.10",
            "^4",
            "3.0 - 3.10",
            "2 || 4",
            ">3.11.2",
        ] {
            assert!(!satisfies(V, no), "{no}");
        }
        assert!(satisfies(Version::new(0, 2, 5), "^0.2.3"));
        assert!(!satisfies(Version::new(0, 3, 0), "^0.2.3"));
        assert!(!satisfies(Version::new(0, 0, 4), "^0.0.3"));
    }

    #[test]
    fn garbage_is_an_error_and_matches_nothing() {
        assert!(Range::parse("three").is_err());
        assert!(Range::parse("1.x.3").is_err());
        assert!(Range::parse(">=").is_err());
        assert!(Range::parse("!3").is_err());
        assert!(!satisfies(V, "latest"));
    }
}
