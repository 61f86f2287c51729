"""The local spend dashboard: its handlers, its static page, and the browser sessions that
reach it through a one-time login link (SPEC section 3)."""
