"""Sample data for the example servers, and the script that builds it."""
