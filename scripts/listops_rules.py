#!/usr/bin/python3
"""ListOps accuracy that the outermost operator alone explains.

A ListOps answer is a digit 0-9; the outermost operator (MAX, MIN, MED, SM) already narrows it:
MAX's answers are mostly 9, MIN's mostly 0. This script scores every rule "operator -> digit"
on the official-format TSV splits of a data directory and, given a run's validation and test
accuracies, lists the rules that reproduce both exactly - a model that learned only such a rule
scores exactly its numbers.

    /usr/bin/python3 scripts/listops_rules.py ~/.cache/lra-bench/listops-1000 [--val=0.307 --test=0.292]
"""
import argparse, collections, itertools, os

p = argparse.ArgumentParser()
p.add_argument("dir"); p.add_argument("--val", type=float); p.add_argument("--test", type=float)
a = p.parse_args()

def split(name):  # (outermost operator, answer) per example of basic_<name>.tsv
    with open(os.path.join(a.dir, f"basic_{name}.tsv")) as f:
        next(f)  # the header: Source<TAB>Target
        for line in f:
            src, target = line.rstrip("\n").split("\t")
            yield next(t for t in src.split() if t.startswith("[")), int(target)

val, test = list(split("val")), list(split("test"))
ops = sorted({o for o, _ in val + test})
count = lambda rule, d: sum(rule[o] == y for o, y in d)
best = {o: collections.Counter(y for x, y in val if x == o).most_common(1)[0][0] for o in ops}
print("best rule on val:", best, "val %.2f%%, test %.2f%%" % (100 * count(best, val) / len(val), 100 * count(best, test) / len(test)))
if a.val is not None and a.test is not None:
    for digits in itertools.product(range(10), repeat=len(ops)):
        rule = dict(zip(ops, digits))
        if count(rule, val) == round(a.val * len(val)) and count(rule, test) == round(a.test * len(test)):
            print("reproduces val %.2f%% and test %.2f%%:" % (100 * a.val, 100 * a.test), rule)
