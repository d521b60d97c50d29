"""Real third-party S3 stores started as throwaway processes for tests."""
