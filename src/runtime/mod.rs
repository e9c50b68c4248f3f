//! Runtime: load programs and maps, attach, run BEGIN, poll the ring buffer, run END.

mod attach;
mod error;
mod load;
mod ringbuf;

pub use attach::{Attacher, Attachment};
pub use error::RuntimeError;
pub use load::{kernel_prog_type, load, Loaded};
pub use ringbuf::{Next, RingBuf};
