#!/usr/bin/env bash
# Runs the commands of the cluster job files on this machine and checks that the
# merged results equal an unsharded sweep byte for byte.
#
#   experiments/jobs/check.sh [--bin PATH] [--plan experiments/fec-vs-loss.toml]
#                             [--shards 4]
#
# 1. slurm-sweep.sbatch: `bash -n`, then the script itself once per array task with
#    the variables Slurm sets (SLURM_ARRAY_TASK_ID, _COUNT, _MIN, _STEP,
#    SLURM_CPUS_PER_TASK) for SHARDS tasks, one task a second time (a requeued task
#    resumes and must leave its shard as it was), then the script's --merge mode.
# 2. k8s-sweep.yaml: parsed with PyYAML (installed into a throwaway venv when the
#    system python lacks it), its fields checked (Indexed Job, SHARDS equal to
#    completions, the plan ConfigMap and the shared claim mounted, the merge Job
#    suspended on the same claim), then the shell command of the shard container run
#    once per completion index with the container's environment, its mount paths
#    mapped to local directories, and the merge container's command after them.
# Both merged results.csv are compared with `rgtp sweep PLAN` run unsharded, and the
# merged runs.jsonl of the two with each other. Exits non-zero on any difference.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=""
plan=experiments/fec-vs-loss.toml
shards=4
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --plan) plan=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    *) echo "usage: $0 [--bin PATH] [--plan PLAN] [--shards N]" >&2; exit 2 ;;
  esac
done
if [ -z "$bin" ]; then
  cargo build --release -q -p rgtp-cli
  bin="${CARGO_TARGET_DIR:-target}/release/rgtp"
fi
bin=$(realpath "$bin")
plan=$(realpath "$plan")
jobs=experiments/jobs
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The job files call `rgtp` from PATH.
mkdir "$work/bin"
ln -s "$bin" "$work/bin/rgtp"
export PATH="$work/bin:$PATH"

echo "== unsharded: rgtp sweep $plan"
rgtp sweep "$plan" --out "$work/whole" --quiet

echo "== slurm: bash -n, $shards array tasks, then --merge"
bash -n "$jobs/slurm-sweep.sbatch"
grep -q '^#SBATCH --requeue' "$jobs/slurm-sweep.sbatch"
task() {
  env SLURM_ARRAY_TASK_ID="$1" SLURM_ARRAY_TASK_COUNT="$shards" SLURM_ARRAY_TASK_MIN=0 \
    SLURM_ARRAY_TASK_STEP=1 SLURM_CPUS_PER_TASK=2 \
    bash "$jobs/slurm-sweep.sbatch" "$plan" "$work/slurm"
}
for i in $(seq 0 $((shards - 1))); do task "$i"; done
# Run again, as a requeued task does: nothing of the shard may change.
cp "$work/slurm/shard-0/results.csv" "$work/shard-0.csv"
task 0
cmp "$work/slurm/shard-0/results.csv" "$work/shard-0.csv"
# An array that does not start at 0 is refused.
if env SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=1 \
  bash "$jobs/slurm-sweep.sbatch" "$plan" "$work/bad" 2>/dev/null; then
  echo "FAIL: an array starting at 1 was accepted" >&2; exit 1
fi
# A merge with a shard missing fails.
mkdir "$work/partial"
cp -r "$work/slurm/shard-0" "$work/partial/"
if bash "$jobs/slurm-sweep.sbatch" --merge "$work/partial" 2>/dev/null; then
  echo "FAIL: a merge with shards missing succeeded" >&2; exit 1
fi
bash "$jobs/slurm-sweep.sbatch" --merge "$work/slurm"
cmp "$work/slurm/merged/results.csv" "$work/whole/results.csv"
echo "slurm: merged results.csv equals the unsharded run"

echo "== kubernetes: parse k8s-sweep.yaml, run its commands"
py=python3
if ! python3 -c 'import yaml' 2>/dev/null; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q pyyaml
  py="$work/venv/bin/python3"
fi
# Prints the completions, then the shard command and the merge command, each as a
# NUL-terminated list of NAME=VALUE (the environment, mount paths mapped) and the
# command string last.
"$py" - "$jobs/k8s-sweep.yaml" "$work/k8s" "$plan" > "$work/k8s.cmds" <<'EOF'
import os, shutil, sys
import yaml

path, local, plan = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
def need(cond, what):
    if not cond:
        sys.exit(f"{path}: {what}")

