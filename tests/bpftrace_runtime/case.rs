//! The case files (upstream's `tests/runtime/engine/parser.py`) and their `EXPECT`
//! patterns (Python `re`, translated for fancy-regex).

use super::*;

// parser.py

#[derive(Debug, Clone, Default)]
pub(crate) struct Case {
    pub(crate) suite: String,
    pub(crate) name: String,
    /// `suite.name`, with `#2`, `#3`... for later cases of the same name in one file.
    pub(crate) id: String,
    pub(crate) run: String,
    pub(crate) prog: String,
    pub(crate) expect: String,
    pub(crate) timeout: u64,
    pub(crate) before: String,
    pub(crate) after: String,
    pub(crate) kernel_min: String,
    pub(crate) kernel_max: String,
    pub(crate) requirement: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) arch: Vec<String>,
    pub(crate) features: Vec<String>,
    pub(crate) neg_features: Vec<String>,
    pub(crate) will_fail: bool,
}

/// `TestParser.read`: `#` lines are dropped (they do not end a case), a line that is
/// exactly "\n" or the file's last line ends one; cases for another ARCH are dropped.
pub(crate) fn parse_file(suite: &str, text: &str, machine: &str) -> Result<Vec<Case>, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut cases = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if *line != "\n" {
            current.push(line);
        }
        if (*line == "\n" || i + 1 == lines.len()) && !current.is_empty() {
            let case = parse_case(&current, suite)?;
            if case.arch.is_empty() || case.arch.iter().any(|a| a == machine) {
                cases.push(case);
            }
            current.clear();
        }
    }
    Ok(cases)
}

/// `TestParser.__read_test_struct`. Every value is the line's words re-joined with one
/// space (`' '.join(item.split()[1:])`), so runs of blanks collapse, as upstream.
pub(crate) fn parse_case(lines: &[&str], suite: &str) -> Result<Case, String> {
    let mut c = Case {
        suite: suite.to_string(),
        ..Case::default()
    };
    let mut timeout = None;
    for item in lines {
        let words: Vec<&str> = item.split_whitespace().collect();
        let Some((&field, rest)) = words.split_first() else {
            return Err(format!("blank-looking line {item:?}. Suite: {suite}"));
        };
        let line = rest.join(" ");
        match field {
            "NAME" => c.name = line,
            "RUN" => c.run = line,
            "PROG" => c.prog = line,
            "EXPECT" => c.expect = line,
            "TIMEOUT" => {
                timeout = Some(
                    line.trim_matches(' ')
                        .parse::<u64>()
                        .map_err(|e| format!("TIMEOUT {line:?}: {e}. Suite: {suite}"))?,
                )
            }
            "BEFORE" => c.before = line,
            "AFTER" => c.after = line,
            "MIN_KERNEL" => c.kernel_min = line,
            "MAX_KERNEL" => c.kernel_max = line,
            "REQUIRES" => c.requirement.push(line),
            "ENV" => {
                for e in line.split_whitespace() {
                    let parts: Vec<&str> = e.split('=').collect();
                    let [k, v] = parts[..] else {
                        return Err(format!("ENV {e:?} is not K=V. Suite: {suite}"));
                    };
                    c.env.push((k.to_string(), v.to_string()));
                }
            }
            "ARCH" => c.arch = line.split('|').map(|a| a.trim().to_string()).collect(),
            "REQUIRES_FEATURE" => {
                for f in line.split(' ') {
                    let f = f.trim();
                    let (list, name) = match f.strip_prefix('!') {
                        Some(n) => (&mut c.neg_features, n),
                        None => (&mut c.features, f),
                    };
                    if !FEATURES.contains(&name) {
                        return Err(format!(
                            "{name} is invalid for REQUIRES_FEATURE. Suite: {suite}"
                        ));
                    }
                    list.push(name.to_string());
                }
            }
            "WILL_FAIL" => c.will_fail = true,
            other => return Err(format!("Field {other} is unknown. Suite: {suite}")),
        }
    }
    if c.name.is_empty() {
        return Err(format!("Test NAME is required. Suite: {suite}"));
    } else if c.run.is_empty() && c.prog.is_empty() {
        return Err(format!("Test RUN or PROG is required. Suite: {suite}"));
    } else if !c.run.is_empty() && !c.prog.is_empty() {
        return Err(format!("Test RUN and PROG both specified. Suite: {suite}"));
    } else if c.expect.is_empty() {
        return Err(format!("Test EXPECT is required. Suite: {suite}"));
    }
    c.timeout = timeout.ok_or_else(|| format!("Test TIMEOUT is required. Suite: {suite}"))?;
    Ok(c)
}

