use scope_plugin::prelude::*;

// Scope splits a multicolumn table's keys on "___".
#[scope_table(topology = "process", id = "t", label = "T", columns = [("a___b", "A")])]
fn split() -> Vec<((Pid, u16), [String; 1])> {
    Vec::new()
}

#[scope_table(topology = "process", id = "u", label = "U", columns = [("a;b", "A")])]
fn semicolon() -> Vec<((Pid, u16), [String; 1])> {
    Vec::new()
}

#[scope_table(topology = "process", id = "v", label = "V", columns = [])]
fn none() -> Vec<((Pid, u16), [String; 1])> {
    Vec::new()
}

#[scope_table(topology = "process", id = "w", label = "W", columns = [("a", "A"), ("a", "B")])]
fn twice() -> Vec<((Pid, u16), [String; 2])> {
    Vec::new()
}

#[scope_table(topology = "process", id = "x", label = "X", columns = [("a", "A", "integer")])]
fn bad_type() -> Vec<((Pid, u16), [String; 1])> {
    Vec::new()
}

#[scope_table(topology = "process", id = "y", label = "Y", priority = 3.0)]
fn no_priority() -> Vec<((Pid, u16), String)> {
    Vec::new()
}

fn main() {}
