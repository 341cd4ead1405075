//! Nothing to run: see this package's manifest.
