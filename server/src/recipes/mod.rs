//! Recipes: git repositories of compose files, kept as bare clones and read from their tags' trees.

pub mod git;
pub mod inspect;
pub mod lint;
pub mod metadata;
pub mod store;
pub mod version;
