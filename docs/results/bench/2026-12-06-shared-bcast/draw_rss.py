"""Peak RSS of a process that loads the int4 paper bundle and draws one guided --n 4 image set, the vision decoder
one image a run (as the runtime does on the CPU since session 40) or all 4 in one run: python draw_rss.py BUNDLE {1,all}"""
import resource, sys
from unifork_rt.runtime.ort_backend import OrtBackend
from unifork_rt.runtime.pipeline import UniForkRuntime
if sys.argv[2] == "all":
    OrtBackend.decode_batch = property(lambda self: None)
rt = UniForkRuntime(sys.argv[1])
rt.draw(["a red circle on a blue square"], n=4)
print(f"decoder batch {sys.argv[2]}: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
