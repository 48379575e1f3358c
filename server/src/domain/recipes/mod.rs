//! Recipes: git repositories of compose files, kept as bare clones and read from their tags' trees.

pub mod catalogue;
pub mod inspect;
pub mod lint;
pub mod metadata;
mod publish;
pub mod release;
pub mod review;
pub mod staging;
pub mod store;
pub mod trial;
pub mod version;
