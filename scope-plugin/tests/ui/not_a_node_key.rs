use scope_plugin::prelude::*;

// A bare u32 says nothing of which node it names: the message says what keys exist.
#[scope_metric(topology = "process", id = "x", label = "X")]
fn x() -> Vec<(u32, u64)> {
    vec![]
}

fn main() {}
