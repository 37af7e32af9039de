"""Private data: age-encrypted assets, grants on chain, an access gateway, compute-to-data."""
