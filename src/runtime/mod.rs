//! Runtime: load programs and maps, attach, run BEGIN, poll the ring buffer, run END.

mod attach;
mod child;
mod error;
mod load;
pub mod maps;
mod ringbuf;
mod run;
mod status;

pub use attach::{
    load_attach_type, probe_count, tracefs_root, Attacher, Attachment, PerfAttachment,
};
pub use child::{is_executable, on_path};
pub use error::RuntimeError;
pub use load::{kernel_prog_type, load, load_with, Loaded, Premade};
pub use ringbuf::{Next, RingBuf};
pub use run::{run, EventSink, RunOptions};
