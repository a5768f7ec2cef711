"""moto server for Ferry's local stack, with two emulator gaps closed.

1. moto's RegisterImage keeps only the name and description: it drops the block device
mappings, root device, architecture, boot mode, ENA flag and tags, and accepts snapshot
ids that do not exist. Ferry's tests check that an AMI's root device points at the
snapshot build-image wrote, so this wrapper makes RegisterImage keep what it is given
and refuse unknown snapshots (InvalidSnapshot.NotFound), as EC2 does.

2. moto's Step Functions interpreter hands the `states:startExecution` integration's
parameters to boto3 as written in the definition (`StateMachineArn`, `Input`, `Name`),
where boto3 wants `stateMachineArn`, `input`, `name`, and returns boto3's camelCase
answers (`executionArn`, `output`) where the service's integration gives PascalCase
(`ExecutionArn`, `Output`): every nested execution fails with KeyError. The wrapper
renames both ways, as the real service does.

3. A snapshot started with the EBS direct APIs shows in EC2 as `completed` at once; in
EC2 it is `pending` until CompleteSnapshot. Ferry deletes unfinished snapshots of a
failed build, so the wrapper keeps the EC2 state in step with the EBS one. StartSnapshot
also answers a block size of 512 bytes where EBS has 524288; Ferry uses EBS's constant,
but a client that believes the answer (coldsnap, the benchmark's peer) would write 1024
times as many blocks, so the wrapper answers EBS's size.

4. moto's StartSnapshot ignores ClientToken, and its PutSnapshotBlock writes into a
snapshot that EC2 has deleted. EBS answers a repeated token with the snapshot the token
first started (whatever became of it since), and refuses blocks for a snapshot that is
gone (ResourceNotFoundException). A builder that reuses a token after a failed build
therefore gets a dead snapshot back; the wrapper behaves the same so tests can see it.

5. Alarms and EventBridge. moto never evaluates alarms, has no PutCompositeAlarm, and
SetAlarmState changes a state without the "CloudWatch Alarm State Change" event that
CloudWatch sends to EventBridge; its rules cannot deliver to Lambda or Step Functions
targets, and schedule rules never fire. The wrapper implements PutCompositeAlarm
(stored as moto stores alarms, with its AlarmRule), evaluates a composite alarm's rule
whenever one of its children changes state (ALARM/OK/INSUFFICIENT_DATA of named alarms
with AND, OR, NOT and parentheses, as CloudWatch does), emits the documented event for
every state change of any alarm into the default event bus, where moto's own pattern
matching picks the rules, and delivers matching rules' Lambda targets (an Invoke through
the router, as EventBridge invokes asynchronously: retried on a function error) and Step
Functions targets (StartExecution). Rules with `rate(N minutes)` fire every N minutes;
`FERRY_LOCAL_MINUTE_S` shortens a minute for the tests. Metric alarms are still not
evaluated: tests check that the metric was published and set the state with
SetAlarmState, which on AWS drives the same rule.

6. Terminated instances. EC2 deletes the network interface RunInstances created when
its instance terminates (DeleteOnTermination), which releases its private address;
moto keeps the interface `in-use` and the address taken for ever, so a second failover
into the same addresses fails. The wrapper gives primary interfaces of RunInstances
DeleteOnTermination, as EC2 does, and releases the instance's addresses on termination.
RunInstances also ignores `network-interface` tag specifications; the wrapper tags the
interfaces it creates, as EC2 does.

7. CloudWatch over Smithy RPC v2 CBOR. The AWS SDK for Rust speaks CBOR to CloudWatch
(`POST /service/GraniteServiceVersion20100801/operation/<Op>`, `smithy-protocol:
rpc-v2-cbor`), which CloudWatch accepts beside its JSON and query protocols; moto
answers only those two (404 to CBOR). The wrapper translates: it decodes the CBOR
request with botocore's CloudWatch model, hands moto the same request in the JSON
protocol, and encodes moto's answer (or error) back to CBOR with the operation's output
shape, as CloudWatch would send it.

8. Auto Scaling and launch templates. When Auto Scaling terminates or detaches an
instance of a group (a lower desired capacity, TerminateInstanceInAutoScalingGroup), it
deregisters the instance from the group's target groups; moto leaves it registered and
healthy for ever, so a scale-in could never be confirmed. SetDesiredCapacity outside
[MinSize, MaxSize] is refused with a ValidationError; moto accepts any value and
launches past MaxSize. PutScalingPolicy answers `PolicyARN`; moto answers `PolicyArn`,
which clients (the AWS SDKs) do not read. CreateLaunchTemplateVersion with
SourceVersion starts from that version's data and overrides what the request gives;
moto ignores SourceVersion, so the new version would lose every field not repeated.
(Ferry writes every version in full and does not rely on it; the local stack keeps the
documented behaviour for anyone who looks at templates with the aws CLI.)
CreateLaunchTemplate's own TagSpecifications tag the template; moto also copies them
into version 1's launch data (as a `launch-template` tag specification, which launch
data cannot even hold), so version 1 would differ from a later version written with
the same data. The wrapper keeps them on the template only.
Auto Scaling sends "EC2 Instance Launch Successful" and "EC2 Instance Terminate
Successful" events (source `aws.autoscaling`) to EventBridge for every instance a group
launches or terminates; moto sends none. The wrapper emits them, with the documented
detail fields, into the default bus, where rules match and deliver them as in 5.

Then it runs moto's own server. It is used by the local stack only; product code never
depends on it.

Usage: python3 ferry_moto.py [moto_server arguments]
"""

