//! The abstract syntax tree: the contract between the parser and semantic analysis.
//! Every node carries the [`Span`] of the text it came from.

pub use crate::diag::Span;
use crate::probes::Provider;

#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// C type definitions before the first probe (bpftrace hands them to clang; rbt
    /// lays them out itself), in script order.
    pub types: Vec<CDef>,
    pub probes: Vec<Probe>,
    /// The positional parameters (`$1`..): command-line arguments after the script,
    /// set by the caller after parsing.
    pub params: Vec<String>,
    /// Bytes of a `str()` value (bpftrace's BPFTRACE_STRLEN, default 64), set by the
    /// caller like `params`.
    pub str_size: usize,
    /// Whether a `-c` command runs (`cpid` needs one), set by the caller like `params`.
    pub child: bool,
    /// `--unsafe`: builtins that act on the system (`system`, `signal`) are allowed; set
    /// by the caller like `params`.
    pub allow_unsafe: bool,
    /// `-p PID`: attach points naming files are looked up as that process sees them
    /// (another mount namespace); set by the caller like `params`.
    pub pid: Option<u32>,
    pub span: Span,
}

/// `attach_point[, attach_point...] [/predicate/] { body }`
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub attach_points: Vec<AttachPoint>,
    pub predicate: Option<Expr>,
    pub body: Block,
    pub span: Span,
}

/// One attach point: `kretprobe:inet_csk_accept`, `tracepoint:sock:inet_sock_set_state`, `BEGIN`.
/// `provider` is the probe type's registry entry (aliases resolved); `target` holds the
/// parts after the type (`["inet_csk_accept"]`, `["sock", "inet_sock_set_state"]`).
#[derive(Clone, Debug, PartialEq)]
pub struct AttachPoint {
    pub provider: &'static Provider,
    pub target: Vec<String>,
    pub span: Span,
    /// The script's wildcard target this attach point is one match of (`vfs_*`), while
    /// the matches may attach together (bpftrace's kprobe_multi); `None` for a target
    /// written out, or once its probe needs one program per attach point.
    pub wildcard: Option<String>,
}

impl AttachPoint {
    /// Whether a part of its target is a wildcard pattern (`vfs_*`): it denotes the
    /// provider's matching targets.
    pub fn has_wildcard(&self) -> bool {
        self.target
            .iter()
            .any(|t| crate::probes::wildcard::has_wildcard(t))
    }

