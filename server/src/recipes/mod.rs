//! Recipes: git repositories of compose files, read from their tags' trees.

pub mod git;
pub mod version;
