//! Semantic analysis: resolve names and kernel types, type-check, produce the typed program.
