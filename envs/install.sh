#!/usr/bin/env bash
# Installs everything roboscape needs on a fresh Debian 12 (bookworm) machine:
#   1. system packages: Mesa 25 Vulkan (llvmpipe) from bookworm-backports, which
#      SAPIEN accepts for CPU rendering (bookworm's Mesa 22.3 is rejected);
#   2. a single-node Slurm for the cluster tests (tests/local_slurm.py): Debian's slurm-wlm,
#      slurmdbd, munge and mariadb-server (no daemon is started here, and none is enabled);
#   3. g++ and the Python headers, with which TorchInductor compiles the rollouts' fast decoder;
#   4. a virtual environment at .venv with the pinned Python stack
#      (envs/requirements.lock) and roboscape itself (editable).
# Idempotent: each step is skipped when what it installs is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ROBOSCAPE_VENV:-.venv}
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_updated=""
apt_install() {  # apt-get update at most once per run
  [ -n "$apt_updated" ] || { $SUDO apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

backports_list=/etc/apt/sources.list.d/roboscape-bookworm-backports.sources
if ! dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q '~bpo12'; then
  echo "[install] system packages (Mesa Vulkan from bookworm-backports)"
  if [ ! -f "$backports_list" ]; then
    # Reuse the mirror and keyring of the machine's own Debian entry.
    uris=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    signed=$(awk '/^Signed-By:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    uris=${uris:-http://deb.debian.org/debian}
    signed=${signed:-/usr/share/keyrings/debian-archive-keyring.gpg}
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$uris" "$signed" \
      | $SUDO tee "$backports_list" >/dev/null
  fi
  apt_install -t bookworm-backports mesa-vulkan-drivers libvulkan1 vulkan-tools
fi

slurm_binaries="slurmctld slurmd slurmdbd sbatch sacct srun munged mariadbd mariadb-install-db"
if ! (for b in $slurm_binaries; do command -v "$b" || [ -x "/usr/sbin/$b" ] || exit 1; done) >/dev/null 2>&1; then
  echo "[install] system packages (Slurm, munge, MariaDB for the cluster tests)"
  apt_install slurm-wlm slurmdbd munge mariadb-server
fi

py_include=$(python3 -c "import sysconfig; print(sysconfig.get_paths()['include'])")
if ! command -v g++ >/dev/null 2>&1 || [ ! -f "$py_include/Python.h" ]; then
  echo "[install] system packages (a C++ compiler and Python headers: TorchInductor compiles the fast decoder)"
  apt_install g++ python3-dev
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[install] creating $VENV"
  python3 -m venv "$VENV"
fi
stamp="$VENV/.roboscape-lock.sha256"
want=$(sha256sum envs/requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[install] Python packages from envs/requirements.lock"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r envs/requirements.lock
  "$VENV/bin/pip" install -q --no-deps -e .
  "$VENV/bin/pip" check
  echo "$want" > "$stamp"
fi
echo "[install] done: activate with 'source $VENV/bin/activate'"
