"""What the command line prints: the derivation as text and as JSON, and verify's verdicts."""