import copy
import datetime
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid

from moto.autoscaling.exceptions import ValidationError as AsgValidationError
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
from moto.autoscaling.responses import AutoScalingResponse
from moto.cloudwatch.models import Alarm, cloudwatch_backends
from moto.ec2.responses.launch_templates import LaunchTemplates
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.events.models import Rule, events_backends
from moto.stepfunctions.responses import get_backend as stepfunctions_backend
from moto.core.exceptions import JsonRESTError
from moto.ebs.models import EBSBackend
from moto.ebs.responses import EBSResponse
from moto.ec2.models.amis import Ami
from moto.ec2.responses.amis import AmisResponse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_sfn as sfn_task,
)

_moto_mappings = Ami.block_device_mappings


def _truthy(v):
    return v is True or str(v).lower() == "true"


def _register_image(self):
    name = self._get_param("Name")
    description = self._get_param("Description", "")
    self.error_on_dryrun()
    mappings = []
    for m in self._get_param("BlockDeviceMappings", []) or []:
        ebs = m.get("Ebs") or {}
        sid = ebs.get("SnapshotId")
        size = ebs.get("VolumeSize")
        if sid:
            # Raises InvalidSnapshot.NotFound for an unknown id, as EC2 does.
            snap = self.ec2_backend.get_snapshot(sid)
            size = size or snap.volume.size
        mapping = {"DeviceName": m.get("DeviceName")}
        if ebs:
            mapping["Ebs"] = {
                "SnapshotId": sid,
                "VolumeSize": int(size) if size else None,
                "DeleteOnTermination": _truthy(ebs.get("DeleteOnTermination", True)),
                "VolumeType": ebs.get("VolumeType") or "gp3",
            }
        mappings.append(mapping)
    image = self.ec2_backend.register_image(name, description)
    image.root_device_name = self._get_param("RootDeviceName") or image.root_device_name
    image.root_device_type = "ebs" if mappings else image.root_device_type
    image.architecture = self._get_param("Architecture") or "x86_64"
    image.boot_mode = self._get_param("BootMode")
    image.virtualization_type = self._get_param("VirtualizationType") or "paravirtual"
    ena = self._get_param("EnaSupport")
    image.ena_support = None if ena is None else _truthy(ena)
    image.ferry_mappings = mappings
    for spec in self._get_param("TagSpecifications", []) or []:
        if spec.get("ResourceType") == "image":
            image.add_tags({t["Key"]: t["Value"] for t in spec.get("Tags", [])})
    return ActionResult({"ImageId": image.id})


