"""Singer tap for Oktopost BI exports."""
