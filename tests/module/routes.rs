//! HOTKEY.ROUTE and HOTKEY.ROUTES against a master with two replicas; ACL and bad arguments of the new commands.
