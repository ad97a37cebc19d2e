"""`make mutate`'s summary: mutants killed and survived per module, read from `mutmut results`,
and the survivors by name (`mutmut show NAME` prints the change). Given a count N as well, only
each module's sample of N (tests/mutation_sample.py) is counted: an estimate of its score."""
import collections
import subprocess
import sys

from tests.mutation_sample import sample

KILLED = {"killed", "timeout", "segfault"}


def main(mutmut: str, sample_size: int = 0) -> int:
    lines = subprocess.run([mutmut, "results", "--all", "true"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    counts = collections.defaultdict(collections.Counter)
    survivors, samples = [], {}
    for line in lines:
        name, _, status = line.strip().rpartition(": ")
        if "__mutmut_" not in name:
            continue
        # chalicelib.access.jwt.x_decode__mutmut_7 -> chalicelib.access.jwt
        module = name.rsplit(".", 1)[0]
        if sample_size:
            if module not in samples:
                samples[module] = set(sample(module, sample_size))
            if name not in samples[module]:
                continue
        counts[module]["killed" if status in KILLED else status] += 1
        if status not in KILLED | {"not checked"}:
            survivors.append(f"{name}: {status}")
    print(f"{'module':<32} {'killed':>7} {'survived':>9} {'other':>6} {'score':>7}")
    total = collections.Counter()
    for module in sorted(counts):
        row = counts[module]
        total.update(row)
        print(_row(module, row))
    print(_row("all", total))
    print("\nsurvivors (mutmut show NAME):", *survivors, sep="\n  ")
    return 0


def _row(module: str, row: collections.Counter) -> str:
    other = sum(v for k, v in row.items() if k not in ("killed", "survived"))
    decided = row["killed"] + row["survived"]
    score = f"{100 * row['killed'] / decided:.1f}%" if decided else "-"
    return f"{module:<32} {row['killed']:>7} {row['survived']:>9} {other:>6} {score:>7}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], *map(int, sys.argv[2:])))
