//! Languages as data: the built-in `languages.toml` (embedded in the binary) plus an
//! operator's file, merged by `id`. A language whose toolchain is missing on this host is listed
//! as unavailable (with the reason) instead of failing at run time.

use brig_core::{LimitOverrides, Limits};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The built-in list.
pub const BUILTIN: &str = include_str!("../languages.toml");

/// The same file as JSON, converted at build time (`build.rs`): faster to read on every start.
const BUILTIN_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/languages.json"));

/// A languages file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguagesFile {
    /// Defaults for every language.
    #[serde(default)]
    pub defaults: Defaults,
    /// The languages.
    #[serde(default, rename = "language")]
    pub languages: Vec<Language>,
}

/// Defaults shared by every language.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Environment of every step.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Limits of every compile step, over Brig's defaults.
    #[serde(default)]
    pub compile_limits: LimitOverrides,
}

/// One language.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Language {
    /// The id used in requests (`python`).
    pub id: String,
    /// A display name.
    pub name: String,
    /// Other names accepted for it.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// File extensions (without the dot) that select it.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// The program's file name in the work dir.
    pub source_file: String,
    /// Compile command, if the language is compiled.
    #[serde(default)]
    pub compile: Option<Vec<String>>,
    /// Run command; the caller's arguments are appended.
    pub run: Vec<String>,
    /// Host paths that must exist.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Host command printing the version.
    #[serde(default)]
    pub version_command: Option<Vec<String>>,
    /// Host command printing the toolchain directory (`{toolchain}`).
    #[serde(default)]
    pub toolchain_command: Option<Vec<String>>,
    /// Extra read-only mounts (skipped when missing on the host).
    #[serde(default)]
    pub ro_mounts: Vec<String>,
    /// Environment, over the defaults.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Run limits, over Brig's defaults.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// Compile limits, over the defaults' compile limits.
    #[serde(default)]
    pub compile_limits: LimitOverrides,
    /// How a parse failure of an interpreted language shows.
    #[serde(default)]
    pub syntax_error: Option<SyntaxErrorRule>,
}

/// Recognises "the source does not parse" from how the run ended.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntaxErrorRule {
    /// The interpreter's exit code for it.
    pub exit_code: i32,
    /// Regexes that must all match stderr.
    #[serde(default)]
    pub stderr_matches: Vec<String>,
    /// Regexes none of which may match stderr.
    #[serde(default)]
    pub stderr_not_matches: Vec<String>,
    /// The compiled regexes, built on first use (compiling them costs ~0.3 ms each, which
    /// `brig run` should not pay before the program runs).
    #[serde(skip)]
    compiled: std::sync::OnceLock<(Vec<regex::Regex>, Vec<regex::Regex>)>,
}

impl SyntaxErrorRule {
    /// True when a run that exited `exit_code` with `stderr` failed to parse.
    pub fn matches(&self, exit_code: i32, stderr: &str) -> bool {
        if exit_code != self.exit_code {
            return false;
        }
        let (must, must_not) = self.compiled.get_or_init(|| {
            let compile = |patterns: &[String]| {
                patterns
                    .iter()
                    .filter_map(|p| regex::Regex::new(p).ok())
                    .collect()
            };
            (
                compile(&self.stderr_matches),
                compile(&self.stderr_not_matches),
            )
        });
        must.iter().all(|re| re.is_match(stderr)) && !must_not.iter().any(|re| re.is_match(stderr))
    }
}

/// Errors in a languages file.
#[derive(Debug, thiserror::Error)]
pub enum LanguagesError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        source: toml::de::Error,
    },
    /// A field is invalid.
    #[error("{path}: language `{id}`: {problem}")]
    Invalid {
        /// The file.
        path: String,
        /// The language.
        id: String,
        /// What is wrong.
        problem: String,
    },
}

/// A language resolved for this host: placeholders for the toolchain filled, availability known.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The language as configured (with `{toolchain}` replaced).
    pub language: Language,
    /// `None` when usable, else why not.
    pub unavailable: Option<String>,
    /// Defaults from the file.
    pub env: BTreeMap<String, String>,
    /// Run limits.
    pub limits: Limits,
    /// Compile limits.
    pub compile_limits: Limits,
}

/// The languages of this host. Parsing is cheap; resolving a language (running its toolchain
/// command, checking its paths) happens only for the languages asked for.
#[derive(Debug, Clone)]
pub struct Languages {
    file: LanguagesFile,
}

fn parse(text: &str, path: &str) -> Result<LanguagesFile, LanguagesError> {
    parse_checked(text, path, true)
}

