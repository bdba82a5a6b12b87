"""A Snowflake emulator for target-snowflake in tests: fakesnow plus `emulation`."""
