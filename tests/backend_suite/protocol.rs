//! What a child tells the parent: one [`Line`] per line of its stdout, `@@` then the kind
//! and tab-separated fields (free text last). Vendor libraries may print what they like
//! around them; the parent reads only these.

use crate::compare::Compute;

/// What became of one problem on a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// Refused when partitioning (the backend's table or per-node checks).
    Refused,
    /// Refused when compiling: the backend's table had accepted the node.
    Late,
    /// Not run: the reference refuses the problem or fails on it.
    Skip,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Refused => "refused",
            Verdict::Late => "late",
            Verdict::Skip => "skip",
        }
    }

    fn parse(w: &str) -> Option<Verdict> {
        [
            Verdict::Pass,
            Verdict::Fail,
            Verdict::Refused,
            Verdict::Late,
            Verdict::Skip,
        ]
        .into_iter()
        .find(|v| v.word() == w)
    }
}

/// Whose refusal a reason is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refuser {
    /// The backend, when partitioning.
    Backend,
    /// The backend's library, when compiling.
    Compiler,
    /// The reference: no backend runs the problem.
    Reference,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// A problem starts (the parent blames a death on it).
    Start { family: String, case: u32 },
    /// A problem's verdict, the backend's time on it, and for a pass its largest
    /// difference as a fraction of the tolerance.
    Result {
        family: String,
        case: u32,
        verdict: Verdict,
        micros: u64,
        ratio: f64,
    },
    /// Why a problem was refused, without what varies between problems.
    Reason { refuser: Refuser, text: String },
    /// A failure of the problem in flight is being shrunk.
    Shrink { first: String },
    /// A shrinking step: simplify (`true`) or complicate; the parent replays them to the
    /// candidate a child died on.
    Step { simplify: bool },
    /// A line of a failure's report.
    Report(String),
    /// The reference against the naive implementation: agreed or not.
    Naive { agreed: bool },
    /// A backend to run on (`--discover`).
    Target {
        id: String,
        compute: Compute,
        detail: String,
    },
    /// An expected backend that is absent (`--discover`).
    Skipped { id: String, reason: String },
    /// The backend a child was asked for is not here.
    Missing,
    /// The child finished.
    End,
}

/// Tabs and line breaks inside a field would break the line apart.
fn clean(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

impl Line {
    /// Prints the line on stdout (line-buffered: it is out before a crash).
    pub fn send(&self) {
        println!("{}", self.encode());
    }

    pub fn encode(&self) -> String {
        let fields: Vec<String> = match self {
            Line::Start { family, case } => vec!["start".into(), family.clone(), case.to_string()],
            Line::Result {
                family,
                case,
                verdict,
                micros,
                ratio,
            } => vec![
                "result".into(),
                family.clone(),
                case.to_string(),
                verdict.word().into(),
                micros.to_string(),
                format!("{ratio:.6}"),
            ],
            Line::Reason { refuser, text } => {
                let who = match refuser {
                    Refuser::Backend => "backend",
                    Refuser::Compiler => "compiler",
                    Refuser::Reference => "reference",
                };
                vec!["reason".into(), who.into(), clean(text)]
            }
            Line::Shrink { first } => vec!["shrink".into(), clean(first)],
            Line::Step { simplify } => {
                vec!["step".into(), if *simplify { "s" } else { "c" }.into()]
            }
            Line::Report(text) => vec!["report".into(), clean(text)],
            Line::Naive { agreed } => vec!["naive".into(), agreed.to_string()],
            Line::Target {
                id,
                compute,
                detail,
            } => {
                let c = if *compute == Compute::F16 {
                    "f16"
                } else {
                    "exact"
                };
                vec!["target".into(), id.clone(), c.into(), clean(detail)]
            }
            Line::Skipped { id, reason } => vec!["skipped".into(), id.clone(), clean(reason)],
            Line::Missing => vec!["missing".into()],
            Line::End => vec!["end".into()],
        };
        format!("@@{}", fields.join("\t"))
    }

    /// The line in `text`, if it holds one (a vendor library may have printed before it on
    /// the same line).
    pub fn parse(text: &str) -> Option<Line> {
        let at = text.find("@@")?;
        let f: Vec<&str> = text[at + 2..].split('\t').collect();
        let case = |s: &str| s.parse::<u32>().ok();
        Some(match f.as_slice() {
            ["start", family, c] => Line::Start {
                family: family.to_string(),
                case: case(c)?,
            },
            ["result", family, c, v, micros, ratio] => Line::Result {
                family: family.to_string(),
                case: case(c)?,
                verdict: Verdict::parse(v)?,
                micros: micros.parse().ok()?,
                ratio: ratio.parse().ok()?,
            },
            ["reason", who, text] => Line::Reason {
                refuser: match *who {
                    "backend" => Refuser::Backend,
                    "compiler" => Refuser::Compiler,
                    "reference" => Refuser::Reference,
                    _ => return None,
                },
                text: text.to_string(),
            },
            ["shrink", first] => Line::Shrink {
                first: first.to_string(),
            },
            ["step", s] => Line::Step {
                simplify: *s == "s",
            },
            ["report", text] => Line::Report(text.to_string()),
            ["naive", agreed] => Line::Naive {
                agreed: *agreed == "true",
            },
            ["target", id, c, detail] => Line::Target {
                id: id.to_string(),
                compute: if *c == "f16" {
                    Compute::F16
                } else {
                    Compute::Exact
                },
                detail: detail.to_string(),
            },
            ["skipped", id, reason] => Line::Skipped {
                id: id.to_string(),
                reason: reason.to_string(),
            },
            ["missing"] => Line::Missing,
            ["end"] => Line::End,
            _ => return None,
        })
    }
}
