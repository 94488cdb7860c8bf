# Helpers shared by the benchmark scripts (sourced, not run): the clock, medians, the
# box's load, and the workflow of N trivial tasks on persistent `sim-agent` pools.

# Seconds since the epoch, with nanoseconds (for wall times with `bc`).
now() { date +%s.%N; }

# The median of the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# The 1, 5 and 15 minute load averages.
load() { cut -d' ' -f1-3 /proc/loadavg; }

# The workflow of $2 trivial tasks named $1: 3 persistent pools (concurrency 16,
# per_worker 8, 48 tasks in flight) of `$3 sim-agent --persistent` (a build named by
# path, so that each build runs its own worker), each task a small payload, every
# tenth depending on the one before it.
persistent_workflow() { # name tasks pitboss
  awk -v name="$1" -v n="$2" -v exe="$3" 'BEGIN {
    printf "[run]\nname = \"%s\"\nmax_parallel = 48\n\n", name
    print "[defaults]\ntimeout = \"1m\"\n"
    for (p = 1; p <= 3; p++) {
      printf "[[pool]]\nname = \"p%d\"\nmode = \"persistent\"\nconcurrency = 16\nper_worker = 8\n", p
      printf "command = [\"%s\", \"sim-agent\", \"--persistent\"]\n\n", exe
    }
    for (i = 1; i <= n; i++) {
      printf "[[task]]\nid = \"t%06d\"\npayload = { n = %d }\n", i, i
      if (i % 10 == 0) printf "depends_on = [\"t%06d\"]\n", i - 1
    }
  }'
}
