"""A fixed random sample of a module's mutants, for when a whole run does not fit in the time at
hand: `mutmut run $(python -m tests.mutation_sample chalicelib.registry.blobs 100)` runs those of the
module's 100 sampled mutants that have no verdict yet (mutmut runs again any mutant it is given by
name), drawn the same way every time (seeded by the module's name); `python -m
tests.mutation_report MUTMUT 100` then counts only the samples, estimating each module's score.
The mutants must have been generated: any `mutmut run` does that first (interrupt it after)."""
import json
import random
import sys
from pathlib import Path


def verdicts(module: str, root: Path = Path("mutants")) -> dict:
    """Each of the module's mutants, and mutmut's exit code for it (None: not run yet)."""
    return json.loads((root / (module.replace(".", "/") + ".py.meta")).read_text())["exit_code_by_key"]


def sample(module: str, count: int, root: Path = Path("mutants")) -> list:
    names = sorted(verdicts(module, root))
    return sorted(random.Random(module).sample(names, min(count, len(names))))


if __name__ == "__main__":
    module, count = sys.argv[1], int(sys.argv[2])
    undecided = verdicts(module)
    print("\n".join(name for name in sample(module, count) if undecided[name] is None))
