"""File formats: MOTChallenge text (boxes) and MOTS run-length masks."""
