# Runs a command as users run it (a CLI through its own shebang) and reports the peak RSS and CPU
# time of the process it started, as JSON on stderr's last line; passes its exit code through.
import json, resource, subprocess, sys

code = subprocess.run(sys.argv[1:]).returncode
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.write("\n" + json.dumps({"maxRssKb": usage.ru_maxrss, "cpuSeconds": usage.ru_utime + usage.ru_stime}) + "\n")
sys.exit(code)