def _block_device_mappings(self):
    return getattr(self, "ferry_mappings", None) or _moto_mappings.fget(self)


_moto_sfn_normalise = sfn_task.StateTaskServiceSfn._normalise_parameters


def _sfn_normalise(self, parameters, boto_service_name=None, service_action_name=None):
    _moto_sfn_normalise(self, parameters, boto_service_name, service_action_name)
    if service_action_name is None and self._get_boto_service_action() == "start_execution":
        for key in ("StateMachineArn", "Input", "Name", "TraceHeader"):
            if key in parameters:
                parameters[key[0].lower() + key[1:]] = parameters.pop(key)


def _pascal(d):
    if isinstance(d, dict):
        for key in [k for k in d if k[:1].islower()]:
            d[key[0].upper() + key[1:]] = d.pop(key)


_moto_sfn_eval = sfn_task.StateTaskServiceSfn._eval_service_task


def _sfn_eval(self, env, *args, **kwargs):
    _moto_sfn_eval(self, env, *args, **kwargs)
    _pascal(env.stack[-1])


def _sfn_normalise_response(self, response, boto_service_name=None, service_action_name=None):
    _pascal(response)


_moto_start_snapshot = EBSBackend.start_snapshot
_moto_complete_snapshot = EBSBackend.complete_snapshot


def _start_snapshot(self, *args, **kwargs):
    started = _moto_start_snapshot(self, *args, **kwargs)
    started.block_size = 512 * 1024
    self.ec2_backend.get_snapshot(started.snapshot_id).status = "pending"
    return started


def _complete_snapshot(self, snapshot_id):
    status = _moto_complete_snapshot(self, snapshot_id)
    self.ec2_backend.get_snapshot(snapshot_id).status = "completed"
    return status


class _ResourceNotFound(JsonRESTError):
    code = 404

    def __init__(self, message):
        super().__init__("ResourceNotFoundException", message)


_moto_start_snapshot_response = EBSResponse.start_snapshot
_moto_put_block = EBSBackend.put_snapshot_block


def _start_snapshot_response(self):
    token = self._get_param("ClientToken")
    tokens = self.ebs_backend.__dict__.setdefault("ferry_tokens", {})
    sid = tokens.get(token) if token else None
    if sid is not None:
        snap = self.ebs_backend.snapshots[sid]
        return ActionResult(
            {
                "SnapshotId": snap.snapshot_id,
                "OwnerId": snap.account_id,
                "Status": snap.status,
                "StartTime": snap.start_time,
                "VolumeSize": snap.volume_size,
                "BlockSize": snap.block_size,
                "Tags": snap.tags,
                "Description": snap.description,
            }
        )
    result = _moto_start_snapshot_response(self)
    if token:
        tokens[token] = result.result["SnapshotId"]
    return result


def _put_block(self, snapshot_id, *args, **kwargs):
    if snapshot_id not in self.ec2_backend.snapshots:
        raise _ResourceNotFound(f"The snapshot '{snapshot_id}' does not exist.")
    return _moto_put_block(self, snapshot_id, *args, **kwargs)


# 5. Alarms, events and their delivery.


def _log(msg):
    print(f"ferry_moto: {msg}", file=sys.stderr, flush=True)


def _put_composite_alarm(self):
    name = self._get_param("AlarmName")
    backend = self.cloudwatch_backend
    alarm = backend.put_metric_alarm(
        name=name,
        namespace=None,
        metric_name=None,
        comparison_operator=None,
        evaluation_periods=None,
        period=None,
        threshold=None,
        statistic=None,
        description=self._get_param("AlarmDescription"),
        dimensions=[],
        alarm_actions=self._get_param("AlarmActions", []),
        ok_actions=self._get_param("OKActions", []),
        insufficient_data_actions=self._get_param("InsufficientDataActions", []),
        actions_enabled=self._get_bool_param("ActionsEnabled"),
        rule=self._get_param("AlarmRule"),
        tags=self._get_param("Tags", []),
    )
    _evaluate_composite(backend, alarm)
    return EmptyResult()


