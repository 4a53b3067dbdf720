//! Entry points for the fuzz targets in `fuzz/` (not a public API).
