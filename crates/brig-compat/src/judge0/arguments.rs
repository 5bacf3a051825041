//! `command_line_arguments` as Judge0 runs them (`app/jobs/isolate_job.rb`): `$&;<>|` and
//! backquotes removed, then the words split by the shell that runs the program.

/// Splits `command_line_arguments` the way Judge0's run script does: `$&;<>|` and backquotes
/// removed, then words split by bash (spaces; single quotes literal; double quotes and
/// backslashes escape).
pub fn split_arguments(text: &str) -> Vec<String> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| !"$&;<>|`".contains(*c))
        .collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = cleaned.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                word.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\')) => word.push(n),
                            Some(n) => {
                                word.push('\\');
                                word.push(n);
                            }
                            None => word.push('\\'),
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_like_bash_after_judge0s_filter() {
        assert_eq!(split_arguments("a b  c"), ["a", "b", "c"]);
        assert_eq!(
            split_arguments(r#"'hello world' "x \"y\"" z\ w"#),
            ["hello world", "x \"y\"", "z w"]
        );
        assert_eq!(
            split_arguments("a; rm -rf / | b `c` $HOME"),
            ["a", "rm", "-rf", "/", "b", "c", "HOME"]
        );
        assert!(split_arguments("   ").is_empty());
        assert_eq!(split_arguments("''"), [""]);
    }
}
