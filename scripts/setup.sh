#!/usr/bin/env bash
# Installs what the demo and the tests need, idempotently: OpenSSH server and client,
# e2fsprogs/rsync (the workload script), iproute2/util-linux (the discovery test bed's
# network namespaces), mount (losetup: loop devices for the restore tests), kmod (modinfo, as the discovered hosts have it), chromium (the
# report test), the VM test bed (QEMU from bookworm-backports, whose qemu-utils this
# machine has; mmdebstrap, sfdisk), moto server, cargo-lambda, the aws CLI, and the template and
# state-machine validators.
set -euo pipefail

need_apt=()
command -v /usr/sbin/sshd >/dev/null || need_apt+=(openssh-server)
command -v ssh-keygen >/dev/null || need_apt+=(openssh-client)
command -v mkfs.ext4 >/dev/null || need_apt+=(e2fsprogs)
command -v rsync >/dev/null || need_apt+=(rsync)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v unshare >/dev/null || need_apt+=(util-linux)
command -v losetup >/dev/null || need_apt+=(mount)
command -v modinfo >/dev/null || need_apt+=(kmod)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
command -v sfdisk >/dev/null || need_apt+=(fdisk)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# QEMU: bookworm's qemu-system-x86 cannot sit beside the backports qemu-utils these
# machines have, so it comes from bookworm-backports too.
if ! command -v qemu-system-x86_64 >/dev/null; then
  echo "setup: installing qemu-system-x86 (bookworm-backports)"
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      >/etc/apt/sources.list.d/ferry-backports.sources
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports qemu-system-x86 >/dev/null
fi

# moto 5.2.1 breaks Step Functions executions after the first; 5.2.3 is the floor.
if ! python3 - <<'PY' 2>/dev/null
import importlib.metadata as m, sys
v = tuple(int(x) for x in m.version("moto").split(".")[:3])
import flask  # the server extra
sys.exit(0 if v >= (5, 2, 3) else 1)
PY
then
  echo "setup: installing moto[server]>=5.2.3"
  python3 -m pip install -q 'moto[server]>=5.2.3'
fi
# cargo-lambda serves the function binaries locally (`cargo lambda watch`); its PyPI
# wheel installs in seconds where `cargo install` takes twenty minutes.
if ! cargo lambda --version >/dev/null 2>&1; then
  echo "setup: installing cargo-lambda"
  python3 -m pip install -q cargo-lambda
fi
# The tests run the CLI's own driver in one python3 process (tests/moto/aws_cli.py):
# its package must be importable by python3, not only `aws` on the PATH.
if ! command -v aws >/dev/null || ! python3 -c "import awscli" 2>/dev/null; then
  echo "setup: installing the aws CLI"
  python3 -m pip install -q awscli
fi
# Validators of the deployable definitions: cfn-lint for the SAM template, and
# asl-validator (npm, kept in the cache dir) for every state machine.
command -v cfn-lint >/dev/null || { echo "setup: installing cfn-lint"; python3 -m pip install -q cfn-lint; }
NODE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/ferry/node"
if [ ! -x "$NODE_DIR/node_modules/.bin/asl-validator" ]; then
  command -v npm >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
  echo "setup: installing asl-validator"
  mkdir -p "$NODE_DIR"
  npm install --silent --no-audit --no-fund --prefix "$NODE_DIR" asl-validator@4 >/dev/null
fi
command -v moto_server >/dev/null || { echo "setup: moto_server not on PATH after install" >&2; exit 1; }
