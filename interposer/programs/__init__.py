"""The program catalogue: per program its option grammar, how it runs others, and its destructive forms."""
