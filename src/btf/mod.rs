//! Kernel types from BTF (`/sys/kernel/btf/vmlinux`), indexed once, looked up by name.
//!
//! TEMPORARY STUB on the codegen branch: the public API of the btf branch, so sema
//! compiles before the real reader lands on main. Replaced wholesale by the btf branch.

use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

impl TypeId {
    pub const VOID: TypeId = TypeId(0);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeKind {
    Void,
    Int { size: u32, signed: bool, is_char: bool, is_bool: bool },
    Ptr { target: TypeId },
    Array { elem: TypeId, len: u32 },
    Struct { size: u32 },
    Union { size: u32 },
    Enum { size: u32, signed: bool },
    Float { size: u32 },
    Func,
    FuncProto,
    Fwd { union: bool },
    Var,
    Datasec,
    DeclTag,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub type_id: TypeId,
    pub bit_offset: u32,
    pub bitfield_size: Option<u32>,
}

#[derive(Debug)]
pub struct BtfError(String);

impl std::fmt::Display for BtfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct Btf {}

impl Btf {
    pub fn load(path: &Path) -> Result<Btf, BtfError> {
        Err(BtfError(format!("{}: BTF reader not implemented yet", path.display())))
    }
    pub fn find_type(&self, _name: &str) -> Option<TypeId> {
        None
    }
    pub fn find_func(&self, _name: &str) -> Option<TypeId> {
        None
    }
    pub fn resolve(&self, id: TypeId) -> TypeId {
        id
    }
    pub fn kind(&self, _id: TypeId) -> TypeKind {
        TypeKind::Void
    }
    pub fn member(&self, _agg: TypeId, _name: &str) -> Option<Member> {
        None
    }
    pub fn size_of(&self, _id: TypeId) -> Option<u32> {
        None
    }
    pub fn name_of(&self, _id: TypeId) -> String {
        String::new()
    }
}
