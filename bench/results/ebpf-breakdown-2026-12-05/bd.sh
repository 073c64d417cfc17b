#!/bin/bash
# bd.sh MODE WORKLOAD: bpf run_time over a 3 s window of a running ebpf sgc_bench
MODE=$1; WL=$2; OPS=$3; EXTRA="$4"
cd /work/main
tools/sgc-cluster run xo --ranks 9 --accel ebpf --timeout-ms 30000 --deadline 60 -- build/bench/sgc_bench --workload $WL --name x --window 16 --serve-idle-ms 60000 --mode $MODE --ops $OPS --warmup 200 --sample 1 $EXTRA > /tmp/bd_$MODE_$WL.out 2>&1 &
P=$!
sleep 3
bpftool prog show -j > /tmp/bd_a.json
PA=$(grep -h "" /proc/stat | head -1)
sleep 3
bpftool prog show -j > /tmp/bd_b.json
wait $P
python3 - <<'PY'
import json
a={p['id']:p for p in json.load(open('/tmp/bd_a.json'))}
b={p['id']:p for p in json.load(open('/tmp/bd_b.json'))}
for i,p in b.items():
    if i in a and p.get('run_cnt',0)>a[i].get('run_cnt',0):
        n=p['run_cnt']-a[i]['run_cnt']; t=p['run_time_ns']-a[i]['run_time_ns']
        print(f"{p.get('name','?'):20s} runs {n:9d}  total {t/1e6:8.1f} ms  per run {t/n:7.0f} ns")
PY
grep RESULT /tmp/bd_$MODE_$WL.out | grep -o "tput_ops=[0-9.]*\|p50_us=[0-9.]*\|cpu_us_per_op=[0-9.]*\|ops=[0-9]*" | tr '\n' ' '; echo
