"""A real single-node Slurm cluster on localhost for the tests (Debian's slurm-wlm 22.05).

Every daemon is private to one scratch directory: munged on its own socket and key, MariaDB on
127.0.0.1 with its own data directory, slurmdbd (so that ``sacct`` answers, as on a real cluster),
slurmctld and slurmd, each on a free port. ``stop()`` terminates exactly the processes that
``start()`` spawned, nothing else on the machine. Clients find the cluster through ``SLURM_CONF``
(see :meth:`LocalSlurm.env`).

The node advertises one stand-in GPU (``Gres=gpu:1`` on a /dev/null-like device file), so that a rule's GPU
request reaches ``sbatch --gpus`` and Slurm's accounting on a machine without one.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

from roboscape.train.launch import free_port

REQUIRED_BINARIES = (
    "slurmctld",
    "slurmd",
    "slurmdbd",
    "munged",
    "mariadbd",
    "mariadb-install-db",
    "sbatch",
    "srun",
    "sacct",
)
CLUSTER = "roboscape"
NODE = "localhost"


def _binary(name: str) -> str | None:
    """A Slurm/munge/MariaDB program: on PATH, or in /usr/sbin (not on a plain user's PATH)."""
    sbin = Path("/usr/sbin", name)
    return shutil.which(name) or (str(sbin) if sbin.exists() else None)


def missing_binaries() -> list[str]:
    return [name for name in REQUIRED_BINARIES if _binary(name) is None]


def _wait(predicate, what: str, timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {log}:\n{log.read_text()[-2000:]}" for log in logs if log.exists())
    raise RuntimeError(f"local Slurm: {what} not ready after {timeout:.0f} s\n{tails}")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class LocalSlurm:
    def __init__(self, root: Path, cpus: int | None = None, mem_mb: int | None = None, gpus: int = 1):
        self.root = Path(root)
        self.cpus = cpus or os.cpu_count() or 1
        self.mem_mb = mem_mb or int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20 * 0.8)
        self.gpus = gpus
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.conf = self.root / "etc" / "slurm.conf"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SLURM_CONF": str(self.conf),
            "PATH": f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def _write_srun_shim(self) -> None:
        """snakemake-executor-plugin-slurm-jobstep 0.6.1 strips every SLURM_* variable, SLURM_CONF
        included, before the job's own ``srun``; a cluster at the default /etc/slurm path does not
        notice, this private one would. The shim (first on the jobs' exported PATH) puts it back."""
        shim = self.root / "bin" / "srun"
        shim.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec {_binary("srun")} "$@"\n')
        shim.chmod(0o755)

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(command, capture_output=True, text=True, env=self.env(), timeout=60)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")  # noqa: SIM115 - lives as long as the daemon
        self.processes.append(
            (
                name,
                subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True),
            )
        )

    def _check_alive(self) -> bool:
        for name, proc in self.processes:
            if proc.poll() is not None:
                log = self.root / "log" / f"{name}.out"
                raise RuntimeError(f"local Slurm: {name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        return True

    def start(self) -> LocalSlurm:
        missing = missing_binaries()
        if missing:
            raise RuntimeError(
                f"local Slurm needs {', '.join(missing)}: run `bash envs/install.sh` "
                "(it installs slurm-wlm, slurmdbd, munge, mariadb-server)"
            )
        for sub in ("bin", "etc", "log", "munge", "mysql", "state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._write_srun_shim()
        os.chmod(self.root / "munge", 0o700)
        try:
            self._start_munge()
            self._start_mariadb()
            self._start_slurmdbd()
            self._start_slurm()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_munge(self) -> None:
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(128))
        os.chmod(key, 0o600)
        self._spawn(
            "munged",
            [
                _binary("munged"),
                "--foreground",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={self.root / 'munge' / 'munged.pid'}",
                f"--seed-file={self.root / 'munge' / 'munged.seed'}",
                f"--log-file={self.root / 'log' / 'munged.log'}",
            ],
        )
        _wait(
            lambda: self._check_alive() and self.munge_socket.exists(), "munged", 20, [self.root / "log" / "munged.log"]
        )

    def _start_mariadb(self) -> None:
        datadir = self.root / "mysql" / "data"
        self.db_port = free_port()
        subprocess.run(
            [
                _binary("mariadb-install-db"),
                "--no-defaults",
                f"--datadir={datadir}",
                "--user=root",
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # Grant tables are skipped: the server only listens on 127.0.0.1 of this scratch cluster.
        self._spawn(
            "mariadbd",
            [
                _binary("mariadbd"),
                "--no-defaults",
                f"--datadir={datadir}",
                "--user=root",
                f"--socket={self.root / 'mysql' / 'mysqld.sock'}",
                f"--port={self.db_port}",
                "--bind-address=127.0.0.1",
                "--skip-grant-tables",
                f"--pid-file={self.root / 'mysql' / 'mysqld.pid'}",
                f"--log-error={self.root / 'log' / 'mariadb.log'}",
                "--innodb-buffer-pool-size=64M",
            ],
        )
        _wait(
            lambda: self._check_alive() and _port_open(self.db_port), "MariaDB", 60, [self.root / "log" / "mariadb.log"]
        )

    def _start_slurmdbd(self) -> None:
        self.dbd_port = free_port()
        dbd_conf = self.root / "etc" / "slurmdbd.conf"
        dbd_conf.write_text(
            "\n".join(
                [
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "DbdHost=localhost",
                    "DbdAddr=127.0.0.1",
                    f"DbdPort={self.dbd_port}",
                    "SlurmUser=root",
                    f"LogFile={self.root / 'log' / 'slurmdbd.log'}",
                    f"PidFile={self.root / 'state' / 'slurmdbd.pid'}",
                    "StorageType=accounting_storage/mysql",
                    "StorageHost=127.0.0.1",
                    f"StoragePort={self.db_port}",
                    "StorageUser=root",
                    "StorageLoc=slurm_acct_db",
                    "",
                ]
            )
        )
        os.chmod(dbd_conf, 0o600)
        self._write_slurm_conf()
        self._spawn("slurmdbd", [_binary("slurmdbd"), "-D"])  # reads slurmdbd.conf beside $SLURM_CONF
        _wait(
            lambda: self._check_alive() and _port_open(self.dbd_port),
            "slurmdbd",
            60,
            [self.root / "log" / "slurmdbd.log"],
        )
        self.run("sacctmgr", "-i", "add", "cluster", CLUSTER, check=False)

    def _write_slurm_conf(self) -> None:
        self.ctld_port, self.slurmd_port = free_port(), free_port()
        self.conf.write_text(
            "\n".join(
                [
                    f"ClusterName={CLUSTER}",
                    "SlurmctldHost=localhost(127.0.0.1)",
                    f"SlurmctldPort={self.ctld_port}",
                    f"SlurmdPort={self.slurmd_port}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    f"StateSaveLocation={self.root / 'state'}",
                    f"SlurmdSpoolDir={self.root / 'spool'}",
                    f"SlurmctldPidFile={self.root / 'state' / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.root / 'state' / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "MpiDefault=none",
                    "MailProg=/bin/true",
                    "SchedulerType=sched/backfill",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "DefMemPerCPU=1000",  # without it a job takes the whole node's memory
                    "MinJobAge=600",
                    "ReturnToService=2",
                    "SchedulerParameters=sched_interval=2",
                    "AccountingStorageType=accounting_storage/slurmdbd",
                    "AccountingStorageHost=localhost",
                    f"AccountingStoragePort={self.dbd_port}",
                    f"AccountingStoragePass={self.munge_socket}",  # how slurmctld finds a non-default munge socket
                    "AccountingStorageTRES=gres/gpu",
                    "AccountingStoreFlags=job_comment",
                    "JobAcctGatherType=jobacct_gather/none",
                    "GresTypes=gpu",
                    f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.mem_mb}"
                    + (f" Gres=gpu:{self.gpus}" if self.gpus else "")
                    + " State=UNKNOWN",
                    "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        lines = [f"NodeName={NODE} Name=gpu File={self._stand_in_gpu(index)}" for index in range(self.gpus)]
        (self.root / "etc" / "gres.conf").write_text("".join(line + "\n" for line in lines))

    def _stand_in_gpu(self, index: int) -> Path:
        """A device file for Slurm's GPU bookkeeping (slurmd drops file-less GPUs): a character
        device with /dev/null's numbers, or a plain file (slurmd logs an error, keeps it) where
        mknod is not allowed."""
        path = self.root / "dev" / f"gpu{index}"
        path.parent.mkdir(exist_ok=True)
        if not path.exists():
            try:
                os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
            except PermissionError:
                path.touch()
        return path

    def _start_slurm(self) -> None:
        self._spawn("slurmctld", [_binary("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        _wait(
            lambda: self._check_alive() and self.run("scontrol", "ping", check=False).stdout.count("UP") > 0,
            "slurmctld",
            60,
            [self.root / "log" / "slurmctld.log"],
        )
        self._spawn("slurmd", [_binary("slurmd"), "-D", "-N", NODE, "-f", str(self.conf)])
        _wait(
            lambda: (
                self._check_alive()
                and self.run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.strip()
                in ("idle", "mixed", "allocated")
            ),
            "slurmd",
            60,
            [self.root / "log" / "slurmd.log", self.root / "log" / "slurmctld.log"],
        )

    def stop(self) -> None:
        """Terminate the daemons this object started (newest first), and nothing else."""
        while self.processes:
            name, proc = self.processes.pop()
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
