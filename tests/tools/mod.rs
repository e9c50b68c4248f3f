//! The tools suite's parts: which tools run where and how (cases), and what two
//! tracers' outputs must agree on (normalize).
#![allow(dead_code)]

pub mod cases;
pub mod normalize;