/// Parses a languages file; `check_regexes` compiles every regex to report a bad one (the
/// built-in file's are checked by a test instead, to keep `brig run`'s start short).
fn parse_checked(
    text: &str,
    path: &str,
    check_regexes: bool,
) -> Result<LanguagesFile, LanguagesError> {
    let file: LanguagesFile = toml::from_str(text).map_err(|source| LanguagesError::Parse {
        path: path.into(),
        source,
    })?;
    check(file, path, check_regexes)
}

/// The built-in languages, from their build-time JSON form (the same checks as a file's).
fn builtin() -> Result<LanguagesFile, LanguagesError> {
    let file: LanguagesFile = serde_json::from_str(BUILTIN_JSON)
        .expect("build.rs wrote languages.json from a languages.toml that parses");
    check(file, "built-in languages.toml", false)
}

/// Checks every language of a parsed file.
fn check(
    file: LanguagesFile,
    path: &str,
    check_regexes: bool,
) -> Result<LanguagesFile, LanguagesError> {
    for language in &file.languages {
        let invalid = |problem: &str| LanguagesError::Invalid {
            path: path.into(),
            id: language.id.clone(),
            problem: problem.into(),
        };
        if language.id.is_empty()
            || !language
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'+')
        {
            return Err(invalid("id must be lowercase letters, digits, '-' or '+'"));
        }
        if language.run.is_empty() {
            return Err(invalid("run command is empty"));
        }
        if !brig_jail::spec::is_relative_inside(&language.source_file)
            || language.source_file.contains('/')
        {
            return Err(invalid("source_file must be a plain file name"));
        }
        if let Some(rule) = language.syntax_error.as_ref().filter(|_| check_regexes) {
            for pattern in rule.stderr_matches.iter().chain(&rule.stderr_not_matches) {
                regex::Regex::new(pattern)
                    .map_err(|e| invalid(&format!("bad syntax_error regex: {e}")))?;
            }
        }
    }
    Ok(file)
}

/// Runs a host command (a trusted toolchain binary) and returns its trimmed output.
fn host_output(argv: &[String]) -> Option<String> {
    let (program, args) = argv.split_first()?;
    let mut command = Command::new(program);
    command.args(args);
    // rustup's proxies live in ~/.cargo/bin, which a service's PATH may lack.
    if let Some(home) = std::env::var_os("HOME") {
        let mut path = std::env::var_os("PATH").unwrap_or_default();
        let cargo_bin = Path::new(&home).join(".cargo/bin");
        if !path.is_empty() {
            path.push(":");
        }
        path.push(cargo_bin);
        command.env("PATH", path);
    }
    let output = command.output().ok()?;
    if !output.status.success() {
        return None;
    }
    // `java -version` writes to stderr.
    let text = if output.stdout.is_empty() {
        output.stderr
    } else {
        output.stdout
    };
    let text = String::from_utf8_lossy(&text);
    Some(text.lines().next().unwrap_or("").trim().to_string())
}

fn fill(text: &str, toolchain: Option<&str>) -> String {
    match toolchain {
        Some(dir) => text.replace("{toolchain}", dir),
        None => text.to_string(),
    }
}

impl Languages {
    /// The built-in languages, plus `extra` (a path) when given.
    pub fn load(extra: Option<&Path>) -> Result<Languages, LanguagesError> {
        let mut file = builtin()?;
        if let Some(path) = extra {
            let text = std::fs::read_to_string(path).map_err(|source| LanguagesError::Read {
                path: path.into(),
                source,
            })?;
            let operator = parse(&text, &path.display().to_string())?;
            file.defaults.env.extend(operator.defaults.env);
            for language in operator.languages {
                match file.languages.iter_mut().find(|l| l.id == language.id) {
                    Some(existing) => *existing = language,
                    None => file.languages.push(language),
                }
            }
        }
        Ok(Languages { file })
    }

    /// Fills `{toolchain}` (running the toolchain command on the host) and checks `requires`.
    fn resolve(&self, language: &Language) -> Resolved {
        let mut language = language.clone();
        let mut unavailable = None;
        let toolchain = match &language.toolchain_command {
            Some(command) => match host_output(command) {
                Some(dir) if Path::new(&dir).is_dir() => Some(dir),
                _ => {
                    unavailable = Some(format!(
                        "toolchain not found (`{}` failed)",
                        command.join(" ")
                    ));
                    None
                }
            },
            None => None,
        };
        let t = toolchain.as_deref();
        let fill_all = |v: &mut Vec<String>| v.iter_mut().for_each(|s| *s = fill(s, t));
        fill_all(&mut language.run);
        fill_all(&mut language.requires);
        fill_all(&mut language.ro_mounts);
        if let Some(c) = language.compile.as_mut() {
            fill_all(c);
        }
        if let Some(c) = language.version_command.as_mut() {
            fill_all(c);
        }
        if unavailable.is_none()
            && let Some(missing) = language.requires.iter().find(|p| !Path::new(p).exists())
        {
            unavailable = Some(format!("{missing} is not installed"));
        }
        let mut env = self.file.defaults.env.clone();
        env.extend(language.env.clone());
        let compile_base = Limits::default().with(&self.file.defaults.compile_limits);
        Resolved {
            limits: Limits::default().with(&language.limits),
            compile_limits: compile_base.with(&language.compile_limits),
            env,
            unavailable,
            language,
        }
    }

