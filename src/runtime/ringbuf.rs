//! Consumer side of the BPF ring buffer that carries every event record.
//!
//! Why a ring buffer (`BPF_MAP_TYPE_RINGBUF`, Linux 5.8+) and not a perf buffer as
//! bpftrace 0.17 uses: it is one buffer shared by all CPUs, so records arrive in the
//! order they were reserved across CPUs (per-CPU perf buffers must be merged and can
//! print a later event first), userspace polls one fd instead of one per CPU, and
//! memory is not multiplied by the CPU count. Records are variable-length and copied
//! out directly, with no per-CPU sample headers to parse.

use std::io;
use std::os::fd::BorrowedFd;

use crate::sys::{RingBufMemory, RINGBUF_HDR_SIZE};

/// `BPF_RINGBUF_BUSY_BIT`: the producer has reserved but not yet committed the record.
const BUSY: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`: the producer discarded the record; skip it.
const DISCARD: u32 = 1 << 30;

#[derive(Debug)]
pub struct RingBuf {
    mem: RingBufMemory,
    record: Vec<u8>,
}

/// What the record callback wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Continue,
    Stop,
    /// Print, clear or zero map `map` (an index into `Compiled::maps`), then go on.
    MapOp {
        map: usize,
        op: crate::event::MapOp,
    },
}

impl RingBuf {
    /// Maps the ring buffer `map`.
    pub fn new(map: BorrowedFd<'_>) -> io::Result<RingBuf> {
        Ok(RingBuf {
            mem: RingBufMemory::map(map)?,
            record: Vec::new(),
        })
    }

    /// Hands the committed records to `on_record`, in order, up to where the kernel had
    /// written when called (so a busy producer cannot keep the caller from checking
    /// signals), stopping early at a record still being written (BUSY) or when
    /// `on_record` returns [`Next::Stop`]. Each record's space is released to the kernel
    /// before `on_record` sees the (copied) bytes.
    pub fn consume<E>(
        &mut self,
        mut on_record: impl FnMut(&[u8]) -> Result<Next, E>,
    ) -> Result<Next, E> {
        let mut cons = self.mem.consumer_pos();
        let prod = self.mem.producer_pos();
        while cons < prod {
            let header = self.mem.header(cons);
            if header & BUSY != 0 {
                break;
            }
            let len = (header & !(BUSY | DISCARD)) as u64;
            let discarded = header & DISCARD != 0;
            if !discarded {
                self.mem.read_record(cons, len as usize, &mut self.record);
            }
            cons += (len + RINGBUF_HDR_SIZE + 7) & !7;
            self.mem.set_consumer_pos(cons);
            if !discarded && on_record(&self.record)? == Next::Stop {
                return Ok(Next::Stop);
            }
        }
        Ok(Next::Continue)
    }

    /// Throws away every committed record (after `exit()`, as bpftrace ignores events
    /// that arrive once it is finishing).
    pub fn discard_pending(&mut self) {
        let _ = self.consume(|_| Ok::<_, ()>(Next::Continue));
    }
}
