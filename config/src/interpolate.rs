//! `${VAR}` in agent and sink configuration files: replaced by the environment variable's value
//! before the TOML is parsed, so that secrets (and anything else that differs per host) need
//! not be written into the file.
//!
//! Only string values are interpolated — text inside `"…"`, `'…'`, `"""…"""` and `'''…'''` —
//! never comments or the file's structure, and the value is escaped for the string it lands in:
//! a variable holding quotes or newlines cannot add keys to the configuration. `$${` is a
//! literal `${`; a `$` not followed by `{` is left alone (regular expressions end in `$`). A
//! variable that is not set is an error naming it and the line; an empty one is its value.

/// Why interpolation failed, with the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}; fix: {fix}")]
pub struct InterpolationError {
    /// Line of the `${`.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
    /// What to write instead.
    pub fix: String,
}

/// [`interpolate`] with the process's environment.
pub fn from_environment(text: &str) -> Result<String, InterpolationError> {
    interpolate(text, |name| std::env::var(name).ok())
}

/// The kind of string being read, which decides the escaping of a substituted value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoted {
    Basic,
    MultiBasic,
    Literal,
    MultiLiteral,
}

/// `text` with every `${NAME}` inside a string value replaced by `lookup(NAME)`.
pub fn interpolate(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, InterpolationError> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut state: Option<Quoted> = None;
    let mut in_comment = false;
    let mut line = 1;
    // Start of the text not yet copied to `out`.
    let mut copied = 0;
    let mut i = 0;
    let starts = |i: usize, s: &str| bytes.get(i..i + s.len()) == Some(s.as_bytes());
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' {
            line += 1;
            in_comment = false;
            // Single-line strings end at the line's end (an unterminated one is the parser's
            // error to report).
            if matches!(state, Some(Quoted::Basic | Quoted::Literal)) {
                state = None;
            }
            i += 1;
            continue;
        }
        if in_comment {
            i += 1;
            continue;
        }
        match state {
            None => {
                let (next, advance) = match b {
                    b'#' => {
                        in_comment = true;
                        (None, 1)
                    }
                    b'"' if starts(i, "\"\"\"") => (Some(Quoted::MultiBasic), 3),
                    b'"' => (Some(Quoted::Basic), 1),
                    b'\'' if starts(i, "'''") => (Some(Quoted::MultiLiteral), 3),
                    b'\'' => (Some(Quoted::Literal), 1),
                    _ => (None, 1),
                };
                state = next;
                i += advance;
            }
            Some(quoted) => {
                match b {
                    // An escape (a quote or a backslash) in a basic string: skip both bytes.
                    b'\\' if matches!(quoted, Quoted::Basic | Quoted::MultiBasic) => {
                        if bytes.get(i + 1) == Some(&b'\n') {
                            line += 1;
                        }
                        i += 2;
                    }
                    b'"' if quoted == Quoted::Basic => {
                        state = None;
                        i += 1;
                    }
                    b'\'' if quoted == Quoted::Literal => {
                        state = None;
                        i += 1;
                    }
                    b'"' | b'\''
                        if (b == b'"' && quoted == Quoted::MultiBasic)
                            || (b == b'\'' && quoted == Quoted::MultiLiteral) =>
                    {
                        let run = bytes[i..].iter().take_while(|&&c| c == b).count();
                        // Up to two quotes may sit right before the closing three.
                        if run >= 3 {
                            state = None;
                        }
                        i += run;
                    }
                    b'$' if starts(i, "$${") => {
                        out.push_str(&text[copied..i]);
                        out.push_str("${");
                        i += 3;
                        copied = i;
                    }
                    b'$' if starts(i, "${") => {
                        let (name, end) = reference(text, i + 2).ok_or_else(|| InterpolationError {
                            line,
                            problem: format!("`{}` is not a variable reference", excerpt(&text[i..])),
                            fix: "write ${NAME} with letters, digits and _, or $${ for a literal ${".into(),
                        })?;
                        let value = lookup(name).ok_or_else(|| InterpolationError {
                            line,
                            problem: format!("environment variable `{name}` is not set"),
                            fix: format!(
                                "set {name} in the environment of millrace, or write $${{{name}}} for the literal text"
                            ),
                        })?;
                        out.push_str(&text[copied..i]);
                        escape_into(&mut out, &value, quoted).map_err(|problem| InterpolationError {
                            line,
                            problem: format!("the value of `{name}` {problem}"),
                            fix: "use a double-quoted string (\"${NAME}\"), where any value can be written".into(),
                        })?;
                        i = end;
                        copied = i;
                    }
                    _ => i += 1,
                }
            }
        }
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// The variable name of a reference whose name starts at `start`, and the index after its `}`.
fn reference(text: &str, start: usize) -> Option<(&str, usize)> {
    let close = start + text.get(start..)?.find('}')?;
    let name = &text[start..close];
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some((name, close + 1))
}

