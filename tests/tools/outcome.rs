//! What one side-by-side run of a tool showed, wherever it ran.

use super::cases::Tool;
use super::normalize;

pub enum Outcome {
    Equal,
    Differs(String),
    /// bpftrace itself does not start here (the kernel lacks what the tool needs);
    /// rbt's error, which must be one clear message too.
    NeitherStarts {
        bpftrace: String,
        rbt: String,
    },
    /// bpftrace does not start here but rbt does (rbt needs no kernel headers).
    OnlyRbtStarts(String),
    RbtFails(String),
    /// The kernel lacks a function the tool probes and rbt refuses, naming function and
    /// kernel, while bpftrace runs. (Since rbt skips such a function in a probe of
    /// several attach points, as bpftrace does, this is left for a lone attach point.)
    KernelLacks(String),
}

impl Outcome {
    /// Judges a run from whether each tracer got its probes live, their outputs and
    /// their stderr (bpftrace's RLIMIT_MEMLOCK notice dropped).
    pub fn judge(tool: &Tool, live: (bool, bool), out: (&str, &str), err: (&str, &str)) -> Outcome {
        let clean = |e: &str| {
            e.lines()
                .filter(|l| !l.contains("RLIMIT_MEMLOCK") && !l.contains("__BPFTRACE_NOTIFY"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        match live {
            (false, false) => Outcome::NeitherStarts {
                bpftrace: clean(err.0),
                rbt: clean(err.1),
            },
            (true, false)
                if err.0.contains("is not traceable")
                    && err
                        .1
                        .contains("has it neither in BTF nor among its traceable functions") =>
            {
                Outcome::KernelLacks(clean(err.1))
            }
            (true, false) => Outcome::RbtFails(clean(err.1)),
            (false, true) => Outcome::OnlyRbtStarts(clean(err.0)),
            (true, true) => match normalize::compare(out.0, out.1, &tool.rules) {
                Ok(()) => Outcome::Equal,
                Err(why) => Outcome::Differs(why),
            },
        }
    }

    pub fn passed(&self) -> bool {
        matches!(
            self,
            Outcome::Equal
                | Outcome::NeitherStarts { .. }
                | Outcome::OnlyRbtStarts(_)
                | Outcome::KernelLacks(_)
        )
    }

    /// The docs/TOOLS.md cell.
    pub fn cell(&self) -> &'static str {
        match self {
            Outcome::Equal => "equal",
            Outcome::NeitherStarts { .. } => "neither starts",
            Outcome::OnlyRbtStarts(_) => "rbt starts, bpftrace does not",
            Outcome::Differs(_) => "**differs**",
            Outcome::RbtFails(_) => "**rbt fails**",
            Outcome::KernelLacks(_) => "kernel lacks its function",
        }
    }

    /// One line: the report's, and the docs' note.
    pub fn summary(&self) -> String {
        let first = |text: &str| -> String {
            let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            line.chars().take(160).collect()
        };
        match self {
            Outcome::Equal => String::new(),
            Outcome::Differs(why) => first(why),
            Outcome::RbtFails(why) | Outcome::KernelLacks(why) => format!("rbt: {}", first(why)),
            Outcome::NeitherStarts { bpftrace, rbt } => {
                format!("bpftrace: {}; rbt: {}", first(bpftrace), first(rbt))
            }
            Outcome::OnlyRbtStarts(why) => format!("bpftrace: {}", first(why)),
        }
    }
}

/// The tools a gate file lists (`#` comments, blank lines ignored).
pub fn gate(file: &str) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}
