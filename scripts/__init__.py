"""Project scripts: the demo, the test database, the Hub plugin definition."""
