import os
import time

__all__ = []
VALUE = 2
# While the marker file says so, the import spins (the parent interrupts it).
_marker = os.environ.get("INTERPOOL_SLOW_IMPORT")
if _marker and not os.path.exists(_marker + ".done"):
    with open(_marker + ".tmp", "w") as f:
        f.write("importing")
    os.replace(_marker + ".tmp", _marker)
    while True:
        time.sleep(0.001)