_TOKEN = re.compile(r'\s*(\(|\)|AND\b|OR\b|NOT\b|TRUE\b|FALSE\b|(ALARM|OK|INSUFFICIENT_DATA)\(\s*("([^"]*)"|[^)\s]+)\s*\))')


def _rule_value(rule, states):
    """Evaluates an AlarmRule with `states` (alarm name -> state value)."""
    tokens, pos = [], 0
    while pos < len(rule.rstrip()):
        m = _TOKEN.match(rule, pos)
        if not m:
            raise ValueError(f"cannot read alarm rule at {rule[pos:]!r}")
        tokens.append(m)
        pos = m.end()

    def expr(i):
        v, i = term(i)
        while i < len(tokens) and tokens[i].group(1) == "OR":
            w, i = term(i + 1)
            v = v or w
        return v, i

    def term(i):
        v, i = factor(i)
        while i < len(tokens) and tokens[i].group(1) == "AND":
            w, i = factor(i + 1)
            v = v and w
        return v, i

    def factor(i):
        t = tokens[i]
        if t.group(1) == "NOT":
            v, i = factor(i + 1)
            return (not v), i
        if t.group(1) == "(":
            v, i = expr(i + 1)
            return v, i + 1
        if t.group(1) in ("TRUE", "FALSE"):
            return t.group(1) == "TRUE", i + 1
        name = t.group(4) if t.group(4) is not None else t.group(3)
        return states.get(name) == t.group(2), i + 1

    value, _ = expr(0)
    return value


def _evaluate_composite(backend, alarm):
    states = {a.name: a.state_value for a in backend.alarms.values()}
    try:
        fired = _rule_value(alarm.rule, states)
    except (ValueError, IndexError) as e:
        _log(f"composite alarm {alarm.name}: {e}")
        return
    want = "ALARM" if fired else "OK"
    if alarm.state_value != want:
        alarm.update_state(
            f"Composite rule evaluated to {fired}", json.dumps({"rule": alarm.rule}), want
        )


def _iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


_moto_update_state = Alarm.update_state


def _update_state(self, reason, reason_data, state_value):
    old, old_reason = self.state_value, self.state_reason
    _moto_update_state(self, reason, reason_data, state_value)
    if old == state_value:
        return
    _, _, _, region, account = self.alarm_arn.split(":", 5)[:5]
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [self.alarm_arn],
        "detail": {
            "alarmName": self.name,
            "state": {"value": state_value, "reason": reason, "timestamp": _iso(self.state_updated_timestamp)},
            "previousState": {"value": old, "reason": old_reason},
            "configuration": {"description": self.description, "alarmRule": self.rule},
        },
    }
    _publish(account, region, event)
    backend = cloudwatch_backends[account][region]
    for other in list(backend.alarms.values()):
        if other.rule and self.name in other.rule and other is not self:
            _evaluate_composite(backend, other)


def _publish(account, region, event):
    bus = events_backends[account][region].event_buses.get("default")
    for rule in list(bus.rules.values()) if bus else []:
        if rule.state == "ENABLED" and rule.event_pattern and rule.event_pattern.matches_event(event):
            _deliver(rule, event)


def _invoke(arn, payload, attempts=3):
    port = os.environ.get("MOTO_PORT", "5000")
    url = f"http://127.0.0.1:{port}/2015-03-31/functions/{urllib.parse.quote(arn, safe='')}/invocations"
    for n in range(attempts):
        req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                failed = r.headers.get("X-Amz-Function-Error")
                body = r.read().decode(errors="replace")
            if not failed:
                _log(f"delivered to {arn}: {body[:300]}")
                return
            _log(f"function error from {arn} (attempt {n + 1}): {body[:300]}")
        except Exception as e:  # noqa: BLE001 - a delivery failure is logged and retried
            _log(f"cannot invoke {arn} (attempt {n + 1}): {e}")
        time.sleep(1 + n)