pvc = by.get(("PersistentVolumeClaim", "rgtp-sweep-results"))
need(pvc, "no PersistentVolumeClaim rgtp-sweep-results")
need("ReadWriteMany" in pvc["spec"]["accessModes"], "the claim must be ReadWriteMany")
job = by.get(("Job", "rgtp-sweep"))
merge = by.get(("Job", "rgtp-sweep-merge"))
need(job and merge, "Jobs rgtp-sweep and rgtp-sweep-merge expected")
spec = job["spec"]
need(spec.get("completionMode") == "Indexed", "rgtp-sweep must be completionMode: Indexed")
n = spec["completions"]
need(isinstance(n, int) and n > 0, "completions must be a positive integer")
need(merge["spec"].get("suspend") is True, "the merge Job must start suspended")

def container(job):
    pod = job["spec"]["template"]["spec"]
    need(pod["restartPolicy"] in ("OnFailure", "Never"), "restartPolicy")
    (c,) = pod["containers"]
    need(c["command"][:2] == ["/bin/sh", "-c"] and len(c["command"]) == 3,
         "command must be /bin/sh -c SCRIPT")
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {}
    for m in c["volumeMounts"]:
        v = vols[m["name"]]
        if "configMap" in v:
            need(v["configMap"]["name"] == "rgtp-sweep-plan", "plan ConfigMap name")
            d = os.path.join(local, "configmap")
            os.makedirs(d, exist_ok=True)
            shutil.copy(plan, os.path.join(d, "plan.toml"))
        else:
            need(v["persistentVolumeClaim"]["claimName"] == "rgtp-sweep-results",
                 "the results claim")
            d = os.path.join(local, "volume")
            os.makedirs(d, exist_ok=True)
        mounts[m["mountPath"]] = d
    need(any(d.endswith("volume") for d in mounts.values()), "the shared volume is not mounted")
    env = {}
    for e in c["env"]:
        if "value" in e:
            v = e["value"]
            for mp, d in mounts.items():
                if v == mp or v.startswith(mp + "/"):
                    v = d + v[len(mp):]
            env[e["name"]] = v
        else:
            need(e["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu", e["name"])
            env[e["name"]] = str(int(c["resources"]["limits"]["cpu"]))
    return env, c["command"][2]

env, shard_cmd = container(job)
need(env.get("SHARDS") == str(n), f"SHARDS must equal completions ({n})")
need(os.path.isfile(env["PLAN"]), "PLAN is not in the plan ConfigMap's mount")
need("$JOB_COMPLETION_INDEX" in shard_cmd and "--resume" in shard_cmd, "shard command")
menv, merge_cmd = container(merge)
need(menv["OUT"] == env["OUT"], "the merge reads another OUT than the shards write")
out = sys.stdout
out.write(f"{n}\0")
for e, cmd in ((env, shard_cmd), (menv, merge_cmd)):
    out.write(str(len(e)) + "\0")
    for k, v in e.items():
        out.write(f"{k}={v}\0")
    out.write(cmd + "\0")
EOF
mapfile -d '' -t f < "$work/k8s.cmds"
completions=${f[0]}
k=1
shard_env=("${f[@]:$((k + 1)):${f[k]}}"); k=$((k + 1 + f[k])); shard_cmd=${f[k]}; k=$((k + 1))
merge_env=("${f[@]:$((k + 1)):${f[k]}}"); k=$((k + 1 + f[k])); merge_cmd=${f[k]}
echo "k8s: $completions indexed pods, then the merge Job"
for i in $(seq 0 $((completions - 1))); do
  env "${shard_env[@]}" JOB_COMPLETION_INDEX="$i" /bin/sh -c "$shard_cmd"
done
# A restarted pod resumes: its shard is left as it was.
cp "$work/k8s/volume/sweep/shard-1/results.csv" "$work/shard-1.csv"
env "${shard_env[@]}" JOB_COMPLETION_INDEX=1 /bin/sh -c "$shard_cmd"
cmp "$work/k8s/volume/sweep/shard-1/results.csv" "$work/shard-1.csv"
env "${merge_env[@]}" /bin/sh -c "$merge_cmd"
cmp "$work/k8s/volume/sweep/merged/results.csv" "$work/whole/results.csv"
cmp "$work/k8s/volume/sweep/merged/runs.jsonl" "$work/slurm/merged/runs.jsonl"
echo "kubernetes: merged results.csv equals the unsharded run"
echo "ok"
