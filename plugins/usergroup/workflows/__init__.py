"""The workflows: a package per product (`user_group/`, `user/`), a module per workflow named as orchestrator-core
names it, each declared once; `engine.discovery` finds them."""
