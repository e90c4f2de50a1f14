"""The staff console: accounts, sign-in and the pages staff work in."""