/// The start of a bad reference for an error message.
fn excerpt(text: &str) -> &str {
    let end = text.char_indices().take(20).find(|(_, c)| *c == '}' || *c == '\n').map_or_else(
        || text.char_indices().nth(20).map_or(text.len(), |(i, _)| i),
        |(i, c)| if c == '}' { i + 1 } else { i },
    );
    &text[..end]
}

/// Appends `value` as it must be written inside a string of kind `quoted`.
fn escape_into(out: &mut String, value: &str, quoted: Quoted) -> Result<(), &'static str> {
    match quoted {
        Quoted::Basic | Quoted::MultiBasic => {
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    // Escaped rather than written, so that line numbers after it stay right.
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
                    c => out.push(c),
                }
            }
            Ok(())
        }
        // Literal strings have no escapes: what cannot be written in them is refused.
        Quoted::Literal if value.contains(['\'', '\n', '\r']) => {
            Err("holds a quote or a line break, which a '…' string cannot hold")
        }
        Quoted::MultiLiteral if value.contains("'''") => Err("holds ''', which a '''…''' string cannot hold"),
        Quoted::Literal | Quoted::MultiLiteral if value.chars().any(|c| c.is_control() && c != '\t' && c != '\n') => {
            Err("holds a control character, which a literal string cannot hold")
        }
        Quoted::Literal | Quoted::MultiLiteral => {
            out.push_str(value);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PASSWORD" => Some("s3cret".into()),
            "QUOTE" => Some("a\"b\\c\nd".into()),
            "EMPTY" => Some(String::new()),
            "APOS" => Some("it's".into()),
            _ => None,
        }
    }

    fn parsed(text: &str) -> toml::Table {
        toml::from_str(&interpolate(text, env).unwrap()).unwrap()
    }

    #[test]
    fn variables_in_every_kind_of_string_are_replaced() {
        let table = parsed(
            "a = \"${PASSWORD}\"\nb = 'x-${PASSWORD}-y'\nc = \"\"\"\n${PASSWORD}\"\"\"\nd = '''${PASSWORD}'''\ne = \"${EMPTY}\"\n",
        );
        for (key, want) in [("a", "s3cret"), ("b", "x-s3cret-y"), ("c", "s3cret"), ("d", "s3cret"), ("e", "")] {
            assert_eq!(table[key].as_str(), Some(want), "{key}");
        }
    }

    #[test]
    fn a_value_cannot_change_the_structure_of_the_file() {
        // Quotes, a backslash and a newline stay inside the string and the next line keeps its number.
        let text = "password = \"${QUOTE}\"\nuser = \"u\"\n";
        let out = interpolate(text, env).unwrap();
        assert_eq!(out.lines().count(), 2);
        let table: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(table["password"].as_str(), Some("a\"b\\c\nd"));
        assert_eq!(table.len(), 2);
        let error = interpolate("x = '${APOS}'\n", env).unwrap_err();
        assert!(error.problem.contains("`APOS`") && error.fix.contains("double-quoted"), "{error}");
    }

    #[test]
    fn comments_keys_and_escapes_are_left_alone() {
        let text = "# ${NOT_SET} in a comment\nre = \"^a$\"\nlit = \"$${PASSWORD}\"\nq = \"\\\"${PASSWORD}\\\"\"\n\
                    x = 1 # \"${NOT_SET}\"\n";
        let table = parsed(text);
        assert_eq!(table["re"].as_str(), Some("^a$"));
        assert_eq!(table["lit"].as_str(), Some("${PASSWORD}"));
        assert_eq!(table["q"].as_str(), Some("\"s3cret\""));
        // A quote inside a multi-line string does not end it.
        let table = parsed("m = \"\"\"a \" ${PASSWORD} \"\" b\"\"\"\nn = '''it's ${PASSWORD}'''\n");
        assert_eq!(table["m"].as_str(), Some("a \" s3cret \"\" b"));
        assert_eq!(table["n"].as_str(), Some("it's s3cret"));
    }

    #[test]
    fn a_missing_variable_is_named_with_its_line() {
        let error = interpolate("a = 1\n\nb = \"${ES_PASSWORD}\"\n", env).unwrap_err();
        assert_eq!(error.line, 3);
        assert!(error.problem.contains("`ES_PASSWORD` is not set"), "{error}");
        assert!(error.to_string().contains("fix: set ES_PASSWORD"), "{error}");
        for bad in ["a = \"${}\"", "a = \"${1X}\"", "a = \"${OPEN\"", "a = \"${A-B}\""] {
            let error = interpolate(bad, env).unwrap_err();
            assert!(error.problem.contains("is not a variable reference"), "{bad}: {error}");
        }
    }
}
