//! The golden end-to-end suite's parts: scenarios, the VM runner, the
//! comparator, and the snapshot normalizer (used by tests/golden_vm.rs).

pub mod compare;
pub mod maps;
pub mod normalize;
pub mod scenarios;
pub mod tools;
pub mod vm;
