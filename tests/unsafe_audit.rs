//! The `unsafe` rule, enforced: `unsafe` appears only under src/sys/, every use there
//! carries a `// SAFETY:` comment right above it, and docs/SAFETY.md covers each file.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `line` uses the `unsafe` keyword in code (not in a comment or string).
fn uses_unsafe(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or("");
    let mut rest = code;
    while let Some(i) = rest.find("unsafe") {
        let before = rest[..i].chars().last();
        let after = rest[i + 6..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let in_string = rest[..i].matches('"').count() % 2 == 1;
        if !word(before) && !word(after) && !in_string {
            return true;
        }
        rest = &rest[i + 6..];
    }
    false
}

/// Whether the comment block directly above line `i` contains `SAFETY:`.
fn has_safety_comment(lines: &[&str], i: usize) -> bool {
    let mut j = i;
    while j > 0 {
        j -= 1;
        let l = lines[j].trim();
        if l.starts_with("//") {
            if l.contains("SAFETY:") {
                return true;
            }
            continue;
        }
        return false;
    }
    false
}

#[test]
fn unsafe_only_in_sys_and_always_justified() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let safety_doc = std::fs::read_to_string(root.join("docs/SAFETY.md")).unwrap();
    let mut outside = Vec::new();
    let mut unjustified = Vec::new();
    let mut undocumented = Vec::new();
    let mut count = 0;
    for file in &files {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut in_file = 0;
        for (i, line) in lines.iter().enumerate() {
            if !uses_unsafe(line) {
                continue;
            }
            in_file += 1;
            let at = format!("{rel}:{}", i + 1);
            if !rel.starts_with("src/sys/") {
                outside.push(at);
            } else if !has_safety_comment(&lines, i) {
                unjustified.push(at);
            }
        }
        if in_file > 0 && !safety_doc.contains(&rel) {
            undocumented.push(rel.clone());
        }
        count += in_file;
    }
    eprintln!("unsafe uses found: {count}");
    assert!(
        count > 0,
        "the scan found no unsafe at all: is it looking at src/?"
    );
    assert!(outside.is_empty(), "unsafe outside src/sys/: {outside:?}");
    assert!(
        unjustified.is_empty(),
        "unsafe without a // SAFETY: comment right above: {unjustified:?}"
    );
    assert!(
        undocumented.is_empty(),
        "files with unsafe that docs/SAFETY.md does not cover: {undocumented:?}"
    );
}

#[test]
fn the_scanner_sees_what_it_must() {
    assert!(uses_unsafe("    let x = unsafe { f() };"));
    assert!(uses_unsafe("unsafe fn f() {}"));
    assert!(!uses_unsafe("// unsafe is fine in a comment"));
    assert!(!uses_unsafe("let s = \"unsafe\";"));
    assert!(!uses_unsafe("let not_unsafe_at_all = 1;"));
    let lines = [
        "    // SAFETY: because.",
        "    // more why",
        "    unsafe { f() }",
    ];
    assert!(has_safety_comment(&lines, 2));
    let lines = ["    // no reason given", "    unsafe { f() }"];
    assert!(!has_safety_comment(&lines, 1));
}
