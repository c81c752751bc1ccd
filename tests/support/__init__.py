"""What tests do rather than make: servers, URL walking, the throttle's clock and caches.

What tests make (rows, personas, keys, API callers, actors) is in tests/factories.py.
"""
