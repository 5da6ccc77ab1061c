"""The consent step of 3LO (obtaining the first refresh token), shared by the CLI and the UI page."""
