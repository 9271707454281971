"""Modal screens: help, filter, theme picker."""
