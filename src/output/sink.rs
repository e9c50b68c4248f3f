//! The runtime's view of the printer.

use std::io;

use super::{Flow, Printer};
use crate::event::EventCatalog;
use crate::runtime::{EventSink, Next};

impl EventSink for Printer {
    fn attached(&mut self, probes: usize) -> io::Result<()> {
        Printer::attached(self, probes)
    }

    fn event(&mut self, catalog: &EventCatalog, record: &[u8]) -> io::Result<Next> {
        Ok(match Printer::event(self, catalog, record)? {
            Flow::Continue => Next::Continue,
            Flow::Exit => Next::Stop,
        })
    }

    fn lost(&mut self, count: u64) -> io::Result<()> {
        Printer::lost(self, count)
    }

    fn finish(&mut self) -> io::Result<()> {
        Printer::finish(self)
    }
}
