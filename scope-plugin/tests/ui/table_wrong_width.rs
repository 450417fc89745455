use scope_plugin::prelude::*;

// Two columns, rows of three cells.
#[scope_table(topology = "process", id = "t", label = "T", columns = [("a", "A"), ("b", "B")])]
fn rows() -> Vec<((Pid, u16), [String; 3])> {
    Vec::new()
}

fn main() {}
