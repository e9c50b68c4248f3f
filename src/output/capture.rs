//! A printer destination in memory: the `Printer` owns one clone, the caller keeps
//! another and reads what was printed (as `rbt`'s tests do).

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

/// The bytes written so far, shared between its clones.
#[derive(Clone, Debug, Default)]
pub struct Capture(Rc<RefCell<Vec<u8>>>);

impl Capture {
    /// A copy of everything written to any clone.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.borrow().clone()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
