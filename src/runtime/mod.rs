//! Runtime: load programs and maps, attach, run BEGIN, poll the ring buffer, run END.

mod error;
mod load;

pub use error::RuntimeError;
pub use load::{kernel_prog_type, load, Loaded};
