//! The runtime's view of the printer.

use std::io;

use super::maps::MapDump;
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
            Flow::MapOp(map, op) => Next::MapOp { map, op },
        })
    }

    fn lost(&mut self, count: u64) -> io::Result<()> {
        Printer::lost(self, count)
    }

    fn finish(&mut self) -> io::Result<()> {
        Printer::finish(self)
    }

    fn print_map(&mut self, map: &MapDump, top: u64, div: u64) -> io::Result<()> {
        Printer::print_map(self, map, top, div)
    }

    fn exit_maps(&mut self, maps: &[MapDump]) -> io::Result<()> {
        Printer::exit_maps(self, maps)
    }
}
