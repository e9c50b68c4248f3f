//! The tools suite's parts: which tools run where and how (cases), what two tracers'
//! outputs must agree on (normalize) and how a run is judged (outcome).
#![allow(dead_code)]

pub mod cases;
pub mod normalize;
pub mod outcome;
