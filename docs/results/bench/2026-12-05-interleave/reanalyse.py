"""full3/bench.json through the report code of the final commit: each round's same-state flag recomputed with the
rule since the second review (all four probes of a pair within 15%), the summaries and targets again. Writes
full3/bench.reanalysed.md (the run's own bench.md is as the bench wrote it at 08:14)."""
import json
import sys
from pathlib import Path

from unifork_rt.benchmarks import interleave, report

d = Path(sys.argv[1])
results = json.loads((d / "bench.json").read_text())
for pair in results["interleave"]["pairs"]:
    for r in pair["rounds"]:
        ours = [r["bandwidth_before"], r["bandwidth_after"]]
        r["same_state"] = {n: max(ours + bw) <= interleave.SAME_STATE * min(ours + bw)
                           for n, bw in r["peer_bandwidth"].items()}
    pair.update(interleave.summary(pair["rounds"]))
report.analyse(results)
md = report.markdown(results)
(d / "bench.reanalysed.md").write_text("<!-- full3/bench.json re-analysed by reanalyse.py with the final commit's report "
                                       "code (same-state rule of the second review); the figures are the run's -->\n"
                                       + md)
for t in results["targets"]:
    if t["target"].endswith("_interleaved"):
        print(t["target"], t["status"], round(t.get("value", float("nan")), 2), t["what"][t["what"].find("("):][:80])
