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

Then it runs moto's own server. It is used by the local stack only; product code never
depends on it.

Usage: python3 ferry_moto.py [moto_server arguments]
"""

import sys

from moto.core.responses import ActionResult
from moto.core.exceptions import JsonRESTError
from moto.ebs.models import EBSBackend
from moto.ebs.responses import EBSResponse
from moto.ec2.models.amis import Ami
from moto.ec2.responses.amis import AmisResponse
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
    main(sys.argv[1:])