/// `TestParser.read_all`: every file under runtime/ except engine/, scripts/, outputs/
/// and dot files; suites sorted by name, cases by name (main.py sorts both).
pub(crate) fn read_all(cases_dir: &Path, machine: &str) -> Result<Vec<Case>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir)
        .map_err(|e| format!("{}: {e}", cases_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for file in files {
        let suite = file.file_name().unwrap().to_string_lossy().into_owned();
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut cases = parse_file(&suite, &text, machine)?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for c in &mut cases {
            let n = seen.entry(c.name.clone()).or_insert(0);
            *n += 1;
            c.id = match *n {
                1 => format!("{}.{}", c.suite, c.name),
                n => format!("{}.{}#{n}", c.suite, c.name),
            };
        }
        cases.sort_by(|a, b| a.name.cmp(&b.name));
        all.extend(cases);
    }
    Ok(all)
}

// ---------------------------------------------------------------------------------------
// EXPECT: Python `re` patterns, translated for fancy-regex

/// Rewrites a Python `re` pattern into the syntax fancy-regex accepts with the same
/// meaning for what the cases use: `{`/`}` that do not form a quantifier are literals in
/// Python (escaped here), `[` inside a class is a literal, `\Z` is `\z`, `\<`/`\>` are
/// plain `<`/`>`, and without `re.M` Python's `$` also matches before a final newline.
pub(crate) fn translate_regex(pat: &str, multiline: bool) -> String {
    let chars: Vec<char> = pat.chars().collect();
    let mut out = String::from(if multiline { "(?m)" } else { "" });
    let mut i = 0;
    let mut in_class = false;
    let mut class_start = 0;
    let push_literal = |out: &mut String, c: char, in_class: bool| {
        let meta: &[char] = if in_class {
            &['\\', ']', '[', '^', '-', '&', '~']
        } else {
            &[
                '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
            ]
        };
        if meta.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let n = chars[i + 1];
            i += 2;
            match n {
                'Z' if !in_class => out.push_str("\\z"),
                'v' => out.push_str("\\x0B"),
                '0' => out.push_str("\\x00"),
                c if c.is_ascii_alphanumeric() => {
                    out.push('\\');
                    out.push(c);
                }
                c => push_literal(&mut out, c, in_class),
            }
            continue;
        }
        if in_class {
            // Python: a `]` right after `[` or `[^` is a literal.
            if c == ']' && i > class_start {
                in_class = false;
                out.push(']');
            } else if c == '-' || (c == '^' && i == class_start) {
                out.push(c);
                if c == '^' {
                    class_start = i + 1;
                }
            } else {
                push_literal(&mut out, c, true);
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = i + 1;
                out.push('[');
            }
            '{' => {
                let rest: String = chars[i + 1..].iter().collect();
                let q = rest.find('}').map(|end| &rest[..end]).filter(|body| {
                    let (lo, hi) = body.split_once(',').unwrap_or((body, ""));
                    lo.chars().all(|c| c.is_ascii_digit())
                        && hi.chars().all(|c| c.is_ascii_digit())
                        && (body.contains(',') || !lo.is_empty())
                });
                match q {
                    Some(body) => {
                        let body = if body.starts_with(',') {
                            format!("0{body}")
                        } else {
                            body.to_string()
                        };
                        let _ = write!(out, "{{{body}}}");
                        i += rest.find('}').unwrap() + 2;
                        continue;
                    }
                    None => out.push_str("\\{"),
                }
            }
            '}' => out.push_str("\\}"),
            '$' if !multiline => out.push_str("(?=\\n?\\z)"),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// `re.search(expect, output[, re.M])`. A pattern that does not compile is reported.
pub(crate) fn search(pat: &str, output: &str, multiline: bool) -> Result<bool, String> {
    let re = Regex::new(&translate_regex(pat, multiline))
        .map_err(|e| format!("EXPECT {pat:?} does not compile: {e}"))?;
    Ok(re.is_match(output).unwrap_or(false))
}

/// The first line of `output` that holds a match of `pat` (for reports).
pub(crate) fn matching_line(pat: &str, output: &str) -> Option<String> {
    let re = Regex::new(&translate_regex(pat, true)).ok()?;
    let m = re.find(output).ok()??;
    let start = output[..m.start()].rfind('\n').map_or(0, |p| p + 1);
    let end = output[m.end()..]
        .find('\n')
        .map_or(output.len(), |p| m.end() + p);
    Some(output[start..end].to_string())
}
