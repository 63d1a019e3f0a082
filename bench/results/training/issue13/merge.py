"""Merge issue 13's split eval runs (same options, same subsample, shared cache) into one results file and
write its report with the library's own summary, table and chart."""

import copy
import json
import sys

from promptembedder.evaluation.report import summarise, write_report

R = sys.argv[1]  # the folder holding the split runs' output folders (eval13/, split-*/)
load = lambda f: json.load(open(f"{R}/{f}/results.json"))  # noqa: E731
old = load("eval13")
merged = copy.deepcopy(old)
new = {**load("split-new-a")["models"][0], "label": "pe-new-data", "spec": f"{R}/pe-new-data", "tasks": {}}
for f in ("split-new-a", "split-new-b", "split-new-c"):
    for m in load(f)["models"]:
        new["tasks"].update(m["tasks"])
merged["models"] = [old["models"][0], new]
for f in ("split-baseline", "split-instruct"):
    merged["models"] += load(f)["models"]
for m in merged["models"]:
    assert len(m["tasks"]) == 22, (m["label"], len(m["tasks"]))
merged["summary"] = summarise(merged)
merged["merged_from"] = ["eval13", "split-new-a", "split-new-b", "split-new-c", "split-baseline", "split-instruct"]
json.dump(merged, open(f"{R}/eval13-merged/results.json", "w"), indent=2)
write_report(merged, f"{R}/eval13-merged/results.json")
