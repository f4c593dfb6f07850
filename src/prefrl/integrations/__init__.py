"""prefrl's preference models used from outside: a reward scorer shared by `prefrl serve` (serve.py)
and TRL's `reward_funcs` adapter (trl.py)."""