    /// Every language, available or not, resolved.
    pub fn all(&self) -> Vec<Resolved> {
        self.file
            .languages
            .iter()
            .map(|l| self.resolve(l))
            .collect()
    }

    /// The language named `name` (id or alias, case-insensitive), resolved.
    pub fn find(&self, name: &str) -> Option<Resolved> {
        let name = name.to_ascii_lowercase();
        self.file
            .languages
            .iter()
            .find(|l| l.id == name || l.aliases.contains(&name))
            .map(|l| self.resolve(l))
    }

    /// The language for a file name, by extension, resolved.
    pub fn for_file(&self, path: &Path) -> Option<Resolved> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        self.file
            .languages
            .iter()
            .find(|l| l.extensions.contains(&extension))
            .map(|l| self.resolve(l))
    }

    /// The version string of a language, from its host command.
    pub fn version(resolved: &Resolved) -> Option<String> {
        resolved
            .language
            .version_command
            .as_ref()
            .and_then(|c| host_output(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_regexes_compile() {
        parse(BUILTIN, "built-in").unwrap();
    }

    #[test]
    fn the_build_time_json_is_the_toml_file() {
        let from_toml = parse(BUILTIN, "built-in").unwrap();
        let from_json = super::builtin().unwrap();
        assert_eq!(format!("{from_json:?}"), format!("{from_toml:?}"));
        assert!(from_json.languages.len() >= 8);
    }

    #[test]
    fn the_builtin_file_parses_and_has_the_shipped_languages() {
        let languages = Languages::load(None).unwrap();
        for id in [
            "python",
            "bash",
            "javascript",
            "c",
            "cpp",
            "java",
            "rust",
            "perl",
        ] {
            assert!(languages.find(id).is_some(), "{id}");
        }
        assert_eq!(languages.find("py").unwrap().language.id, "python");
        assert_eq!(languages.find("C++").unwrap().language.id, "cpp");
        assert_eq!(
            languages
                .for_file(Path::new("x/hello.js"))
                .unwrap()
                .language
                .id,
            "javascript"
        );
        assert!(languages.find("cobol").is_none());
    }

    #[test]
    fn an_operator_file_overrides_and_extends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("extra.toml");
        std::fs::write(
            &path,
            r#"
[[language]]
id = "python"
name = "Python (custom)"
source_file = "prog.py"
run = ["/usr/bin/python3", "{source}"]

[[language]]
id = "lua"
name = "Lua"
extensions = ["lua"]
source_file = "main.lua"
run = ["/usr/bin/lua5.4", "{source}"]
requires = ["/usr/bin/no-such-lua"]
"#,
        )
        .unwrap();
        let languages = Languages::load(Some(&path)).unwrap();
        assert_eq!(
            languages.find("python").unwrap().language.name,
            "Python (custom)"
        );
        let lua = languages.find("lua").unwrap();
        assert!(lua.unavailable.as_ref().unwrap().contains("not installed"));
    }

    #[test]
    fn bad_files_are_rejected_with_the_path() {
        let err = parse(
            "[[language]]\nid = \"X\"\nname=\"x\"\nsource_file=\"a\"\nrun=[\"/x\"]",
            "f.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("f.toml: language `X`"), "{err}");
        let err = parse("[[language]]\nidd = 1", "g.toml").unwrap_err();
        assert!(err.to_string().starts_with("g.toml"), "{err}");
    }

    #[test]
    fn python_syntax_errors_are_told_from_runtime_ones() {
        let languages = Languages::load(None).unwrap();
        let rule = languages
            .find("python")
            .unwrap()
            .language
            .syntax_error
            .clone()
            .unwrap();
        let parse_failure =
            "  File \"/work/main.py\", line 1\n    def (\n        ^\nSyntaxError: invalid syntax\n";
        assert!(rule.matches(1, parse_failure));
        let runtime = "Traceback (most recent call last):\n  File \"/work/main.py\", line 1, in <module>\n    exec('(')\nSyntaxError: '(' was never closed\n";
        assert!(!rule.matches(1, runtime));
        assert!(!rule.matches(2, parse_failure));
    }
}
