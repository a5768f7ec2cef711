#!/usr/bin/env bash
# The demo: Ferry's main job end to end on the local stack.
#   builds once (the dev profile, which the test command builds too); makes the sample
#   disk; starts the local cloud (moto with infra/template.yaml deployed, the Lambda
#   functions of this build behind cargo-lambda's Lambda APIs) and two sshd hosts (web1, and web1-origin holding the
#   same disk); captures web1 over SSH into the S3 store, starting its AMI build;
#   applies "a day of changes" to its disk; captures again (incremental); restores the
#   new point to a file and checks it byte for byte; writes only the changed ranges back
#   onto web1-origin (the delta restore `ferry failback` is made of); verifies every chunk in the store; migrates web1 to EC2
#   with the migrate state machine; protects web1 as a one-tier DR group and drills its
#   failover (launched in the drill subnet, verified, removed, RTO and cost measured);
#   prints a summary and where to look with the aws CLI.
# DEMO_IMAGE_MB / DEMO_DATA_MB choose the disk size (default 256 / 150).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$FERRY_ROOT"
bash scripts/setup.sh
# One build: the appliance, the local stack and the Lambda functions, in the profile the
# test command builds too (so that either command reuses the other's build). The stack
# serves the functions from this build; nothing compiles once it is up.
cargo build --workspace --bins
BIN="$CARGO_TARGET_DIR/debug"
export PATH="$BIN:$PATH"

IMAGE_MB=${DEMO_IMAGE_MB:-256}
DATA_MB=${DEMO_DATA_MB:-150}
W="${TMPDIR:-/tmp}/ferry-sample-$IMAGE_MB"
echo "== the sample disk: a ${IMAGE_MB} MiB ext4 image of generated files, and its copy after a day of changes"
ferry-sample-disk --dir "$W" --image-mb "$IMAGE_MB" --data-mb "$DATA_MB" >/dev/null

D=$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")
ferry-stack --dir "$D" --host "web1=$W/disk.img" --host "web1-origin=$W/disk.img" 2>"$D/stack.log" &
STACK=$!
trap 'kill $STACK 2>/dev/null; wait $STACK 2>/dev/null || true' EXIT
for _ in $(seq 300); do [ -f "$D/ready" ] && break; kill -0 $STACK 2>/dev/null || { cat "$D/stack.log"; exit 1; }; sleep 0.2; done
[ -f "$D/ready" ] || { echo "the local stack did not start"; cat "$D/stack.log"; exit 1; }
source "$D/stack.env"
export FERRY_CONFIG="$D/ferry.toml"
echo "== local stack up: moto at $AWS_ENDPOINT_URL, config $FERRY_CONFIG"

echo "== ferry store init"
ferry store init
echo "== ferry capture web1 --image (full, over SSH; its AMI build starts in AWS)"
ferry capture web1 --image --json > "$D/full.json"
echo "== a day of changes on web1's disk"
cp "$W/disk-changed.img" "$FERRY_DEMO_DISK_WEB1"
echo "== ferry capture web1 --image (incremental)"
ferry capture web1 --image --json > "$D/inc.json"
echo "== ferry points web1"
ferry points web1
echo "== ferry restore web1 --to restored.img"
ferry restore web1 --to "$D/restored.img" --json > "$D/restore.json"
FULL_POINT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["point"])' "$D/full.json")
echo "== ferry restore web1 --to-host web1-origin --base $FULL_POINT (write back only what changed: what a failback pass does)"
ferry restore web1 --to-host web1-origin --base "$FULL_POINT" --json > "$D/failback.json"
echo "== ferry verify --read-data"
ferry verify --read-data --json > "$D/verify.json"
echo "== a target network in the (local) AWS account"
VPC=$(aws ec2 create-vpc --cidr-block 10.60.0.0/16 --query Vpc.VpcId --output text)
SUBNET=$(aws ec2 create-subnet --vpc-id "$VPC" --cidr-block 10.60.1.0/24 --query Subnet.SubnetId --output text)
echo "   vpc $VPC, subnet $SUBNET"
echo "== ferry migrate web1 --subnet $SUBNET --instance-type m5.large --private-ip 10.60.1.10"
ferry migrate web1 --subnet "$SUBNET" --instance-type m5.large --private-ip 10.60.1.10
echo "== disaster recovery: web1 as a protection group (ferry protect), then a drill"
DRILL_SUBNET=$(aws ec2 create-subnet --vpc-id "$VPC" --cidr-block 10.60.2.0/24 --query Subnet.SubnetId --output text)
sed -i "s|^\[aws\]\$|[aws]\nnotify_topic = \"$FERRY_DEMO_NOTIFY_TOPIC\"|" "$FERRY_CONFIG"
cat >> "$FERRY_CONFIG" <<TOML

