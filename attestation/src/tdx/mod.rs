//! Intel TDX DCAP quotes (v4, v5): parse, verify with collateral, expose claims.
