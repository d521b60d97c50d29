"""Everything that speaks S3: the client factory and the one call path."""