def _deliver(rule, event):
    for t in rule.targets:
        arn = t["Arn"]
        payload = json.loads(t["Input"]) if t.get("Input") else event
        if ":lambda:" in arn:
            # EventBridge invokes Lambda asynchronously.
            threading.Thread(target=_invoke, args=(arn, payload), daemon=True).start()
        elif ":states:" in arn:
            _, _, _, region, account = arn.split(":", 5)[:5]
            stepfunctions_backend(account, region).start_execution(
                arn, name=str(uuid.uuid4()), execution_input=json.dumps(payload)
            )
            _log(f"started an execution of {arn}")
        else:
            one = copy.copy(rule)
            one.targets = [t]
            # moto's own targets take the time as Unix seconds, and write it back as ISO.
            _moto_send_to_targets(one, dict(event, time=time.time()), transform_input=False)


_moto_send_to_targets = Rule.send_to_targets


def _send_to_targets(self, event, transform_input=True):
    if self.event_pattern.matches_event(event):
        _deliver(self, event)


_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")


def _scheduler():
    """Fires rules with a rate() schedule, as EventBridge does."""
    minute = float(os.environ.get("FERRY_LOCAL_MINUTE_S", "60"))
    unit = {"minute": minute, "hour": minute * 60, "day": minute * 1440}
    last = {}
    while True:
        time.sleep(0.25)
        now = time.time()
        for account, regions in list(events_backends.items()):
            for region, backend in list(regions.items()):
                bus = backend.event_buses.get("default")
                for rule in list(bus.rules.values()) if bus else []:
                    m = _RATE.fullmatch(rule.scheduled_expression or "")
                    if not m or rule.state != "ENABLED":
                        continue
                    period = int(m.group(1)) * unit[m.group(2).rstrip("s")]
                    seen = last.setdefault(rule.arn, now)
                    if now - seen < period:
                        continue
                    last[rule.arn] = now
                    _deliver(rule, {
                        "version": "0",
                        "id": str(uuid.uuid4()),
                        "detail-type": "Scheduled Event",
                        "source": "aws.events",
                        "account": account,
                        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "region": region,
                        "resources": [rule.arn],
                        "detail": {},
                    })


# 6. Network interfaces of terminated instances.

_moto_run_instances = InstanceBackend.run_instances
_moto_terminate = Instance.terminate


def _run_instances(self, *args, **kwargs):
    eni_tags = (kwargs.get("tags") or {}).get("network-interface", {})
    reservation = _moto_run_instances(self, *args, **kwargs)
    for instance in reservation.instances:
        for nic in instance.nics.values():
            nic.delete_on_termination = True
            if eni_tags:
                self.create_tags([nic.id], eni_tags)
    return reservation


def _terminate(self):
    state = _moto_terminate(self)
    try:
        subnet = self.ec2_backend.get_subnet(self.subnet_id)
        for ip in self._private_ips:
            subnet.del_subnet_ip(ip)
    except Exception as e:  # noqa: BLE001 - an instance outside any subnet has nothing to release
        _log(f"releasing the addresses of {self.id}: {e}")
    return state


# 8. Auto Scaling: targets of instances that leave a group, MaxSize, policy ARNs,
# launch template SourceVersion.

_moto_group_set_desired = FakeAutoScalingGroup.set_desired_capacity
_moto_detach = AutoScalingBackend.detach_instances
_moto_backend_set_desired = AutoScalingBackend.set_desired_capacity
_moto_put_policy = AutoScalingResponse.put_scaling_policy
_moto_create_lt_version = LaunchTemplates.create_launch_template_version
_moto_create_lt = LaunchTemplates.create_launch_template


