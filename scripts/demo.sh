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
#   bursts web1's tier into an Auto Scaling group behind a hybrid target group when its
#   load alarm fires, and scales it back in when the load falls (`ferry burst setup`,
#   the daemon publishing the load, the alarms starting the runs);
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
echo "== hybrid burst: web1's tier into AWS when its load alarm fires, and back"
WEB1_IP=${FERRY_DEMO_ADDR_WEB1%:*}
WEB_PORT=$(python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$WEB1_IP")
ferry-tcp-peer --address "$WEB1_IP" --listen "$WEB_PORT" >/dev/null 2>&1 &
WEB_SERVICE=$!
TG=$(aws elbv2 create-target-group --name shop-web --protocol HTTP --port "$WEB_PORT" --vpc-id "$VPC" \
  --target-type ip --query 'TargetGroups[0].TargetGroupArn' --output text)
aws elbv2 modify-target-group-attributes --target-group-arn "$TG" \
  --attributes Key=deregistration_delay.timeout_seconds,Value=2 >/dev/null
cat >> "$FERRY_CONFIG" <<TOML

[[burst]]
tier = "web"
hosts = ["web1"]
target_group = "$TG"
port = $WEB_PORT
subnets = ["$SUBNET"]
instance_type = "t3.small"
max = 2
load = "connections"
burst_above = 5
scale_in_below = 1
period = "10s"
sample_every = "2s"
burst_periods = 1
scale_in_periods = 1
poll = "1s"
TOML
echo "== ferry burst setup web (launch template from web1's newest AMI, Auto Scaling group, target tracking, alarms)"
ferry burst setup web
ferry daemon --tier web > "$D/daemon.log" 2>&1 &
DAEMON=$!
trap 'kill $DAEMON $WEB_SERVICE ${CLIENTS:-} 2>/dev/null; kill $STACK 2>/dev/null; wait $STACK 2>/dev/null || true' EXIT
# The tier's load: connections to web1's service, counted on web1 over SSH.
load_now() {
  aws cloudwatch get-metric-statistics --namespace Ferry/Burst --metric-name Load \
    --dimensions Name=Tier,Value=web --statistics Maximum --period 1 \
    --start-time "$(date -u -d '-6 seconds' +%FT%TZ)" --end-time "$(date -u -d '+2 seconds' +%FT%TZ)" \
    --query 'max_by(Datapoints, &Timestamp).Maximum' --output text
}
wait_load() { # $1: "above" or "below", $2: threshold
  for _ in $(seq 60); do
    v=$(load_now)
    if [ "$v" != "None" ] && python3 -c 'import sys; v,t=float(sys.argv[2]),float(sys.argv[3]); sys.exit(0 if (v>t if sys.argv[1]=="above" else v<t) else 1)' "$1" "$v" "$2"; then
      echo "   load published by the daemon: $v ($1 $2)"; return 0
    fi
    sleep 1
  done
  echo "the load never went $1 $2"; cat "$D/daemon.log"; exit 1
}
wait_run() { # $1: state machine name, $2: execution name prefix; prints the execution ARN
  local sm arn=""
  sm=$(aws stepfunctions list-state-machines --query "stateMachines[?name=='$1'].stateMachineArn | [0]" --output text)
  for _ in $(seq 120); do
    arn=$(aws stepfunctions list-executions --state-machine-arn "$sm" \
      --query "executions[?starts_with(name, '$2') && status!='RUNNING'].executionArn | [0]" --output text)
    [ "$arn" != "None" ] && [ -n "$arn" ] && { echo "$arn"; return 0; }
    sleep 1
  done
  echo "no finished $2 run" >&2; exit 1
}
ferry-tcp-peer --connect "$WEB1_IP:$WEB_PORT" --conns 8 >/dev/null 2>&1 &
CLIENTS=$!
echo "== 8 clients hold connections to web1: the load rises"
wait_load above 5
echo "== the burst alarm fires (set as CloudWatch would: the local stack evaluates no metric alarm)"
aws cloudwatch set-alarm-state --alarm-name ferry-burst-web-out --state-value ALARM --state-reason "Load above 5 for 1 period"
BURST_ARN=$(wait_run ferry-burst burst-web-)
aws stepfunctions describe-execution --execution-arn "$BURST_ARN" > "$D/burst.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("  " + d["status"] + ": " + json.loads(d.get("output") or "{}").get("summary", d.get("cause", "")))' "$D/burst.json"
ferry burst status web
kill $CLIENTS; CLIENTS=
echo "== the clients leave: the load falls, the scale-in alarm fires"
wait_load below 1
aws cloudwatch set-alarm-state --alarm-name ferry-burst-web-out --state-value OK --state-reason "Load below 5"
aws cloudwatch set-alarm-state --alarm-name ferry-burst-web-in --state-value ALARM --state-reason "Load below 1 for 1 period"
SCALE_IN_ARN=$(wait_run ferry-scale-in scale-in-web-)
aws stepfunctions describe-execution --execution-arn "$SCALE_IN_ARN" > "$D/scale-in.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("  " + d["status"] + ": " + json.loads(d.get("output") or "{}").get("summary", d.get("cause", "")))' "$D/scale-in.json"
ferry burst status web --json > "$D/burst-status.json"
ferry burst status web
kill $DAEMON; wait $DAEMON 2>/dev/null || true
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
burst, scale_in, bstat = j("burst"), j("scale-in"), j("burst-status")
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
tier = bstat["tiers"][0]
for r in reversed(tier["runs"]):
    took = f"{r['alarm_to_done_s']:.2f}s" if r.get("alarm_to_done_s") is not None else "-"
    print(f"{r['run_id'][:33]:<34}{'':>39}{took:>9}  {r['status']}: {r['summary']}")
burst_ok = burst["status"] == "SUCCEEDED" and scale_in["status"] == "SUCCEEDED" and tier["aws_desired"] == 0 \
    and tier["aws_targets"] == 0 and tier["onprem_targets"] == 1
sys.exit(0 if ok_file and ok_host and ver["ok"] and migrated and drilled and burst_ok else 1)
PY
echo
DRILL_ARN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["execution_arn"])' "$D/drill.json")
echo "look at the migration and the drill as the console shows them (while the stack is up):"
echo "  source $D/stack.env"
echo "  aws stepfunctions get-execution-history --execution-arn $MIGRATE_ARN"
echo "  aws stepfunctions describe-execution --execution-arn $MIGRATE_ARN"
echo "  aws stepfunctions get-execution-history --execution-arn $DRILL_ARN"
echo "  aws stepfunctions get-execution-history --execution-arn $BURST_ARN"
echo "  aws stepfunctions get-execution-history --execution-arn $SCALE_IN_ARN"
if [ -n "${DEMO_KEEP_STACK:-}" ]; then
  echo "DEMO_KEEP_STACK is set: the stack stays up; stop it with: kill $STACK"
  trap - EXIT
  exit 0
fi
echo "demo finished; the stack stops now (files kept in $D)"
