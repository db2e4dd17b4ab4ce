"""elf layer."""