def _instance_event(group, instance_id, launched):
    backend = group.autoscaling_backend
    region, account = backend.region_name, backend.account_id
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    kind = "Launch" if launched else "Terminate"
    _publish(account, region, {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": f"EC2 Instance {kind} Successful",
        "source": "aws.autoscaling",
        "account": account,
        "time": now,
        "region": region,
        "resources": [group.arn, f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"],
        "detail": {
            "StatusCode": "InProgress",
            "AutoScalingGroupName": group.name,
            "ActivityId": str(uuid.uuid4()),
            "EC2InstanceId": instance_id,
            "Cause": f"Ferry's local stack: an instance {kind.lower()}ed by the group",
            "StartTime": now,
            "EndTime": now,
            "Details": {"Subnet ID": "", "Availability Zone": ""},
        },
    })


def _events_for(group, before):
    after = {st.instance.id for st in group.instance_states}
    for i in sorted(after - before):
        _instance_event(group, i, True)
    for i in sorted(before - after):
        _instance_event(group, i, False)


def _deregister_gone(group, before):
    gone = before - {st.instance.id for st in group.instance_states}
    if not gone:
        return
    elbv2 = group.autoscaling_backend.elbv2_backend
    for arn in list(group.target_group_arns or []):
        tg = elbv2.target_groups.get(arn)
        if tg is None:
            continue
        ids = [i for i in gone if i in tg.targets]
        if ids:
            elbv2.deregister_targets(arn, [{"Id": i} for i in ids])
            _log(f"deregistered {ids} from {arn}: they left {group.name}")


def _group_set_desired(self, new_capacity):
    before = {st.instance.id for st in self.instance_states}
    _moto_group_set_desired(self, new_capacity)
    _deregister_gone(self, before)
    _events_for(self, before)


def _detach(self, group_name, instance_ids, should_decrement):
    group = self.autoscaling_groups[group_name]
    before = {st.instance.id for st in group.instance_states}
    out = _moto_detach(self, group_name, instance_ids, should_decrement)
    _deregister_gone(group, before)
    _events_for(group, before)
    return out


def _backend_set_desired(self, group_name, desired_capacity):
    group = self.autoscaling_groups[group_name]
    if desired_capacity is not None and desired_capacity > group.max_size:
        raise AsgValidationError(
            f"New SetDesiredCapacity value {desired_capacity} is above max value {group.max_size} for the AutoScalingGroup."
        )
    if desired_capacity is not None and desired_capacity < group.min_size:
        raise AsgValidationError(
            f"New SetDesiredCapacity value {desired_capacity} is below min value {group.min_size} for the AutoScalingGroup."
        )
    return _moto_backend_set_desired(self, group_name, desired_capacity)


def _put_policy(self):
    result = _moto_put_policy(self)
    if "PolicyArn" in result.result:
        result.result["PolicyARN"] = result.result.pop("PolicyArn")
    return result


def _create_lt(self):
    result = _moto_create_lt(self)
    template = self.ec2_backend.get_launch_template(result.result["LaunchTemplate"]["LaunchTemplateId"])
    data = template.versions[0].data
    specs = [t for t in data.get("TagSpecifications", []) if t.get("ResourceType") != "launch-template"]
    if specs:
        data["TagSpecifications"] = specs
    else:
        data.pop("TagSpecifications", None)
    return result


def _create_lt_version(self):
    source = self._get_param("SourceVersion")
    if not source:
        return _moto_create_lt_version(self)
    name, tid = self._get_param("LaunchTemplateName"), self._get_param("LaunchTemplateId")
    template = (
        self.ec2_backend.get_launch_template(tid) if tid else self.ec2_backend.get_launch_template_by_name(name)
    )
    merged = copy.deepcopy(template.get_version(source).data)
    merged.update(self._get_param("LaunchTemplateData", {}) or {})
    moto_get = self._get_param

    def get(key, default=None):
        return merged if key == "LaunchTemplateData" else moto_get(key, default)

    self._get_param = get
    try:
        return _moto_create_lt_version(self)
    finally:
        del self._get_param


# 7. CloudWatch in CBOR.

_CBOR_PATH = re.compile(r"^/service/GraniteServiceVersion20100801/operation/(\w+)$")
_cloudwatch_model = None


def _cw_model():
    global _cloudwatch_model
    if _cloudwatch_model is None:
        import botocore.session

        _cloudwatch_model = botocore.session.get_session().get_service_model("cloudwatch")
    return _cloudwatch_model


def _epoch(v):
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return v.timestamp()
    raise TypeError(f"not JSON: {type(v)}")


def _cbor_call(app, environ, start_response, op_name):
    import io

    from botocore.parsers import JSONParser, RpcV2CBORParser
    from botocore.serialize import RpcV2CBORSerializer

    op = _cw_model().operation_model(op_name)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    params = {}
    if raw and op.input_shape is not None:
        params = RpcV2CBORParser().parse(
            {"body": raw, "headers": {}, "status_code": 200}, op.input_shape
        )
        params.pop("ResponseMetadata", None)
    body = json.dumps(params, default=_epoch).encode()
    inner = dict(environ)
    inner.update({
        "PATH_INFO": "/",
        "RAW_URI": "/",
        "REQUEST_URI": "/",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/x-amz-json-1.0",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_AMZ_TARGET": f"GraniteServiceVersion20100801.{op_name}",
        "wsgi.input": io.BytesIO(body),
    })
    inner.pop("HTTP_SMITHY_PROTOCOL", None)
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda _data: None

    chunks = app(inner, capture)
    answer = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    code = int(captured["status"].split()[0])
    out = bytearray()
    ser = RpcV2CBORSerializer()
    if code < 300:
        if op.output_shape is not None:
            result = {}
            if answer.strip():
                result = JSONParser().parse(
                    {"body": answer, "headers": {}, "status_code": 200}, op.output_shape
                )
                result.pop("ResponseMetadata", None)
            ser._serialize_data_item(out, result, op.output_shape)
    else:
        try:
            err = json.loads(answer or b"{}")
        except ValueError:
            err = {"message": answer.decode(errors="replace")}
        kind = err.get("__type") or err.get("code") or "InternalFailure"
        message = err.get("message") or err.get("Message") or ""
        # An error is a map of text: `__type` and `message`.
        fields = {"__type": kind.split("#")[-1], "message": message}
        info, n = ser._get_additional_info_and_num_bytes(len(fields))
        out.extend(ser._get_initial_byte(ser.MAP_MAJOR_TYPE, info))
        for k, v in fields.items():
            ser._serialize_type_string(out, k, None, None)
            ser._serialize_type_string(out, v, None, None)
    start_response(captured["status"], [
        ("Content-Type", "application/cbor"),
        ("smithy-protocol", "rpc-v2-cbor"),
        ("Content-Length", str(len(out))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ])
    return [bytes(out)]


_moto_dispatch = DomainDispatcherApplication.__call__


def _dispatch(self, environ, start_response):
    m = _CBOR_PATH.match(environ.get("PATH_INFO", ""))
    if m and environ.get("REQUEST_METHOD") == "POST":
        return _cbor_call(lambda e, s: _moto_dispatch(self, e, s), environ, start_response, m.group(1))
    return _moto_dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _dispatch
FakeAutoScalingGroup.set_desired_capacity = _group_set_desired
AutoScalingBackend.detach_instances = _detach
AutoScalingBackend.set_desired_capacity = _backend_set_desired
AutoScalingResponse.put_scaling_policy = _put_policy
LaunchTemplates.create_launch_template_version = _create_lt_version
LaunchTemplates.create_launch_template = _create_lt
InstanceBackend.run_instances = _run_instances
Instance.terminate = _terminate
CloudWatchResponse.put_composite_alarm = _put_composite_alarm
Alarm.update_state = _update_state
Rule.send_to_targets = _send_to_targets

EBSBackend.start_snapshot = _start_snapshot
EBSResponse.start_snapshot = _start_snapshot_response
EBSBackend.put_snapshot_block = _put_block
EBSBackend.complete_snapshot = _complete_snapshot
AmisResponse.register_image = _register_image
sfn_task.StateTaskServiceSfn._normalise_parameters = _sfn_normalise
sfn_task.StateTaskServiceSfn._eval_service_task = _sfn_eval
sfn_task.StateTaskServiceSfn._normalise_response = _sfn_normalise_response
Ami.block_device_mappings = property(_block_device_mappings)

if __name__ == "__main__":
    threading.Thread(target=_scheduler, daemon=True).start()
    main(sys.argv[1:])
