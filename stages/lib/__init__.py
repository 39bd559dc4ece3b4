"""Code shared by the stages and commands; nothing here is runnable on its own."""
