//! Judge0 CE's language ids for the languages Brig ships, and Judge0's 14 statuses.
//!
//! Ids and names are Judge0 CE 1.13.x's (`db/languages/active.rb`): a client that sends
//! `language_id: 71` gets Python. The names carry Judge0's toolchain versions; `/languages`
//! may show the host's instead ([`Judge0Language::name_with`]), since that is what runs.
//! Judge0 CE also has older toolchains of some of these languages under ids of their own
//! ([`ALIASES`]: C 48 and 49, C++ 52 and 53); Brig runs them with its one toolchain of the
//! language, so that clients that pick them (the official SDK's `judge0.CPP` is 52) work.
//! `/languages` lists each language once, under its main id.
//! Statuses are `app/enumerations/status.rb`, ids and descriptions exactly.

use serde::Serialize;

use crate::piston::Versions;

/// One Judge0 language backed by a Brig language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judge0Language {
    /// Judge0 CE's id.
    pub id: u32,
    /// Judge0 CE's name (`Python (3.8.1)`).
    pub name: &'static str,
    /// The name with `{}` where the version goes (`Python ({})`).
    pub template: &'static str,
    /// The Brig language that runs it.
    pub brig_id: &'static str,
}

/// Judge0 CE's languages that Brig has, by id.
pub const LANGUAGES: &[Judge0Language] = &[
    Judge0Language {
        id: 46,
        name: "Bash (5.0.0)",
        template: "Bash ({})",
        brig_id: "bash",
    },
    Judge0Language {
        id: 50,
        name: "C (GCC 9.2.0)",
        template: "C (GCC {})",
        brig_id: "c",
    },
    Judge0Language {
        id: 54,
        name: "C++ (GCC 9.2.0)",
        template: "C++ (GCC {})",
        brig_id: "cpp",
    },
    Judge0Language {
        id: 62,
        name: "Java (OpenJDK 13.0.1)",
        template: "Java (OpenJDK {})",
        brig_id: "java",
    },
    Judge0Language {
        id: 63,
        name: "JavaScript (Node.js 12.14.0)",
        template: "JavaScript (Node.js {})",
        brig_id: "javascript",
    },
    Judge0Language {
        id: 71,
        name: "Python (3.8.1)",
        template: "Python ({})",
        brig_id: "python",
    },
    Judge0Language {
        id: 73,
        name: "Rust (1.40.0)",
        template: "Rust ({})",
        brig_id: "rust",
    },
    Judge0Language {
        id: 85,
        name: "Perl (5.28.1)",
        template: "Perl ({})",
        brig_id: "perl",
    },
];

/// Judge0 CE's other ids for languages of [`LANGUAGES`]: older GCC versions of C and C++
/// (`db/languages/active.rb`), run by Brig's C and C++. Not the Clang ids (75, 76: another
/// compiler) nor 70 (Python 2, another language).
pub const ALIASES: &[Judge0Language] = &[
    Judge0Language {
        id: 48,
        name: "C (GCC 7.4.0)",
        template: "C (GCC {})",
        brig_id: "c",
    },
    Judge0Language {
        id: 49,
        name: "C (GCC 8.3.0)",
        template: "C (GCC {})",
        brig_id: "c",
    },
    Judge0Language {
        id: 52,
        name: "C++ (GCC 7.4.0)",
        template: "C++ (GCC {})",
        brig_id: "cpp",
    },
    Judge0Language {
        id: 53,
        name: "C++ (GCC 8.3.0)",
        template: "C++ (GCC {})",
        brig_id: "cpp",
    },
];

impl Judge0Language {
    /// The language with Judge0 id `id`: a main id of [`LANGUAGES`] or one of [`ALIASES`].
    pub fn by_id(id: u32) -> Option<&'static Judge0Language> {
        LANGUAGES.iter().chain(ALIASES).find(|l| l.id == id)
    }

    /// The language Brig language `brig_id` is listed as.
    pub fn by_brig_id(brig_id: &str) -> Option<&'static Judge0Language> {
        LANGUAGES.iter().find(|l| l.brig_id == brig_id)
    }

    /// Its name with the host's version when `versions` has one (`Python (3.11.2)`), else
    /// Judge0's.
    pub fn name_with(&self, versions: Option<&Versions>) -> String {
        versions
            .and_then(|v| v.get(self.brig_id))
            .map(|v| self.template.replace("{}", &v.to_string()))
            .unwrap_or_else(|| self.name.to_string())
    }
}

