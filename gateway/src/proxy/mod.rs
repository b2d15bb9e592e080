//! The reverse proxy: listeners, routing, forwarding, deny responses.
