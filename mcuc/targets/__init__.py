"""Execution targets for compiled projects: the native host build (and emulators)."""
