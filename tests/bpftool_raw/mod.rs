//! The test oracle: `bpftool btf dump file F format raw`, parsed. Independent of
//! rbt's reader, so agreement means our decoding is right.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMember {
    pub name: String,
    pub type_id: u32,
    pub bit_offset: u32,
    pub bitfield_size: Option<u32>,
}

pub struct Entry {
    pub kind: String,
    /// "" for bpftool's '(anon)'.
    pub name: String,
    attrs: HashMap<String, String>,
    /// Members (struct/union) or parameters (func_proto), in order.
    lines: Vec<RawMember>,
}

impl Entry {
    pub fn attr(&self, key: &str) -> Option<u32> {
        self.attrs.get(key)?.parse().ok()
    }
}

pub struct Dump {
    entries: BTreeMap<u32, Entry>,
    first: HashMap<(String, String), u32>,
}

/// Skips `test` for want of bpftool (fails when CI is set: CI has bpftool).
pub fn skip_or_fail(test: &str) {
    crate::support::skip(
        test,
        "bpftool is not installed (looked at /usr/sbin/bpftool and PATH)",
    );
}

fn bpftool() -> &'static str {
    if Path::new("/usr/sbin/bpftool").exists() {
        "/usr/sbin/bpftool"
    } else {
        "bpftool"
    }
}

pub fn dump(file: &Path) -> Result<Dump, String> {
    let out = Command::new(bpftool())
        .args(["btf", "dump", "file"])
        .arg(file)
        .args(["format", "raw"])
        .output()
        .map_err(|e| format!("cannot run bpftool: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "bpftool failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(parse(&String::from_utf8_lossy(&out.stdout)))
}

fn quoted(s: &str) -> (String, &str) {
    let s = s.trim_start();
    match s.strip_prefix('\'').and_then(|r| r.split_once('\'')) {
        Some(("(anon)", rest)) => (String::new(), rest),
        Some((name, rest)) => (name.to_string(), rest),
        None => (String::new(), s),
    }
}

fn attrs(s: &str) -> HashMap<String, String> {
    s.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_end_matches(',').to_string()))
        .collect()
}

fn parse(text: &str) -> Dump {
    let mut entries = BTreeMap::new();
    let mut first = HashMap::new();
    let mut current: Option<u32> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            let (id, rest) = rest.split_once("] ").expect("bpftool [id] line");
            let id: u32 = id.parse().expect("type id");
            let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let (name, rest) = quoted(rest);
            first.entry((kind.to_string(), name.clone())).or_insert(id);
            entries.insert(
                id,
                Entry {
                    kind: kind.to_string(),
                    name,
                    attrs: attrs(rest),
                    lines: Vec::new(),
                },
            );
            current = Some(id);
        } else if let Some(rest) = line.strip_prefix('\t') {
            let (name, rest) = quoted(rest);
            let a = attrs(rest);
            let num = |k: &str| a.get(k).and_then(|v| v.parse::<u32>().ok());
            let Some(type_id) = num("type_id") else {
                continue; // enum values, datasec entries
            };
            let e = entries
                .get_mut(&current.expect("member before type"))
                .unwrap();
            e.lines.push(RawMember {
                name,
                type_id,
                bit_offset: num("bits_offset").unwrap_or(0),
                bitfield_size: num("bitfield_size"),
            });
        }
    }
    Dump { entries, first }
}

impl Dump {
    pub fn entries(&self) -> impl Iterator<Item = (u32, &Entry)> {
        self.entries.iter().map(|(id, e)| (*id, e))
    }

    pub fn get(&self, id: u32) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// The lowest id with this kind and name.
    pub fn first_named(&self, kind: &str, name: &str) -> Option<u32> {
        self.first
            .get(&(kind.to_string(), name.to_string()))
            .copied()
    }

    pub fn members(&self, id: u32) -> Vec<RawMember> {
        self.get(id).map(|e| e.lines.clone()).unwrap_or_default()
    }

    pub fn member_names(&self, id: u32) -> Vec<String> {
        self.members(id).into_iter().map(|m| m.name).collect()
    }

    fn resolve(&self, mut id: u32) -> u32 {
        while let Some(e) = self.get(id) {
            match e.kind.as_str() {
                "TYPEDEF" | "CONST" | "VOLATILE" | "RESTRICT" | "TYPE_TAG" => {
                    id = e.attr("type_id").unwrap()
                }
                _ => break,
            }
        }
        id
    }

    /// The type's own name (typedefs and ints, as bpftool prints it).
    pub fn name_of(&self, id: u32) -> String {
        self.get(id).map(|e| e.name.clone()).unwrap_or_default()
    }

    pub fn size_of(&self, id: u32) -> Option<u32> {
        self.get(self.resolve(id))?.attr("size")
    }

    /// Member names visible in `agg`: its own, and those of its anonymous members.
    pub fn reachable_names(&self, agg: u32) -> Vec<String> {
        let mut out = Vec::new();
        for m in self.members(self.resolve(agg)) {
            if m.name.is_empty() {
                out.extend(self.reachable_names(m.type_id));
            } else {
                out.push(m.name);
            }
        }
        out
    }

    /// C member lookup: direct names first in order, anonymous members searched
    /// recursively, offsets added.
    pub fn find_member(&self, agg: u32, name: &str) -> Option<RawMember> {
        for m in self.members(self.resolve(agg)) {
            if m.name == name {
                return Some(m);
            }
            if m.name.is_empty() {
                if let Some(mut inner) = self.find_member(m.type_id, name) {
                    inner.bit_offset += m.bit_offset;
                    return Some(inner);
                }
            }
        }
        None
    }
}
