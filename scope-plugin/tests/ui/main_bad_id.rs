scope_plugin::main!(id = "my_plugin", label = "My plugin");
