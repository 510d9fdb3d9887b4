"""State: what caw keeps between processes. The resume-handle codec, the session store (trajectories on
disk, written atomically) and the limit ledger (cooldowns shared by every caw process of a user).

The only user of platformdirs. May import: ``caw.errors``, ``caw.models``, ``caw.events``, ``caw.text``,
``caw.limits`` and the standard library.
"""