    /// The attach point as bpftrace spells it, e.g. `kretprobe:inet_csk_accept`; a
    /// function offset of 0 is not written (`echo_builtin+0` is `echo_builtin`), as
    /// bpftrace adds `+N` only for an offset other than 0.
    pub fn name(&self) -> String {
        let zero_offset = |part: &str| {
            part.split_once('+').and_then(|(name, off)| {
                let off = off.trim_start_matches("0x").trim_start_matches("0X");
                (!name.is_empty() && !off.is_empty() && off.bytes().all(|b| b == b'0'))
                    .then_some(name.len())
            })
        };
        std::iter::once(self.provider.name)
            .chain(
                self.target
                    .iter()
                    .map(|p| zero_offset(p).map_or(p.as_str(), |n| &p[..n])),
            )
            .collect::<Vec<_>>()
            .join(":")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// An expression evaluated for its effect: `printf(...)`, `exit()`, `@x++`.
    Expr(Expr),
    /// `$x = e`, `@m[k] = e`, and compound forms `$x += e` (`op` = `Some(BinOp::Add)`).
    Assign {
        target: LValue,
        op: Option<BinOp>,
        value: Expr,
    },
    /// `if (cond) { .. } else if (..) { .. } else { .. }`; an `else if` is an `else`
    /// block holding a single `If` statement.
    If {
        cond: Expr,
        then: Block,
        otherwise: Option<Block>,
    },
    /// `while (cond) { .. }`
    While { cond: Expr, body: Block },
    /// `unroll(n) { .. }`: the body `n` times; `count` is an integer, `-` integer,
    /// `$N` or `$#` (bpftrace 0.17's grammar), folded by sema.
    Unroll { count: Expr, body: Block },
    /// `return;`
    Return,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LValue {
    /// `$name` (name without the `$`)
    Var { name: String, span: Span },
    /// `@name[keys]` (name without the `@`; `@` alone is the empty name)
    Map {
        name: String,
        keys: Vec<Expr>,
        span: Span,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(u64),
    /// A string literal with escapes already decoded.
    Str(String),
    /// `$name` (without the `$`)
    Var(String),
    /// `$1`, `$2`, ...: a positional parameter (a command-line argument after the script).
    Param(u64),
    /// `$#`: the number of positional parameters.
    ParamCount,
    /// `@name[keys]` read
    Map {
        name: String,
        keys: Vec<Expr>,
    },
    /// Builtin variables: `pid`, `tid`, `comm`, `retval`, `arg0`, `args`, `nsecs`, `cpu`, ...
    Builtin(String),
    /// A bare identifier that is neither a builtin nor a macro (sema reports it).
    Ident(String),
    /// `name(args)`: printf, time, ntop, bswap, exit, ...
    Call {
        name: String,
        args: Vec<Expr>,
    },
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    /// `(struct sock *)e`
    Cast {
        ty: TypeName,
        expr: Box<Expr>,
    },
    /// `e->field` (`arrow` = true) or `e.field`
    Member {
        expr: Box<Expr>,
        field: String,
        arrow: bool,
    },
    /// `(a, b, ...)`: a tuple of two or more values.
    Tuple(Vec<Expr>),
    /// `e.0`: element `index` of a tuple.
    TupleElem {
        expr: Box<Expr>,
        index: u64,
    },
    /// `e[index]`
    Index {
        expr: Box<Expr>,
        index: Box<Expr>,
    },
    /// `x++`, `x--`, `++x`, `--x` on a variable or map
    IncDec {
        target: LValue,
        increment: bool,
        prefix: bool,
    },
}

/// A C type name in a cast: `struct sock *` is `{ name: "struct sock", pointer_depth: 1 }`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeName {
    pub name: String,
    pub pointer_depth: u8,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `!`
    Not,
    /// `~`
    BitNot,
    /// `-`
    Neg,
    /// `*` (dereference)
    Deref,
    /// `&` (address-of)
    AddrOf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LogicalAnd,
    LogicalOr,
}

/// `struct Foo { ... }`, `union U { ... }` or `enum E { A, B = 5 }` in the script.
#[derive(Clone, Debug, PartialEq)]
pub struct CDef {
    pub kind: CKind,
    /// The tag (`Foo`); empty for an anonymous inline definition.
    pub name: String,
    pub body: CBody,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CKind {
    Struct,
    Union,
    Enum,
}

impl CKind {
    pub fn keyword(self) -> &'static str {
        match self {
            CKind::Struct => "struct",
            CKind::Union => "union",
            CKind::Enum => "enum",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum CBody {
    Fields(Vec<CField>),
    /// Enumerators with their values (implicit ones already counted up).
    Enumerators(Vec<(String, i64)>),
}

/// One declarator of a member: `struct Bar *p[2] : 3`.
#[derive(Clone, Debug, PartialEq)]
pub struct CField {
    pub ty: CType,
    pub name: String,
    pub pointer_depth: u8,
    /// Array dimensions, outermost first (`long y[4][2]` is `[4, 2]`).
    pub dims: Vec<u32>,
    /// Bitfield width.
    pub bits: Option<u32>,
    pub span: Span,
}

/// A member's base type: a name (`int`, `unsigned long`, `u32`, `struct Bar`) or a
/// definition written in place.
#[derive(Clone, Debug, PartialEq)]
pub enum CType {
    Named(String, Span),
    Def(Box<CDef>),
}
