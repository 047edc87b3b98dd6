//! The book's CLI pages, run (written below).
