"""Values of a known shape that tests send across interpreters, and the functions
that measure, where the value arrives, how much of the shape survived (workers
import this module by name: everything is module level)."""


def doubling(levels):
    """[x, x] built `levels` times over x = [0]: 2**levels leaves, levels + 1 lists."""
    x = [0]
    for _ in range(levels):
        x = [x, x]
    return x


def shared_levels(x):
    """How many levels of a doubling hold one list twice (x[0] is x[1])."""
    levels = 0
    while isinstance(x, list) and len(x) == 2 and x[0] is x[1]:
        levels += 1
        x = x[0]
    return levels


def distinct_lists(x):
    """How many distinct list objects x holds, itself included."""
    seen = {}
    todo = [x]
    while todo:
        obj = todo.pop()
        if isinstance(obj, list) and id(obj) not in seen:
            seen[id(obj)] = obj
            todo.extend(obj)
    return len(seen)
