//! Runtime: load programs and maps, attach, run BEGIN, poll the ring buffer, run END.