[[group]]
name = "shop"
rpo = "15m"
rto = "30m"
subnet = "$SUBNET"
drill_subnet = "$DRILL_SUBNET"
public_endpoint = "tcp://$FERRY_DEMO_ADDR_WEB1"
poll = "2s"

[[group.tier]]
name = "web"
hosts = ["web1"]
interval = "15m"
exclude = ["Mon-Fri 09:00-17:00"]
TOML
ferry protect shop
echo "== ferry drill shop (the failover state machine in drill mode: no traffic switch, all removed)"
ferry drill shop --json > "$D/drill.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("  " + d["run"]["summary"])' "$D/drill.json"
echo "== ferry dr status shop"
ferry dr status shop
echo "== ferry runs"
ferry runs
ferry runs web1 --json > "$D/runs.json"
echo "== the records, as the aws CLI sees them"
aws dynamodb query --table-name ferry --key-condition-expression 'pk = :pk' \
  --expression-attribute-values '{":pk":{"S":"HOST#web1"}}' \
  --query 'Items[].[sk.S, state.S, snapshot_id.S, image_id.S, instance_id.S]' --output table
MIGRATE_ARN=$(python3 -c 'import json,sys; print(next(r["execution_arn"] for r in json.load(open(sys.argv[1])) if r["name"].startswith("migrate-")))' "$D/runs.json")

python3 - "$D" "$W" <<'PY'
import json, sys, hashlib
d, w = sys.argv[1], sys.argv[2]
j = lambda n: json.load(open(f"{d}/{n}.json"))
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
full, inc, rest, fb, ver, drill = j("full"), j("inc"), j("restore"), j("failback"), j("verify"), j("drill")
mib = lambda b: f"{b / 2**20:8.1f} MiB"
print()
print(f"{'step':<34}{'read':>13}{'new':>13}{'uploaded':>13}{'time':>9}")
for name, r in (("capture web1 (full)", full), ("capture web1 (incremental)", inc)):
    print(f"{name:<34}{mib(r['bytes_read']):>13}{mib(r['bytes_new']):>13}{mib(r['bytes_uploaded']):>13}{r['duration_s']:>8.2f}s")
ok_file = sha(f"{d}/restored.img") == sha(f"{w}/disk-changed.img")
ok_host = sha(open(f"{d}/stack.env").read().split("FERRY_DEMO_DISK_WEB1_ORIGIN=")[1].split()[0]) == sha(f"{w}/disk-changed.img")
print(f"{'restore to file':<34}{mib(rest['image_size']):>13}{'':>13}{'':>13}{rest['duration_s']:>8.2f}s  sha256 matches: {ok_file}")
print(f"{'delta restore onto web1-origin':<34}{'':>13}{mib(fb['bytes_written']):>13}{'':>13}{fb['duration_s']:>8.2f}s  "
      f"{fb['ranges_written']} ranges; disk matches: {ok_host}")
print(f"{'verify --read-data':<34}{mib(ver['bytes_read']):>13}{'':>39}  ok: {ver['ok']}")
runs = json.load(open(f"{d}/runs.json"))
for r in reversed(runs):
    took = f"{r['duration_s']:.2f}s" if r.get("duration_s") is not None else "-"
    print(f"{r['name'][:33]:<34}{'':>39}{took:>9}  {r['status']}")
migrated = any(":execution:ferry-migrate:" in r["execution_arn"] and r["status"] == "SUCCEEDED" for r in runs)
run = drill.get("run") or {}
print(f"{drill['name'][:33]:<34}{'':>39}{drill['duration_s']:>8.2f}s  {drill['status']}; RTO {run.get('rto_s', 0):.1f} s, "
      f"cost ${run.get('cost_usd', 0):.4f}, removed")
drilled = drill["status"] == "SUCCEEDED" and run.get("status") == "drilled"
sys.exit(0 if ok_file and ok_host and ver["ok"] and migrated and drilled else 1)
PY
echo
DRILL_ARN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["execution_arn"])' "$D/drill.json")
echo "look at the migration and the drill as the console shows them (while the stack is up):"
echo "  source $D/stack.env"
echo "  aws stepfunctions get-execution-history --execution-arn $MIGRATE_ARN"
echo "  aws stepfunctions describe-execution --execution-arn $MIGRATE_ARN"
echo "  aws stepfunctions get-execution-history --execution-arn $DRILL_ARN"
if [ -n "${DEMO_KEEP_STACK:-}" ]; then
  echo "DEMO_KEEP_STACK is set: the stack stays up; stop it with: kill $STACK"
  trap - EXIT
  exit 0
fi
echo "demo finished; the stack stops now (files kept in $D)"
