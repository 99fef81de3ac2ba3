"""HTTP side: routes, views and middleware."""
