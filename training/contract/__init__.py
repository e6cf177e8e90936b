"""The data contract (../shared/spec/data-contract.md): table definitions, I/O and validation."""
