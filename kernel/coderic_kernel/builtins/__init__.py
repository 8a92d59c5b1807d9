"""Built-in plugins: the kernel's own features, written against the SDK like any plugin."""