/// One Judge0 status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Judge0Status {
    /// Its id (1..=14).
    pub id: u8,
    /// Its description (`Accepted`).
    pub description: &'static str,
}

/// Judge0's statuses, `GET /statuses`.
pub const STATUSES: [Judge0Status; 14] = [
    Judge0Status {
        id: 1,
        description: "In Queue",
    },
    Judge0Status {
        id: 2,
        description: "Processing",
    },
    Judge0Status {
        id: 3,
        description: "Accepted",
    },
    Judge0Status {
        id: 4,
        description: "Wrong Answer",
    },
    Judge0Status {
        id: 5,
        description: "Time Limit Exceeded",
    },
    Judge0Status {
        id: 6,
        description: "Compilation Error",
    },
    Judge0Status {
        id: 7,
        description: "Runtime Error (SIGSEGV)",
    },
    Judge0Status {
        id: 8,
        description: "Runtime Error (SIGXFSZ)",
    },
    Judge0Status {
        id: 9,
        description: "Runtime Error (SIGFPE)",
    },
    Judge0Status {
        id: 10,
        description: "Runtime Error (SIGABRT)",
    },
    Judge0Status {
        id: 11,
        description: "Runtime Error (NZEC)",
    },
    Judge0Status {
        id: 12,
        description: "Runtime Error (Other)",
    },
    Judge0Status {
        id: 13,
        description: "Internal Error",
    },
    Judge0Status {
        id: 14,
        description: "Exec Format Error",
    },
];

impl Judge0Status {
    /// The status with id `id` (1..=14).
    pub fn by_id(id: u8) -> Option<Judge0Status> {
        STATUSES.get(usize::from(id).checked_sub(1)?).copied()
    }

    /// `Status.find_runtime_error_by_status_code`: the runtime error of a signal.
    pub fn for_signal(signal: i32) -> Judge0Status {
        let id = match signal {
            11 => 7,
            25 => 8,
            8 => 9,
            6 => 10,
            _ => 12,
        };
        STATUSES[id - 1]
    }
}

/// `GET /languages`: `[{id, name}]`, each language once under its main id (not [`ALIASES`]),
/// only the languages in `versions` when given (the ones available on this host), with the
/// host's versions in their names.
///
/// Judge0 CE lists every compiler version as its own id, and clients check an id against this
/// list before they send it (the official SDK's `judge0.CPP` is 52), so the older ids Brig
/// accepts as aliases are listed too, under Judge0's own names, sorted by id.
pub fn list(versions: Option<&Versions>) -> serde_json::Value {
    let available = |l: &&Judge0Language| versions.is_none_or(|v| v.get(l.brig_id).is_some());
    let mut rows: Vec<(u32, String)> = LANGUAGES
        .iter()
        .filter(available)
        .map(|l| (l.id, l.name_with(versions)))
        .chain(
            ALIASES
                .iter()
                .filter(available)
                .map(|l| (l.id, l.name.to_string())),
        )
        .collect();
    rows.sort_by_key(|(id, _)| *id);
    rows.into_iter()
        .map(|(id, name)| serde_json::json!({ "id": id, "name": name }))
        .collect()
}

/// `GET /languages/{id}`: `{id, name, is_archived, source_file, compile_cmd, run_cmd}` from
/// Brig's definition of the language (its commands, `{source}` filled); an alias id answers
/// with its own id and the toolchain that runs it.
pub fn detail(
    id: u32,
    languages: &brig_engine::Languages,
    versions: Option<&Versions>,
) -> Option<serde_json::Value> {
    let entry = Judge0Language::by_id(id)?;
    let resolved = languages.find(entry.brig_id)?;
    let lang = &resolved.language;
    let command = |argv: &[String]| argv.join(" ").replace("{source}", &lang.source_file);
    Some(serde_json::json!({
        "id": entry.id,
        "name": entry.name_with(versions),
        "is_archived": false,
        "source_file": lang.source_file,
        "compile_cmd": lang.compile.as_deref().map(command),
        "run_cmd": command(&lang.run),
    }))
}

/// `GET /statuses`: `[{id, description}]`.
pub fn statuses() -> serde_json::Value {
    serde_json::to_value(STATUSES).unwrap_or_default()
}
